//! FAT volumes read back (`baleen verify`): every file and directory of a FAT12/16/32 volume,
//! with where its clusters lie, so that two volumes can be compared file by file.
//!
//! Key items: [`looks_like_fat`] (a boot sector's signature and BPB), [`fat_files`] (the
//! volume's entries, depth first: [`FatEntry`] with its path and its data as byte runs of the
//! volume). Long names (VFAT) are read when present, 8.3 names otherwise.
//!
//! Bounded by the volume: a FAT larger than [`MAX_FAT_BYTES`], a cluster chain longer than the
//! volume has clusters (a loop), a cluster claimed by two chains (cross-linked files, which
//! would otherwise let many entries share one long chain), a directory reached twice or nested
//! past [`MAX_DEPTH`] levels are errors. Non-goals: exFAT, checking the second FAT copy, free-space accounting.

use std::collections::HashSet;
use std::io::{self, Read, Seek, SeekFrom};

/// The largest FAT read into memory (a FAT32 volume of 32 GiB with 4 KiB clusters has 32 MiB).
pub const MAX_FAT_BYTES: u64 = 64 << 20;
/// Directory nesting past this is refused.
pub const MAX_DEPTH: usize = 64;
/// A directory larger than this is refused (65,536 entries of 32 bytes, FAT's own limit).
const MAX_DIR_BYTES: u64 = 2 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FatReadError {
    #[error("reading the FAT volume at byte {offset}")]
    Read { offset: u64, source: io::Error },
    #[error("the FAT volume's {what}")]
    Malformed { what: String },
}

fn bad(what: impl Into<String>) -> FatReadError {
    FatReadError::Malformed { what: what.into() }
}

/// One file or directory of a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatEntry {
    /// `EFI/BOOT/BOOTX64.EFI`: the long name where there is one.
    pub path: String,
    pub dir: bool,
    /// The directory entry's size (0 for directories).
    pub size: u64,
    /// The file's bytes as (offset in the volume, length) runs, in file order, covering `size`.
    pub runs: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Width {
    Fat12,
    Fat16,
    Fat32,
}

struct Volume {
    bytes_per_cluster: u64,
    /// Byte offset of cluster 2.
    data_at: u64,
    clusters: u64,
    width: Width,
    fat: Vec<u8>,
    /// FAT12/16's fixed root directory (offset, length); FAT32's root cluster otherwise.
    root: Root,
}

enum Root {
    Fixed(u64, u64),
    Cluster(u32),
}

