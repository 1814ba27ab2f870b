//! Resolving a path inside a container's root as the container will see it: symlinks are
//! followed but read relative to the root, and `..` stops at the root. Without this, a hostile
//! image with `etc -> /` would point a mount point, mkdir, mknod or mask at init's own
//! filesystem.
//!
//! Two resolvers give the same answers: [`secure_join`], a walk over [`Sys::read_link`] (runc's
//! securejoin; what the recording fake runs), and [`kernel_resolve`], `openat2(2)` with
//! `RESOLVE_IN_ROOT` (Linux 5.6+), which the real [`Sys`] tries first because the kernel
//! resolves the whole path in one step. Either returns a host path under the root; the part of
//! the path that does not exist yet is appended as it is, for the caller to create.
//!
//! Against a swap between resolution and use (another container sharing the root replacing a
//! directory by a symlink), [`pin`] opens the resolved path again refusing every symlink and
//! hands mount(2) `/proc/self/fd/N`, as runc does, and [`create_beneath`] makes directories,
//! files, device nodes and symlinks from a descriptor of the root, one component at a time,
//! refusing symlinks: what it makes is under the root whatever the tree does meanwhile.
//! Non-goal: pinning on kernels without openat2 (before 5.6), where [`pin`] hands over the
//! path ([`create_beneath`] needs only `openat`, so it works everywhere).

use super::{DevKind, Node, Pinned, Sys};
use std::io;
use std::path::{Component, Path, PathBuf};

/// The kernel's `MAXSYMLINKS`: more links than this in one resolution is ELOOP.
const MAX_LINKS: usize = 40;

/// The walk: `path` inside `root`, reading symlinks with `sys`. Like the kernel, it refuses a
/// path that needs more than 40 links (ELOOP) — taking the 41st literally instead, as it once
/// did, would let the host follow it out of the root.
pub fn secure_join<S: Sys + ?Sized>(sys: &mut S, root: &Path, path: &str) -> io::Result<PathBuf> {
    let mut todo: Vec<String> = path.split('/').rev().map(str::to_owned).collect();
    let mut done: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(part) = todo.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        let here = done.iter().fold(root.to_path_buf(), |p, c| p.join(c)).join(&part);
        match sys.read_link(&here) {
            Some(_) if links == MAX_LINKS => return Err(io::Error::from_raw_os_error(ELOOP)),
            Some(target) => {
                links += 1;
                if target.starts_with('/') {
                    done.clear();
                }
                todo.extend(target.split('/').rev().map(str::to_owned));
            }
            None => done.push(part),
        }
    }
    Ok(done.iter().fold(root.to_path_buf(), |p, c| p.join(c)))
}

/// ELOOP on every architecture Linux runs this on (also on hosts without `libc::ELOOP`).
const ELOOP: i32 = 40;

/// `path` relative to `root`, made only of plain names (what the resolvers return), or
/// InvalidInput.
pub fn under_root<'a>(root: &Path, path: &'a Path) -> io::Result<Vec<&'a std::ffi::OsStr>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidInput, "path is not under the root");
    let rel = path.strip_prefix(root).map_err(|_| bad())?;
    rel.components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(bad()),
        })
        .collect()
}

/// `openat2(dir, rel, O_PATH | O_CLOEXEC [| O_NOFOLLOW], resolve)`, `.` for an empty `rel`.
#[cfg(target_os = "linux")]
fn open_path(
    dir: std::os::fd::BorrowedFd<'_>,
    rel: &Path,
    nofollow: bool,
    resolve: rustix::fs::ResolveFlags,
) -> io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if nofollow {
        flags |= OFlags::NOFOLLOW;
    }
    Ok(rustix::fs::openat2(dir, rel, flags, Mode::empty(), resolve)?)
}

/// `root` opened `O_PATH | O_DIRECTORY`, the descriptor every walk below starts from. The root
/// itself is the bundle's, named by init.
#[cfg(target_os = "linux")]
fn open_root(root: &Path) -> io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    Ok(rustix::fs::open(root, flags, Mode::empty())?)
}

