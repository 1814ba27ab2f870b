//! `baleen run --secure-boot [--enroll CERT]` refusals, before any VM starts: an output UEFI
//! cannot start is a usage error naming its format, a bad certificate is named with the reason,
//! and `--help` says what the flags do. (The boots are in crates/build/tests/secure_boot.rs.)

use std::path::Path;
use std::process::{Command, Output};

fn baleen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baleen")).args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn secure_boot_of_a_kernel_initrd_output_is_a_usage_error_naming_the_format() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("m-kernel"), b"k").unwrap();
    std::fs::write(tmp.path().join("m-initrd.img"), b"i").unwrap();
    let prefix = tmp.path().join("m");
    let out = baleen(&["run", "--secure-boot", "--accel", "tcg", prefix.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--secure-boot") && err.contains("kernel+initrd"), "{err}");
    assert!(!tmp.path().join("m-state").exists(), "no state dir for a refused run");
}

#[test]
fn enroll_needs_secure_boot_and_secure_boot_takes_no_fw() {
    let out = baleen(&["run", "--enroll", "db.crt", "out/x-efi.img"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--secure-boot"), "{}", stderr(&out));
    let out = baleen(&["run", "--secure-boot", "--fw", "OVMF.fd", "out/x-efi.img"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot be used with"), "{}", stderr(&out));
}

#[test]
fn a_bad_enroll_certificate_is_named_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    // A PE header is enough to be taken for a UKI.
    let mut uki = vec![0u8; 4096];
    uki[..2].copy_from_slice(b"MZ");
    uki[0x3c] = 0x80;
    uki[0x80..0x84].copy_from_slice(b"PE\0\0");
    let path = tmp.path().join("x.efi");
    std::fs::write(&path, uki).unwrap();
    let key = tmp.path().join("db.key");
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n").unwrap();
    let out = baleen(&[
        "run",
        "--secure-boot",
        "--enroll",
        key.to_str().unwrap(),
        "--accel",
        "tcg",
        path.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&key.display().to_string()) && err.contains("private key"), "{err}");
    assert!(!Path::new(&tmp.path().join("x-state/OVMF_VARS_4M.enrolled.fd")).exists());
}

#[test]
fn run_help_says_what_the_secure_boot_flags_do() {
    let out = baleen(&["run", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for claim in ["--secure-boot", "--enroll <CERT.pem>", "OVMF_CODE_4M.secboot.fd", "PK, KEK"] {
        assert!(text.contains(claim), "run --help lacks {claim:?}:\n{text}");
    }
}