fn le16(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn le32(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}

/// Whether a 512-byte boot sector is a FAT volume's: the 0x55AA signature and a sane BPB.
pub fn looks_like_fat(boot: &[u8]) -> bool {
    boot.len() >= 512
        && boot[510..512] == [0x55, 0xaa]
        && matches!(le16(boot, 11), 512 | 1024 | 2048 | 4096)
        && boot[13].is_power_of_two()
        && le16(boot, 14) >= 1
        && (1..=2).contains(&boot[16])
}

fn read_at<R: Read + Seek>(r: &mut R, offset: u64, buf: &mut [u8]) -> Result<(), FatReadError> {
    let err = |source| FatReadError::Read { offset, source };
    r.seek(SeekFrom::Start(offset)).map_err(err)?;
    r.read_exact(buf).map_err(err)
}

impl Volume {
    fn open<R: Read + Seek>(r: &mut R, start: u64, len: u64) -> Result<Volume, FatReadError> {
        let mut b = [0u8; 512];
        read_at(r, start, &mut b)?;
        if !looks_like_fat(&b) {
            return Err(bad("boot sector has no FAT signature or BPB"));
        }
        let bps = le16(&b, 11);
        let spc = u64::from(b[13]);
        let reserved = le16(&b, 14);
        let fats = u64::from(b[16]);
        let root_entries = le16(&b, 17);
        let total = if le16(&b, 19) != 0 { le16(&b, 19) } else { le32(&b, 32) };
        let fat_sectors = if le16(&b, 22) != 0 { le16(&b, 22) } else { le32(&b, 36) };
        let root_sectors = (root_entries * 32).div_ceil(bps);
        let first_data = reserved + fats * fat_sectors + root_sectors;
        if total * bps > len || first_data >= total {
            return Err(bad(format!("BPB: {total} sectors of {bps} bytes in a {len}-byte volume")));
        }
        let clusters = (total - first_data) / spc;
        let width = match clusters {
            0..4085 => Width::Fat12,
            4085..65525 => Width::Fat16,
            _ => Width::Fat32,
        };
        let fat_bytes = fat_sectors * bps;
        if fat_bytes > MAX_FAT_BYTES {
            return Err(bad(format!("FAT of {fat_bytes} bytes (at most {MAX_FAT_BYTES} read)")));
        }
        let mut fat = vec![0u8; usize::try_from(fat_bytes).map_err(|_| bad("FAT size"))?];
        read_at(r, start + reserved * bps, &mut fat)?;
        let root = match width {
            Width::Fat32 => Root::Cluster(u32::try_from(le32(&b, 44)).unwrap_or(0)),
            _ => Root::Fixed(start + (reserved + fats * fat_sectors) * bps, root_entries * 32),
        };
        Ok(Volume {
            bytes_per_cluster: bps * spc,
            data_at: start + first_data * bps,
            clusters,
            width,
            fat,
            root,
        })
    }
}

/// What a walk has claimed: directories entered, and a bit per cluster of the FAT.
struct Claims {
    dirs: HashSet<u64>,
    clusters: Vec<u64>,
}

impl Claims {
    fn new(v: &Volume) -> Claims {
        let entries = match v.width {
            Width::Fat12 => v.fat.len() * 2 / 3,
            Width::Fat16 => v.fat.len() / 2,
            Width::Fat32 => v.fat.len() / 4,
        };
        Claims { dirs: HashSet::new(), clusters: vec![0; entries.div_ceil(64)] }
    }

    /// Claims cluster `c` for the chain from `first`: refused when another chain has it.
    fn claim(&mut self, c: u32, first: u32) -> Result<(), FatReadError> {
        let i = usize::try_from(c).map_err(|_| bad("cluster number"))?;
        let word = self
            .clusters
            .get_mut(i / 64)
            .ok_or_else(|| bad(format!("cluster {c} past the end of the FAT")))?;
        let bit = 1u64 << (i % 64);
        if *word & bit != 0 {
            return Err(bad(format!(
                "cluster {c} claimed twice (again by the chain from {first})"
            )));
        }
        *word |= bit;
        Ok(())
    }
}

impl Volume {
    /// The FAT entry of cluster `c`: `None` at the end of a chain.
    fn next(&self, c: u32) -> Result<Option<u32>, FatReadError> {
        let i = usize::try_from(c).map_err(|_| bad("cluster number"))?;
        let get =
            |at: usize, n: usize| self.fat.get(at..at + n).ok_or_else(|| bad("FAT too short"));
        let (v, end) = match self.width {
            Width::Fat12 => {
                let b = get(i + i / 2, 2)?;
                let v = u32::from(u16::from_le_bytes([b[0], b[1]]));
                (if i % 2 == 0 { v & 0xfff } else { v >> 4 }, 0xff8)
            }
            Width::Fat16 => {
                let b = get(2 * i, 2)?;
                (u32::from(u16::from_le_bytes([b[0], b[1]])), 0xfff8)
            }
            Width::Fat32 => {
                let b = get(4 * i, 4)?;
                (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & 0x0fff_ffff, 0x0fff_fff8)
            }
        };
        if v >= end {
            return Ok(None);
        }
        if v < 2 || u64::from(v) >= self.clusters + 2 {
            return Err(bad(format!("cluster {c} links to {v}")));
        }
        Ok(Some(v))
    }

    /// The byte runs of the chain from `first`, `limit` bytes long at most.
    fn chain(
        &self,
        first: u32,
        limit: u64,
        claims: &mut Claims,
    ) -> Result<Vec<(u64, u64)>, FatReadError> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut got = 0u64;
        let mut c = Some(first);
        let mut steps = 0u64;
        while let Some(cl) = c {
            if got >= limit {
                break;
            }
            if cl < 2 || u64::from(cl) >= self.clusters + 2 {
                return Err(bad(format!("chain through cluster {cl}")));
            }
            steps += 1;
            if steps > self.clusters {
                return Err(bad(format!("cluster chain from {first} loops")));
            }
            claims.claim(cl, first)?;
            let at = self.data_at + (u64::from(cl) - 2) * self.bytes_per_cluster;
            let n = self.bytes_per_cluster.min(limit - got);
            match runs.last_mut() {
                Some((a, l)) if *a + *l == at => *l += n,
                _ => runs.push((at, n)),
            }
            got += n;
            c = self.next(cl)?;
        }
        Ok(runs)
    }
}

/// Every file and directory of the FAT volume at `[start, start + len)` of `r`, depth first in
/// directory order (see the module docs).
pub fn fat_files<R: Read + Seek>(
    r: &mut R,
    start: u64,
    len: u64,
) -> Result<Vec<FatEntry>, FatReadError> {
    let v = Volume::open(r, start, len)?;
    let mut claims = Claims::new(&v);
    let root = match v.root {
        Root::Fixed(at, n) => vec![(at, n)],
        Root::Cluster(c) => v.chain(c, MAX_DIR_BYTES, &mut claims)?,
    };
    let mut out = Vec::new();
    walk(r, &v, &root, "", 0, &mut claims, &mut out)?;
    Ok(out)
}

fn read_runs<R: Read + Seek>(r: &mut R, runs: &[(u64, u64)]) -> Result<Vec<u8>, FatReadError> {
    let mut out = Vec::new();
    for &(at, n) in runs {
        let from = out.len();
        out.resize(from + usize::try_from(n).map_err(|_| bad("run length"))?, 0);
        read_at(r, at, &mut out[from..])?;
    }
    Ok(out)
}

