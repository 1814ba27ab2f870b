//! Pass 2 of the ISO writer: [`IsoTree::write`] lays the volume out and streams it.
//!
//! Layout, in 2048-byte sectors: 0–15 system area (zeros, or the hybrid MBR), 16 primary volume
//! descriptor, 17 El Torito boot record (BIOS boot only: El Torito wants it at 17), the Joliet
//! supplementary descriptor, the terminator; the L and M path tables, then Joliet's; every
//! directory in breadth-first order (the path table's order), the Rock Ridge continuation areas,
//! the Joliet directories, the boot catalog, and file data in directory order, each file on its
//! own extent (hard links share one, both trees point at it). A hybrid image is padded to a whole
//! MiB, the cylinder `isohybrid` rounds to.
//!
//! Directory records sort by ISO 9660 identifier (ECMA-119 9.3); identifiers come from the POSIX
//! names (see `rock::Names`), the names themselves are in Rock Ridge `NM`.

use super::joliet::{self, JDir};
use super::rock::{self, both16, both32, record_date, sort_key, Names};
use super::tree::{Kind, Meta, ROOT};
use super::{IsoTree, IsoWriteError};
use crate::isolinux;
use sha2::Digest;
use std::io::{Read, Seek, SeekFrom, Write};

const SECTOR: usize = 2048;
/// LinuxKit's epoch as a volume descriptor date (digits, hundredths, offset from GMT).
const VOL_DATE: &[u8; 17] = b"2017041816300000\0";
const NO_DATE: &[u8; 17] = b"0000000000000000\0";
const PVD_LBA: u32 = 16;

/// What the volume is called and how it boots.
#[derive(Debug, Clone)]
pub struct IsoOptions<'a> {
    /// The primary volume descriptor's volume identifier (LinuxKit: `LinuxKit`).
    pub volume_id: &'a str,
    /// Adds a Joliet tree (`genisoimage -J -joliet-long`), as LinuxKit's ISOs have.
    pub joliet: bool,
    pub bios: Option<BiosBoot<'a>>,
}

/// An El Torito BIOS (no-emulation) boot entry for a file of the tree, ISOLINUX style.
#[derive(Debug, Clone)]
pub struct BiosBoot<'a> {
    /// Path of the boot file in the tree (e.g. `isolinux/isolinux.bin`); its boot info table
    /// is patched as `-boot-info-table` does.
    pub image: &'a str,
    /// Where the catalog appears in the tree (e.g. `isolinux/boot.cat`).
    pub catalog: &'a str,
    /// 512-byte sectors the BIOS loads (`-boot-load-size`, 4 for ISOLINUX).
    pub load_sectors: u16,
    /// `isohdpfx.bin`: when given, the image is made hybrid (it also boots as a disk).
    pub hybrid_mbr: Option<&'a [u8]>,
}

/// A directory's records and its continuation areas.
type Records = (Vec<Vec<u8>>, Vec<Vec<u8>>);

struct Dir {
    node: u32,
    /// Its ISO 9660 identifier in its parent (`\0` for the root).
    id: Vec<u8>,
    /// Index of the parent in the directory list (the root is its own parent).
    parent: usize,
    /// Children as (ISO identifier, node), in record order.
    children: Vec<(Vec<u8>, u32)>,
    subdirs: u32,
    lba: u32,
    sectors: u32,
}

/// Where each thing lives, once known.
struct Places {
    dir_of: Vec<u32>,
    blob_lba: Vec<u32>,
    nlink: Vec<u32>,
    catalog_lba: u32,
}

fn type_bits(kind: &Kind) -> u32 {
    match kind {
        Kind::Dir(_) => 0o040000,
        Kind::File(_) | Kind::Catalog => 0o100000,
        Kind::Symlink(_) => 0o120000,
        Kind::Char(..) => 0o020000,
        Kind::Block(..) => 0o060000,
        Kind::Fifo => 0o010000,
    }
}

