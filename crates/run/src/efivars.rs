//! An OVMF variable store with one certificate enrolled as PK, KEK and db: what
//! `baleen run --secure-boot --enroll CERT.pem` boots with.
//!
//! The store is written from Debian's empty `OVMF_VARS_4M.fd` in edk2's format
//! (`MdeModulePkg/Include/Guid/VariableFormat.h`), as virt-firmware's
//! `virt-fw-vars --set-pk G CERT --add-kek G CERT --add-db G CERT --secure-boot` writes it:
//!
//! - the file is a firmware volume (`EFI_FIRMWARE_VOLUME_HEADER`, file system GUID
//!   `gEfiSystemNvDataFvGuid`, signature `_FVH`) whose header is followed by a
//!   `VARIABLE_STORE_HEADER` (`gEfiAuthenticatedVariableGuid`, format `0x5a` "formatted", state
//!   `0xfe` "healthy"), then the variables, then erased flash (`0xff`);
//! - each variable is an `AUTHENTICATED_VARIABLE_HEADER` (60 bytes: start id `0x55aa`, state
//!   `VAR_ADDED` `0x3f`, attributes, monotonic count, `EFI_TIME` timestamp, public key index,
//!   name size, data size, vendor GUID), the UTF-16LE name with its NUL, the data, padded to
//!   4 bytes;
//! - PK, KEK and db hold one `EFI_SIGNATURE_LIST` of type `EFI_CERT_X509_GUID` with the
//!   certificate (DER), attributes NV|BS|RT|TIME_BASED_AUTHENTICATED_WRITE_ACCESS; like
//!   `--secure-boot`, dbx holds one placeholder SHA-256 entry (of nothing), `SecureBootEnable` is
//!   1 and `CustomMode` 0.
//!
//! Deterministic: the owner GUID of the entries is derived from the certificate's SHA-256, and
//! every timestamp is [`ENROLL_TIME`], so the same certificate always gives the same store.

use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};

/// An EFI GUID, kept in its on-disk (mixed-endian) byte order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The GUID written `d1-d2-d3-d4[0..2]-d4[2..8]`.
    pub const fn new(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Guid {
        let (a, b, c) = (d1.to_le_bytes(), d2.to_le_bytes(), d3.to_le_bytes());
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
            d4[5], d4[6], d4[7],
        ])
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9]
        )?;
        b[10..].iter().try_for_each(|x| write!(f, "{x:02x}"))
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `gEfiSystemNvDataFvGuid`: the file system GUID of OVMF's variable firmware volume.
pub const NV_DATA_FV: Guid =
    Guid::new(0xfff12b8d, 0x7696, 0x4c8b, [0xa9, 0x85, 0x27, 0x47, 0x07, 0x5b, 0x4f, 0x50]);
/// `gEfiAuthenticatedVariableGuid`: a store of `AUTHENTICATED_VARIABLE_HEADER`s.
pub const AUTH_VARIABLE_STORE: Guid =
    Guid::new(0xaaf32c78, 0x947b, 0x439a, [0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92]);
/// `gEfiGlobalVariableGuid`: PK and KEK.
pub const GLOBAL_VARIABLE: Guid =
    Guid::new(0x8be4df61, 0x93ca, 0x11d2, [0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c]);
/// `gEfiImageSecurityDatabaseGuid`: db and dbx.
pub const IMAGE_SECURITY_DATABASE: Guid =
    Guid::new(0xd719b2cb, 0x3d3a, 0x4596, [0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f]);
/// `gEfiSecureBootEnableDisableGuid`: `SecureBootEnable`.
pub const SECURE_BOOT_ENABLE: Guid =
    Guid::new(0xf0a30bc7, 0xaf08, 0x4556, [0x99, 0xc4, 0x00, 0x10, 0x09, 0xc9, 0x3a, 0x44]);
/// `gEfiCustomModeEnableGuid`: `CustomMode`.
pub const CUSTOM_MODE: Guid =
    Guid::new(0xc076ec0c, 0x7028, 0x4399, [0xa0, 0x72, 0x71, 0xee, 0x5c, 0x44, 0x8b, 0x9f]);
/// `EFI_CERT_X509_GUID`: a signature list of DER certificates.
pub const CERT_X509: Guid =
    Guid::new(0xa5c059a1, 0x94e4, 0x4aa7, [0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72]);
/// `EFI_CERT_SHA256_GUID`: a signature list of SHA-256 hashes.
pub const CERT_SHA256: Guid =
    Guid::new(0xc1c41626, 0x504c, 0x4092, [0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43, 0x28]);
/// OVMF's EnrollDefaultKeys owner GUID, which virt-fw-vars gives its placeholder dbx entry.
pub const OVMF_ENROLL_DEFAULT_KEYS: Guid =
    Guid::new(0xa0baa8a3, 0x041d, 0x48a8, [0xbc, 0x87, 0xc3, 0x6d, 0x12, 0x1b, 0x5e, 0x3d]);

