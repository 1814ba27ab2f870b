//! Reading an ISO 9660 volume's file list back (for `baleen verify`): the primary directory
//! tree, with Rock Ridge `NM` names where the volume has them, each file as its path, the byte
//! offset of its extent and its length.
//!
//! Bounded: a directory is entered once (a second time is a loop, an error), nested at most
//! 64 deep, at most 64 MiB long; at most 2^20 files are listed.
//!
//! Non-goals: Joliet (the same files under UCS-2 names), multi-extent files, interleaving.

use crate::num::usize_of;
use std::collections::HashSet;
use std::io::{self, Read, Seek, SeekFrom};

const BLOCK: u64 = 2048;
/// Directories deeper than this are not what the writer makes: a loop in a hostile volume.
const MAX_DEPTH: usize = 64;
/// Bounds what a hostile volume makes us list.
const MAX_FILES: usize = 1 << 20;
/// A directory extent larger than this is not one the writer makes.
const MAX_DIR_BYTES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum IsoReadError {
    #[error("reading the ISO at offset {offset}")]
    Read { offset: u64, source: io::Error },
    #[error("not an ISO 9660 volume: {0}")]
    NotIso(&'static str),
    #[error("directory {path}: {what}")]
    Directory { path: String, what: &'static str },
}

/// One file of the volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoFile {
    /// `/boot/kernel` (Rock Ridge name), or `/BOOT/KERNEL` without Rock Ridge.
    pub path: String,
    pub offset: u64,
    pub len: u64,
}

fn read_at<R: Read + Seek>(r: &mut R, offset: u64, buf: &mut [u8]) -> Result<(), IsoReadError> {
    let err = |source| IsoReadError::Read { offset, source };
    r.seek(SeekFrom::Start(offset)).map_err(err)?;
    r.read_exact(buf).map_err(err)
}

fn u32le(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 4).map_or(0, |s| u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]])))
}

/// The files of the volume `r`, in directory order (depth first).
pub fn files<R: Read + Seek>(r: &mut R) -> Result<Vec<IsoFile>, IsoReadError> {
    let mut pvd = [0u8; usize_of(BLOCK)];
    read_at(r, 16 * BLOCK, &mut pvd)?;
    if pvd[0] != 1 || &pvd[1..6] != b"CD001" {
        return Err(IsoReadError::NotIso("no primary volume descriptor at sector 16"));
    }
    let root = &pvd[156..190];
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    walk(r, u32le(root, 2), u32le(root, 10), "", 0, &mut seen, &mut out)?;
    Ok(out)
}

fn walk<R: Read + Seek>(
    r: &mut R,
    extent: u64,
    len: u64,
    path: &str,
    depth: usize,
    seen: &mut HashSet<u64>,
    out: &mut Vec<IsoFile>,
) -> Result<(), IsoReadError> {
    let bad = |what| IsoReadError::Directory { path: format!("{path}/"), what };
    if depth > MAX_DEPTH {
        return Err(bad("nested too deep"));
    }
    // A directory entered again is a loop: walking it again would repeat (a directory that
    // names itself twice doubles the walk at every level).
    if !seen.insert(extent) {
        return Err(bad("a directory reached twice (a loop)"));
    }
    if len > MAX_DIR_BYTES {
        return Err(bad("directory extent too large"));
    }
    let mut dir = vec![0u8; usize::try_from(len).map_err(|_| bad("directory extent too large"))?];
    read_at(r, extent * BLOCK, &mut dir)?;
    let mut at = 0usize;
    let mut children = Vec::new();
    while at < dir.len() {
        let rec_len = usize::from(dir[at]);
        if rec_len == 0 {
            // Records do not cross sectors: the rest of this one is padding.
            at = (at / usize_of(BLOCK) + 1) * usize_of(BLOCK);
            continue;
        }
        let rec = dir.get(at..at + rec_len).ok_or_else(|| bad("record past the extent"))?;
        at += rec_len;
        if rec.len() < 34 {
            return Err(bad("record shorter than its fixed part"));
        }
        let name_len = usize::from(rec[32]);
        let raw = rec.get(33..33 + name_len).ok_or_else(|| bad("name past the record"))?;
        if raw == [0] || raw == [1] {
            continue; // `.` and `..`
        }
        let su = 33 + name_len + usize::from(name_len % 2 == 0);
        let name = rock_name(r, rec.get(su..).unwrap_or_default())?.unwrap_or_else(|| {
            let n = String::from_utf8_lossy(raw);
            let n = n.split(';').next().unwrap_or_default();
            n.strip_suffix('.').unwrap_or(n).to_string()
        });
        children.push((format!("{path}/{name}"), u32le(rec, 2), u32le(rec, 10), rec[25] & 2 != 0));
    }
    for (child, extent, len, is_dir) in children {
        if is_dir {
            walk(r, extent, len, &child, depth + 1, seen, out)?;
        } else {
            if out.len() >= MAX_FILES {
                return Err(bad("too many files"));
            }
            out.push(IsoFile { path: child, offset: extent * BLOCK, len });
        }
    }
    Ok(())
}