fn record(id: &[u8], extent: u32, size: u32, date: [u8; 7], dir: bool, su: &[u8]) -> Vec<u8> {
    let base = 33 + id.len() + (id.len() + 1) % 2;
    let mut len = base + su.len();
    len += len % 2;
    let mut r = vec![0u8; len];
    r[0] = len as u8;
    r[2..10].copy_from_slice(&both32(extent));
    r[10..18].copy_from_slice(&both32(size));
    r[18..25].copy_from_slice(&date);
    r[25] = if dir { 2 } else { 0 };
    r[28..32].copy_from_slice(&both16(1));
    r[32] = id.len() as u8;
    r[33..33 + id.len()].copy_from_slice(id);
    r[base..base + su.len()].copy_from_slice(su);
    r
}

fn padded(text: &str, len: usize) -> Vec<u8> {
    let mut v = text.as_bytes().to_vec();
    v.truncate(len);
    v.resize(len, b' ');
    v
}

/// Counts what is written, to check the layout's arithmetic against the bytes.
struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Counting<W> {
    fn put(&mut self, b: &[u8]) -> Result<(), IsoWriteError> {
        self.inner.write_all(b).map_err(IsoWriteError::Write)?;
        self.n += b.len() as u64;
        Ok(())
    }

    fn pad_to_sector(&mut self) -> Result<(), IsoWriteError> {
        let rem = (self.n % SECTOR as u64) as usize;
        if rem != 0 {
            self.put(&vec![0u8; SECTOR - rem])?;
        }
        Ok(())
    }
}

impl<S: Read + Write + Seek> IsoTree<S> {
    fn path_of(&self, dirs: &[Dir], di: usize, child: Option<u32>) -> String {
        let mut parts = Vec::new();
        if let Some(c) = child {
            parts.push(self.nodes[c as usize].name.clone());
        }
        let mut d = di;
        while d != 0 {
            parts.push(self.nodes[dirs[d].node as usize].name.clone());
            d = dirs[d].parent;
        }
        parts.reverse();
        parts.join("/")
    }

    /// The directories, breadth first, each with its children's identifiers in record order.
    fn directories(&self) -> Vec<Dir> {
        let mut dirs = vec![Dir {
            node: ROOT,
            id: vec![0],
            parent: 0,
            children: vec![],
            subdirs: 0,
            lba: 0,
            sectors: 0,
        }];
        let mut i = 0;
        while i < dirs.len() {
            let Kind::Dir(children) = &self.nodes[dirs[i].node as usize].kind else {
                unreachable!("only directories are queued")
            };
            let mut names = Names::default();
            let mut kids: Vec<(Vec<u8>, u32)> = children
                .iter()
                .map(|(name, &id)| {
                    let dir = matches!(self.nodes[id as usize].kind, Kind::Dir(_));
                    (names.pick(name, dir), id)
                })
                .collect();
            kids.sort_by(|a, b| sort_key(&a.0).cmp(&sort_key(&b.0)));
            let mut subdirs = 0;
            for (iso_id, id) in &kids {
                if matches!(self.nodes[*id as usize].kind, Kind::Dir(_)) {
                    subdirs += 1;
                    dirs.push(Dir {
                        node: *id,
                        id: iso_id.clone(),
                        parent: i,
                        children: vec![],
                        subdirs: 0,
                        lba: 0,
                        sectors: 0,
                    });
                }
            }
            dirs[i].children = kids;
            dirs[i].subdirs = subdirs;
            i += 1;
        }
        dirs
    }

    /// The Rock Ridge entries of a record for `node` (`name` is None for `.` and `..`).
    fn su_entries(&self, node: u32, name: Option<&str>, nlink: u32) -> Vec<Vec<u8>> {
        let n = &self.nodes[node as usize];
        let Meta { perm, uid, gid, mtime } = n.meta;
        let mut e = vec![rock::px(type_bits(&n.kind) | perm, nlink, uid, gid)];
        match &n.kind {
            Kind::Char(major, minor) | Kind::Block(major, minor) => {
                e.push(rock::pn(*major, *minor))
            }
            _ => {}
        }
        e.push(rock::tf(mtime));
        if let Some(name) = name {
            e.extend(rock::nm(name));
            if let Kind::Symlink(target) = &n.kind {
                e.extend(rock::sl(target));
            }
        }
        e
    }

