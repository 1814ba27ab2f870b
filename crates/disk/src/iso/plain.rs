//! Plain volumes: a fixed handful of files under given ISO 9660 identifiers, no Rock Ridge, no
//! Joliet, every date LinuxKit's epoch; optionally an El Torito catalog. `iso-efi` (module
//! `efi`) and run's metadata CD-ROM are plain volumes; both go through the same descriptors
//! and [`emit`] as the image-tree writer.
//!
//! Layout, in 2048-byte sectors: 0–15 system area (zeros), 16 primary volume descriptor, the El
//! Torito boot record (with a catalog), the terminator, the L and M path tables, the
//! directories in the order given (breadth first), the catalog, then each file's data in the
//! order given. Identifiers are written as given and records keep the order given: the caller
//! sorts them.

use super::rock::record_date;
use super::volume::{
    after, boot_record, catalog, dir_bytes, emit, len32, pad_to_sector, path_table, primary,
    put_records, record, sectors_of, terminator, Extent, Layout, Primary, PVD_LBA, SECTOR,
    SECTOR_U32,
};
use super::IsoWriteError;
use baleen_tree::DEFAULT_MTIME;
use std::io::Write;

/// A plain volume; see the module doc.
#[derive(Debug, Clone)]
pub struct PlainIso<'a> {
    /// The primary volume descriptor's system identifier (`LINUX`, or empty).
    pub system_id: &'a str,
    pub volume_id: &'a str,
    /// The directories, the root first; a directory's parent comes before it.
    pub dirs: Vec<PlainDir<'a>>,
    /// An El Torito catalog, made by [`catalog`](super::volume::catalog) from the LBA and
    /// length of the file it boots.
    pub boot: Option<PlainBoot>,
}

/// The El Torito catalog of a plain volume.
#[derive(Debug, Clone, Copy)]
pub struct PlainBoot {
    /// El Torito platform id of the validation entry (0xef: EFI).
    pub platform: u8,
    /// Index of the boot file in the volume's file order.
    pub file: usize,
}

/// A directory of a plain volume.
#[derive(Debug, Clone)]
pub struct PlainDir<'a> {
    /// Its identifier in its parent (`\0` for the root).
    pub id: &'a [u8],
    /// Index of its parent in [`PlainIso::dirs`] (the root: 0, itself).
    pub parent: usize,
    /// Its records after `.` and `..`, in order.
    pub entries: Vec<PlainEntry<'a>>,
}

#[derive(Debug, Clone, Copy)]
pub enum PlainEntry<'a> {
    /// A subdirectory: the index of its [`PlainDir`].
    Dir(usize),
    /// A file of `len` bytes; files are numbered in the order they appear, directory by
    /// directory, and their data is written in that order.
    File { id: &'a [u8], len: u32 },
    /// The El Torito catalog, visible as a file.
    Catalog { id: &'a [u8] },
}

impl PlainIso<'_> {
    /// The number of the first file of each directory.
    fn first_files(&self) -> Vec<usize> {
        let mut n = 0;
        let mut first = Vec::with_capacity(self.dirs.len());
        for d in &self.dirs {
            first.push(n);
            n += d.entries.iter().filter(|e| matches!(e, PlainEntry::File { .. })).count();
        }
        first
    }
}

/// Where each directory, file and the catalog are: (LBA, bytes) per directory, LBA per file.
struct Places {
    dirs: Vec<(u32, u32)>,
    files: Vec<u32>,
    catalog: u32,
}

/// The records of directory `d`, after `.` and `..`, with the extents of `places`.
fn records(iso: &PlainIso<'_>, d: usize, first_file: usize, places: &Places) -> Vec<Vec<u8>> {
    let date = record_date(DEFAULT_MTIME);
    let dir = &iso.dirs[d];
    let ((lba, len), (plba, plen)) = (places.dirs[d], places.dirs[dir.parent]);
    let mut r =
        vec![record(&[0], lba, len, date, true, &[]), record(&[1], plba, plen, date, true, &[])];
    let mut file = first_file;
    for e in &dir.entries {
        r.push(match *e {
            PlainEntry::Dir(sub) => {
                let (lba, len) = places.dirs[sub];
                record(iso.dirs[sub].id, lba, len, date, true, &[])
            }
            PlainEntry::File { id, len } => {
                file += 1;
                record(id, places.files[file - 1], len, date, false, &[])
            }
            PlainEntry::Catalog { id } => record(id, places.catalog, SECTOR_U32, date, false, &[]),
        });
    }
    r
}