/// Continuation areas one name may chain through before we call it a loop.
const MAX_CONTINUATIONS: usize = 16;

/// The Rock Ridge `NM` name in a record's system use area (following `CE` continuation areas,
/// where long names go), when there is one.
fn rock_name<R: Read + Seek>(r: &mut R, su: &[u8]) -> Result<Option<String>, IsoReadError> {
    let mut name = Vec::new();
    let mut area = su.to_vec();
    for _ in 0..MAX_CONTINUATIONS {
        let mut next = None;
        let mut rest = &area[..];
        while rest.len() >= 4 {
            let len = usize::from(rest[2]);
            if len < 4 || len > rest.len() {
                break;
            }
            let e = &rest[..len];
            if &e[..2] == b"NM" && len >= 5 {
                name.extend_from_slice(&e[5..]);
            } else if &e[..2] == b"CE" && len >= 28 {
                next = Some((u32le(e, 4) * BLOCK + u32le(e, 12), u32le(e, 20)));
            } else if &e[..2] == b"ST" {
                break;
            }
            rest = &rest[len..];
        }
        let Some((at, len)) = next.filter(|(_, len)| *len <= BLOCK) else { break };
        area = vec![0u8; usize::try_from(len).unwrap_or(0)];
        read_at(r, at, &mut area)?;
    }
    Ok((!name.is_empty()).then(|| String::from_utf8_lossy(&name).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A reader that fails after `left` reads: a walk that would take too long fails fast.
    struct Budgeted {
        inner: Cursor<Vec<u8>>,
        left: usize,
    }

    impl Read for Budgeted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.left = self.left.checked_sub(1).ok_or_else(|| io::Error::other("read budget"))?;
            self.inner.read(buf)
        }
    }

    impl Seek for Budgeted {
        fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
            self.inner.seek(to)
        }
    }

    /// A directory record: its extent, length, flags and one-byte name.
    fn record(extent: u32, len: u32, dir: bool, name: u8) -> Vec<u8> {
        let mut r = vec![0u8; 34];
        r[0] = 34;
        r[2..6].copy_from_slice(&extent.to_le_bytes());
        r[10..14].copy_from_slice(&len.to_le_bytes());
        r[25] = if dir { 2 } else { 0 };
        r[32] = 1;
        r[33] = name;
        r
    }

    /// A volume whose root directory (sector 18) holds `.`, `..` and `loops` subdirectories
    /// that are the root itself.
    fn looping_volume(loops: u8) -> Vec<u8> {
        let mut iso = vec![0u8; usize_of(19 * BLOCK)];
        let pvd = usize_of(16 * BLOCK);
        iso[pvd] = 1;
        iso[pvd + 1..pvd + 6].copy_from_slice(b"CD001");
        iso[pvd + 156..pvd + 190].copy_from_slice(&record(18, 2048, true, 0));
        let mut dir = [record(18, 2048, true, 0), record(18, 2048, true, 1)].concat();
        for i in 0..loops {
            dir.extend(record(18, 2048, true, b'A' + i));
        }
        iso[usize_of(18 * BLOCK)..][..dir.len()].copy_from_slice(&dir);
        iso
    }

    #[test]
    fn a_directory_that_contains_itself_is_a_loop_not_an_exponential_walk() {
        // Two self-references made 2^64 walks before the fix (a hang): each directory is now
        // entered once, so a handful of reads name the loop.
        for loops in [1, 2, 40] {
            let mut r = Budgeted { inner: Cursor::new(looping_volume(loops)), left: 1000 };
            let err = files(&mut r).unwrap_err();
            assert!(
                matches!(&err, IsoReadError::Directory { path, what }
                    if path == "/A/" && what.contains("reached twice")),
                "{loops} loops: {err}"
            );
        }
    }
}
