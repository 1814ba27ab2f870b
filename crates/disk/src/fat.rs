//! A FAT16/FAT32 volume writer for the few files a boot partition holds.
//!
//! Ours rather than the `fatfs` crate: `fatfs` formats and then edits a volume in place through
//! `Read + Write + Seek`, which needs the whole volume as a seekable file and stamps the host's
//! clock unless patched; here the layout is computed up front (every file contiguous, clusters
//! handed out in path order) so the volume streams out in one pass and its bytes depend only on
//! the inputs: timestamps are LinuxKit's epoch, the serial comes from the caller (a content
//! hash).
//!
//! FAT16 is used while the data region fits 65,524 clusters of 512 bytes (volumes up to 32 MiB),
//! FAT32 beyond (the cluster count alone decides the type, as the FAT specification says).
//! FAT32's clusters grow with the volume as the specification's table does (fatgen103,
//! `DskTableFAT32`): 512 bytes up to 260 MiB, 4 KiB up to 8 GiB, then 8, 16 and 32 KiB, which
//! keeps the two tables at 0.2% of any volume over 260 MiB (at 512-byte clusters, 1.6%: a 1 GiB
//! volume would carry 16 MiB of tables, to write and, for vmdk and gcp, to compress). Just over
//! 32 MiB, where FAT32 would get too few clusters to count as FAT32, FAT16 takes 1 KiB clusters.
//! Names are 8.3 names; a lower-case base or extension (`config.txt`) is stored upper case with
//! Windows NT's case flags, as Windows writes it, and reads back lower case on Linux.
//! Non-goals: long file names, FAT12, editing.

use crate::num::usize_of;
use crate::uki::write_zeros;
use baleen_tree::{Civil, DEFAULT_MTIME};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};

pub const SECTOR: u64 = 512;
/// LinuxKit's epoch (2017-04-18 16:30:00) as FAT's date and time fields.
const EPOCH: Civil = Civil::of(DEFAULT_MTIME);
// 2017 - 1980 fits the date's 7-bit year; the other fields are u8 already.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
const FAT_DATE: u16 =
    (((EPOCH.year - 1980) as u16) << 9) | ((EPOCH.month as u16) << 5) | EPOCH.day as u16;
const FAT_TIME: u16 = (u16::from_le_bytes([EPOCH.hour, 0]) << 11)
    | (u16::from_le_bytes([EPOCH.minute, 0]) << 5)
    | (u16::from_le_bytes([EPOCH.second, 0]) / 2);
const FAT16_MAX_CLUSTERS: u64 = 65_524;
const FAT16_ROOT_ENTRIES: u64 = 512;

#[derive(Debug, thiserror::Error)]
pub enum FatError {
    #[error(
        "FAT name {path:?}: each part must be an 8.3 name whose base and extension are each \
         all upper or all lower case (A-Z a-z 0-9 _ -)"
    )]
    BadName { path: String },
    #[error("FAT path {path:?} is both a file and a directory")]
    Clash { path: String },
    #[error("{needed} bytes of files and directories do not fit a {size}-byte FAT volume")]
    TooSmall { needed: u64, size: u64 },
    #[error("FAT volume of {size} bytes is too small (at least 4 MiB)")]
    Tiny { size: u64 },
    #[error("reading {path:?} into the FAT volume")]
    Read { path: String, source: io::Error },
    #[error("file {path:?} gave {got} bytes, {want} were announced")]
    Length { path: String, got: u64, want: u64 },
    #[error("writing the FAT volume")]
    Write { source: io::Error },
    #[error(
        "file {path:?} is {len} bytes; a FAT file holds at most 4 GiB - 1 ({} bytes)",
        u32::MAX
    )]
    FileTooLarge { path: String, len: u64 },
    #[error(
        "FAT volume of {size} bytes is too large: its sector count is 32-bit, at most {} bytes",
        u64::from(u32::MAX) * SECTOR
    )]
    VolumeTooLarge { size: u64 },
}

