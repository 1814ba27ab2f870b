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

use crate::efi::{write_esp, EfiArch};
use crate::fat::FatError;
use std::io::{self, Read, Write};

const SECTOR: u64 = 2048;
const ESP_AT: u64 = 24;
/// 2017-04-18 16:30:00 UTC as a directory record date.
const REC_DATE: [u8; 7] = [117, 4, 18, 16, 30, 0, 0];
/// The same as a volume descriptor date (digits, hundredths, offset from GMT).
const VOL_DATE: &[u8; 17] = b"2017041816300000\0";
const NO_DATE: &[u8; 17] = b"0000000000000000\0";

#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error("writing the ISO's EFI boot image: {0}")]
    Esp(FatError),
    #[error("writing the ISO: {0}")]
    Write(io::Error),
}

fn both16(v: u16) -> [u8; 4] {
    let (l, b) = (v.to_le_bytes(), v.to_be_bytes());
    [l[0], l[1], b[0], b[1]]
}

fn both32(v: u32) -> [u8; 8] {
    let (l, b) = (v.to_le_bytes(), v.to_be_bytes());
    [l[0], l[1], l[2], l[3], b[0], b[1], b[2], b[3]]
}

fn dir_record(name: &[u8], extent: u64, len: u64, dir: bool) -> Vec<u8> {
    let rec_len = 33 + name.len() + (name.len() + 1) % 2;
    let mut r = vec![0u8; rec_len];
    r[0] = rec_len as u8;
    r[2..10].copy_from_slice(&both32(extent as u32));
    r[10..18].copy_from_slice(&both32(len as u32));
    r[18..25].copy_from_slice(&REC_DATE);
    r[25] = if dir { 2 } else { 0 };
    r[28..32].copy_from_slice(&both16(1));
    r[32] = name.len() as u8;
    r[33..33 + name.len()].copy_from_slice(name);
    r
}

fn directory(records: &[Vec<u8>]) -> Vec<u8> {
    let mut s: Vec<u8> = records.concat();
    assert!(s.len() <= SECTOR as usize, "a directory of one sector");
    s.resize(SECTOR as usize, 0);
    s
}

fn padded(text: &str, len: usize) -> Vec<u8> {
    let mut v = text.as_bytes().to_vec();
    v.resize(len, b' ');
    v
}

fn path_table(big_endian: bool) -> Vec<u8> {
    let mut t = Vec::new();
    for (name, extent) in [(&b"\0"[..], 21u32), (&b"BOOT"[..], 22)] {
        t.push(name.len() as u8);
        t.push(0);
        t.extend_from_slice(&if big_endian { extent.to_be_bytes() } else { extent.to_le_bytes() });
        t.extend_from_slice(&if big_endian { 1u16.to_be_bytes() } else { 1u16.to_le_bytes() });
        t.extend_from_slice(name);
        if name.len() % 2 == 1 {
            t.push(0);
        }
    }
    t
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
    mut out: W,
) -> Result<u64, IsoError> {
    let esp_len = esp_image_size(arch, uki_len);
    let total = ESP_AT + esp_len / SECTOR;
    let path_len = path_table(false).len() as u32;

    let mut pvd = vec![0u8; SECTOR as usize];
    pvd[0] = 1;
    pvd[1..6].copy_from_slice(b"CD001");
    pvd[6] = 1;
    pvd[8..40].copy_from_slice(&padded("LINUX", 32));
    pvd[40..72].copy_from_slice(&padded("BALEEN", 32));
    pvd[80..88].copy_from_slice(&both32(total as u32));
    pvd[120..124].copy_from_slice(&both16(1));
    pvd[124..128].copy_from_slice(&both16(1));
    pvd[128..132].copy_from_slice(&both16(SECTOR as u16));
    pvd[132..140].copy_from_slice(&both32(path_len));
    pvd[140..144].copy_from_slice(&19u32.to_le_bytes());
    pvd[148..152].copy_from_slice(&20u32.to_be_bytes());
    pvd[156..190].copy_from_slice(&dir_record(b"\0", 21, SECTOR, true));
    pvd[190..702].fill(b' ');
    pvd[574..702].copy_from_slice(&padded("BALEEN", 128));
    pvd[702..813].fill(b' ');
    pvd[813..830].copy_from_slice(VOL_DATE);
    pvd[830..847].copy_from_slice(VOL_DATE);
    pvd[847..864].copy_from_slice(NO_DATE);
    pvd[864..881].copy_from_slice(NO_DATE);
    pvd[881] = 1;

    let mut boot_record = vec![0u8; SECTOR as usize];
    boot_record[1..6].copy_from_slice(b"CD001");
    boot_record[6] = 1;
    boot_record[7..30].copy_from_slice(b"EL TORITO SPECIFICATION");
    boot_record[71..75].copy_from_slice(&23u32.to_le_bytes());

    let mut terminator = vec![0u8; SECTOR as usize];
    terminator[0] = 255;
    terminator[1..6].copy_from_slice(b"CD001");
    terminator[6] = 1;

    let mut l_table = path_table(false);
    l_table.resize(SECTOR as usize, 0);
    let mut m_table = path_table(true);
    m_table.resize(SECTOR as usize, 0);

    let root = directory(&[
        dir_record(b"\0", 21, SECTOR, true),
        dir_record(b"\x01", 21, SECTOR, true),
        dir_record(b"BOOT", 22, SECTOR, true),
    ]);
    let boot_dir = directory(&[
        dir_record(b"\0", 22, SECTOR, true),
        dir_record(b"\x01", 21, SECTOR, true),
        dir_record(b"BOOT.CAT;1", 23, SECTOR, false),
        dir_record(b"EFIBOOT.IMG;1", ESP_AT, esp_len, false),
    ]);

    let mut catalog = vec![0u8; SECTOR as usize];
    catalog[0] = 1; // validation entry
    catalog[1] = 0xef; // platform: EFI
    catalog[4..10].copy_from_slice(b"BALEEN");
    catalog[30] = 0x55;
    catalog[31] = 0xaa;
    let sum =
        catalog[..32].chunks(2).fold(0u16, |s, w| s.wrapping_add(u16::from_le_bytes([w[0], w[1]])));
    catalog[28..30].copy_from_slice(&0u16.wrapping_sub(sum).to_le_bytes());
    let entry = &mut catalog[32..64];
    entry[0] = 0x88; // bootable, no emulation
    let count = esp_len / 512;
    let count = if count > u64::from(u16::MAX) { 0 } else { count as u16 };
    entry[6..8].copy_from_slice(&count.to_le_bytes());
    entry[8..12].copy_from_slice(&(ESP_AT as u32).to_le_bytes());

    let w = IsoError::Write;
    crate::uki::write_zeros(&mut out, 16 * SECTOR).map_err(w)?;
    for s in [&pvd, &boot_record, &terminator, &l_table, &m_table, &root, &boot_dir, &catalog] {
        out.write_all(s).map_err(w)?;
    }
    write_esp(arch, uki, uki_len, esp_len, 0, seed, &mut out).map_err(IsoError::Esp)?;
    Ok(total * SECTOR)
}
