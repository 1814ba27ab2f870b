//! PCR 11 boot phases, as systemd-pcrphase measures them: the words `enter-initrd`,
//! `leave-initrd`, `sysinit` and `ready` extended into PCR 11 at the matching points of boot, so
//! that a secret sealed to a phase of a signed UKI's policy (`.pcrsig`, which `baleen build`
//! signs for the four phase paths as `systemd-measure sign` does) unseals only then.
//!
//! Through the kernel's TPM resource manager (`/dev/tpmrm0`, else `/dev/tpm0`) with one
//! `TPM2_PCR_Event` command per word: the TPM hashes the word itself, for every active bank,
//! which leaves PCR 11 where systemd-pcrphase's `TPM2_PCR_Extend` of SHA-256(word) (and of the
//! other banks' digests) leaves it, with no hash code in init. Password session, empty
//! authorization: PCR 11 has no auth value.
//!
//! Non-goals: the TPM event log (systemd keeps its own in /run/log/systemd/tpm2-measure.log),
//! `shutdown` and `final` (measured on the way down; nothing unseals then).

use std::io::{Read, Write};

/// The PCR systemd-stub and systemd-pcrphase measure into.
pub const PCR: u32 = 11;
/// Where the TPM is, resource manager first (it cleans up after each client).
const DEVICES: [&str; 2] = ["/dev/tpmrm0", "/dev/tpm0"];
const TPM_ST_SESSIONS: u16 = 0x8002;
const TPM_CC_PCR_EVENT: u32 = 0x0000_013c;
/// The password session: an empty password authorizes PCR 11.
const TPM_RS_PW: u32 = 0x4000_0009;

/// The most a `TPM2_PCR_Event` takes (TPM2B_EVENT's bound in the TPM 2.0 specification).
pub const MAX_EVENT: usize = 1024;

/// The `TPM2_PCR_Event` command that extends `pcr` with the hash of `data` in every bank; an
/// error for `data` over [`MAX_EVENT`] bytes. Such a word is refused rather than cut or hashed
/// first: either would extend PCR 11 with something other than SHA-256(word), the value
/// `baleen build` predicts and systemd-pcrphase measures (the phase words are a dozen bytes).
pub fn pcr_event_command(pcr: u32, data: &[u8]) -> Result<Vec<u8>, TpmError> {
    let n = u16::try_from(data.len())
        .ok()
        .filter(|n| usize::from(*n) <= MAX_EVENT)
        .ok_or(TpmError::TooLong { len: data.len() })?;
    let mut c = Vec::with_capacity(33 + data.len());
    c.extend_from_slice(&TPM_ST_SESSIONS.to_be_bytes());
    c.extend_from_slice(&[0; 4]); // commandSize, below
    c.extend_from_slice(&TPM_CC_PCR_EVENT.to_be_bytes());
    c.extend_from_slice(&pcr.to_be_bytes());
    // The authorization area: its size, then one TPMS_AUTH_COMMAND (handle, empty nonce,
    // attributes, empty password).
    c.extend_from_slice(&9u32.to_be_bytes());
    c.extend_from_slice(&TPM_RS_PW.to_be_bytes());
    c.extend_from_slice(&0u16.to_be_bytes());
    c.push(0);
    c.extend_from_slice(&0u16.to_be_bytes());
    c.extend_from_slice(&n.to_be_bytes());
    c.extend_from_slice(data);
    let size = u32::try_from(c.len()).unwrap_or(u32::MAX);
    c[2..6].copy_from_slice(&size.to_be_bytes());
    Ok(c)
}

/// What is wrong with a TPM response.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("a {0}-byte response")]
    Short(usize),
    #[error("response code {0:#x}")]
    Code(u32),
}

/// A measurement that failed, naming the TPM device; the cause is the source.
#[derive(Debug, thiserror::Error)]
pub enum TpmError {
    #[error("writing to {path}")]
    Write { path: &'static str, source: std::io::Error },
    #[error("reading from {path}")]
    Read { path: &'static str, source: std::io::Error },
    #[error("{path}")]
    Response { path: &'static str, source: ResponseError },
    #[error("a word of {len} bytes: TPM2_PCR_Event takes at most {MAX_EVENT}")]
    TooLong { len: usize },
}

/// The response code of a TPM response: `Ok` for TPM_RC_SUCCESS.
pub fn response_code(response: &[u8]) -> Result<(), ResponseError> {
    let Some(rc) = response.get(6..10) else {
        return Err(ResponseError::Short(response.len()));
    };
    match u32::from_be_bytes([rc[0], rc[1], rc[2], rc[3]]) {
        0 => Ok(()),
        rc => Err(ResponseError::Code(rc)),
    }
}

/// Extends PCR 11 with `word`. `Ok(false)` when the machine has no TPM device.
pub fn measure(word: &str) -> Result<bool, TpmError> {
    let Some((path, mut dev)) = DEVICES.iter().find_map(|p| {
        std::fs::OpenOptions::new().read(true).write(true).open(p).ok().map(|f| (*p, f))
    }) else {
        return Ok(false);
    };
    let command = pcr_event_command(PCR, word.as_bytes())?;
    dev.write_all(&command).map_err(|source| TpmError::Write { path, source })?;
    let mut response = vec![0u8; 4096];
    let n = dev.read(&mut response).map_err(|source| TpmError::Read { path, source })?;
    response_code(&response[..n]).map_err(|source| TpmError::Response { path, source })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_tpm2_pcr_event_on_pcr_11_with_a_password_session() {
        let c = pcr_event_command(11, b"ready").unwrap();
        let want: Vec<u8> = [
            &[0x80, 0x02][..],   // TPM_ST_SESSIONS
            &[0, 0, 0, 34],      // size: 10 + 4 + 4 + 9 + 2 + 5
            &[0, 0, 0x01, 0x3c], // TPM_CC_PCR_Event
            &[0, 0, 0, 11],      // PCR 11
            &[0, 0, 0, 9],       // authorization size
            &[0x40, 0, 0, 0x09], // TPM_RS_PW
            &[0, 0, 0, 0, 0],    // nonce, attributes, password
            &[0, 5],             // TPM2B_EVENT size
            b"ready",
        ]
        .concat();
        assert_eq!(c, want);
    }

    #[test]
    fn a_word_over_1024_bytes_is_refused_not_truncated() {
        let longest = pcr_event_command(11, &[b'x'; MAX_EVENT]).unwrap();
        assert_eq!(&longest[27..29], &1024u16.to_be_bytes());
        assert_eq!(longest.len(), 29 + MAX_EVENT);
        let err = pcr_event_command(11, &[b'x'; MAX_EVENT + 1]).unwrap_err().to_string();
        assert!(err.contains("1025 bytes") && err.contains("at most 1024"), "{err}");
    }

    #[test]
    fn a_response_code_other_than_success_is_an_error() {
        let ok = [0x80, 0x02, 0, 0, 0, 10, 0, 0, 0, 0];
        assert_eq!(response_code(&ok), Ok(()));
        let locality = [0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x09, 0x07];
        assert_eq!(response_code(&locality), Err(ResponseError::Code(0x907)));
        assert_eq!(ResponseError::Code(0x907).to_string(), "response code 0x907");
        assert!(response_code(&[0x80]).is_err());
    }
}
