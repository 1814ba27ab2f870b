//! What happens around a container, as calls on [`Sys`]:
//!
//! - [`prepare_host`]: in init's own mount namespace before the container starts — runtime.json
//!   `mounts` (the rootfs bind or the tmpfs + overlay LinuxKit writes), `mkdir`, `cgroups`.
//! - [`setup_child`]: in the new process, inside its namespaces, before exec — the config.json
//!   mounts, devices, pivot_root, masked/readonly paths, sysctl, read-only root, rlimits, ids,
//!   capabilities, no_new_privs. The order follows runc's, so a LinuxKit bundle behaves as
//!   under runc.
//!
//! Non-goals: AppArmor/SELinux. User namespaces get their id maps from the parent
//! ([`crate::container::spawn`]); here they only change what may be mounted or created.

use super::confine;
use crate::mountopts;
use crate::spec::{Config, Mount, Runtime};
use crate::sys::{ms, ns, CapSets, DevKind, Node, Pinned, Sys};
use std::io;
use std::path::{Path, PathBuf};

/// A step of container setup that failed: what was being done, to what, and why.
#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {source}")]
pub struct SetupError {
    pub what: &'static str,
    pub path: String,
    pub source: io::Error,
}

fn step<T>(what: &'static str, path: &Path, r: io::Result<T>) -> Result<T, SetupError> {
    r.map_err(|source| SetupError { what, path: path.display().to_string(), source })
}

fn unsupported(what: &'static str, path: &str) -> SetupError {
    SetupError { what, path: path.into(), source: io::ErrorKind::Unsupported.into() }
}

/// `path` under `root`, whatever its leading slashes (`/dev` → `<root>/dev`).
pub fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

pub use crate::sys::inroot::secure_join;

/// Whether the container has a namespace of `kind` of its own: a new one, or one joined by path
/// that is not init's (a bundle may name `/proc/1/ns/net`, the host's, as runc also checks).
fn owns_namespace(sys: &mut dyn Sys, cfg: &Config, kind: &str) -> bool {
    let Some(n) = cfg.linux.namespaces.iter().find(|n| n.kind == kind) else { return false };
    if n.path.as_deref().is_none_or(str::is_empty) {
        return true;
    }
    let file = match kind {
        "network" => "net",
        other => other,
    };
    let mine = sys.read_link(Path::new(&format!("/proc/self/ns/{file}")));
    let init = sys.read_link(Path::new(&format!("/proc/1/ns/{file}")));
    mine.is_some() && mine != init
}

/// A relative runtime.json path is the image's: resolved inside its rootfs, never through its
/// symlinks out of it, and then created and mounted only beneath it (`Some(rootfs)`).
/// Absolute ones come from the image builder's own lines and are trusted (`None`); `baleen
/// build` lists them among the grants it shows.
fn host_path<'r>(
    sys: &mut dyn Sys,
    rootfs: &'r Path,
    p: &str,
) -> Result<(PathBuf, Option<&'r Path>), SetupError> {
    if p.starts_with('/') {
        return Ok((PathBuf::from(p), None));
    }
    let r = sys.resolve_in_root(rootfs, p);
    Ok((step("resolving in the container's root", Path::new(p), r)?, Some(rootfs)))
}

/// `mkdir -p` of `dir`: beneath `root` when there is one ([`Sys::create_in`]).
fn make_dir(sys: &mut dyn Sys, root: Option<&Path>, dir: &Path) -> std::io::Result<()> {
    match root {
        Some(r) => sys.create_in(r, dir, Node::Dir(0o755)),
        None => sys.mkdir_all(dir, 0o755),
    }
}

