//! The kernel-backed [`Sys`]: rustix's safe calls where it has them (mount, umount, statvfs,
//! getcwd, mknod, fchdir, pivot_root, sethostname, setns, capset, prctl, sync), libc where it
//! has not or differs. libc stays for: setgroups/setresgid/setresuid (rustix's are per-thread
//! raw syscalls; libc's apply to every thread, as POSIX says), setrlimit (rustix's `Resource`
//! cannot be made from the number config.json names), seccomp, kill (rustix has no `kill(-1)`)
//! and the device-mapper ioctl. Those items carry `allow(unsafe_code)` and each block a
//! `// SAFETY:` comment.

use super::{ms, ns, CapSets, DevKind, Sys};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::thread::CapabilitySet;
use std::ffi::CString;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

/// The real kernel.
#[derive(Debug, Default)]
pub struct Real;

pub(crate) fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::ErrorKind::InvalidInput.into())
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn check_long(rc: libc::c_long) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The highest capability number the running kernel knows.
pub(crate) fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// `cap` as rustix's one-capability set (what its bounding and ambient calls take).
fn one_cap(cap: u32) -> CapabilitySet {
    CapabilitySet::from_bits_retain(1 << cap)
}

/// mount(2) the way [`Sys::mount`] takes it, one `MS_*` word, through rustix's call for each
/// of the kernel's cases, tested in the kernel's own order (`path_mount`): a remount (of a
/// bind or not), a bind, a propagation change, a move, else a new mount. Each passes the
/// kernel the same flags; the source and type the kernel ignores in a case are not passed.
fn mount(
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: u64,
    data: Option<&str>,
) -> io::Result<()> {
    let bits = u32::try_from(flags).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let src = source.map(cstr).transpose()?;
    let src = src.as_deref().unwrap_or(c"");
    if flags & ms::REMOUNT != 0 {
        // Without data, an empty option string, which every filesystem parses as none.
        let data = data.map(cstr).transpose()?;
        let rest = MountFlags::from_bits_retain(bits & !(ms::REMOUNT as u32));
        Ok(rustix::mount::mount_remount(target, rest, data.as_deref().unwrap_or(c""))?)
    } else if flags & ms::BIND != 0 {
        // The kernel reads only MS_REC beside MS_BIND here.
        if flags & ms::REC != 0 {
            Ok(rustix::mount::mount_bind_recursive(src, target)?)
        } else {
            Ok(rustix::mount::mount_bind(src, target)?)
        }
    } else if flags & ms::PROPAGATION != 0 {
        Ok(rustix::mount::mount_change(target, MountPropagationFlags::from_bits_retain(bits))?)
    } else if flags & ms::MOVE != 0 {
        Ok(rustix::mount::mount_move(src, target)?)
    } else {
        // The kernel refuses a new mount without a type (EINVAL), as it would a NULL one.
        let fstype = fstype.ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        let data = data.map(cstr).transpose()?;
        let f = MountFlags::from_bits_retain(bits);
        Ok(rustix::mount::mount(src, target, fstype, f, data.as_deref())?)
    }
}

impl Sys for Real {
    fn mount(
        &mut self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: u64,
        data: Option<&str>,
    ) -> io::Result<()> {
        mount(source, target, fstype, flags, data)
    }

    fn umount(&mut self, target: &Path, detach: bool) -> io::Result<()> {
        let flags = if detach { UnmountFlags::DETACH } else { UnmountFlags::empty() };
        Ok(rustix::mount::unmount(target, flags)?)
    }

    fn mkdir_all(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(mode).create(path)
    }