/// `EFI_VARIABLE_NON_VOLATILE | BOOTSERVICE_ACCESS`.
pub const ATTR_NV_BS: u32 = 0x1 | 0x2;
/// `NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS | TIME_BASED_AUTHENTICATED_WRITE_ACCESS`.
pub const ATTR_NV_BS_RT_AT: u32 = 0x1 | 0x2 | 0x4 | 0x20;

/// The `EFI_TIME` of every authenticated variable written: 2020-01-01 00:00:00 UTC. Fixed, so
/// that the store is reproducible; any signed update made later is newer, as the firmware
/// requires of time-based authenticated writes.
pub const ENROLL_TIME: [u8; 16] = [0xe4, 0x07, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// `AUTHENTICATED_VARIABLE_HEADER`'s size: 44 bytes of fields, then the vendor GUID.
const VARIABLE_HEADER_LEN: usize = 60;
/// `VARIABLE_STORE_HEADER`'s size.
const STORE_HEADER_LEN: usize = 28;
const VARIABLE_START_ID: u16 = 0x55aa;
const VAR_ADDED: u8 = 0x3f;
const STORE_FORMATTED: u8 = 0x5a;
const STORE_HEALTHY: u8 = 0xfe;

/// The template is not an empty edk2 variable store this module can fill.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("not a firmware volume (no `_FVH` signature at byte 40)")]
    NotFirmwareVolume,
    #[error("the firmware volume is not a variable store (file system GUID {0})")]
    NotNvData(Guid),
    #[error("the variable store header at byte {at} is not edk2's authenticated format")]
    NotAuthenticated { at: usize },
    #[error("the variable store (bytes {start}..{end}) lies outside the {len}-byte file")]
    OutOfBounds { start: usize, end: usize, len: usize },
    #[error("the variable store already holds variables (at byte {at}); start from an empty one")]
    NotEmpty { at: usize },
    #[error("the variables take {need} bytes, more than the store's {have}")]
    TooSmall { need: usize, have: usize },
}

/// The byte range of the variables in an edk2 variable store file (after the firmware volume
/// header and the variable store header).
pub fn variable_area(fd: &[u8]) -> Result<std::ops::Range<usize>, StoreError> {
    let u16_at = |at: usize| fd.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at =
        |at: usize| fd.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if fd.get(40..44) != Some(b"_FVH") {
        return Err(StoreError::NotFirmwareVolume);
    }
    let fs_guid = fd.get(16..32).and_then(|b| b.try_into().ok()).map(Guid);
    if fs_guid != Some(NV_DATA_FV) {
        return Err(StoreError::NotNvData(fs_guid.unwrap_or(Guid([0; 16]))));
    }
    let header_len = usize::from(u16_at(48).ok_or(StoreError::NotFirmwareVolume)?);
    let store = header_len;
    let not_auth = StoreError::NotAuthenticated { at: store };
    if fd.get(store..store + 16) != Some(&AUTH_VARIABLE_STORE.0[..])
        || fd.get(store + 20..store + 22) != Some(&[STORE_FORMATTED, STORE_HEALTHY][..])
    {
        return Err(not_auth);
    }
    let size = u32_at(store + 16).and_then(|s| usize::try_from(s).ok()).ok_or(not_auth)?;
    let (start, end) = (store + STORE_HEADER_LEN, store.saturating_add(size));
    if end > fd.len() || start > end {
        return Err(StoreError::OutOfBounds { start, end, len: fd.len() });
    }
    Ok(start..end)
}

/// One variable as edk2 stores it: header, UTF-16LE name with NUL, data, padding to 4 bytes.
pub fn variable(name: &str, vendor: Guid, attributes: u32, data: &[u8]) -> Vec<u8> {
    let name: Vec<u8> =
        name.encode_utf16().chain([0]).flat_map(|u| u.to_le_bytes()).collect::<Vec<_>>();
    let timed = attributes & 0x20 != 0;
    let mut v = Vec::with_capacity(VARIABLE_HEADER_LEN + name.len() + data.len() + 3);
    v.extend_from_slice(&VARIABLE_START_ID.to_le_bytes());
    v.push(VAR_ADDED);
    v.push(0); // reserved
    v.extend_from_slice(&attributes.to_le_bytes());
    v.extend_from_slice(&0u64.to_le_bytes()); // monotonic count
    v.extend_from_slice(if timed { &ENROLL_TIME } else { &[0; 16] });
    v.extend_from_slice(&0u32.to_le_bytes()); // public key index
    v.extend_from_slice(&len32(name.len()).to_le_bytes());
    v.extend_from_slice(&len32(data.len()).to_le_bytes());
    v.extend_from_slice(&vendor.0);
    v.extend_from_slice(&name);
    v.extend_from_slice(data);
    v.resize(v.len().next_multiple_of(4), 0);
    v
}