    /// The records of directory `di`. `extent` gives a node's (extent, size); `ce` places a
    /// continuation area of the given length and returns its (LBA, offset); continuation areas
    /// are returned with the records, in the order `ce` was called.
    fn dir_records(
        &self,
        dirs: &[Dir],
        di: usize,
        places: &Places,
        extent: &dyn Fn(u32) -> (u32, u32),
        ce: &mut dyn FnMut(usize) -> (u32, u32),
    ) -> Result<Records, IsoWriteError> {
        let d = &dirs[di];
        let parent = &dirs[d.parent];
        let mut records = Vec::with_capacity(d.children.len() + 2);
        let mut areas = Vec::new();
        let dir_nlink = |d: &Dir| 2 + d.subdirs;
        // `.`: on the root it starts with SP, and ER goes to a continuation area.
        let mut dot = self.su_entries(d.node, None, dir_nlink(d));
        let (ext, size) = extent(d.node);
        let date = record_date(self.nodes[d.node as usize].meta.mtime);
        if di == 0 {
            dot.insert(0, rock::sp());
            let er = rock::er();
            let (lba, off) = ce(er.len());
            dot.push(rock::ce(lba, off, er.len() as u32));
            areas.push(er);
        }
        records.push(record(&[0], ext, size, date, true, &dot.concat()));
        let dotdot = self.su_entries(parent.node, None, dir_nlink(parent));
        let (pext, psize) = extent(parent.node);
        let pdate = record_date(self.nodes[parent.node as usize].meta.mtime);
        records.push(record(&[1], pext, psize, pdate, true, &dotdot.concat()));
        for (id, child) in &d.children {
            let n = &self.nodes[*child as usize];
            let nlink = match &n.kind {
                Kind::Dir(_) => dir_nlink(&dirs[places.dir_of[*child as usize] as usize]),
                Kind::File(b) => places.nlink[*b as usize],
                _ => 1,
            };
            let entries = self.su_entries(*child, Some(&n.name), nlink);
            let base = 33 + id.len() + (id.len() + 1) % 2;
            let room = 254 - base;
            let (inline, rest) = rock::split(&entries, room);
            let mut su = entries[..inline].concat();
            if let Some(rest) = rest {
                if rest > SECTOR {
                    return Err(IsoWriteError::TooLong {
                        path: self.path_of(dirs, di, Some(*child)),
                    });
                }
                let (lba, off) = ce(rest);
                su.extend_from_slice(&rock::ce(lba, off, rest as u32));
                areas.push(entries[inline..].concat());
            }
            let (ext, size) = extent(*child);
            let is_dir = matches!(n.kind, Kind::Dir(_));
            records.push(record(id, ext, size, record_date(n.meta.mtime), is_dir, &su));
        }
        Ok((records, areas))
    }

    /// The records of Joliet directory `j`; `extent` places files (directories are the
    /// Joliet tree's own).
    fn joliet_records(
        &self,
        jdirs: &[JDir],
        jdir_of: &[u32],
        j: usize,
        extent: &dyn Fn(u32) -> (u32, u32),
    ) -> Vec<Vec<u8>> {
        let d = &jdirs[j];
        let date = |node: u32| record_date(self.nodes[node as usize].meta.mtime);
        let place = |d: &JDir| (d.lba, d.sectors * SECTOR as u32);
        let parent = &jdirs[d.parent];
        let mut records = Vec::with_capacity(d.children.len() + 2);
        let (e, s) = place(d);
        records.push(record(&[0], e, s, date(d.node), true, &[]));
        let (e, s) = place(parent);
        records.push(record(&[1], e, s, date(parent.node), true, &[]));
        for (id, child) in &d.children {
            let dir = matches!(self.nodes[*child as usize].kind, Kind::Dir(_));
            let (e, s) =
                if dir { place(&jdirs[jdir_of[*child as usize] as usize]) } else { extent(*child) };
            records.push(record(id, e, s, date(*child), dir, &[]));
        }
        records
    }

