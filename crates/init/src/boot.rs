//! Early boot, LinuxKit's `init` + `rc.init` (docs/init.md, "Boot sequence") in one place: leave
//! the initramfs for a tmpfs (pivot_root refuses the initial rootfs, and every container needs
//! pivot_root), mount the API filesystems, then hostname, resolv.conf target, sysctl.
//!
//! The mount table is data ([`early_mounts`]) driven through [`Sys`], so its order is
//! unit-tested. Non-goals: cgroup v1, mdev/hotplug daemons, hwclock (the kernel's RTC driver
//! sets the clock).

use crate::sys::{ms, DevKind, Sys};
use std::path::Path;

/// One early mount: (source, target, fstype, flags, data, must_succeed).
type Early = (&'static str, &'static str, &'static str, u64, &'static str, bool);

const NOSUID_NODEV_NOEXEC: u64 = ms::NOSUID | ms::NODEV | ms::NOEXEC;

/// The mounts after /proc, in order. Optional ones (absent from a kernel) fail silently.
const MOUNTS: &[Early] = &[
    ("tmpfs", "/run", "tmpfs", NOSUID_NODEV_NOEXEC | ms::RELATIME, "size=10%,mode=755", true),
    ("tmpfs", "/tmp", "tmpfs", NOSUID_NODEV_NOEXEC | ms::RELATIME, "size=10%,mode=1777", true),
    ("tmpfs", "/var", "tmpfs", NOSUID_NODEV_NOEXEC | ms::RELATIME, "size=50%,mode=755", true),
    ("dev", "/dev", "devtmpfs", ms::NOSUID | ms::NOEXEC | ms::RELATIME, "size=10m,mode=755", true),
];

const DEV_MOUNTS: &[Early] = &[
    ("mqueue", "/dev/mqueue", "mqueue", NOSUID_NODEV_NOEXEC, "", true),
    ("shm", "/dev/shm", "tmpfs", NOSUID_NODEV_NOEXEC, "mode=1777", true),
    (
        "devpts",
        "/dev/pts",
        "devpts",
        ms::NOSUID | ms::NOEXEC,
        "gid=5,mode=0620,ptmxmode=0666",
        true,
    ),
    ("sysfs", "/sys", "sysfs", NOSUID_NODEV_NOEXEC, "", true),
    ("securityfs", "/sys/kernel/security", "securityfs", NOSUID_NODEV_NOEXEC, "", false),
    ("debugfs", "/sys/kernel/debug", "debugfs", NOSUID_NODEV_NOEXEC, "", false),
    ("configfs", "/sys/kernel/config", "configfs", NOSUID_NODEV_NOEXEC, "", false),
    ("fusectl", "/sys/fs/fuse/connections", "fusectl", NOSUID_NODEV_NOEXEC, "", false),
    ("pstore", "/sys/fs/pstore", "pstore", NOSUID_NODEV_NOEXEC, "", false),
    ("bpf", "/sys/fs/bpf", "bpf", NOSUID_NODEV_NOEXEC, "", false),
    ("efivarfs", "/sys/firmware/efi/efivars", "efivarfs", NOSUID_NODEV_NOEXEC, "", false),
    ("binfmt_misc", "/proc/sys/fs/binfmt_misc", "binfmt_misc", NOSUID_NODEV_NOEXEC, "", false),
    ("cgroup2", "/sys/fs/cgroup", "cgroup2", NOSUID_NODEV_NOEXEC | ms::RELATIME, "", true),
];

const VAR_DIRS: &[(&str, u32)] = &[
    ("/var/cache", 0o755),
    ("/var/empty", 0o555),
    ("/var/lib", 0o755),
    ("/var/local", 0o755),
    ("/var/lock", 0o755),
    ("/var/log", 0o755),
    ("/var/opt", 0o755),
    ("/var/spool", 0o755),
    ("/var/tmp", 0o1777),
];

