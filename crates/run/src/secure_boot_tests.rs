use super::*;
use crate::flags::AccelChoice;
use crate::prepare::{prepare, PrepareError, RunOptions};

/// A file whose first bytes say what it is: an MBR disk, qcow2, an ISO, a PE (UKI).
fn image(dir: &Path, name: &str) -> PathBuf {
    let mut b = vec![0u8; 34 * 1024];
    if name.ends_with(".qcow2") {
        b[..4].copy_from_slice(b"QFI\xfb");
    } else if name.ends_with(".iso") {
        b[32769..32774].copy_from_slice(b"CD001");
    } else if name.ends_with(".efi") {
        b[..2].copy_from_slice(b"MZ");
        b[0x3c] = 0x80;
        b[0x80..0x84].copy_from_slice(b"PE\0\0");
    } else {
        b[510..512].copy_from_slice(&[0x55, 0xaa]);
    }
    let p = dir.join(name);
    std::fs::write(&p, b).unwrap();
    p
}

fn secure_options(path: &Path, state: &Path) -> RunOptions {
    let mut o = RunOptions::new(path);
    o.secure_boot = Some(SecureBoot::MicrosoftKeys);
    o.accel = AccelChoice::Tcg;
    o.state_dir = Some(state.to_owned());
    o.cache_dir = Some(state.join("cache"));
    o
}

#[test]
fn secure_boot_of_a_bios_or_kernel_output_is_refused_naming_the_format_before_any_file() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("m-kernel"), b"k").unwrap();
    std::fs::write(d.path().join("m-initrd.img"), b"i").unwrap();
    std::fs::write(d.path().join("s-kernel"), b"k").unwrap();
    std::fs::write(d.path().join("s-squashfs.img"), b"s").unwrap();
    let cases = [
        (d.path().join("m"), "kernel+initrd"),
        (d.path().join("s"), "kernel+squashfs"),
        (image(d.path(), "b-bios.img"), "raw-bios"),
        (image(d.path(), "b.qcow2"), "qcow2-bios"),
        (image(d.path(), "b.iso"), "iso-bios"),
    ];
    let state = d.path().join("state");
    for (path, format) in cases {
        let err = prepare(&secure_options(&path, &state)).unwrap_err();
        let PrepareError::SecureBoot(inner) = &err else { panic!("{path:?}: {err:?}") };
        assert!(matches!(inner, SecureBootError::NotEfi { .. }), "{path:?}: {inner:?}");
        let text = inner.to_string();
        assert!(text.contains(format) && text.contains("raw-efi"), "{path:?}: {text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(!state.exists(), "nothing is created for a refused run");
    }
}

#[test]
fn efi_outputs_and_the_hybrid_disks_pass_the_format_check() {
    let d = tempfile::tempdir().unwrap();
    for name in ["b-efi.img", "b-efi.qcow2", "b-efi.iso", "b-efi-initrd.iso", "b.efi", "b.raw"] {
        let path = image(d.path(), name);
        let detected = crate::prepare::detect(&path, None).unwrap();
        check_efi(&path, &detected, Arch::X86_64).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let path = image(d.path(), "b.efi");
    let detected = crate::prepare::detect(&path, None).unwrap();
    let err = check_efi(&path, &detected, Arch::Aarch64).unwrap_err();
    assert!(err.to_string().contains("x86_64"), "{err}");
}

#[test]
fn missing_secure_boot_firmware_names_debians_ovmf_package() {
    let d = tempfile::tempdir().unwrap();
    let err = firmware(&SecureBoot::MicrosoftKeys, d.path(), d.path()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(SECBOOT_CODE) && text.contains("`ovmf`"), "{text}");
    std::fs::write(d.path().join(SECBOOT_CODE), b"code").unwrap();
    let err = firmware(&SecureBoot::MicrosoftKeys, d.path(), d.path()).unwrap_err();
    assert!(err.to_string().contains(MS_VARS) && err.to_string().contains("`ovmf`"), "{err}");
}

#[test]
fn microsofts_store_is_copied_once_into_the_state_dir_and_kept() {
    let d = tempfile::tempdir().unwrap();
    let (ovmf, state) = (d.path().join("ovmf"), d.path().join("state"));
    std::fs::create_dir_all(&ovmf).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(ovmf.join(SECBOOT_CODE), b"code").unwrap();
    std::fs::write(ovmf.join(MS_VARS), b"microsoft").unwrap();
    let fw = firmware(&SecureBoot::MicrosoftKeys, &ovmf, &state).unwrap();
    let want = Firmware::SecureBoot { code: ovmf.join(SECBOOT_CODE), vars: state.join(MS_VARS) };
    assert_eq!(fw, want);
    std::fs::write(state.join(MS_VARS), b"boot entries the VM wrote").unwrap();
    firmware(&SecureBoot::MicrosoftKeys, &ovmf, &state).unwrap();
    assert_eq!(std::fs::read(state.join(MS_VARS)).unwrap(), b"boot entries the VM wrote");
}

#[test]
fn a_bad_enroll_certificate_is_named_with_the_reason() {
    let d = tempfile::tempdir().unwrap();
    let key = d.path().join("db.key");
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n").unwrap();
    let err = firmware(&SecureBoot::Enroll(key), d.path(), d.path()).unwrap_err();
    let SecureBootError::Certificate(cause) = &err else { panic!("{err:?}") };
    assert!(cause.to_string().contains("db.key") && cause.to_string().contains("private key"));
    assert!(!d.path().join(ENROLLED_VARS).exists());
}

/// With Debian's ovmf installed: the enrolled store is written into the state dir, the same
/// bytes at every run.
#[test]
fn enrolling_writes_the_store_into_the_state_dir_reproducibly() {
    let ovmf = Path::new(OVMF_DIR);
    if !ovmf.join(EMPTY_VARS).is_file() || !ovmf.join(SECBOOT_CODE).is_file() {
        eprintln!("skipping: Debian's ovmf is not installed");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let cert = d.path().join("snakeoil.pem");
    std::fs::copy("/usr/share/ovmf/PkKek-1-snakeoil.pem", &cert).unwrap();
    let keys = SecureBoot::Enroll(cert);
    let Firmware::SecureBoot { vars, .. } = firmware(&keys, ovmf, d.path()).unwrap() else {
        panic!("not the Secure Boot firmware")
    };
    assert_eq!(vars, d.path().join(ENROLLED_VARS));
    let first = std::fs::read(&vars).unwrap();
    std::fs::write(&vars, b"changed by the VM").unwrap();
    firmware(&keys, ovmf, d.path()).unwrap();
    assert!(std::fs::read(&vars).unwrap() == first, "rewritten from the certificate");
}