    fn touch(&mut self, path: &Path) -> io::Result<()> {
        if std::fs::symlink_metadata(path).is_ok() {
            return Ok(());
        }
        std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path).map(drop)
    }

    fn probe(&mut self, path: &Path) -> Option<bool> {
        std::fs::metadata(path).ok().map(|m| m.is_dir())
    }

    fn mount_flags(&mut self, path: &Path) -> u64 {
        use rustix::fs::StatVfsMountFlags as St;
        let Ok(st) = rustix::fs::statvfs(path) else { return 0 };
        // statvfs reports `ST_*` bits, which are not all the `MS_*` ones (ST_RELATIME).
        let table = [
            (St::RDONLY, ms::RDONLY),
            (St::NOSUID, ms::NOSUID),
            (St::NODEV, ms::NODEV),
            (St::NOEXEC, ms::NOEXEC),
            (St::SYNCHRONOUS, ms::SYNCHRONOUS),
            (St::NOATIME, ms::NOATIME),
            (St::NODIRATIME, ms::NODIRATIME),
            (St::RELATIME, ms::RELATIME),
        ];
        table.iter().filter(|(s, _)| st.f_flag.contains(*s)).fold(0, |acc, (_, m)| acc | m)
    }

    fn read_link(&mut self, path: &Path) -> Option<String> {
        std::fs::read_link(path).ok().map(|t| t.to_string_lossy().into_owned())
    }

    fn pin(&mut self, root: &Path, path: &Path) -> io::Result<super::Pinned> {
        super::inroot::pin(root, path)
    }

    fn resolve_in_root(&mut self, root: &Path, path: &str) -> io::Result<std::path::PathBuf> {
        match super::inroot::kernel_resolve(root, path) {
            Some(p) => Ok(p),
            None => super::inroot::secure_join(self, root, path),
        }
    }

    fn create_in(&mut self, root: &Path, path: &Path, node: super::Node<'_>) -> io::Result<()> {
        super::inroot::create_beneath(root, path, node)
    }

    fn getcwd(&mut self) -> io::Result<std::path::PathBuf> {
        use std::os::unix::ffi::OsStringExt;
        // rustix makes the raw call, not libc's getcwd: the check must not depend on whether
        // the C library turns the kernel's "(unreachable)" answer into an error.
        let buf = rustix::process::getcwd(Vec::new())?.into_bytes();
        if buf.first() != Some(&b'/') {
            let shown = String::from_utf8_lossy(&buf).into_owned();
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("the working directory {shown:?} is outside the root"),
            ));
        }
        Ok(std::ffi::OsString::from_vec(buf).into())
    }

    fn write_file(&mut self, path: &Path, data: &[u8]) -> io::Result<()> {
        use std::io::Write;
        std::fs::OpenOptions::new().write(true).open(path)?.write_all(data)
    }

    fn symlink(&mut self, target: &str, link: &Path) -> io::Result<()> {
        std::os::unix::fs::symlink(target, link)
    }

    fn mknod(
        &mut self,
        path: &Path,
        kind: DevKind,
        mode: u32,
        major: u64,
        minor: u64,
    ) -> io::Result<()> {
        let dev = super::inroot::dev_number(major, minor)?;
        let mode = rustix::fs::Mode::from_bits_retain(mode & 0o7777);
        let cwd = rustix::fs::CWD;
        Ok(rustix::fs::mknodat(cwd, path, super::inroot::file_type(kind), mode, dev)?)
    }

    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
    }

    fn chdir(&mut self, path: &Path) -> io::Result<()> {
        std::env::set_current_dir(path)
    }

    fn open_dir(&mut self, path: &Path) -> io::Result<std::fs::File> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(path)
    }

    fn fchdir(&mut self, dir: &std::fs::File) -> io::Result<()> {
        Ok(rustix::process::fchdir(dir)?)
    }

    fn pivot_root(&mut self, new_root: &Path, put_old: &Path) -> io::Result<()> {
        Ok(rustix::process::pivot_root(new_root, put_old)?)
    }

    fn chroot(&mut self, path: &Path) -> io::Result<()> {
        std::os::unix::fs::chroot(path)
    }

    fn sethostname(&mut self, name: &str) -> io::Result<()> {
        Ok(rustix::system::sethostname(name.as_bytes())?)
    }

    fn setns(&mut self, path: &Path, nstype: i32) -> io::Result<()> {
        use rustix::thread::LinkNameSpaceType as T;
        let kind = match nstype {
            0 => None,
            ns::NEWNS => Some(T::Mount),
            ns::NEWCGROUP => Some(T::ControlGroup),
            ns::NEWUTS => Some(T::HostNameAndNISDomainName),
            ns::NEWIPC => Some(T::InterProcessCommunication),
            ns::NEWUSER => Some(T::User),
            ns::NEWPID => Some(T::ProcessID),
            ns::NEWNET => Some(T::Network),
            _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
        };
        let f = std::fs::File::open(path)?;
        Ok(rustix::thread::move_into_link_name_space(f.as_fd(), kind)?)
    }

    #[allow(unsafe_code)]
    fn setrlimit(&mut self, resource: u32, soft: u64, hard: u64) -> io::Result<()> {
        let lim = libc::rlimit { rlim_cur: soft as libc::rlim_t, rlim_max: hard as libc::rlim_t };
        // SAFETY: lim is a valid rlimit struct alive for the call.
        check(unsafe { libc::setrlimit(resource as _, &lim) })
    }

    #[allow(unsafe_code)]
    fn set_ids(&mut self, uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
        rustix::thread::set_keep_capabilities(true)?;
        // SAFETY: the pointer and length describe `groups`, a slice of gid_t-sized integers.
        check(unsafe { libc::setgroups(groups.len() as _, groups.as_ptr()) })?;
        // SAFETY: integer-only syscall.
        check(unsafe { libc::setresgid(gid, gid, gid) })?;
        // SAFETY: integer-only syscall.
        check(unsafe { libc::setresuid(uid, uid, uid) })
    }

    fn drop_bounding(&mut self, keep: u64) -> io::Result<()> {
        for cap in 0..=last_cap().min(63) {
            if keep & (1 << cap) == 0 {
                match rustix::thread::remove_capability_from_bounding_set(one_cap(cap)) {
                    // A capability the kernel does not know is not in the set anyway.
                    Err(rustix::io::Errno::INVAL) => {}
                    r => r?,
                }
            }
        }
        Ok(())
    }

    fn set_caps(&mut self, c: &CapSets) -> io::Result<()> {
        let sets = rustix::thread::CapabilitySets {
            effective: CapabilitySet::from_bits_retain(c.effective),
            permitted: CapabilitySet::from_bits_retain(c.permitted),
            inheritable: CapabilitySet::from_bits_retain(c.inheritable),
        };
        rustix::thread::set_capabilities(None, sets)?;
        rustix::thread::clear_ambient_capability_set()?;
        for cap in 0..64u32 {
            if c.ambient & (1 << cap) != 0 {
                rustix::thread::configure_capability_in_ambient_set(one_cap(cap), true)?;
            }
        }
        Ok(())
    }

    fn no_new_privs(&mut self) -> io::Result<()> {
        Ok(rustix::thread::set_no_new_privs(true)?)
    }

    fn run_hooks(
        &mut self,
        phase: &'static str,
        hooks: &[crate::hooks::Hook],
        state: &[u8],
    ) -> io::Result<()> {
        crate::hooks::run_stdin(&mut crate::hooks::Exec, phase, hooks, state)
            .map_err(|e| io::Error::other(crate::console::chain(&e)))
    }

    #[allow(unsafe_code)]
    fn seccomp(&mut self, prog: &[crate::seccomp::Insn]) -> io::Result<()> {
        #[repr(C)]
        struct Fprog {
            len: u16,
            filter: *const crate::seccomp::Insn,
        }
        let len = u16::try_from(prog.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
        let fprog = Fprog { len, filter: prog.as_ptr() };
        const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
        // SAFETY: fprog points at `len` sock_filter-layout instructions alive for the call.
        check_long(unsafe {
            libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0 as libc::c_ulong, &fprog)
        })
    }

    fn sync(&mut self) {
        rustix::fs::sync()
    }

    #[allow(unsafe_code)]
    fn kill(&mut self, pid: i32, sig: i32) -> io::Result<()> {
        // SAFETY: integer-only syscall.
        check(unsafe { libc::kill(pid, sig) })
    }

    #[allow(unsafe_code)]
    fn dm_ioctl(&mut self, request: u32, buf: &mut [u8]) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        if buf.len() < crate::dm::IOCTL_SIZE {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let ctl = std::fs::OpenOptions::new().read(true).write(true).open("/dev/mapper/control")?;
        // SAFETY: `buf` is a live, writable buffer at least IOCTL_SIZE long (checked above) whose
        // header's data_size (crate::dm::ioctl_buffer) says how long it is; the kernel reads and
        // writes no more than that.
        check(unsafe { libc::ioctl(ctl.as_raw_fd(), request as _, buf.as_mut_ptr()) })
    }
}
