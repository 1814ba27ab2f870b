//! Process creation for a container: clone(2) with the namespace flags, a sync pipe so init can
//! place the child in its cgroup, give it interfaces and bind its namespaces before it runs,
//! and an error pipe that closes on exec.
//!
//! init is single-threaded (one poll loop), so the child of a raw clone may allocate and run
//! ordinary Rust code until exec.

use super::{setup, Bundle, ContainerError};
use crate::hooks;
use crate::sys::real::{cstr, Real};
use crate::sys::Sys;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

/// A started container.
#[derive(Debug)]
pub struct Started {
    pub pid: i32,
    /// Read ends of the container's stdout and stderr.
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
}

fn enable_controllers(cgroup: &str) {
    // cgroup v2: a controller is usable in a group only when every ancestor enables it for its
    // children. Failures (a controller the kernel lacks) only mean the limit is not applied.
    let mut dir = std::path::PathBuf::from("/sys/fs/cgroup");
    for part in cgroup.split('/').filter(|p| !p.is_empty()) {
        for c in ["+cpu", "+memory", "+pids"] {
            let _ = std::fs::write(dir.join("cgroup.subtree_control"), c);
        }
        dir.push(part);
    }
}

/// Whether to go on with the cgroup when `cgroup2` is (not) mounted. Without it there is no
/// device program, and a container that has one must not run with every device open to it
/// (ARCHITECTURE.md: none runs without it); one without (`baleen.devices=rules` and no rules)
/// runs without limits.
fn without_cgroup2(cgroup2: bool, has_device_program: bool) -> std::io::Result<bool> {
    match (cgroup2, has_device_program) {
        (true, _) => Ok(true),
        (false, false) => Ok(false),
        (false, true) => Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "no cgroup2 at /sys/fs/cgroup: the container's device rules cannot be enforced",
        )),
    }
}

fn apply_cgroup(b: &Bundle, pid: i32) -> std::io::Result<()> {
    let cg = b.cgroup();
    let dir = Path::new("/sys/fs/cgroup").join(&cg);
    let cgroup2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if !without_cgroup2(cgroup2, b.devcg.is_some())? {
        return Ok(());
    }
    let r = &b.config.linux.resources;
    let limited = r.memory.is_some() || r.cpu.is_some() || r.pids.is_some();
    if limited {
        enable_controllers(&cg);
    }
    if b.devcg.is_some() {
        // Programs add up on a cgroup (ALLOW_MULTI): a group an earlier container of the same
        // name left behind goes, with its program, before this one's is attached. A group
        // still in use stays (rmdir fails) and the programs combine.
        let _ = std::fs::remove_dir(&dir);
    }
    std::fs::create_dir_all(&dir)?;
    let set = |file: &str, v: String| {
        std::fs::write(dir.join(file), v).map_err(|e| {
            std::io::Error::new(e.kind(), format!("writing {}/{file}: {e}", dir.display()))
        })
    };
    if let Some(m) = &r.memory {
        if let Some(l) = m.limit.filter(|l| *l > 0) {
            set("memory.max", l.to_string())?;
        }
        if let Some(l) = m.reservation.filter(|l| *l > 0) {
            set("memory.low", l.to_string())?;
        }
    }
    if let Some(p) = &r.pids {
        if p.limit > 0 {
            set("pids.max", p.limit.to_string())?;
        }
    }
    if let Some(c) = &r.cpu {
        if let Some(s) = c.shares.filter(|s| *s > 0) {
            // runc's conversion of cgroup v1 shares [2, 262144] to v2 weight [1, 10000].
            let w = 1 + (s.clamp(2, 262_144) - 2) * 9999 / 262_142;
            set("cpu.weight", w.to_string())?;
        }
        if let Some(q) = c.quota.filter(|q| *q > 0) {
            set("cpu.max", format!("{q} {}", c.period.unwrap_or(100_000)))?;
        }
    }
    if let Some(prog) = &b.devcg {
        crate::devcg::attach(&dir, prog)
            .map_err(|e| std::io::Error::other(crate::console::chain(&e)))?;
    }
    set("cgroup.procs", pid.to_string())
}

/// A step of init's side of a start (between clone and releasing the child) that failed; the
/// cause is the source.
#[derive(Debug, thiserror::Error)]
pub enum ParentError {
    #[error("writing {path}")]
    IdMap { path: String, source: std::io::Error },
    #[error("placing pid {pid} in its cgroup")]
    Cgroup { pid: i32, source: std::io::Error },
    #[error("runtime.json interfaces")]
    Interface { source: crate::netlink::NetlinkError },
    #[error("creating {path}")]
    BindTarget { path: String, source: std::io::Error },
    #[error("binding {ns} namespace at {path}")]
    BindNs { ns: String, path: String, source: std::io::Error },
    #[error("OCI hooks")]
    Hooks { source: hooks::HookError },
}

