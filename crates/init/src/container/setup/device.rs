//! Device nodes in the container: runc's defaults and links in a tmpfs `/dev`
//! ([`default_devices`]), then config.json's `linux.devices` ([`listed_devices`]), all made
//! beneath the root. Runs after the mounts (the nodes go into the `/dev` tmpfs) and before a
//! read-only `/dev` is sealed. With the host's `/dev` bound in, nothing is made: its nodes are
//! used as they are, as under runc.

use super::mount::Mounted;
use super::{resolve, step, unsupported, SetupError};
use crate::container::confine;
use crate::spec::Config;
use crate::sys::{ms, CapSets, DevKind, Node, Sys};
use std::path::Path;

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

/// Both kinds of nodes, as the mounts left `/dev`.
pub(super) fn make_devices(
    sys: &mut dyn Sys,
    cfg: &Config,
    rootfs: &Path,
    caps: &CapSets,
    mounted: &Mounted,
) -> Result<(), SetupError> {
    if mounted.has_dev && !mounted.dev_is_bind {
        default_devices(sys, rootfs)?;
    }
    if !mounted.dev_is_bind {
        listed_devices(sys, cfg, rootfs, caps, mounted)?;
    }
    Ok(())
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

/// config.json's `linux.devices`, each with its parent directories, mode and owner; one on the
/// `nodev` root (not below a mount) is made usable by [`usable_device`].
fn listed_devices(
    sys: &mut dyn Sys,
    cfg: &Config,
    rootfs: &Path,
    caps: &CapSets,
    mounted: &Mounted,
) -> Result<(), SetupError> {
    for d in &cfg.linux.devices {
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
        if confine::root_nodev(caps) && !mounted.destinations.iter().any(|m| p.starts_with(m)) {
            usable_device(sys, rootfs, &p, cfg.root.readonly)?;
        }
    }
    Ok(())
}

/// A `linux.devices` node made on the container's root, which is `nodev` unless it is granted
/// `CAP_MKNOD` ([`confine::root_nodev`]): bound onto itself and that bind remounted without
/// `nodev` (but `nosuid`, `noexec`, and read-only with a read-only root), so this node works as
/// under runc (whose root is not `nodev`) and every other node in the image stays inert.
fn usable_device(
    sys: &mut dyn Sys,
    rootfs: &Path,
    node: &Path,
    readonly: bool,
) -> Result<(), SetupError> {
    let at = step("opening device", node, sys.pin(rootfs, node))?;
    let src = at.to_string_lossy().into_owned();
    step("bind-mounting device", node, sys.mount(Some(&src), &at, None, ms::BIND, None))?;
    // Opened again: the remount is for the bind just made on top.
    let at = step("opening device", node, sys.pin(rootfs, node))?;
    let ro = if readonly { ms::RDONLY } else { 0 };
    let flags = ms::REMOUNT | ms::BIND | ms::NOSUID | ms::NOEXEC | ro;
    step("remounting device without nodev", node, sys.mount(None, &at, None, flags, None))
}
