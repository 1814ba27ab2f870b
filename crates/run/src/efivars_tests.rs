use super::*;

const EMPTY_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
const SNAKEOIL_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd";
const SNAKEOIL_CERT: &str = "/usr/share/ovmf/PkKek-1-snakeoil.pem";

/// A small empty store laid out as OVMF's: a 0x48-byte volume header, then the store header.
fn template(store_size: u32) -> Vec<u8> {
    let mut fd = vec![0u8; 0x48];
    fd[16..32].copy_from_slice(&NV_DATA_FV.0);
    fd[40..44].copy_from_slice(b"_FVH");
    fd[48..50].copy_from_slice(&0x48u16.to_le_bytes());
    fd.extend_from_slice(&AUTH_VARIABLE_STORE.0);
    fd.extend_from_slice(&store_size.to_le_bytes());
    fd.extend_from_slice(&[STORE_FORMATTED, STORE_HEALTHY, 0, 0, 0, 0, 0, 0]);
    fd.resize(0x48 + store_size as usize, 0xff);
    fd.extend_from_slice(b"after the store");
    fd
}

/// One variable read back: (name, vendor, state, attributes, timestamp, data).
type Var = (String, Guid, u8, u32, [u8; 16], Vec<u8>);

/// Walks the variables as edk2 (and virt-firmware's reader) do, independently of the writer.
fn read_back(fd: &[u8]) -> Vec<Var> {
    let area = variable_area(fd).unwrap();
    let le32 = |at: usize| u32::from_le_bytes(fd[at..at + 4].try_into().unwrap()) as usize;
    let mut pos = area.start;
    let mut vars = Vec::new();
    while fd[pos..pos + 2] == [0xaa, 0x55] {
        let (name_len, data_len) = (le32(pos + 36), le32(pos + 40));
        let vendor = Guid(fd[pos + 44..pos + 60].try_into().unwrap());
        let name: Vec<u16> = fd[pos + 60..pos + 60 + name_len]
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(name.last(), Some(&0), "the name ends in NUL");
        let name = String::from_utf16(&name[..name.len() - 1]).unwrap();
        let data_at = pos + 60 + name_len;
        let time = fd[pos + 16..pos + 32].try_into().unwrap();
        let data = fd[data_at..data_at + data_len].to_vec();
        vars.push((name, vendor, fd[pos + 2], le32(pos + 4) as u32, time, data));
        pos = (data_at + data_len).next_multiple_of(4);
    }
    assert!(fd[pos..area.end].iter().all(|b| *b == 0xff), "erased flash after the variables");
    vars
}

#[test]
fn guids_print_as_uefi_writes_them_and_are_stored_mixed_endian() {
    assert_eq!(GLOBAL_VARIABLE.to_string(), "8be4df61-93ca-11d2-aa0d-00e098032b8c");
    // As in every OVMF store: d1..d3 little-endian, d4 as is.
    assert_eq!(GLOBAL_VARIABLE.0[..8], [0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11]);
    assert_eq!(CERT_X509.to_string(), "a5c059a1-94e4-4aa7-87b5-ab155c2bf072");
}

#[test]
fn a_variable_is_the_60_byte_authenticated_header_the_utf16_name_and_data_padded_to_4() {
    let v = variable("PK", GLOBAL_VARIABLE, ATTR_NV_BS_RT_AT, b"abc");
    assert_eq!(v.len(), 72, "60 + 6 (P, K, NUL) + 3, padded");
    assert_eq!(v[0..2], [0xaa, 0x55], "StartId 0x55aa");
    assert_eq!(v[2], 0x3f, "State VAR_ADDED");
    assert_eq!(v[4..8], 0x27u32.to_le_bytes(), "NV|BS|RT|TIME_BASED_AUTHENTICATED_WRITE_ACCESS");
    assert_eq!(v[8..16], [0; 8], "MonotonicCount");
    assert_eq!(v[16..32], ENROLL_TIME, "TimeStamp");
    assert_eq!(v[16..18], 2020u16.to_le_bytes());
    assert_eq!(v[32..36], [0; 4], "PubKeyIndex");
    assert_eq!(v[36..40], 6u32.to_le_bytes(), "NameSize");
    assert_eq!(v[40..44], 3u32.to_le_bytes(), "DataSize");
    assert_eq!(v[44..60], GLOBAL_VARIABLE.0, "VendorGuid");
    assert_eq!(v[60..66], *b"P\0K\0\0\0");
    assert_eq!(v[66..72], *b"abc\0\0\0");
    // A variable without time-based authentication has no timestamp.
    let plain = variable("CustomMode", CUSTOM_MODE, ATTR_NV_BS, &[0]);
    assert_eq!(plain[16..32], [0; 16]);
    assert_eq!(plain.len(), (60 + 22 + 1usize).next_multiple_of(4));
}

#[test]
fn a_signature_list_holds_one_owner_and_certificate() {
    let owner = owner_guid(b"cert");
    let s = signature_list(CERT_X509, owner, b"DER!");
    assert_eq!(s.len(), 28 + 16 + 4);
    assert_eq!(s[..16], CERT_X509.0);
    assert_eq!(s[16..20], 48u32.to_le_bytes(), "SignatureListSize");
    assert_eq!(s[20..24], [0; 4], "SignatureHeaderSize");
    assert_eq!(s[24..28], 20u32.to_le_bytes(), "SignatureSize: owner + data");
    assert_eq!(s[28..44], owner.0);
    assert_eq!(&s[44..], b"DER!");
}

#[test]
fn the_owner_guid_is_derived_from_the_certificate_alone() {
    let a = owner_guid(b"one certificate");
    assert_eq!(a, owner_guid(b"one certificate"));
    assert_ne!(a, owner_guid(b"another certificate"));
    let text = a.to_string();
    assert_eq!(&text[14..15], "8", "version 8 (custom): {text}");
    assert!("89ab".contains(&text[19..20]), "RFC 9562 variant: {text}");
}

