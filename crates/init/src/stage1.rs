//! Stage 1: baleen-init in the small initrd that `kernel+squashfs`, `kernel+erofs` and
//! `kernel+iso` boot with (`B-root-initrd.img`). Debian's cloud kernel has the disk drivers and
//! filesystems as modules, so something must load them before the root can be mounted.
//!
//! It runs only as PID 1 in an initramfs that carries [`MARKER`] (whose lines name the modules
//! to load) with `root=` on the command line; a full system's initrd has no marker. Steps, each
//! logged with a protocol line: mount devtmpfs/proc/sysfs, load the modules, wait for the root
//! device (10 s at most), mount it read-only by the type its magic says ([`fs_type`]), put a
//! tmpfs-backed overlay on top (the system is writable in RAM, as LinuxKit's), make that the
//! root, and exec its `/init` — the full baleen-init, which then boots normally on a root that
//! is not an initramfs.
//!
//! With `roothash=` on the command line (`baleen build --verity`), the root is first mapped
//! through device-mapper's `verity` target ([`crate::dm`]) and mounted from `/dev/dm-N`: a block
//! that does not match the root hash reads as EIO, so the probe or the mount fails, and stage 1
//! stops with one `error stage1: verity: …` line and powers off with status 1.
//!
//! `root=` and `baleen.verity_hash=` name a device node or `PARTUUID=U`, the GPT partition
//! with that unique GUID ([`crate::partuuid`]; the EFI disks' `--root` partitions are found so).
//!
//! Non-goals: `rootflags=`, filesystem UUID/LABEL root names, encrypted or network roots, freeing the
//! initramfs after the switch (it holds only init and a dozen modules).

use crate::sys::{ms, Sys};
use std::path::Path;

/// The file that makes an initramfs a stage-1 one.
pub const MARKER: &str = "/etc/baleen-stage1";

/// Where the pieces are mounted before the switch.
pub const LOWER: &str = "/.baleen/lower";
pub const RW: &str = "/.baleen/rw";
pub const NEW_ROOT: &str = "/.baleen/root";

/// How long the root device may take to appear.
pub const DEVICE_WAIT_MS: u64 = 10_000;

/// Bytes of the device [`fs_type`] needs to see.
pub const PROBE_BYTES: usize = 32_774;

/// The filesystem type a device's first bytes announce: squashfs (`hsqs` at 0), erofs (magic at
/// 1024), ext4 (0xEF53 at 1080), iso9660 (`CD001` at 32769).
pub fn fs_type(head: &[u8]) -> Option<&'static str> {
    let at = |o: usize, m: &[u8]| head.get(o..o + m.len()) == Some(m);
    if at(0, b"hsqs") {
        Some("squashfs")
    } else if at(1024, &0xE0F5_E1E2u32.to_le_bytes()) {
        Some("erofs")
    } else if at(1080, &0xEF53u16.to_le_bytes()) {
        Some("ext4")
    } else if at(32769, b"CD001") {
        Some("iso9660")
    } else {
        None
    }
}

/// The root device and the type forced by `rootfstype=`, from the kernel command line (the
/// last word of each wins, as in the kernel).
pub fn root_arg(cmdline: &str) -> Option<(String, Option<String>)> {
    let mut root = None;
    let mut fstype = None;
    for w in cmdline.split_whitespace() {
        if let Some(v) = w.strip_prefix("root=") {
            root = Some(v.to_owned());
        } else if let Some(v) = w.strip_prefix("rootfstype=") {
            fstype = Some(v.to_owned());
        }
    }
    root.filter(|r| !r.is_empty()).map(|r| (r, fstype))
}

