//! UEFI Secure Boot signatures of EFI binaries, as `sbsign --key KEY --cert CERT` writes them,
//! with no external tool and no OpenSSL.
//!
//! Key items: [`KeyPair`] (a PEM RSA or ECDSA P-256 key and the X.509 certificate that names it,
//! checked to be a pair), [`sign`] (a PE/COFF file → the same file with an Authenticode
//! signature appended: the SHA-256 image hash in a PKCS#7 SignedData, in a `WIN_CERTIFICATE`
//! the security directory points at, and the PE checksum recomputed), [`PeChecksum`] (also what
//! crates/disk sums its UKIs with), [`pe::PeLayout::digest`] (the Authenticode image hash),
//! [`pcr`] (the PCR 11 value systemd-stub measures for a UKI, and its signed `.pcrsig` policy).
//!
//! Invariants: no clock and no randomness. The signed attributes carry no signing time, RSA
//! PKCS#1 v1.5 is deterministic and ECDSA takes RFC 6979 nonces, so one key and one input give
//! one output, byte for byte. No key material is logged or formatted (`Debug` shows the kind).
//!
//! Non-goals: several signatures on one file, timestamps (a countersignature needs a network
//! service), certificate chains (the signer's certificate alone is embedded: firmware trusts
//! what is in `db`), verifying.

mod key;
pub mod pcr;
pub mod pe;
mod pkcs7;

pub use key::{KeyError, KeyPair, SigningKey};
pub use pcr::PcrError;
pub use pe::{PeChecksum, PeError, PeLayout, PeSection};
pub use pkcs7::Pkcs7Error;

use std::io::{self, Read, Seek, Write};

/// `WIN_CERT_REVISION_2_0`.
const WIN_CERT_REVISION: u16 = 0x0200;
/// `WIN_CERT_TYPE_PKCS_SIGNED_DATA`.
const WIN_CERT_TYPE_PKCS_SIGNED_DATA: u16 = 0x0002;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("reading the EFI binary to sign")]
    Pe(#[source] PeError),
    #[error("making the Authenticode signature")]
    Pkcs7(#[source] Pkcs7Error),
    #[error("the signed EFI binary would pass 4 GiB, which a PE certificate table cannot address")]
    TooLarge,
    #[error("writing the signed EFI binary")]
    Write(#[source] io::Error),
}

/// Writes `input` (an unsigned PE/COFF file) to `out` with an Authenticode signature by `pair`
/// appended; returns the length written. `input` is read three times (image hash, checksum,
/// copy) and never held whole.
pub fn sign<R: Read + Seek, W: Write>(
    pair: &KeyPair,
    input: &mut R,
    mut out: W,
) -> Result<u64, SignError> {
    let layout = PeLayout::read(input).map_err(SignError::Pe)?;
    if let Some((offset, len)) = layout.signature {
        return Err(SignError::Pe(PeError::AlreadySigned { offset, len }));
    }
    let digest = layout.digest(input).map_err(SignError::Pe)?;
    let signature = pkcs7::signed_data(pair, &digest).map_err(SignError::Pkcs7)?;
    let table = win_certificate(&signature)?;

    let pad = pe::padding(layout.len);
    let table_at = layout.len + pad as u64;
    let total = table_at + table.len() as u64;
    let too_large = |_| SignError::TooLarge;
    let mut headers = layout.headers.clone();
    let dir = layout.cert_dir_at;
    headers[dir..dir + 4]
        .copy_from_slice(&u32::try_from(table_at).map_err(too_large)?.to_le_bytes());
    let table_len = u32::try_from(table.len()).map_err(too_large)?;
    headers[dir + 4..dir + 8].copy_from_slice(&table_len.to_le_bytes());
    u32::try_from(total).map_err(too_large)?;

    let mut sum = PeChecksum::default();
    let csum = layout.checksum_at;
    headers[csum..csum + 4].fill(0);
    sum.add(&headers);
    let body_at = headers.len() as u64;
    pe::copy_range(input, body_at, layout.len - body_at, |b| sum.add(b)).map_err(SignError::Pe)?;
    sum.add(&[0u8; 8][..pad]);
    sum.add(&table);
    headers[csum..csum + 4].copy_from_slice(&sum.finish().to_le_bytes());

    out.write_all(&headers).map_err(SignError::Write)?;
    let mut failed = None;
    pe::copy_range(input, body_at, layout.len - body_at, |b| {
        if failed.is_none() {
            failed = out.write_all(b).err();
        }
    })
    .map_err(SignError::Pe)?;
    if let Some(e) = failed {
        return Err(SignError::Write(e));
    }
    out.write_all(&[0u8; 8][..pad]).map_err(SignError::Write)?;
    out.write_all(&table).map_err(SignError::Write)?;
    out.flush().map_err(SignError::Write)?;
    Ok(total)
}

/// [`sign`] on bytes in memory.
pub fn sign_bytes(pair: &KeyPair, pe: &[u8]) -> Result<Vec<u8>, SignError> {
    let mut out = Vec::with_capacity(pe.len() + 4096);
    sign(pair, &mut io::Cursor::new(pe), &mut out)?;
    Ok(out)
}

/// The `WIN_CERTIFICATE` holding `signature`, zero-padded to 8 bytes. `dwLength` counts the
/// header and the signature but not the padding, as sbsign writes it; the directory entry
/// counts the padding too.
fn win_certificate(signature: &[u8]) -> Result<Vec<u8>, SignError> {
    let len = u32::try_from(signature.len() + 8).map_err(|_| SignError::TooLarge)?;
    let mut table = Vec::with_capacity(signature.len() + 16);
    table.extend_from_slice(&len.to_le_bytes());
    table.extend_from_slice(&WIN_CERT_REVISION.to_le_bytes());
    table.extend_from_slice(&WIN_CERT_TYPE_PKCS_SIGNED_DATA.to_le_bytes());
    table.extend_from_slice(signature);
    table.resize(table.len() + pe::padding(table.len() as u64), 0);
    Ok(table)
}
