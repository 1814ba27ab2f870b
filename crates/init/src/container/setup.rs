//! What happens around a container, as calls on [`Sys`]:
//!
//! - [`prepare_host`]: in init's own mount namespace before the container starts — runtime.json
//!   `mounts` (the rootfs bind or the tmpfs + overlay LinuxKit writes), `mkdir`, `cgroups`.
//! - [`setup_child`]: in the new process, inside its namespaces, before exec — the config.json
//!   mounts, devices, pivot_root, masked/readonly paths, sysctl, read-only root, rlimits, ids,
//!   capabilities, no_new_privs. The order follows runc's, so a LinuxKit bundle behaves as
//!   under runc. Its phases live in their own modules, as youki's `rootfs/` splits them:
//!   `mount` (the root and config.json's mounts), `device` (/dev nodes), `masking` (sysctls,
//!   masked and read-only paths), `pivot` (pivot_root), `identity` (user namespace root,
//!   hostname, rlimits, cwd, ids, capabilities, seccomp).
//!
//! Non-goals: AppArmor/SELinux. User namespaces get their id maps from the parent
//! ([`crate::container::spawn`]); here they only change what may be mounted or created.

mod device;
mod identity;
mod masking;
mod mount;
mod pivot;

use crate::spec::{Config, Runtime};
use crate::sys::{ns, CapSets, Node, Sys};
use std::io;
use std::path::{Path, PathBuf};

/// A step of container setup that failed: what was being done, to what, and why.
#[derive(Debug, thiserror::Error)]
#[error("{what} {path}")]
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
        mount::mount_one(sys, m, &dest, root)?;
    }
    for d in &rt.mkdir {
        let (d, root) = host_path(sys, rootfs, d)?;
        step("creating directory", &d, make_dir(sys, root, &d))?;
    }
    for cg in &rt.cgroups {
        let d = under(Path::new("/sys/fs/cgroup"), &super::cgroup_under_root(cg));
        step("creating cgroup", &d, sys.mkdir_all(&d, 0o755))?;
    }
    Ok(())
}

/// `path` inside the container's root ([`Sys::resolve_in_root`]), as a setup step.
fn resolve(sys: &mut dyn Sys, rootfs: &Path, path: &str) -> Result<PathBuf, SetupError> {
    let r = sys.resolve_in_root(rootfs, path);
    step("resolving in the container's root", Path::new(path), r)
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
///
/// The phases run in this order, each relying on the ones before it:
/// 1. [`identity::become_namespace_root`]: root of a new user namespace, so the rest may make
///    files on the container's own mounts.
/// 2. [`mount::prepare_root`]: propagation cut from init's namespace, the root a mount point
///    (`nodev` for the unprivileged) — before any mount, so none leaks back to init.
/// 3. [`mount::config_mounts`]: config.json's mounts in order, beneath the root.
/// 4. [`device::make_devices`]: nodes in the `/dev` just mounted; then
///    [`mount::seal_read_only_tmpfs`] makes a read-only `/dev` read-only once it is filled.
/// 5. [`masking::sysctls`] and [`masking::mask_paths`]: after every mount, so no mount covers a
///    mask; through init's `/proc`, so before pivot_root.
/// 6. [`identity::hostname`], then the `createContainer` hooks (which see the finished tree).
/// 7. [`pivot::enter_root`]: into the container's root, init's detached.
/// 8. [`identity::process_state`] and [`identity::drop_privileges`]: limits and cwd while still
///    privileged, then bounding set, ids, capabilities, no_new_privs; seccomp last (or before
///    the capabilities go, without no_new_privs); then the `startContainer` hooks.
pub fn setup_child(
    sys: &mut dyn Sys,
    cfg: &Config,
    rootfs: &Path,
    caps: &CapSets,
    seccomp: Option<&[crate::seccomp::Insn]>,
    hook_state: &crate::hooks::State,
) -> Result<(), SetupError> {
    let hooks = cfg.hooks.as_ref();
    identity::become_namespace_root(sys, cfg)?;
    mount::prepare_root(sys, cfg, rootfs, caps)?;
    let mounted = mount::config_mounts(sys, cfg, rootfs)?;
    device::make_devices(sys, cfg, rootfs, caps, &mounted)?;
    mount::seal_read_only_tmpfs(sys, mounted)?;
    masking::sysctls(sys, cfg)?;
    masking::mask_paths(sys, cfg, rootfs, caps)?;
    identity::hostname(sys, cfg)?;
    if let Some(h) = hooks.filter(|h| !h.create_container.is_empty()) {
        let r = sys.run_hooks("createContainer", &h.create_container, &hook_state.json());
        step("running hooks before pivot_root in", rootfs, r)?;
    }
    pivot::enter_root(sys, cfg, rootfs)?;
    identity::process_state(sys, cfg)?;
    identity::drop_privileges(sys, cfg, caps, seccomp)?;
    if let Some(h) = hooks.filter(|h| !h.start_container.is_empty()) {
        let started = crate::hooks::State { status: "created", ..hook_state.clone() };
        let r = sys.run_hooks("startContainer", &h.start_container, &started.json());
        step("running hooks in", Path::new("/"), r)?;
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
