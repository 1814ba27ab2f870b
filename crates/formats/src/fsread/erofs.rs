//! erofs read back as members: the superblock, compact and extended inodes, flat (plain and
//! inline) data, directory blocks.

use super::{
    dev_text, le16, le32, le64, read_at, special_kind, Budget, Find, FsReadError, MAX_DEPTH,
};
use super::{member, Stat};
use crate::compare::{Kind, Member};
use crate::num::usize_of;
use sha2::{Digest as _, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};

const FS: &str = "erofs";
const MAGIC: u32 = 0xE0F5_E1E2;
const SUPER_OFFSET: u64 = 1024;
const LAYOUT_FLAT_PLAIN: u16 = 0;
const LAYOUT_FLAT_INLINE: u16 = 2;
const DIRENT: usize = 12;

fn bad(offset: u64, what: impl Into<String>) -> FsReadError {
    FsReadError::Malformed { fs: FS, offset, what: what.into() }
}

struct Image<'r, R> {
    r: &'r mut R,
    len: u64,
    block: u64,
    meta: u64,
    build_time: u64,
}

struct Inode {
    at: u64,
    mode: u32,
    size: u64,
    uid: u64,
    gid: u64,
    mtime: u64,
    /// `i_u`: the first data block, or the device number.
    raw: u32,
    layout: u16,
    /// Where inline data starts (after the inode and its xattrs).
    inline_at: u64,
}

/// Lists an erofs image (see the module docs of [`super`]).
pub fn erofs_members<R: Read + Seek>(r: &mut R) -> Result<Vec<Member>, FsReadError> {
    Ok(walk(r, None)?.out)
}

/// The data of one regular file of an erofs image (`want.path`, relative to its root), read
/// through the directories on its way only; `None` when the image has no such file.
pub fn erofs_file<R: Read + Seek>(
    r: &mut R,
    want: crate::compare::Wanted<'_>,
) -> Result<Option<Vec<u8>>, FsReadError> {
    Ok(walk(r, Some(Find::new(want)))?.find.and_then(|f| f.data))
}

fn walk<R: Read + Seek>(r: &mut R, find: Option<Find>) -> Result<Walk, FsReadError> {
    let len = r.seek(SeekFrom::End(0)).map_err(|source| FsReadError::Read {
        fs: FS,
        offset: 0,
        source,
    })?;
    let mut sb = [0u8; 128];
    read_at(r, FS, SUPER_OFFSET, &mut sb)?;
    if le32(&sb, 0) != MAGIC {
        return Err(bad(SUPER_OFFSET, "no erofs magic"));
    }
    let bits = sb[12];
    if !(9..=16).contains(&bits) {
        return Err(bad(SUPER_OFFSET + 12, format!("block size 2^{bits}")));
    }
    let block = 1u64 << bits;
    let incompat = le32(&sb, 80);
    if incompat & !0x1 != 0 {
        return Err(FsReadError::Unsupported {
            fs: FS,
            what: format!("incompatible features {incompat:#x}"),
        });
    }
    let meta = u64::from(le32(&sb, 40)) * block;
    let mut img = Image { r, len, block, meta, build_time: le64(&sb, 24) };
    let root = u64::from(le16(&sb, 14));
    let mut walk = Walk {
        out: Vec::new(),
        dirs: HashSet::new(),
        hashes: HashMap::new(),
        budget: Budget::new(FS, len),
        find,
    };
    walk.dir(&mut img, root, "", 0)?;
    Ok(walk)
}