    /// Writes the volume to `out`; returns its length in bytes.
    pub fn write<W: Write>(mut self, opts: &IsoOptions<'_>, out: W) -> Result<u64, IsoWriteError> {
        // The catalog is a file of the tree, so that it is visible (and not overwritten).
        let boot_blob = match &opts.bios {
            Some(b) => {
                let (parent, name) = self.parent_of(b.catalog)?;
                let node = super::tree::Node {
                    name: name.to_string(),
                    meta: Meta::synthesized(0o444),
                    kind: Kind::Catalog,
                };
                self.place(parent, node);
                match self.lookup(b.image).map(|n| &self.nodes[n as usize].kind) {
                    Some(Kind::File(blob)) => Some(*blob),
                    _ => return Err(IsoWriteError::NoBootImage { path: b.image.to_string() }),
                }
            }
            None => None,
        };
        let mut dirs = self.directories();
        if dirs.len() > usize::from(u16::MAX) {
            return Err(IsoWriteError::TooManyDirectories { count: dirs.len() });
        }
        let mut places = Places {
            dir_of: vec![u32::MAX; self.nodes.len()],
            blob_lba: vec![u32::MAX; self.blobs.len()],
            nlink: vec![0; self.blobs.len()],
            catalog_lba: 0,
        };
        for (i, d) in dirs.iter().enumerate() {
            places.dir_of[d.node as usize] = i as u32;
            for (_, c) in &d.children {
                if let Kind::File(b) = self.nodes[*c as usize].kind {
                    places.nlink[b as usize] += 1;
                }
            }
        }

        // Sizing: directory lengths and continuation areas do not depend on extents.
        let mut ce_allocs: Vec<(u32, u32)> = Vec::new();
        let mut ce_cursor = (0u32, 0u32);
        for di in 0..dirs.len() {
            let mut alloc = |len: usize| {
                if ce_cursor.1 as usize + len > SECTOR {
                    ce_cursor = (ce_cursor.0 + 1, 0);
                }
                let at = ce_cursor;
                ce_cursor.1 += len as u32;
                ce_allocs.push(at);
                at
            };
            let (records, _) = self.dir_records(&dirs, di, &places, &|_| (0, 0), &mut alloc)?;
            dirs[di].sectors = sectors_of(&records);
        }
        let ce_sectors = if ce_allocs.is_empty() { 0 } else { ce_cursor.0 + 1 };
        let mut jdirs = if opts.joliet { joliet::directories(&self) } else { Vec::new() };
        let mut jdir_of = vec![u32::MAX; if opts.joliet { self.nodes.len() } else { 0 }];
        for (i, d) in jdirs.iter().enumerate() {
            jdir_of[d.node as usize] = i as u32;
        }
        for j in 0..jdirs.len() {
            let records = self.joliet_records(&jdirs, &jdir_of, j, &|_| (0, 0));
            jdirs[j].sectors = sectors_of(&records);
        }

        // Placement.
        let iso_pt =
            |dirs: &[Dir], big| path_table(dirs.iter().map(|d| (&d.id[..], d.lba, d.parent)), big);
        let j_pt =
            |dirs: &[JDir], big| path_table(dirs.iter().map(|d| (&d.id[..], d.lba, d.parent)), big);
        let path_table_len = iso_pt(&dirs, false).len();
        let pt_sectors = path_table_len.div_ceil(SECTOR) as u32;
        let j_pt_len = j_pt(&jdirs, false).len();
        let j_pt_sectors = if opts.joliet { j_pt_len.div_ceil(SECTOR) as u32 } else { 0 };
        let descriptors = 1 + u32::from(opts.bios.is_some()) + u32::from(opts.joliet) + 1;
        let mut lba = PVD_LBA + descriptors;
        let (l_table, m_table) = (lba, lba + pt_sectors);
        lba += 2 * pt_sectors;
        let (j_l_table, j_m_table) = (lba, lba + j_pt_sectors);
        lba += 2 * j_pt_sectors;
        for d in &mut dirs {
            d.lba = lba;
            lba += d.sectors;
        }
        // Continuation areas right after the directories that point at them: libarchive reads
        // the volume forward and misses a CE it has to go back for, or one past the Joliet tree.
        let ce_lba = lba;
        lba += ce_sectors;
        for d in &mut jdirs {
            d.lba = lba;
            lba += d.sectors;
        }
        if opts.bios.is_some() {
            places.catalog_lba = lba;
            lba += 1;
        }
        let mut order = Vec::new();
        for (di, d) in dirs.iter().enumerate() {
            for (_, c) in &d.children {
                if let Kind::File(b) = self.nodes[*c as usize].kind {
                    let blob = self.blobs[b as usize];
                    if blob.len > u64::from(u32::MAX) {
                        return Err(IsoWriteError::FileTooLarge {
                            path: self.path_of(&dirs, di, Some(*c)),
                            size: blob.len,
                        });
                    }
                    if places.blob_lba[b as usize] == u32::MAX {
                        places.blob_lba[b as usize] = if blob.len == 0 { 0 } else { lba };
                        lba += blob.len.div_ceil(SECTOR as u64) as u32;
                        order.push(b);
                    }
                }
            }
        }
        let mut total = u64::from(lba) * SECTOR as u64;
        let hybrid = opts.bios.as_ref().and_then(|b| b.hybrid_mbr);
        if hybrid.is_some() {
            total = total.next_multiple_of(isolinux::HYBRID_ALIGN);
        }
        let total_sectors = u32::try_from(total / SECTOR as u64)
            .map_err(|_| IsoWriteError::VolumeTooLarge { bytes: total })?;

        let extent = |node: u32| -> (u32, u32) {
            match &self.nodes[node as usize].kind {
                Kind::Dir(_) => {
                    let d = &dirs[places.dir_of[node as usize] as usize];
                    (d.lba, d.sectors * SECTOR as u32)
                }
                Kind::File(b) => (places.blob_lba[*b as usize], self.blobs[*b as usize].len as u32),
                Kind::Catalog => (places.catalog_lba, SECTOR as u32),
                _ => (0, 0),
            }
        };

        let mut out = Counting { inner: out, n: 0 };
        // System area.
        let mut system = vec![0u8; 16 * SECTOR];
        if let (Some(tpl), Some(blob)) = (hybrid, boot_blob) {
            let mut h = self.hash.clone();
            h.update(self.data_crc.sum().to_le_bytes());
            h.update(self.data_crc.amount().to_le_bytes());
            let id = u32::from_le_bytes(h.finalize()[..4].try_into().expect("4 bytes"));
            let mbr = isolinux::isohybrid_mbr(tpl, places.blob_lba[blob as usize], total, id)
                .map_err(IsoWriteError::Boot)?;
            system[..512].copy_from_slice(&mbr);
        }
        out.put(&system)?;
        // Volume descriptors.
        let root = &dirs[0];
        let mut pvd = vec![0u8; SECTOR];
        pvd[0] = 1;
        pvd[1..6].copy_from_slice(b"CD001");
        pvd[6] = 1;
        pvd[8..40].copy_from_slice(&padded("LINUX", 32));
        pvd[40..72].copy_from_slice(&padded(opts.volume_id, 32));
        pvd[80..88].copy_from_slice(&both32(total_sectors));
        pvd[120..124].copy_from_slice(&both16(1));
        pvd[124..128].copy_from_slice(&both16(1));
        pvd[128..132].copy_from_slice(&both16(SECTOR as u16));
        pvd[132..140].copy_from_slice(&both32(path_table_len as u32));
        pvd[140..144].copy_from_slice(&l_table.to_le_bytes());
        pvd[148..152].copy_from_slice(&m_table.to_be_bytes());
        let root_date = record_date(self.nodes[ROOT as usize].meta.mtime);
        pvd[156..190].copy_from_slice(&record(
            &[0],
            root.lba,
            root.sectors * SECTOR as u32,
            root_date,
            true,
            &[],
        ));
        pvd[190..813].fill(b' ');
        pvd[574..702].copy_from_slice(&padded("BALEEN", 128));
        pvd[813..830].copy_from_slice(VOL_DATE);
        pvd[830..847].copy_from_slice(VOL_DATE);
        pvd[847..864].copy_from_slice(NO_DATE);
        pvd[864..881].copy_from_slice(NO_DATE);
        pvd[881] = 1;
        out.put(&pvd)?;
        let svd = opts.joliet.then(|| {
            let root = &jdirs[0];
            let rec = record(&[0], root.lba, root.sectors * SECTOR as u32, root_date, true, &[]);
            joliet::svd(&pvd, opts.volume_id, j_pt_len as u32, j_l_table, j_m_table, &rec)
        });
        if opts.bios.is_some() {
            let mut br = vec![0u8; SECTOR];
            br[1..6].copy_from_slice(b"CD001");
            br[6] = 1;
            br[7..30].copy_from_slice(b"EL TORITO SPECIFICATION");
            br[71..75].copy_from_slice(&places.catalog_lba.to_le_bytes());
            out.put(&br)?;
        }
        // After the boot record, which El Torito wants at sector 17.
        if let Some(svd) = &svd {
            out.put(svd)?;
        }
        let mut term = vec![0u8; SECTOR];
        term[0] = 255;
        term[1..6].copy_from_slice(b"CD001");
        term[6] = 1;
        out.put(&term)?;
        // Path tables.
        for big in [false, true] {
            out.put(&iso_pt(&dirs, big))?;
            out.pad_to_sector()?;
        }
        if opts.joliet {
            for big in [false, true] {
                out.put(&j_pt(&jdirs, big))?;
                out.pad_to_sector()?;
            }
        }
        // Directories, then their continuation areas.
        let mut ce_area = vec![0u8; ce_sectors as usize * SECTOR];
        let mut next = ce_allocs.iter();
        for di in 0..dirs.len() {
            let mut placed = Vec::new();
            let mut alloc = |_len: usize| {
                let at = *next.next().expect("the same continuation areas as when sizing");
                placed.push(at);
                (ce_lba + at.0, at.1)
            };
            let (records, areas) = self.dir_records(&dirs, di, &places, &extent, &mut alloc)?;
            for (at, area) in placed.iter().zip(&areas) {
                let start = at.0 as usize * SECTOR + at.1 as usize;
                ce_area[start..start + area.len()].copy_from_slice(area);
            }
            write_records(&mut out, &records)?;
            debug_assert_eq!(out.n, u64::from(dirs[di].lba + dirs[di].sectors) * SECTOR as u64);
        }
        out.put(&ce_area)?;
        for j in 0..jdirs.len() {
            let records = self.joliet_records(&jdirs, &jdir_of, j, &extent);
            write_records(&mut out, &records)?;
        }
        if let (Some(b), Some(blob)) = (&opts.bios, boot_blob) {
            out.put(&isolinux::bios_catalog(places.blob_lba[blob as usize], b.load_sectors))?;
        }
        // File data.
        let mut buf = vec![0u8; 256 * 1024];
        for b in order {
            let blob = self.blobs[b as usize];
            self.spool.seek(SeekFrom::Start(blob.offset)).map_err(IsoWriteError::Spool)?;
            if Some(b) == boot_blob {
                let mut image = vec![0u8; blob.len as usize];
                self.spool.read_exact(&mut image).map_err(IsoWriteError::Spool)?;
                isolinux::patch_boot_info_table(&mut image, PVD_LBA, places.blob_lba[b as usize])
                    .map_err(IsoWriteError::Boot)?;
                out.put(&image)?;
            } else {
                let mut left = blob.len;
                while left > 0 {
                    let k = left.min(buf.len() as u64) as usize;
                    self.spool.read_exact(&mut buf[..k]).map_err(IsoWriteError::Spool)?;
                    out.put(&buf[..k])?;
                    left -= k as u64;
                }
            }
            out.pad_to_sector()?;
        }
        let zeros = vec![0u8; 256 * 1024];
        while out.n < total {
            let k = (total - out.n).min(zeros.len() as u64) as usize;
            out.put(&zeros[..k])?;
        }
        debug_assert_eq!(out.n, total);
        out.inner.flush().map_err(IsoWriteError::Write)?;
        Ok(total)
    }
}

