//! TPM2 PCR 11 of a UKI, as systemd-stub measures it, and the signed PCR policy (`.pcrsig`)
//! that lets a booted system unseal a secret bound to "any UKI signed by this key".
//!
//! What systemd 252 (Debian bookworm's `systemd-boot-efi`) does, and what this reproduces:
//! - the stub extends PCR 11, for each section it finds in the fixed order `.linux`, `.osrel`,
//!   `.cmdline`, `.initrd`, `.splash`, `.dtb`, `.pcrpkey` (never `.pcrsig`, which holds the
//!   signature of the result) and is not empty, first with SHA-256 of the section's name
//!   including its NUL, then with SHA-256 of its content (the section's `VirtualSize` bytes);
//! - `systemd-measure` computes the same from the section files, then extends one word per boot
//!   phase (`enter-initrd`, …) that `systemd-pcrphase` measures later; by default it signs the
//!   four phase paths of [`PHASE_PATHS`]. baleen-init extends PCR 11 with the same words (see
//!   docs/security.md), so a running baleen system's value after `ready` is the last path's;
//! - `systemd-measure sign` signs, per value, the TPM2 `PolicyPCR` digest of PCR 11 in the
//!   SHA-256 bank with the key (RSA PKCS#1 v1.5 over SHA-256 of the digest, what
//!   `PolicyAuthorize` checks), and writes `{"sha256":[{"pcrs":[11],"pkfp":…,"pol":…,"sig":…}]}`
//!   and a newline: [`pcrsig_json`].
//!
//! Non-goals: other banks (SHA-1, SHA-384), PCRs other than 11, ECDSA policy signatures (systemd
//! 252 signs PCR policies with RSA keys only).

use crate::key::{KeyError, SigningKey};
use base64::Engine as _;
use der::Decode as _;
use sha2::{Digest as _, Sha256};

/// The PCR systemd-stub measures a UKI's sections into.
pub const PCR_KERNEL_IMAGE: u32 = 11;

/// The sections systemd-stub 252 measures, in the order it measures them.
pub const MEASURED_SECTIONS: [&str; 7] =
    [".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb", ".pcrpkey"];

/// The boot phase paths `systemd-measure sign` signs a policy for by default, in its order:
/// `enter-initrd`, `enter-initrd:leave-initrd`, `…:sysinit`, `…:ready`.
pub const PHASE_PATHS: [&[&str]; 4] = [
    &["enter-initrd"],
    &["enter-initrd", "leave-initrd"],
    &["enter-initrd", "leave-initrd", "sysinit"],
    &["enter-initrd", "leave-initrd", "sysinit", "ready"],
];

/// `TPM_CC_PolicyPCR`.
const TPM_CC_POLICY_PCR: u32 = 0x0000_017f;
/// `TPM_ALG_SHA256`.
const TPM_ALG_SHA256: u16 = 0x000b;

#[derive(Debug, thiserror::Error)]
pub enum PcrError {
    #[error("systemd 252 signs PCR policies with RSA keys only; the signing key is ECDSA P-256")]
    NotRsa,
    #[error("decoding the signing certificate's public key")]
    PublicKey(#[source] der::Error),
    #[error("signing the PCR 11 policy")]
    Sign(#[source] KeyError),
}

/// One UKI section the stub measures: its name and SHA-256 of its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionDigest<'a> {
    pub name: &'a str,
    pub digest: [u8; 32],
}

/// `PCR := SHA-256(PCR || digest)`, the TPM's extend.
fn extend(pcr: &mut [u8; 32], digest: &[u8]) {
    let mut h = Sha256::new();
    h.update(*pcr);
    h.update(digest);
    *pcr = h.finalize().into();
}

/// The SHA-256 PCR 11 value after systemd-stub has measured `sections` (the non-empty ones: the
/// stub skips an empty section, and so must the caller), starting from zeros, in the stub's
/// order whatever the order given; names the stub does not measure are ignored. Then one
/// extend per word of `phases` (`systemd-measure --phase=enter-initrd:leave-initrd` is
/// `["enter-initrd", "leave-initrd"]`), hashed without a NUL.
pub fn pcr11(sections: &[SectionDigest<'_>], phases: &[&str]) -> [u8; 32] {
    let mut pcr = [0u8; 32];
    for name in MEASURED_SECTIONS {
        for s in sections.iter().filter(|s| s.name == name) {
            let mut with_nul = name.as_bytes().to_vec();
            with_nul.push(0);
            extend(&mut pcr, &Sha256::digest(&with_nul));
            extend(&mut pcr, &s.digest);
        }
    }
    for word in phases.iter().filter(|w| !w.is_empty()) {
        extend(&mut pcr, &Sha256::digest(word.as_bytes()));
    }
    pcr
}

/// The TPM2 policy digest of `TPM2_PolicyPCR` over PCR 11 of the SHA-256 bank holding `value`,
/// from a fresh session: `SHA-256(zeros || TPM_CC_PolicyPCR || TPML_PCR_SELECTION ||
/// SHA-256(value))`, all big-endian (TPM 2.0 Part 3, 23.7).
pub fn policy_pcr11(value: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8; 32]);
    h.update(TPM_CC_POLICY_PCR.to_be_bytes());
    // TPML_PCR_SELECTION: one TPMS_PCR_SELECTION, SHA-256, a 3-byte bitmap with bit 11 set.
    h.update(1u32.to_be_bytes());
    h.update(TPM_ALG_SHA256.to_be_bytes());
    let bit = PCR_KERNEL_IMAGE as usize;
    let mut select = [0u8; 3];
    select[bit / 8] = 1 << (bit % 8);
    h.update([3u8]);
    h.update(select);
    h.update(Sha256::digest(value));
    h.finalize().into()
}

