//! The container's mounts, before pivot_root: its root made a private, pivotable mount point
//! ([`prepare_root`]), then config.json's mounts in their order ([`config_mounts`]), each through
//! [`mount_one`], which runtime.json's host-side mounts share. Every destination is resolved
//! inside the root and pinned, so a symlink in the image never sends a mount outside it.

use super::{resolve, step, SetupError};
use crate::container::confine;
use crate::mountopts;
use crate::spec::{Config, Mount};
use crate::sys::{ms, CapSets, Node, Pinned, Sys};
use std::io;
use std::path::{Path, PathBuf};

/// Makes `rootfs` a mount point pivot_root accepts, with no way for the container's mounts to
/// propagate back into init's namespace: `/` becomes rslave (or what `rootfsPropagation` asks),
/// `rootfs` is bound onto itself, and remounted `nodev` when [`confine::root_nodev`] says so.
/// Runs first: every later mount lands in this propagation setting.
pub(super) fn prepare_root(
    sys: &mut dyn Sys,
    cfg: &Config,
    rootfs: &Path,
    caps: &CapSets,
) -> Result<(), SetupError> {
    let root = Path::new("/");
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
    Ok(())
}

/// What [`config_mounts`] leaves for the later phases.
#[derive(Debug, Default)]
pub(super) struct Mounted {
    /// Read-only tmpfs mounts, mounted writable so /dev can be filled: (destination, the mount
    /// pinned right after it was made, its flags). [`seal_read_only_tmpfs`] finishes them.
    ro_tmpfs: Vec<(PathBuf, Pinned, u64)>,
    /// `/dev` is a bind of the host's: its nodes are used as they are.
    pub dev_is_bind: bool,
    /// config.json has a `/dev` mount (then runc's default nodes go in it).
    pub has_dev: bool,
    /// Every destination: a device node below one is not on the (nodev) root.
    pub destinations: Vec<PathBuf>,
}

/// config.json's `mounts`, in order, each on a mount point made beneath the root (a file for a
/// file bind, else a directory). A read-only tmpfs is mounted writable and left for
/// [`seal_read_only_tmpfs`]. Runs after [`prepare_root`] and before devices are made.
pub(super) fn config_mounts(
    sys: &mut dyn Sys,
    cfg: &Config,
    rootfs: &Path,
) -> Result<Mounted, SetupError> {
    let mut out = Mounted::default();
    for m in &cfg.mounts {
        let dest = resolve(sys, rootfs, &m.destination)?;
        out.destinations.push(dest.clone());
        let mut p = mountopts::parse(&m.options);
        let bind = p.flags & ms::BIND != 0 || m.kind.as_deref() == Some("bind");
        // A file bind needs a file to mount on; everything else a directory.
        let file = bind && sys.probe(Path::new(m.source.as_deref().unwrap_or(""))) == Some(false);
        let node = if file { Node::File } else { Node::Dir(0o755) };
        step("creating mount point", &dest, sys.create_in(rootfs, &dest, node))?;
        out.dev_is_bind |= bind && m.destination.trim_end_matches('/') == "/dev";
        let mut m = m.clone();
        // A read-only tmpfs (LinuxKit's /dev for readonly containers) is filled first and made
        // read-only at the end, as runc does, with the flags it was mounted with (a plain
        // remount clears the nosuid/nodev/noexec it is not given).
        let ro = m.kind.as_deref() == Some("tmpfs") && p.flags & ms::RDONLY != 0;
        if ro {
            m.options.retain(|o| o != "ro");
            p.flags &= !ms::RDONLY;
        }
        mount_one(sys, &m, &dest, Some(rootfs))?;
        if ro {
            // Held from right after the mount: the remount reaches this tmpfs even if the path
            // is swapped (for a symlink, another mount) meanwhile.
            let at = step("opening", &dest, sys.pin(rootfs, &dest))?;
            out.ro_tmpfs.push((dest, at, p.plain()));
        }
    }
    out.has_dev = cfg.mounts.iter().any(|m| m.destination.trim_end_matches('/') == "/dev");
    Ok(out)
}