const DEV_NODES: &[(&str, u32, u64, u64)] = &[
    ("/dev/console", 0o600, 5, 1),
    ("/dev/tty1", 0o620, 4, 1),
    ("/dev/tty", 0o666, 5, 0),
    ("/dev/null", 0o666, 1, 3),
    ("/dev/kmsg", 0o660, 1, 11),
];

const DEV_LINKS: &[(&str, &str)] = &[
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
    ("/dev/kcore", "/proc/kcore"),
];

fn mount_early(sys: &mut dyn Sys, m: &Early, warnings: &mut Vec<String>) {
    let (src, target, fstype, flags, data, required) = *m;
    let data = (!data.is_empty()).then_some(data);
    let t = Path::new(target);
    if sys.probe(t).is_none() {
        let _ = sys.mkdir_all(t, 0o755);
    }
    if let Err(e) = sys.mount(Some(src), t, Some(fstype), flags, data) {
        if required {
            warnings.push(format!("mounting {fstype} on {target}: {e}"));
        }
    }
}

/// Mounts the API filesystems in LinuxKit's order and makes `/` read-only and shared.
/// `/proc` must already be mounted ([`mount_proc`]). Returns the failures of required steps.
pub fn early_mounts(sys: &mut dyn Sys) -> Vec<String> {
    let mut w = Vec::new();
    // Mount points first: the root becomes read-only next.
    for (_, target, ..) in MOUNTS {
        if sys.probe(Path::new(target)).is_none() {
            let _ = sys.mkdir_all(Path::new(target), 0o755);
        }
    }
    // LinuxKit remounts the root read-only and ignores failure; containers write to tmpfs.
    let _ = sys.mount(None, Path::new("/"), None, ms::REMOUNT | ms::RDONLY, None);
    for m in MOUNTS {
        mount_early(sys, m, &mut w);
        if m.1 == "/var" {
            for (d, mode) in VAR_DIRS {
                let _ = sys.mkdir_all(Path::new(d), *mode);
            }
            let _ = sys.symlink("/run", Path::new("/var/run"));
        }
    }
    // devtmpfs already holds most nodes; these cover a kernel that lacks them (EEXIST ignored).
    for (p, mode, major, minor) in DEV_NODES {
        let _ = sys.mknod(Path::new(p), DevKind::Char, *mode, *major, *minor);
    }
    for (link, target) in DEV_LINKS {
        let _ = sys.symlink(target, Path::new(link));
    }
    for (d, mode) in [("/dev/mqueue", 0o1777), ("/dev/shm", 0o1777), ("/dev/pts", 0o755)] {
        let _ = sys.mkdir_all(Path::new(d), mode);
    }
    for m in DEV_MOUNTS {
        mount_early(sys, m, &mut w);
    }
    if let Err(e) = sys.mount(None, Path::new("/"), None, ms::REC | ms::SHARED, None) {
        w.push(format!("making / shared: {e}"));
    }
    w
}

/// Mounts /proc (the first thing init needs, to read the command line and the mount table).
pub fn mount_proc(sys: &mut dyn Sys) -> std::io::Result<()> {
    let _ = sys.mkdir_all(Path::new("/proc"), 0o555);
    let flags = ms::NODEV | ms::NOSUID | ms::NOEXEC | ms::RELATIME;
    sys.mount(Some("proc"), Path::new("/proc"), Some("proc"), flags, None)
}

/// True when `/proc/mounts` says `/` is the kernel's initial rootfs (an initramfs).
pub fn root_is_initramfs(proc_mounts: &str) -> bool {
    proc_mounts.lines().any(|l| {
        let mut w = l.split_whitespace();
        let (_, target, fstype) = (w.next(), w.next(), w.next());
        target == Some("/") && fstype == Some("rootfs")
    })
}

