//! The kernel-backed [`Sys`]: thin wrappers over libc. Each `unsafe` block passes pointers to
//! NUL-terminated strings or plain structs that outlive the call.

use super::{CapSets, DevKind, Sys};
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The real kernel.
#[derive(Debug, Default)]
pub struct Real;

pub(crate) fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput.into())
}

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

/// `prctl` with integer arguments.
pub(crate) fn prctl(op: libc::c_int, a: libc::c_ulong, b: libc::c_ulong) -> io::Result<()> {
    // SAFETY: prctl with integer-only arguments reads and writes no user memory.
    check(unsafe { libc::prctl(op, a, b, 0 as libc::c_ulong, 0 as libc::c_ulong) })
}

/// The highest capability number the running kernel knows.
pub(crate) fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
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
        let src = source.map(cstr).transpose()?;
        let tgt = cpath(target)?;
        let fst = fstype.map(cstr).transpose()?;
        let dat = data.map(cstr).transpose()?;
        let p = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
        // SAFETY: every pointer is NULL or a NUL-terminated string alive for the call.
        check(unsafe {
            libc::mount(p(&src), tgt.as_ptr(), p(&fst), flags as libc::c_ulong, p(&dat).cast())
        })
    }

    fn umount(&mut self, target: &Path, detach: bool) -> io::Result<()> {
        let tgt = cpath(target)?;
        let flags = if detach { libc::MNT_DETACH } else { 0 };
        // SAFETY: tgt is a NUL-terminated string alive for the call.
        check(unsafe { libc::umount2(tgt.as_ptr(), flags) })
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
        let Ok(p) = cpath(path) else { return 0 };
        // SAFETY: statvfs is plain data that the call fills.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: p is NUL-terminated and st a valid statvfs, both alive for the call.
        if unsafe { libc::statvfs(p.as_ptr(), &mut st) } != 0 {
            return 0;
        }
        use super::ms;
        const ST: [(u64, u64); 8] = [
            (1, ms::RDONLY),
            (2, ms::NOSUID),
            (4, ms::NODEV),
            (8, ms::NOEXEC),
            (16, ms::SYNCHRONOUS),
            (1024, ms::NOATIME),
            (2048, ms::NODIRATIME),
            (4096, ms::RELATIME),
        ];
        let f = st.f_flag as u64;
        ST.iter().filter(|(st, _)| f & st != 0).fold(0, |acc, (_, m)| acc | m)
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
        let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
        // The raw call, not libc's getcwd: the check must not depend on whether the C library
        // turns the kernel's "(unreachable)" answer into an error.
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
        check_long(n)?;
        let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        buf.truncate(len);
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
        let p = cpath(path)?;
        let fmt = match kind {
            DevKind::Char => libc::S_IFCHR,
            DevKind::Block => libc::S_IFBLK,
            DevKind::Fifo => libc::S_IFIFO,
        };
        let dev = libc::makedev(major as u32, minor as u32);
        // SAFETY: p is a NUL-terminated string alive for the call.
        check(unsafe { libc::mknod(p.as_ptr(), fmt | (mode & 0o7777), dev) })
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
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor belongs to `dir`, which outlives the call.
        check(unsafe { libc::fchdir(dir.as_raw_fd()) })
    }

    fn pivot_root(&mut self, new_root: &Path, put_old: &Path) -> io::Result<()> {
        let a = cpath(new_root)?;
        let b = cpath(put_old)?;
        // SAFETY: both arguments are NUL-terminated strings alive for the call.
        check_long(unsafe { libc::syscall(libc::SYS_pivot_root, a.as_ptr(), b.as_ptr()) })
    }

    fn chroot(&mut self, path: &Path) -> io::Result<()> {
        std::os::unix::fs::chroot(path)
    }

    fn sethostname(&mut self, name: &str) -> io::Result<()> {
        // SAFETY: the pointer and length describe `name`'s bytes.
        check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) })
    }

    fn setns(&mut self, path: &Path, nstype: i32) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(path)?;
        // SAFETY: setns takes a file descriptor we own for the duration of the call.
        check(unsafe { libc::setns(f.as_raw_fd(), nstype) })
    }

    fn setrlimit(&mut self, resource: u32, soft: u64, hard: u64) -> io::Result<()> {
        let lim = libc::rlimit { rlim_cur: soft as libc::rlim_t, rlim_max: hard as libc::rlim_t };
        // SAFETY: lim is a valid rlimit struct alive for the call.
        check(unsafe { libc::setrlimit(resource as _, &lim) })
    }

    fn set_ids(&mut self, uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
        prctl(libc::PR_SET_KEEPCAPS, 1, 0)?;
        // SAFETY: the pointer and length describe `groups`, a slice of gid_t-sized integers.
        check(unsafe { libc::setgroups(groups.len() as _, groups.as_ptr()) })?;
        // SAFETY: integer-only syscall.
        check(unsafe { libc::setresgid(gid, gid, gid) })?;
        // SAFETY: integer-only syscall.
        check(unsafe { libc::setresuid(uid, uid, uid) })
    }

    fn drop_bounding(&mut self, keep: u64) -> io::Result<()> {
        for cap in 0..=last_cap() {
            if keep & (1 << cap) == 0 {
                match prctl(libc::PR_CAPBSET_DROP, cap.into(), 0) {
                    // A capability the kernel does not know is not in the set anyway.
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                    r => r?,
                }
            }
        }
        Ok(())
    }

    fn set_caps(&mut self, c: &CapSets) -> io::Result<()> {
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let hdr = Header { version: 0x2008_0522, pid: 0 }; // _LINUX_CAPABILITY_VERSION_3
        let word = |m: u64, i: u32| (m >> (32 * i)) as u32;
        let data = [0, 1].map(|i| Data {
            effective: word(c.effective, i),
            permitted: word(c.permitted, i),
            inheritable: word(c.inheritable, i),
        });
        // SAFETY: hdr and the two-element data array are the v3 layout capset expects.
        check_long(unsafe { libc::syscall(libc::SYS_capset, &hdr, data.as_ptr()) })?;
        prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as _, 0)?;
        for cap in 0..64u64 {
            if c.ambient & (1 << cap) != 0 {
                prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE as _, cap as _)?;
            }
        }
        Ok(())
    }

    fn no_new_privs(&mut self) -> io::Result<()> {
        prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0)
    }

    fn run_hooks(
        &mut self,
        phase: &'static str,
        hooks: &[crate::hooks::Hook],
        state: &[u8],
    ) -> io::Result<()> {
        crate::hooks::run_stdin(&mut crate::hooks::Exec, phase, hooks, state)
            .map_err(|e| io::Error::other(e.to_string()))
    }

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
        // SAFETY: sync takes no arguments.
        unsafe { libc::sync() }
    }

    fn kill(&mut self, pid: i32, sig: i32) -> io::Result<()> {
        // SAFETY: integer-only syscall.
        check(unsafe { libc::kill(pid, sig) })
    }

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
