//! `--sign-key`/`--sign-cert` end to end: the spine system built into a signed UKI and a raw EFI
//! disk, checked by sbverify (accepted; refused after one byte of `.linux` changes),
//! byte-identical across two builds, and booted by `baleen run --secure-boot --enroll` under OVMF
//! with Secure Boot enforcing.

use baleen_build::{BuildError, Format, Signing};
use baleen_oci::Store;
use baleen_run::{secure_boot, SecureBoot};
use baleen_sign::PeLayout;
use baleen_testkit::boot::{test_options, BootTest};
use baleen_testkit::signing::{key_pair, sbverify, KeyKind};
use common::{boots_to_services, spine_config, spine_store, try_build_signed};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;

const STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

/// The spine system's store, or None (skipped) when the kernel, busybox or the stub are missing.
fn setup(tmp: &Path) -> Option<(baleen_spec::Config, Store)> {
    baleen_testkit::require_tool("busybox")?;
    if !Path::new(STUB).is_file() {
        assert!(!baleen_testkit::tools_required(), "{STUB} missing: install systemd-boot-efi");
        eprintln!("skipping: {STUB} is not installed");
        return None;
    }
    let kernel = baleen_testkit::kernel::debian_cloud_kernel()?;
    Some((spine_config(), spine_store(&tmp.join("store"), &kernel)))
}

fn signed_build(
    cfg: &baleen_spec::Config,
    store: &Store,
    formats: &[Format],
    out: &Path,
    key: &Path,
    cert: &Path,
) -> Vec<PathBuf> {
    let sign = Signing { key: key.to_owned(), cert: cert.to_owned() };
    try_build_signed(cfg, store, formats, out, None, Some(sign))
        .unwrap_or_else(|e| panic!("building {formats:?} signed: {e}"))
}

/// The file offset of a byte in the middle of the UKI's `.linux` (the last section, by layout).
fn a_linux_byte(uki: &[u8]) -> usize {
    let layout = PeLayout::read(&mut std::io::Cursor::new(uki)).unwrap();
    let &(ptr, size) = layout.sections.last().unwrap();
    assert_eq!(
        &uki[ptr as usize + 0x202..ptr as usize + 0x206],
        b"HdrS",
        "the last section is the kernel (bzImage header)"
    );
    (ptr + size / 2) as usize
}

#[test]
fn a_signed_uki_passes_sbverify_is_reproducible_and_fails_with_a_changed_linux_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((cfg, store)) = setup(tmp.path()) else { return };
    let Some((key, cert)) = key_pair(tmp.path(), "uki", KeyKind::Rsa2048) else { return };
    let formats = [Format::Uki, Format::RawEfi];
    let a = signed_build(&cfg, &store, &formats, &tmp.path().join("a"), &key, &cert);
    let b = signed_build(&cfg, &store, &formats, &tmp.path().join("b"), &key, &cert);
    for (x, y) in a.iter().zip(&b) {
        assert!(std::fs::read(x).unwrap() == std::fs::read(y).unwrap(), "{} differs", x.display());
    }
    let Some((ok, text)) = sbverify(&cert, &a[0]) else { return };
    eprintln!("sbverify spine.efi: {text}");
    assert!(ok, "sbverify refused the signed UKI:\n{text}");

    let mut uki = std::fs::read(&a[0]).unwrap();
    let at = a_linux_byte(&uki);
    uki[at] ^= 0x01;
    let tampered = tmp.path().join("tampered.efi");
    std::fs::write(&tampered, &uki).unwrap();
    let (ok, text) = sbverify(&cert, &tampered).unwrap();
    eprintln!("sbverify tampered.efi: {text}");
    assert!(!ok, "sbverify accepted a UKI with a changed .linux byte:\n{text}");

    // The disk boots the signed UKI: its ESP holds that very file.
    if let Some(back) = common::esp_boot_file(&a[1], tmp.path()) {
        assert!(back == std::fs::read(&a[0]).unwrap(), "the ESP holds the signed UKI");
    }
}

#[test]
fn a_key_that_is_not_the_certificates_fails_before_any_output_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((cfg, store)) = setup(tmp.path()) else { return };
    let Some((_, cert)) = key_pair(tmp.path(), "one", KeyKind::EcP256) else { return };
    let Some((key, _)) = key_pair(tmp.path(), "two", KeyKind::EcP256) else { return };
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let sign = Signing { key: key.clone(), cert: cert.clone() };
    let err = try_build_signed(&cfg, &store, &[Format::Uki], &out, None, Some(sign)).unwrap_err();
    let text =
        format!("{err}: {}", std::error::Error::source(&err).map(|s| s.to_string()).unwrap());
    assert!(matches!(err, BuildError::Signing(_)), "{text}");
    assert!(text.contains(&key.display().to_string()) && text.contains("not a pair"), "{text}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0, "nothing is written");
}