/// The hostname: `/etc/hostname` if present, else `linuxkit-<eth0 MAC without colons>` as
/// LinuxKit's rc.init, else nothing.
pub fn hostname(etc_hostname: Option<&str>, eth0_mac: Option<&str>) -> Option<String> {
    if let Some(h) = etc_hostname.map(str::trim).filter(|h| !h.is_empty()) {
        return Some(h.to_owned());
    }
    eth0_mac.map(|m| format!("linuxkit-{}", m.trim().replace(':', ""))).filter(|h| h.len() > 9)
}

/// `key = value` lines of a sysctl.conf → (`/proc/sys/...` path, value).
pub fn sysctl_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                format!("/proc/sys/{}", k.trim().trim_start_matches('-').replace('.', "/")),
                v.trim().to_owned(),
            )
        })
        .collect()
}

/// Copies the initramfs into a fresh tmpfs and makes that the root (what LinuxKit's `/init`
/// does before exec'ing busybox init). Files are removed from the initramfs as they are copied,
/// so memory use peaks at one file, not a second copy of the image.
#[cfg(target_os = "linux")]
pub fn switch_to_tmpfs(sys: &mut dyn Sys) -> std::io::Result<()> {
    let new = Path::new("/.baleen-root");
    sys.mkdir_all(new, 0o755)?;
    sys.mount(Some("rootfs"), new, Some("tmpfs"), 0, Some("mode=755"))?;
    let root_dev = std::fs::symlink_metadata("/")?.dev();
    copy::move_tree(Path::new("/"), new, root_dev, new)?;
    sys.chdir(new)?;
    sys.mount(Some("."), Path::new("/"), None, ms::MOVE, None)?;
    sys.chroot(Path::new("."))?;
    sys.chdir(Path::new("/"))
}

#[cfg(target_os = "linux")]
use std::os::unix::fs::MetadataExt;

#[cfg(target_os = "linux")]
mod copy {
    use std::collections::HashMap;
    use std::fs;
    use std::io;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    use std::path::Path;

    /// Moves the contents of `from` into `to`, staying on device `dev` and skipping `skip`.
    pub fn move_tree(from: &Path, to: &Path, dev: u64, skip: &Path) -> io::Result<()> {
        let mut links = HashMap::new();
        walk(from, to, dev, skip, &mut links)
    }