impl<R: Read + Seek> Image<'_, R> {
    fn inode(&mut self, nid: u64) -> Result<Inode, FsReadError> {
        let at = nid
            .checked_mul(32)
            .and_then(|o| o.checked_add(self.meta))
            .filter(|a| a.checked_add(32).is_some_and(|end| end <= self.len))
            .ok_or_else(|| bad(self.meta, format!("inode {nid} past the end")))?;
        let mut b = [0u8; 64];
        read_at(self.r, FS, at, &mut b[..32])?;
        let format = le16(&b, 0);
        let extended = format & 1 != 0;
        let layout = (format >> 1) & 0x7;
        let xattr_count = u64::from(le16(&b, 2));
        let xattr_len = if xattr_count == 0 { 0 } else { 12 + (xattr_count - 1) * 4 };
        let mode = u32::from(le16(&b, 4));
        let ino = if extended {
            read_at(self.r, FS, at, &mut b)?;
            Inode {
                at,
                mode,
                size: le64(&b, 8),
                uid: u64::from(le32(&b, 24)),
                gid: u64::from(le32(&b, 28)),
                mtime: le64(&b, 32),
                raw: le32(&b, 16),
                layout,
                inline_at: at + 64 + xattr_len,
            }
        } else {
            Inode {
                at,
                mode,
                size: u64::from(le32(&b, 8)),
                uid: u64::from(le16(&b, 24)),
                gid: u64::from(le16(&b, 26)),
                mtime: self.build_time,
                raw: le32(&b, 16),
                layout,
                inline_at: at + 32 + xattr_len,
            }
        };
        if ino.size > self.len && mode & 0o170000 != 0o100000
            || ino.size > self.len.saturating_mul(1 << 20)
        {
            return Err(bad(at, format!("a size of {} bytes", ino.size)));
        }
        Ok(ino)
    }

    /// The (offset, length) runs holding an inode's data, in order.
    fn extents(&self, ino: &Inode) -> Result<Vec<(u64, u64)>, FsReadError> {
        let start = u64::from(ino.raw) * self.block;
        match ino.layout {
            LAYOUT_FLAT_PLAIN => Ok(vec![(start, ino.size)]),
            LAYOUT_FLAT_INLINE => {
                // Every block but the last is at `raw`; the last sits after the inode.
                let blocks = ino.size.div_ceil(self.block);
                let head = blocks.saturating_sub(1) * self.block;
                let tail = ino.size - head;
                if ino.inline_at % self.block + tail > self.block {
                    return Err(bad(ino.at, "inline data crosses a block"));
                }
                Ok(if head == 0 {
                    vec![(ino.inline_at, tail)]
                } else {
                    vec![(start, head), (ino.inline_at, tail)]
                })
            }
            other => Err(FsReadError::Unsupported { fs: FS, what: format!("data layout {other}") }),
        }
    }

    /// Reads a small run whole (directories, symlinks).
    fn small(&mut self, runs: &[(u64, u64)], limit: u64) -> Result<Vec<u8>, FsReadError> {
        let total: u64 = runs.iter().map(|r| r.1).sum();
        if total > limit {
            return Err(bad(runs.first().map_or(0, |r| r.0), format!("{total} bytes of metadata")));
        }
        let mut out = Vec::new();
        for &(at, n) in runs {
            self.check(at, n)?;
            let from = out.len();
            out.resize(from + usize_of(n), 0);
            read_at(self.r, FS, at, &mut out[from..])?;
        }
        Ok(out)
    }

    fn check(&self, at: u64, n: u64) -> Result<(), FsReadError> {
        match at.checked_add(n) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(bad(at, format!("{n} bytes of data past the image's end"))),
        }
    }
}

struct Walk {
    out: Vec<Member>,
    dirs: HashSet<u64>,
    /// A file's hash by its nid: hashed once however many entries name it.
    hashes: HashMap<u64, [u8; 32]>,
    budget: Budget,
    /// Set when looking for one file rather than listing.
    find: Option<Find>,
}

impl Walk {
    fn dir<R: Read + Seek>(
        &mut self,
        img: &mut Image<'_, R>,
        nid: u64,
        path: &str,
        depth: usize,
    ) -> Result<(), FsReadError> {
        if depth > MAX_DEPTH {
            return Err(bad(img.meta, format!("{path}: nested past {MAX_DEPTH} levels")));
        }
        if !self.dirs.insert(nid) {
            return Err(bad(img.meta, format!("{path}: a directory reached twice")));
        }
        let ino = img.inode(nid)?;
        if ino.mode & 0o170000 != 0o040000 {
            return Err(bad(ino.at, format!("{path:?} is listed as a directory")));
        }
        if !path.is_empty() {
            self.out.push(member(path, ino.stat(), Kind::Dir, 0, [0; 32], String::new()));
        }
        let runs = img.extents(&ino)?;
        self.budget.hash(ino.at, path, runs.iter().map(|r| r.1).sum())?;
        let data = img.small(&runs, img.len)?;
        let block = usize::try_from(img.block).unwrap_or(4096);
        for chunk in data.chunks(block) {
            let first_nameoff = usize::from(le16(
                chunk.get(..DIRENT).ok_or_else(|| bad(ino.at, "a short directory block"))?,
                8,
            ));
            let count = first_nameoff / DIRENT;
            if count == 0 || first_nameoff > chunk.len() {
                return Err(bad(
                    ino.at,
                    format!("{path}: directory block with name offset {first_nameoff}"),
                ));
            }
            for i in 0..count {
                let d = &chunk[i * DIRENT..(i + 1) * DIRENT];
                let from = usize::from(le16(d, 8));
                let to = if i + 1 < count {
                    usize::from(le16(chunk, (i + 1) * DIRENT + 8))
                } else {
                    chunk.len()
                };
                let name = chunk
                    .get(from..to)
                    .ok_or_else(|| bad(ino.at, format!("{path}: name at {from}..{to}")))?;
                // The last name of a block may be followed by zeros.
                let name = name.split(|b| *b == 0).next().unwrap_or_default();
                if name == b"." || name == b".." {
                    continue;
                }
                let child = le64(d, 0);
                let child_path = self.budget.join(ino.at, path, name)?;
                if self.find.as_ref().is_some_and(|f| !f.on_the_way(&child_path)) {
                    continue;
                }
                let ci = img.inode(child)?;
                if ci.mode & 0o170000 == 0o040000 {
                    self.dir(img, child, &child_path, depth + 1)?;
                } else {
                    self.leaf(img, &child_path, child, &ci)?;
                }
            }
        }
        Ok(())
    }

