//! An erofs writer (`kernel+erofs`): uncompressed, 4 KiB blocks, read by Linux ≥ 5.4 and checked
//! by `fsck.erofs`. No Rust crate writes erofs, so this is ours, after the kernel's
//! `fs/erofs/erofs_fs.h`.
//!
//! Layout: block 0 holds the superblock at 1024; regular files' data follows from block 1, each
//! file contiguous from a block boundary (`EROFS_INODE_FLAT_PLAIN`), written as its entry
//! arrives; then the metadata area (`meta_blkaddr`): inodes 32-byte aligned in breadth-first
//! order with the root first (nid 0: the superblock's `root_nid` is 16 bits), directories and
//! symlinks that fit stored inline after their inode (`EROFS_INODE_FLAT_INLINE`); last, the
//! blocks of directories too big to inline. Inodes are compact (32 bytes) when mtime is the
//! superblock's build time and ids and sizes fit, extended (64 bytes) otherwise. Directory
//! blocks hold dirents sorted by name, `.` and `..` included.
//!
//! Deterministic: build time is the fixed epoch, the uuid is zero, and nothing depends on the
//! order of equal names (there are none).
//!
//! Non-goals: compression, xattrs, chunk-based files, a superblock checksum.

use crate::fstree::{encode_dev, FsTree, Kind};
use crate::num::usize_of;
use baleen_tree::{Entry, EntryKind, EntrySink, DEFAULT_MTIME};
use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom, Write};

const BLOCK: u64 = 4096;
const MAGIC: u32 = 0xE0F5_E1E2;
const SUPER_OFFSET: u64 = 1024;
const DIRENT: usize = 12;
const LAYOUT_FLAT_PLAIN: u16 = 0;
const LAYOUT_FLAT_INLINE: u16 = 2;

/// What went wrong writing an erofs image.
#[derive(Debug, thiserror::Error)]
pub enum ErofsError {
    #[error("erofs: writing the image")]
    Io(#[from] io::Error),
    #[error("erofs: the image needs more than 2^32 blocks of 4 KiB")]
    TooBig,
    #[error("erofs: the root directory's inode does not fit a 16-bit nid")]
    RootNid,
}

/// Streams an image tree into an erofs image (see the module docs).
#[derive(Debug)]
pub struct ErofsWriter<W: Write + Seek> {
    out: W,
    tree: FsTree<u32>,
    /// Bytes written so far (always block-aligned between entries).
    pos: u64,
}

impl<W: Write + Seek> ErofsWriter<W> {
    /// Starts an image at the current start of `out` (block 0 is written at the end).
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&[0u8; usize_of(BLOCK)])?;
        Ok(ErofsWriter { out, tree: FsTree::new(), pos: BLOCK })
    }

    fn pad_to_block(&mut self) -> io::Result<()> {
        let pad = (BLOCK - self.pos % BLOCK) % BLOCK;
        self.out.write_all(&vec![0u8; pad as usize])?;
        self.pos += pad;
        Ok(())
    }

    /// Lays out the metadata, writes it and the superblock; returns the output.
    pub fn finish(mut self) -> Result<W, ErofsError> {
        let meta_blk = self.pos / BLOCK;
        let layout = Layout::plan(&self.tree, meta_blk)?;
        let meta = layout.emit(&self.tree)?;
        self.out.write_all(&meta)?;
        let blocks = meta_blk + meta.len() as u64 / BLOCK;
        let blocks = u32::try_from(blocks).map_err(|_| ErofsError::TooBig)?;
        let mut sb = [0u8; 128];
        put32(&mut sb, 0, MAGIC);
        sb[12] = 12; // blkszbits
        put16(&mut sb, 14, 0); // root_nid: the root is the first inode of the metadata area
        put64(&mut sb, 16, layout.order.len() as u64); // inos
        put64(&mut sb, 24, DEFAULT_MTIME as u64); // build_time
        put32(&mut sb, 36, blocks);
        put32(&mut sb, 40, u32::try_from(meta_blk).map_err(|_| ErofsError::TooBig)?);
        self.out.seek(SeekFrom::Start(SUPER_OFFSET))?;
        self.out.write_all(&sb)?;
        self.out.seek(SeekFrom::Start(u64::from(blocks) * BLOCK))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write + Seek> EntrySink for ErofsWriter<W> {
    fn add(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        let file = match entry.kind {
            EntryKind::File { size } => {
                let blk = u32::try_from(self.pos / BLOCK)
                    .map_err(|_| io::Error::other(ErofsError::TooBig))?;
                let n = io::copy(&mut data.take(size), &mut self.out)?;
                self.pos += n;
                if n != size {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "erofs: entry {:?}: {size} bytes announced, {n} supplied",
                            entry.path
                        ),
                    ));
                }
                self.pad_to_block()?;
                Some(blk)
            }
            _ => None,
        };
        self.tree.insert(entry, file).map_err(io::Error::other)
    }
}

