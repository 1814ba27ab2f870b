//! BIOS-bootable disks: `raw-bios` (an MBR disk, as LinuxKit's mkimage-raw-bios makes) and the
//! hybrid GPT disk under the cloud formats (`raw-efi`, `aws`, `vhd`, `vmdk`, `gcp`, …), which
//! boots under both SeaBIOS and UEFI.
//!
//! Key items: [`BiosLoader`] (SYSLINUX and the MBR codes), [`BootFiles`] (kernel, initrd, command
//! line), [`DiskLayout`], [`write_bios_disk`], [`write_hybrid_disk`].
//!
//! Both disks hold one FAT partition at 1 MiB with `LDLINUX.SYS` (patched for where it lies,
//! see [`crate::syslinux`]), `LDLINUX.C32`, `SYSLINUX.CFG`, `KERNEL` and `INITRD.IMG`; its boot
//! sector carries SYSLINUX's code over our BPB.
//! - raw-bios: SYSLINUX's `mbr.bin` in the MBR, which boots the active partition; the FAT is
//!   sized to its files plus 1 MiB, rounded to a MiB, and the disk has 4 MiB besides (LinuxKit's
//!   sizes).
//! - hybrid: the EFI disk's layout (FAT32 ESP with the UKI as `EFI/BOOT/BOOTX64.EFI`), plus
//!   SYSLINUX's `gptmbr.bin` in the protective MBR's code area and the GPT "legacy BIOS
//!   bootable" attribute (bit 2) on the ESP: gptmbr.bin finds that partition through the GPT and
//!   hands its LBA to SYSLINUX's boot sector. UEFI firmware ignores both.
//!
//! - hybrid with data partitions ([`write_hybrid_disk_with`]): after the ESP, each
//!   [`DataPartition`] (a read-only root filesystem, its dm-verity hash tree) at a MiB
//!   boundary, sized to its data rounded up to a MiB, with the type and GUID the caller gives
//!   (the Discoverable Partitions Specification's, from crates/build).
//!
//! The disk signature, GUIDs and FAT serial come from `seed` (a content hash). `--size` grows
//! the disk (never the partition); a size below what the content needs is an error naming it.
//!
//! Non-goals: ext4 root file systems (LinuxKit's qcow2-bios/aws use ext4 + extlinux; ours boot
//! the same kernel and initrd from FAT), boot menus, EXTLINUX.

use crate::efi::BOOT_PATH;
use crate::fat::{self, FatError, FatFile, FatOptions, FatType};
use crate::gpt::{self, Gpt, GptPartition};
use crate::mbr::{self, MbrPartition};
use crate::syslinux::{Syslinux, SyslinuxError, LDLINUX_C32, LDLINUX_SYS};
use crate::uki::write_zeros;
use std::io::{self, Read, Write};

const MIB: u64 = 1 << 20;
const ESP_MIN: u64 = 33 * MIB;
/// The GPT attribute "legacy BIOS bootable", which gptmbr.bin looks for.
pub const LEGACY_BIOS_BOOTABLE: u64 = 1 << 2;
pub const SYSLINUX_CFG: &str = "SYSLINUX.CFG";
pub const KERNEL: &str = "KERNEL";
pub const INITRD: &str = "INITRD.IMG";