/// Makes the read-only tmpfs mounts [`config_mounts`] left writable read-only, through the
/// descriptors held since they were made. Runs once the devices are in them.
pub(super) fn seal_read_only_tmpfs(sys: &mut dyn Sys, m: Mounted) -> Result<(), SetupError> {
    for (d, at, flags) in m.ro_tmpfs {
        let r = sys.mount(None, &at, None, ms::REMOUNT | ms::RDONLY | flags, None);
        step("remounting read-only", &d, r)?;
    }
    Ok(())
}

/// One mount entry at an absolute destination: the main call, then a read-only/flag remount
/// for binds (the kernel ignores flags on the first bind call), then the propagation change.
/// With `root` (the container's), each call names the destination as [`Sys::pin`] gives it,
/// opened again right before the call — so the follow-up calls reach the new mount on top, not
/// the directory under it. Messages name `dest`.
pub(super) fn mount_one(
    sys: &mut dyn Sys,
    m: &Mount,
    dest: &Path,
    root: Option<&Path>,
) -> Result<(), SetupError> {
    let at = |sys: &mut dyn Sys| pin_at(sys, dest, root);
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
        mount_new(sys, m, kind, &p, dest, root)?;
    }
    if p.propagation() != 0 {
        let target = at(sys)?;
        let r = sys.mount(None, &target, None, p.propagation(), None);
        step("changing propagation of", dest, r)?;
    }
    Ok(())
}

/// `dest` as mount(2) should name it: pinned beneath `root` when there is one.
fn pin_at(sys: &mut dyn Sys, dest: &Path, root: Option<&Path>) -> Result<Pinned, SetupError> {
    match root {
        Some(r) => step("opening mount point", dest, sys.pin(r, dest)),
        None => Ok(Pinned::plain(dest)),
    }
}

/// A new filesystem of type `kind` at `dest` (for [`mount_one`]), or the host's bound in its
/// place where the kernel refuses the new one, as runc also does.
fn mount_new(
    sys: &mut dyn Sys,
    m: &Mount,
    kind: &str,
    p: &mountopts::Parsed,
    dest: &Path,
    root: Option<&Path>,
) -> Result<(), SetupError> {
    let target = pin_at(sys, dest, root)?;
    let (src, fstype) = match kind {
        // Only the unified hierarchy exists under baleen-init (cgroup v1 is a non-goal).
        "cgroup" | "cgroup2" => ("cgroup2", "cgroup2"),
        _ => (m.source.as_deref().unwrap_or(kind), kind),
    };
    let mut r = sys.mount(Some(src), &target, Some(fstype), p.plain(), p.data.as_deref());
    // The fallbacks bind where the refused mount would have gone (nothing on top yet).
    let fallback = if fstype == "sysfs" && r.as_ref().is_err_and(|e| e.raw_os_error() == Some(1)) {
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
            let target = pin_at(sys, dest, root)?;
            r = remount_bind(sys, &target, ms::RDONLY);
        }
    }
    step("mounting", dest, r)
}

/// Remounts the bind mount at `dest` with `flags` added to the ones it already has. A user
/// namespace may not drop nosuid/nodev/noexec/atime flags a mount came in with (the kernel
/// locks them: EPERM), so a read-only remount must repeat them, as runc does.
pub(super) fn remount_bind(sys: &mut dyn Sys, dest: &Path, flags: u64) -> io::Result<()> {
    const KEEP: u64 =
        ms::NOSUID | ms::NODEV | ms::NOEXEC | ms::NOATIME | ms::NODIRATIME | ms::RELATIME;
    let have = sys.mount_flags(dest) & KEEP;
    sys.mount(None, dest, None, ms::REMOUNT | ms::BIND | flags | have, None)
}

fn cgroup2_refused(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(16 /* EBUSY */) | Some(1 /* EPERM */))
}
