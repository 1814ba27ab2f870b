//! The one ISO 9660 writer's shared half: the bytes every volume baleen writes has in common
//! (directory records, path tables, the primary volume descriptor, the El Torito boot record
//! and catalog, the terminator) and [`emit`], which streams a laid-out volume.
//!
//! A volume is written in two steps. A layout step, pure arithmetic over metadata, fixes every
//! extent and returns a [`Layout`]: the bytes of everything before the file data (system area,
//! descriptors, path tables, directories, continuation areas, boot catalog) and where each
//! file's data goes. [`emit`] then writes those bytes and copies each file from its source.
//! `IsoTree::layout` (write.rs) lays out a whole image tree with Rock Ridge and Joliet;
//! [`plain_layout`](super::plain) a fixed handful of 8.3-named files (`iso-efi`, run's data
//! CD-ROM). Dates of the volume descriptor are LinuxKit's epoch.

use super::rock::{both16, both32};
use super::IsoWriteError;
use crate::num::usize_of;
use baleen_tree::{Civil, DEFAULT_MTIME};
use std::io::{self, Write};

pub(super) const SECTOR: usize = 2048;
/// [`SECTOR`] for the 32-bit fields.
pub(super) const SECTOR_U32: u32 = 2048;

/// An in-memory length (a path table, a directory) as ISO 9660's 32-bit field; one past it
/// could not be described, like a volume past 2^32 sectors.
pub(super) fn len32(len: usize) -> Result<u32, super::IsoWriteError> {
    u32::try_from(len).map_err(|_| super::IsoWriteError::VolumeTooLarge { bytes: len as u64 })
}

/// `lba` moved on by the sectors `len` bytes take.
pub(super) fn after(lba: u32, len: u64) -> Result<u32, IsoWriteError> {
    u32::try_from(len.div_ceil(SECTOR as u64))
        .ok()
        .and_then(|n| lba.checked_add(n))
        .ok_or(IsoWriteError::VolumeTooLarge { bytes: u64::from(lba) * SECTOR as u64 + len })
}

/// The byte size of a directory of `sectors` sectors, for its records' 32-bit size field.
pub(super) fn dir_bytes(sectors: u32) -> Result<u32, super::IsoWriteError> {
    sectors.checked_mul(SECTOR_U32).ok_or(super::IsoWriteError::VolumeTooLarge {
        bytes: u64::from(sectors) * u64::from(SECTOR_U32),
    })
}

/// Where the primary volume descriptor is, after the 16-sector system area.
pub(super) const PVD_LBA: u32 = 16;
/// LinuxKit's epoch as a volume descriptor date (digits, hundredths, offset from GMT).
const VOL_DATE: [u8; 17] = volume_date(Civil::of(DEFAULT_MTIME));
const NO_DATE: &[u8; 17] = b"0000000000000000\0";

/// `YYYYMMDDHHMMSS`, hundredths `00`, GMT offset 0 (ECMA-119 8.4.26.1), for a year 0–9999.
const fn volume_date(c: Civil) -> [u8; 17] {
    let fields = [
        (c.year, 4),
        (c.month as i64, 2),
        (c.day as i64, 2),
        (c.hour as i64, 2),
        (c.minute as i64, 2),
        (c.second as i64, 2),
        (0, 2),
    ];
    let mut d = [0u8; 17];
    let (mut at, mut f) = (0, 0);
    while f < fields.len() {
        let (mut value, width) = fields[f];
        let mut k = width;
        while k > 0 {
            k -= 1;
            // A digit: evaluated at compile time on LinuxKit's epoch, no field is negative.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let digit = (value % 10) as u8;
            d[at + k] = b'0' + digit;
            value /= 10;
        }
        at += width;
        f += 1;
    }
    d
}

/// A directory record; `su` is its system-use area (Rock Ridge), empty for plain volumes.
pub(super) fn record(
    id: &[u8],
    extent: u32,
    size: u32,
    date: [u8; 7],
    dir: bool,
    su: &[u8],
) -> Vec<u8> {
    let base = 33 + id.len() + (id.len() + 1) % 2;
    let mut len = base + su.len();
    len += len % 2;
    let mut r = vec![0u8; len];
    // At most 255: identifiers are at most 128 bytes (Joliet's 64 UCS-2 characters) and
    // Rock Ridge keeps inline entries within the 254-byte record (the rest goes to a CE area).
    #[allow(clippy::cast_possible_truncation)]
    let (len8, id8) = (len as u8, id.len() as u8);
    r[0] = len8;
    r[2..10].copy_from_slice(&both32(extent));
    r[10..18].copy_from_slice(&both32(size));
    r[18..25].copy_from_slice(&date);
    r[25] = if dir { 2 } else { 0 };
    r[28..32].copy_from_slice(&both16(1));
    r[32] = id8;
    r[33..33 + id.len()].copy_from_slice(id);
    r[base..base + su.len()].copy_from_slice(su);
    r
}