    fn walk(
        from: &Path,
        to: &Path,
        dev: u64,
        skip: &Path,
        links: &mut HashMap<u64, std::path::PathBuf>,
    ) -> io::Result<()> {
        let mut sys = crate::sys::real::Real;
        for e in fs::read_dir(from)? {
            let e = e?;
            let src = e.path();
            if src == skip {
                continue;
            }
            let md = fs::symlink_metadata(&src)?;
            if md.dev() != dev {
                continue; // a mount point's contents belong to that mount
            }
            let dst = to.join(e.file_name());
            let ft = md.file_type();
            if ft.is_dir() {
                fs::create_dir(&dst)?;
                walk(&src, &dst, dev, skip, links)?;
                let _ = fs::remove_dir(&src);
            } else if ft.is_symlink() {
                std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
                let _ = fs::remove_file(&src);
            } else if ft.is_file() {
                if md.nlink() > 1 {
                    if let Some(first) = links.get(&md.ino()) {
                        fs::hard_link(first, &dst)?;
                        let _ = fs::remove_file(&src);
                        continue;
                    }
                    links.insert(md.ino(), dst.clone());
                }
                fs::copy(&src, &dst)?;
                let _ = fs::remove_file(&src);
            } else {
                use crate::sys::{DevKind, Sys};
                let kind = if ft.is_block_device() {
                    DevKind::Block
                } else if ft.is_fifo() {
                    DevKind::Fifo
                } else if ft.is_char_device() {
                    DevKind::Char
                } else {
                    continue; // sockets are not carried over
                };
                let rdev = md.rdev();
                let (major, minor) = (libc::major(rdev), libc::minor(rdev));
                sys.mknod(&dst, kind, md.mode(), major.into(), minor.into())?;
                let _ = fs::remove_file(&src);
            }
            let _ = std::os::unix::fs::lchown(&dst, Some(md.uid()), Some(md.gid()));
            if !ft.is_symlink() {
                fs::set_permissions(&dst, fs::Permissions::from_mode(md.mode() & 0o7777))?;
                if let Ok(f) = fs::File::open(&dst) {
                    let times = fs::FileTimes::new()
                        .set_accessed(md.accessed()?)
                        .set_modified(md.modified()?);
                    let _ = f.set_times(times);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::Fake;

    #[test]
    fn early_mounts_follow_linuxkit_order() {
        let mut f = Fake::new().dir("/run").dir("/tmp").dir("/dev").dir("/sys");
        f.fail.push("mount securityfs".into());
        let w = early_mounts(&mut f);
        assert!(w.is_empty(), "optional mounts fail silently: {w:?}");
        let mounts: Vec<&str> = f.matching("mount ");
        let targets: Vec<&str> =
            mounts.iter().map(|l| l.split_whitespace().nth(2).unwrap()).collect();
        assert_eq!(
            targets,
            [
                "/",
                "/run",
                "/tmp",
                "/var",
                "/dev",
                "/dev/mqueue",
                "/dev/shm",
                "/dev/pts",
                "/sys",
                "/sys/kernel/security",
                "/sys/kernel/debug",
                "/sys/kernel/config",
                "/sys/fs/fuse/connections",
                "/sys/fs/pstore",
                "/sys/fs/bpf",
                "/sys/firmware/efi/efivars",
                "/proc/sys/fs/binfmt_misc",
                "/sys/fs/cgroup",
                "/",
            ]
        );
        assert_eq!(mounts[0], "mount - / - remount|ro -");
        assert_eq!(mounts[4], "mount dev /dev devtmpfs nosuid|noexec|relatime size=10m,mode=755");
        assert_eq!(
            mounts[17],
            "mount cgroup2 /sys/fs/cgroup cgroup2 nosuid|nodev|noexec|relatime -"
        );
        assert_eq!(*mounts.last().unwrap(), "mount - / - rec|shared -");
        // /var is created before / turns read-only; its subdirectories after the tmpfs.
        let pos = |s: &str| f.calls.iter().position(|c| c.starts_with(s)).unwrap();
        assert!(pos("mkdir /var 755") < pos("mount - / - remount|ro"));
        assert!(pos("mount tmpfs /var") < pos("mkdir /var/log"));
        assert!(f.calls.contains(&"symlink /var/run -> /run".to_owned()));
    }

    #[test]
    fn a_required_mount_failure_is_reported() {
        let mut f = Fake::new();
        f.fail.push("mount cgroup2".into());
        let w = early_mounts(&mut f);
        assert_eq!(w.len(), 1);
        assert!(w[0].starts_with("mounting cgroup2 on /sys/fs/cgroup: "), "{w:?}");
    }

    #[test]
    fn detects_initramfs_root() {
        assert!(root_is_initramfs("rootfs / rootfs rw 0 0\nproc /proc proc rw 0 0\n"));
        assert!(!root_is_initramfs("/dev/vda1 / ext4 rw 0 0\n"));
    }

    #[test]
    fn hostname_prefers_etc_hostname() {
        assert_eq!(hostname(Some("box\n"), Some("52:54:00:12:34:56")).unwrap(), "box");
        assert_eq!(hostname(None, Some("52:54:00:12:34:56\n")).unwrap(), "linuxkit-525400123456");
        assert_eq!(hostname(Some(" "), None), None);
    }

    #[test]
    fn sysctl_conf_lines() {
        let v = sysctl_lines("# c\nnet.ipv4.ip_forward = 1\n\n-kernel.panic=10\n");
        assert_eq!(
            v,
            [
                ("/proc/sys/net/ipv4/ip_forward".to_owned(), "1".to_owned()),
                ("/proc/sys/kernel/panic".to_owned(), "10".to_owned())
            ]
        );
    }
}
