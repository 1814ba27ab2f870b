//! Secure Boot signing of the build's UKI (`--sign-key`/`--sign-cert`): which formats carry a
//! UKI, and the key pair read from the files the user named, checked before anything is written.
//!
//! The UKI is signed once, where it is made (`disk::Uki`), so every EFI format of a build boots
//! the same signed binary. The signature itself is crates/sign's.

use crate::format::Format;
use baleen_sign::{KeyError, KeyPair};
use std::io;
use std::path::PathBuf;

/// `--sign-key KEY.pem --sign-cert CERT.pem`: paths, never key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signing {
    pub key: PathBuf,
    pub cert: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error(
        "--sign-key signs the UKI, and none of the formats {formats} carries one; these do: {signable}",
        signable = signable_names()
    )]
    NothingToSign { formats: String },
    #[error("reading the signing {what} {path}")]
    Read { what: &'static str, path: PathBuf, source: io::Error },
    #[error("signing key {key} and certificate {cert}")]
    Pair { key: PathBuf, cert: PathBuf, source: KeyError },
}

/// Whether `f`'s output holds the build's UKI (as the file itself or as the boot file of a disk
/// or ISO): the formats `--sign-key` applies to.
pub fn carries_uki(f: Format) -> bool {
    matches!(f.family(), crate::format::Family::Efi(_))
}

/// The formats that can be signed, comma-separated, for errors and help.
pub fn signable_names() -> String {
    Format::ALL.iter().filter(|f| carries_uki(**f)).map(|f| f.name()).collect::<Vec<_>>().join(", ")
}

/// An error unless one of `formats` carries a UKI to sign.
pub fn check_formats(formats: &[Format]) -> Result<(), SigningError> {
    if formats.iter().copied().any(carries_uki) {
        return Ok(());
    }
    let names = formats.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ");
    Err(SigningError::NothingToSign { formats: names })
}

impl Signing {
    /// The key pair, checked to be one; an error unless one of `formats` carries a UKI.
    pub fn load(&self, formats: &[Format]) -> Result<KeyPair, SigningError> {
        check_formats(formats)?;
        let read = |what, path: &PathBuf| {
            std::fs::read_to_string(path).map_err(|source| SigningError::Read {
                what,
                path: path.clone(),
                source,
            })
        };
        // The PEM text is wiped when dropped, as the decoded key is (the `rsa` and `p256` types
        // zeroize themselves).
        let key = zeroize::Zeroizing::new(read("key", &self.key)?);
        let cert = read("certificate", &self.cert)?;
        KeyPair::from_pem(&key, &cert).map_err(|source| SigningError::Pair {
            key: self.key.clone(),
            cert: self.cert.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uki_and_every_efi_disk_and_iso_are_signable() {
        assert_eq!(
            signable_names(),
            "iso-efi, iso-efi-initrd, raw-efi, qcow2-efi, aws, gcp, vhd, dynamic-vhd, vmdk, uki"
        );
    }

    #[test]
    fn signing_a_build_without_a_uki_is_refused_before_reading_the_key() {
        let s =
            Signing { key: "/nonexistent/key.pem".into(), cert: "/nonexistent/cert.pem".into() };
        let err = s.load(&[Format::KernelInitrd, Format::RawBios]).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, SigningError::NothingToSign { .. }), "{text}");
        assert!(text.contains("kernel+initrd, raw-bios") && text.contains("raw-efi"), "{text}");
    }
}