/// The kernel's answer: the longest existing prefix of `path` opened with `openat2(O_PATH,
/// RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` below `root`, read back through
/// `/proc/self/fd`, with the missing rest appended. `None` when the kernel cannot answer
/// (no openat2, no /proc) or the walk must (a dangling symlink on the way, whose target the
/// kernel does not report; `..` in the missing rest).
#[cfg(target_os = "linux")]
pub fn kernel_resolve(root: &Path, path: &str) -> Option<PathBuf> {
    use rustix::fs::ResolveFlags;
    use std::os::fd::{AsFd, AsRawFd, OwnedFd};

    let in_root = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let open = |dir: &OwnedFd, rel: &str, nofollow: bool| {
        open_path(dir.as_fd(), Path::new(rel), nofollow, in_root)
    };
    let real = |fd: &OwnedFd| std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()));

    let dir = open_root(root).ok()?;
    let root_real = real(&dir).ok()?;
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    for n in (0..=parts.len()).rev() {
        let prefix = parts[..n].join("/");
        match open(&dir, &prefix, false) {
            Ok(fd) => {
                let rest = &parts[n..];
                if rest.contains(&"..") {
                    return None;
                }
                let real = real(&fd).ok()?;
                let inside = real.strip_prefix(&root_real).ok()?;
                let base = if inside.as_os_str().is_empty() {
                    root.to_path_buf()
                } else {
                    root.join(inside)
                };
                return Some(rest.iter().fold(base, |p, c| p.join(c)));
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                // A dangling symlink here: only the walk knows where it points.
                if n > 0 && open(&dir, &prefix, true).is_ok() {
                    return None;
                }
            }
            // ENOSYS (older kernel), ENOTDIR, ELOOP, EXDEV…: leave it to the walk.
            Err(_) => return None,
        }
    }
    None
}

/// `path` (under `root`, symlink-free as resolved) opened again with `O_PATH` and
/// `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`: `/proc/self/fd/N` for mount(2) to use. A symlink
/// swapped in since resolution fails (ELOOP); without openat2 (ENOSYS), `path` itself. The
/// descriptor lives as long as the [`Pinned`] (close-on-exec).
#[cfg(target_os = "linux")]
pub fn pin(root: &Path, path: &Path) -> std::io::Result<Pinned> {
    use rustix::fs::ResolveFlags;
    use std::os::fd::AsFd;
    let rel = path.strip_prefix(root).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "path is not under the root")
    })?;
    let dir = open_root(root)?;
    let beneath = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    match open_path(dir.as_fd(), rel, false, beneath) {
        Ok(fd) => Ok(Pinned::fd(fd)),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => Ok(Pinned::plain(path)),
        Err(e) => Err(e),
    }
}

/// The kernel's device number for `major:minor`, or InvalidInput when either is too large.
#[cfg(target_os = "linux")]
pub(crate) fn dev_number(major: u64, minor: u64) -> io::Result<rustix::fs::Dev> {
    let (major, minor) = (u32::try_from(major), u32::try_from(minor));
    let (Ok(major), Ok(minor)) = (major, minor) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "device number too large"));
    };
    Ok(rustix::fs::makedev(major, minor))
}

/// The file type mknod(2) makes for `kind`.
#[cfg(target_os = "linux")]
pub(crate) fn file_type(kind: DevKind) -> rustix::fs::FileType {
    match kind {
        DevKind::Char => rustix::fs::FileType::CharacterDevice,
        DevKind::Block => rustix::fs::FileType::BlockDevice,
        DevKind::Fifo => rustix::fs::FileType::Fifo,
    }
}

/// Whether `name` in `dir` is a symlink (not followed).
#[cfg(target_os = "linux")]
fn is_link(dir: std::os::fd::BorrowedFd<'_>, name: &std::ffi::OsStr) -> bool {
    rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink
    })
}

/// The directory `name` in `dir`, opened without following a symlink; made (with `mode`) when
/// missing. A symlink in its place is ELOOP, not "not a directory".
#[cfg(target_os = "linux")]
fn step_into(
    dir: std::os::fd::BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    mode: u32,
) -> io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let open_dir = || -> io::Result<std::os::fd::OwnedFd> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        Ok(rustix::fs::openat(dir, name, flags, Mode::empty())?)
    };
    let loop_err = || io::Error::from_raw_os_error(ELOOP);
    match open_dir() {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            match rustix::fs::mkdirat(dir, name, Mode::from_bits_retain(mode)) {
                Err(e) if e != rustix::io::Errno::EXIST => return Err(e.into()),
                _ => {}
            }
            open_dir().map_err(|e| if is_link(dir, name) { loop_err() } else { e })
        }
        Err(_) if is_link(dir, name) => Err(loop_err()),
        r => r,
    }
}