/// An `EFI_SIGNATURE_LIST` of one `EFI_SIGNATURE_DATA` (owner GUID, then the signature).
pub fn signature_list(kind: Guid, owner: Guid, signature: &[u8]) -> Vec<u8> {
    let data_len = 16 + signature.len();
    let mut s = Vec::with_capacity(28 + data_len);
    s.extend_from_slice(&kind.0);
    s.extend_from_slice(&len32(28 + data_len).to_le_bytes()); // SignatureListSize
    s.extend_from_slice(&0u32.to_le_bytes()); // SignatureHeaderSize
    s.extend_from_slice(&len32(data_len).to_le_bytes()); // SignatureSize
    s.extend_from_slice(&owner.0);
    s.extend_from_slice(signature);
    s
}

/// Sizes in a variable store are far below 4 GiB (the caller checks the total against the
/// store); a larger one saturates and fails that check.
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The owner GUID of the enrolled entries: the certificate's SHA-256, first 16 bytes, marked as
/// an RFC 9562 version 8 (custom) GUID.
pub fn owner_guid(cert_der: &[u8]) -> Guid {
    let hash = Sha256::digest(cert_der);
    let mut g = [0u8; 16];
    g.copy_from_slice(&hash[..16]);
    g[7] = (g[7] & 0x0f) | 0x80; // version: the high nibble of d3 (stored little-endian)
    g[8] = (g[8] & 0x3f) | 0x80; // variant 10
    Guid(g)
}

/// `template` (an empty edk2 variable store, Debian's `OVMF_VARS_4M.fd`) with `cert_der`
/// enrolled as PK, KEK and db and Secure Boot enabled; see the module docs.
pub fn enroll(template: &[u8], cert_der: &[u8]) -> Result<Vec<u8>, StoreError> {
    let area = variable_area(template)?;
    if let Some(i) = template[area.clone()].iter().position(|b| *b != 0xff) {
        return Err(StoreError::NotEmpty { at: area.start + i });
    }
    let owner = owner_guid(cert_der);
    let certs = signature_list(CERT_X509, owner, cert_der);
    let empty_sha256: [u8; 32] = Sha256::digest([]).into();
    let dbx = signature_list(CERT_SHA256, OVMF_ENROLL_DEFAULT_KEYS, &empty_sha256);
    let vars: Vec<u8> = [
        variable("PK", GLOBAL_VARIABLE, ATTR_NV_BS_RT_AT, &certs),
        variable("KEK", GLOBAL_VARIABLE, ATTR_NV_BS_RT_AT, &certs),
        variable("db", IMAGE_SECURITY_DATABASE, ATTR_NV_BS_RT_AT, &certs),
        variable("dbx", IMAGE_SECURITY_DATABASE, ATTR_NV_BS_RT_AT, &dbx),
        variable("SecureBootEnable", SECURE_BOOT_ENABLE, ATTR_NV_BS, &[1]),
        variable("CustomMode", CUSTOM_MODE, ATTR_NV_BS, &[0]),
    ]
    .concat();
    if vars.len() > area.len() {
        return Err(StoreError::TooSmall { need: vars.len(), have: area.len() });
    }
    let mut out = template.to_vec();
    out[area.start..area.start + vars.len()].copy_from_slice(&vars);
    Ok(out)
}

/// A certificate file that cannot be enrolled.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("reading {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} holds no PEM `BEGIN CERTIFICATE` block (--enroll takes an X.509 certificate in PEM{hint})")]
    NoCertificate { path: PathBuf, hint: &'static str },
    #[error("{path}: the certificate does not parse as X.509")]
    Parse { path: PathBuf, source: der::Error },
}

/// The DER bytes of the first PEM certificate in `path`, checked to parse as X.509.
pub fn read_certificate(path: &Path) -> Result<Vec<u8>, CertError> {
    use der::{Decode, DecodePem, Encode};
    let bytes =
        std::fs::read(path).map_err(|source| CertError::Read { path: path.to_owned(), source })?;
    let text = String::from_utf8_lossy(&bytes);
    let begin = "-----BEGIN CERTIFICATE-----";
    let end = "-----END CERTIFICATE-----";
    let block =
        text.find(begin).and_then(|s| text[s..].find(end).map(|e| &text[s..s + e + end.len()]));
    let Some(block) = block else {
        let hint = if text.contains("PRIVATE KEY-----") {
            "; this is a private key, which never leaves the build machine: pass its certificate"
        } else if x509_cert::Certificate::from_der(&bytes).is_ok() {
            "; this is DER: `openssl x509 -inform der -in CERT -out CERT.pem` converts it"
        } else {
            ""
        };
        return Err(CertError::NoCertificate { path: path.to_owned(), hint });
    };
    let parse = |source| CertError::Parse { path: path.to_owned(), source };
    let cert = x509_cert::Certificate::from_pem(block).map_err(parse)?;
    cert.to_der().map_err(parse)
}

#[cfg(test)]
#[path = "efivars_tests.rs"]
mod tests;