/// Where each reachable node goes.
struct Layout {
    order: Vec<usize>,
    /// Per node: byte offset in the metadata area, inode size, layout, data bytes (dirs and
    /// symlinks), block address of non-inline data.
    slot: HashMap<usize, Slot>,
    names: Vec<u32>,
    meta_blk: u64,
    meta_len: u64,
}

struct Slot {
    offset: u64,
    extended: bool,
    layout: u16,
    /// Directory blocks or symlink target, as stored (the last block unpadded).
    data: Vec<u8>,
    /// Block of non-inline directory/symlink data, relative to the metadata area's end.
    tail_blk: u64,
    ino: u32,
}

impl Layout {
    fn plan(tree: &FsTree<u32>, meta_blk: u64) -> Result<Layout, ErofsError> {
        let (order, names) = tree.reachable();
        let mut slot = HashMap::new();
        let mut at = 0u64;
        let mut extra_blocks = 0u64;
        let mut nid_of = HashMap::new();
        // Pass 1: sizes and places. Dirent bytes do not depend on nids (fixed width), so
        // directory sizes are known before any nid is.
        let mut pending = Vec::with_capacity(order.len());
        for &n in &order {
            let node = &tree.nodes[n];
            let data_len = match &node.kind {
                Kind::Dir(c) => dir_size(c.keys().map(Vec::len)),
                Kind::Symlink(t) => t.len() as u64,
                _ => 0,
            };
            let size = match node.kind {
                Kind::File { size, .. } => size,
                _ => data_len,
            };
            let extended = node.mtime.secs != DEFAULT_MTIME
                || node.mtime.nanos != 0
                || node.uid > 0xffff
                || node.gid > 0xffff
                || tree.nlink(n, &names) > 0xffff
                || size > u64::from(u32::MAX);
            let isize = if extended { 64 } else { 32 };
            let inline =
                matches!(node.kind, Kind::Dir(_) | Kind::Symlink(_)) && data_len + isize <= BLOCK;
            at = at.next_multiple_of(32);
            if inline && at % BLOCK + isize + data_len > BLOCK {
                at = at.next_multiple_of(BLOCK);
            }
            let layout = if inline { LAYOUT_FLAT_INLINE } else { LAYOUT_FLAT_PLAIN };
            let tail_blk = extra_blocks;
            if !inline && matches!(node.kind, Kind::Dir(_) | Kind::Symlink(_)) {
                extra_blocks += data_len.div_ceil(BLOCK);
            }
            nid_of.insert(n, at / 32);
            pending.push((n, at, extended, layout, tail_blk));
            at += isize + if inline { data_len } else { 0 };
        }
        let meta_len = at.next_multiple_of(BLOCK);
        // Each directory has one name, so one parent (the root is its own).
        let mut parent = HashMap::from([(0usize, 0usize)]);
        for &n in &order {
            for &k in tree.nodes[n].children().into_iter().flat_map(|c| c.values()) {
                if tree.nodes[k].children().is_some() {
                    parent.insert(k, n);
                }
            }
        }
        if nid_of[&0] != 0 {
            return Err(ErofsError::RootNid);
        }
        for (i, (n, offset, extended, layout, tail_blk)) in pending.into_iter().enumerate() {
            let node = &tree.nodes[n];
            let data = match &node.kind {
                Kind::Dir(c) => dir_blocks(tree, c, &nid_of, nid_of[&n], nid_of[&parent[&n]]),
                Kind::Symlink(t) => t.clone(),
                _ => Vec::new(),
            };
            let ino = u32::try_from(i + 1).map_err(|_| ErofsError::TooBig)?;
            slot.insert(n, Slot { offset, extended, layout, data, tail_blk, ino });
        }
        if meta_blk + meta_len / BLOCK + extra_blocks > u64::from(u32::MAX) {
            return Err(ErofsError::TooBig);
        }
        Ok(Layout { order, slot, names, meta_blk, meta_len })
    }