/// A directory's records, none split across sectors, padded to a whole sector.
fn write_records<W: Write>(
    out: &mut Counting<W>,
    records: &[Vec<u8>],
) -> Result<(), IsoWriteError> {
    let mut used = 0usize;
    for r in records {
        if used + r.len() > SECTOR {
            out.put(&vec![0u8; SECTOR - used])?;
            used = 0;
        }
        out.put(r)?;
        used += r.len();
    }
    out.pad_to_sector()
}

fn sectors_of(records: &[Vec<u8>]) -> u32 {
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

/// The path table, little- or big-endian: every directory in breadth-first order, with its
/// parent's number (1-based).
fn path_table<'a>(dirs: impl Iterator<Item = (&'a [u8], u32, usize)>, big: bool) -> Vec<u8> {
    let mut t = Vec::new();
    for (id, lba, parent) in dirs {
        t.push(id.len() as u8);
        t.push(0);
        let parent = (parent + 1) as u16;
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

#[cfg(test)]
mod tests {
    use super::super::tree::{Blob, Node};
    use super::*;
    use baleen_tree::{Entry, EntryKind, EntrySink};

    const PLAIN: IsoOptions<'static> =
        IsoOptions { volume_id: "LinuxKit", joliet: true, bios: None };

    #[test]
    fn a_file_of_4_gib_is_refused_with_its_path() {
        // The blob is only described: the check comes before any data is read.
        let mut t = IsoTree::new(std::io::Cursor::new(Vec::new()));
        t.blobs.push(Blob { offset: 0, len: 1 << 32 });
        let (parent, name) = t.parent_of("var/big.img").unwrap();
        let node =
            Node { name: name.to_string(), meta: Meta::synthesized(0o644), kind: Kind::File(0) };
        t.place(parent, node);
        let err = t.write(&PLAIN, std::io::sink()).unwrap_err();
        assert!(
            matches!(&err, IsoWriteError::FileTooLarge { path, size } if path == "var/big.img" && *size == 1 << 32),
            "{err}"
        );
        assert!(err.to_string().contains("var/big.img"));
    }

    #[test]
    fn a_symlink_too_long_for_rock_ridge_is_refused_with_its_path() {
        let mut t = IsoTree::new(std::io::Cursor::new(Vec::new()));
        let target = "x/".repeat(1500);
        let e = Entry::new("etc/link", EntryKind::Symlink { target }, 0o777);
        t.add(&e, &mut std::io::empty()).unwrap();
        let err = t.write(&PLAIN, std::io::sink()).unwrap_err();
        assert!(matches!(&err, IsoWriteError::TooLong { path } if path == "etc/link"), "{err}");
    }

    #[test]
    fn an_empty_tree_is_a_valid_volume() {
        let t = IsoTree::new(std::io::Cursor::new(Vec::new()));
        let mut out = Vec::new();
        let n = t.write(&PLAIN, &mut out).unwrap();
        assert_eq!(n, out.len() as u64);
        assert_eq!(&out[16 * 2048 + 1..16 * 2048 + 6], b"CD001");
        assert_eq!(&out[16 * 2048 + 40..16 * 2048 + 48], b"LinuxKit");
    }
}