/// `baleen run --secure-boot --enroll CERT` (the run library's entry point, as the CLI calls it):
/// OVMF with Secure Boot enforcing and only a throw-away certificate enrolled as PK, KEK and db.
/// The raw EFI disk and the EFI ISO signed with its key boot to the spine's containers and a
/// clean poweroff; the disk with one byte of the UKI's `.linux` changed, and an unsigned UKI,
/// do not start, and the run fails. Under Microsoft's keys (no `--enroll`) the signed disk does
/// not start either.
#[test]
fn run_secure_boot_starts_signed_outputs_and_refuses_changed_and_unsigned_ones() {
    let Some(_) = baleen_testkit::require_tool("qemu-system-x86_64") else { return };
    let ovmf = Path::new(secure_boot::OVMF_DIR);
    let firmware = [secure_boot::SECBOOT_CODE, secure_boot::EMPTY_VARS].map(|f| ovmf.join(f));
    if let Some(missing) = firmware.iter().find(|p| !p.is_file()) {
        assert!(!baleen_testkit::tools_required(), "{missing:?} missing: install Debian's ovmf");
        eprintln!("skipping: {missing:?} missing (Debian's ovmf)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some((cfg, store)) = setup(tmp.path()) else { return };
    let Some((key, cert)) = key_pair(tmp.path(), "db", KeyKind::Rsa2048) else { return };
    let formats = [Format::Uki, Format::RawEfi, Format::IsoEfi];
    let out = signed_build(&cfg, &store, &formats, &tmp.path().join("out"), &key, &cert);
    let (uki, disk, iso) = (&out[0], &out[1], &out[2]);
    let unsigned =
        try_build_signed(&cfg, &store, &[Format::Uki], &tmp.path().join("plain"), None, None)
            .expect("building the unsigned UKI");

    // The state dir lives as long as the returned guard (removed then, unless failing).
    let enrolled = SecureBoot::Enroll(cert.clone());
    let boot = |name: &str, image: &Path, keys: &SecureBoot| {
        let dir = BootTest::scratch_dir(name);
        let mut opts = test_options(image, &dir);
        opts.secure_boot = Some(keys.clone());
        let vm = BootTest::with_options(name, opts, Duration::from_secs(400));
        (dir, vm.expect("qemu was found above"))
    };
    for (name, image) in [("secure-disk", disk), ("secure-iso", iso)] {
        let (_dir, vm) = boot(name, image, &enrolled);
        vm.wait_for("Secure boot enabled", Duration::from_secs(300));
        boots_to_services(vm);
    }

    // The same change as in the sbverify test above, made inside the disk: the UKI is stored
    // whole in the ESP.
    let uki_bytes = std::fs::read(uki).unwrap();
    let at = a_linux_byte(&uki_bytes);
    let mut raw = std::fs::read(disk).unwrap();
    let in_disk =
        raw.windows(4096).position(|w| w == &uki_bytes[..4096]).expect("the UKI in the disk");
    raw[in_disk + at] ^= 0x01;
    let tampered = tmp.path().join("tampered-efi.img");
    std::fs::write(&tampered, &raw).unwrap();
    // OVMF names the refused disk; a refused `-kernel` UKI it skips silently, then finds
    // nothing else to boot. Without --enroll (Microsoft's keys) our key is not trusted either.
    let ms = SecureBoot::MicrosoftKeys;
    let refused = [
        ("secure-tampered", &tampered, &enrolled, "Access Denied"),
        ("secure-unsigned", &unsigned[0], &enrolled, "No bootable option"),
        ("secure-ms-keys", disk, &ms, "Access Denied"),
    ];
    for (name, image, keys, line) in refused {
        let (_dir, vm) = boot(name, image, keys);
        let console = vm.wait_for(line, Duration::from_secs(300));
        let outcome = vm.wait_exit();
        assert!(!console.contains("Linux version"), "{name}: a kernel started:\n{console}");
        assert_eq!(outcome.verdict.code, 1, "{name}: {:?}\n{console}", outcome.verdict.message);
        let msg = outcome.verdict.message.unwrap_or_default();
        eprintln!("baleen run on {name}: {msg}");
        assert!(msg.contains(line), "{name}: the verdict does not say why: {msg}");
    }
}