/// One file of the volume: `path` like `EFI/BOOT/BOOTX64.EFI`, `len` bytes read from `data`.
pub struct FatFile<'a> {
    pub path: String,
    pub len: u64,
    pub data: &'a mut dyn Read,
}

impl std::fmt::Debug for FatFile<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FatFile").field("path", &self.path).field("len", &self.len).finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatType {
    Fat16,
    Fat32,
}

/// The fixed parts of a volume.
#[derive(Debug, Clone)]
pub struct FatOptions {
    /// Volume size in bytes (a multiple of 512).
    pub size: u64,
    pub serial: u32,
    /// Up to 11 characters, upper case.
    pub label: String,
    /// Sectors before the volume on its disk (BPB "hidden sectors").
    pub hidden_sectors: u32,
    /// A boot loader's boot sector (SYSLINUX's): its jump (bytes 0–2) and its code (bytes
    /// 90–509, after the largest BPB, FAT32's) replace ours, our BPB stays, as `syslinux
    /// --install` merges them. `None`: a boot sector that halts.
    pub boot_code: Option<Box<[u8; 512]>>,
}

/// A directory, by path ("" is the root), with its children.
#[derive(Debug, Default)]
struct Dir {
    dirs: BTreeMap<String, ()>,
    files: BTreeMap<String, usize>,
}

struct Geometry {
    kind: FatType,
    sectors: u64,
    /// Sectors per cluster.
    spc: u64,
    reserved: u64,
    fat_sectors: u64,
    root_sectors: u64,
    clusters: u64,
}

impl Geometry {
    fn new(size: u64) -> Result<Geometry, FatError> {
        let sectors = size / SECTOR;
        if sectors < 8192 {
            return Err(FatError::Tiny { size });
        }
        // The boot sector counts sectors in 32 bits; every cluster number, FAT size and free
        // count below is smaller than that, so they fit their 32-bit fields too.
        if u32::try_from(sectors).is_err() {
            return Err(FatError::VolumeTooLarge { size });
        }
        // FAT16 keeps one 512-byte cluster: its volumes are small. FAT32 follows the
        // specification's table, so that the volume looks like any formatted by mkfs.fat or
        // Windows.
        let fat16 = Self::solve(FatType::Fat16, sectors, 1);
        if fat16.clusters <= FAT16_MAX_CLUSTERS {
            return Ok(fat16);
        }
        let spc = match size {
            s if s <= 260 << 20 => 1,
            s if s <= 8 << 30 => 8,
            s if s <= 16 << 30 => 16,
            s if s <= 32 << 30 => 32,
            _ => 64,
        };
        let fat32 = Self::solve(FatType::Fat32, sectors, spc);
        // Readers tell the type by the cluster count alone, and FAT32's larger tables leave a
        // volume just over FAT16's limit (32.26 to 32.5 MiB) short of 65,525 clusters: there
        // FAT16 takes two sectors a cluster instead. The specification asks for a margin of 16.
        if fat32.clusters <= FAT16_MAX_CLUSTERS + 16 {
            return Ok(Self::solve(FatType::Fat16, sectors, 2));
        }
        Ok(fat32)
    }

    fn solve(kind: FatType, sectors: u64, spc: u64) -> Geometry {
        let (reserved, root_sectors, entry) = match kind {
            FatType::Fat16 => (4, FAT16_ROOT_ENTRIES * 32 / SECTOR, 2),
            FatType::Fat32 => (32, 0, 4),
        };
        let fat_for = |clusters: u64| ((clusters + 2) * entry).div_ceil(SECTOR);
        let rest = |fat_sectors: u64| (sectors - reserved - 2 * fat_sectors - root_sectors) / spc;
        // Find a table size that exactly covers the clusters left beside it. A few rounds
        // settle it; should they not, the larger table (which covers any fewer clusters) wins.
        let mut fat_sectors = fat_for(sectors);
        for _ in 0..16 {
            let next = fat_for(rest(fat_sectors));
            if next == fat_sectors {
                break;
            }
            fat_sectors = next.max(fat_for(rest(next)));
        }
        // Start the data region on a cluster boundary, as mkfs.fat does (reserved sectors take
        // up the difference): clusters then line up with the disk's 4 KiB blocks.
        let reserved = reserved + (spc - (reserved + 2 * fat_sectors + root_sectors) % spc) % spc;
        let clusters = (sectors - reserved - 2 * fat_sectors - root_sectors) / spc;
        Geometry { kind, sectors, spc, reserved, fat_sectors, root_sectors, clusters }
    }

