//! Throw-away Secure Boot key pairs and the sbsigntool cross-checks, for the signing tests.
//!
//! Keys are made with the openssl CLI at test time (never at build time, never by baleen), so
//! the tests also prove that baleen reads what `openssl req` writes.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The kinds of key baleen signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa2048,
    Rsa4096,
    EcP256,
}

/// A key (`NAME.key`, PKCS#8 PEM) and a self-signed certificate (`NAME.crt`) in `dir`, or
/// `None` when openssl is missing and tools are not required.
pub fn key_pair(dir: &Path, name: &str, kind: KeyKind) -> Option<(PathBuf, PathBuf)> {
    let openssl = crate::require_tool("openssl")?;
    let (key, cert) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.crt")));
    let newkey: &[&str] = match kind {
        KeyKind::Rsa2048 => &["-newkey", "rsa:2048"],
        KeyKind::Rsa4096 => &["-newkey", "rsa:4096"],
        KeyKind::EcP256 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    };
    let out = Command::new(openssl)
        .args(["req", "-x509", "-nodes", "-days", "3650", "-subj"])
        .arg(format!("/CN=baleen test {name}"))
        .args(newkey)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("running openssl req");
    assert!(out.status.success(), "openssl req: {}", String::from_utf8_lossy(&out.stderr));
    Some((key, cert))
}

/// `openssl ARGS...`, asserting success; its stdout.
pub fn openssl<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().expect("running openssl");
    let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
    assert!(out.status.success(), "openssl {shown:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// `sbverify --cert CERT FILE`: whether it accepts, and what it printed.
pub fn sbverify(cert: &Path, file: &Path) -> Option<(bool, String)> {
    let tool = crate::require_tool("sbverify")?;
    let out =
        Command::new(tool).arg("--cert").arg(cert).arg(file).output().expect("running sbverify");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Some((out.status.success(), text))
}

/// virt-firmware's `virt-fw-vars`, the reference writer of OVMF variable stores: from `PATH`, or
/// installed once with `pip install --target` into `target/baleen-test-cache/virt-firmware/`
/// (Debian bookworm has no python3-virt-firmware). `None` (skipped, saying why) when neither
/// works and tools are not required.
pub fn virt_fw_vars() -> Option<Command> {
    if let Ok(out) = Command::new("virt-fw-vars").arg("--help").output() {
        if out.status.success() {
            return Some(Command::new("virt-fw-vars"));
        }
    }
    let dir = crate::kernel::cache_dir().join("virt-firmware");
    let script = dir.join("bin/virt-fw-vars");
    if !script.is_file() {
        // Into a private directory first, renamed into place: concurrent tests race safely.
        let tmp = dir.with_file_name(format!("virt-firmware.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let out = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target"])
            .arg(&tmp)
            .arg("virt-firmware")
            .output();
        let failed = match &out {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(String::from_utf8_lossy(&o.stderr).trim().to_owned()),
            Err(e) => Some(format!("running python3 -m pip: {e}")),
        };
        if let Some(why) = failed {
            let _ = std::fs::remove_dir_all(&tmp);
            assert!(!crate::tools_required(), "pip install virt-firmware failed: {why}");
            eprintln!(
                "skipping: virt-fw-vars is not installed and pip could not install it: {why}"
            );
            return None;
        }
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp); // another test won the race
        }
    }
    let mut cmd = Command::new("python3");
    cmd.arg(script).env("PYTHONPATH", &dir);
    Some(cmd)
}
