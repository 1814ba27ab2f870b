//! squashfs 4.0 read back as members: the superblock, the id table, the inode and directory
//! tables (8 KiB metadata blocks, zlib or stored) and each file's data blocks.

use super::{
    dev_text, le16, le32, le64, read_at, special_kind, Budget, Find, FsReadError, MAX_DEPTH,
    MAX_NAME,
};
use super::{member, Stat};
use crate::compare::{Kind, Member};
use flate2::read::ZlibDecoder;
use sha2::{Digest as _, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek};

const FS: &str = "squashfs";
const MAGIC: u32 = 0x7371_7368;
const META_BLOCK: usize = 8192;
const COMPRESSION_GZIP: u16 = 1;
const NO_FRAGMENT: u32 = u32::MAX;
const UNCOMPRESSED_DATA_BIT: u32 = 1 << 24;
/// Metadata blocks kept decompressed (8 KiB each).
const CACHE_BLOCKS: usize = 64;

fn bad(offset: u64, what: impl Into<String>) -> FsReadError {
    FsReadError::Malformed { fs: FS, offset, what: what.into() }
}

/// A position in a metadata table: the stored block's offset from the table's start, and an
/// offset in its decompressed bytes.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    block: u64,
    offset: usize,
}

impl Cursor {
    fn of_ref(r: u64) -> Cursor {
        Cursor { block: r >> 16, offset: usize::from((r & 0xffff) as u16) }
    }
}

struct Image<'r, R> {
    r: &'r mut R,
    len: u64,
    block_size: u32,
    /// Absolute offset of a stored metadata block → its bytes and the next block's offset.
    cache: HashMap<u64, (Vec<u8>, u64)>,
}

impl<R: Read + Seek> Image<'_, R> {
    /// The metadata block stored at `at` (absolute): its bytes, and where the next one starts.
    fn meta_block(&mut self, at: u64) -> Result<(Vec<u8>, u64), FsReadError> {
        if let Some(hit) = self.cache.get(&at) {
            return Ok(hit.clone());
        }
        let mut head = [0u8; 2];
        read_at(self.r, FS, at, &mut head)?;
        let header = u16::from_le_bytes(head);
        let stored = usize::from(header & 0x7fff);
        if stored == 0 || at + 2 + stored as u64 > self.len {
            return Err(bad(at, format!("metadata block of {stored} bytes")));
        }
        let mut raw = vec![0u8; stored];
        read_at(self.r, FS, at + 2, &mut raw)?;
        let bytes = if header & 0x8000 != 0 {
            raw
        } else {
            inflate(&raw, META_BLOCK).map_err(|what| bad(at, what))?
        };
        if self.cache.len() >= CACHE_BLOCKS {
            self.cache.clear();
        }
        let next = at + 2 + stored as u64;
        self.cache.insert(at, (bytes.clone(), next));
        Ok((bytes, next))
    }

    /// `n` bytes of the table at `table` from `cur`, which moves past them.
    fn meta(&mut self, table: u64, cur: &mut Cursor, n: usize) -> Result<Vec<u8>, FsReadError> {
        let mut out = Vec::with_capacity(n.min(1 << 20));
        while out.len() < n {
            let at = table.checked_add(cur.block).filter(|a| *a < self.len).ok_or_else(|| {
                bad(table, format!("metadata reference {} past the end", cur.block))
            })?;
            let (bytes, next) = self.meta_block(at)?;
            if cur.offset > bytes.len() {
                return Err(bad(
                    at,
                    format!("offset {} in a {}-byte block", cur.offset, bytes.len()),
                ));
            }
            let take = (n - out.len()).min(bytes.len() - cur.offset);
            out.extend_from_slice(&bytes[cur.offset..cur.offset + take]);
            cur.offset += take;
            if cur.offset == bytes.len() {
                cur.block = next - table;
                cur.offset = 0;
            }
        }
        Ok(out)
    }
}

/// zlib data that inflates to at most `limit` bytes.
fn inflate(raw: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(limit);
    let limit64 = u64::try_from(limit).unwrap_or(u64::MAX);
    ZlibDecoder::new(raw)
        .take(limit64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("zlib data does not inflate: {e}"))?;
    if out.len() > limit {
        return Err(format!("a block inflates past {limit} bytes"));
    }
    Ok(out)
}

/// The superblock fields the reader uses.
struct Super {
    block_size: u32,
    id_count: u16,
    root: u64,
    bytes_used: u64,
    id_table: u64,
    inode_table: u64,
    dir_table: u64,
}