/// Writes the new user namespace's uid/gid maps (`linux.uidMappings`/`gidMappings`; the
/// identity map when none are given, so "user: new" alone still runs).
fn id_maps(b: &Bundle, pid: i32) -> Result<(), ParentError> {
    let l = &b.config.linux;
    for (file, maps) in [("uid_map", &l.uid_mappings), ("gid_map", &l.gid_mappings)] {
        let text: String = if maps.is_empty() {
            "0 0 4294967295\n".into()
        } else {
            maps.iter().map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size)).collect()
        };
        let path = format!("/proc/{pid}/{file}");
        if let Err(source) = std::fs::write(&path, text) {
            return Err(ParentError::IdMap { path, source });
        }
    }
    Ok(())
}

fn bind_namespaces(b: &Bundle, pid: i32) -> Result<(), ParentError> {
    let mut sys = Real;
    for (ns, path) in b.runtime.bind_ns.entries() {
        let p = Path::new(path);
        let target = |source| ParentError::BindTarget { path: path.to_owned(), source };
        if let Some(d) = p.parent() {
            sys.mkdir_all(d, 0o755).map_err(|source| ParentError::BindTarget {
                path: d.display().to_string(),
                source,
            })?;
        }
        sys.touch(p).map_err(target)?;
        let src = format!("/proc/{pid}/ns/{ns}");
        sys.mount(Some(&src), p, None, crate::sys::ms::BIND, None).map_err(|source| {
            ParentError::BindNs { ns: ns.to_owned(), path: path.to_owned(), source }
        })?;
    }
    Ok(())
}

/// Init's side while the cloned child waits on the go pipe: user namespace maps, cgroup,
/// interfaces, bound namespaces, then the prestart and createRuntime hooks, which see all of
/// it.
fn parent_side(b: &Bundle, pid: i32, flags: i32) -> Result<(), ParentError> {
    if flags & crate::sys::ns::NEWUSER != 0 {
        id_maps(b, pid)?;
    }
    apply_cgroup(b, pid).map_err(|source| ParentError::Cgroup { pid, source })?;
    for i in &b.runtime.interfaces {
        crate::netlink::apply_interface(i, pid)
            .map_err(|source| ParentError::Interface { source })?;
    }
    bind_namespaces(b, pid)?;
    // The namespaces exist and the process waits: prestart + createRuntime hooks.
    if let Some(h) = &b.config.hooks {
        let state = hook_state(b, "creating", Some(pid));
        let state = state.as_state();
        for (phase, list) in [("prestart", &h.prestart), ("createRuntime", &h.create_runtime)] {
            hooks::run_all(&mut hooks::Exec, phase, list, &state)
                .map_err(|source| ParentError::Hooks { source })?;
        }
    }
    Ok(())
}