#[derive(Debug, thiserror::Error)]
pub enum BiosError {
    #[error("installing SYSLINUX")]
    Syslinux(#[source] SyslinuxError),
    #[error("writing the boot partition")]
    Fat(#[source] FatError),
    #[error("writing the disk")]
    Write(#[source] io::Error),
    #[error(
        "the boot partition's {field} is {sectors} sectors, past an MBR's 32-bit field (2 TiB)"
    )]
    PastMbr { field: &'static str, sectors: u64 },
    #[error("the disk needs {needed} bytes ({mib} MiB), more than the {size} bytes asked for", mib = needed.div_ceil(MIB))]
    TooSmall { needed: u64, size: u64 },
    #[error("the boot partition needs {needed} bytes at byte {start} and 1 MiB after it on the disk; the layout gives {size} bytes on a {disk}-byte disk")]
    Partition { needed: u64, start: u64, size: u64, disk: u64 },
    #[error("the {name} partition's data ended after {got} bytes; {expected} were announced")]
    ShortData { name: &'static str, expected: u64, got: u64 },
    #[error("{which} boot code is {len} bytes; an MBR has room for 440")]
    Code { which: &'static str, len: usize },
}

/// The boot loader parts: SYSLINUX, and the MBR codes `mbr.bin` and `gptmbr.bin` (440 bytes
/// each, from `syslinux-common`).
#[derive(Debug, Clone)]
pub struct BiosLoader {
    pub syslinux: Syslinux,
    pub mbr: Vec<u8>,
    pub gptmbr: Vec<u8>,
}

impl BiosLoader {
    pub fn new(syslinux: Syslinux, mbr: Vec<u8>, gptmbr: Vec<u8>) -> Result<Self, BiosError> {
        for (which, code) in [("mbr.bin", &mbr), ("gptmbr.bin", &gptmbr)] {
            if code.len() > mbr::CODE_LEN || code.is_empty() {
                return Err(BiosError::Code { which, len: code.len() });
            }
        }
        Ok(BiosLoader { syslinux, mbr, gptmbr })
    }
}

/// What the BIOS boots: `kernel_len` bytes of kernel, `initrd_len` of initrd, the command line.
pub struct BootFiles<'a> {
    pub kernel: &'a mut dyn Read,
    pub kernel_len: u64,
    pub initrd: &'a mut dyn Read,
    pub initrd_len: u64,
    pub cmdline: &'a [u8],
}

impl std::fmt::Debug for BootFiles<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootFiles")
            .field("kernel_len", &self.kernel_len)
            .field("initrd_len", &self.initrd_len)
            .finish()
    }
}

/// `SYSLINUX.CFG`: boot the kernel and initrd at once with the command line, as LinuxKit's.
pub fn syslinux_cfg(cmdline: &[u8]) -> Vec<u8> {
    let mut cfg =
        b"DEFAULT linux\nLABEL linux\n    KERNEL /kernel\n    INITRD /initrd.img\n    APPEND "
            .to_vec();
    // A newline would end the APPEND line: the command line is one line.
    cfg.extend(cmdline.iter().map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }));
    cfg.push(b'\n');
    cfg
}

/// Where the partition and the disk end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskLayout {
    pub part_start: u64,
    pub part_size: u64,
    /// Bytes of the data partitions after the boot partition (each rounded up to a MiB).
    pub data_size: u64,
    pub disk_size: u64,
}

/// A partition after the ESP holding `len` bytes of `data` from its first byte, zeros after.
pub struct DataPartition<'a> {
    pub type_guid: [u8; 16],
    /// On-disk order ([`gpt::guid_from_uuid`] turns a written UUID into it).
    pub guid: [u8; 16],
    pub name: &'static str,
    pub len: u64,
    pub data: &'a mut dyn Read,
}

impl std::fmt::Debug for DataPartition<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPartition").field("name", &self.name).field("len", &self.len).finish()
    }
}

/// The room a data partition of `len` bytes takes: whole MiB, at least one.
pub fn data_partition_size(len: u64) -> u64 {
    len.next_multiple_of(MIB).max(MIB)
}

fn files(loader: &Syslinux, boot_lens: (u64, u64, u64), uki_len: Option<u64>) -> Vec<(&str, u64)> {
    let (kernel, initrd, cfg) = boot_lens;
    let mut v = vec![
        (LDLINUX_SYS, loader.ldlinux_sys_len()),
        (LDLINUX_C32, loader.ldlinux_c32().len() as u64),
        (SYSLINUX_CFG, cfg),
        (KERNEL, kernel),
        (INITRD, initrd),
    ];
    if let Some(len) = uki_len {
        v.push((BOOT_PATH, len));
    }
    v
}