    fn cluster_bytes(&self) -> u64 {
        self.spc * SECTOR
    }

    fn data_start(&self) -> u64 {
        self.reserved + 2 * self.fat_sectors + self.root_sectors
    }
}

/// The bytes a set of files needs beyond their own data, to size a volume: directory clusters,
/// the FATs and reserved sectors, rounded generously.
pub fn min_volume_size(files: &[(&str, u64)]) -> u64 {
    let data: u64 = files.iter().map(|(_, len)| len.div_ceil(SECTOR) * SECTOR).sum();
    let dirs = (files.len() as u64 * 4 + 1) * 4 * SECTOR;
    // FAT32's two tables at 4 bytes per 512-byte cluster, plus reserved sectors and root. Larger
    // clusters come only over 260 MiB, where this allowance (over 4 MiB) is many times their
    // rounding of a boot partition's few files and directories.
    let overhead = data / 64 + 64 * 1024;
    (data + dirs + overhead).max(4 << 20)
}

/// Byte 12 of a directory entry: the name's base, its extension, is lower case (Windows NT's
/// flags, which Linux's vfat and mtools honour): `config.txt` stays one 8.3 entry.
const LOWER_BASE: u8 = 0x08;
const LOWER_EXT: u8 = 0x10;

/// The 11-byte short name of `part` and its case flags. Each of base and extension is upper
/// case or lower case as a whole (digits, `_` and `-` go with either).
fn check_name(part: &str, path: &str) -> Result<([u8; 11], u8), FatError> {
    let bad = || FatError::BadName { path: path.to_string() };
    let (base, ext) = part.split_once('.').unwrap_or((part, ""));
    let plain = |b: u8| b.is_ascii_digit() || b == b'_' || b == b'-';
    let ok = |s: &str, max: usize| {
        s.len() <= max
            && (s.bytes().all(|b| b.is_ascii_uppercase() || plain(b))
                || s.bytes().all(|b| b.is_ascii_lowercase() || plain(b)))
    };
    if base.is_empty() || !ok(base, 8) || !ok(ext, 3) {
        return Err(bad());
    }
    let lower =
        |s: &str, flag: u8| if s.bytes().any(|b| b.is_ascii_lowercase()) { flag } else { 0 };
    let flags = lower(base, LOWER_BASE) | lower(ext, LOWER_EXT);
    let mut name = [b' '; 11];
    name[..base.len()].copy_from_slice(base.to_ascii_uppercase().as_bytes());
    name[8..8 + ext.len()].copy_from_slice(ext.to_ascii_uppercase().as_bytes());
    Ok((name, flags))
}

fn dir_entry(name: [u8; 11], attr: u8, cluster: u32, size: u32) -> [u8; 32] {
    let mut e = [0u8; 32];
    e[..11].copy_from_slice(&name);
    e[11] = attr;
    e[14..16].copy_from_slice(&FAT_TIME.to_le_bytes());
    e[16..18].copy_from_slice(&FAT_DATE.to_le_bytes());
    e[18..20].copy_from_slice(&FAT_DATE.to_le_bytes());
    let cluster = cluster.to_le_bytes();
    e[20..22].copy_from_slice(&cluster[2..4]); // high half
    e[22..24].copy_from_slice(&FAT_TIME.to_le_bytes());
    e[24..26].copy_from_slice(&FAT_DATE.to_le_bytes());
    e[26..28].copy_from_slice(&cluster[..2]); // low half
    e[28..32].copy_from_slice(&size.to_le_bytes());
    e
}