fn superblock<R: Read + Seek>(r: &mut R) -> Result<Super, FsReadError> {
    let mut sb = [0u8; 96];
    read_at(r, FS, 0, &mut sb)?;
    if le32(&sb, 0) != MAGIC {
        return Err(bad(0, "no squashfs magic (hsqs)"));
    }
    if (le16(&sb, 28), le16(&sb, 30)) != (4, 0) {
        return Err(bad(28, format!("version {}.{}, not 4.0", le16(&sb, 28), le16(&sb, 30))));
    }
    let compressor = le16(&sb, 20);
    if compressor != COMPRESSION_GZIP {
        return Err(FsReadError::Unsupported { fs: FS, what: format!("compressor {compressor}") });
    }
    let block_size = le32(&sb, 12);
    if !(4096..=1 << 20).contains(&block_size) || !block_size.is_power_of_two() {
        return Err(bad(12, format!("block size {block_size}")));
    }
    Ok(Super {
        block_size,
        id_count: le16(&sb, 26),
        root: le64(&sb, 32),
        bytes_used: le64(&sb, 40),
        id_table: le64(&sb, 48),
        inode_table: le64(&sb, 64),
        dir_table: le64(&sb, 72),
    })
}

type Walked = (Vec<Member>, Option<Find>);

fn walk<R: Read + Seek>(r: &mut R, find: Option<Find>) -> Result<Walked, FsReadError> {
    let len = r.seek(std::io::SeekFrom::End(0)).map_err(|source| FsReadError::Read {
        fs: FS,
        offset: 0,
        source,
    })?;
    let sb = superblock(r)?;
    if sb.bytes_used > len {
        return Err(bad(40, format!("{} bytes used, the image has {len}", sb.bytes_used)));
    }
    let mut img = Image { r, len: sb.bytes_used, block_size: sb.block_size, cache: HashMap::new() };
    let ids = id_table(&mut img, &sb)?;
    let mut walk = Walk {
        sb: &sb,
        ids: &ids,
        out: Vec::new(),
        dirs: HashSet::new(),
        hashes: HashMap::new(),
        budget: Budget::new(FS, sb.bytes_used),
        find,
    };
    walk.dir(&mut img, sb.root, "", 0)?;
    Ok((walk.out, walk.find))
}

/// Lists a squashfs image (see the module docs of [`super`]).
pub fn squashfs_members<R: Read + Seek>(r: &mut R) -> Result<Vec<Member>, FsReadError> {
    Ok(walk(r, None)?.0)
}

/// The data of one regular file of a squashfs image (`want.path`, relative to its root), read
/// through the directories on its way only; `None` when the image has no such file.
pub fn squashfs_file<R: Read + Seek>(
    r: &mut R,
    want: crate::compare::Wanted<'_>,
) -> Result<Option<Vec<u8>>, FsReadError> {
    Ok(walk(r, Some(Find::new(want)))?.1.and_then(|f| f.data))
}

fn id_table<R: Read + Seek>(img: &mut Image<'_, R>, sb: &Super) -> Result<Vec<u32>, FsReadError> {
    let count = usize::from(sb.id_count);
    let mut ids = Vec::with_capacity(count);
    for (i, chunk_start) in (0..count).step_by(2048).enumerate() {
        let mut ptr = [0u8; 8];
        let at = (8 * i as u64)
            .checked_add(sb.id_table)
            .ok_or_else(|| bad(48, format!("id table at {} past the end", sb.id_table)))?;
        read_at(img.r, FS, at, &mut ptr)?;
        let n = (count - chunk_start).min(2048);
        let mut cur = Cursor { block: u64::from_le_bytes(ptr), offset: 0 };
        let bytes = img.meta(0, &mut cur, 4 * n)?;
        ids.extend(bytes.chunks_exact(4).map(|c| le32(c, 0)));
    }
    Ok(ids)
}

struct Walk<'a> {
    sb: &'a Super,
    ids: &'a [u32],
    out: Vec<Member>,
    /// Directory inodes seen: a second visit is a loop.
    dirs: HashSet<u64>,
    /// A file's hash by its inode reference: hashed once however many entries name it.
    hashes: HashMap<u64, [u8; 32]>,
    budget: Budget,
    /// Set when looking for one file rather than listing.
    find: Option<Find>,
}

/// One inode, read.
struct Inode {
    kind: u16,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    /// Directories: listing start (block, offset) and size; files: data start and size.
    body: Body,
}

enum Body {
    Dir { block: u64, offset: usize, size: u64 },
    File { start: u64, size: u64, blocks: Vec<u32> },
    Symlink(Vec<u8>),
    Dev(u32),
    Plain,
}

