//! `baleen-ctl exec NAME CMD…`: the client joins a running container and starts CMD there.
//!
//! Order: ask init for the container's pid, bundle and cgroup; load the bundle (its user,
//! capabilities, seccomp filter, environment); move into its cgroup; open every namespace of
//! its process, then join them (a user namespace first, the mount namespace last, which also
//! makes the container's root ours); spawn CMD, which applies the container's identity between
//! fork and exec (so it is born in the container's pid namespace, as `nsenter` does); wait.

use super::ask;
use crate::container::Bundle;
use crate::sys::real::Real;
use crate::sys::{ns, Sys};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};

/// Runs `cmd` in the container `name`; its exit status (128 + signal when killed).
pub fn run(name: &str, cmd: &[String]) -> i32 {
    match exec(name, cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("baleen-ctl exec {name}: {e}");
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

fn exec(name: &str, cmd: &[String]) -> Result<i32, String> {
    let reply = ask(&format!("info {name}"))?;
    let (pid, dir, cgroup) =
        parse_info(&reply).ok_or_else(|| format!("init answered {:?}", reply.trim()))?;
    // The bundle as init sees it; a caller that does not bind /containers but shares the
    // host's pid namespace reaches it through init's root.
    let dir = if dir.join("config.json").is_file() {
        dir
    } else {
        Path::new("/proc/1/root").join(dir.strip_prefix("/").unwrap_or(&dir))
    };
    let b = Bundle::load(&dir).map_err(|e| e.to_string())?;
    // Init's view of the cgroup tree is the host's /sys/fs/cgroup (getty and sshd bind /sys).
    let procs = Path::new("/sys/fs/cgroup").join(&cgroup).join("cgroup.procs");
    let _ = std::fs::write(&procs, std::process::id().to_string());

    // Open them all first: once in the container's mount namespace, /proc is its.
    let mut joins = Vec::new();
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
        // The same namespace: nothing to join (setns into one's own user namespace is EINVAL).
        if std::fs::read_link(&theirs).ok() == std::fs::read_link(&ours).ok() {
            continue;
        }
        let f = std::fs::File::open(&theirs)
            .map_err(|e| format!("opening {}: {e}", theirs.display()))?;
        joins.push((file, kind, f));
    }
    for (file, kind, f) in &joins {
        setns(f, *kind).map_err(|e| format!("joining its {file} namespace: {e}"))?;
    }

    let p = &b.config.process;
    let cwd = p.cwd.clone().unwrap_or_else(|| "/".into());
    let mut command = std::process::Command::new(&cmd[0]);
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
    let status = command.status().map_err(|e| format!("starting {}: {e}", cmd[0]))?;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

#[allow(unsafe_code)]
fn setns(f: &std::fs::File, kind: i32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: f is an open namespace file; setns reads nothing else.
    if unsafe { libc::setns(f.as_raw_fd(), kind) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn info_is_parsed() {
        let got = super::parse_info("pid 42 dir /containers/services/sshd cgroup baleen/sshd\n");
        assert_eq!(got, Some((42, "/containers/services/sshd".into(), "baleen/sshd".into())));
        assert_eq!(super::parse_info("error: no"), None);
    }
}