impl DiskLayout {
    /// raw-bios: FAT at 1 MiB sized to its files + 1 MiB (rounded to a MiB), 4 MiB besides.
    pub fn raw_bios(loader: &Syslinux, kernel_len: u64, initrd_len: u64, cmdline: &[u8]) -> Self {
        let cfg = syslinux_cfg(cmdline).len() as u64;
        let part = (fat::min_volume_size(&files(loader, (kernel_len, initrd_len, cfg), None))
            + MIB)
            .next_multiple_of(MIB);
        DiskLayout { part_start: MIB, part_size: part, data_size: 0, disk_size: part + 4 * MIB }
    }

    /// The hybrid disk: the EFI disk's ESP (at least 33 MiB, FAT32) holding the BIOS files too,
    /// 1 MiB after it for the backup GPT.
    pub fn hybrid(
        loader: &Syslinux,
        kernel_len: u64,
        initrd_len: u64,
        cmdline: &[u8],
        uki_len: u64,
    ) -> Self {
        let cfg = syslinux_cfg(cmdline).len() as u64;
        let all = files(loader, (kernel_len, initrd_len, cfg), Some(uki_len));
        let part = (fat::min_volume_size(&all) + MIB).next_multiple_of(MIB).max(ESP_MIN);
        DiskLayout { part_start: MIB, part_size: part, data_size: 0, disk_size: part + 2 * MIB }
    }

    /// The same layout with data partitions of `lens` bytes after the boot partition.
    pub fn with_data(self, lens: &[u64]) -> Self {
        let data: u64 = lens.iter().map(|&l| data_partition_size(l)).sum();
        DiskLayout { data_size: self.data_size + data, disk_size: self.disk_size + data, ..self }
    }

    /// The same layout on a disk of exactly `size` bytes (`--size`), which must hold it.
    pub fn sized(self, size: Option<u64>) -> Result<Self, BiosError> {
        match size {
            None => Ok(self),
            Some(size) if size < self.disk_size || size % gpt::SECTOR != 0 => {
                Err(BiosError::TooSmall { needed: self.disk_size, size })
            }
            Some(size) => Ok(DiskLayout { disk_size: size, ..self }),
        }
    }
}

/// Writes the boot FAT volume of `layout`: SYSLINUX installed, the BIOS files, and the UKI when
/// given. Returns the FAT type.
fn write_boot_fat<W: Write>(
    loader: &Syslinux,
    boot: &mut BootFiles<'_>,
    uki: Option<(&mut dyn Read, u64)>,
    layout: &DiskLayout,
    seed: &[u8],
    out: W,
) -> Result<FatType, BiosError> {
    let cfg = syslinux_cfg(boot.cmdline);
    let uki_len = uki.as_ref().map(|u| u.1);
    let names = files(loader, (boot.kernel_len, boot.initrd_len, cfg.len() as u64), uki_len);
    let sectors = fat::file_sectors(&names, layout.part_size).map_err(BiosError::Fat)?;
    let (sys, boot_code) = loader.install(sectors[0]).map_err(BiosError::Syslinux)?;
    let c32 = loader.ldlinux_c32();
    let mut list: Vec<FatFile<'_>> = Vec::new();
    let (mut sys_r, mut c32_r, mut cfg_r) = (&sys[..], c32, &cfg[..]);
    list.push(FatFile { path: LDLINUX_SYS.into(), len: sys.len() as u64, data: &mut sys_r });
    list.push(FatFile { path: LDLINUX_C32.into(), len: c32.len() as u64, data: &mut c32_r });
    list.push(FatFile { path: SYSLINUX_CFG.into(), len: cfg.len() as u64, data: &mut cfg_r });
    list.push(FatFile { path: KERNEL.into(), len: boot.kernel_len, data: &mut *boot.kernel });
    list.push(FatFile { path: INITRD.into(), len: boot.initrd_len, data: &mut *boot.initrd });
    if let Some((data, len)) = uki {
        list.push(FatFile { path: BOOT_PATH.into(), len, data });
    }
    let opts = FatOptions {
        size: layout.part_size,
        serial: gpt::derived_u32(seed, "fat-serial"),
        label: if uki_len.is_some() { "EFI" } else { "BOOT" }.into(),
        hidden_sectors: mbr_field("start", layout.part_start)?,
        boot_code: Some(boot_code),
    };
    fat::write_fat(&mut list, &opts, out).map_err(BiosError::Fat)
}

