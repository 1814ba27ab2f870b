//! `--sign-key`/`--sign-cert` end to end: the spine system built into a signed UKI and a raw EFI
//! disk, checked by sbverify (accepted; refused after one byte of `.linux` changes),
//! byte-identical across two builds, and booted by `baleen run --secure-boot --enroll` under OVMF
//! with Secure Boot enforcing; the PCR 11 value the build predicts for it is systemd-measure's for
//! its sections, and the one a real TPM (swtpm, `baleen run --tpm`) holds when baleen-init runs.

use baleen_build::{BuildError, Built, Format, Signing};
use baleen_oci::Store;
use baleen_run::{secure_boot, SecureBoot};
use baleen_sign::PeLayout;
use baleen_testkit::boot::{test_options, BootTest};
use baleen_testkit::signing::{key_pair, sbverify, KeyKind};
use common::{boots_to_services, spine_config, spine_store, try_build_report, try_build_signed};
use std::path::Path;
use std::time::Duration;

use crate::common;

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
) -> Built {
    let sign = Signing { key: key.to_owned(), cert: cert.to_owned() };
    try_build_report(cfg, store, formats, out, None, Some(sign))
        .unwrap_or_else(|e| panic!("building {formats:?} signed: {e}"))
}

/// The PE sections of `pe` by name: their `VirtualSize` bytes, what systemd-stub measures.
fn sections(pe: &[u8]) -> Vec<(String, Vec<u8>)> {
    let u16_at = |o: usize| u16::from_le_bytes([pe[o], pe[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(pe[o..o + 4].try_into().unwrap()) as usize;
    let coff = u32_at(0x3c) + 4;
    let table = coff + 20 + u16_at(coff + 16);
    (0..u16_at(coff + 2))
        .map(|i| {
            let h = table + i * 40;
            let name = String::from_utf8_lossy(&pe[h..h + 8]).trim_end_matches('\0').to_owned();
            let (len, at) = (u32_at(h + 8), u32_at(h + 20));
            (name, pe[at..at + len].to_vec())
        })
        .collect()
}

/// `systemd-measure calculate --phase=` (Debian's systemd 252) on the UKI's sections: PCR 11
/// after the stub, in lower-case hex; None when systemd-measure is missing (not required).
fn systemd_measure(uki: &[u8], dir: &Path) -> Option<String> {
    const TOOL: &str = "/usr/lib/systemd/systemd-measure";
    if !Path::new(TOOL).is_file() {
        assert!(!baleen_testkit::tools_required(), "{TOOL} missing: install systemd");
        eprintln!("skipping the systemd-measure cross-check: {TOOL} is not installed");
        return None;
    }
    let mut cmd = std::process::Command::new(TOOL);
    cmd.args(["calculate", "--bank=sha256", "--phase="]);
    for (name, bytes) in sections(uki) {
        if [".linux", ".osrel", ".cmdline", ".initrd", ".pcrpkey"].contains(&name.as_str()) {
            let file = dir.join(&name[1..]);
            std::fs::write(&file, bytes).unwrap();
            cmd.arg(format!("--{}={}", &name[1..], file.display()));
        }
    }
    let out = cmd.output().expect("running systemd-measure");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "systemd-measure: {}", String::from_utf8_lossy(&out.stderr));
    Some(text.trim().strip_prefix("11:sha256=").expect("one sha256 line").to_owned())
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
    let built = signed_build(&cfg, &store, &formats, &tmp.path().join("a"), &key, &cert);
    let b = signed_build(&cfg, &store, &formats, &tmp.path().join("b"), &key, &cert).files;
    let a = &built.files;
    for (x, y) in a.iter().zip(&b) {
        assert!(std::fs::read(x).unwrap() == std::fs::read(y).unwrap(), "{} differs", x.display());
    }
    // The PCR 11 policy, signed with the key, sits in the UKI under the Authenticode signature.
    let pcr = built.pcr11.expect("a signed build predicts PCR 11");
    assert!(pcr.policy_signed, "an RSA key signs the PCR policy");
    let uki = std::fs::read(&a[0]).unwrap();
    let found = sections(&uki);
    let section = |n: &str| found.iter().find(|(name, _)| name == n).map(|(_, b)| b.clone());
    let pcrsig = String::from_utf8(section(".pcrsig").expect("a .pcrsig section")).unwrap();
    // Signed for the value after `ready` (and the three phase paths before it), not for the
    // stub's own value: baleen-init measures the phases.
    let hex = |v: &[u8; 32]| v.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let ready = hex(&baleen_sign::pcr::policy_pcr11(&pcr.ready));
    assert!(pcrsig.contains(&format!("\"pol\":\"{ready}\"")), "{pcrsig}");
    let bare = hex(&baleen_sign::pcr::policy_pcr11(&pcr.value));
    assert!(!pcrsig.contains(&bare), "{pcrsig}");
    let pcrpkey = String::from_utf8(section(".pcrpkey").expect("a .pcrpkey section")).unwrap();
    let cert_pem = baleen_testkit::signing::openssl(
        &["x509", "-pubkey", "-noout", "-in"]
            .iter()
            .map(std::ffi::OsStr::new)
            .chain([cert.as_os_str()])
            .collect::<Vec<_>>(),
    );
    assert_eq!(pcrpkey.as_bytes(), &cert_pem[..], ".pcrpkey is the certificate's public key");
    if let Some(theirs) = systemd_measure(&uki, tmp.path()) {
        eprintln!("PCR 11: baleen {} systemd-measure {theirs}", pcr.hex());
        assert_eq!(pcr.hex(), theirs, "systemd-measure computes another PCR 11");
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
/// The raw EFI disk, the EFI ISO and the qcow2-efi disk signed with its key boot to the spine's
/// containers and a clean poweroff; the disk with one byte of the UKI's `.linux` changed, and an unsigned UKI,
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
    let formats = [Format::Uki, Format::RawEfi, Format::IsoEfi, Format::Qcow2Efi];
    let built = signed_build(&cfg, &store, &formats, &tmp.path().join("out"), &key, &cert);
    let (out, pcr) = (&built.files, built.pcr11.expect("a signed build predicts PCR 11"));
    let (uki, disk, iso, qcow2) = (&out[0], &out[1], &out[2], &out[3]);
    let unsigned =
        try_build_signed(&cfg, &store, &[Format::Uki], &tmp.path().join("plain"), None, None)
            .expect("building the unsigned UKI");

    // The state dir lives as long as the returned guard (removed then, unless failing).
    let enrolled = SecureBoot::Enroll(cert.clone());
    // The disk boots with a TPM (`baleen run --tpm`, swtpm) when swtpm is here: init logs the
    // PCR 11 the stub measured, which must be the one the build predicted.
    let swtpm = baleen_testkit::require_tool("swtpm").is_some();
    let boot = |name: &str, image: &Path, keys: &SecureBoot| {
        let dir = BootTest::scratch_dir(name);
        let mut opts = test_options(image, &dir);
        opts.secure_boot = Some(keys.clone());
        opts.tpm = swtpm && name == "secure-disk";
        let vm = BootTest::with_options(name, opts, Duration::from_secs(400));
        (dir, vm.expect("qemu was found above"))
    };
    // qcow2-efi: the same signed UKI in another container, read by qemu's own driver.
    for (name, image) in [("secure-disk", disk), ("secure-iso", iso), ("secure-qcow2", qcow2)] {
        let (_dir, vm) = boot(name, image, &enrolled);
        vm.wait_for("Secure boot enabled", Duration::from_secs(300));
        if swtpm && name == "secure-disk" {
            vm.wait_for("tpm pcr11 sha256 ", Duration::from_secs(300));
            // The console arrives in pieces: read the value once its line has ended.
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            let logged = loop {
                let console = vm.console();
                let rest = console.split("tpm pcr11 sha256 ").nth(1).unwrap_or_default();
                if let Some((value, _)) = rest.split_once('\n') {
                    break value.to_string();
                }
                assert!(std::time::Instant::now() < deadline, "a cut PCR 11 line:\n{console}");
                std::thread::sleep(Duration::from_millis(100));
            };
            // Logged after `ready`: the stub's measurements, then init's four boot phases.
            eprintln!("PCR 11: predicted {} measured {}", pcr.ready_hex(), logged.trim());
            assert_eq!(
                logged.trim(),
                pcr.ready_hex(),
                "the PCR 11 after ready is not the predicted one for the full phase path"
            );
        }
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
