//! `--secure-boot [--enroll CERT.pem]`: which outputs can boot under OVMF's Secure Boot build,
//! and the firmware files and variable store they boot with.
//!
//! The code is Debian's `OVMF_CODE_4M.secboot.fd` (SMM; [`crate::plan::Firmware::SecureBoot`]
//! turns SMM on in qemu). The variable store, kept in the VM's state directory, is either a copy
//! of Debian's `OVMF_VARS_4M.ms.fd` (Microsoft's keys, Secure Boot on) or, with `--enroll`, the
//! empty `OVMF_VARS_4M.fd` with the certificate enrolled as PK, KEK and db ([`crate::efivars`]).

use crate::efivars::{self, CertError, StoreError};
use crate::plan::{Arch, BootSource, Firmware};
use crate::prepare::Detected;
use std::path::{Path, PathBuf};

/// Whose keys the variable store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecureBoot {
    /// Debian's `OVMF_VARS_4M.ms.fd`: Microsoft's KEK and db (what a PC ships with).
    MicrosoftKeys,
    /// This PEM X.509 certificate as PK, KEK and db, and nothing else.
    Enroll(PathBuf),
}

/// Where Debian's `ovmf` package puts the firmware.
pub const OVMF_DIR: &str = "/usr/share/OVMF";
/// The Secure Boot build of the firmware code (SMM).
pub const SECBOOT_CODE: &str = "OVMF_CODE_4M.secboot.fd";
/// Microsoft's keys enrolled, Secure Boot on.
pub const MS_VARS: &str = "OVMF_VARS_4M.ms.fd";
/// The empty store `--enroll` starts from.
pub const EMPTY_VARS: &str = "OVMF_VARS_4M.fd";
/// The enrolled store's name in the state directory.
pub const ENROLLED_VARS: &str = "OVMF_VARS_4M.enrolled.fd";

/// `--secure-boot` cannot boot this.
#[derive(Debug, thiserror::Error)]
pub enum SecureBootError {
    #[error(
        "{path} is a {format} output, which UEFI Secure Boot cannot start: it boots EFI outputs \
         (uki, raw-efi, qcow2-efi, iso-efi, iso-efi-initrd, aws, vhd, dynamic-vhd, vmdk)"
    )]
    NotEfi { path: PathBuf, format: &'static str },
    #[error("OVMF's Secure Boot firmware is for x86_64 guests (asked for {arch})")]
    Arch { arch: Arch },
    #[error("{path} is missing: install Debian's `ovmf` package (OVMF's Secure Boot build)")]
    NoFirmware { path: PathBuf },
    #[error("reading the certificate to enroll")]
    Certificate(#[source] CertError),
    #[error("reading the empty variable store {path}")]
    ReadTemplate { path: PathBuf, source: std::io::Error },
    #[error("enrolling the certificate into {path}")]
    Store { path: PathBuf, source: StoreError },
    #[error("writing the variable store {path}")]
    WriteVars { path: PathBuf, source: std::io::Error },
    #[error("copying the variable store {from} to {to}")]
    CopyVars { from: PathBuf, to: PathBuf, source: std::io::Error },
}

/// Refuses what UEFI cannot start: kernel+initrd and the root-image prefixes (qemu's `-kernel`
/// with no firmware check), and the BIOS-only outputs (`raw-bios` `B-bios.img`, `qcow2-bios`
/// `B.qcow2`, `iso-bios` `B.iso`). The hybrid disks boot under UEFI too, so they pass.
pub fn check_efi(path: &Path, detected: &Detected, arch: Arch) -> Result<(), SecureBootError> {
    let stem = detected.prefix.to_string_lossy();
    let format = match &detected.boot {
        BootSource::KernelInitrd { .. } => Some("kernel+initrd"),
        BootSource::Squashfs { cdrom: true, .. } => Some("kernel+iso"),
        BootSource::Squashfs { squashfs, .. } => {
            let erofs = squashfs.to_string_lossy().ends_with("-erofs.img");
            Some(if erofs { "kernel+erofs" } else { "kernel+squashfs" })
        }
        BootSource::Iso(_) if !detected.needs_uefi => Some("iso-bios"),
        BootSource::Disk { .. } if stem.ends_with("-bios") => Some("raw-bios"),
        BootSource::Disk { format, .. } if format == "qcow2" && !detected.needs_uefi => {
            Some("qcow2-bios")
        }
        _ => None,
    };
    if let Some(format) = format {
        return Err(SecureBootError::NotEfi { path: path.to_owned(), format });
    }
    if arch != Arch::X86_64 {
        return Err(SecureBootError::Arch { arch });
    }
    Ok(())
}

/// The firmware from `ovmf_dir` (Debian's [`OVMF_DIR`]) and this VM's variable store in
/// `state`. Microsoft's store is copied once and kept across runs (boot entries persist); the
/// enrolled one is written at every run, from the certificate given now.
pub fn firmware(
    keys: &SecureBoot,
    ovmf_dir: &Path,
    state: &Path,
) -> Result<Firmware, SecureBootError> {
    let need = |name: &str| {
        let path = ovmf_dir.join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(SecureBootError::NoFirmware { path })
        }
    };
    // The certificate first: a bad one is the user's mistake, a missing firmware the host's.
    let der = match keys {
        SecureBoot::Enroll(cert) => {
            Some(efivars::read_certificate(cert).map_err(SecureBootError::Certificate)?)
        }
        SecureBoot::MicrosoftKeys => None,
    };
    let code = need(SECBOOT_CODE)?;
    let vars = match der {
        None => {
            let from = need(MS_VARS)?;
            let to = state.join(MS_VARS);
            if !to.exists() {
                std::fs::copy(&from, &to).map_err(|source| SecureBootError::CopyVars {
                    from: from.clone(),
                    to: to.clone(),
                    source,
                })?;
            }
            to
        }
        Some(der) => {
            let empty = need(EMPTY_VARS)?;
            let template = std::fs::read(&empty)
                .map_err(|source| SecureBootError::ReadTemplate { path: empty.clone(), source })?;
            let store = efivars::enroll(&template, &der)
                .map_err(|source| SecureBootError::Store { path: empty.clone(), source })?;
            let to = state.join(ENROLLED_VARS);
            std::fs::write(&to, store)
                .map_err(|source| SecureBootError::WriteVars { path: to.clone(), source })?;
            to
        }
    };
    Ok(Firmware::SecureBoot { code, vars })
}

#[cfg(test)]
#[path = "secure_boot_tests.rs"]
mod tests;
