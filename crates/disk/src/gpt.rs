//! GUID partition tables: protective MBR, primary and backup headers and entry arrays, with
//! GUIDs derived from a content hash rather than drawn at random.
//!
//! Non-goals: reading or editing existing tables, hybrid MBRs, sector sizes other than 512.

use crate::num::usize_of;
use sha2::{Digest, Sha256};

pub const SECTOR: u64 = 512;
const ENTRIES: u64 = 128;
const ENTRY_LEN: u64 = 128;
/// Sectors of one entry array (128 entries of 128 bytes).
pub const ENTRY_SECTORS: u64 = ENTRIES * ENTRY_LEN / SECTOR;
/// The first LBA a partition may use (MBR, header, entries).
pub const FIRST_USABLE: u64 = 2 + ENTRY_SECTORS;

/// The EFI System Partition type, C12A7328-F81F-11D2-BA4B-00A0C93EC93B, in on-disk order.
pub const ESP_TYPE: [u8; 16] = [
    0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b,
];

/// The Discoverable Partitions Specification's root partition type for x86-64,
/// 4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, in on-disk order.
pub const ROOT_X86_64_TYPE: [u8; 16] = guid_from_uuid([
    0x4f, 0x68, 0xbc, 0xe3, 0xe8, 0xcd, 0x4d, 0xb1, 0x96, 0xe7, 0xfb, 0xca, 0xf9, 0x84, 0xb7, 0x09,
]);

/// The Discoverable Partitions Specification's root verity partition type for x86-64,
/// 2C7357ED-EBD2-46D9-AEC3-23D7F4A0E1E5, in on-disk order.
pub const ROOT_VERITY_X86_64_TYPE: [u8; 16] = guid_from_uuid([
    0x2c, 0x73, 0x57, 0xed, 0xeb, 0xd2, 0x46, 0xd9, 0xae, 0xc3, 0x23, 0xd7, 0xf4, 0xa0, 0xe1, 0xe5,
]);

/// The on-disk (mixed-endian) form of a UUID given in its written byte order: the first three
/// fields are little-endian in a GPT.
pub const fn guid_from_uuid(u: [u8; 16]) -> [u8; 16] {
    [
        u[3], u[2], u[1], u[0], u[5], u[4], u[7], u[6], u[8], u[9], u[10], u[11], u[12], u[13],
        u[14], u[15],
    ]
}

/// An on-disk GUID as the kernel prints it (`PARTUUID=` in `/sys/class/block/*/uevent`):
/// lowercase, 8-4-4-4-12.
pub fn guid_string(g: &[u8; 16]) -> String {
    let u = guid_from_uuid(*g); // the swap is its own inverse
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// A version-4-shaped GUID (on-disk byte order) derived from `seed` and what it is for, so that
/// the same content always gets the same disk and partition GUIDs, and different roles differ.
pub fn derived_guid(seed: &[u8], purpose: &str) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(purpose.as_bytes());
    h.update([0]);
    h.update(seed);
    let d = h.finalize();
    let mut g = [0u8; 16];
    g.copy_from_slice(&d[..16]);
    g[7] = (g[7] & 0x0f) | 0x40; // version 4 (high nibble of the little-endian third field)
    g[8] = (g[8] & 0x3f) | 0x80; // RFC 4122 variant
    g
}

/// A 32-bit value (FAT serial, VHD fields) derived the same way.
pub fn derived_u32(seed: &[u8], purpose: &str) -> u32 {
    let g = derived_guid(seed, purpose);
    u32::from_le_bytes([g[0], g[1], g[2], g[3]])
}

#[derive(Debug, Clone)]
pub struct GptPartition {
    pub type_guid: [u8; 16],
    pub guid: [u8; 16],
    pub first_lba: u64,
    pub last_lba: u64,
    pub attributes: u64,
    pub name: String,
}

/// A whole-disk partition table for a disk of `sectors` 512-byte sectors.
#[derive(Debug, Clone)]
pub struct Gpt {
    pub sectors: u64,
    pub disk_guid: [u8; 16],
    pub partitions: Vec<GptPartition>,
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(bytes);
    c.sum()
}

impl Gpt {
    /// The last LBA a partition may use (before the backup entries and header).
    pub fn last_usable(&self) -> u64 {
        self.sectors - 2 - ENTRY_SECTORS
    }

