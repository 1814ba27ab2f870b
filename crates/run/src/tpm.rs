//! `baleen run --tpm`: a software TPM 2.0 for the VM. swtpm (Debian's `swtpm`) runs beside qemu
//! with its state in `<state>/tpm/`, so the TPM keeps its keys and NV from one run to the next,
//! as a machine's TPM does, and qemu reaches it through the control socket `<state>/swtpm.sock`
//! (`-tpmdev emulator`, a `tpm-tis` device on x86_64, `tpm-tis-device` on aarch64's virt).
//!
//! swtpm is started before qemu and stopped after it; it also ends by itself when qemu closes
//! the socket (`--terminate`), which is what stops it behind a `--detached` qemu.

use crate::plan::Arch;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long swtpm gets to create its socket.
const SOCKET_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TpmError {
    #[error("creating the TPM state directory {path}")]
    StateDir { path: PathBuf, source: std::io::Error },
    #[error("starting swtpm (Debian package swtpm)")]
    Spawn(#[source] std::io::Error),
    #[error("swtpm exited ({status}) before creating {socket}; see {log}")]
    Exited { status: std::process::ExitStatus, socket: PathBuf, log: PathBuf },
    #[error("swtpm did not create {socket} within {secs} s; see {log}")]
    NoSocket { socket: PathBuf, secs: u64, log: PathBuf },
    #[error(
        "the TPM socket {0} is longer than a unix socket address allows (108 bytes): use a \
         shorter --state directory"
    )]
    PathTooLong(PathBuf),
}

/// Where qemu finds the TPM of the VM whose state is in `state_dir`.
pub fn socket(state_dir: &Path) -> PathBuf {
    state_dir.join("swtpm.sock")
}

/// The qemu arguments that attach the TPM behind `socket` to an `arch` machine.
pub fn qemu_args(socket: &Path, arch: Arch) -> Vec<OsString> {
    let mut chardev = OsString::from("socket,id=chrtpm,path=");
    chardev.push(socket.as_os_str().to_string_lossy().replace(',', ",,"));
    let device = match arch {
        Arch::X86_64 => "tpm-tis,tpmdev=tpm0",
        Arch::Aarch64 => "tpm-tis-device,tpmdev=tpm0",
    };
    ["-chardev".into(), chardev, "-tpmdev".into(), "emulator,id=tpm0,chardev=chrtpm".into()]
        .into_iter()
        .chain(["-device".into(), device.into()])
        .collect()
}

/// A running swtpm. Dropping it stops it.
#[derive(Debug)]
pub struct Swtpm {
    child: Child,
}

impl Swtpm {
    /// Starts swtpm for the VM whose state is in `state_dir` and waits for its socket.
    pub fn start(state_dir: &Path) -> Result<Swtpm, TpmError> {
        let sock = socket(state_dir);
        if sock.as_os_str().len() >= 108 {
            return Err(TpmError::PathTooLong(sock));
        }
        let dir = state_dir.join("tpm");
        std::fs::create_dir_all(&dir)
            .map_err(|source| TpmError::StateDir { path: dir.clone(), source })?;
        // One left by a killed run would be in the way.
        let _ = std::fs::remove_file(&sock);
        let log = state_dir.join("swtpm.log");
        let comma = |p: &Path| p.to_string_lossy().replace(',', ",,");
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--terminate", "--tpmstate"])
            .arg(format!("dir={}", comma(&dir)))
            .arg("--ctrl")
            .arg(format!("type=unixio,path={}", comma(&sock)))
            .arg("--log")
            .arg(format!("file={}", comma(&log)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(TpmError::Spawn)?;
        let mut tpm = Swtpm { child };
        let started = Instant::now();
        while !sock.exists() {
            if let Ok(Some(status)) = tpm.child.try_wait() {
                return Err(TpmError::Exited { status, socket: sock, log });
            }
            if started.elapsed() > SOCKET_WAIT {
                return Err(TpmError::NoSocket { socket: sock, secs: SOCKET_WAIT.as_secs(), log });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(tpm)
    }

    /// swtpm's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Leaves swtpm running (behind a `--detached` qemu, which ends it by closing the socket).
    pub fn detach(self) {
        std::mem::forget(self);
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_reaches_the_tpm_through_the_socket_with_commas_escaped() {
        let args = qemu_args(Path::new("/tmp/a,b/swtpm.sock"), Arch::X86_64);
        let args: Vec<_> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            args,
            [
                "-chardev",
                "socket,id=chrtpm,path=/tmp/a,,b/swtpm.sock",
                "-tpmdev",
                "emulator,id=tpm0,chardev=chrtpm",
                "-device",
                "tpm-tis,tpmdev=tpm0"
            ]
        );
        let arm = qemu_args(Path::new("/s"), Arch::Aarch64);
        assert_eq!(arm[5], "tpm-tis-device,tpmdev=tpm0");
    }
}