/// `bytes` in sectors for a 32-bit MBR (or BPB) field of the boot partition.
fn mbr_field(field: &'static str, bytes: u64) -> Result<u32, BiosError> {
    let sectors = bytes / gpt::SECTOR;
    u32::try_from(sectors).map_err(|_| BiosError::PastMbr { field, sectors })
}

/// `raw-bios`: MBR with `mbr.bin` and one active FAT partition at 1 MiB booting SYSLINUX.
/// `size` (`--size`) makes the disk exactly that long.
pub fn write_bios_disk<W: Write>(
    loader: &BiosLoader,
    mut boot: BootFiles<'_>,
    seed: &[u8],
    size: Option<u64>,
    mut out: W,
) -> Result<DiskLayout, BiosError> {
    let layout =
        DiskLayout::raw_bios(&loader.syslinux, boot.kernel_len, boot.initrd_len, boot.cmdline)
            .sized(size)?;
    let kind = match fat::fat_type(layout.part_size).map_err(BiosError::Fat)? {
        FatType::Fat16 => mbr::TYPE_FAT16_LBA,
        FatType::Fat32 => mbr::TYPE_FAT32_LBA,
    };
    let part = MbrPartition {
        bootable: true,
        kind,
        first_lba: mbr_field("start", layout.part_start)?,
        sectors: mbr_field("size", layout.part_size)?,
    };
    let sector0 = mbr::mbr_sector(&loader.mbr, gpt::derived_u32(seed, "mbr-signature"), &[part]);
    let w = BiosError::Write;
    out.write_all(&sector0).map_err(w)?;
    write_zeros(&mut out, layout.part_start - 512).map_err(w)?;
    write_boot_fat(&loader.syslinux, &mut boot, None, &layout, seed, &mut out)?;
    write_zeros(&mut out, layout.disk_size - layout.part_start - layout.part_size).map_err(w)?;
    Ok(layout)
}

/// The hybrid GPT disk: the EFI disk's ESP with the UKI, SYSLINUX beside it, `gptmbr.bin` in
/// the protective MBR and the legacy-BIOS-bootable attribute on the ESP. `size` (`--size`)
/// makes the disk exactly that long (the backup GPT moves to its end).
pub fn write_hybrid_disk<W: Write>(
    loader: &BiosLoader,
    boot: BootFiles<'_>,
    uki: &mut dyn Read,
    uki_len: u64,
    seed: &[u8],
    size: Option<u64>,
    out: W,
) -> Result<DiskLayout, BiosError> {
    let layout = hybrid_need(loader, &boot, uki_len).sized(size)?;
    write_hybrid_disk_on(loader, boot, uki, uki_len, seed, layout, out)
}

/// The hybrid disk's layout at its natural size for these files.
fn hybrid_need(loader: &BiosLoader, boot: &BootFiles<'_>, uki_len: u64) -> DiskLayout {
    DiskLayout::hybrid(&loader.syslinux, boot.kernel_len, boot.initrd_len, boot.cmdline, uki_len)
}

/// [`write_hybrid_disk`] on a layout of the caller's: the partition where
/// [`DiskLayout::hybrid`] puts it, at least as large (an ESP with room to spare), with 1 MiB of
/// disk after it for the backup GPT.
pub fn write_hybrid_disk_on<W: Write>(
    loader: &BiosLoader,
    boot: BootFiles<'_>,
    uki: &mut dyn Read,
    uki_len: u64,
    seed: &[u8],
    layout: DiskLayout,
    out: W,
) -> Result<DiskLayout, BiosError> {
    write_hybrid_disk_with(loader, boot, uki, uki_len, seed, layout, &mut [], out)
}

