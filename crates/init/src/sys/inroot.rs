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
//! hands mount(2) `/proc/self/fd/N`, as runc does. Non-goals: the same for mkdir and mknod,
//! which have no such form here; kernels without openat2 get no pinning.

use super::Sys;
use std::path::{Path, PathBuf};

/// The walk: `path` inside `root`, reading symlinks with `sys`. Like the kernel, it gives up
/// expanding after 40 links and takes the rest literally.
pub fn secure_join<S: Sys + ?Sized>(sys: &mut S, root: &Path, path: &str) -> PathBuf {
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
            Some(target) if links < 40 => {
                links += 1;
                if target.starts_with('/') {
                    done.clear();
                }
                todo.extend(target.split('/').rev().map(str::to_owned));
            }
            _ => done.push(part),
        }
    }
    done.iter().fold(root.to_path_buf(), |p, c| p.join(c))
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
/// descriptor is left open, close-on-exec: pinning is done by the container's process, which
/// execs its program right after setup.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn pin(root: &Path, path: &Path) -> std::io::Result<PathBuf> {
    use std::os::fd::{AsRawFd, IntoRawFd};
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
            Some(libc::ENOSYS) => Ok(path.to_path_buf()),
            _ => Err(e),
        };
    }
    // SAFETY: openat2 returned a new descriptor that nothing else owns; it is deliberately
    // kept open (close-on-exec) for the mount that names it.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    Ok(PathBuf::from(format!("/proc/self/fd/{}", fd.into_raw_fd())))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::sys::real::Real;

    /// A rootfs with every kind of escaping symlink, in a temp dir (no root needed).
    fn hostile_root() -> (PathBuf, PathBuf) {
        let base = std::env::temp_dir().join(format!("baleen-inroot-{}", std::process::id()));
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
        let (base, root) = hostile_root();
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
            let walked = secure_join(&mut Real, &root, path);
            assert_eq!(walked, want, "walk of {path:?}");
            let resolved = Real.resolve_in_root(&root, path);
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
}
