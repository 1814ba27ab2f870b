//! MBR partition tables: boot code, disk signature and up to four primary partitions in the
//! first sector, as `sfdisk` writes them for the BIOS disks (`raw-bios`, `qcow2-bios`).
//!
//! Key items: [`MbrPartition`], [`mbr_sector`]. CHS fields use the 64-head, 32-sector geometry
//! the FAT writer's BPB states, saturating at cylinder 1023 as LBA-era tools do; BIOS boot code
//! (SYSLINUX's `mbr.bin`) reads by LBA.
//!
//! Non-goals: extended/logical partitions, reading tables, sector sizes other than 512.

/// Partition types used here.
pub const TYPE_FAT16_LBA: u8 = 0x0e;
pub const TYPE_FAT32_LBA: u8 = 0x0c;
/// Bytes of boot code before the disk signature.
pub const CODE_LEN: usize = 440;
const HEADS: u64 = 64;
const SECTORS_PER_TRACK: u64 = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbrPartition {
    /// The active flag, which `mbr.bin` looks for.
    pub bootable: bool,
    pub kind: u8,
    pub first_lba: u32,
    pub sectors: u32,
}

/// The CHS address of `lba`, packed as the partition entry stores it.
fn chs(lba: u64) -> [u8; 3] {
    let cylinder = lba / (HEADS * SECTORS_PER_TRACK);
    if cylinder > 1023 {
        return [0xfe, 0xff, 0xff];
    }
    let head = (lba / SECTORS_PER_TRACK) % HEADS;
    let sector = lba % SECTORS_PER_TRACK + 1;
    // head < 64, sector <= 32, cylinder <= 1023: its low byte, and its top two bits in the
    // sector byte.
    #[allow(clippy::cast_possible_truncation)]
    let packed = [head as u8, (sector as u8) | (((cylinder >> 8) as u8) << 6), cylinder as u8];
    packed
}

/// Sector 0 of a disk: `code` (at most [`CODE_LEN`] bytes, zero-padded), the 32-bit disk
/// signature, the partition entries and the 55AA signature.
pub fn mbr_sector(code: &[u8], disk_signature: u32, partitions: &[MbrPartition]) -> [u8; 512] {
    assert!(code.len() <= CODE_LEN, "MBR boot code is at most 440 bytes");
    assert!(partitions.len() <= 4, "an MBR holds four primary partitions");
    let mut s = [0u8; 512];
    s[..code.len()].copy_from_slice(code);
    s[440..444].copy_from_slice(&disk_signature.to_le_bytes());
    for (i, p) in partitions.iter().enumerate() {
        let e = &mut s[446 + 16 * i..462 + 16 * i];
        e[0] = if p.bootable { 0x80 } else { 0 };
        e[1..4].copy_from_slice(&chs(u64::from(p.first_lba)));
        e[4] = p.kind;
        let last = u64::from(p.first_lba) + u64::from(p.sectors) - 1;
        e[5..8].copy_from_slice(&chs(last));
        e[8..12].copy_from_slice(&p.first_lba.to_le_bytes());
        e[12..16].copy_from_slice(&p.sectors.to_le_bytes());
    }
    s[510] = 0x55;
    s[511] = 0xaa;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_signatures() {
        let p =
            MbrPartition { bootable: true, kind: TYPE_FAT16_LBA, first_lba: 2048, sectors: 4096 };
        let s = mbr_sector(&[0xfa; 10], 0x1234_5678, &[p]);
        assert_eq!(&s[..10], &[0xfa; 10]);
        assert_eq!(&s[440..444], &[0x78, 0x56, 0x34, 0x12]);
        assert_eq!(s[446], 0x80);
        assert_eq!(s[450], 0x0e);
        assert_eq!(u32::from_le_bytes(s[454..458].try_into().unwrap()), 2048);
        assert_eq!(u32::from_le_bytes(s[458..462].try_into().unwrap()), 4096);
        assert_eq!(&s[510..], &[0x55, 0xaa]);
        assert!(s[462..510].iter().all(|b| *b == 0));
    }

    #[test]
    fn chs_follows_the_geometry_and_saturates() {
        assert_eq!(chs(0), [0, 1, 0]);
        assert_eq!(chs(2048), [0, 1, 1]); // cylinder 1 = 2048 sectors
        assert_eq!(chs(33), [1, 2, 0]);
        assert_eq!(chs(1024 * 2048), [0xfe, 0xff, 0xff]);
    }
}
