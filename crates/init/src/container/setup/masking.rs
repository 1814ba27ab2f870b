//! What the container may reach of the kernel's knobs, set while init's view of `/proc` is
//! still at hand (before pivot_root) and after every config.json mount, so that no mount can
//! cover a mask: the sysctls it may set ([`sysctls`]), then masked and read-only paths
//! ([`mask_paths`], the bundle's plus [`confine::paths`]' defaults).

use super::{resolve, step, SetupError};
use crate::container::confine;
use crate::spec::Config;
use crate::sys::{ms, CapSets, Sys};
use std::io;
use std::path::Path;

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

/// config.json's `linux.sysctl`. They go through init's /proc, which resolves per-namespace
/// keys (net.*, kernel.* under a new uts/ipc namespace) for the calling process — already in
/// the new namespaces. Only those runc allows: any other would be written for the host
/// ([`crate::sysctl`]), and is refused before anything is written.
pub(super) fn sysctls(sys: &mut dyn Sys, cfg: &Config) -> Result<(), SetupError> {
    for (k, v) in &cfg.linux.sysctl {
        let p = super::under(Path::new("/proc/sys"), &crate::sysctl::proc_path(k));
        crate::sysctl::check(k, |kind| owns_namespace(sys, cfg, kind)).map_err(|why| {
            SetupError {
                what: "setting sysctl",
                path: p.display().to_string(),
                source: io::Error::new(io::ErrorKind::PermissionDenied, format!("{k:?} {why}")),
            }
        })?;
        step("setting sysctl", &p, sys.write_file(&p, v.as_bytes()))?;
    }
    Ok(())
}

/// Masked paths (a read-only tmpfs on a directory, `/dev/null` on anything else), then
/// read-only paths (bound onto themselves and remounted read-only). Paths that do not exist
/// are skipped. Runs after every mount, so none covers a mask.
pub(super) fn mask_paths(
    sys: &mut dyn Sys,
    cfg: &Config,
    rootfs: &Path,
    caps: &CapSets,
) -> Result<(), SetupError> {
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
        let r = super::mount::remount_bind(sys, &at, ms::RDONLY | ms::REC);
        step("remounting read-only", &p, r)?;
    }
    Ok(())
}