fn walk<R: Read + Seek>(
    r: &mut R,
    v: &Volume,
    runs: &[(u64, u64)],
    dir: &str,
    depth: usize,
    claims: &mut Claims,
    out: &mut Vec<FatEntry>,
) -> Result<(), FatReadError> {
    if depth > MAX_DEPTH {
        return Err(bad(format!("directory {dir} nested past {MAX_DEPTH} levels")));
    }
    let bytes = read_runs(r, runs)?;
    let mut long: Vec<(u8, [u16; 13])> = Vec::new();
    for e in bytes.chunks_exact(32) {
        match e[0] {
            0 => break,
            0xe5 => {
                long.clear();
                continue;
            }
            _ => {}
        }
        let attr = e[11];
        if attr & 0x3f == 0x0f {
            let mut part = [0u16; 13];
            for (i, at) in
                (1..11).step_by(2).chain((14..26).step_by(2)).chain((28..32).step_by(2)).enumerate()
            {
                part[i] = u16::from_le_bytes([e[at], e[at + 1]]);
            }
            long.push((e[0] & 0x3f, part));
            continue;
        }
        if attr & 0x08 != 0 {
            long.clear();
            continue; // the volume label
        }
        let name = name_of(e, &mut long);
        if name == "." || name == ".." {
            continue;
        }
        let path = if dir.is_empty() { name } else { format!("{dir}/{name}") };
        let first = u32::try_from((le16(e, 20) << 16) | le16(e, 26)).unwrap_or(0);
        if attr & 0x10 != 0 {
            if !claims.dirs.insert(u64::from(first)) || first == 0 {
                return Err(bad(format!("directory {path} reached twice (cluster {first})")));
            }
            let runs = v.chain(first, MAX_DIR_BYTES, claims)?;
            out.push(FatEntry { path: path.clone(), dir: true, size: 0, runs: runs.clone() });
            walk(r, v, &runs, &path, depth + 1, claims, out)?;
        } else {
            let size = le32(e, 28);
            let runs = if first == 0 { Vec::new() } else { v.chain(first, size, claims)? };
            if runs.iter().map(|r| r.1).sum::<u64>() != size {
                return Err(bad(format!("file {path}: {size} bytes, a shorter cluster chain")));
            }
            out.push(FatEntry { path, dir: false, size, runs });
        }
    }
    Ok(())
}

/// The entry's long name when the entries before it spell one, else its 8.3 name.
fn name_of(e: &[u8], long: &mut Vec<(u8, [u16; 13])>) -> String {
    let mut parts = std::mem::take(long);
    if !parts.is_empty() {
        parts.sort_by_key(|(ord, _)| *ord);
        let units: Vec<u16> =
            parts.iter().flat_map(|(_, p)| p.iter().copied()).take_while(|u| *u != 0).collect();
        if let Ok(name) = String::from_utf16(&units) {
            return name;
        }
    }
    let mut base = e[..8].to_vec();
    if base[0] == 0x05 {
        base[0] = 0xe5;
    }
    let base = String::from_utf8_lossy(&base).trim_end().to_string();
    let ext = String::from_utf8_lossy(&e[8..11]).trim_end().to_string();
    if ext.is_empty() {
        base
    } else {
        format!("{base}.{ext}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fat::{write_fat, FatFile, FatOptions};
    use std::io::Cursor;

    fn volume() -> Vec<u8> {
        let (a, b) = (vec![1u8; 9000], vec![2u8; 9000]);
        let (mut ra, mut rb) = (&a[..], &b[..]);
        let mut files = [
            FatFile { path: "A.BIN".into(), len: 9000, data: &mut ra },
            FatFile { path: "B.BIN".into(), len: 9000, data: &mut rb },
        ];
        let size = 8 << 20;
        let opts =
            FatOptions { size, serial: 1, label: "T".into(), hidden_sectors: 0, boot_code: None };
        let mut vol = Vec::new();
        write_fat(&mut files, &opts, &mut vol).unwrap();
        vol
    }

    fn entry(vol: &[u8], name83: &[u8; 11]) -> usize {
        vol.windows(11).position(|w| w == name83).expect("the 8.3 entry")
    }

    #[test]
    fn two_files_sharing_a_first_cluster_are_refused() {
        let mut vol = volume();
        let len = vol.len() as u64;
        assert_eq!(fat_files(&mut Cursor::new(&vol), 0, len).unwrap().len(), 2);
        // B.BIN's entry made to start at A.BIN's first cluster: a cross-link.
        let (a, b) = (entry(&vol, b"A       BIN"), entry(&vol, b"B       BIN"));
        let first = [vol[a + 20], vol[a + 21], vol[a + 26], vol[a + 27]];
        assert_ne!(first, [vol[b + 20], vol[b + 21], vol[b + 26], vol[b + 27]]);
        [vol[b + 20], vol[b + 21], vol[b + 26], vol[b + 27]] = first;
        let err = fat_files(&mut Cursor::new(&vol), 0, len).unwrap_err().to_string();
        assert!(err.contains("claimed twice"), "{err}");
    }
}
