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

/// The kernel's answer: the longest existing prefix of `path` opened with `openat2(O_PATH,
/// RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` below `root`, read back through
/// `/proc/self/fd`, with the missing rest appended. `None` when the kernel cannot answer
/// (no openat2, no /proc) or the walk must (a dangling symlink on the way, whose target the
/// kernel does not report; `..` in the missing rest).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn kernel_resolve(root: &Path, path: &str) -> Option<PathBuf> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::fs::OpenOptionsExt;

    /// openat2's `struct open_how`.
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
    const RESOLVE_IN_ROOT: u64 = 0x10;

    let open = |dir: &OwnedFd, rel: &str, nofollow: bool| -> std::io::Result<OwnedFd> {
        let c = crate::sys::real::cstr(if rel.is_empty() { "." } else { rel })?;
        let mut flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
        if nofollow {
            flags |= libc::O_NOFOLLOW as u64;
        }
        let how = OpenHow { flags, mode: 0, resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
        // SAFETY: c is NUL-terminated and how a live open_how of the size passed.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: openat2 returned a new descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    };
    let real = |fd: &OwnedFd| std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()));

    let dir: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(root)
        .ok()?
        .into();
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
#[allow(unsafe_code)]
pub fn pin(root: &Path, path: &Path) -> std::io::Result<Pinned> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
    const RESOLVE_NO_SYMLINKS: u64 = 0x04;
    const RESOLVE_BENEATH: u64 = 0x08;
    let rel = path.strip_prefix(root).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "path is not under the root")
    })?;
    let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(root)?;
    let c = crate::sys::real::cpath(rel)?;
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: c is NUL-terminated and how a live open_how of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOSYS) => Ok(Pinned::plain(path)),
            _ => Err(e),
        };
    }
    // SAFETY: openat2 returned a new descriptor that nothing else owns.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    Ok(Pinned::fd(fd))
}

/// Makes `node` at `path` (under `root`, as the resolvers give it) without ever following a
/// symlink: from a descriptor of `root`, each directory is opened with
/// `O_NOFOLLOW | O_DIRECTORY` (made with `mkdirat` when missing), and the last component is
/// made with `mkdirat`/`openat(O_CREAT | O_NOFOLLOW)`/`mknodat`/`symlinkat` in the last
/// directory opened. A symlink met on the way is ELOOP: a tree changed since resolution fails
/// the start instead of reaching outside the root.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn create_beneath(root: &Path, path: &Path, node: Node<'_>) -> io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;

    let names = under_root(root, path)?;
    let cname = |n: &std::ffi::OsStr| {
        std::ffi::CString::new(n.as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
    };
    let check = |rc: libc::c_int| if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(rc) };
    // A symlink where a directory or a new node must be: name it as one (ELOOP), not as
    // "not a directory" or "exists".
    let is_link = |dir: &OwnedFd, c: &std::ffi::CStr| {
        // SAFETY: st is plain data that fstatat fills; c is NUL-terminated.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: dir is a live descriptor, c NUL-terminated, st valid for writes.
        let rc = unsafe {
            libc::fstatat(dir.as_raw_fd(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW)
        };
        rc == 0 && st.st_mode & libc::S_IFMT == libc::S_IFLNK
    };
    let loop_err = || io::Error::from_raw_os_error(ELOOP);
    let open_dir = |dir: &OwnedFd, c: &std::ffi::CStr| -> io::Result<OwnedFd> {
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: dir is a live descriptor and c NUL-terminated.
        let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: openat returned a new descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let step_into = |dir: &OwnedFd, c: &std::ffi::CStr, mode: u32| -> io::Result<OwnedFd> {
        match open_dir(dir, c) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                // SAFETY: dir is a live descriptor and c NUL-terminated.
                match check(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode) }) {
                    Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(e),
                    _ => {}
                }
                open_dir(dir, c).map_err(|e| if is_link(dir, c) { loop_err() } else { e })
            }
            Err(e) if is_link(dir, c) => {
                let _ = e;
                Err(loop_err())
            }
            r => r,
        }
    };

    let rootc = crate::sys::real::cpath(root)?;
    // SAFETY: rootc is NUL-terminated. The root itself is the bundle's, named by init.
    let fd =
        unsafe { libc::open(rootc.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open returned a new descriptor that nothing else owns.
    let mut dir = unsafe { OwnedFd::from_raw_fd(fd) };
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
        dir = step_into(&dir, &cname(n)?, dir_mode)?;
    }
    let c = cname(last)?;
    let at = dir.as_raw_fd();
    match node {
        Node::Dir(mode) => step_into(&dir, &c, mode).map(drop),
        Node::File => {
            let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
            // SAFETY: at is a live descriptor and c NUL-terminated.
            match check(unsafe { libc::openat(at, c.as_ptr(), flags | libc::O_CLOEXEC, 0o644) }) {
                Ok(fd) => {
                    // SAFETY: openat returned a new descriptor that nothing else owns.
                    drop(unsafe { OwnedFd::from_raw_fd(fd) });
                    Ok(())
                }
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    if is_link(&dir, &c) {
                        Err(loop_err())
                    } else {
                        Ok(())
                    }
                }
                Err(e) => Err(e),
            }
        }
        Node::Device { kind, mode, major, minor, owner } => {
            let fmt = match kind {
                DevKind::Char => libc::S_IFCHR,
                DevKind::Block => libc::S_IFBLK,
                DevKind::Fifo => libc::S_IFIFO,
            };
            let (major, minor) = (u32::try_from(major), u32::try_from(minor));
            let (Ok(major), Ok(minor)) = (major, minor) else {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "device number too large"));
            };
            let dev = libc::makedev(major, minor);
            // SAFETY: at is a live descriptor and c NUL-terminated.
            match check(unsafe { libc::mknodat(at, c.as_ptr(), fmt | (mode & 0o7777), dev) }) {
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) && !is_link(&dir, &c) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => return Err(loop_err()),
                r => r.map(drop)?,
            }
            if let Some((uid, gid)) = owner {
                let nofollow = libc::AT_SYMLINK_NOFOLLOW;
                // SAFETY: at is a live descriptor and c NUL-terminated.
                check(unsafe { libc::fchownat(at, c.as_ptr(), uid, gid, nofollow) })?;
            }
            Ok(())
        }
        Node::Symlink(target) => {
            let t = crate::sys::real::cstr(target)?;
            // SAFETY: both strings are NUL-terminated and at a live descriptor.
            check(unsafe { libc::symlinkat(t.as_ptr(), at, c.as_ptr()) }).map(drop)
        }
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