    fn leaf<R: Read + Seek>(
        &mut self,
        img: &mut Image<'_, R>,
        path: &str,
        nid: u64,
        ino: &Inode,
    ) -> Result<(), FsReadError> {
        match ino.mode & 0o170000 {
            0o100000 if self.find.is_some() => {
                let mut data = Vec::new();
                if let Some(f) = &self.find {
                    f.check_size(FS, ino.size)?;
                }
                self.file_data(img, path, ino, &mut |b| data.extend_from_slice(b))?;
                if let Some(f) = self.find.as_mut() {
                    f.data = Some(data);
                }
            }
            0o100000 => {
                let sha = match self.hashes.get(&nid) {
                    Some(sha) => *sha,
                    None => {
                        let sha = self.file_hash(img, path, ino)?;
                        self.hashes.insert(nid, sha);
                        sha
                    }
                };
                self.out.push(member(path, ino.stat(), Kind::File, ino.size, sha, String::new()));
            }
            0o120000 => {
                let runs = img.extents(ino)?;
                let target = img.small(&runs, 4096)?;
                let kind = Kind::Symlink(String::from_utf8_lossy(&target).into_owned());
                self.out.push(member(path, ino.stat(), kind, 0, [0; 32], String::new()));
            }
            0o060000 | 0o020000 => self.out.push(member(
                path,
                ino.stat(),
                special_kind(ino.mode),
                0,
                [0; 32],
                dev_text(ino.raw),
            )),
            _ => self.out.push(member(
                path,
                ino.stat(),
                special_kind(ino.mode),
                0,
                [0; 32],
                String::new(),
            )),
        }
        Ok(())
    }

    /// SHA-256 of a file's data (see [`Walk::file_data`]).
    fn file_hash<R: Read + Seek>(
        &mut self,
        img: &mut Image<'_, R>,
        path: &str,
        ino: &Inode,
    ) -> Result<[u8; 32], FsReadError> {
        let mut h = Sha256::new();
        self.file_data(img, path, ino, &mut |b| h.update(b))?;
        Ok(h.finalize().into())
    }

    /// A file's data, run by run, handed to `sink`.
    fn file_data<R: Read + Seek>(
        &mut self,
        img: &mut Image<'_, R>,
        path: &str,
        ino: &Inode,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(), FsReadError> {
        let runs = img.extents(ino)?;
        self.budget.hash(ino.at, path, runs.iter().map(|r| r.1).sum())?;
        let mut buf = vec![0u8; 1 << 16];
        for (at, n) in runs {
            img.check(at, n)?;
            img.r.seek(SeekFrom::Start(at)).map_err(|source| FsReadError::Read {
                fs: FS,
                offset: at,
                source,
            })?;
            let mut left = n;
            while left > 0 {
                let k = usize::try_from(left).unwrap_or(buf.len()).min(buf.len());
                img.r.read_exact(&mut buf[..k]).map_err(|source| FsReadError::Read {
                    fs: FS,
                    offset: at + n - left,
                    source,
                })?;
                sink(&buf[..k]);
                left -= k as u64;
            }
        }
        Ok(())
    }
}

impl Inode {
    fn stat(&self) -> Stat {
        Stat { mode: self.mode, uid: self.uid, gid: self.gid, mtime: self.mtime }
    }
}
