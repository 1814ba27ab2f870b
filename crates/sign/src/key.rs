//! The signing key and its certificate, from PEM: RSA (PKCS#1 or PKCS#8) or ECDSA P-256 (SEC1
//! or PKCS#8) and an X.509 certificate whose public key must be the key's.
//!
//! Both signature schemes are deterministic, so a signature depends only on the key and the
//! message: RSA PKCS#1 v1.5 has no randomness, and P-256 ECDSA takes its nonce from RFC 6979.
//! Non-goals: encrypted keys (decrypt with `openssl pkey` first), PKCS#11 tokens, other curves.
//!
//! Why `rsa` despite RUSTSEC-2023-0071 (Marvin: timing of private-key operations): baleen signs
//! offline, on the builder's machine, where no attacker times it over a network.

use der::{Decode, DecodePem, Encode};
use p256::pkcs8::DecodePrivateKey as _;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use x509_cert::Certificate;

/// PKCS#8 algorithm identifiers, to tell an RSA key from an EC one before decoding it.
const RSA_ENCRYPTION: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// The RSA moduli accepted: UEFI firmware verifies RSA-2048 and up, and the `rsa` crate reads
/// no public key (the certificate's) past 4096 bits.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the key file has no PEM private key (looked for BEGIN PRIVATE KEY, BEGIN RSA PRIVATE KEY, BEGIN EC PRIVATE KEY)")]
    NoKey,
    #[error("the key is encrypted; decrypt it first (`openssl pkey -in KEY -out PLAIN`)")]
    Encrypted,
    #[error("decoding the {kind} private key")]
    Decode { kind: &'static str, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("unsupported private key algorithm {0} (RSA and ECDSA P-256 are)")]
    Algorithm(String),
    #[error("the RSA key has {0} bits; 2048 to 4096 are supported")]
    RsaSize(usize),
    #[error("the certificate file has no PEM certificate (BEGIN CERTIFICATE)")]
    NoCertificate,
    #[error("decoding the PEM X.509 certificate")]
    Certificate(#[source] der::Error),
    #[error("the certificate's public key is not the signing key's: they are not a pair")]
    Mismatch,
    #[error("signing")]
    Sign(#[source] rsa::signature::Error),
}

/// A private key of a kind Authenticode can carry.
#[derive(Clone)]
pub enum SigningKey {
    Rsa(Box<rsa::RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
}

impl std::fmt::Debug for SigningKey {
    /// Never the key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SigningKey::Rsa(k) => write!(
                f,
                "SigningKey::Rsa({} bits)",
                rsa::traits::PublicKeyParts::size(k.as_ref()) * 8
            ),
            SigningKey::P256(_) => f.write_str("SigningKey::P256"),
        }
    }
}

/// The PEM blocks of `text` as (label, the whole block from BEGIN to END) pairs, in order. Files from `openssl
/// ecparam -genkey` hold an `EC PARAMETERS` block before the key; it is skipped by label.
fn pem_blocks(text: &str) -> Vec<(&str, &str)> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else { break };
        let label = &after[..label_end];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = after.find(&end_marker) else { break };
        blocks.push((label, &rest[start..start + 11 + end + end_marker.len()]));
        rest = &after[end + end_marker.len()..];
    }
    blocks
}

fn decode_err<E: std::error::Error + Send + Sync + 'static>(
    kind: &'static str,
) -> impl FnOnce(E) -> KeyError {
    move |e| KeyError::Decode { kind, source: Box::new(e) }
}