impl Walk<'_> {
    fn id(&self, at: u64, i: u16) -> Result<u64, FsReadError> {
        self.ids
            .get(usize::from(i))
            .map(|v| u64::from(*v))
            .ok_or_else(|| bad(at, format!("id index {i} of {}", self.ids.len())))
    }

    fn inode<R: Read + Seek>(&self, img: &mut Image<'_, R>, r: u64) -> Result<Inode, FsReadError> {
        let table = self.sb.inode_table;
        let mut cur = Cursor::of_ref(r);
        let at = table
            .checked_add(cur.block)
            .ok_or_else(|| bad(table, format!("inode reference {r:#x} past the end")))?;
        let h = img.meta(table, &mut cur, 16)?;
        let kind = le16(&h, 0);
        let file_type = match kind {
            1 | 8 => 0o040000,
            2 | 9 => 0o100000,
            3 | 10 => 0o120000,
            4 | 11 => 0o060000,
            5 | 12 => 0o020000,
            6 | 13 => 0o010000,
            7 | 14 => 0o140000,
            other => return Err(bad(at, format!("inode type {other}"))),
        };
        let mode = file_type | u32::from(le16(&h, 2) & 0o7777);
        let (uid, gid) = (self.id(at, le16(&h, 4))?, self.id(at, le16(&h, 6))?);
        let mtime = u64::from(le32(&h, 8));
        let body = match kind {
            1 => {
                let b = img.meta(table, &mut cur, 16)?;
                let size = u64::from(le16(&b, 8));
                Body::Dir { block: u64::from(le32(&b, 0)), offset: usize::from(le16(&b, 10)), size }
            }
            8 => {
                let b = img.meta(table, &mut cur, 24)?;
                let (size, block) = (u64::from(le32(&b, 4)), u64::from(le32(&b, 8)));
                Body::Dir { block, offset: usize::from(le16(&b, 18)), size }
            }
            2 | 9 => {
                let (start, frag, size) = if kind == 2 {
                    let b = img.meta(table, &mut cur, 16)?;
                    (u64::from(le32(&b, 0)), le32(&b, 4), u64::from(le32(&b, 12)))
                } else {
                    let b = img.meta(table, &mut cur, 40)?;
                    (le64(&b, 0), le32(&b, 28), le64(&b, 8))
                };
                if frag != NO_FRAGMENT {
                    return Err(FsReadError::Unsupported { fs: FS, what: "fragments".into() });
                }
                let count = size.div_ceil(u64::from(self.sb.block_size));
                // Every block takes at least 4 bytes of the inode table: no list longer than it.
                if count > self.sb.bytes_used / 4 {
                    return Err(bad(at, format!("a {size}-byte file in a smaller image")));
                }
                let list_len = usize::try_from(4 * count).map_err(|_| bad(at, "a block list"))?;
                let list = img.meta(table, &mut cur, list_len)?;
                Body::File {
                    start,
                    size,
                    blocks: list.chunks_exact(4).map(|c| le32(c, 0)).collect(),
                }
            }
            3 | 10 => {
                let b = img.meta(table, &mut cur, 8)?;
                let n = le32(&b, 4);
                if u64::from(n) > 4096 {
                    return Err(bad(at, format!("symlink target of {n} bytes")));
                }
                Body::Symlink(img.meta(table, &mut cur, n as usize)?)
            }
            4 | 5 | 11 | 12 => Body::Dev(le32(&img.meta(table, &mut cur, 8)?, 4)),
            _ => Body::Plain,
        };
        Ok(Inode { kind, mode, uid, gid, mtime, body })
    }

    fn dir<R: Read + Seek>(
        &mut self,
        img: &mut Image<'_, R>,
        r: u64,
        path: &str,
        depth: usize,
    ) -> Result<(), FsReadError> {
        if depth > MAX_DEPTH {
            return Err(bad(
                self.sb.inode_table,
                format!("{path}: nested past {MAX_DEPTH} levels"),
            ));
        }
        if !self.dirs.insert(r) {
            return Err(bad(self.sb.inode_table, format!("{path}: a directory reached twice")));
        }
        let ino = self.inode(img, r)?;
        let Body::Dir { block, offset, size } = ino.body else {
            return Err(bad(self.sb.inode_table, format!("{path:?} is listed as a directory")));
        };
        if !path.is_empty() {
            self.out.push(member(path, ino.stat(), Kind::Dir, 0, [0; 32], String::new()));
        }
        // The stored size counts 3 bytes for `.` and `..`.
        let mut left = size.saturating_sub(3);
        // Listings are compressed metadata: an honest one inflates up to deflate's ~1032:1
        // (entries parsed are capped by the member budget besides).
        if left > self.sb.bytes_used.saturating_mul(1032) {
            return Err(bad(self.sb.dir_table, format!("{path}: a {size}-byte listing")));
        }
        let table = self.sb.dir_table;
        let mut cur = Cursor { block, offset };
        let mut children = Vec::new();
        while left >= 12 {
            let h = img.meta(table, &mut cur, 12)?;
            let (count, start) = (le32(&h, 0) + 1, u64::from(le32(&h, 4)));
            left -= 12;
            for _ in 0..count.min(256) {
                let e = img.meta(table, &mut cur, 8)?;
                let name_len = usize::from(le16(&e, 6)) + 1;
                if name_len > MAX_NAME {
                    return Err(bad(table, format!("{path}: a name of {name_len} bytes")));
                }
                let name = img.meta(table, &mut cur, name_len)?;
                left = left.saturating_sub(8 + name_len as u64);
                let child_path = self.budget.join(table, path, &name)?;
                children.push(((start << 16) | u64::from(le16(&e, 0)), child_path));
            }
        }
        for (child, child_path) in children {
            if self.find.as_ref().is_some_and(|f| !f.on_the_way(&child_path)) {
                continue;
            }
            let ino = self.inode(img, child)?;
            match ino.kind {
                1 | 8 => self.dir(img, child, &child_path, depth + 1)?,
                _ => self.leaf(img, &child_path, child, ino)?,
            }
        }
        Ok(())
    }

    fn leaf<R: Read + Seek>(
        &mut self,
        img: &mut Image<'_, R>,
        path: &str,
        r: u64,
        ino: Inode,
    ) -> Result<(), FsReadError> {
        if let (Some(find), Body::File { start, size, blocks }) = (&self.find, &ino.body) {
            find.check_size(FS, *size)?;
            let mut data = Vec::new();
            let span = (*start, *size);
            file_data(img, &mut self.budget, path, span, blocks, &mut |b| {
                data.extend_from_slice(b)
            })?;
            if let Some(f) = self.find.as_mut() {
                f.data = Some(data);
            }
            return Ok(());
        }
        let (kind, size, sha, extra) = match &ino.body {
            Body::File { start, size, blocks } => {
                let sha = match self.hashes.get(&r) {
                    Some(sha) => *sha,
                    None => {
                        let sha = file_hash(img, &mut self.budget, path, (*start, *size), blocks)?;
                        self.hashes.insert(r, sha);
                        sha
                    }
                };
                (Kind::File, *size, sha, String::new())
            }
            Body::Symlink(t) => {
                (Kind::Symlink(String::from_utf8_lossy(t).into_owned()), 0, [0; 32], String::new())
            }
            Body::Dev(d) => (special_kind(ino.mode), 0, [0; 32], dev_text(*d)),
            _ => (special_kind(ino.mode), 0, [0; 32], String::new()),
        };
        self.out.push(member(path, ino.stat(), kind, size, sha, extra));
        Ok(())
    }
}