/// What sits in the data region, in order: a run of clusters per directory and file.
enum Extent {
    /// A directory's bytes, built in memory (small).
    Dir(Vec<u8>),
    /// File `index`, `len` bytes.
    File(usize, u64),
}

/// Where every directory and file of a volume goes: computed from names and lengths alone, so
/// that a caller can learn a file's sectors before writing it ([`file_sectors`]).
struct Plan {
    geo: Geometry,
    dirs: BTreeMap<String, Dir>,
    /// First cluster and cluster count of each directory (FAT16's root has none).
    dir_cluster: BTreeMap<String, (u64, u64)>,
    /// First cluster (0 when empty) and cluster count of each file, by index.
    file_cluster: Vec<(u64, u64)>,
    /// File indices in path order: the order of their data.
    by_path: Vec<usize>,
    /// The first unused cluster.
    next: u64,
}

impl Plan {
    fn new(files: &[(&str, u64)], size: u64) -> Result<Plan, FatError> {
        let geo = Geometry::new(size)?;
        // The directory tree, from the file paths.
        let mut dirs: BTreeMap<String, Dir> = BTreeMap::new();
        dirs.insert(String::new(), Dir::default());
        for (i, &(path, len)) in files.iter().enumerate() {
            // A directory entry's size field is 32 bits: a bigger file would wrap silently.
            if u32::try_from(len).is_err() {
                return Err(FatError::FileTooLarge { path: path.to_string(), len });
            }
            let parts: Vec<&str> = path.split('/').collect();
            let mut parent = String::new();
            for (depth, part) in parts.iter().enumerate() {
                check_name(part, path)?;
                let here =
                    if parent.is_empty() { part.to_string() } else { format!("{parent}/{part}") };
                let last = depth + 1 == parts.len();
                let clash = FatError::Clash { path: here.clone() };
                let entry = dirs.get_mut(&parent).expect("parents are made first");
                // `config.txt` and `CONFIG.TXT` would be one short name twice.
                let mut names = entry.dirs.keys().chain(entry.files.keys());
                if names.any(|k| k != part && k.eq_ignore_ascii_case(part)) {
                    return Err(clash);
                }
                if last {
                    if entry.dirs.contains_key(*part)
                        || entry.files.insert(part.to_string(), i).is_some()
                    {
                        return Err(clash);
                    }
                } else {
                    if entry.files.contains_key(*part) {
                        return Err(clash);
                    }
                    entry.dirs.insert(part.to_string(), ());
                    dirs.entry(here.clone()).or_default();
                }
                parent = here;
            }
        }

        // Clusters: directories first (in path order; FAT32's root is one of them), then files.
        let mut next: u64 = 2;
        let mut dir_cluster: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for (path, d) in &dirs {
            if path.is_empty() && geo.kind == FatType::Fat16 {
                continue; // FAT16's root has its own fixed region
            }
            let entries = d.dirs.len() + d.files.len() + if path.is_empty() { 1 } else { 2 };
            let n = ((entries as u64 + 1) * 32).div_ceil(geo.cluster_bytes());
            dir_cluster.insert(path.clone(), (next, n));
            next += n;
        }
        let mut file_cluster = vec![(0u64, 0u64); files.len()];
        let mut by_path: Vec<usize> = (0..files.len()).collect();
        by_path.sort_by(|a, b| files[*a].0.cmp(files[*b].0));
        for &i in &by_path {
            let n = files[i].1.div_ceil(geo.cluster_bytes());
            file_cluster[i] = (if n == 0 { 0 } else { next }, n);
            next += n;
        }
        let used = next - 2;
        if used > geo.clusters {
            return Err(FatError::TooSmall { needed: used * geo.cluster_bytes(), size });
        }
        Ok(Plan { geo, dirs, dir_cluster, file_cluster, by_path, next })
    }