/// Finds `prog` on the container's PATH (after pivot_root) as execvp would.
fn lookup(prog: &str, env: &[String]) -> String {
    if prog.contains('/') {
        return prog.to_owned();
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .map(|d| format!("{d}/{prog}"))
        .find(|p| Path::new(p).is_file())
        .unwrap_or_else(|| prog.to_owned())
}

/// The child between clone and exec. Returns only with an error message. Unsafe for the
/// signal reset and execve, which rustix has no safe form of.
#[allow(unsafe_code)]
fn child(b: &Bundle, go: OwnedFd, err: &mut File, stdout: OwnedFd, stderr: OwnedFd) -> String {
    let mut byte = [0u8; 1];
    if File::from(go).read_exact(&mut byte).is_err() || byte[0] != b'g' {
        return String::new(); // init gave up on us; exit quietly
    }
    // Leave init's signal state behind: blocked signals and ignored SIGPIPE survive exec.
    // SAFETY: sigset_t is plain data; we fill it with sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in 1..32 {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
    let _ = rustix::process::setsid();
    let null = match File::options().read(true).open("/dev/null") {
        Ok(f) => f,
        Err(e) => return format!("opening /dev/null: {e}"),
    };
    let redirects = [
        (0, rustix::stdio::dup2_stdin(&null)),
        (1, rustix::stdio::dup2_stdout(&stdout)),
        (2, rustix::stdio::dup2_stderr(&stderr)),
    ];
    for (target, r) in redirects {
        if let Err(e) = r {
            return format!("redirecting fd {target}: {}", std::io::Error::from(e));
        }
    }
    // Our pid as init sees it, for the hooks' state: /proc is still init's here.
    let host_pid =
        std::fs::read_link("/proc/self").ok().and_then(|p| p.to_str().and_then(|s| s.parse().ok()));
    let state = hook_state(b, "creating", host_pid);
    let mut sys = Real;
    if let Err(e) = setup::join_namespaces(&mut sys, &b.config) {
        return crate::console::chain(&e);
    }
    if b.new_net() {
        if let Err(e) = crate::netlink::link_up("lo") {
            return format!("bringing up lo: {}", crate::console::chain(&e));
        }
    }
    let state = state.as_state();
    let seccomp = b.seccomp.as_deref();
    if let Err(e) = setup::setup_child(&mut sys, &b.config, &b.rootfs(), &b.caps, seccomp, &state) {
        return crate::console::chain(&e);
    }
    let p = &b.config.process;
    let prog = lookup(&p.args[0], &p.env);
    let to_c = |v: &[String]| v.iter().map(|s| cstr(s)).collect::<Result<Vec<_>, _>>();
    let (Ok(args), Ok(env), Ok(cprog)) = (to_c(&p.args), to_c(&p.env), cstr(&prog)) else {
        return "an argument or environment entry contains a NUL byte".into();
    };
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: argv and envp are NULL-terminated arrays of pointers into CStrings that outlive
    // the call; execve only returns on failure.
    unsafe { libc::execve(cprog.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    let _ = err.flush();
    format!("exec {prog}: {}", std::io::Error::last_os_error())
}

/// Starts the bundle's process. On success the process has exec'd its program. Unsafe for the
/// raw clone(2) and the child's _exit.
#[allow(unsafe_code)]
pub fn spawn(b: &Bundle) -> Result<Started, ContainerError> {
    let start_err = |what: &str, source| ContainerError::Start {
        bundle: b.dir.clone(),
        what: what.into(),
        source,
    };
    let flags = b.clone_flags()?;
    let (go_r, go_w) = pipe().map_err(|e| start_err("creating a pipe", e))?;
    let (err_r, err_w) = pipe().map_err(|e| start_err("creating a pipe", e))?;
    let (out_r, out_w) = pipe().map_err(|e| start_err("creating a pipe", e))?;
    let (serr_r, serr_w) = pipe().map_err(|e| start_err("creating a pipe", e))?;

    // A pid namespace named by path is entered around the clone (the child is born in it).
    // The pipes go into the closure and come back out in the parent.
    let fds = (go_r, go_w, err_r, err_w, out_r, out_w, serr_r, serr_w);
    let cloned = setup::in_pid_namespace(&mut Real, &b.config, move |_| {
        // SAFETY: a fork-like clone (no CLONE_VM, no new stack) in a single-threaded process:
        // the child gets a copy of the address space and continues here with a return value
        // of 0.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (flags | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if pid == 0 {
            // The child never leaves this block, so never runs the parent's restoring setns.
            let (go_r, go_w, err_r, err_w, out_r, out_w, serr_r, serr_w) = fds;
            drop((go_w, err_r, out_r, serr_r));
            let mut err = File::from(err_w);
            let msg = child(b, go_r, &mut err, out_w, serr_w);
            let _ = err.write_all(msg.as_bytes());
            // SAFETY: _exit ends the child without running init's atexit handlers or
            // destructors.
            unsafe { libc::_exit(127) };
        }
        (pid, std::io::Error::last_os_error(), fds)
    });
    let (pid, clone_err, (go_r, go_w, err_r, err_w, out_r, out_w, serr_r, serr_w)) =
        cloned.map_err(|source| ContainerError::Prepare { bundle: b.dir.clone(), source })?;
    if pid < 0 {
        return Err(start_err("clone", clone_err));
    }
    let pid = pid as i32;
    drop((go_r, err_w, out_w, serr_w));
    let mut go = File::from(go_w);

    if let Err(e) = parent_side(b, pid, flags) {
        drop(go); // the child reads EOF and exits
        reap(pid);
        let message = crate::console::chain(&e);
        return Err(ContainerError::Child { bundle: b.dir.clone(), message });
    }
    go.write_all(b"g").map_err(|e| start_err("releasing the child", e))?;
    drop(go);
    let mut message = String::new();
    let _ = File::from(err_r).read_to_string(&mut message);
    if !message.is_empty() {
        reap(pid);
        return Err(ContainerError::Child { bundle: b.dir.clone(), message });
    }
    if let Some(h) = &b.config.hooks {
        let state = hook_state(b, "running", Some(pid));
        for e in hooks::run_all_warn(&mut hooks::Exec, "poststart", &h.poststart, &state.as_state())
        {
            crate::console::event(&format!("warning {}: {}", b.name, crate::console::chain(&e)));
        }
    }
    Ok(Started { pid, stdout: out_r, stderr: serr_r })
}

/// The owned parts of a hook's [`hooks::State`].
pub struct HookState {
    id: String,
    status: &'static str,
    pid: Option<i32>,
    bundle: String,
}

impl HookState {
    pub fn as_state(&self) -> hooks::State<'_> {
        hooks::State { id: &self.id, status: self.status, pid: self.pid, bundle: &self.bundle }
    }
}

/// The state hooks of `b` read.
pub fn hook_state(b: &Bundle, status: &'static str, pid: Option<i32>) -> HookState {
    HookState { id: b.name.clone(), status, pid, bundle: b.dir.display().to_string() }
}

fn reap(pid: i32) {
    // Never `None` (any child) for a pid that is not one.
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A container with a device program once ran with every device open when cgroup2 was
    /// missing; now it does not start.
    #[test]
    fn no_cgroup2_refuses_a_container_with_device_rules() {
        assert!(without_cgroup2(false, true).is_err());
        assert!(!without_cgroup2(false, false).unwrap());
        assert!(without_cgroup2(true, true).unwrap());
    }
}