/// `text` as an a-/d-character field of `len` bytes, space padded.
fn padded(text: &str, len: usize) -> Vec<u8> {
    let mut v = text.as_bytes().to_vec();
    v.truncate(len);
    v.resize(len, b' ');
    v
}

/// A path table, little- or big-endian: every directory as (identifier, LBA, index of its
/// parent) in breadth-first order; the table numbers parents from 1.
pub(super) fn path_table<'a>(
    dirs: impl Iterator<Item = (&'a [u8], u32, usize)>,
    big: bool,
) -> Vec<u8> {
    let mut t = Vec::new();
    for (id, lba, parent) in dirs {
        // Identifiers are at most 128 bytes; the writers refuse over 65535 directories.
        #[allow(clippy::cast_possible_truncation)]
        let (id_len, parent) = (id.len() as u8, (parent + 1) as u16);
        t.push(id_len);
        t.push(0);
        if big {
            t.extend_from_slice(&lba.to_be_bytes());
            t.extend_from_slice(&parent.to_be_bytes());
        } else {
            t.extend_from_slice(&lba.to_le_bytes());
            t.extend_from_slice(&parent.to_le_bytes());
        }
        t.extend_from_slice(id);
        if id.len() % 2 == 1 {
            t.push(0);
        }
    }
    t
}

/// What a primary volume descriptor says.
pub(super) struct Primary<'a> {
    pub system_id: &'a str,
    pub volume_id: &'a str,
    pub total_sectors: u32,
    pub path_table_len: u32,
    pub l_table: u32,
    pub m_table: u32,
    /// The root directory's record (34 bytes: no system-use area).
    pub root: &'a [u8],
}

/// The primary volume descriptor (ECMA-119 8.4); application `BALEEN`, dates the epoch.
pub(super) fn primary(p: &Primary<'_>) -> Vec<u8> {
    let mut pvd = vec![0u8; SECTOR];
    pvd[0] = 1;
    pvd[1..6].copy_from_slice(b"CD001");
    pvd[6] = 1;
    pvd[8..40].copy_from_slice(&padded(p.system_id, 32));
    pvd[40..72].copy_from_slice(&padded(p.volume_id, 32));
    pvd[80..88].copy_from_slice(&both32(p.total_sectors));
    pvd[120..124].copy_from_slice(&both16(1));
    pvd[124..128].copy_from_slice(&both16(1));
    pvd[128..132].copy_from_slice(&both16(2048)); // logical block size: SECTOR
    pvd[132..140].copy_from_slice(&both32(p.path_table_len));
    pvd[140..144].copy_from_slice(&p.l_table.to_le_bytes());
    pvd[148..152].copy_from_slice(&p.m_table.to_be_bytes());
    pvd[156..190].copy_from_slice(p.root);
    pvd[190..813].fill(b' ');
    pvd[574..702].copy_from_slice(&padded("BALEEN", 128));
    pvd[813..830].copy_from_slice(&VOL_DATE);
    pvd[830..847].copy_from_slice(&VOL_DATE);
    pvd[847..864].copy_from_slice(NO_DATE);
    pvd[864..881].copy_from_slice(NO_DATE);
    pvd[881] = 1;
    pvd
}

/// The El Torito boot record (at sector 17), pointing at the catalog.
pub(super) fn boot_record(catalog_lba: u32) -> Vec<u8> {
    let mut br = vec![0u8; SECTOR];
    br[1..6].copy_from_slice(b"CD001");
    br[6] = 1;
    br[7..30].copy_from_slice(b"EL TORITO SPECIFICATION");
    br[71..75].copy_from_slice(&catalog_lba.to_le_bytes());
    br
}

/// The volume descriptor set terminator.
pub(super) fn terminator() -> Vec<u8> {
    let mut term = vec![0u8; SECTOR];
    term[0] = 255;
    term[1..6].copy_from_slice(b"CD001");
    term[6] = 1;
    term
}

/// El Torito platform ids of a validation entry.
pub const PLATFORM_X86: u8 = 0;
pub const PLATFORM_EFI: u8 = 0xef;

