//! `baleen-ctl exec NAME CMD…`: the client joins a running container and starts CMD there.
//!
//! Order: ask init for the container's pid, bundle and cgroup; hold the process by a pidfd and
//! ask init again, so the pid is known to be the container's and not a reused one; load the
//! bundle (its user, capabilities, seccomp filter, environment); move into its cgroup, or fail
//! (CMD would escape the container's limits and device rules); join every namespace of the
//! process that differs from ours in one setns(2) on the pidfd (Linux 5.8; the mount namespace,
//! joined with the others, also makes the container's root ours); spawn CMD, which applies the
//! container's identity between fork and exec (so it is born in the container's pid
//! namespace, as `nsenter` does) in a session and on a terminal of its own ([`tty`]); wait.

use super::{ask, tty, CtlError};
use crate::container::Bundle;
use crate::sys::real::Real;
use crate::sys::{ns, Sys};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// Runs `cmd` in the container `name`; its exit status (128 + signal when killed).
pub fn run(name: &str, cmd: &[String]) -> i32 {
    match exec(name, cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("baleen-ctl exec {name}: {}", crate::console::chain(&e));
            126
        }
    }
}

/// `pid P dir D cgroup CG`.
fn parse_info(reply: &str) -> Option<(i32, PathBuf, String)> {
    let w: Vec<&str> = reply.split_whitespace().collect();
    match w.as_slice() {
        ["pid", p, "dir", d, "cgroup", cg] => Some((p.parse().ok()?, d.into(), (*cg).to_owned())),
        _ => None,
    }
}

/// The container's `info`, parsed; the bundle directory is checked to be one of init's
/// (canonical, under `/containers/`), whatever the server said.
fn info(name: &str) -> Result<(i32, PathBuf, String), CtlError> {
    let reply = ask(&format!("info {name}"))?;
    let (pid, dir, cgroup) =
        parse_info(&reply).ok_or_else(|| CtlError::Unexpected(reply.trim().to_owned()))?;
    let dir = super::auth::bundle_dir(&dir.to_string_lossy())?.to_path_buf();
    Ok((pid, dir, cgroup))
}

pub(super) fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // The kernel's answer for a pid that is not positive.
    let pid = rustix::process::Pid::from_raw(pid)
        .filter(|p| p.as_raw_nonzero().get() > 0)
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    Ok(rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?)
}

/// A pidfd for `pid`, checked against init's record (`again`: its pid for the container now).
/// A pid read from init may have been reused by another process by the time it is opened; once
/// it is held, the process cannot be reaped and its pid not reused, so init still naming that
/// pid means the pidfd is the container's.
fn hold(pid: i32, again: impl FnOnce() -> Result<i32, CtlError>) -> Result<OwnedFd, CtlError> {
    let fd = pidfd_open(pid).map_err(|source| CtlError::Pidfd { pid, source })?;
    match again()? {
        now if now == pid => Ok(fd),
        now => Err(CtlError::Restarted { pid, now }),
    }
}

/// Moves this process into the cgroup `cgroup`, below the first of `roots` that takes it: the
/// caller's /sys/fs/cgroup, else init's (a getty or sshd container may see the tree
/// read-only). The error names every attempt.
fn join_cgroup(roots: &[&Path], cgroup: &str) -> Result<(), CtlError> {
    let mut tried = Vec::new();
    for root in roots {
        let procs = root.join(cgroup).join("cgroup.procs");
        match std::fs::write(&procs, std::process::id().to_string()) {
            Ok(()) => return Ok(()),
            Err(e) => tried.push(format!("{}: {e}", procs.display())),
        }
    }
    Err(CtlError::Cgroup { tried })
}

