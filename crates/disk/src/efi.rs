//! The EFI disk (`raw-efi`): a GPT disk with one EFI System Partition whose only file is
//! `EFI/BOOT/BOOTX64.EFI` (`BOOTAA64.EFI` on arm64: [`EfiArch`]), a UKI. UEFI firmware boots
//! that removable-media path by itself, so no boot loader (systemd-boot, GRUB) and no loader
//! configuration are needed.
//!
//! Layout: partition at 1 MiB, ESP (FAT32) sized to its content plus 1 MiB, rounded up to a
//! MiB, at least 33 MiB,
//! 1 MiB after it for the backup GPT; disk GUID, partition GUID and FAT serial derived from the
//! `seed` (a hash of the UKI).

use crate::fat::{self, FatError, FatFile, FatOptions};
use crate::gpt::{self, Gpt, GptPartition};
use crate::uki::write_zeros;
use std::io::{self, Read, Write};

const MIB: u64 = 1 << 20;
const ESP_MIN: u64 = 33 * MIB;
/// Where UEFI looks on removable media for x86-64 (the BIOS-hybrid disks, x86 only, use it).
pub const BOOT_PATH: &str = "EFI/BOOT/BOOTX64.EFI";

/// The UEFI architecture of a UKI: where firmware looks for it on removable media. It is the
/// machine type of the UKI's PE header (its stub's), so a UKI says itself where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EfiArch {
    X64,
    Aa64,
}