/// Lays out a plain volume (see the module doc).
pub(super) fn plain_layout(iso: &PlainIso<'_>) -> Result<Layout, IsoWriteError> {
    let first = iso.first_files();
    let lens: Vec<u32> = iso
        .dirs
        .iter()
        .flat_map(|d| &d.entries)
        .filter_map(|e| if let PlainEntry::File { len, .. } = e { Some(*len) } else { None })
        .collect();
    let table = |places: &Places, big| {
        path_table(iso.dirs.iter().zip(&places.dirs).map(|(d, p)| (d.id, p.0, d.parent)), big)
    };
    // Sizing: no length depends on an extent.
    let mut places =
        Places { dirs: vec![(0, 0); iso.dirs.len()], files: vec![0; lens.len()], catalog: 0 };
    let pt_len = len32(table(&places, false).len())?;
    let pt_sectors = pt_len.div_ceil(SECTOR_U32);
    let l_table = PVD_LBA + 2 + u32::from(iso.boot.is_some());
    let m_table = l_table + pt_sectors;
    // Placement.
    let mut lba = m_table + pt_sectors;
    for (d, &first) in first.iter().enumerate() {
        let sectors = sectors_of(&records(iso, d, first, &places));
        places.dirs[d] = (lba, dir_bytes(sectors)?);
        lba += sectors;
    }
    if iso.boot.is_some() {
        places.catalog = lba;
        lba += 1;
    }
    let mut files = Vec::with_capacity(lens.len());
    for (i, &len) in lens.iter().enumerate() {
        places.files[i] = lba;
        files.push(Extent { file: len32(i)?, lba, len: u64::from(len) });
        lba = after(lba, u64::from(len))?;
    }
    // The bytes before the files.
    let mut head = vec![0u8; PVD_LBA as usize * SECTOR];
    let root =
        record(&[0], places.dirs[0].0, places.dirs[0].1, record_date(DEFAULT_MTIME), true, &[]);
    head.extend(primary(&Primary {
        system_id: iso.system_id,
        volume_id: iso.volume_id,
        total_sectors: lba,
        path_table_len: pt_len,
        l_table,
        m_table,
        root: &root,
    }));
    if iso.boot.is_some() {
        head.extend(boot_record(places.catalog));
    }
    head.extend(terminator());
    for big in [false, true] {
        head.extend(table(&places, big));
        pad_to_sector(&mut head);
    }
    for (d, &first) in first.iter().enumerate() {
        put_records(&mut head, &records(iso, d, first, &places));
    }
    if let Some(boot) = iso.boot {
        let image = files.get(boot.file).ok_or(IsoWriteError::NoBootImage {
            path: format!("file {} of the volume", boot.file),
        })?;
        // Firmware reads a count of 0 as the rest of the volume: the image is the last extent.
        let count = u16::try_from(image.len / 512).unwrap_or(0);
        head.extend(catalog(boot.platform, b"BALEEN", count, image.lba));
    }
    Ok(Layout { head, files, total: u64::from(lba) * SECTOR as u64 })
}

/// Writes a plain volume to `out`, each file's data as `data` writes it (given the file's
/// number and exactly its length); returns the volume's length.
pub fn write_plain<W: Write, E: From<IsoWriteError>>(
    iso: &PlainIso<'_>,
    out: W,
    data: &mut dyn FnMut(usize, &mut dyn Write) -> Result<(), E>,
) -> Result<u64, E> {
    let layout = plain_layout(iso)?;
    emit(&layout, out, &mut |extent, out| data(extent.file as usize, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_file(len: u32) -> PlainIso<'static> {
        PlainIso {
            system_id: "",
            volume_id: "CONFIG",
            dirs: vec![PlainDir {
                id: &[0],
                parent: 0,
                entries: vec![PlainEntry::File { id: b"CONFIG.;1", len }],
            }],
            boot: None,
        }
    }

    #[test]
    fn the_layout_places_the_file_after_the_root_directory() {
        // 16 system sectors, PVD, terminator, L and M tables, root: the file at 21.
        let l = plain_layout(&one_file(5000)).unwrap();
        assert_eq!(l.head.len(), 21 * SECTOR);
        assert_eq!(l.files, [Extent { file: 0, lba: 21, len: 5000 }]);
        assert_eq!(l.total, 24 * SECTOR as u64);
        // An empty file keeps its place and takes no sector.
        let l = plain_layout(&one_file(0)).unwrap();
        assert_eq!((l.files[0].lba, l.total), (21, 21 * SECTOR as u64));
    }

    #[test]
    fn a_boot_catalog_comes_after_the_directories_and_points_at_its_file() {
        let mut iso = one_file(4 << 20);
        iso.boot = Some(PlainBoot { platform: super::super::PLATFORM_EFI, file: 0 });
        iso.dirs[0].entries.insert(0, PlainEntry::Catalog { id: b"BOOT.CAT;1" });
        let l = plain_layout(&iso).unwrap();
        // The boot record at 17 moves the tables and root one sector on; the catalog follows.
        assert_eq!(&l.head[17 * SECTOR + 1..17 * SECTOR + 6], b"CD001");
        let catalog = &l.head[22 * SECTOR..23 * SECTOR];
        assert_eq!(catalog[1], 0xef);
        assert_eq!(u32::from_le_bytes(catalog[40..44].try_into().unwrap()), 23);
        // 4 MiB is 8192 512-byte sectors: it fits the catalog's 16-bit count.
        assert_eq!(u16::from_le_bytes([catalog[38], catalog[39]]), 8192);
        assert_eq!(l.files[0].lba, 23);
    }
}