/// Makes `node` at `path` (under `root`, as the resolvers give it) without ever following a
/// symlink: from a descriptor of `root`, each directory is opened with
/// `O_NOFOLLOW | O_DIRECTORY` (made with `mkdirat` when missing), and the last component is
/// made with `mkdirat`/`openat(O_CREAT | O_NOFOLLOW)`/`mknodat`/`symlinkat` in the last
/// directory opened. A symlink met on the way is ELOOP: a tree changed since resolution fails
/// the start instead of reaching outside the root.
#[cfg(target_os = "linux")]
pub fn create_beneath(root: &Path, path: &Path, node: Node<'_>) -> io::Result<()> {
    use rustix::fs::{AtFlags, Mode, OFlags};
    use rustix::io::Errno;
    use std::os::fd::AsFd;

    let names = under_root(root, path)?;
    let loop_err = || io::Error::from_raw_os_error(ELOOP);
    let mut dir = open_root(root)?;
    let Some((last, parents)) = names.split_last() else {
        // The root itself: it exists, and only a directory may be asked of it.
        return match node {
            Node::Dir(_) => Ok(()),
            _ => Err(io::ErrorKind::AlreadyExists.into()),
        };
    };
    let dir_mode = match node {
        Node::Dir(mode) => mode,
        _ => 0o755,
    };
    for n in parents {
        dir = step_into(dir.as_fd(), n, dir_mode)?;
    }
    let at = dir.as_fd();
    match node {
        Node::Dir(mode) => step_into(at, last, mode).map(drop),
        Node::File => {
            let flags =
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            match rustix::fs::openat(at, *last, flags, Mode::from_bits_retain(0o644)) {
                Ok(fd) => {
                    drop(fd);
                    Ok(())
                }
                Err(Errno::EXIST) if is_link(at, last) => Err(loop_err()),
                Err(Errno::EXIST) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Node::Device { kind, mode, major, minor, owner } => {
            let dev = dev_number(major, minor)?;
            let perm = Mode::from_bits_retain(mode & 0o7777);
            match rustix::fs::mknodat(at, *last, file_type(kind), perm, dev) {
                Err(Errno::EXIST) if !is_link(at, last) => {}
                Err(Errno::EXIST) => return Err(loop_err()),
                r => r?,
            }
            if let Some((uid, gid)) = owner {
                // -1 leaves an id as it is, for chownat as for fchownat(2).
                let uid = (uid != u32::MAX).then(|| rustix::fs::Uid::from_raw(uid));
                let gid = (gid != u32::MAX).then(|| rustix::fs::Gid::from_raw(gid));
                let nofollow = AtFlags::SYMLINK_NOFOLLOW;
                rustix::fs::chownat(at, *last, uid, gid, nofollow)?;
            }
            Ok(())
        }
        Node::Symlink(target) => Ok(rustix::fs::symlinkat(target, at, *last)?),
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::sys::real::Real;

    /// A rootfs with every kind of escaping symlink, in a temp dir (no root needed).
    /// A fresh tree per test (`name`): tests run in parallel, and one removing a shared tree
    /// while another walked it failed the other now and then.
    fn hostile_root(name: &str) -> (PathBuf, PathBuf) {
        let dir = format!("baleen-inroot-{name}-{}", std::process::id());
        let base = std::env::temp_dir().join(dir);
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("rootfs");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        let link = |target: &str, at: &str| std::os::unix::fs::symlink(target, root.join(at));
        link("/", "etc").unwrap(); // absolute, to the root
        link("../../../../../../..", "up").unwrap(); // climbs past the root
        link("../outside", "sibling").unwrap(); // the bundle's directory next to rootfs: dangles
        link("a/b", "lnk").unwrap(); // an ordinary relative link
        link("/nowhere/deep", "dangle").unwrap(); // dangling, absolute
        link("/a", "a/b/abs").unwrap(); // absolute from below
        (base, root)
    }

    #[test]
    fn escaping_symlinks_stay_inside_the_root() {
        let (base, root) = hostile_root("escape");
        let cases = [
            ("etc/passwd", "passwd"),
            ("/etc/../etc/shadow", "shadow"),
            ("up/x", "x"),
            ("sibling/y", "outside/y"),
            ("lnk/c", "a/b/c"),
            ("a/b/abs/b", "a/b"),
            ("dangle/z", "nowhere/deep/z"),
            ("../../a", "a"),
            ("", ""),
        ];
        // Pinning: a resolved path opens again; one through a symlink is refused.
        let p = pin(&root, &root.join("a/b")).unwrap();
        if p.starts_with("/proc/self/fd") {
            assert_eq!(std::fs::read_link(&p).unwrap(), root.join("a/b"));
            let e = pin(&root, &root.join("lnk")).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{e}");
            assert!(pin(&root, &root.join("up/a")).is_err());
            assert!(pin(&root, &base.join("outside")).is_err(), "not under the root");
        }
        // Kernels before 5.6 have no openat2: there only the walk answers.
        let kernel = kernel_resolve(&root, "").is_some();
        for (path, want) in cases {
            let want = root.join(want);
            let walked = secure_join(&mut Real, &root, path).unwrap();
            assert_eq!(walked, want, "walk of {path:?}");
            let resolved = Real.resolve_in_root(&root, path).unwrap();
            assert_eq!(resolved, want, "resolve_in_root of {path:?}");
            // The kernel answers by itself, except across a dangling symlink, which it hands
            // to the walk.
            let by_kernel = kernel_resolve(&root, path);
            if path.starts_with("dangle") || path.starts_with("sibling") {
                assert_eq!(by_kernel, None, "{path:?}");
            } else if kernel {
                assert_eq!(by_kernel, Some(want), "kernel_resolve of {path:?}");
            }
        }
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// 41 links to init's side are ELOOP for the kernel and the walk alike (the walk used to
    /// keep the 41st as a literal name, which mkdir then followed out of the root).
    #[test]
    fn forty_one_links_are_eloop_for_both_resolvers() {
        let (base, root) = hostile_root("eloop");
        for i in 0..41 {
            let target = if i == 40 { "/outside-target".to_owned() } else { format!("c{}", i + 1) };
            std::os::unix::fs::symlink(target, root.join(format!("c{i}"))).unwrap();
        }
        let e = Real.resolve_in_root(&root, "c0/x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{e}");
        let e = secure_join(&mut Real, &root, "c0/x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{e}");
        // 40 are fine, as for the kernel.
        assert_eq!(Real.resolve_in_root(&root, "c1/x").unwrap(), root.join("outside-target/x"));
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// create_beneath makes what it is asked inside the root, and refuses (ELOOP) a symlink
    /// in the way — swapped in after resolution — instead of following it out.
    #[test]
    fn create_beneath_never_follows_a_symlink() {
        let (base, root) = hostile_root("create");
        let outside = base.join("outside");
        create_beneath(&root, &root.join("new/dir/deep"), Node::Dir(0o755)).unwrap();
        assert!(root.join("new/dir/deep").is_dir());
        create_beneath(&root, &root.join("new/file"), Node::File).unwrap();
        assert!(root.join("new/file").is_file());
        create_beneath(&root, &root.join("new/file"), Node::File).unwrap(); // exists: fine
        create_beneath(&root, &root.join("new/ln"), Node::Symlink("/x")).unwrap();
        assert_eq!(std::fs::read_link(root.join("new/ln")).unwrap(), Path::new("/x"));
        let fifo =
            Node::Device { kind: DevKind::Fifo, mode: 0o600, major: 0, minor: 0, owner: None };
        create_beneath(&root, &root.join("new/fifo"), fifo).unwrap();
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata(root.join("new/fifo")).unwrap().file_type().is_fifo());

        // `up` and `sibling` are symlinks out of the root: every kind of node refuses them,
        // as a parent and as the last component.
        std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
        for p in ["up/escape", "sibling/escape", "out/escape", "out"] {
            for node in [Node::Dir(0o755), Node::File, fifo, Node::Symlink("/y")] {
                let e = create_beneath(&root, &root.join(p), node).unwrap_err();
                if p != "out" || node != Node::Symlink("/y") {
                    assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{p} {node:?}: {e}");
                }
            }
        }
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "made outside the root");
        assert!(create_beneath(&root, &outside.join("x"), Node::File).is_err(), "not under");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
