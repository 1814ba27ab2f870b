//! The TPM2 half of a signed UKI: the PCR 11 value systemd-stub will measure for it, and the
//! `.pcrpkey`/`.pcrsig` sections that let a booted system unseal a secret sealed to "any UKI
//! signed by this key" (what `systemd-measure sign` and `ukify` would add). The algorithm is
//! crates/sign's [`baleen_sign::pcr`]; this module feeds it the build's sections.
//!
//! baleen-init extends PCR 11 with the boot phase words systemd-pcrphase measures (its `tpm`
//! module), so the values signed are systemd-measure's defaults, one per phase path of
//! [`PHASE_PATHS`]; the last, after `ready`, is what PCR 11 holds while the system runs and
//! what init logs.

use baleen_sign::pcr::{pcr11, pcrsig_json, public_key_pem, SectionDigest, PHASE_PATHS};
use baleen_sign::{KeyPair, SigningKey};
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, Read, Seek};

/// What the build predicts for PCR 11 (SHA-256 bank) of its signed UKI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pcr11 {
    /// After systemd-stub's measurements of the UKI (systemd-measure's empty phase).
    pub value: [u8; 32],
    /// After baleen-init's boot phases too, `enter-initrd:leave-initrd:sysinit:ready`: the
    /// value of the running system.
    pub ready: [u8; 32],
    /// Whether the UKI carries `.pcrsig`/`.pcrpkey` for it (RSA keys; systemd 252 signs PCR
    /// policies with nothing else).
    pub policy_signed: bool,
}

impl Pcr11 {
    /// The value in lower-case hex, as systemd-measure prints it.
    pub fn hex(&self) -> String {
        hex(&self.value)
    }

    /// [`Pcr11::ready`] in lower-case hex.
    pub fn ready_hex(&self) -> String {
        hex(&self.ready)
    }
}

fn hex(value: &[u8; 32]) -> String {
    value.iter().map(|b| format!("{b:02x}")).collect()
}

/// The extra sections of a signed UKI and the PCR 11 value they were made for.
#[derive(Debug)]
pub struct PcrSections {
    pub pcrpkey: Vec<u8>,
    pub pcrsig: Vec<u8>,
    pub pcr11: Pcr11,
}