fn exec(name: &str, cmd: &[String]) -> Result<i32, CtlError> {
    // Not ptraceable by the container once we are in its namespaces, nor CMD until its exec.
    tty::not_dumpable().map_err(CtlError::Dumpable)?;
    let mut command = std::process::Command::new(&cmd[0]);
    // CMD's session and terminal, made before joining the container (the caller's /dev/ptmx).
    let session = tty::prepare(&mut command, [0, 1, 2]).map_err(CtlError::Terminal)?;
    let (pid, dir, cgroup) = info(name)?;
    let pidfd = hold(pid, || info(name).map(|(p, _, _)| p))?;
    // The bundle as init sees it, through init's root (the server was checked to be pid 1),
    // never through a /containers of the caller's that a container might have written.
    let dir = Path::new("/proc/1/root").join(dir.strip_prefix("/").unwrap_or(&dir));
    let b = Bundle::load(&dir).map_err(CtlError::Bundle)?;
    // Init's view of the cgroup tree is the host's /sys/fs/cgroup (getty and sshd bind /sys).
    let roots = [Path::new("/sys/fs/cgroup"), Path::new("/proc/1/root/sys/fs/cgroup")];
    join_cgroup(&roots, &cgroup)?;

    // The namespaces that differ from ours (setns into one's own user namespace is EINVAL),
    // read while the pidfd holds the process: /proc/PID is still the container's.
    let mut kinds = 0;
    for (file, kind) in [
        ("user", ns::NEWUSER),
        ("cgroup", ns::NEWCGROUP),
        ("ipc", ns::NEWIPC),
        ("uts", ns::NEWUTS),
        ("net", ns::NEWNET),
        ("pid", ns::NEWPID),
        ("mnt", ns::NEWNS),
    ] {
        let theirs = PathBuf::from(format!("/proc/{pid}/ns/{file}"));
        let ours = PathBuf::from(format!("/proc/self/ns/{file}"));
        let link = std::fs::read_link(&theirs)
            .map_err(|source| CtlError::Namespace { path: theirs.clone(), source })?;
        if std::fs::read_link(&ours).ok() != Some(link) {
            kinds |= kind;
        }
    }
    if kinds != 0 {
        setns(&pidfd, kinds).map_err(|source| CtlError::Setns {
            old_kernel: source.raw_os_error() == Some(libc::EINVAL),
            source,
        })?;
    }

    let p = &b.config.process;
    let cwd = p.cwd.clone().unwrap_or_else(|| "/".into());
    command.args(&cmd[1..]).env_clear().current_dir(&cwd);
    for kv in &p.env {
        if let Some((k, v)) = kv.split_once('=') {
            command.env(k, v);
        }
    }
    let (caps, user, nnp, seccomp) =
        (b.caps, p.user.clone(), p.no_new_privileges, b.seccomp.clone());
    // SAFETY: the closure runs in the child between fork and exec of a single-threaded
    // process; it only makes syscalls through `Real` and allocates nothing it relies on.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(move || {
            let mut sys = Real;
            if let (Some(prog), false) = (seccomp.as_deref(), nnp) {
                sys.seccomp(prog)?;
            }
            sys.drop_bounding(caps.bounding)?;
            sys.set_ids(user.uid, user.gid, &user.additional_gids)?;
            sys.set_caps(&caps)?;
            if nnp {
                sys.no_new_privs()?;
                if let Some(prog) = seccomp.as_deref() {
                    sys.seccomp(prog)?;
                }
            }
            Ok(())
        });
    }
    tty::run(command, session).map_err(|source| CtlError::Run { cmd: cmd[0].clone(), source })
}

fn setns(pidfd: &OwnedFd, kinds: i32) -> std::io::Result<()> {
    use rustix::thread::ThreadNameSpaceType;
    let kinds =
        u32::try_from(kinds).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let kinds = ThreadNameSpaceType::from_bits_retain(kinds);
    Ok(rustix::thread::move_into_thread_name_spaces(pidfd.as_fd(), kinds)?)
}

#[cfg(test)]
mod tests {
    /// The bug: a failed write to the cgroup's `cgroup.procs` was ignored, and CMD ran outside
    /// the container's cgroup (its limits and device rules). Now it is an error naming the file.
    #[test]
    fn a_failed_cgroup_join_fails_the_exec() {
        let root = std::env::temp_dir().join(format!("baleen-exec-cg-{}", std::process::id()));
        let (a, b) = (root.join("a"), root.join("b"));
        let e = super::join_cgroup(&[&a, &b], "baleen/gone").unwrap_err().to_string();
        let (pa, pb) = (a.join("baleen/gone/cgroup.procs"), b.join("baleen/gone/cgroup.procs"));
        let want = format!("joining its cgroup ({}: ", pa.display());
        assert!(e.starts_with(&want) && e.contains(&format!("; {}: ", pb.display())), "{e}");
        // The second root serves when the first does not (a read-only view of the tree).
        std::fs::create_dir_all(b.join("baleen/here")).unwrap();
        super::join_cgroup(&[&a, &b], "baleen/here").unwrap();
        let written = std::fs::read_to_string(b.join("baleen/here/cgroup.procs")).unwrap();
        assert_eq!(written, std::process::id().to_string());
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// The bug: namespaces were entered by pid (`/proc/PID/ns/*`), which another process may
    /// hold by then. The process is now held by a pidfd checked against init's record.
    #[test]
    fn the_process_is_held_by_a_pidfd_checked_against_inits_record() {
        let me = i32::try_from(std::process::id()).unwrap();
        let fd = super::hold(me, || Ok(me)).unwrap();
        let fdinfo = format!("/proc/self/fdinfo/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        let fdinfo = std::fs::read_to_string(fdinfo).unwrap();
        assert!(fdinfo.lines().any(|l| l == format!("Pid:\t{me}")), "{fdinfo}");
        let e = super::hold(me, || Ok(me + 1)).unwrap_err().to_string();
        assert!(e.contains("restarted meanwhile"), "{e}");
        let not_running = || Err(super::CtlError::Answer("it is not running".into()));
        let e = super::hold(me, not_running).unwrap_err().to_string();
        assert_eq!(e, "it is not running");
    }

    #[test]
    fn info_is_parsed() {
        let got = super::parse_info("pid 42 dir /containers/services/sshd cgroup baleen/sshd\n");
        assert_eq!(got, Some((42, "/containers/services/sshd".into(), "baleen/sshd".into())));
        assert_eq!(super::parse_info("error: no"), None);
    }
}
