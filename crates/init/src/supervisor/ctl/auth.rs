//! Who may talk to whom over the control socket, in both directions.
//!
//! Server: the socket's directory is made 0700 and the socket is bound under a 0177 umask, so it
//! is 0600 from the moment it exists (no window in which another user can connect); every
//! connection's peer must be uid 0 in init's user namespace (SO_PEERCRED), or it is answered an
//! error and closed. A container with a user namespace of its own is not uid 0 there.
//!
//! Client: a container that can write `/run` could replace the socket and answer `info` with its
//! own pid and a bundle directory it controls, so that the admin's `exec` (all capabilities,
//! the host's pid namespace) joined its namespaces and loaded its config.json. The client
//! therefore checks that the server is pid 1 as uid 0 (SO_PEERCRED of the listening socket,
//! which only init's listen() can give), and that the directory it is told is a canonical path
//! under `/containers/`.

use super::CtlError;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Component, Path};

/// The peer's credentials as the kernel recorded them at connect() (for a client: the
/// server's at listen()), translated into our namespaces.
#[allow(unsafe_code)]
pub fn peer_cred(s: &UnixStream) -> std::io::Result<libc::ucred> {
    let mut cred = libc::ucred { pid: 0, uid: u32::MAX, gid: u32::MAX };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred is writable for len bytes; the kernel writes at most that much.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cred)
}

/// Whether the server serves this client: only uid 0.
pub fn client_allowed(s: &UnixStream) -> Result<(), CtlError> {
    match peer_cred(s) {
        Ok(c) if c.uid == 0 => Ok(()),
        Ok(c) => Err(CtlError::NotRoot { uid: c.uid }),
        Err(source) => Err(CtlError::Credentials { who: "the client".into(), source }),
    }
}

/// Binds `sock` in a directory only root can enter: the directory is created 0700 (or, when it
/// exists, must be a real directory owned by root, and is made 0700), the socket is created
/// 0600 by binding under a 0177 umask.
pub fn bind_private(sock: &Path) -> std::io::Result<UnixListener> {
    let dir = sock.parent().unwrap_or(Path::new("/"));
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let meta = std::fs::symlink_metadata(dir)?;
    let me = rustix::process::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != me {
        return Err(std::io::Error::other(format!(
            "{} is not a directory owned by uid {me}",
            dir.display()
        )));
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    match std::fs::remove_file(sock) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    // umask swaps the process's file mode mask; init is single-threaded, so no other thread
    // creates a file meanwhile.
    let old = rustix::process::umask(rustix::fs::Mode::from_bits_retain(0o177));
    let bound = UnixListener::bind(sock);
    rustix::process::umask(old);
    let l = bound?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// The client's check of the server: init, pid 1, as uid 0.
pub fn served_by_init(s: &UnixStream, sock: &str) -> Result<(), CtlError> {
    let c =
        peer_cred(s).map_err(|source| CtlError::Credentials { who: sock.to_owned(), source })?;
    if c.pid != 1 || c.uid != 0 {
        return Err(CtlError::NotInit { sock: sock.to_owned(), pid: c.pid, uid: c.uid });
    }
    Ok(())
}

/// Where bundles are; a directory init names must be below it.
pub const CONTAINERS: &str = "/containers";

/// Checks that `dir` (from init's `info`) is a canonical path below [`CONTAINERS`]: absolute,
/// no `.`, `..` or empty component, at least one component below it.
pub fn bundle_dir(dir: &str) -> Result<&Path, CtlError> {
    let p = Path::new(dir);
    let refuse = || CtlError::BundleDir { dir: dir.to_owned() };
    let rest = dir.strip_prefix(CONTAINERS).and_then(|r| r.strip_prefix('/')).ok_or_else(refuse)?;
    if rest.is_empty() || rest.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err(refuse());
    }
    if !p.components().skip(1).all(|c| matches!(c, Component::Normal(_))) {
        return Err(refuse());
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("baleen-auth-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    /// The bug: init made `/run/baleen` and bound the socket with the umask's modes (0755 and
    /// 0755 under init's 022), so anyone who could reach it could connect.
    #[test]
    fn the_socket_is_0600_in_a_0700_directory() {
        let root = temp("bind");
        let sock = root.join("baleen/ctl.sock");
        let l = bind_private(&sock).unwrap();
        assert_eq!(mode(&root.join("baleen")), 0o700);
        assert_eq!(mode(&sock), 0o600, "{:o}", mode(&sock));
        drop(l);
        // An existing directory is narrowed; a stale socket is replaced.
        std::fs::set_permissions(root.join("baleen"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        bind_private(&sock).unwrap();
        assert_eq!(mode(&root.join("baleen")), 0o700);
        // A symlink in its place (to a directory someone else chose) is refused.
        let other = root.join("other");
        std::fs::create_dir(&other).unwrap();
        std::os::unix::fs::symlink(&other, root.join("link")).unwrap();
        assert!(bind_private(&root.join("link/ctl.sock")).is_err());
        assert!(!other.join("ctl.sock").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// The bug: the client trusted whatever listened at the socket. A server that is not pid 1
    /// (this test process) is refused.
    #[test]
    fn a_server_that_is_not_init_is_refused() {
        let (a, _b) = UnixStream::pair().unwrap();
        let e = served_by_init(&a, "/run/baleen/ctl.sock").unwrap_err();
        let want = format!("/run/baleen/ctl.sock is served by pid {} uid", std::process::id());
        let e = e.to_string();
        assert!(e.starts_with(&want) && e.ends_with("refusing to trust it"), "{e}");
    }

    /// The bug: `exec` loaded config.json from whatever directory the server named.
    #[test]
    fn only_canonical_bundle_dirs_under_containers_are_accepted() {
        for ok in ["/containers/services/sshd", "/containers/onboot/000-x"] {
            assert_eq!(bundle_dir(ok).unwrap(), Path::new(ok));
        }
        for bad in [
            "/tmp/evil",
            "/containers",
            "/containers/",
            "/containersx/a",
            "containers/services/sshd",
            "/containers/../tmp/evil",
            "/containers/services/../../tmp",
            "/containers/./services/sshd",
            "/containers//services/sshd",
            "/containers/services/sshd/",
            "//containers/services/sshd",
        ] {
            let e = bundle_dir(bad).unwrap_err().to_string();
            assert!(e.contains("not a directory under /containers/"), "{bad}: {e}");
        }
    }
}
