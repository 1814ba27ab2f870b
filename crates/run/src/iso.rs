//! The metadata CD-ROM: an ISO9660 image holding one file, `config` (LinuxKit's iso9660wrap,
//! used by `--data`/`--data-file` and read by pkg/metadata's cdrom provider).
//!
//! Written here rather than with an ISO crate because it is ~100 lines and must be byte-stable:
//! every date is baleen's fixed epoch, so the same data gives the same image. Non-goals: more
//! than one file, directories, Rock Ridge, Joliet, El Torito — the bootable ISO writer lives in
//! the formats crate.

use std::io::{self, Write};

const SECTOR: usize = 2048;
/// Layout: 16 system sectors, the primary volume descriptor, the terminator, the little- and
/// big-endian path tables, the root directory, then the file's data.
const PVD: u32 = 16;
const PATH_L: u32 = 18;
const PATH_M: u32 = 19;
const ROOT: u32 = 20;
const DATA: u32 = 21;

/// The name the guest sees (Linux maps `CONFIG.;1` to `config`).
const FILE_ID: &[u8] = b"CONFIG.;1";
const VOLUME_ID: &[u8] = b"CONFIG";

/// 2017-04-18 16:30:00 UTC, LinuxKit's default modification time, as ISO9660 dates.
const DIR_DATE: [u8; 7] = [117, 4, 18, 16, 30, 0, 0];
const VOL_DATE: &[u8; 16] = b"2017041816300000";

/// Writes an ISO9660 image whose only file, `config`, holds `data`.
pub fn write_data_iso<W: Write>(data: &[u8], mut w: W) -> io::Result<()> {
    let data_len = u32::try_from(data.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "metadata larger than 4 GiB"))?;
    let data_sectors = data.len().div_ceil(SECTOR) as u32;
    let total = DATA + data_sectors;

    w.write_all(&vec![0u8; SECTOR * PVD as usize])?;
    w.write_all(&primary_volume_descriptor(total))?;
    let mut term = [0u8; SECTOR];
    term[0] = 255;
    term[1..6].copy_from_slice(b"CD001");
    term[6] = 1;
    w.write_all(&term)?;
    w.write_all(&path_table(false))?;
    w.write_all(&path_table(true))?;

    let mut root = [0u8; SECTOR];
    let mut at = 0;
    for rec in [
        dir_record(&[0], ROOT, SECTOR as u32, true),
        dir_record(&[1], ROOT, SECTOR as u32, true),
        dir_record(FILE_ID, DATA, data_len, false),
    ] {
        root[at..at + rec.len()].copy_from_slice(&rec);
        at += rec.len();
    }
    w.write_all(&root)?;

    w.write_all(data)?;
    let pad = (SECTOR - data.len() % SECTOR) % SECTOR;
    w.write_all(&vec![0u8; pad])?;
    w.flush()
}

fn both_u32(v: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&v.to_le_bytes());
    b[4..].copy_from_slice(&v.to_be_bytes());
    b
}

fn both_u16(v: u16) -> [u8; 4] {
    let mut b = [0u8; 4];
    b[..2].copy_from_slice(&v.to_le_bytes());
    b[2..].copy_from_slice(&v.to_be_bytes());
    b
}

fn dir_record(name: &[u8], extent: u32, len: u32, dir: bool) -> Vec<u8> {
    let size = 33 + name.len() + (name.len() + 1) % 2;
    let mut r = vec![0u8; size];
    r[0] = size as u8;
    r[2..10].copy_from_slice(&both_u32(extent));
    r[10..18].copy_from_slice(&both_u32(len));
    r[18..25].copy_from_slice(&DIR_DATE);
    r[25] = if dir { 2 } else { 0 };
    r[28..32].copy_from_slice(&both_u16(1));
    r[32] = name.len() as u8;
    r[33..33 + name.len()].copy_from_slice(name);
    r
}

/// The path table: one entry, the root, whose parent is directory number 1 (itself). The
/// L table is little-endian, the M table big-endian.
fn path_table(big_endian: bool) -> [u8; SECTOR] {
    let mut t = [0u8; SECTOR];
    t[0] = 1; // length of the root's identifier (a single 0 byte)
    if big_endian {
        t[2..6].copy_from_slice(&ROOT.to_be_bytes());
        t[6..8].copy_from_slice(&1u16.to_be_bytes());
    } else {
        t[2..6].copy_from_slice(&ROOT.to_le_bytes());
        t[6..8].copy_from_slice(&1u16.to_le_bytes());
    }
    t
}

fn padded<const N: usize>(text: &[u8]) -> [u8; N] {
    let mut b = [b' '; N];
    b[..text.len()].copy_from_slice(text);
    b
}