    /// The sector (from the volume's start) of a cluster.
    fn sector_of(&self, cluster: u64) -> u64 {
        self.geo.data_start() + (cluster - 2) * self.geo.spc
    }
}

/// The FAT type [`write_fat`] chooses for a volume of `size` bytes.
pub fn fat_type(size: u64) -> Result<FatType, FatError> {
    Geometry::new(size).map(|g| g.kind)
}

/// The first sector (counted from the volume's start) of each file as [`write_fat`] lays out
/// `files` (path, length) on a volume of `size` bytes; 0 for an empty file. Every file is
/// contiguous, so a boot loader that must know where it lives (SYSLINUX's `ldlinux.sys`) can be
/// patched before it is written.
pub fn file_sectors(files: &[(&str, u64)], size: u64) -> Result<Vec<u64>, FatError> {
    let plan = Plan::new(files, size)?;
    Ok(plan.file_cluster.iter().map(|&(c, n)| if n == 0 { 0 } else { plan.sector_of(c) }).collect())
}

/// Writes a FAT volume of `opts.size` bytes holding `files` (and the directories their paths
/// name) to `out`.
pub fn write_fat<W: Write>(
    files: &mut [FatFile<'_>],
    opts: &FatOptions,
    mut out: W,
) -> Result<FatType, FatError> {
    let names: Vec<(&str, u64)> = files.iter().map(|f| (f.path.as_str(), f.len)).collect();
    let Plan { geo, dirs, dir_cluster, file_cluster, by_path, next } =
        Plan::new(&names, opts.size)?;
    let used = next - 2;
    let cluster_bytes = geo.cluster_bytes();

    // Directory contents.
    let cluster_of = |path: &str| field32(dir_cluster.get(path).map_or(0, |c| c.0));
    let mut extents = Vec::new();
    let mut root16 = Vec::new();
    for (path, d) in &dirs {
        let mut bytes = Vec::new();
        if path.is_empty() {
            bytes.extend_from_slice(&dir_entry(label_name(&opts.label), 0x08, 0, 0));
        } else {
            // ".." of a first-level directory says cluster 0, meaning the root, on FAT32 too.
            let parent = path.rsplit_once('/').map_or(0, |p| cluster_of(p.0));
            bytes.extend_from_slice(&dir_entry(*b".          ", 0x10, cluster_of(path), 0));
            bytes.extend_from_slice(&dir_entry(*b"..         ", 0x10, parent, 0));
        }
        // Sub-directories and files together, by name, as a listing would show them.
        let mut names: Vec<(&String, Option<usize>)> = d
            .dirs
            .keys()
            .map(|k| (k, None))
            .chain(d.files.iter().map(|(k, i)| (k, Some(*i))))
            .collect();
        names.sort();
        for (name, file) in names {
            let (short, case) = check_name(name, name)?;
            let mut entry = match file {
                None => {
                    let child =
                        if path.is_empty() { name.clone() } else { format!("{path}/{name}") };
                    dir_entry(short, 0x10, cluster_of(&child), 0)
                }
                Some(i) => {
                    let (path, len) = (&files[i].path, files[i].len);
                    let too_large = || FatError::FileTooLarge { path: path.clone(), len };
                    let size = u32::try_from(len).map_err(|_| too_large())?;
                    dir_entry(short, 0x20, field32(file_cluster[i].0), size)
                }
            };
            entry[12] = case;
            bytes.extend_from_slice(&entry);
        }
        match dir_cluster.get(path) {
            Some(&(_, n)) => {
                bytes.resize(usize_of(n * cluster_bytes), 0);
                extents.push(Extent::Dir(bytes));
            }
            None => root16 = bytes,
        }
    }
    for &i in &by_path {
        extents.push(Extent::File(i, files[i].len));
    }

    let w = |source| FatError::Write { source };
    // Boot sector, FSInfo and backups.
    let boot = boot_sector(&geo, opts);
    let mut reserved = vec![0u8; usize_of(geo.reserved * SECTOR)];
    reserved[..512].copy_from_slice(&boot);
    if geo.kind == FatType::Fat32 {
        let info = fs_info(geo.clusters - used, next);
        reserved[512..1024].copy_from_slice(&info);
        reserved[6 * 512..7 * 512].copy_from_slice(&boot);
        reserved[7 * 512..8 * 512].copy_from_slice(&info);
    }
    out.write_all(&reserved).map_err(w)?;

    // The two FATs: every run is one chain, the clusters of the next run follow.
    let mut runs: Vec<(u64, u64)> = dir_cluster.values().copied().collect();
    runs.extend(file_cluster.iter().copied().filter(|r| r.1 > 0));
    runs.sort();
    for _ in 0..2 {
        let mut fat = FatStream::new(geo.kind, &mut out);
        fat.push(match geo.kind {
            FatType::Fat16 => 0xfff8,
            FatType::Fat32 => 0x0fff_fff8,
        })
        .map_err(w)?;
        fat.push(match geo.kind {
            FatType::Fat16 => 0xffff,
            FatType::Fat32 => 0x0fff_ffff,
        })
        .map_err(w)?;
        for &(start, n) in &runs {
            for c in start..start + n {
                let v = if c + 1 == start + n { fat.eoc() } else { field32(c + 1) };
                fat.push(v).map_err(w)?;
            }
        }
        let written = fat.count;
        let total_bytes = geo.fat_sectors * SECTOR;
        let entry = if geo.kind == FatType::Fat16 { 2 } else { 4 };
        fat.flush().map_err(w)?;
        write_zeros(&mut out, total_bytes - written * entry).map_err(w)?;
    }
    if geo.kind == FatType::Fat16 {
        root16.resize(usize_of(geo.root_sectors * SECTOR), 0);
        out.write_all(&root16).map_err(w)?;
    }

    for e in extents {
        match e {
            Extent::Dir(bytes) => out.write_all(&bytes).map_err(w)?,
            Extent::File(i, len) => {
                let f = &mut files[i];
                let got = io::copy(&mut (&mut f.data).take(len), &mut out)
                    .map_err(|source| FatError::Read { path: f.path.clone(), source })?;
                if got != len {
                    return Err(FatError::Length { path: f.path.clone(), got, want: len });
                }
                write_zeros(&mut out, len.div_ceil(cluster_bytes) * cluster_bytes - len)
                    .map_err(w)?;
            }
        }
    }
    let written = (geo.data_start() + used * geo.spc) * SECTOR;
    write_zeros(&mut out, opts.size - written).map_err(w)?;
    Ok(geo.kind)
}

fn label_name(label: &str) -> [u8; 11] {
    let mut name = [b' '; 11];
    for (d, s) in name.iter_mut().zip(label.bytes()) {
        *d = s.to_ascii_uppercase();
    }
    name
}

// The narrow fields fit: sectors per cluster <= 64, reserved sectors <= 95, FAT16's sector
// count is written as u16 only under 65,536, its FATs take at most 256 sectors.
#[allow(clippy::cast_possible_truncation)]
fn boot_sector(geo: &Geometry, opts: &FatOptions) -> [u8; 512] {
    let mut b = [0u8; 512];
    let fat32 = geo.kind == FatType::Fat32;
    b[..3].copy_from_slice(if fat32 { &[0xeb, 0x58, 0x90] } else { &[0xeb, 0x3c, 0x90] });
    b[3..11].copy_from_slice(b"BALEEN  ");
    b[11..13].copy_from_slice(&(SECTOR as u16).to_le_bytes());
    b[13] = geo.spc as u8;
    b[14..16].copy_from_slice(&(geo.reserved as u16).to_le_bytes());
    b[16] = 2;
    let root_entries = if fat32 { 0 } else { FAT16_ROOT_ENTRIES as u16 };
    b[17..19].copy_from_slice(&root_entries.to_le_bytes());
    if geo.sectors < 65_536 && !fat32 {
        b[19..21].copy_from_slice(&(geo.sectors as u16).to_le_bytes());
    } else {
        b[32..36].copy_from_slice(&field32(geo.sectors).to_le_bytes());
    }
    b[21] = 0xf8;
    if !fat32 {
        b[22..24].copy_from_slice(&(geo.fat_sectors as u16).to_le_bytes());
    }
    b[24..26].copy_from_slice(&32u16.to_le_bytes()); // sectors per track
    b[26..28].copy_from_slice(&64u16.to_le_bytes()); // heads
    b[28..32].copy_from_slice(&opts.hidden_sectors.to_le_bytes());
    let ext = if fat32 {
        b[36..40].copy_from_slice(&field32(geo.fat_sectors).to_le_bytes());
        b[44..48].copy_from_slice(&2u32.to_le_bytes()); // root cluster
        b[48..50].copy_from_slice(&1u16.to_le_bytes()); // FSInfo sector
        b[50..52].copy_from_slice(&6u16.to_le_bytes()); // backup boot sector
        64
    } else {
        36
    };
    b[ext] = 0x80;
    b[ext + 2] = 0x29;
    b[ext + 3..ext + 7].copy_from_slice(&opts.serial.to_le_bytes());
    b[ext + 7..ext + 18].copy_from_slice(&label_name(&opts.label));
    b[ext + 18..ext + 26].copy_from_slice(if fat32 { b"FAT32   " } else { b"FAT16   " });
    // Not a BIOS boot sector: halt if something tries to run it.
    b[ext + 26..ext + 29].copy_from_slice(&[0xfa, 0xf4, 0xeb]);
    b[ext + 29] = 0xfd;
    if let Some(code) = &opts.boot_code {
        b[..3].copy_from_slice(&code[..3]);
        b[90..510].copy_from_slice(&code[90..510]);
    }
    b[510] = 0x55;
    b[511] = 0xaa;
    b
}

/// A sector or cluster count or number of this volume as its 32-bit field. Geometry::new
/// refuses volumes past u32::MAX sectors, and every such number is smaller.
#[allow(clippy::cast_possible_truncation)]
fn field32(n: u64) -> u32 {
    debug_assert!(u32::try_from(n).is_ok(), "{n} past a FAT volume's 32-bit numbers");
    n as u32
}

fn fs_info(free: u64, next_free: u64) -> [u8; 512] {
    let mut b = [0u8; 512];
    b[..4].copy_from_slice(&0x4161_5252u32.to_le_bytes());
    b[484..488].copy_from_slice(&0x6141_7272u32.to_le_bytes());
    b[488..492].copy_from_slice(&field32(free).to_le_bytes());
    b[492..496].copy_from_slice(&field32(next_free).to_le_bytes());
    b[508..512].copy_from_slice(&0xaa55_0000u32.to_le_bytes());
    b
}

/// FAT entries out through a small buffer.
struct FatStream<'w, W: Write> {
    kind: FatType,
    out: &'w mut W,
    buf: Vec<u8>,
    count: u64,
}

impl<'w, W: Write> FatStream<'w, W> {
    fn new(kind: FatType, out: &'w mut W) -> Self {
        FatStream { kind, out, buf: Vec::with_capacity(1 << 16), count: 0 }
    }
    fn eoc(&self) -> u32 {
        match self.kind {
            FatType::Fat16 => 0xffff,
            FatType::Fat32 => 0x0fff_ffff,
        }
    }
    fn push(&mut self, v: u32) -> io::Result<()> {
        match self.kind {
            // FAT16 entries are under 0x10000: at most 65,524 clusters, markers 0xfff8-0xffff.
            FatType::Fat16 => self.buf.extend_from_slice(&v.to_le_bytes()[..2]),
            FatType::Fat32 => self.buf.extend_from_slice(&v.to_le_bytes()),
        }
        self.count += 1;
        if self.buf.len() >= 1 << 16 {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
    fn flush(self) -> io::Result<()> {
        self.out.write_all(&self.buf)
    }
}

#[cfg(test)]
#[path = "fat_tests.rs"]
mod tests;