impl SigningKey {
    /// The first private key in the PEM `text`.
    pub fn from_pem(text: &str) -> Result<SigningKey, KeyError> {
        for (label, block) in pem_blocks(text) {
            match label {
                "RSA PRIVATE KEY" => {
                    let key = rsa::RsaPrivateKey::from_pkcs1_pem(block)
                        .map_err(decode_err("PKCS#1 RSA"))?;
                    return SigningKey::rsa(key);
                }
                "EC PRIVATE KEY" => {
                    let key = p256::SecretKey::from_sec1_pem(block)
                        .map_err(decode_err("SEC1 EC (P-256 only)"))?;
                    return Ok(SigningKey::P256(key.into()));
                }
                "PRIVATE KEY" => return SigningKey::from_pkcs8_pem(block),
                "ENCRYPTED PRIVATE KEY" => return Err(KeyError::Encrypted),
                _ => {}
            }
        }
        Err(KeyError::NoKey)
    }

    fn from_pkcs8_pem(block: &str) -> Result<SigningKey, KeyError> {
        let (_, doc) = der::SecretDocument::from_pem(block).map_err(decode_err("PEM"))?;
        let der = doc.as_bytes();
        let info = p256::pkcs8::PrivateKeyInfo::from_der(der).map_err(decode_err("PKCS#8"))?;
        match info.algorithm.oid {
            RSA_ENCRYPTION => {
                let key =
                    rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(decode_err("PKCS#8 RSA"))?;
                SigningKey::rsa(key)
            }
            EC_PUBLIC_KEY => {
                let key = p256::SecretKey::from_pkcs8_der(der)
                    .map_err(decode_err("PKCS#8 EC (P-256 only)"))?;
                Ok(SigningKey::P256(key.into()))
            }
            other => Err(KeyError::Algorithm(other.to_string())),
        }
    }

    fn rsa(key: rsa::RsaPrivateKey) -> Result<SigningKey, KeyError> {
        let bits = rsa::traits::PublicKeyParts::size(&key) * 8;
        if !RSA_BITS.contains(&bits) {
            return Err(KeyError::RsaSize(bits));
        }
        Ok(SigningKey::Rsa(Box::new(key)))
    }

    /// Whether `cert` certifies this key's public half.
    fn matches(&self, cert: &Certificate) -> Result<bool, KeyError> {
        let spki =
            cert.tbs_certificate.subject_public_key_info.to_der().map_err(KeyError::Certificate)?;
        Ok(match self {
            SigningKey::Rsa(k) => rsa::RsaPublicKey::from_public_key_der(&spki)
                .is_ok_and(|public| public == k.to_public_key()),
            SigningKey::P256(k) => p256::PublicKey::from_public_key_der(&spki)
                .is_ok_and(|public| public == p256::PublicKey::from(k.verifying_key())),
        })
    }

    /// The signature of SHA-256(`message`): PKCS#1 v1.5 for RSA, DER `Ecdsa-Sig-Value` for EC.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match self {
            SigningKey::Rsa(k) => {
                let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(k.as_ref().clone());
                let sig = signer.try_sign(message).map_err(KeyError::Sign)?;
                Ok(sig.to_vec())
            }
            SigningKey::P256(k) => {
                let sig: p256::ecdsa::Signature = k.try_sign(message).map_err(KeyError::Sign)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
        }
    }
}

/// A key and the certificate that names it, checked to be a pair.
#[derive(Debug, Clone)]
pub struct KeyPair {
    pub key: SigningKey,
    pub cert: Certificate,
}

impl KeyPair {
    /// The certificate's public key (the key's), as DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> Result<Vec<u8>, KeyError> {
        self.cert.tbs_certificate.subject_public_key_info.to_der().map_err(KeyError::Certificate)
    }

    /// The key in PEM `key_pem` and the certificate in PEM `cert_pem`; fails unless the
    /// certificate's public key is the key's.
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<KeyPair, KeyError> {
        let key = SigningKey::from_pem(key_pem)?;
        let block = pem_blocks(cert_pem)
            .into_iter()
            .find(|(label, _)| *label == "CERTIFICATE")
            .ok_or(KeyError::NoCertificate)?
            .1;
        let cert = Certificate::from_pem(block).map_err(KeyError::Certificate)?;
        if !key.matches(&cert)? {
            return Err(KeyError::Mismatch);
        }
        Ok(KeyPair { key, cert })
    }
}
