//! `rpi4`: the SD-card image a Raspberry Pi 4 boots. An MBR with one FAT32 partition (type
//! 0x0c) at 4 MiB, as Raspberry Pi OS lays its cards out, holding what the Pi's boot ROM and
//! firmware read: the GPU firmware (`start4.elf`, `fixup4.dat`, from Debian's `raspi-firmware`),
//! `config.txt`, `cmdline.txt`, the arm64 kernel, the initrd and the board's device tree.
//!
//! Key items: [`write_rpi_disk`], [`config_txt`], [`RpiBoot`]. Names are 8.3 (the FAT writer has
//! no long names): the device tree is `bcm2711.dtb`, named by `device_tree=` in `config.txt`,
//! rather than the firmware's default `bcm2711-rpi-4-b.dtb`.
//!
//! Invariants: the disk signature and the FAT serial come from the caller's seed; no clock.
//! Non-goals: the Pi 3 and earlier (`bootcode.bin`, `start.elf`), U-Boot, overlays, a root
//! partition: the system runs from its initrd, as every other baleen format does.

use crate::fat::{self, FatError, FatFile, FatOptions, FatType};
use crate::gpt;
use crate::mbr::{self, MbrPartition};
use crate::uki::write_zeros;
use std::io::{self, Read, Write};

const MIB: u64 = 1 << 20;
/// Where the partition starts: 4 MiB, an SD card's erase block, as Raspberry Pi OS.
pub const PART_START: u64 = 4 * MIB;
/// The smallest partition: large enough to be FAT32, which the Pi 4's boot ROM reads.
pub const PART_MIN: u64 = 64 * MIB;
pub const KERNEL: &str = "kernel8.img";
pub const INITRD: &str = "initrd.img";
pub const DTB: &str = "bcm2711.dtb";
pub const CONFIG: &str = "config.txt";
pub const CMDLINE: &str = "cmdline.txt";

#[derive(Debug, thiserror::Error)]
pub enum RpiError {
    #[error("writing the SD card's boot partition")]
    Fat(#[source] FatError),
    #[error("the boot partition came out {0:?}, not FAT32")]
    NotFat32(FatType),
    #[error("the boot partition of {size} bytes is past an MBR's 2 TiB")]
    TooLarge { size: u64 },
    #[error("writing the SD card image")]
    Write(#[source] io::Error),
}

/// What goes on the card besides `config.txt` and `cmdline.txt`.
pub struct RpiBoot<'a> {
    /// The firmware files by their names on the card (`start4.elf`, `fixup4.dat`), in order.
    pub firmware: Vec<(String, Vec<u8>)>,
    /// The Pi 4 B's device tree (`bcm2711-rpi-4-b.dtb`).
    pub dtb: &'a [u8],
    /// The arm64 `Image`.
    pub kernel: &'a mut dyn Read,
    pub kernel_len: u64,
    pub initrd: &'a mut dyn Read,
    pub initrd_len: u64,
    pub cmdline: &'a [u8],
}

impl std::fmt::Debug for RpiBoot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.firmware.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("RpiBoot")
            .field("firmware", &names)
            .field("kernel_len", &self.kernel_len)
            .field("initrd_len", &self.initrd_len)
            .finish()
    }
}

/// `config.txt`: the 64-bit kernel, its initrd loaded right after it, the device tree by its
/// short name, and the serial console on GPIO 14/15.
pub fn config_txt() -> String {
    format!(
        "# Written by baleen: a Raspberry Pi 4 booting an arm64 kernel and initrd.\n\
         arm_64bit=1\n\
         enable_uart=1\n\
         kernel={KERNEL}\n\
         initramfs {INITRD} followkernel\n\
         device_tree={DTB}\n"
    )
}

/// `cmdline.txt`: the command line on one line, as the firmware reads it.
pub fn cmdline_txt(cmdline: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(cmdline);
    let mut line = text.split_whitespace().collect::<Vec<_>>().join(" ").into_bytes();
    line.push(b'\n');
    line
}

/// Where the card's partition lies and how long the image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpiLayout {
    pub part_start: u64,
    pub part_size: u64,
    pub disk_size: u64,
}