/// `spki_der` (a DER SubjectPublicKeyInfo) as PEM `PUBLIC KEY`, as `openssl pkey -pubout`
/// writes it: what goes into `.pcrpkey`.
pub fn public_key_pem(spki_der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(spki_der);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `.pcrsig` of `values` (PCR 11, SHA-256 bank), byte for byte what `systemd-measure sign
/// --bank=sha256` writes with `key` (RSA) whose public key is `spki_der` (DER
/// SubjectPublicKeyInfo): one entry per value, in order. `pkfp` is SHA-256 of the PKCS#1
/// RSAPublicKey, as systemd fingerprints keys.
pub fn pcrsig_json(
    key: &SigningKey,
    spki_der: &[u8],
    values: &[[u8; 32]],
) -> Result<String, PcrError> {
    if !matches!(key, SigningKey::Rsa(_)) {
        return Err(PcrError::NotRsa);
    }
    // systemd's pubkey_fingerprint() hashes i2d_PublicKey(): for RSA the PKCS#1 RSAPublicKey,
    // which is the SubjectPublicKeyInfo's bit string.
    let spki = x509_cert::spki::SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(PcrError::PublicKey)?;
    let pkfp = hex(&Sha256::digest(spki.subject_public_key.raw_bytes()));
    let mut entries = Vec::with_capacity(values.len());
    for value in values {
        let pol = policy_pcr11(value);
        let sig = key.sign(&pol).map_err(PcrError::Sign)?;
        let sig = base64::engine::general_purpose::STANDARD.encode(sig);
        entries.push(format!(
            "{{\"pcrs\":[{PCR_KERNEL_IMAGE}],\"pkfp\":\"{pkfp}\",\"pol\":\"{}\",\"sig\":\"{sig}\"}}",
            hex(&pol)
        ));
    }
    Ok(format!("{{\"sha256\":[{}]}}\n", entries.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    fn sections() -> Vec<SectionDigest<'static>> {
        // Given out of the stub's order on purpose.
        vec![
            SectionDigest { name: ".cmdline", digest: Sha256::digest(b"console=ttyS0").into() },
            SectionDigest { name: ".osrel", digest: Sha256::digest(b"ID=x\n").into() },
            SectionDigest { name: ".linux", digest: Sha256::digest(b"abc").into() },
        ]
    }

    /// Vectors from Debian bookworm's `systemd-measure calculate --bank=sha256` (systemd
    /// 252.39) on files holding `abc` (--linux), `ID=x\n` (--osrel) and `console=ttyS0`
    /// (--cmdline), with `--phase=` (empty) and `--phase=enter-initrd`.
    #[test]
    fn pcr11_is_what_systemd_measure_252_calculates() {
        let bare = pcr11(&sections(), &[]);
        assert_eq!(hex(&bare), "4e54c253592feb61cd004f68102a607eb6ab0bcdaee7a6320e7cb76efe87f178");
        let initrd = pcr11(&sections(), &["enter-initrd"]);
        assert_eq!(
            hex(&initrd),
            "33235472b041da06feb51fdea1ce8d5b4a8b062439822fef5bc65cbbc4ff7377"
        );
        let ready = pcr11(&sections(), &["enter-initrd", "leave-initrd", "sysinit", "ready"]);
        assert_eq!(hex(&ready), "756e034d7c4a818b60cfe384c7542d9c1aae810b594a872dc899c3f090f3195c");
    }

    #[test]
    fn pcrsig_is_not_measured_and_unknown_sections_are_ignored() {
        let mut with = sections();
        with.push(SectionDigest { name: ".pcrsig", digest: [7; 32] });
        with.push(SectionDigest { name: ".sbat", digest: [8; 32] });
        assert_eq!(pcr11(&with, &[]), pcr11(&sections(), &[]));
    }

    /// The vector: `systemd-measure sign --bank=sha256 --phase=` (systemd 252.39) against swtpm
    /// 0.7.1, whose libtpms computed the policy in a trial session (TPM2_PolicyPCR then
    /// TPM2_PolicyGetDigest) for the PCR 11 value 68119518…: it wrote `"pol":"2929d079…"`.
    #[test]
    fn policy_digest_is_what_a_tpm_computes_in_a_trial_session() {
        let value = unhex("68119518ff49f43f88e137234cbacf591ba4a0f1944b189701d42f5de379baeb");
        assert_eq!(
            hex(&policy_pcr11(&value)),
            "2929d07925b7969ba78d7d1d322200ce45b79a4199ad4d4d9116004c71850bb9"
        );
    }

    #[test]
    fn public_key_pem_wraps_at_64_columns() {
        let pem = public_key_pem(&[0u8; 60]);
        let lines: Vec<_> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN PUBLIC KEY-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2].len(), 16);
        assert_eq!(lines[3], "-----END PUBLIC KEY-----");
    }
}
