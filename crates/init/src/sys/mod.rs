//! The syscall seam: every privileged call init makes while setting up the system or a container
//! goes through [`Sys`], so the order of mounts, the capability sets and the shutdown sequence
//! can be unit-tested with the recording [`fake::Fake`] without root. [`real::Real`] is the only
//! implementation that touches the kernel.
//!
//! Non-goals: process creation, pipes and the event loop stay outside the seam (they are tested
//! by the qemu boot), because faking `clone` would test the fake.

use std::io;
use std::path::Path;

pub mod fake;
pub mod inroot;
#[cfg(target_os = "linux")]
pub mod real;

/// Capability sets as bit masks (bit n = capability number n).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// The kind of device node to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevKind {
    Char,
    Block,
    Fifo,
}

/// What [`Sys::create_in`] makes at a path inside a container's root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node<'a> {
    /// `mkdir -p` with this mode for the directories it creates.
    Dir(u32),
    /// An empty regular file, unless something (not a symlink) is there already.
    File,
    /// mknod(2), then the owner when one is given.
    Device { kind: DevKind, mode: u32, major: u64, minor: u64, owner: Option<(u32, u32)> },
    /// A symlink pointing at the string.
    Symlink(&'a str),
}

/// A path for mount(2) from [`Sys::pin`]: on the real kernel `/proc/self/fd/N` of a descriptor
/// this value holds, closed when it is dropped (after the mount that names it).
#[derive(Debug)]
pub struct Pinned {
    path: std::path::PathBuf,
    _fd: Option<std::os::fd::OwnedFd>,
}

impl Pinned {
    /// `path` as it is, holding nothing (the fake; kernels without openat2).
    pub fn plain(path: &Path) -> Pinned {
        Pinned { path: path.to_path_buf(), _fd: None }
    }

    /// `/proc/self/fd/N` for `fd`, kept open as long as this value.
    pub fn fd(fd: std::os::fd::OwnedFd) -> Pinned {
        use std::os::fd::AsRawFd;
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd()).into();
        Pinned { path, _fd: Some(fd) }
    }
}

impl AsRef<Path> for Pinned {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl std::ops::Deref for Pinned {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

/// Mount flags: the kernel's `MS_*` values as linux-raw-sys (rustix's own source) gives them,
/// widened to the `u64` word [`Sys::mount`] takes. linux-raw-sys is plain constants, so the
/// crate still builds off Linux (`baleen-init plan`).
pub mod ms {
    use linux_raw_sys::general as k;
    pub const RDONLY: u64 = k::MS_RDONLY as u64;
    pub const NOSUID: u64 = k::MS_NOSUID as u64;
    pub const NODEV: u64 = k::MS_NODEV as u64;
    pub const NOEXEC: u64 = k::MS_NOEXEC as u64;
    pub const SYNCHRONOUS: u64 = k::MS_SYNCHRONOUS as u64;
    pub const REMOUNT: u64 = k::MS_REMOUNT as u64;
    pub const MANDLOCK: u64 = k::MS_MANDLOCK as u64;
    pub const DIRSYNC: u64 = k::MS_DIRSYNC as u64;
    pub const NOSYMFOLLOW: u64 = k::MS_NOSYMFOLLOW as u64;
    pub const NOATIME: u64 = k::MS_NOATIME as u64;
    pub const NODIRATIME: u64 = k::MS_NODIRATIME as u64;
    pub const BIND: u64 = k::MS_BIND as u64;
    pub const MOVE: u64 = k::MS_MOVE as u64;
    pub const REC: u64 = k::MS_REC as u64;
    pub const SILENT: u64 = k::MS_SILENT as u64;
    pub const UNBINDABLE: u64 = k::MS_UNBINDABLE as u64;
    pub const PRIVATE: u64 = k::MS_PRIVATE as u64;
    pub const SLAVE: u64 = k::MS_SLAVE as u64;
    pub const SHARED: u64 = k::MS_SHARED as u64;
    pub const RELATIME: u64 = k::MS_RELATIME as u64;
    pub const STRICTATIME: u64 = k::MS_STRICTATIME as u64;
    /// Propagation-type flags: the kernel applies them in a mount call of their own.
    pub const PROPAGATION: u64 = UNBINDABLE | PRIVATE | SLAVE | SHARED;

