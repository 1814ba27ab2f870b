//! EFI-bootable ISO9660 images (`iso-efi`, `iso-efi-initrd`): an El Torito catalog whose one
//! entry (platform EFI, no emulation) is a FAT image holding the UKI as `EFI/BOOT/BOOTX64.EFI`
//! (`BOOTAA64.EFI` for an arm64 UKI).
//! The FAT image is also the file `/BOOT/EFIBOOT.IMG` of the ISO filesystem, as `xorriso -e`
//! makes it, and the last extent of the image: firmware that reads a catalog sector count of 0
//! (used when the image is over the 16-bit count's 32 MiB) takes the rest of the volume.
//!
//! Layout, in 2048-byte sectors: 0–15 system area (zeros), 16 primary volume descriptor, 17 El
//! Torito boot record, 18 terminator, 19/20 little/big-endian path tables, 21 root directory,
//! 22 `/BOOT`, 23 the boot catalog (`/BOOT/BOOT.CAT`), 24… the FAT image. Dates are LinuxKit's
//! epoch. Non-goals: Rock Ridge and Joliet (the only names are upper-case 8.3), BIOS boot,
//! hybrid MBR/GPT.

use super::plain::{write_plain, PlainBoot, PlainDir, PlainEntry, PlainIso};
use super::volume::PLATFORM_EFI;
use super::IsoWriteError;
use crate::efi::{write_esp, EfiArch};
use crate::fat::FatError;
use std::io::{self, Read, Write};

#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error("writing the ISO's EFI boot image: {0}")]
    Esp(FatError),
    #[error("writing the ISO: {0}")]
    Write(io::Error),
    #[error("laying out the EFI ISO")]
    Layout(#[source] IsoWriteError),
}

impl From<IsoWriteError> for IsoError {
    fn from(e: IsoWriteError) -> Self {
        match e {
            IsoWriteError::Write(e) => IsoError::Write(e),
            e => IsoError::Layout(e),
        }
    }
}

/// The size of the FAT boot image for a UKI of `uki_len` bytes: the content and a little
/// slack, whole MiB.
pub fn esp_image_size(arch: EfiArch, uki_len: u64) -> u64 {
    crate::fat::min_volume_size(&[(arch.boot_path(), uki_len)]).next_multiple_of(1 << 20)
}

/// Writes an EFI-bootable ISO holding `uki`; `seed` fixes the FAT serial. Returns its length.
pub fn write_efi_iso<W: Write>(
    arch: EfiArch,
    uki: &mut dyn Read,
    uki_len: u64,
    seed: &[u8],
    out: W,
) -> Result<u64, IsoError> {
    let esp_len = esp_image_size(arch, uki_len);
    let len = u32::try_from(esp_len)
        .map_err(|_| IsoError::Layout(IsoWriteError::VolumeTooLarge { bytes: esp_len }))?;
    let iso = PlainIso {
        system_id: "LINUX",
        volume_id: "BALEEN",
        dirs: vec![
            PlainDir { id: b"\0", parent: 0, entries: vec![PlainEntry::Dir(1)] },
            PlainDir {
                id: b"BOOT",
                parent: 0,
                entries: vec![
                    PlainEntry::Catalog { id: b"BOOT.CAT;1" },
                    PlainEntry::File { id: b"EFIBOOT.IMG;1", len },
                ],
            },
        ],
        boot: Some(PlainBoot { platform: PLATFORM_EFI, file: 0 }),
    };
    write_plain(&iso, out, &mut |_, out| {
        write_esp(arch, uki, uki_len, esp_len, 0, seed, out).map_err(IsoError::Esp)
    })
}