#[test]
fn enrolling_writes_pk_kek_db_dbx_and_the_secure_boot_switches_and_nothing_else() {
    let empty = template(0x4000);
    let out = enroll(&empty, b"DER certificate").unwrap();
    assert_eq!(out.len(), empty.len());
    assert_eq!(out[..0x48 + 28], empty[..0x48 + 28], "the headers are kept");
    assert!(out.ends_with(b"after the store"));
    assert_eq!(out, enroll(&empty, b"DER certificate").unwrap(), "deterministic");

    let vars = read_back(&out);
    let names: Vec<&str> = vars.iter().map(|v| v.0.as_str()).collect();
    assert_eq!(names, ["PK", "KEK", "db", "dbx", "SecureBootEnable", "CustomMode"]);
    let certs = signature_list(CERT_X509, owner_guid(b"DER certificate"), b"DER certificate");
    for (name, vendor, state, attr, time, data) in &vars[..3] {
        let want = if name == "db" { IMAGE_SECURITY_DATABASE } else { GLOBAL_VARIABLE };
        assert_eq!((*vendor, *state, *attr, *time), (want, 0x3f, 0x27, ENROLL_TIME), "{name}");
        assert!(*data == certs, "{name} holds the certificate");
    }
    let dbx = &vars[3];
    assert_eq!(dbx.5[..16], CERT_SHA256.0);
    assert_eq!(dbx.5[28..44], OVMF_ENROLL_DEFAULT_KEYS.0);
    assert_eq!(vars[4].1, SECURE_BOOT_ENABLE);
    assert_eq!((vars[4].3, vars[4].5.as_slice()), (ATTR_NV_BS, &[1u8][..]));
    assert_eq!(vars[5].1, CUSTOM_MODE);
    assert_eq!((vars[5].3, vars[5].5.as_slice()), (ATTR_NV_BS, &[0u8][..]));
}

#[test]
fn stores_that_cannot_take_the_keys_are_refused_with_the_reason() {
    assert_eq!(enroll(&[0; 100], b"c"), Err(StoreError::NotFirmwareVolume));
    let mut wrong_fs = template(0x4000);
    wrong_fs[16] ^= 1;
    assert!(matches!(enroll(&wrong_fs, b"c"), Err(StoreError::NotNvData(_))));
    let mut plain = template(0x4000);
    plain[0x48] ^= 1; // gEfiVariableGuid-style store, not the authenticated one
    assert_eq!(enroll(&plain, b"c"), Err(StoreError::NotAuthenticated { at: 0x48 }));
    let mut used = template(0x4000);
    used[0x48 + 28] = 0xaa;
    assert_eq!(enroll(&used, b"c"), Err(StoreError::NotEmpty { at: 0x48 + 28 }));
    let mut truncated = template(0x4000);
    truncated.truncate(0x1000);
    assert!(matches!(enroll(&truncated, b"c"), Err(StoreError::OutOfBounds { .. })));
    assert!(matches!(
        enroll(&template(0x200), &[0u8; 1000]),
        Err(StoreError::TooSmall { have: 484, .. })
    ));
}

/// Debian's own stores, when the ovmf package is installed: ours fills the empty one, and the
/// snakeoil store (made by OVMF's EnrollDefaultKeys) holds KEK as exactly the signature list we
/// write for that certificate under that owner.
#[test]
fn debians_stores_parse_and_the_snakeoil_pk_matches_our_signature_list() {
    let (Ok(empty), Ok(snakeoil)) = (std::fs::read(EMPTY_VARS), std::fs::read(SNAKEOIL_VARS))
    else {
        eprintln!("skipping: Debian's ovmf is not installed");
        return;
    };
    let area = variable_area(&empty).unwrap();
    assert_eq!(area, 0x64..0x40000, "OVMF_VARS_4M.fd: 0x48 + 28 up to the 256 KiB store");
    assert!(matches!(enroll(&snakeoil, b"c"), Err(StoreError::NotEmpty { .. })));

    let der = read_certificate(Path::new(SNAKEOIL_CERT)).unwrap();
    let kek = read_back(&snakeoil).into_iter().rfind(|v| v.0 == "KEK").expect("KEK in snakeoil");
    assert_eq!(kek.3, ATTR_NV_BS_RT_AT);
    assert!(kek.5 == signature_list(CERT_X509, OVMF_ENROLL_DEFAULT_KEYS, &der));

    let ours = enroll(&empty, &der).unwrap();
    assert_eq!(ours.len(), empty.len());
    assert_eq!(ours[area.end..], empty[area.end..], "the fault-tolerant-write area is kept");
}

#[test]
fn certificate_files_that_are_not_a_pem_certificate_say_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let key = write("db.key", "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n");
    let err = read_certificate(&key).unwrap_err();
    assert!(err.to_string().contains("db.key") && err.to_string().contains("private key"), "{err}");
    let junk = write("junk.pem", "hello\n");
    let err = read_certificate(&junk).unwrap_err();
    assert!(matches!(err, CertError::NoCertificate { .. }), "{err}");
    assert!(err.to_string().contains("BEGIN CERTIFICATE"), "{err}");
    let bad = write("bad.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    let err = read_certificate(&bad).unwrap_err();
    assert!(matches!(err, CertError::Parse { .. }) && err.to_string().contains("bad.pem"), "{err}");
    let missing = read_certificate(&dir.path().join("nope.pem")).unwrap_err();
    assert!(matches!(missing, CertError::Read { .. }) && missing.to_string().contains("nope.pem"));
}