/// [`write_hybrid_disk_on`] with `data` partitions after the ESP, in order; `layout` is
/// [`DiskLayout::with_data`] of their lengths (then [`DiskLayout::sized`] when the disk is
/// grown).
#[allow(clippy::too_many_arguments)]
pub fn write_hybrid_disk_with<W: Write>(
    loader: &BiosLoader,
    mut boot: BootFiles<'_>,
    uki: &mut dyn Read,
    uki_len: u64,
    seed: &[u8],
    layout: DiskLayout,
    data: &mut [DataPartition<'_>],
    mut out: W,
) -> Result<DiskLayout, BiosError> {
    let need = hybrid_need(loader, &boot, uki_len);
    let data_size: u64 = data.iter().map(|d| data_partition_size(d.len)).sum();
    if layout.part_start != need.part_start
        || layout.part_size < need.part_size
        || layout.part_size % gpt::SECTOR != 0
        || layout.data_size != data_size
        || layout.disk_size < layout.part_start + layout.part_size + data_size + MIB
        || layout.disk_size % gpt::SECTOR != 0
    {
        return Err(BiosError::Partition {
            needed: need.part_size,
            start: need.part_start,
            size: layout.part_size,
            disk: layout.disk_size,
        });
    }
    let first = layout.part_start / gpt::SECTOR;
    let mut partitions = vec![GptPartition {
        type_guid: gpt::ESP_TYPE,
        guid: gpt::derived_guid(seed, "gpt-esp"),
        first_lba: first,
        last_lba: first + layout.part_size / gpt::SECTOR - 1,
        attributes: LEGACY_BIOS_BOOTABLE,
        name: "ESP".into(),
    }];
    let mut at = layout.part_start + layout.part_size;
    for d in data.iter() {
        let size = data_partition_size(d.len);
        partitions.push(GptPartition {
            type_guid: d.type_guid,
            guid: d.guid,
            first_lba: at / gpt::SECTOR,
            last_lba: (at + size) / gpt::SECTOR - 1,
            attributes: 0,
            name: d.name.into(),
        });
        at += size;
    }
    let table = Gpt {
        sectors: layout.disk_size / gpt::SECTOR,
        disk_guid: gpt::derived_guid(seed, "gpt-disk"),
        partitions,
    };
    let mut head = table.head();
    head[..loader.gptmbr.len()].copy_from_slice(&loader.gptmbr);
    let w = BiosError::Write;
    out.write_all(&head).map_err(w)?;
    write_zeros(&mut out, layout.part_start - head.len() as u64).map_err(w)?;
    write_boot_fat(&loader.syslinux, &mut boot, Some((uki, uki_len)), &layout, seed, &mut out)?;
    for d in data.iter_mut() {
        let copied = io::copy(&mut d.data.take(d.len), &mut out).map_err(w)?;
        if copied != d.len {
            return Err(BiosError::ShortData { name: d.name, expected: d.len, got: copied });
        }
        write_zeros(&mut out, data_partition_size(d.len) - d.len).map_err(w)?;
    }
    let tail = table.tail();
    let gap = layout.disk_size - at - tail.len() as u64;
    write_zeros(&mut out, gap).map_err(w)?;
    out.write_all(&tail).map_err(w)?;
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_is_one_append_line() {
        let cfg = String::from_utf8(syslinux_cfg(b"console=ttyS0\nroot=x")).unwrap();
        assert!(cfg.contains("KERNEL /kernel\n"));
        assert!(cfg.contains("INITRD /initrd.img\n"));
        assert!(cfg.ends_with("APPEND console=ttyS0 root=x\n"), "{cfg}");
    }

    #[test]
    fn sized_grows_the_disk_or_refuses() {
        let l =
            DiskLayout { part_start: MIB, part_size: 8 * MIB, data_size: 0, disk_size: 12 * MIB };
        assert_eq!(l.sized(None).unwrap(), l);
        assert_eq!(l.sized(Some(64 * MIB)).unwrap().disk_size, 64 * MIB);
        assert_eq!(l.sized(Some(64 * MIB)).unwrap().part_size, 8 * MIB);
        let e = l.sized(Some(4 * MIB)).unwrap_err().to_string();
        assert!(e.contains("12582912 bytes (12 MiB)"), "{e}");
    }
}