/// The modules the marker names, one per line (`#` comments and blank lines skipped).
pub fn marker_modules(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The overlay's mount options over `lower` with the upper and work directories in `rw`.
pub fn overlay_options(lower: &str, rw: &str) -> String {
    format!("lowerdir={lower},upperdir={rw}/upper,workdir={rw}/work")
}

/// Whether to run stage 1: root is an initramfs, the marker is there, and `root=` names a device.
pub fn wanted(root_is_initramfs: bool, marker_present: bool, cmdline: &str) -> bool {
    root_is_initramfs && marker_present && root_arg(cmdline).is_some()
}

/// A step of [`mount_root`] or [`switch_root`] that failed; the kernel's answer is the source.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("mounting {root} ({fstype}) read-only on {LOWER}")]
    Lower { root: String, fstype: String, source: std::io::Error },
    #[error("mounting a tmpfs on {RW}")]
    Tmpfs { source: std::io::Error },
    #[error("mounting the overlay {options} on {NEW_ROOT}")]
    Overlay { options: String, source: std::io::Error },
    #[error("switching to the root on {NEW_ROOT}")]
    Switch { source: std::io::Error },
}

/// Mounts `root` read-only as `fstype` on [`LOWER`], a tmpfs on [`RW`], and the overlay of both
/// on [`NEW_ROOT`]. The error says which step failed on what.
pub fn mount_root(sys: &mut dyn Sys, root: &str, fstype: &str) -> Result<(), RootError> {
    for d in [LOWER, RW, NEW_ROOT] {
        let _ = sys.mkdir_all(Path::new(d), 0o755);
    }
    sys.mount(Some(root), Path::new(LOWER), Some(fstype), ms::RDONLY, None).map_err(|source| {
        RootError::Lower { root: root.to_owned(), fstype: fstype.to_owned(), source }
    })?;
    sys.mount(Some("tmpfs"), Path::new(RW), Some("tmpfs"), 0, Some("mode=755"))
        .map_err(|source| RootError::Tmpfs { source })?;
    for d in ["upper", "work"] {
        let _ = sys.mkdir_all(&Path::new(RW).join(d), 0o755);
    }
    let options = overlay_options(LOWER, RW);
    sys.mount(Some("overlay"), Path::new(NEW_ROOT), Some("overlay"), 0, Some(&options))
        .map_err(|source| RootError::Overlay { options, source })
}

/// Drops stage 1's API mounts (the root's init makes its own) and makes [`NEW_ROOT`] the root:
/// chdir, move it onto `/`, chroot, chdir — what busybox's `switch_root` does, minus deleting
/// the initramfs.
pub fn switch_root(sys: &mut dyn Sys) -> Result<(), RootError> {
    for d in ["/sys", "/proc", "/dev"] {
        let _ = sys.umount(Path::new(d), true);
    }
    sys.chdir(Path::new(NEW_ROOT))
        .and_then(|()| sys.mount(Some("."), Path::new("/"), None, ms::MOVE, None))
        .and_then(|()| sys.chroot(Path::new(".")))
        .and_then(|()| sys.chdir(Path::new("/")))
        .map_err(|source| RootError::Switch { source })
}

#[cfg(target_os = "linux")]
pub use real::run;

#[cfg(target_os = "linux")]
mod real {
    use super::*;
    use crate::console::{chain, event};
    use crate::modules;
    use std::io::Read;
    use std::os::unix::process::CommandExt;

    fn fail(msg: &str) -> ! {
        event(&format!("error stage1: {msg}"));
        crate::shutdown::power(crate::shutdown::Action::Poweroff, 1)
    }