/// An El Torito boot catalog (one sector): a validation entry for `platform` naming
/// `id_string` as the manufacturer, and a bootable no-emulation default entry loading
/// `load_sectors` 512-byte sectors (0: the rest of the volume) from `image_lba`.
pub(crate) fn catalog(
    platform: u8,
    id_string: &[u8],
    load_sectors: u16,
    image_lba: u32,
) -> Vec<u8> {
    let mut c = vec![0u8; SECTOR];
    c[0] = 1; // validation entry
    c[1] = platform;
    c[4..4 + id_string.len()].copy_from_slice(id_string);
    c[30] = 0x55;
    c[31] = 0xaa;
    let sum = c[..32].chunks(2).fold(0u16, |s, w| s.wrapping_add(u16::from_le_bytes([w[0], w[1]])));
    c[28..30].copy_from_slice(&0u16.wrapping_sub(sum).to_le_bytes());
    let e = &mut c[32..64];
    e[0] = 0x88; // bootable
    e[1] = 0; // no emulation
    e[6..8].copy_from_slice(&load_sectors.to_le_bytes());
    e[8..12].copy_from_slice(&image_lba.to_le_bytes());
    c
}

/// Appends a directory's records to `head`, none split across sectors, padded to a whole
/// sector.
pub(super) fn put_records(head: &mut Vec<u8>, records: &[Vec<u8>]) {
    let mut used = 0usize;
    for r in records {
        if used + r.len() > SECTOR {
            head.resize(head.len() + SECTOR - used, 0);
            used = 0;
        }
        head.extend_from_slice(r);
        used += r.len();
    }
    pad_to_sector(head);
}

/// The sectors [`put_records`] takes for `records`.
pub(super) fn sectors_of(records: &[Vec<u8>]) -> u32 {
    let mut sectors = 1;
    let mut used = 0usize;
    for r in records {
        if used + r.len() > SECTOR {
            sectors += 1;
            used = 0;
        }
        used += r.len();
    }
    sectors
}

pub(super) fn pad_to_sector(head: &mut Vec<u8>) {
    head.resize(head.len().next_multiple_of(SECTOR), 0);
}

/// A file's place in the volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Extent {
    /// The caller's number for the file (its blob, or its index in a plain volume).
    pub file: u32,
    pub lba: u32,
    pub len: u64,
}

/// A laid-out volume: what [`emit`] writes.
#[derive(Debug)]
pub(super) struct Layout {
    /// Every byte before the first file's data, a whole number of sectors.
    pub head: Vec<u8>,
    /// The files with data, in the order of their extents (the first right after `head`).
    pub files: Vec<Extent>,
    /// The volume's length in bytes (past the last file: zeros, e.g. a hybrid image's padding).
    pub total: u64,
}

/// Counts what is written, to check the layout's arithmetic against the bytes.
struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(b)?;
        self.n += k as u64;
        Ok(k)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `layout` to `out`: its head, then each file's data as `data` writes it (exactly
/// the extent's length), padded to a sector, then zeros up to the total. Returns the length.
pub(super) fn emit<W: Write, E: From<IsoWriteError>>(
    layout: &Layout,
    out: W,
    data: &mut dyn FnMut(&Extent, &mut dyn Write) -> Result<(), E>,
) -> Result<u64, E> {
    let w = |e: io::Error| E::from(IsoWriteError::Write(e));
    let mut out = Counting { inner: out, n: 0 };
    out.write_all(&layout.head).map_err(w)?;
    let zeros = vec![0u8; 256 * 1024];
    for extent in &layout.files {
        // An empty file has no extent of its own (the tree writer gives it LBA 0).
        let start = out.n;
        debug_assert!(extent.len == 0 || start == u64::from(extent.lba) * SECTOR as u64);
        data(extent, &mut out)?;
        debug_assert_eq!(out.n, start + extent.len);
        let rem = usize_of(out.n % SECTOR as u64);
        if rem != 0 {
            out.write_all(&zeros[..SECTOR - rem]).map_err(w)?;
        }
    }
    while out.n < layout.total {
        let k = usize_of((layout.total - out.n).min(zeros.len() as u64));
        out.write_all(&zeros[..k]).map_err(w)?;
    }
    debug_assert_eq!(out.n, layout.total);
    out.flush().map_err(w)?;
    Ok(layout.total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_volume_date_is_the_epoch_in_digits() {
        assert_eq!(&VOL_DATE, b"2017041816300000\0");
    }
}
