//! The EFI disk (`raw-efi`): a GPT disk with one EFI System Partition whose only file is
//! `EFI/BOOT/BOOTX64.EFI`, a UKI. UEFI firmware boots that removable-media path by itself, so
//! no boot loader (systemd-boot, GRUB) and no loader configuration are needed.
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
/// Where UEFI looks on removable media for x86-64.
pub const BOOT_PATH: &str = "EFI/BOOT/BOOTX64.EFI";

#[derive(Debug, thiserror::Error)]
pub enum EfiDiskError {
    #[error("writing the EFI system partition: {0}")]
    Fat(FatError),
    #[error("writing the EFI disk's partition table: {0}")]
    Write(io::Error),
}

/// Sizes of an EFI disk holding one UKI of `uki_len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EfiDiskLayout {
    pub esp_start: u64,
    pub esp_size: u64,
    pub disk_size: u64,
}

impl EfiDiskLayout {
    pub fn for_uki(uki_len: u64) -> EfiDiskLayout {
        // At least 33 MiB, so that the ESP is FAT32 (65,525 clusters or more): the UEFI
        // specification asks for FAT32 on a system partition, and some firmware reads nothing
        // else from a fixed disk. (FAT16 stays for the small boot image of EFI ISOs.)
        let esp_size = (fat::min_volume_size(&[(BOOT_PATH, uki_len)]) + MIB)
            .next_multiple_of(MIB)
            .max(ESP_MIN);
        EfiDiskLayout { esp_start: MIB, esp_size, disk_size: MIB + esp_size + MIB }
    }
}

/// The FAT volume of an EFI system partition holding `uki` as [`BOOT_PATH`]; `seed` fixes the
/// serial. Used on its own as the El Torito image of EFI ISOs.
pub fn write_esp<W: Write>(
    uki: &mut dyn Read,
    uki_len: u64,
    size: u64,
    hidden_sectors: u32,
    seed: &[u8],
    out: W,
) -> Result<(), FatError> {
    let mut files = [FatFile { path: BOOT_PATH.into(), len: uki_len, data: uki }];
    let opts = FatOptions {
        size,
        serial: gpt::derived_u32(seed, "fat-serial"),
        label: "EFI".into(),
        hidden_sectors,
        boot_code: None,
    };
    fat::write_fat(&mut files, &opts, out).map(|_| ())
}

/// Writes the whole disk image (`layout.disk_size` bytes) to `out`.
pub fn write_efi_disk<W: Write>(
    uki: &mut dyn Read,
    uki_len: u64,
    seed: &[u8],
    mut out: W,
) -> Result<EfiDiskLayout, EfiDiskError> {
    let layout = EfiDiskLayout::for_uki(uki_len);
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
    write_esp(uki, uki_len, layout.esp_size, first as u32, seed, &mut out)
        .map_err(EfiDiskError::Fat)?;
    let tail = table.tail();
    let gap = layout.disk_size - layout.esp_start - layout.esp_size - tail.len() as u64;
    write_zeros(&mut out, gap).map_err(EfiDiskError::Write)?;
    out.write_all(&tail).map_err(EfiDiskError::Write)?;
    Ok(layout)
}