fn primary_volume_descriptor(total_sectors: u32) -> [u8; SECTOR] {
    let mut p = [0u8; SECTOR];
    p[0] = 1;
    p[1..6].copy_from_slice(b"CD001");
    p[6] = 1;
    p[8..40].copy_from_slice(&padded::<32>(b""));
    p[40..72].copy_from_slice(&padded::<32>(VOLUME_ID));
    p[80..88].copy_from_slice(&both_u32(total_sectors));
    p[120..124].copy_from_slice(&both_u16(1));
    p[124..128].copy_from_slice(&both_u16(1));
    p[128..132].copy_from_slice(&both_u16(SECTOR as u16));
    p[132..140].copy_from_slice(&both_u32(10));
    p[140..144].copy_from_slice(&PATH_L.to_le_bytes());
    p[148..152].copy_from_slice(&PATH_M.to_be_bytes());
    let root = dir_record(&[0], ROOT, SECTOR as u32, true);
    p[156..190].copy_from_slice(&root);
    p[190..318].copy_from_slice(&padded::<128>(b""));
    p[318..446].copy_from_slice(&padded::<128>(b""));
    p[446..574].copy_from_slice(&padded::<128>(b""));
    p[574..702].copy_from_slice(&padded::<128>(b"BALEEN"));
    p[702..813].copy_from_slice(&padded::<111>(b""));
    for (at, date) in [(813, Some(VOL_DATE)), (830, Some(VOL_DATE)), (847, None), (864, None)] {
        let digits = date.unwrap_or(b"0000000000000000");
        p[at..at + 16].copy_from_slice(digits);
        p[at + 16] = 0;
    }
    p[881] = 1;
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn image(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_data_iso(data, &mut out).unwrap();
        out
    }

    #[test]
    fn layout_is_sector_aligned_and_deterministic() {
        let a = image(b"hello");
        assert_eq!(a.len(), (DATA as usize + 1) * SECTOR);
        assert_eq!(a, image(b"hello"));
        assert_eq!(&a[16 * SECTOR + 1..16 * SECTOR + 6], b"CD001");
        assert_eq!(&a[DATA as usize * SECTOR..DATA as usize * SECTOR + 5], b"hello");
        // An empty file still gives a valid image with no data sectors.
        assert_eq!(image(b"").len(), DATA as usize * SECTOR);
        // Exactly one sector of data needs no padding sector.
        assert_eq!(image(&[7u8; SECTOR]).len(), (DATA as usize + 1) * SECTOR);
    }

    /// The bytes of the data ISO, pinned (taken before it was written by disk's ISO writer):
    /// an empty file, a short one, one of exactly a sector and one over a sector.
    #[test]
    fn data_iso_bytes_are_pinned() {
        use sha2::{Digest, Sha256};
        let hex = |data: &[u8]| format!("{:x}", Sha256::digest(image(data)));
        let long: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let got = [hex(b""), hex(b"hello"), hex(&[7u8; SECTOR]), hex(&long)];
        let want = [
            "23cc2c7586bc1796db0c31f9ab4f1147f9a844aa8648813619bd6392ec60186c",
            "b5a33587a40bf1ab8fe3014b5636788e028d6417846e6d66bf3b17bd1b7912b0",
            "19da726e76c9a7fbe25c5745eac455202db98b087605819c9320ac991dbae139",
            "9b3735e1f2ea29cb5385ad4681806f0ef004a426ddbad0e576736c1dccee93db",
        ];
        assert_eq!(got, want);
    }

    /// isoinfo (genisoimage) is the independent reader: it must list `CONFIG.;1` and extract the
    /// exact bytes.
    #[test]
    fn isoinfo_reads_the_config_file() {
        let Some(isoinfo) = baleen_testkit::require_tool("isoinfo") else { return };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.iso");
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, image(&data)).unwrap();
        let list = Command::new(&isoinfo).arg("-i").arg(&path).arg("-l").output().unwrap();
        let listing = String::from_utf8_lossy(&list.stdout);
        assert!(listing.contains("CONFIG.;1"), "{listing}");
        let x = Command::new(&isoinfo)
            .arg("-i")
            .arg(&path)
            .args(["-x", "/CONFIG.;1"])
            .output()
            .unwrap();
        assert!(x.status.success());
        assert_eq!(x.stdout, data);
        let d = Command::new(&isoinfo).arg("-i").arg(&path).arg("-d").output().unwrap();
        let desc = String::from_utf8_lossy(&d.stdout);
        assert!(desc.contains("Volume id: CONFIG"), "{desc}");
    }
}
