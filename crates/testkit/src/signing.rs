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
    EcP256,
}

/// A key (`NAME.key`, PKCS#8 PEM) and a self-signed certificate (`NAME.crt`) in `dir`, or
/// `None` when openssl is missing and tools are not required.
pub fn key_pair(dir: &Path, name: &str, kind: KeyKind) -> Option<(PathBuf, PathBuf)> {
    let openssl = crate::require_tool("openssl")?;
    let (key, cert) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.crt")));
    let newkey: &[&str] = match kind {
        KeyKind::Rsa2048 => &["-newkey", "rsa:2048"],
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
pub fn openssl(args: &[&std::ffi::OsStr]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().expect("running openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
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