impl EfiArch {
    /// `EFI/BOOT/BOOTX64.EFI` or `EFI/BOOT/BOOTAA64.EFI` (UEFI 2.10, 3.5.1.1).
    pub fn boot_path(self) -> &'static str {
        match self {
            EfiArch::X64 => BOOT_PATH,
            EfiArch::Aa64 => "EFI/BOOT/BOOTAA64.EFI",
        }
    }

    /// The boot file's FAT short name as stored in a directory entry.
    pub fn short_name(self) -> &'static [u8; 11] {
        match self {
            EfiArch::X64 => b"BOOTX64 EFI",
            EfiArch::Aa64 => b"BOOTAA64EFI",
        }
    }

    /// The architecture of a PE/COFF image from its header's machine field
    /// (`IMAGE_FILE_MACHINE_AMD64`, `IMAGE_FILE_MACHINE_ARM64`); `None` for anything else.
    pub fn of_pe(head: &[u8]) -> Option<EfiArch> {
        let at =
            usize::try_from(u32::from_le_bytes(head.get(0x3c..0x40)?.try_into().ok()?)).ok()?;
        if head.get(..2)? != b"MZ" || head.get(at..at.checked_add(4)?)? != b"PE\0\0" {
            return None;
        }
        let end = at.checked_add(6)?;
        match u16::from_le_bytes(head.get(at + 4..end)?.try_into().ok()?) {
            0x8664 => Some(EfiArch::X64),
            0xaa64 => Some(EfiArch::Aa64),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EfiDiskError {
    #[error("writing the EFI system partition")]
    Fat(#[source] FatError),
    #[error("writing the EFI disk's partition table")]
    Write(#[source] io::Error),
    #[error("the disk needs {needed} bytes, more than the {size} bytes asked for (or not whole 512-byte sectors)")]
    TooSmall { needed: u64, size: u64 },
    #[error("the EFI system partition starts at sector {sector}, past its boot sector's 32-bit hidden-sector count")]
    StartTooFar { sector: u64 },
}

/// Sizes of an EFI disk holding one UKI of `uki_len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EfiDiskLayout {
    pub esp_start: u64,
    pub esp_size: u64,
    pub disk_size: u64,
}

impl EfiDiskLayout {
    pub fn for_uki(arch: EfiArch, uki_len: u64) -> EfiDiskLayout {
        // At least 33 MiB, so that the ESP is FAT32 (65,525 clusters or more): the UEFI
        // specification asks for FAT32 on a system partition, and some firmware reads nothing
        // else from a fixed disk. (FAT16 stays for the small boot image of EFI ISOs.)
        let esp_size = (fat::min_volume_size(&[(arch.boot_path(), uki_len)]) + MIB)
            .next_multiple_of(MIB)
            .max(ESP_MIN);
        EfiDiskLayout { esp_start: MIB, esp_size, disk_size: MIB + esp_size + MIB }
    }

    /// The same layout on a disk of exactly `size` bytes (`--size`, whole-GiB cloud disks),
    /// which must hold it: the backup GPT moves to the end.
    pub fn sized(self, size: Option<u64>) -> Result<Self, EfiDiskError> {
        match size {
            None => Ok(self),
            Some(size) if size < self.disk_size || size % gpt::SECTOR != 0 => {
                Err(EfiDiskError::TooSmall { needed: self.disk_size, size })
            }
            Some(size) => Ok(EfiDiskLayout { disk_size: size, ..self }),
        }
    }
}

/// The FAT volume of an EFI system partition holding `uki` as `arch`'s boot path; `seed` fixes
/// the serial. Used on its own as the El Torito image of EFI ISOs.
pub fn write_esp<W: Write>(
    arch: EfiArch,
    uki: &mut dyn Read,
    uki_len: u64,
    size: u64,
    hidden_sectors: u32,
    seed: &[u8],
    out: W,
) -> Result<(), FatError> {
    let mut files = [FatFile { path: arch.boot_path().into(), len: uki_len, data: uki }];
    let opts = FatOptions {
        size,
        serial: gpt::derived_u32(seed, "fat-serial"),
        label: "EFI".into(),
        hidden_sectors,
        boot_code: None,
    };
    fat::write_fat(&mut files, &opts, out).map(|_| ())
}

/// Writes the whole disk image ([`EfiDiskLayout::for_uki`]'s `disk_size` bytes) to `out`.
pub fn write_efi_disk<W: Write>(
    arch: EfiArch,
    uki: &mut dyn Read,
    uki_len: u64,
    seed: &[u8],
    out: W,
) -> Result<EfiDiskLayout, EfiDiskError> {
    write_efi_disk_on(arch, EfiDiskLayout::for_uki(arch, uki_len), uki, uki_len, seed, out)
}

/// [`write_efi_disk`] on `layout`: [`EfiDiskLayout::for_uki`], or that [`EfiDiskLayout::sized`].
pub fn write_efi_disk_on<W: Write>(
    arch: EfiArch,
    layout: EfiDiskLayout,
    uki: &mut dyn Read,
    uki_len: u64,
    seed: &[u8],
    mut out: W,
) -> Result<EfiDiskLayout, EfiDiskError> {
    let first = layout.esp_start / gpt::SECTOR;
    let table = Gpt {
        sectors: layout.disk_size / gpt::SECTOR,
        disk_guid: gpt::derived_guid(seed, "gpt-disk"),
        partitions: vec![GptPartition {
            type_guid: gpt::ESP_TYPE,
            guid: gpt::derived_guid(seed, "gpt-esp"),
            first_lba: first,
            last_lba: first + layout.esp_size / gpt::SECTOR - 1,
            attributes: 0,
            name: "ESP".into(),
        }],
    };
    let head = table.head();
    out.write_all(&head).map_err(EfiDiskError::Write)?;
    write_zeros(&mut out, layout.esp_start - head.len() as u64).map_err(EfiDiskError::Write)?;
    let hidden = u32::try_from(first).map_err(|_| EfiDiskError::StartTooFar { sector: first })?;
    write_esp(arch, uki, uki_len, layout.esp_size, hidden, seed, &mut out)
        .map_err(EfiDiskError::Fat)?;
    let tail = table.tail();
    let gap = layout.disk_size - layout.esp_start - layout.esp_size - tail.len() as u64;
    write_zeros(&mut out, gap).map_err(EfiDiskError::Write)?;
    out.write_all(&tail).map_err(EfiDiskError::Write)?;
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PE header as a stub has it: `MZ`, `e_lfanew` at 0x3c, `PE\0\0`, the machine.
    fn pe(machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 0x90];
        h[..2].copy_from_slice(b"MZ");
        h[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        h[0x80..0x84].copy_from_slice(b"PE\0\0");
        h[0x84..0x86].copy_from_slice(&machine.to_le_bytes());
        h
    }

    #[test]
    fn the_arch_is_the_pe_machine_and_names_the_removable_media_path() {
        assert_eq!(EfiArch::of_pe(&pe(0x8664)), Some(EfiArch::X64));
        assert_eq!(EfiArch::of_pe(&pe(0xaa64)), Some(EfiArch::Aa64));
        assert_eq!(EfiArch::of_pe(&pe(0x014c)), None, "i386");
        assert_eq!(EfiArch::of_pe(&pe(0xaa64)[..0x84]), None, "cut short");
        let mut not_mz = pe(0xaa64);
        not_mz[0] = b'X';
        assert_eq!(EfiArch::of_pe(&not_mz), None);
        let mut far = pe(0xaa64);
        far[0x3c..0x40].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(EfiArch::of_pe(&far), None, "e_lfanew past the end");
        assert_eq!(EfiArch::Aa64.boot_path(), "EFI/BOOT/BOOTAA64.EFI");
        assert_eq!(EfiArch::X64.boot_path(), "EFI/BOOT/BOOTX64.EFI");
    }
}