/// runtime.json in the root namespace. Relative paths resolve against the container's rootfs,
/// as LinuxKit's `prepareFilesystem` does.
pub fn prepare_host(sys: &mut dyn Sys, rootfs: &Path, rt: &Runtime) -> Result<(), SetupError> {
    for m in &rt.mounts {
        let (dest, root) = host_path(sys, rootfs, &m.destination)?;
        step("creating mount point", &dest, make_dir(sys, root, &dest))?;
        // Overlay needs its upper and work directories to exist.
        for o in &m.options {
            if let Some((k, v)) = o.split_once('=') {
                if k == "upperdir" || k == "workdir" {
                    step(
                        "creating overlay directory",
                        Path::new(v),
                        sys.mkdir_all(v.as_ref(), 0o755),
                    )?;
                }
            }
        }
        mount_one(sys, m, &dest, root)?;
    }
    for d in &rt.mkdir {
        let (d, root) = host_path(sys, rootfs, d)?;
        step("creating directory", &d, make_dir(sys, root, &d))?;
    }
    for cg in &rt.cgroups {
        let d = under(Path::new("/sys/fs/cgroup"), cg);
        step("creating cgroup", &d, sys.mkdir_all(&d, 0o755))?;
    }
    Ok(())
}

/// One mount entry at an absolute destination: the main call, then a read-only/flag remount
/// for binds (the kernel ignores flags on the first bind call), then the propagation change.
/// With `root` (the container's), each call names the destination as [`Sys::pin`] gives it,
/// opened again right before the call — so the follow-up calls reach the new mount on top, not
/// the directory under it. Messages name `dest`.
fn mount_one(
    sys: &mut dyn Sys,
    m: &Mount,
    dest: &Path,
    root: Option<&Path>,
) -> Result<(), SetupError> {
    let at = |sys: &mut dyn Sys| match root {
        Some(r) => step("opening mount point", dest, sys.pin(r, dest)),
        None => Ok(Pinned::plain(dest)),
    };
    let p = mountopts::parse(&m.options);
    let kind = m.kind.as_deref().unwrap_or("");
    let bind = p.flags & ms::BIND != 0 || kind == "bind";
    if bind {
        let src = m.source.as_deref().unwrap_or("");
        let flags = ms::BIND | (p.flags & ms::REC);
        let target = at(sys)?;
        step("bind-mounting onto", dest, sys.mount(Some(src), &target, None, flags, None))?;
        let rest = p.plain() & !(ms::BIND | ms::REC);
        if rest != 0 {
            let target = at(sys)?;
            step("remounting", dest, remount_bind(sys, &target, rest))?;
        }
    } else if p.flags & ms::REMOUNT != 0 || (kind.is_empty() && m.source.is_none()) {
        // LinuxKit's `{destination, options: [remount, private]}`: a remount and/or a
        // propagation change of an existing mount.
        if p.plain() & ms::REMOUNT != 0 {
            let target = at(sys)?;
            let r = sys.mount(None, &target, None, p.plain(), p.data.as_deref());
            step("remounting", dest, r)?;
        }
    } else {
        let (src, fstype) = match kind {
            // Only the unified hierarchy exists under baleen-init (cgroup v1 is a non-goal).
            "cgroup" | "cgroup2" => ("cgroup2", "cgroup2"),
            _ => (m.source.as_deref().unwrap_or(kind), kind),
        };
        let target = at(sys)?;
        let mut r = sys.mount(Some(src), &target, Some(fstype), p.plain(), p.data.as_deref());
        // The fallbacks bind where the refused mount would have gone (nothing on top yet).
        let fallback =
            if fstype == "sysfs" && r.as_ref().is_err_and(|e| e.raw_os_error() == Some(1)) {
                // sysfs belongs to the network namespace's owner: a user namespace sharing the
                // host's network gets the host's /sys bound instead (runc does the same).
                Some("/sys")
            } else if fstype == "cgroup2" && r.as_ref().is_err_and(cgroup2_refused) {
                // As runc: a fresh cgroup2 mount is refused where `/sys` came in by an rbind
                // (EBUSY: getty-style images bind the host's /sys) or outside a cgroup namespace
                // (EPERM); the host's hierarchy is bound instead, read-only when asked.
                Some("/sys/fs/cgroup")
            } else {
                None
            };
        if let Some(host) = fallback {
            r = sys.mount(Some(host), &target, None, ms::BIND | ms::REC, None);
            if r.is_ok() && p.plain() & ms::RDONLY != 0 {
                let target = at(sys)?;
                r = remount_bind(sys, &target, ms::RDONLY);
            }
        }
        step("mounting", dest, r)?;
    }
    if p.propagation() != 0 {
        let target = at(sys)?;
        let r = sys.mount(None, &target, None, p.propagation(), None);
        step("changing propagation of", dest, r)?;
    }
    Ok(())
}

