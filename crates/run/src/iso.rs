//! The metadata CD-ROM: an ISO9660 image holding one file, `config` (LinuxKit's iso9660wrap,
//! used by `--data`/`--data-file` and read by pkg/metadata's cdrom provider).
//!
//! A plain volume of disk's ISO 9660 writer ([`baleen_disk::iso::write_plain`]), the one that
//! writes `iso-efi` and `iso-bios` too: every date is LinuxKit's epoch, so the same data gives
//! the same image. Non-goals: more than one file, directories, Rock Ridge, Joliet, El Torito.

use baleen_disk::iso::{write_plain, PlainDir, PlainEntry, PlainIso};
use std::io::{self, Write};

#[cfg(test)]
const SECTOR: usize = 2048;
/// Layout: 16 system sectors, the primary volume descriptor, the terminator, the little- and
/// big-endian path tables, the root directory, then the file's data.
#[cfg(test)]
const DATA: u32 = 21;

/// The name the guest sees (Linux maps `CONFIG.;1` to `config`).
const FILE_ID: &[u8] = b"CONFIG.;1";
const VOLUME_ID: &str = "CONFIG";

/// Writes an ISO9660 image whose only file, `config`, holds `data`.
pub fn write_data_iso<W: Write>(data: &[u8], w: W) -> io::Result<()> {
    let len = u32::try_from(data.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "metadata larger than 4 GiB"))?;
    let iso = PlainIso {
        system_id: "",
        volume_id: VOLUME_ID,
        dirs: vec![PlainDir {
            id: &[0],
            parent: 0,
            entries: vec![PlainEntry::File { id: FILE_ID, len }],
        }],
        boot: None,
    };
    write_plain(&iso, w, &mut |_, out| out.write_all(data)).map(|_| ())
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
