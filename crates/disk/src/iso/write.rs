//! Pass 2 of the ISO writer: [`IsoTree::write`] lays the volume out (`plan`: sizes and LBAs,
//! pure arithmetic over the metadata; `head`: the bytes before the file data) and has the
//! shared `volume::emit` stream it, copying file data back from the spool.
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

use super::joliet;
use super::rock::{self, record_date, sort_key, Names};
use super::tree::{Dir, Kind, Meta, ROOT};
use super::volume::{
    after, boot_record, dir_bytes, emit, len32, pad_to_sector, path_table, primary, put_records,
    record, sectors_of, terminator, Extent, Layout, Primary, PVD_LBA, SECTOR, SECTOR_U32,
};
use super::{IsoTree, IsoWriteError};
use crate::isolinux;
use crate::num::usize_of;
use sha2::Digest;
use std::io::{Read, Seek, SeekFrom, Write};

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

/// Where each thing lives, once known.
struct Places {
    dir_of: Vec<u32>,
    blob_lba: Vec<u32>,
    nlink: Vec<u32>,
    catalog_lba: u32,
}

/// The volume's arithmetic: every directory's and file's place, before any byte is made.
struct Plan {
    dirs: Vec<Dir>,
    places: Places,
    /// Where `dir_records` put each continuation area, as (sector, offset) in the CE area.
    ce_allocs: Vec<(u32, u32)>,
    ce_sectors: u32,
    ce_lba: u32,
    jdirs: Vec<Dir>,
    jdir_of: Vec<u32>,
    path_table_len: u32,
    l_table: u32,
    m_table: u32,
    j_path_table_len: u32,
    j_l_table: u32,
    j_m_table: u32,
    /// The blobs in extent order.
    order: Vec<u32>,
    total: u64,
    total_sectors: u32,
}

/// What sizing finds: the continuation areas and the Joliet directories, sized.
struct Sizes {
    ce_allocs: Vec<(u32, u32)>,
    ce_sectors: u32,
    jdirs: Vec<Dir>,
    jdir_of: Vec<u32>,
}