#[derive(Debug, thiserror::Error)]
pub enum TpmError {
    #[error("reading the {what} to predict PCR 11")]
    Read { what: &'static str, source: io::Error },
    #[error("the signing certificate's public key")]
    PublicKey(#[source] baleen_sign::KeyError),
    #[error("signing the PCR 11 policy")]
    Policy(#[source] baleen_sign::PcrError),
}

fn file_digest(what: &'static str, f: &mut File) -> Result<[u8; 32], TpmError> {
    let err = |source| TpmError::Read { what, source };
    f.rewind().map_err(err)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    f.rewind().map_err(err)?;
    Ok(h.finalize().into())
}

/// The `.pcrpkey`/`.pcrsig` of the UKI made of `kernel`, `initrd`, `cmdline` and `osrel`,
/// signed by `pair`, and the PCR 11 value they sign. An ECDSA key gets no sections (the value is
/// still predicted, without `.pcrpkey`).
pub fn pcr_sections(
    pair: &KeyPair,
    kernel: &mut File,
    initrd: &mut File,
    cmdline: &[u8],
    osrel: &[u8],
) -> Result<PcrSections, TpmError> {
    let spki = pair.public_key_der().map_err(TpmError::PublicKey)?;
    let rsa = matches!(pair.key, SigningKey::Rsa(_));
    let pcrpkey = if rsa { public_key_pem(&spki).into_bytes() } else { Vec::new() };
    // The stub skips what the UKI does not carry, and the UKI leaves out empty sections.
    let mut digests = Vec::new();
    for (name, what, file) in [(".linux", "kernel", kernel), (".initrd", "initrd", initrd)] {
        let len = file.metadata().map_err(|source| TpmError::Read { what, source })?.len();
        if len > 0 {
            digests.push(SectionDigest { name, digest: file_digest(what, file)? });
        }
    }
    for (name, bytes) in [(".cmdline", cmdline), (".osrel", osrel), (".pcrpkey", &pcrpkey[..])] {
        if !bytes.is_empty() {
            digests.push(SectionDigest { name, digest: Sha256::digest(bytes).into() });
        }
    }
    let value = pcr11(&digests, &[]);
    let phases: Vec<[u8; 32]> = PHASE_PATHS.iter().map(|path| pcr11(&digests, path)).collect();
    let ready = phases[phases.len() - 1];
    let pcrsig = if rsa {
        pcrsig_json(&pair.key, &spki, &phases).map_err(TpmError::Policy)?.into_bytes()
    } else {
        Vec::new()
    };
    Ok(PcrSections { pcrpkey, pcrsig, pcr11: Pcr11 { value, ready, policy_signed: rsa } })
}

#[cfg(test)]
mod tests {
    use super::*;
    use baleen_testkit::signing::{key_pair, KeyKind};
    use std::io::Write as _;

    fn pair(dir: &std::path::Path, kind: KeyKind) -> Option<KeyPair> {
        let (key, cert) = key_pair(dir, "k", kind)?;
        let read = |p| std::fs::read_to_string(p).unwrap();
        Some(KeyPair::from_pem(&read(&key), &read(&cert)).unwrap())
    }

    fn file(bytes: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    fn digest(name: &'static str, bytes: &[u8]) -> SectionDigest<'static> {
        SectionDigest { name, digest: Sha256::digest(bytes).into() }
    }

    #[test]
    fn an_rsa_key_measures_its_pcrpkey_and_skips_an_empty_initrd() {
        let dir = tempfile::tempdir().unwrap();
        let Some(pair) = pair(dir.path(), KeyKind::Rsa2048) else { return };
        let (mut kernel, mut initrd) = (file(b"kernel"), file(b""));
        let s = pcr_sections(&pair, &mut kernel, &mut initrd, b"console=ttyS0", b"ID=x\n").unwrap();
        assert!(s.pcr11.policy_signed && !s.pcrsig.is_empty());
        let sections = [
            digest(".linux", b"kernel"),
            digest(".osrel", b"ID=x\n"),
            digest(".cmdline", b"console=ttyS0"),
            digest(".pcrpkey", &s.pcrpkey),
        ];
        assert_eq!(s.pcr11.value, pcr11(&sections, &[]));
        let full = ["enter-initrd", "leave-initrd", "sysinit", "ready"];
        assert_eq!(s.pcr11.ready, pcr11(&sections, &full));
    }

    #[test]
    fn the_policy_is_signed_for_systemd_measures_four_phase_paths() {
        let dir = tempfile::tempdir().unwrap();
        let Some(pair) = pair(dir.path(), KeyKind::Rsa2048) else { return };
        let (mut kernel, mut initrd) = (file(b"kernel"), file(b"initrd"));
        let s = pcr_sections(&pair, &mut kernel, &mut initrd, b"", b"ID=x\n").unwrap();
        let json = String::from_utf8(s.pcrsig).unwrap();
        let sections = [
            digest(".linux", b"kernel"),
            digest(".osrel", b"ID=x\n"),
            digest(".initrd", b"initrd"),
            digest(".pcrpkey", &s.pcrpkey),
        ];
        let mut path = Vec::new();
        let mut policies = Vec::new();
        for word in ["enter-initrd", "leave-initrd", "sysinit", "ready"] {
            path.push(word);
            let pol = baleen_sign::pcr::policy_pcr11(&pcr11(&sections, &path));
            policies.push(format!("\"pol\":\"{}\"", hex(&pol)));
        }
        // In systemd-measure's order, and nothing else: not the empty phase.
        let found: Vec<&str> =
            json.match_indices("\"pol\":\"").map(|(i, _)| &json[i..i + 72]).collect();
        assert_eq!(found, policies.iter().map(String::as_str).collect::<Vec<_>>(), "{json}");
    }

    #[test]
    fn an_ecdsa_key_predicts_pcr11_but_writes_no_policy() {
        let dir = tempfile::tempdir().unwrap();
        let Some(pair) = pair(dir.path(), KeyKind::EcP256) else { return };
        let (mut kernel, mut initrd) = (file(b"kernel"), file(b"initrd"));
        let s = pcr_sections(&pair, &mut kernel, &mut initrd, b"", b"ID=x\n").unwrap();
        assert!(!s.pcr11.policy_signed && s.pcrsig.is_empty() && s.pcrpkey.is_empty());
        let want = pcr11(
            &[
                digest(".linux", b"kernel"),
                digest(".osrel", b"ID=x\n"),
                digest(".initrd", b"initrd"),
            ],
            &[],
        );
        assert_eq!(s.pcr11.value, want);
    }
}
