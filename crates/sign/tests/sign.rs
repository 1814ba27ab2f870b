//! Signing a real EFI binary (systemd's stub from Debian) with keys made by openssl,
//! cross-checked by sbsigntool: `sbverify --cert` must accept what `sign` writes and reject it
//! once one byte changes, and sbsign must sign the same image hash.

use baleen_sign::{sign_bytes, KeyError, KeyPair, PeChecksum, PeLayout, SignError};
use baleen_testkit::signing::{key_pair, openssl, sbverify, KeyKind};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// An unsigned PE from Debian's systemd-boot-efi, or `None` when it is not installed.
fn efi_binary() -> Option<Vec<u8>> {
    let path = Path::new("/usr/lib/systemd/boot/efi/linuxx64.efi.stub");
    match std::fs::read(path) {
        Ok(b) => Some(b),
        Err(_) if !baleen_testkit::tools_required() => {
            eprintln!("skipping: {} is missing (systemd-boot-efi)", path.display());
            None
        }
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

fn load(key: &Path, cert: &Path) -> KeyPair {
    let text = |p: &Path| std::fs::read_to_string(p).unwrap();
    KeyPair::from_pem(&text(key), &text(cert)).unwrap()
}

struct Setup {
    dir: tempfile::TempDir,
    pe: Vec<u8>,
    key: PathBuf,
    cert: PathBuf,
}

fn setup(kind: KeyKind) -> Option<Setup> {
    let pe = efi_binary()?;
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = key_pair(dir.path(), "signer", kind)?;
    baleen_testkit::require_tool("sbverify")?;
    Some(Setup { dir, pe, key, cert })
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn sbverify_accepts_and_rejects_one_changed_byte(kind: KeyKind) {
    let Some(s) = setup(kind) else { return };
    let signed = sign_bytes(&load(&s.key, &s.cert), &s.pe).unwrap();
    let path = write(s.dir.path(), "signed.efi", &signed);
    // What the signature covers is the unsigned image's hash.
    let hash = |b: &[u8]| {
        let mut r = std::io::Cursor::new(b);
        PeLayout::read(&mut r).unwrap().digest(&mut r).unwrap()
    };
    assert_eq!(hash(&signed), hash(&s.pe));
    let (ok, text) = sbverify(&s.cert, &path).unwrap();
    eprintln!("sbverify ({kind:?}): {text}");
    assert!(ok, "sbverify refused the {kind:?} signature:\n{text}");

    // One byte in the middle of the first section's data (code, not headers).
    let layout = PeLayout::read(&mut std::io::Cursor::new(&s.pe)).unwrap();
    let (ptr, size) = layout.sections[0];
    let mut tampered = signed.clone();
    tampered[(ptr + size / 2) as usize] ^= 1;
    let path = write(s.dir.path(), "tampered.efi", &tampered);
    let (ok, text) = sbverify(&s.cert, &path).unwrap();
    assert!(!ok, "sbverify accepted a changed byte:\n{text}");
}

#[test]
fn sbverify_accepts_an_rsa_signature_and_rejects_a_changed_byte() {
    sbverify_accepts_and_rejects_one_changed_byte(KeyKind::Rsa2048);
}

#[test]
fn sbverify_accepts_an_rsa_4096_signature_and_rejects_a_changed_byte() {
    sbverify_accepts_and_rejects_one_changed_byte(KeyKind::Rsa4096);
}

#[test]
fn sbverify_accepts_an_ecdsa_p256_signature_and_rejects_a_changed_byte() {
    sbverify_accepts_and_rejects_one_changed_byte(KeyKind::EcP256);
}

#[test]
fn the_image_hash_is_the_one_sbsign_signs() {
    let Some(s) = setup(KeyKind::Rsa2048) else { return };
    let Some(sbsign) = baleen_testkit::require_tool("sbsign") else { return };
    let input = write(s.dir.path(), "unsigned.efi", &s.pe);
    let reference = s.dir.path().join("sbsign.efi");
    let out = std::process::Command::new(sbsign)
        .arg("--key")
        .arg(&s.key)
        .arg("--cert")
        .arg(&s.cert)
        .arg("--output")
        .arg(&reference)
        .arg(&input)
        .output()
        .unwrap();
    assert!(out.status.success(), "sbsign: {}", String::from_utf8_lossy(&out.stderr));
    let reference = std::fs::read(reference).unwrap();
    let layout = PeLayout::read(&mut std::io::Cursor::new(&s.pe)).unwrap();
    let digest = layout.digest(&mut std::io::Cursor::new(&s.pe)).unwrap();
    // sbsign's SpcIndirectDataContent ends with the DigestInfo's OCTET STRING of the hash.
    let needle = [&[0x04, 0x20][..], &digest].concat();
    assert!(
        reference.windows(needle.len()).any(|w| w == needle),
        "sbsign signed another image hash than ours"
    );
    // And the image itself is laid out alike: the same bytes up to the certificate table,
    // but for the checksum and the directory entry's size (they cover different signatures).
    let ours = sign_bytes(&load(&s.key, &s.cert), &s.pe).unwrap();
    let table_at = |b: &[u8]| {
        let at = layout.cert_dir_at;
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
    };
    assert_eq!(table_at(&ours), table_at(&reference), "the certificate table starts elsewhere");
    let mask = |b: &[u8]| {
        let mut b = b[..table_at(b)].to_vec();
        b[layout.checksum_at..layout.checksum_at + 4].fill(0);
        b[layout.cert_dir_at + 4..layout.cert_dir_at + 8].fill(0);
        b
    };
    assert!(mask(&ours) == mask(&reference), "the signed images differ before the signature");
}

#[test]
fn the_pe_checksum_covers_the_signed_file() {
    let Some(s) = setup(KeyKind::EcP256) else { return };
    let signed = sign_bytes(&load(&s.key, &s.cert), &s.pe).unwrap();
    let layout = PeLayout::read(&mut std::io::Cursor::new(&s.pe)).unwrap();
    let at = layout.checksum_at;
    let stored = u32::from_le_bytes(signed[at..at + 4].try_into().unwrap());
    let mut zeroed = signed.clone();
    zeroed[at..at + 4].fill(0);
    let mut sum = PeChecksum::default();
    sum.add(&zeroed);
    assert_eq!(stored, sum.finish());
    assert_ne!(stored, 0);
}

/// Signs the stub with `key`+`cert` twice, and again with the same key rewritten by `openssl
/// ARGS` into its traditional form: all three must be byte-identical (same key, deterministic
/// signature, no clock).
fn same_bytes_from_both_key_encodings(kind: KeyKind, convert: &[&str]) {
    let Some(s) = setup(kind) else { return };
    let first = sign_bytes(&load(&s.key, &s.cert), &s.pe).unwrap();
    let again = sign_bytes(&load(&s.key, &s.cert), &s.pe).unwrap();
    assert!(first == again, "{kind:?}: two signatures of one input differ");

    let traditional = s.dir.path().join("traditional.key");
    let mut args: Vec<&OsStr> = convert.iter().map(OsStr::new).collect();
    args.extend([
        OsStr::new("-in"),
        s.key.as_os_str(),
        OsStr::new("-out"),
        traditional.as_os_str(),
    ]);
    openssl(&args);
    let text = std::fs::read_to_string(&traditional).unwrap();
    let label = if kind == KeyKind::EcP256 { "EC PRIVATE KEY" } else { "RSA PRIVATE KEY" };
    assert!(text.contains(&format!("BEGIN {label}")), "openssl wrote {text}");
    let other = sign_bytes(&load(&traditional, &s.cert), &s.pe).unwrap();
    assert!(first == other, "{kind:?}: the {label} form of the key signs differently");
}

#[test]
fn rsa_signatures_are_byte_identical_for_pkcs1_and_pkcs8_keys() {
    same_bytes_from_both_key_encodings(KeyKind::Rsa2048, &["rsa", "-traditional"]);
}

#[test]
fn ecdsa_signatures_are_byte_identical_for_sec1_and_pkcs8_keys() {
    same_bytes_from_both_key_encodings(KeyKind::EcP256, &["ec"]);
}

/// `openssl ecparam -genkey` writes an `EC PARAMETERS` block before the key.
#[test]
fn an_ecparam_key_file_with_its_parameters_block_signs() {
    let Some(s) = setup(KeyKind::EcP256) else { return };
    let key = s.dir.path().join("ecparam.key");
    let cert = s.dir.path().join("ecparam.crt");
    let (k, c) = (key.as_os_str(), cert.as_os_str());
    openssl(&[
        "ecparam".as_ref(),
        "-name".as_ref(),
        "prime256v1".as_ref(),
        "-genkey".as_ref(),
        "-out".as_ref(),
        k,
    ]);
    assert!(std::fs::read_to_string(&key).unwrap().starts_with("-----BEGIN EC PARAMETERS-----"));
    let req: [&OsStr; 9] = [
        "req".as_ref(),
        "-new".as_ref(),
        "-x509".as_ref(),
        "-subj".as_ref(),
        "/CN=ecparam".as_ref(),
        "-key".as_ref(),
        k,
        "-out".as_ref(),
        c,
    ];
    openssl(&req);
    let signed = sign_bytes(&load(&key, &cert), &s.pe).unwrap();
    let path = write(s.dir.path(), "ecparam.efi", &signed);
    let (ok, text) = sbverify(&cert, &path).unwrap();
    assert!(ok, "{text}");
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused() {
    let Some(s) = setup(KeyKind::EcP256) else { return };
    let (other_key, _) = key_pair(s.dir.path(), "other", KeyKind::EcP256).unwrap();
    let text = |p: &Path| std::fs::read_to_string(p).unwrap();
    let err = KeyPair::from_pem(&text(&other_key), &text(&s.cert)).unwrap_err();
    assert!(matches!(err, KeyError::Mismatch), "{err}");
    // An RSA key against an EC certificate, too.
    let (rsa_key, _) = key_pair(s.dir.path(), "rsa", KeyKind::Rsa2048).unwrap();
    let err = KeyPair::from_pem(&text(&rsa_key), &text(&s.cert)).unwrap_err();
    assert!(matches!(err, KeyError::Mismatch), "{err}");
}

#[test]
fn a_signed_binary_is_not_signed_again() {
    let Some(s) = setup(KeyKind::EcP256) else { return };
    let pair = load(&s.key, &s.cert);
    let signed = sign_bytes(&pair, &s.pe).unwrap();
    let err = sign_bytes(&pair, &signed).unwrap_err();
    assert!(matches!(err, SignError::Pe(baleen_sign::PeError::AlreadySigned { .. })), "{err}");
}

#[test]
fn rsa_keys_outside_2048_to_4096_bits_are_refused_by_size() {
    let Some(_) = baleen_testkit::require_tool("openssl") else { return };
    let dir = tempfile::tempdir().unwrap();
    for bits in ["1024", "4160"] {
        let path = dir.path().join(format!("{bits}.key"));
        openssl(&["genrsa".as_ref(), "-out".as_ref(), path.as_os_str(), bits.as_ref()]);
        let err = baleen_sign::SigningKey::from_pem(&std::fs::read_to_string(&path).unwrap())
            .unwrap_err();
        assert!(matches!(err, KeyError::RsaSize(_)), "{bits}: {err}");
        assert!(err.to_string().contains(&format!("has {bits} bits")), "{err}");
    }
}

#[test]
fn an_encrypted_key_is_refused_with_how_to_decrypt_it() {
    let pem = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let err = baleen_sign::SigningKey::from_pem(pem).unwrap_err();
    assert!(err.to_string().contains("openssl pkey"), "{err}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Hostile headers: any bytes of the stub's first KiB changed, the file perhaps cut anywhere. The
    /// reader and the hash return an error or a value, never panic, and never read past the end.
    #[test]
    fn damaged_headers_are_an_error_not_a_panic(
        flips in proptest::collection::vec((0usize..1024, proptest::prelude::any::<u8>()), 1..8),
        cut in proptest::option::of(proptest::prelude::any::<proptest::sample::Index>()),
    ) {
        let Some(mut bytes) = efi_binary() else { return Ok(()) };
        for (at, value) in flips {
            bytes[at] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        let mut r = std::io::Cursor::new(&bytes);
        if let Ok(layout) = PeLayout::read(&mut r) {
            let _ = layout.digest(&mut r);
        }
    }
}