/// The path table of one hierarchy.
fn table(dirs: &[Dir], big: bool) -> Vec<u8> {
    path_table(dirs.iter().map(|d| (&d.id[..], d.lba, d.parent)), big)
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

    /// The ISO 9660 directories, breadth first, each with its children's identifiers in record
    /// order.
    fn directories(&self) -> Vec<Dir> {
        self.breadth_first(|children| {
            let mut names = Names::default();
            let mut kids: Vec<(Vec<u8>, u32)> = children
                .iter()
                .map(|(name, &id)| {
                    let dir = matches!(self.nodes[id as usize].kind, Kind::Dir(_));
                    (names.pick(name, dir), id)
                })
                .collect();
            kids.sort_by(|a, b| sort_key(&a.0).cmp(&sort_key(&b.0)));
            kids
        })
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
            dot.push(rock::ce(lba, off, len32(er.len())?));
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
                su.extend_from_slice(&rock::ce(lba, off, len32(rest)?));
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
        jdirs: &[Dir],
        jdir_of: &[u32],
        j: usize,
        extent: &dyn Fn(u32) -> (u32, u32),
    ) -> Vec<Vec<u8>> {
        let d = &jdirs[j];
        let date = |node: u32| record_date(self.nodes[node as usize].meta.mtime);
        let place = |d: &Dir| (d.lba, d.sectors * SECTOR_U32);
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

    /// Adds the El Torito catalog as a file of the tree, so that it is visible (and not
    /// overwritten); returns the boot file's blob.
    fn add_catalog(&mut self, opts: &IsoOptions<'_>) -> Result<Option<u32>, IsoWriteError> {
        let Some(b) = &opts.bios else { return Ok(None) };
        let (parent, name) = self.parent_of(b.catalog)?;
        let node = super::tree::Node {
            name: name.to_string(),
            meta: Meta::synthesized(0o444),
            kind: Kind::Catalog,
        };
        self.place(parent, node);
        match self.lookup(b.image).map(|n| &self.nodes[n as usize].kind) {
            Some(Kind::File(blob)) => Ok(Some(*blob)),
            _ => Err(IsoWriteError::NoBootImage { path: b.image.to_string() }),
        }
    }

    /// Sizes the directories (ISO and Joliet) and the continuation areas: their lengths do
    /// not depend on extents, so records are made once with every extent 0.
    fn size(
        &self,
        dirs: &mut [Dir],
        places: &Places,
        joliet: bool,
    ) -> Result<Sizes, IsoWriteError> {
        let mut ce_allocs: Vec<(u32, u32)> = Vec::new();
        let mut ce_cursor = (0u32, 0u32);
        for di in 0..dirs.len() {
            let mut alloc = |len: usize| {
                if ce_cursor.1 as usize + len > SECTOR {
                    ce_cursor = (ce_cursor.0 + 1, 0);
                }
                let at = ce_cursor;
                // At most SECTOR: dir_records refuses longer areas (TooLong) before asking.
                #[allow(clippy::cast_possible_truncation)]
                let len = len as u32;
                ce_cursor.1 += len;
                ce_allocs.push(at);
                at
            };
            let (records, _) = self.dir_records(dirs, di, places, &|_| (0, 0), &mut alloc)?;
            dirs[di].sectors = sectors_of(&records);
            dir_bytes(dirs[di].sectors)?;
        }
        let ce_sectors = if ce_allocs.is_empty() { 0 } else { ce_cursor.0 + 1 };
        let mut jdirs = if joliet { joliet::directories(self) } else { Vec::new() };
        let mut jdir_of = vec![u32::MAX; if joliet { self.nodes.len() } else { 0 }];
        for (i, d) in jdirs.iter().enumerate() {
            jdir_of[d.node as usize] = len32(i)?;
        }
        for j in 0..jdirs.len() {
            let records = self.joliet_records(&jdirs, &jdir_of, j, &|_| (0, 0));
            jdirs[j].sectors = sectors_of(&records);
            dir_bytes(jdirs[j].sectors)?;
        }

        Ok(Sizes { ce_allocs, ce_sectors, jdirs, jdir_of })
    }

    /// Sizes every directory and places every directory, continuation area, path table and
    /// file (see the module doc for the order). Long only by its result's literal: the steps
    /// run in the order the volume is laid out, and read best in one place.
    fn plan(&self, opts: &IsoOptions<'_>) -> Result<Plan, IsoWriteError> {
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
            places.dir_of[d.node as usize] = len32(i)?;
            for (_, c) in &d.children {
                if let Kind::File(b) = self.nodes[*c as usize].kind {
                    places.nlink[b as usize] += 1;
                }
            }
        }

        let Sizes { ce_allocs, ce_sectors, mut jdirs, jdir_of } =
            self.size(&mut dirs, &places, opts.joliet)?;

        // Placement.
        let path_table_len = len32(table(&dirs, false).len())?;
        let pt_sectors = path_table_len.div_ceil(SECTOR_U32);
        let j_path_table_len = len32(table(&jdirs, false).len())?;
        let j_pt_sectors = if opts.joliet { j_path_table_len.div_ceil(SECTOR_U32) } else { 0 };
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
                        lba = after(lba, blob.len)?;
                        order.push(b);
                    }
                }
            }
        }
        let mut total = u64::from(lba) * SECTOR as u64;
        if opts.bios.as_ref().and_then(|b| b.hybrid_mbr).is_some() {
            total = total.next_multiple_of(isolinux::HYBRID_ALIGN);
        }
        let total_sectors = u32::try_from(total / SECTOR as u64)
            .map_err(|_| IsoWriteError::VolumeTooLarge { bytes: total })?;
        Ok(Plan {
            dirs,
            places,
            ce_allocs,
            ce_sectors,
            ce_lba,
            jdirs,
            jdir_of,
            path_table_len,
            l_table,
            m_table,
            j_path_table_len,
            j_l_table,
            j_m_table,
            order,
            total,
            total_sectors,
        })
    }

    /// A node's (extent, size) once `plan` has placed everything.
    // `len as u32`: `plan` refused every blob over u32::MAX bytes (FileTooLarge).
    #[allow(clippy::cast_possible_truncation)]
    fn extent(&self, plan: &Plan, node: u32) -> (u32, u32) {
        match &self.nodes[node as usize].kind {
            Kind::Dir(_) => {
                let d = &plan.dirs[plan.places.dir_of[node as usize] as usize];
                (d.lba, d.sectors * SECTOR_U32)
            }
            Kind::File(b) => {
                (plan.places.blob_lba[*b as usize], self.blobs[*b as usize].len as u32)
            }
            Kind::Catalog => (plan.places.catalog_lba, SECTOR_U32),
            _ => (0, 0),
        }
    }

    /// The bytes before the file data: system area, descriptors, path tables, directories,
    /// continuation areas, Joliet directories and the boot catalog.
    fn head(
        &self,
        plan: &Plan,
        opts: &IsoOptions<'_>,
        boot_blob: Option<u32>,
    ) -> Result<Vec<u8>, IsoWriteError> {
        let Plan { dirs, places, jdirs, .. } = plan;
        let extent = |node: u32| self.extent(plan, node);
        let mut head = vec![0u8; PVD_LBA as usize * SECTOR];
        // System area.
        let hybrid = opts.bios.as_ref().and_then(|b| b.hybrid_mbr);
        if let (Some(tpl), Some(blob)) = (hybrid, boot_blob) {
            let mut h = self.hash.clone();
            h.update(self.data_crc.sum().to_le_bytes());
            h.update(self.data_crc.amount().to_le_bytes());
            let id = u32::from_le_bytes(h.finalize()[..4].try_into().expect("4 bytes"));
            let mbr = isolinux::isohybrid_mbr(tpl, places.blob_lba[blob as usize], plan.total, id)
                .map_err(IsoWriteError::Boot)?;
            head[..512].copy_from_slice(&mbr);
        }
        // Volume descriptors.
        let root_date = record_date(self.nodes[ROOT as usize].meta.mtime);
        let root = &dirs[0];
        let pvd = primary(&Primary {
            system_id: "LINUX",
            volume_id: opts.volume_id,
            total_sectors: plan.total_sectors,
            path_table_len: plan.path_table_len,
            l_table: plan.l_table,
            m_table: plan.m_table,
            root: &record(&[0], root.lba, root.sectors * SECTOR_U32, root_date, true, &[]),
        });
        head.extend_from_slice(&pvd);
        if opts.bios.is_some() {
            head.extend(boot_record(places.catalog_lba));
        }
        // After the boot record, which El Torito wants at sector 17.
        if opts.joliet {
            let root = &jdirs[0];
            let rec = record(&[0], root.lba, root.sectors * SECTOR_U32, root_date, true, &[]);
            let (len, l, m) = (plan.j_path_table_len, plan.j_l_table, plan.j_m_table);
            head.extend(joliet::svd(&pvd, opts.volume_id, len, l, m, &rec));
        }
        head.extend(terminator());
        // Path tables.
        for big in [false, true] {
            head.extend(table(dirs, big));
            pad_to_sector(&mut head);
        }
        if opts.joliet {
            for big in [false, true] {
                head.extend(table(jdirs, big));
                pad_to_sector(&mut head);
            }
        }
        // Directories, then their continuation areas.
        let mut ce_area = vec![0u8; plan.ce_sectors as usize * SECTOR];
        let mut next = plan.ce_allocs.iter();
        for di in 0..dirs.len() {
            let mut placed = Vec::new();
            let mut alloc = |_len: usize| {
                let at = *next.next().expect("the same continuation areas as when sizing");
                placed.push(at);
                (plan.ce_lba + at.0, at.1)
            };
            let (records, areas) = self.dir_records(dirs, di, places, &extent, &mut alloc)?;
            for (at, area) in placed.iter().zip(&areas) {
                let start = at.0 as usize * SECTOR + at.1 as usize;
                ce_area[start..start + area.len()].copy_from_slice(area);
            }
            put_records(&mut head, &records);
            debug_assert_eq!(head.len(), (dirs[di].lba + dirs[di].sectors) as usize * SECTOR);
        }
        head.extend(ce_area);
        for j in 0..jdirs.len() {
            put_records(&mut head, &self.joliet_records(jdirs, &plan.jdir_of, j, &extent));
        }
        if let (Some(b), Some(blob)) = (&opts.bios, boot_blob) {
            head.extend(isolinux::bios_catalog(places.blob_lba[blob as usize], b.load_sectors));
        }
        Ok(head)
    }

    /// Lays the volume out: its head and the extents of the files, in order.
    fn layout(
        &self,
        opts: &IsoOptions<'_>,
        boot_blob: Option<u32>,
    ) -> Result<Layout, IsoWriteError> {
        let plan = self.plan(opts)?;
        let head = self.head(&plan, opts, boot_blob)?;
        let files = plan
            .order
            .iter()
            .map(|&b| Extent {
                file: b,
                lba: plan.places.blob_lba[b as usize],
                len: self.blobs[b as usize].len,
            })
            .collect();
        Ok(Layout { head, files, total: plan.total })
    }

    /// Copies a blob from the spool to `out`, the boot file with its boot info table patched.
    fn copy_blob(
        &mut self,
        extent: &Extent,
        boot_blob: Option<u32>,
        buf: &mut [u8],
        out: &mut dyn Write,
    ) -> Result<(), IsoWriteError> {
        let blob = self.blobs[extent.file as usize];
        self.spool.seek(SeekFrom::Start(blob.offset)).map_err(IsoWriteError::Spool)?;
        if Some(extent.file) == boot_blob {
            let mut image = vec![0u8; usize_of(blob.len)];
            self.spool.read_exact(&mut image).map_err(IsoWriteError::Spool)?;
            isolinux::patch_boot_info_table(&mut image, PVD_LBA, extent.lba)
                .map_err(IsoWriteError::Boot)?;
            return out.write_all(&image).map_err(IsoWriteError::Write);
        }
        let mut left = blob.len;
        while left > 0 {
            let k = usize_of(left.min(buf.len() as u64));
            self.spool.read_exact(&mut buf[..k]).map_err(IsoWriteError::Spool)?;
            out.write_all(&buf[..k]).map_err(IsoWriteError::Write)?;
            left -= k as u64;
        }
        Ok(())
    }

    /// Writes the volume to `out`; returns its length in bytes.
    pub fn write<W: Write>(mut self, opts: &IsoOptions<'_>, out: W) -> Result<u64, IsoWriteError> {
        let boot_blob = self.add_catalog(opts)?;
        let layout = self.layout(opts, boot_blob)?;
        let mut buf = vec![0u8; 256 * 1024];
        emit(&layout, out, &mut |extent, out| self.copy_blob(extent, boot_blob, &mut buf, out))
    }
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

    /// Each file's sectors were added to the next LBA unchecked: files that each fit (under
    /// 4 GiB) but together pass ISO 9660's 2^32 sectors wrapped the u32 (a panic in debug, in
    /// release extents laid over the volume's own head, and a "total" that always fitted).
    #[test]
    fn files_past_2_pow_32_sectors_in_all_are_refused_not_wrapped() {
        let mut t = IsoTree::new(std::io::Cursor::new(Vec::new()));
        // 2049 files of 2^21 sectors: one sector's worth over u32::MAX.
        for i in 0..2049u32 {
            t.blobs.push(Blob { offset: 0, len: u64::from(u32::MAX) });
            let path = format!("f{i}");
            let (parent, name) = t.parent_of(&path).unwrap();
            let meta = Meta::synthesized(0o644);
            t.place(parent, Node { name: name.to_string(), meta, kind: Kind::File(i) });
        }
        let err = t.write(&PLAIN, std::io::sink()).unwrap_err();
        assert!(matches!(err, IsoWriteError::VolumeTooLarge { .. }), "{err}");
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