/// Writes the SD-card image of `boot` to `out`; `seed` (a content hash) gives the disk
/// signature and the FAT serial.
pub fn write_rpi_disk<W: Write>(
    boot: RpiBoot<'_>,
    seed: &[u8],
    mut out: W,
) -> Result<RpiLayout, RpiError> {
    let RpiBoot { firmware, dtb, kernel, kernel_len, initrd, initrd_len, cmdline } = boot;
    let (config, cmdline) = (config_txt().into_bytes(), cmdline_txt(cmdline));
    let mut lens: Vec<(&str, u64)> = firmware.iter().map(|(n, b)| (n.as_str(), len(b))).collect();
    lens.extend([
        (CONFIG, len(&config)),
        (CMDLINE, len(&cmdline)),
        (DTB, len(dtb)),
        (KERNEL, kernel_len),
        (INITRD, initrd_len),
    ]);
    let part_size = (fat::min_volume_size(&lens) + MIB).next_multiple_of(MIB).max(PART_MIN);
    match fat::fat_type(part_size).map_err(RpiError::Fat)? {
        FatType::Fat32 => {}
        other => return Err(RpiError::NotFat32(other)),
    }
    let sectors = |bytes: u64| {
        u32::try_from(bytes / gpt::SECTOR).map_err(|_| RpiError::TooLarge { size: part_size })
    };
    let part = MbrPartition {
        bootable: false,
        kind: mbr::TYPE_FAT32_LBA,
        first_lba: sectors(PART_START)?,
        sectors: sectors(part_size)?,
    };
    let sector0 = mbr::mbr_sector(&[], gpt::derived_u32(seed, "mbr-signature"), &[part]);
    out.write_all(&sector0).map_err(RpiError::Write)?;
    write_zeros(&mut out, PART_START - gpt::SECTOR).map_err(RpiError::Write)?;

    let mut readers: Vec<&[u8]> = firmware.iter().map(|(_, b)| &b[..]).collect();
    let (mut config_r, mut cmdline_r, mut dtb_r) = (&config[..], &cmdline[..], dtb);
    let mut files: Vec<FatFile<'_>> = firmware
        .iter()
        .zip(readers.iter_mut())
        .map(|((name, b), r)| FatFile { path: name.clone(), len: len(b), data: r })
        .collect();
    files.push(FatFile { path: CONFIG.into(), len: len(&config), data: &mut config_r });
    files.push(FatFile { path: CMDLINE.into(), len: len(&cmdline), data: &mut cmdline_r });
    files.push(FatFile { path: DTB.into(), len: len(dtb), data: &mut dtb_r });
    files.push(FatFile { path: KERNEL.into(), len: kernel_len, data: kernel });
    files.push(FatFile { path: INITRD.into(), len: initrd_len, data: initrd });
    let opts = FatOptions {
        size: part_size,
        serial: gpt::derived_u32(seed, "fat-serial"),
        label: "BOOT".into(),
        hidden_sectors: part.first_lba,
        boot_code: None,
    };
    fat::write_fat(&mut files, &opts, &mut out).map_err(RpiError::Fat)?;
    out.flush().map_err(RpiError::Write)?;
    Ok(RpiLayout { part_start: PART_START, part_size, disk_size: PART_START + part_size })
}

fn len(b: &[u8]) -> u64 {
    b.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(kernel: &[u8], seed: &[u8]) -> (Vec<u8>, RpiLayout) {
        let (mut k, mut i) = (kernel, &b"initrd"[..]);
        let boot = RpiBoot {
            firmware: vec![("start4.elf".into(), b"elf".to_vec()), ("fixup4.dat".into(), vec![1])],
            dtb: b"\xd0\x0d\xfe\xed",
            kernel: &mut k,
            kernel_len: kernel.len() as u64,
            initrd: &mut i,
            initrd_len: 6,
            cmdline: b"console=ttyS0\n  console=ttyAMA0\n",
        };
        let mut out = Vec::new();
        let layout = write_rpi_disk(boot, seed, &mut out).unwrap();
        (out, layout)
    }

    #[test]
    fn the_card_is_one_fat32_partition_at_4_mib_and_the_same_bytes_twice() {
        let (disk, layout) = card(b"kernel", b"seed");
        assert_eq!(
            layout,
            RpiLayout { part_start: 4 << 20, part_size: 64 << 20, disk_size: 68 << 20 }
        );
        assert_eq!(disk.len() as u64, layout.disk_size);
        assert_eq!(disk[446 + 4], mbr::TYPE_FAT32_LBA);
        assert_eq!(u32::from_le_bytes(disk[454..458].try_into().unwrap()), 8192);
        assert_eq!(&disk[510..512], &[0x55, 0xaa]);
        let vbr = &disk[4 << 20..];
        assert_eq!(&vbr[82..90], b"FAT32   ");
        assert_eq!(card(b"kernel", b"seed").0, disk, "same inputs, same bytes");
        assert_ne!(card(b"kernel", b"other").0, disk, "the seed names the disk");
    }

    #[test]
    fn config_and_cmdline_are_what_the_firmware_reads() {
        let config = config_txt();
        for line in [
            "arm_64bit=1\n",
            "kernel=kernel8.img\n",
            "initramfs initrd.img followkernel\n",
            "device_tree=bcm2711.dtb\n",
        ] {
            assert!(config.contains(line), "{line:?} in {config}");
        }
        assert_eq!(
            cmdline_txt(b"console=ttyS0\n  console=ttyAMA0\n"),
            b"console=ttyS0 console=ttyAMA0\n"
        );
    }
}