    /// Renders flags for logs and the fake's transcript: `bind|rec|ro`.
    pub fn render(flags: u64) -> String {
        const NAMES: &[(u64, &str)] = &[
            (BIND, "bind"),
            (MOVE, "move"),
            (REC, "rec"),
            (REMOUNT, "remount"),
            (RDONLY, "ro"),
            (NOSUID, "nosuid"),
            (NODEV, "nodev"),
            (NOEXEC, "noexec"),
            (SYNCHRONOUS, "sync"),
            (MANDLOCK, "mand"),
            (DIRSYNC, "dirsync"),
            (NOSYMFOLLOW, "nosymfollow"),
            (NOATIME, "noatime"),
            (NODIRATIME, "nodiratime"),
            (SILENT, "silent"),
            (UNBINDABLE, "unbindable"),
            (PRIVATE, "private"),
            (SLAVE, "slave"),
            (SHARED, "shared"),
            (RELATIME, "relatime"),
            (STRICTATIME, "strictatime"),
        ];
        let parts: Vec<&str> =
            NAMES.iter().filter(|(bit, _)| flags & bit != 0).map(|(_, n)| *n).collect();
        if parts.is_empty() {
            "0".to_owned()
        } else {
            parts.join("|")
        }
    }
}

/// Namespace kinds, the kernel's `CLONE_NEW*` values (linux-raw-sys's, as `int`s for setns;
/// each is below 2^31).
pub mod ns {
    use linux_raw_sys::general as k;
    pub const NEWNS: i32 = k::CLONE_NEWNS as i32;
    pub const NEWCGROUP: i32 = k::CLONE_NEWCGROUP as i32;
    pub const NEWUTS: i32 = k::CLONE_NEWUTS as i32;
    pub const NEWIPC: i32 = k::CLONE_NEWIPC as i32;
    pub const NEWUSER: i32 = k::CLONE_NEWUSER as i32;
    pub const NEWPID: i32 = k::CLONE_NEWPID as i32;
    pub const NEWNET: i32 = k::CLONE_NEWNET as i32;
}

/// The privileged calls init makes. Paths are absolute unless a method says otherwise.
pub trait Sys {
    /// mount(2). `None` source/fstype/data are passed as NULL.
    fn mount(
        &mut self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: u64,
        data: Option<&str>,
    ) -> io::Result<()>;
    /// umount2(2).
    fn umount(&mut self, target: &Path, detach: bool) -> io::Result<()>;
    /// `mkdir -p` with `mode` for the directories it creates.
    fn mkdir_all(&mut self, path: &Path, mode: u32) -> io::Result<()>;
    /// Creates an empty regular file if nothing exists at `path` (a bind-mount target).
    fn touch(&mut self, path: &Path) -> io::Result<()>;
    /// `Some(true)` for a directory (following symlinks), `Some(false)` for anything else,
    /// `None` when nothing is there.
    fn probe(&mut self, path: &Path) -> Option<bool>;
    /// The `MS_*` flags of the mount holding `path` (statvfs), 0 when unknown.
    fn mount_flags(&mut self, path: &Path) -> u64;
    /// The target of a symlink, `None` when `path` is not one.
    fn read_link(&mut self, path: &Path) -> Option<String>;
    /// `path` inside the container root `root` as the container will resolve it, as a host
    /// path under `root` ([`inroot`]); ELOOP past 40 symlinks. The default walks with
    /// [`Sys::read_link`].
    fn resolve_in_root(&mut self, root: &Path, path: &str) -> io::Result<std::path::PathBuf> {
        inroot::secure_join(self, root, path)
    }
    /// What to hand mount(2) for `path`, a path under `root` that [`Sys::resolve_in_root`]
    /// gave and that exists now. The default is `path`; the real kernel opens it again below
    /// `root` refusing every symlink (so a component swapped for one since fails) and returns
    /// `/proc/self/fd/N` ([`inroot::pin`]).
    fn pin(&mut self, root: &Path, path: &Path) -> io::Result<Pinned> {
        inroot::under_root(root, path)?;
        Ok(Pinned::plain(path))
    }
    /// Makes `node` at `path`, a path under `root` that [`Sys::resolve_in_root`] gave. The real
    /// kernel walks from a descriptor of `root` one component at a time refusing symlinks
    /// (`mkdirat`/`mknodat`/`symlinkat` in the last directory opened), so nothing is ever made
    /// outside `root` ([`inroot::create_beneath`]). The default (the fake) checks that `path`
    /// is under `root` and makes it by path.
    fn create_in(&mut self, root: &Path, path: &Path, node: Node<'_>) -> io::Result<()> {
        inroot::under_root(root, path)?;
        match node {
            Node::Dir(mode) => self.mkdir_all(path, mode),
            Node::File => self.touch(path),
            Node::Device { kind, mode, major, minor, owner } => {
                match self.mknod(path, kind, mode, major, minor) {
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    r => r?,
                }
                match owner {
                    Some((uid, gid)) => self.chown(path, uid, gid),
                    None => Ok(()),
                }
            }
            Node::Symlink(target) => self.symlink(target, path),
        }
    }
    /// The working directory, or an error when it is not reachable from the root
    /// (getcwd(2) answers `(unreachable)…`: a directory outside a chroot or pivoted root).
    fn getcwd(&mut self) -> io::Result<std::path::PathBuf> {
        Ok("/".into())
    }
    /// Writes `data` to an existing file (sysctl, cgroup and /proc knobs).
    fn write_file(&mut self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// symlink(2): `link` → `target`.
    fn symlink(&mut self, target: &str, link: &Path) -> io::Result<()>;
    /// mknod(2).
    fn mknod(
        &mut self,
        path: &Path,
        kind: DevKind,
        mode: u32,
        major: u64,
        minor: u64,
    ) -> io::Result<()>;
    /// chown(2) without following a final symlink.
    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> io::Result<()>;
    /// chdir(2).
    fn chdir(&mut self, path: &Path) -> io::Result<()>;
    /// Opens a directory to return to it later with [`Sys::fchdir`], even once it is no longer
    /// reachable by path (the old root across pivot_root).
    fn open_dir(&mut self, path: &Path) -> io::Result<std::fs::File>;
    /// fchdir(2) into a directory from [`Sys::open_dir`].
    fn fchdir(&mut self, dir: &std::fs::File) -> io::Result<()>;
    /// pivot_root(2).
    fn pivot_root(&mut self, new_root: &Path, put_old: &Path) -> io::Result<()>;
    /// chroot(2).
    fn chroot(&mut self, path: &Path) -> io::Result<()>;
    /// sethostname(2).
    fn sethostname(&mut self, name: &str) -> io::Result<()>;
    /// Joins the namespace file at `path` (setns(2)); `nstype` is a [`ns`] constant.
    fn setns(&mut self, path: &Path, nstype: i32) -> io::Result<()>;
    /// setrlimit(2).
    fn setrlimit(&mut self, resource: u32, soft: u64, hard: u64) -> io::Result<()>;
    /// Switches to `uid`/`gid` with `groups` as supplementary groups, keeping the permitted
    /// capabilities across the uid change (`PR_SET_KEEPCAPS`) so [`Sys::set_caps`] can apply
    /// the configured sets afterwards.
    fn set_ids(&mut self, uid: u32, gid: u32, groups: &[u32]) -> io::Result<()>;
    /// Drops from the bounding set every capability not in `keep` (needs CAP_SETPCAP, so it
    /// runs before [`Sys::set_ids`]).
    fn drop_bounding(&mut self, keep: u64) -> io::Result<()>;
    /// Sets the effective/permitted/inheritable sets and raises the ambient ones (after
    /// [`Sys::set_ids`]; the bounding set is not touched).
    fn set_caps(&mut self, caps: &CapSets) -> io::Result<()>;
    /// `PR_SET_NO_NEW_PRIVS`.
    fn no_new_privs(&mut self) -> io::Result<()>;
    /// Installs a seccomp filter (needs no_new_privs or CAP_SYS_ADMIN).
    fn seccomp(&mut self, prog: &[crate::seccomp::Insn]) -> io::Result<()>;
    /// Runs OCI hooks of `phase` from the calling process, each with `state` on stdin
    /// ([`crate::hooks`]); the first failure is returned.
    fn run_hooks(
        &mut self,
        phase: &'static str,
        hooks: &[crate::hooks::Hook],
        state: &[u8],
    ) -> io::Result<()>;
    /// sync(2).
    fn sync(&mut self);
    /// kill(2).
    fn kill(&mut self, pid: i32, sig: i32) -> io::Result<()>;
    /// A device-mapper ioctl on `/dev/mapper/control`: `buf` is a `struct dm_ioctl` (and what
    /// follows it) that the kernel reads and answers in place ([`crate::dm`]).
    fn dm_ioctl(&mut self, request: u32, buf: &mut [u8]) -> io::Result<()>;
}
