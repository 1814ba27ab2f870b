//! Content digests (`sha256:<hex>`) and the hashing writer that computes them while bytes stream
//! to disk. Only sha256 and sha512 are accepted: they are the two algorithms the OCI image spec
//! registers, and every registry in use serves sha256.

use sha2::{Digest as _, Sha256, Sha512};
use std::fmt;
use std::str::FromStr;

/// Why a digest string was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    /// No `algorithm:` prefix.
    #[error("digest {0:?} has no `algorithm:` prefix (expected sha256:<64 hex digits>)")]
    NoAlgorithm(String),
    /// An algorithm other than sha256/sha512.
    #[error("digest {0:?} uses an unsupported algorithm (only sha256 and sha512 are accepted)")]
    UnsupportedAlgorithm(String),
    /// Wrong length or characters other than lowercase hex.
    #[error("digest {digest:?}: expected {expected} lowercase hex digits after `{algorithm}:`")]
    BadHex { digest: String, algorithm: String, expected: usize },
}

/// A validated content digest, e.g. `sha256:9f86d0…`. Displays as `algorithm:hex`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: String,
    hex: String,
}

impl Digest {
    /// Parses and validates `algorithm:hex`.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let (algorithm, hex) =
            s.split_once(':').ok_or_else(|| DigestError::NoAlgorithm(s.to_string()))?;
        let expected = match algorithm {
            "sha256" => 64,
            "sha512" => 128,
            _ => return Err(DigestError::UnsupportedAlgorithm(s.to_string())),
        };
        if hex.len() != expected
            || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::BadHex {
                digest: s.to_string(),
                algorithm: algorithm.to_string(),
                expected,
            });
        }
        Ok(Digest { algorithm: algorithm.to_string(), hex: hex.to_string() })
    }

    /// The sha256 digest of `data`.
    pub fn sha256_of(data: &[u8]) -> Digest {
        let mut h = Hasher::sha256();
        h.update(data);
        h.finish()
    }

    /// `sha256` or `sha512`.
    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }

    /// The lowercase hex part.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The same digest as `oci-spec`'s type, for building descriptors.
    pub fn to_oci(&self) -> oci_spec::image::Digest {
        // Our validation is stricter than oci-spec's, so this cannot fail.
        oci_spec::image::Digest::from_str(&self.to_string()).expect("validated digest")
    }

    /// Converts `oci-spec`'s digest (as found in parsed manifests), validating it.
    pub fn from_oci(d: &oci_spec::image::Digest) -> Result<Digest, DigestError> {
        Digest::parse(d.as_ref())
    }

    /// A fresh hasher for this digest's algorithm.
    pub fn hasher(&self) -> Hasher {
        if self.algorithm == "sha512" {
            Hasher::sha512()
        } else {
            Hasher::sha256()
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

/// Incremental hashing for either supported algorithm.
#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Hasher::Sha256(_) => "Hasher(sha256)",
            Hasher::Sha512(_) => "Hasher(sha512)",
        })
    }
}

impl Hasher {
    pub fn sha256() -> Hasher {
        Hasher::Sha256(Sha256::new())
    }

    pub fn sha512() -> Hasher {
        Hasher::Sha512(Sha512::new())
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => {
                Digest { algorithm: "sha256".into(), hex: hex::encode(h.finalize()) }
            }
            Hasher::Sha512(h) => {
                Digest { algorithm: "sha512".into(), hex: hex::encode(h.finalize()) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        let s = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        let d = Digest::parse(s).unwrap();
        assert_eq!(d.to_string(), s);
        assert_eq!(Digest::sha256_of(b"hello"), d);
        assert_eq!(Digest::from_oci(&d.to_oci()).unwrap(), d);
    }

    #[test]
    fn rejects_bad_digests() {
        assert!(matches!(Digest::parse("abc"), Err(DigestError::NoAlgorithm(_))));
        assert!(matches!(Digest::parse("md5:abc"), Err(DigestError::UnsupportedAlgorithm(_))));
        let upper = format!("sha256:{}", "A".repeat(64));
        assert!(matches!(Digest::parse(&upper), Err(DigestError::BadHex { .. })));
        assert!(matches!(Digest::parse("sha256:abcd"), Err(DigestError::BadHex { .. })));
        let traversal = format!("sha256:../../{}", "a".repeat(58));
        assert!(Digest::parse(&traversal).is_err());
    }
}