    /// Block devices the kernel knows, for the error when the root never appears.
    fn block_devices() -> String {
        let mut v: Vec<String> = std::fs::read_dir("/sys/class/block")
            .map(|rd| {
                rd.flatten().map(|e| format!("/dev/{}", e.file_name().to_string_lossy())).collect()
            })
            .unwrap_or_default();
        v.sort();
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(" ")
        }
    }

    fn load_modules(names: &[String]) {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let ix = modules::Index::load(&Path::new("/lib/modules").join(release.trim()));
        for r in modules::load(&ix, names, &mut modules::Kernel) {
            // Names the kernel builds in are not in the index: not an error.
            if !r.ends_with("not found") {
                event(&format!("warning stage1: {r}"));
            }
        }
    }

    fn wait_for(dev: &Path) -> bool {
        resolve(dev.to_str().unwrap_or_default()).is_some()
    }

    /// The node `spec` (a path, or `PARTUUID=U`) names, once it opens; `None` when it has not
    /// appeared within [`DEVICE_WAIT_MS`].
    fn resolve(spec: &str) -> Option<String> {
        let step = 50;
        for _ in 0..DEVICE_WAIT_MS / step {
            let node = match crate::partuuid::partuuid(spec) {
                Some(u) => crate::partuuid::find(u),
                None => Some(spec.to_owned()),
            };
            if let Some(node) = node.filter(|n| std::fs::File::open(n).is_ok()) {
                return Some(node);
            }
            std::thread::sleep(std::time::Duration::from_millis(step));
        }
        None
    }

    /// Mounts the root named on the command line and execs its `/init`. Never returns.
    pub fn run(sys: &mut dyn Sys, cmdline: &str) -> ! {
        event("stage1 started");
        let Some((root, forced)) = root_arg(cmdline) else { fail("no root= on the command line") };
        let api = [
            ("devtmpfs", "/dev", "devtmpfs", ms::NOSUID),
            ("sysfs", "/sys", "sysfs", ms::NOSUID | ms::NODEV | ms::NOEXEC),
        ];
        for (src, target, fstype, flags) in api {
            let _ = sys.mkdir_all(Path::new(target), 0o755);
            if let Err(e) = sys.mount(Some(src), Path::new(target), Some(fstype), flags, None) {
                event(&format!("warning stage1: mounting {fstype} on {target}: {e}"));
            }
        }
        let text = std::fs::read_to_string(MARKER).unwrap_or_default();
        load_modules(&marker_modules(&text));
        event("stage1 modules loaded");

        let missing = |what: &str, spec: &str| -> ! {
            fail(&format!(
                "{what} {spec} did not appear within {} s; block devices: {}",
                DEVICE_WAIT_MS / 1000,
                block_devices()
            ))
        };
        let Some(root) = resolve(&root) else { missing("root device", &root) };
        let verity =
            crate::dm::verity_args(cmdline).unwrap_or_else(|e| fail(&format!("verity: {e}")));
        // What a failure below is blamed on: with verity, a read error is a block that does not
        // match the root hash.
        let (root, why) = match &verity {
            None => (root, String::new()),
            Some(args) => {
                let hash = args.hash_device.as_deref().map(|spec| {
                    resolve(spec).unwrap_or_else(|| missing("verity hash device", spec))
                });
                let node = crate::dm::open_verity(sys, &root, hash.as_deref(), args)
                    .unwrap_or_else(|e| fail(&format!("verity: mapping {root}: {}", chain(&e))));
                if !wait_for(Path::new(&node)) {
                    fail(&format!("verity: {node} for {root} did not appear"));
                }
                event(&format!("stage1 verity {root} as {node} roothash={}", args.root_hash));
                let why = args.blame(&root);
                (node, why)
            }
        };
        let mut head = Vec::with_capacity(PROBE_BYTES);
        let read = std::fs::File::open(&root)
            .and_then(|f| f.take(PROBE_BYTES as u64).read_to_end(&mut head));
        if let Err(e) = read {
            fail(&format!("{why}reading {root}: {e}"));
        }
        let fstype = match forced.as_deref().or(fs_type(&head)) {
            Some(t) => t.to_owned(),
            None => fail(&format!(
                "{root} holds no squashfs, erofs, iso9660 or ext4 filesystem (give rootfstype=)"
            )),
        };
        event(&format!("stage1 root {root} {fstype}"));

        if let Err(e) = mount_root(sys, &root, &fstype) {
            fail(&format!("{why}{}", chain(&e)));
        }
        event("stage1 root mounted");

        if let Err(e) = switch_root(sys) {
            fail(&chain(&e));
        }
        event("stage1 switching root");
        let e = std::process::Command::new("/init").exec();
        fail(&format!("exec /init of the new root: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(at: usize, magic: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; PROBE_BYTES];
        v[at..at + magic.len()].copy_from_slice(magic);
        v
    }

    #[test]
    fn filesystem_types_from_their_magic() {
        assert_eq!(fs_type(&with(0, b"hsqs")), Some("squashfs"));
        assert_eq!(fs_type(&with(1024, &[0xe2, 0xe1, 0xf5, 0xe0])), Some("erofs"));
        assert_eq!(fs_type(&with(1080, &[0x53, 0xef])), Some("ext4"));
        assert_eq!(fs_type(&with(32769, b"CD001")), Some("iso9660"));
        assert_eq!(fs_type(&vec![0u8; PROBE_BYTES]), None);
        assert_eq!(fs_type(b"hsq"), None, "a short read is no squashfs");
        assert_eq!(fs_type(&with(32769, b"CD001")[..32770]), None, "cut before the magic ends");
    }

    #[test]
    fn root_and_type_from_the_command_line() {
        assert_eq!(root_arg("console=ttyS0 root=/dev/sda"), Some(("/dev/sda".into(), None)));
        assert_eq!(
            root_arg("root=/dev/vda root=/dev/sr0 rootfstype=iso9660 quiet"),
            Some(("/dev/sr0".into(), Some("iso9660".into()))),
            "the last root= wins"
        );
        assert_eq!(root_arg("console=ttyS0"), None);
        assert_eq!(root_arg("root="), None);
    }

    #[test]
    fn stage1_only_with_marker_initramfs_and_root() {
        assert!(wanted(true, true, "root=/dev/sda"));
        assert!(!wanted(false, true, "root=/dev/sda"), "already on a real root");
        assert!(!wanted(true, false, "root=/dev/sda"), "a full system initrd has no marker");
        assert!(!wanted(true, true, "console=ttyS0"), "no root named");
    }

    #[test]
    fn root_mounted_read_only_under_a_tmpfs_overlay_then_switched() {
        use crate::sys::fake::Fake;
        let mut f = Fake::new();
        mount_root(&mut f, "/dev/sda", "erofs").unwrap();
        switch_root(&mut f).unwrap();
        let mounts: Vec<&str> = f.matching("mount");
        assert_eq!(mounts.len(), 4, "{:?}", f.calls);
        assert!(
            mounts[0].starts_with("mount /dev/sda /.baleen/lower erofs")
                && mounts[0].contains("ro"),
            "{}",
            mounts[0]
        );
        assert!(mounts[1].starts_with("mount tmpfs /.baleen/rw tmpfs"), "{}", mounts[1]);
        assert!(
            mounts[2].ends_with(
                "lowerdir=/.baleen/lower,upperdir=/.baleen/rw/upper,workdir=/.baleen/rw/work"
            ),
            "{}",
            mounts[2]
        );
        assert!(
            mounts[3].starts_with("mount . / - ") && mounts[3].contains("move"),
            "{}",
            mounts[3]
        );
        let pos = |p: &str| {
            f.calls
                .iter()
                .position(|c| c.starts_with(p))
                .unwrap_or_else(|| panic!("{p}: {:?}", f.calls))
        };
        assert!(
            pos("mkdir /.baleen/rw/upper") < pos("mount overlay"),
            "upper exists before the overlay"
        );
        assert!(pos("umount /dev") < pos("mount . /"), "stage 1's /dev goes before the switch");
        assert!(pos("mount . /") < pos("chroot ."));
    }

    #[test]
    fn a_failed_root_mount_names_the_device_and_type() {
        use crate::sys::fake::Fake;
        let mut f = Fake::new();
        f.fail.push("mount /dev/sr0".into());
        let e = mount_root(&mut f, "/dev/sr0", "iso9660").unwrap_err();
        let e = crate::console::chain(&e);
        assert!(e.starts_with("mounting /dev/sr0 (iso9660) read-only on"), "{e}");
        assert!(f.matching("mount overlay").is_empty(), "nothing mounted over a missing lower");
    }

    #[test]
    fn marker_lists_modules() {
        assert_eq!(marker_modules("# modules\nvirtio_pci\n\n sd_mod \n"), ["virtio_pci", "sd_mod"]);
        assert_eq!(overlay_options("/l", "/rw"), "lowerdir=/l,upperdir=/rw/upper,workdir=/rw/work");
    }
}