/// Remounts the bind mount at `dest` with `flags` added to the ones it already has. A user
/// namespace may not drop nosuid/nodev/noexec/atime flags a mount came in with (the kernel
/// locks them: EPERM), so a read-only remount must repeat them, as runc does.
fn remount_bind(sys: &mut dyn Sys, dest: &Path, flags: u64) -> io::Result<()> {
    const KEEP: u64 =
        ms::NOSUID | ms::NODEV | ms::NOEXEC | ms::NOATIME | ms::NODIRATIME | ms::RELATIME;
    let have = sys.mount_flags(dest) & KEEP;
    sys.mount(None, dest, None, ms::REMOUNT | ms::BIND | flags | have, None)
}

fn cgroup2_refused(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(16 /* EBUSY */) | Some(1 /* EPERM */))
}

/// The device nodes runc creates in a container's tmpfs `/dev`: (name, major, minor).
const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

const DEV_LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// `path` inside the container's root ([`Sys::resolve_in_root`]), as a setup step.
fn resolve(sys: &mut dyn Sys, rootfs: &Path, path: &str) -> Result<PathBuf, SetupError> {
    let r = sys.resolve_in_root(rootfs, path);
    step("resolving in the container's root", Path::new(path), r)
}

/// runc's default nodes and links in the container's tmpfs `/dev`, made beneath the root.
fn default_devices(sys: &mut dyn Sys, rootfs: &Path) -> Result<(), SetupError> {
    let dev = resolve(sys, rootfs, "/dev")?;
    for (name, major, minor) in DEFAULT_DEVICES {
        let p = dev.join(name);
        let node = Node::Device { kind: DevKind::Char, mode: 0o666, major, minor, owner: None };
        let mut r = sys.create_in(rootfs, &p, node);
        if r.as_ref().is_err_and(|e| e.raw_os_error() == Some(1 /* EPERM */)) {
            // In a user namespace nodes cannot be made: bind the host's, as runc does.
            let host = format!("/dev/{name}");
            r = sys.create_in(rootfs, &p, Node::File).and_then(|_| {
                let at = sys.pin(rootfs, &p)?;
                sys.mount(Some(&host), &at, None, ms::BIND, None)
            });
        }
        step("creating device", &p, r)?;
    }
    for (name, target) in DEV_LINKS {
        let p = dev.join(name);
        step("creating symlink", &p, sys.create_in(rootfs, &p, Node::Symlink(target)))?;
    }
    Ok(())
}

/// Joins the namespaces that config.json names by path (the new ones were created by clone).
pub fn join_namespaces(sys: &mut dyn Sys, cfg: &Config) -> Result<(), SetupError> {
    // A user namespace first: it decides what the others may be joined with.
    let mut order: Vec<_> = cfg.linux.namespaces.iter().collect();
    order.sort_by_key(|n| n.kind != "user");
    for n in order {
        let Some(path) = n.path.as_deref().filter(|p| !p.is_empty()) else { continue };
        let t = match n.kind.as_str() {
            "user" => ns::NEWUSER,
            "network" => ns::NEWNET,
            "ipc" => ns::NEWIPC,
            "uts" => ns::NEWUTS,
            "mount" => ns::NEWNS,
            "cgroup" => ns::NEWCGROUP,
            // setns to a pid namespace applies to children only: the parent joined it before
            // clone ([`in_pid_namespace`]), so this process was born in it.
            "pid" => continue,
            other => return Err(unsupported("joining a namespace by path of type", other)),
        };
        step("joining namespace", Path::new(path), sys.setns(Path::new(path), t))?;
    }
    Ok(())
}

/// The pid namespace config.json names by path, if any.
pub fn pid_ns_path(cfg: &Config) -> Option<&Path> {
    cfg.linux
        .namespaces
        .iter()
        .find(|n| n.kind == "pid")
        .and_then(|n| n.path.as_deref())
        .filter(|p| !p.is_empty())
        .map(Path::new)
}

