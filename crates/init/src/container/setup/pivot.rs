//! Entering the container's root: pivot_root onto it and the old root detached, then the root
//! remounted read-only when config.json asks. Runs after every mount, device and mask is in
//! place (they are made through init's paths) and before the process's identity changes
//! (pivot_root and the unmount need CAP_SYS_ADMIN).

use super::{mount::remount_bind, step, SetupError};
use crate::spec::Config;
use crate::sys::{ms, Sys};
use std::path::Path;

/// pivot_root into `rootfs`: afterwards `/` is the container's tree and nothing of init's
/// remains reachable (the old root is detached, not kept under a directory).
pub(super) fn enter_root(sys: &mut dyn Sys, cfg: &Config, rootfs: &Path) -> Result<(), SetupError> {
    let root = Path::new("/");
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
    Ok(())
}