    fn entries(&self) -> Vec<u8> {
        let mut out = vec![0u8; usize_of(ENTRIES * ENTRY_LEN)];
        for (i, p) in self.partitions.iter().enumerate() {
            let e = &mut out[i * usize_of(ENTRY_LEN)..(i + 1) * usize_of(ENTRY_LEN)];
            e[..16].copy_from_slice(&p.type_guid);
            e[16..32].copy_from_slice(&p.guid);
            e[32..40].copy_from_slice(&p.first_lba.to_le_bytes());
            e[40..48].copy_from_slice(&p.last_lba.to_le_bytes());
            e[48..56].copy_from_slice(&p.attributes.to_le_bytes());
            for (j, u) in p.name.encode_utf16().take(36).enumerate() {
                e[56 + 2 * j..58 + 2 * j].copy_from_slice(&u.to_le_bytes());
            }
        }
        out
    }

    fn header(&self, primary: bool, entries_crc: u32) -> [u8; 512] {
        let (me, alternate, entries_lba) = if primary {
            (1, self.sectors - 1, 2)
        } else {
            (self.sectors - 1, 1, self.sectors - 1 - ENTRY_SECTORS)
        };
        let mut h = [0u8; 512];
        h[..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&me.to_le_bytes());
        h[32..40].copy_from_slice(&alternate.to_le_bytes());
        h[40..48].copy_from_slice(&FIRST_USABLE.to_le_bytes());
        h[48..56].copy_from_slice(&self.last_usable().to_le_bytes());
        h[56..72].copy_from_slice(&self.disk_guid);
        h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h[80..84].copy_from_slice(&ENTRIES.to_le_bytes()[..4]); // 128: fits 32 bits
        h[84..88].copy_from_slice(&ENTRY_LEN.to_le_bytes()[..4]); // 128
        h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let crc = crc32(&h[..92]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// LBA 0 to [`FIRST_USABLE`]: protective MBR, primary header, entry array.
    pub fn head(&self) -> Vec<u8> {
        let entries = self.entries();
        let crc = crc32(&entries);
        let mut out = vec![0u8; usize_of(FIRST_USABLE * SECTOR)];
        let mbr = &mut out[..512];
        // One partition of type 0xEE covering the disk (or as much as 32 bits can say).
        let p = &mut mbr[446..462];
        p[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
        p[4] = 0xee;
        p[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
        p[8..12].copy_from_slice(&1u32.to_le_bytes());
        let size = u32::try_from(self.sectors - 1).unwrap_or(u32::MAX);
        p[12..16].copy_from_slice(&size.to_le_bytes());
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        out[512..1024].copy_from_slice(&self.header(true, crc));
        out[1024..].copy_from_slice(&entries);
        out
    }

    /// The last `ENTRY_SECTORS + 1` sectors: backup entry array, backup header.
    pub fn tail(&self) -> Vec<u8> {
        let mut out = self.entries();
        let crc = crc32(&out);
        out.extend_from_slice(&self.header(false, crc));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_depend_on_seed_and_purpose() {
        let a = derived_guid(b"x", "disk");
        assert_eq!(a, derived_guid(b"x", "disk"));
        assert_ne!(a, derived_guid(b"x", "partition"));
        assert_ne!(a, derived_guid(b"y", "disk"));
        assert_eq!(a[7] >> 4, 4);
    }

    #[test]
    fn guids_print_as_the_kernel_prints_partuuids() {
        assert_eq!(guid_string(&ESP_TYPE), "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
        assert_eq!(guid_string(&ROOT_X86_64_TYPE), "4f68bce3-e8cd-4db1-96e7-fbcaf984b709");
        assert_eq!(guid_string(&ROOT_VERITY_X86_64_TYPE), "2c7357ed-ebd2-46d9-aec3-23d7f4a0e1e5");
    }

    #[test]
    fn headers_carry_valid_crcs() {
        let g = Gpt { sectors: 4096, disk_guid: [1; 16], partitions: vec![] };
        let head = g.head();
        let h = &head[512..1024];
        let mut copy = h[..92].to_vec();
        copy[16..20].fill(0);
        assert_eq!(u32::from_le_bytes(h[16..20].try_into().unwrap()), crc32(&copy));
        assert_eq!(g.tail().len() as u64, (ENTRY_SECTORS + 1) * SECTOR);
    }
}