/// Runs `fork` (the clone of the container's process) with init's pid namespace for children
/// set to the one config.json names by path, so the process is born in it — what runc does by
/// joining before its last fork; setns(2) cannot move a running process into a pid namespace.
/// Init's own namespace for children is restored after, from `/proc/self/ns/pid` (a process's
/// own, active namespace, which setns does not change). Without a path, `fork` just runs.
pub fn in_pid_namespace<S: Sys + ?Sized, T>(
    sys: &mut S,
    cfg: &Config,
    fork: impl FnOnce(&mut S) -> T,
) -> Result<T, SetupError> {
    let Some(path) = pid_ns_path(cfg) else { return Ok(fork(sys)) };
    step("joining pid namespace", path, sys.setns(path, ns::NEWPID))?;
    let out = fork(sys);
    let own = Path::new("/proc/self/ns/pid");
    step("returning to init's pid namespace", own, sys.setns(own, ns::NEWPID))?;
    Ok(out)
}

/// Everything between clone and exec, in the child. `rootfs` is the absolute bundle rootfs.
pub fn setup_child(
    sys: &mut dyn Sys,
    cfg: &Config,
    rootfs: &Path,
    caps: &CapSets,
    seccomp: Option<&[crate::seccomp::Insn]>,
    hook_state: &crate::hooks::State,
) -> Result<(), SetupError> {
    let root = Path::new("/");
    let hooks = cfg.hooks.as_ref();
    if cfg.linux.namespaces.iter().any(|n| n.kind == "user") {
        // Init's uid 0 is not mapped in the container's user namespace: become its root, or
        // files made on its own mounts (the /dev tmpfs) would fail with EOVERFLOW.
        step("becoming root of the user namespace", root, sys.set_ids(0, 0, &[]))?;
    }
    // Mounts made for the container must not propagate back to init's namespace (/ is shared).
    let prop = match cfg.linux.rootfs_propagation.as_deref() {
        Some("shared") | Some("rshared") => ms::SHARED | ms::REC,
        Some("private") | Some("rprivate") => ms::PRIVATE | ms::REC,
        _ => ms::SLAVE | ms::REC,
    };
    step("setting propagation of", root, sys.mount(None, root, None, prop, None))?;
    if prop & ms::SHARED != 0 {
        // pivot_root refuses a new root whose parent mount is shared (EINVAL). As runc does,
        // the mount already at the root (runtime.json's overlay or bind) is made private on its
        // own, so binds from the host below it stay shared. Not a mount point: nothing to do.
        let _ = sys.mount(None, rootfs, None, ms::PRIVATE, None);
    }
    // pivot_root needs the new root to be a mount point.
    let r = sys.mount(Some(&rootfs.to_string_lossy()), rootfs, None, ms::BIND | ms::REC, None);
    step("bind-mounting the root", rootfs, r)?;
    if confine::root_nodev(caps) {
        // A device node shipped in the image stays inert (the mounts on top keep their own
        // flags: the /dev tmpfs still serves its nodes).
        // It keeps read-only when it is (a bind of a path on init's read-only root is): in a
        // user namespace the kernel locks that flag, and clearing it is EPERM.
        let ro = sys.mount_flags(rootfs) & ms::RDONLY;
        step("remounting nodev", rootfs, remount_bind(sys, rootfs, ms::NODEV | ro))?;
    }

    let mut ro_tmpfs = Vec::new();
    let mut dev_is_bind = false;
    for m in &cfg.mounts {
        let dest = resolve(sys, rootfs, &m.destination)?;
        let mut p = mountopts::parse(&m.options);
        let bind = p.flags & ms::BIND != 0 || m.kind.as_deref() == Some("bind");
        // A file bind needs a file to mount on; everything else a directory.
        let file = bind && sys.probe(Path::new(m.source.as_deref().unwrap_or(""))) == Some(false);
        let node = if file { Node::File } else { Node::Dir(0o755) };
        step("creating mount point", &dest, sys.create_in(rootfs, &dest, node))?;
        dev_is_bind |= bind && m.destination.trim_end_matches('/') == "/dev";
        let mut m = m.clone();
        // A read-only tmpfs (LinuxKit's /dev for readonly containers) is filled first and made
        // read-only at the end, as runc does.
        if m.kind.as_deref() == Some("tmpfs") && p.flags & ms::RDONLY != 0 {
            m.options.retain(|o| o != "ro");
            p.flags &= !ms::RDONLY;
            ro_tmpfs.push(dest.clone());
        }
        mount_one(sys, &m, &dest, Some(rootfs))?;
    }

    let has_dev_mount = cfg.mounts.iter().any(|m| m.destination.trim_end_matches('/') == "/dev");
    if has_dev_mount && !dev_is_bind {
        default_devices(sys, rootfs)?;
    }
    // As runc: with the host's /dev bound in, its nodes are used as they are.
    for d in cfg.linux.devices.iter().filter(|_| !dev_is_bind) {
        let p = resolve(sys, rootfs, &d.path)?;
        let kind = match d.kind.as_str() {
            "c" | "u" => DevKind::Char,
            "b" => DevKind::Block,
            "p" => DevKind::Fifo,
            other => return Err(unsupported("creating a device of type", other)),
        };
        if let Some(parent) = p.parent() {
            let r = sys.create_in(rootfs, parent, Node::Dir(0o755));
            step("creating device directory", parent, r)?;
        }
        let owner =
            (d.uid.is_some() || d.gid.is_some()).then(|| (d.uid.unwrap_or(0), d.gid.unwrap_or(0)));
        let mode = d.file_mode.unwrap_or(0o666);
        let node = Node::Device { kind, mode, major: d.major, minor: d.minor, owner };
        step("creating device", &p, sys.create_in(rootfs, &p, node))?;
    }
    for d in ro_tmpfs {
        let r = sys.mount(None, &d, None, ms::REMOUNT | ms::RDONLY, None);
        step("remounting read-only", &d, r)?;
    }

    // sysctls go through init's /proc, which resolves per-namespace keys (net.*, kernel.*
    // under a new uts/ipc namespace) for the calling process — already in the new namespaces.
    // Only those runc allows: any other would be written for the host (crate::sysctl).
    for (k, v) in &cfg.linux.sysctl {
        let p = under(Path::new("/proc/sys"), &crate::sysctl::proc_path(k));
        crate::sysctl::check(k, |kind| owns_namespace(sys, cfg, kind)).map_err(|why| {
            SetupError {
                what: "setting sysctl",
                path: p.display().to_string(),
                source: io::Error::new(io::ErrorKind::PermissionDenied, format!("{k:?} {why}")),
            }
        })?;
        step("setting sysctl", &p, sys.write_file(&p, v.as_bytes()))?;
    }
    let (masked, readonly) = confine::paths(cfg, caps);
    for mp in &masked {
        let p = resolve(sys, rootfs, mp)?;
        let Some(dir) = sys.probe(&p) else { continue };
        let at = step("opening", &p, sys.pin(rootfs, &p))?;
        let r = if dir {
            sys.mount(Some("tmpfs"), &at, Some("tmpfs"), ms::RDONLY, None)
        } else {
            sys.mount(Some("/dev/null"), &at, None, ms::BIND, None)
        };
        step("masking", &p, r)?;
    }
    for rp in &readonly {
        let p = resolve(sys, rootfs, rp)?;
        if sys.probe(&p).is_none() {
            continue;
        }
        let at = step("opening", &p, sys.pin(rootfs, &p))?;
        let s = at.to_string_lossy().into_owned();
        let r = sys.mount(Some(&s), &at, None, ms::BIND | ms::REC, None);
        step("bind-mounting read-only", &p, r)?;
        // Opened again: the remount is for the bind just made on top.
        let at = step("opening", &p, sys.pin(rootfs, &p))?;
        step("remounting read-only", &p, remount_bind(sys, &at, ms::RDONLY | ms::REC))?;
    }

    if let Some(h) = cfg.hostname.as_deref().filter(|h| !h.is_empty()) {
        if cfg.linux.namespaces.iter().any(|n| n.kind == "uts" && n.path.is_none()) {
            step("setting hostname", Path::new(h), sys.sethostname(h))?;
        }
    }

    if let Some(h) = hooks.filter(|h| !h.create_container.is_empty()) {
        let r = sys.run_hooks("createContainer", &h.create_container, &hook_state.json());
        step("running hooks before pivot_root in", rootfs, r)?;
    }

    // runc's trick: pivot_root(".", ".") stacks the old root on top of the new one at /;
    // detaching it leaves only the container's tree, with no directory needed for the old root.
    // "." must be the old root for the rslave (so its unmount cannot propagate to init): after
    // the pivot the working directory is still the new root, whose rshared binds would become
    // slaves and stop carrying mounts out (LinuxKit's mount image relies on them). So, as runc
    // does, come back into the old root through a descriptor opened before the pivot.
    let old_root = step("opening the old root", root, sys.open_dir(root))?;
    step("entering", rootfs, sys.chdir(rootfs))?;
    let dot = Path::new(".");
    step("pivot_root to", rootfs, sys.pivot_root(dot, dot))?;
    step("entering the old root", root, sys.fchdir(&old_root))?;
    drop(old_root);
    step("detaching the old root", root, sys.mount(None, dot, None, ms::SLAVE | ms::REC, None))?;
    step("detaching the old root", root, sys.umount(dot, true))?;
    step("entering", root, sys.chdir(root))?;
    if cfg.root.readonly {
        step("remounting read-only", root, remount_bind(sys, root, ms::RDONLY))?;
    }

    for rl in &cfg.process.rlimits {
        let Some(res) = rlimit_number(&rl.kind) else {
            return Err(unsupported("setting rlimit", &rl.kind));
        };
        step("setting rlimit", Path::new(&rl.kind), sys.setrlimit(res, rl.soft, rl.hard))?;
    }
    if let Some(adj) = cfg.process.oom_score_adj {
        let p = Path::new("/proc/self/oom_score_adj");
        step("setting", p, sys.write_file(p, adj.to_string().as_bytes()))?;
    }
    let cwd = cfg.process.cwd.as_deref().unwrap_or("/");
    step("changing directory to", Path::new(cwd), sys.chdir(Path::new(cwd)))?;
    // runc's check for CVE-2024-21626: a cwd reached through a descriptor that leaked from
    // outside (`/proc/self/fd/N`) lies outside the new root, and getcwd says so.
    step("checking the working directory", Path::new(cwd), sys.getcwd())?;

    // Without no_new_privs only a privileged process may install a filter, so it goes in
    // before the capabilities are dropped (runc does the same); with it, as late as possible.
    let nnp = cfg.process.no_new_privileges;
    if let (Some(prog), false) = (seccomp, nnp) {
        step("installing the seccomp filter", root, sys.seccomp(prog))?;
    }
    step("dropping bounding capabilities", root, sys.drop_bounding(caps.bounding))?;
    let u = &cfg.process.user;
    let r = sys.set_ids(u.uid, u.gid, &u.additional_gids);
    step("switching to uid", Path::new(&u.uid.to_string()), r)?;
    step("setting capabilities", root, sys.set_caps(caps))?;
    if nnp {
        step("setting no_new_privs", root, sys.no_new_privs())?;
        if let Some(prog) = seccomp {
            step("installing the seccomp filter", root, sys.seccomp(prog))?;
        }
    }
    if let Some(h) = hooks.filter(|h| !h.start_container.is_empty()) {
        let started = crate::hooks::State { status: "created", ..hook_state.clone() };
        let r = sys.run_hooks("startContainer", &h.start_container, &started.json());
        step("running hooks in", root, r)?;
    }
    Ok(())
}

/// `RLIMIT_NOFILE` → 7.
pub fn rlimit_number(name: &str) -> Option<u32> {
    const NAMES: [&str; 16] = [
        "CPU",
        "FSIZE",
        "DATA",
        "STACK",
        "CORE",
        "RSS",
        "NPROC",
        "NOFILE",
        "MEMLOCK",
        "AS",
        "LOCKS",
        "SIGPENDING",
        "MSGQUEUE",
        "NICE",
        "RTPRIO",
        "RTTIME",
    ];
    let bare = name.strip_prefix("RLIMIT_").unwrap_or(name);
    NAMES.iter().position(|n| *n == bare).map(|i| i as u32)
}

#[cfg(test)]
#[path = "setup_tests.rs"]
mod tests;