    /// The metadata area followed by the non-inline directory and symlink blocks.
    fn emit(&self, tree: &FsTree<u32>) -> Result<Vec<u8>, ErofsError> {
        let mut meta = vec![0u8; usize_of(self.meta_len)];
        let mut extra = Vec::new();
        let extra_base = self.meta_blk + self.meta_len / BLOCK;
        for &n in &self.order {
            let node = &tree.nodes[n];
            let s = &self.slot[&n];
            // File type and permission bits: 16 bits (S_IFMT is 0o170000).
            #[allow(clippy::cast_possible_truncation)]
            let mode = (node.ifmt() | node.perm) as u16;
            let size = match node.kind {
                Kind::File { size, .. } => size,
                _ => s.data.len() as u64,
            };
            let iu = match &node.kind {
                Kind::File { data, .. } => *data,
                Kind::Char(ma, mi) | Kind::Block(ma, mi) => encode_dev(*ma, *mi),
                Kind::Dir(_) | Kind::Symlink(_) if s.layout == LAYOUT_FLAT_PLAIN => {
                    u32::try_from(extra_base + s.tail_blk).map_err(|_| ErofsError::TooBig)?
                }
                _ => 0,
            };
            let nlink = tree.nlink(n, &self.names);
            let o = usize_of(s.offset);
            let format = u16::from(s.extended) | (s.layout << 1);
            let ino = &mut meta[o..o + if s.extended { 64 } else { 32 }];
            put16(ino, 0, format);
            put16(ino, 4, mode);
            if s.extended {
                put64(ino, 8, size);
                put32(ino, 16, iu);
                put32(ino, 20, s.ino);
                put32(ino, 24, node.uid);
                put32(ino, 28, node.gid);
                // Two's complement: the kernel reads it back as a signed time64_t.
                put64(ino, 32, u64::from_le_bytes(node.mtime.secs.to_le_bytes()));
                put32(ino, 40, node.mtime.nanos);
                put32(ino, 44, nlink);
            } else {
                // A compact inode only when these fit: see `extended` in the layout.
                #[allow(clippy::cast_possible_truncation)]
                let (nlink, size, uid, gid) =
                    (nlink as u16, size as u32, node.uid as u16, node.gid as u16);
                put16(ino, 6, nlink);
                put32(ino, 8, size);
                put32(ino, 16, iu);
                put32(ino, 20, s.ino);
                put16(ino, 24, uid);
                put16(ino, 26, gid);
            }
            if matches!(node.kind, Kind::Dir(_) | Kind::Symlink(_)) {
                if s.layout == LAYOUT_FLAT_INLINE {
                    let at = o + if s.extended { 64 } else { 32 };
                    meta[at..at + s.data.len()].copy_from_slice(&s.data);
                } else {
                    let mut d = s.data.clone();
                    d.resize(d.len().next_multiple_of(usize_of(BLOCK)), 0);
                    extra.extend_from_slice(&d);
                }
            }
        }
        meta.extend_from_slice(&extra);
        Ok(meta)
    }
}

/// Names of a directory's blocks: `.`, `..` and the children, in byte order, packed greedily.
fn pack<'a>(names: impl Iterator<Item = &'a [u8]>) -> Vec<Vec<&'a [u8]>> {
    let mut all: Vec<&[u8]> = vec![b".", b".."];
    all.extend(names);
    all.sort_unstable();
    let mut blocks: Vec<Vec<&[u8]>> = vec![Vec::new()];
    let mut used = 0usize;
    for name in all {
        if used + DIRENT + name.len() > usize_of(BLOCK) {
            blocks.push(Vec::new());
            used = 0;
        }
        used += DIRENT + name.len();
        blocks.last_mut().expect("one block at least").push(name);
    }
    blocks
}

/// The stored size of a directory whose children have names of these lengths.
fn dir_size(lens: impl Iterator<Item = usize>) -> u64 {
    let names: Vec<Vec<u8>> = lens.map(|l| vec![b'x'; l]).collect();
    let blocks = pack(names.iter().map(Vec::as_slice));
    let last: usize = blocks.last().map_or(0, |b| b.iter().map(|n| DIRENT + n.len()).sum());
    (blocks.len() as u64 - 1) * BLOCK + last as u64
}

fn file_type<D>(kind: &Kind<D>) -> u8 {
    match kind {
        Kind::File { .. } => 1,
        Kind::Dir(_) => 2,
        Kind::Char(..) => 3,
        Kind::Block(..) => 4,
        Kind::Fifo => 5,
        Kind::Symlink(_) => 7,
    }
}

/// A directory's blocks as stored: each block's dirents then its names; every block but the
/// last padded to the block size.
fn dir_blocks(
    tree: &FsTree<u32>,
    children: &std::collections::BTreeMap<Vec<u8>, usize>,
    nid_of: &HashMap<usize, u64>,
    own: u64,
    parent: u64,
) -> Vec<u8> {
    let nids: HashMap<&[u8], (u64, u8)> = children
        .iter()
        .map(|(name, &n)| (name.as_slice(), (nid_of[&n], file_type(&tree.nodes[n].kind))))
        .collect();
    let blocks = pack(children.keys().map(Vec::as_slice));
    let count = blocks.len();
    let mut out = Vec::new();
    for (i, names) in blocks.into_iter().enumerate() {
        let start = out.len();
        let mut nameoff = DIRENT * names.len();
        for name in &names {
            let (nid, ft) = match *name {
                b"." => (own, 2),
                b".." => (parent, 2),
                other => nids[other],
            };
            out.extend_from_slice(&nid.to_le_bytes());
            // Within the 4 KiB block `pack` filled.
            #[allow(clippy::cast_possible_truncation)]
            let off = nameoff as u16;
            out.extend_from_slice(&off.to_le_bytes());
            out.push(ft);
            out.push(0);
            nameoff += name.len();
        }
        for name in &names {
            out.extend_from_slice(name);
        }
        if i + 1 < count {
            out.resize(start + usize_of(BLOCK), 0);
        }
    }
    out
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