/// SHA-256 of a file's data (see [`file_data`]).
fn file_hash<R: Read + Seek>(
    img: &mut Image<'_, R>,
    budget: &mut Budget,
    path: &str,
    span: (u64, u64),
    blocks: &[u32],
) -> Result<[u8; 32], FsReadError> {
    let mut h = Sha256::new();
    file_data(img, budget, path, span, blocks, &mut |b| h.update(b))?;
    Ok(h.finalize().into())
}

/// A file's data, block by block, handed to `sink`. The budget is charged the bytes read from the
/// image (a compressed block honestly inflates up to ~1032 times), and a sparse block's zeros
/// at their full size (they cost the image 4 bytes each; baleen writes none).
fn file_data<R: Read + Seek>(
    img: &mut Image<'_, R>,
    budget: &mut Budget,
    path: &str,
    (start, size): (u64, u64),
    blocks: &[u32],
    sink: &mut dyn FnMut(&[u8]),
) -> Result<(), FsReadError> {
    let bs = u64::from(img.block_size);
    let mut at = start;
    let mut left = size;
    for &b in blocks {
        let want = left.min(bs);
        let want_usize = usize::try_from(want).unwrap_or(usize::MAX);
        let stored = u64::from(b & !UNCOMPRESSED_DATA_BIT);
        budget.hash(at, path, if stored == 0 { want } else { stored })?;
        let data = if stored == 0 {
            vec![0u8; want_usize]
        } else {
            if stored > bs || at.checked_add(stored).is_none_or(|end| end > img.len) {
                return Err(bad(at, format!("a data block of {stored} bytes")));
            }
            let mut raw = vec![0u8; usize::try_from(stored).unwrap_or(0)];
            read_at(img.r, FS, at, &mut raw)?;
            at += stored;
            if b & UNCOMPRESSED_DATA_BIT != 0 {
                raw
            } else {
                inflate(&raw, want_usize).map_err(|what| bad(at - stored, what))?
            }
        };
        if data.len() as u64 != want {
            return Err(bad(at, format!("a data block of {} bytes, {want} expected", data.len())));
        }
        sink(&data);
        left -= want;
    }
    Ok(())
}

impl Inode {
    fn stat(&self) -> Stat {
        Stat { mode: self.mode, uid: self.uid, gid: self.gid, mtime: self.mtime }
    }
}
