//! A squashfs 4.0 writer (`kernel+squashfs`): gzip (zlib) data and metadata blocks of 128 KiB /
//! 8 KiB, as `mksquashfs` writes by default, checked by `unsquashfs`.
//!
//! Why not `backhand` (design.md names it): its `FilesystemWriter` takes a reader per file and
//! reads them all when the image is written, while an [`EntrySink`] sees each file's bytes only
//! during its `add`; using it would mean spilling the whole tree to a temporary copy first. This
//! writer compresses and writes each file's blocks as the entry arrives and keeps only metadata.
//!
//! Layout, in `mksquashfs`'s order: superblock (written last, at offset 0), data blocks, inode
//! table, directory table, id table, padding to 4 KiB. Inodes are written children first
//! (a directory's listing needs its children's inode references); inode numbers are assigned
//! breadth-first from the root (1). Deterministic: mkfs time is the fixed epoch, ids are
//! numbered in order of first use, and a block is stored uncompressed only when zlib does not
//! make it smaller. A file's blocks are compressed on all cores, each on its own, so the bytes
//! do not depend on the thread count. Errors about an entry (a short file, a hard link to
//! nothing) come back from `add` as `io::Error`s wrapping a message or an `FsTreeError`.
//!
//! Non-goals: fragments (tails are short blocks: `-no-fragments`), xattrs, the NFS export table,
//! duplicate detection, sparse blocks, directory indexes (lookups scan the listing).

use crate::fstree::{encode_dev, FsTree, Kind};
use crate::num::usize_of;
use baleen_tree::{Entry, EntryKind, EntrySink, DEFAULT_MTIME};
use flate2::write::ZlibEncoder;
use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom, Write};

const BLOCK_SIZE: usize = 128 * 1024;
const BLOCK_SIZE_U32: u32 = 128 * 1024;
/// The superblock's creation time: LinuxKit's epoch, which fits its 32 bits.
const MKFS_TIME: u32 = {
    assert!(DEFAULT_MTIME >= 0 && DEFAULT_MTIME <= u32::MAX as i64);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let t = DEFAULT_MTIME as u32;
    t
};
const BLOCK_LOG: u16 = 17;
const META_BLOCK: usize = 8192;
const MAGIC: u32 = 0x7371_7368;
const UNCOMPRESSED_DATA_BIT: u32 = 1 << 24;
const UNCOMPRESSED_META_BIT: u16 = 0x8000;
const FLAG_NO_FRAGMENTS: u16 = 0x0010;
const FLAG_NO_XATTRS: u16 = 0x0200;
const NONE: u64 = u64::MAX;
const NO_FRAGMENT: u32 = u32::MAX;
const COMPRESSION_GZIP: u16 = 1;

/// What went wrong writing a squashfs image.
#[derive(Debug, thiserror::Error)]
pub enum SquashfsError {
    #[error("squashfs: writing the image")]
    Io(#[from] io::Error),
    #[error("squashfs: more than 65536 distinct uids and gids")]
    TooManyIds,
    #[error("squashfs: {what} would be {value}, more than its field holds")]
    TooLarge { what: &'static str, value: u64 },
}

/// `value` for one of squashfs's 32-bit fields, or the error naming it.
fn field32(what: &'static str, value: u64) -> Result<u32, SquashfsError> {
    u32::try_from(value).map_err(|_| SquashfsError::TooLarge { what, value })
}

/// Where a file's blocks went.
#[derive(Debug)]
struct Blocks {
    start: u64,
    sizes: Vec<u32>,
}

/// Streams an image tree into a squashfs image (see the module docs).
#[derive(Debug)]
pub struct SquashfsWriter<W: Write + Seek> {
    out: W,
    /// Regular files' data is an index into `files`.
    tree: FsTree<usize>,
    files: Vec<Blocks>,
    /// Blocks read but not yet written, with the file each belongs to: compressed together
    /// across files (most files of a root are smaller than a block), written in stream order.
    pending: Vec<(usize, Vec<u8>)>,
    pos: u64,
    level: flate2::Compression,
    /// Threads compressing a batch (the machine's cores, at most 8).
    threads: usize,
}

/// Blocks per batch and thread: enough to keep the threads busy, little memory (128 KiB each).
const BATCH_PER_THREAD: usize = 4;

/// zlib of `data`, or `None` when that is not smaller (stored as is, as squashfs allows) or
/// would not pay (already-compressed bytes, see [`crate::compressibility::incompressible`]).
fn compress(data: &[u8], level: flate2::Compression) -> io::Result<Option<Vec<u8>>> {
    if crate::compressibility::incompressible(data) {
        return Ok(None);
    }
    let mut z = ZlibEncoder::new(Vec::with_capacity(data.len() / 2), level);
    z.write_all(data)?;
    let c = z.finish()?;
    Ok((c.len() < data.len()).then_some(c))
}

impl<W: Write + Seek> SquashfsWriter<W> {
    /// Starts an image at the start of `out` (the superblock is written at the end).
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&[0u8; 96])?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        let level = flate2::Compression::new(6);
        Ok(SquashfsWriter {
            out,
            tree: FsTree::new(),
            files: Vec::new(),
            pending: Vec::new(),
            pos: 96,
            level,
            threads,
        })
    }

    /// Reads a file's blocks into the pending batch (flushing it when full); returns the file's
    /// index in `files`.
    fn write_file(&mut self, path: &str, size: u64, data: &mut dyn Read) -> io::Result<usize> {
        let idx = self.files.len();
        // `start` is set when the first block is written; an empty file has none and keeps 0
        // (not the current position, which depends on how much of the batch is written).
        self.files.push(Blocks { start: 0, sizes: Vec::new() });
        let mut left = size;
        while left > 0 {
            let want = usize_of(left.min(BLOCK_SIZE as u64));
            let mut chunk = vec![0u8; want];
            data.read_exact(&mut chunk).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("squashfs: entry {path:?}: {size} bytes announced, fewer supplied"),
                )
            })?;
            self.pending.push((idx, chunk));
            left -= want as u64;
            if self.pending.len() >= self.threads * BATCH_PER_THREAD {
                self.flush()?;
            }
        }
        Ok(idx)
    }

    /// Compresses the pending blocks, consecutive runs on `threads` threads (each block on its
    /// own, so the bytes do not depend on the thread count), and writes them in order.
    fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let level = self.level;
        let pending = std::mem::take(&mut self.pending);
        let packed: Vec<io::Result<Option<Vec<u8>>>> = if self.threads == 1 || pending.len() == 1 {
            pending.iter().map(|(_, c)| compress(c, level)).collect()
        } else {
            let per = pending.len().div_ceil(self.threads);
            std::thread::scope(|s| {
                let jobs: Vec<_> = pending
                    .chunks(per)
                    .map(|run| {
                        s.spawn(move || {
                            run.iter().map(|(_, c)| compress(c, level)).collect::<Vec<_>>()
                        })
                    })
                    .collect();
                let mut all = Vec::with_capacity(pending.len());
                for j in jobs {
                    match j.join() {
                        Ok(v) => all.extend(v),
                        Err(_) => return vec![Err(io::Error::other("squashfs: zlib panicked"))],
                    }
                }
                all
            })
        };
        if packed.len() != pending.len() {
            return Err(io::Error::other("squashfs: a compression thread failed"));
        }
        for ((idx, raw), packed) in pending.into_iter().zip(packed) {
            let (bytes, stored) = match packed? {
                Some(c) => (c, 0),
                None => (raw, UNCOMPRESSED_DATA_BIT),
            };
            let file = &mut self.files[idx];
            if file.sizes.is_empty() {
                file.start = self.pos;
            }
            // At most BLOCK_SIZE (128 KiB): one block, compressed only if smaller.
            #[allow(clippy::cast_possible_truncation)]
            let len = bytes.len() as u32;
            file.sizes.push(len | stored);
            self.out.write_all(&bytes)?;
            self.pos += bytes.len() as u64;
        }
        Ok(())
    }

    /// Writes the tables and the superblock; returns the output.
    pub fn finish(mut self) -> Result<W, SquashfsError> {
        self.flush()?;
        let (order, names) = self.tree.reachable();
        let count = field32("the inode count", order.len() as u64)?;
        let numbers: HashMap<usize, u32> = (1..=count).zip(&order).map(|(i, &n)| (n, i)).collect();
        let mut t = Tables {
            tree: &self.tree,
            files: &self.files,
            names: &names,
            numbers: &numbers,
            inodes: Meta::new(self.level),
            dirs: Meta::new(self.level),
            ids: Vec::new(),
            id_index: HashMap::new(),
            refs: HashMap::new(),
        };
        let root = t.dir(0, field32("the inode count", order.len() as u64 + 1)?)?;
        let inode_table = self.pos;
        let inodes = t.inodes.finish()?;
        let dir_table = inode_table + inodes.len() as u64;
        let dirs = t.dirs.finish()?;
        let id_blocks = dir_table + dirs.len() as u64;
        // One index pointer per metadata block of ids (2048 ids each).
        let mut id_meta = Vec::new();
        let mut index = Vec::new();
        for chunk in t.ids.chunks(2048) {
            let mut m = Meta::new(self.level);
            for id in chunk {
                m.push(&id.to_le_bytes())?;
            }
            index.extend_from_slice(&(id_blocks + id_meta.len() as u64).to_le_bytes());
            id_meta.extend_from_slice(&m.finish()?);
        }
        let id_table = id_blocks + id_meta.len() as u64;
        for part in [&inodes, &dirs, &id_meta, &index] {
            self.out.write_all(part)?;
        }
        let used = id_table + index.len() as u64;
        let padded = used.next_multiple_of(4096);
        self.out.write_all(&vec![0u8; usize_of(padded - used)])?;

        let mut sb = Vec::with_capacity(96);
        sb.extend_from_slice(&MAGIC.to_le_bytes());
        sb.extend_from_slice(&count.to_le_bytes());
        sb.extend_from_slice(&MKFS_TIME.to_le_bytes());
        sb.extend_from_slice(&BLOCK_SIZE_U32.to_le_bytes());
        sb.extend_from_slice(&0u32.to_le_bytes()); // fragments
        sb.extend_from_slice(&COMPRESSION_GZIP.to_le_bytes());
        sb.extend_from_slice(&BLOCK_LOG.to_le_bytes());
        sb.extend_from_slice(&(FLAG_NO_FRAGMENTS | FLAG_NO_XATTRS).to_le_bytes());
        // `id` refuses more than 65536 ids.
        #[allow(clippy::cast_possible_truncation)]
        let ids = t.ids.len() as u16;
        sb.extend_from_slice(&ids.to_le_bytes());
        sb.extend_from_slice(&4u16.to_le_bytes());
        sb.extend_from_slice(&0u16.to_le_bytes());
        sb.extend_from_slice(&root.to_le_bytes());
        sb.extend_from_slice(&used.to_le_bytes());
        sb.extend_from_slice(&id_table.to_le_bytes());
        sb.extend_from_slice(&NONE.to_le_bytes()); // xattr ids
        sb.extend_from_slice(&inode_table.to_le_bytes());
        sb.extend_from_slice(&dir_table.to_le_bytes());
        sb.extend_from_slice(&NONE.to_le_bytes()); // fragment table
        sb.extend_from_slice(&NONE.to_le_bytes()); // export table
        self.out.seek(SeekFrom::Start(0))?;
        self.out.write_all(&sb)?;
        self.out.seek(SeekFrom::Start(padded))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write + Seek> EntrySink for SquashfsWriter<W> {
    fn add(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        let blocks = match entry.kind {
            EntryKind::File { size } => Some(self.write_file(&entry.path, size, data)?),
            _ => None,
        };
        self.tree.insert(entry, blocks).map_err(io::Error::other)
    }
}

/// A metadata stream: 8 KiB blocks, each stored with a 2-byte length header.
struct Meta {
    done: Vec<u8>,
    cur: Vec<u8>,
    level: flate2::Compression,
}

impl Meta {
    fn new(level: flate2::Compression) -> Self {
        Meta { done: Vec::new(), cur: Vec::with_capacity(META_BLOCK), level }
    }

    /// Where the next byte goes: (stored offset of its block, offset inside the block).
    // `cur` is flushed at META_BLOCK (8 KiB), so its length fits 16 bits.
    #[allow(clippy::cast_possible_truncation)]
    fn here(&self) -> (u64, u16) {
        (self.done.len() as u64, self.cur.len() as u16)
    }

    fn push(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.cur.extend_from_slice(bytes);
        while self.cur.len() >= META_BLOCK {
            let rest = self.cur.split_off(META_BLOCK);
            self.flush_block()?;
            self.cur = rest;
        }
        Ok(())
    }

    // A block is at most META_BLOCK (8 KiB), compressed only if smaller: its length fits 16 bits.
    #[allow(clippy::cast_possible_truncation)]
    fn flush_block(&mut self) -> io::Result<()> {
        let (bytes, header) = match compress(&self.cur, self.level)? {
            Some(c) => {
                let len = c.len() as u16;
                (c, len)
            }
            None => (self.cur.clone(), self.cur.len() as u16 | UNCOMPRESSED_META_BIT),
        };
        self.done.extend_from_slice(&header.to_le_bytes());
        self.done.extend_from_slice(&bytes);
        self.cur.clear();
        Ok(())
    }

    fn finish(mut self) -> io::Result<Vec<u8>> {
        if !self.cur.is_empty() {
            self.flush_block()?;
        }
        Ok(self.done)
    }
}

/// The inode and directory tables being written.
struct Tables<'a> {
    tree: &'a FsTree<usize>,
    files: &'a [Blocks],
    names: &'a [u32],
    numbers: &'a HashMap<usize, u32>,
    inodes: Meta,
    dirs: Meta,
    ids: Vec<u32>,
    id_index: HashMap<u32, u16>,
    /// Inode references already written (hard links point to one inode).
    refs: HashMap<usize, u64>,
}

/// The basic inode type of a node (directory entries always carry this one).
fn basic_type<D>(kind: &Kind<D>) -> u16 {
    match kind {
        Kind::Dir(_) => 1,
        Kind::File { .. } => 2,
        Kind::Symlink(_) => 3,
        Kind::Block(..) => 4,
        Kind::Char(..) => 5,
        Kind::Fifo => 6,
    }
}

impl Tables<'_> {
    fn id(&mut self, id: u32) -> Result<u16, SquashfsError> {
        if let Some(&i) = self.id_index.get(&id) {
            return Ok(i);
        }
        let i = u16::try_from(self.ids.len()).map_err(|_| SquashfsError::TooManyIds)?;
        self.ids.push(id);
        self.id_index.insert(id, i);
        Ok(i)
    }

    /// Writes the 16-byte common header; returns the inode's reference.
    fn header(&mut self, n: usize, kind: u16) -> Result<u64, SquashfsError> {
        let node = &self.tree.nodes[n];
        let (uid, gid) = (self.id(node.uid)?, self.id(node.gid)?);
        let (block, offset) = self.inodes.here();
        let mut h = Vec::with_capacity(16);
        h.extend_from_slice(&kind.to_le_bytes());
        // Permission bits with setuid/setgid/sticky: 12 bits.
        #[allow(clippy::cast_possible_truncation)]
        let perm = node.perm as u16;
        h.extend_from_slice(&perm.to_le_bytes());
        h.extend_from_slice(&uid.to_le_bytes());
        h.extend_from_slice(&gid.to_le_bytes());
        let mtime = u32::try_from(node.mtime.secs.max(0)).unwrap_or(u32::MAX); // clamped
        h.extend_from_slice(&mtime.to_le_bytes());
        h.extend_from_slice(&self.numbers[&n].to_le_bytes());
        self.inodes.push(&h)?;
        Ok((block << 16) | u64::from(offset))
    }

    /// Writes a non-directory inode once; returns its reference.
    fn leaf(&mut self, n: usize) -> Result<u64, SquashfsError> {
        if let Some(&r) = self.refs.get(&n) {
            return Ok(r);
        }
        let nlink = self.names[n];
        let mut body = Vec::new();
        let r = match &self.tree.nodes[n].kind {
            Kind::File { size, data } => {
                let data = &self.files[*data];
                let sizes = data.sizes.iter().flat_map(|s| s.to_le_bytes());
                if nlink == 1 && *size <= u64::from(u32::MAX) && data.start <= u64::from(u32::MAX) {
                    let r = self.header(n, 2)?;
                    body.extend_from_slice(&field32("a file's start", data.start)?.to_le_bytes());
                    body.extend_from_slice(&NO_FRAGMENT.to_le_bytes());
                    body.extend_from_slice(&0u32.to_le_bytes());
                    body.extend_from_slice(&field32("a file's size", *size)?.to_le_bytes());
                    body.extend(sizes);
                    r
                } else {
                    let r = self.header(n, 9)?;
                    body.extend_from_slice(&data.start.to_le_bytes());
                    body.extend_from_slice(&size.to_le_bytes());
                    body.extend_from_slice(&0u64.to_le_bytes()); // sparse bytes
                    body.extend_from_slice(&nlink.to_le_bytes());
                    body.extend_from_slice(&NO_FRAGMENT.to_le_bytes());
                    body.extend_from_slice(&0u32.to_le_bytes());
                    body.extend_from_slice(&u32::MAX.to_le_bytes()); // no xattrs
                    body.extend(sizes);
                    r
                }
            }
            Kind::Symlink(target) => {
                let r = self.header(n, 3)?;
                body.extend_from_slice(&nlink.to_le_bytes());
                let len = field32("a symlink target's length", target.len() as u64)?;
                body.extend_from_slice(&len.to_le_bytes());
                body.extend_from_slice(target);
                r
            }
            Kind::Block(ma, mi) | Kind::Char(ma, mi) => {
                let r = self.header(n, basic_type(&self.tree.nodes[n].kind))?;
                body.extend_from_slice(&nlink.to_le_bytes());
                body.extend_from_slice(&encode_dev(*ma, *mi).to_le_bytes());
                r
            }
            Kind::Fifo => {
                let r = self.header(n, 6)?;
                body.extend_from_slice(&nlink.to_le_bytes());
                r
            }
            Kind::Dir(_) => unreachable!("directories go through dir()"),
        };
        self.inodes.push(&body)?;
        self.refs.insert(n, r);
        Ok(r)
    }

    /// Writes a directory's children, its listing and its inode; returns its reference.
    fn dir(&mut self, n: usize, parent_number: u32) -> Result<u64, SquashfsError> {
        let tree = self.tree;
        let children = tree.nodes[n].children().expect("a directory");
        let own = self.numbers[&n];
        let mut entries = Vec::with_capacity(children.len());
        for (name, &k) in children {
            let r = match tree.nodes[k].kind {
                Kind::Dir(_) => self.dir(k, own)?,
                _ => self.leaf(k)?,
            };
            entries.push((name, k, r));
        }
        // The listing: runs of up to 256 entries whose inodes share a metadata block and whose
        // numbers are within an i16 of the run's first.
        let (start_block, start_offset) = self.dirs.here();
        let mut listing = Vec::new();
        let mut i = 0;
        while i < entries.len() {
            let block = entries[i].2 >> 16;
            let base = self.numbers[&entries[i].1];
            let mut j = i;
            while j < entries.len()
                && j - i < 256
                && entries[j].2 >> 16 == block
                && (i64::from(self.numbers[&entries[j].1]) - i64::from(base)).unsigned_abs()
                    <= i16::MAX as u64
            {
                j += 1;
            }
            #[allow(clippy::cast_possible_truncation)] // at most 255: j - i <= 256
            let run = (j - i - 1) as u32;
            listing.extend_from_slice(&run.to_le_bytes());
            listing.extend_from_slice(&field32("the inode table", block)?.to_le_bytes());
            listing.extend_from_slice(&base.to_le_bytes());
            for (name, k, r) in &entries[i..j] {
                // Within an i16 of `base`, as the run was cut; the offset is the low 16 bits.
                #[allow(clippy::cast_possible_truncation)]
                let (delta, offset) =
                    ((i64::from(self.numbers[k]) - i64::from(base)) as i16, *r as u16);
                listing.extend_from_slice(&offset.to_le_bytes());
                listing.extend_from_slice(&delta.to_le_bytes());
                listing.extend_from_slice(&basic_type(&tree.nodes[*k].kind).to_le_bytes());
                let name_len = u16::try_from(name.len() - 1).map_err(|_| {
                    SquashfsError::TooLarge { what: "a name's length", value: name.len() as u64 }
                })?;
                listing.extend_from_slice(&name_len.to_le_bytes());
                listing.extend_from_slice(name);
            }
            i = j;
        }
        self.dirs.push(&listing)?;
        let size = listing.len() as u64 + 3;
        let nlink = tree.nlink(n, self.names);
        let mut body = Vec::new();
        let r = if size <= 0xffff && start_block <= u64::from(u32::MAX) {
            let r = self.header(n, 1)?;
            body.extend_from_slice(&field32("the directory table", start_block)?.to_le_bytes());
            body.extend_from_slice(&nlink.to_le_bytes());
            #[allow(clippy::cast_possible_truncation)] // size <= 0xffff: this branch's condition
            let size = size as u16;
            body.extend_from_slice(&size.to_le_bytes());
            body.extend_from_slice(&start_offset.to_le_bytes());
            body.extend_from_slice(&parent_number.to_le_bytes());
            r
        } else {
            let r = self.header(n, 8)?;
            body.extend_from_slice(&nlink.to_le_bytes());
            body.extend_from_slice(&field32("a directory listing's size", size)?.to_le_bytes());
            body.extend_from_slice(&field32("the directory table", start_block)?.to_le_bytes());
            body.extend_from_slice(&parent_number.to_le_bytes());
            body.extend_from_slice(&0u16.to_le_bytes()); // no index
            body.extend_from_slice(&start_offset.to_le_bytes());
            body.extend_from_slice(&u32::MAX.to_le_bytes()); // no xattrs
            r
        };
        self.inodes.push(&body)?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn image(threads: usize) -> Vec<u8> {
        let mut w = SquashfsWriter::new(Cursor::new(Vec::new())).unwrap();
        w.threads = threads;
        // Five blocks and a tail, half of them incompressible.
        let mut x = 7u64;
        let data: Vec<u8> = (0..5 * BLOCK_SIZE + 100)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if (i / BLOCK_SIZE) % 2 == 0 {
                    x.to_le_bytes()[0]
                } else {
                    b'a'
                }
            })
            .collect();
        let e = Entry::new("big", EntryKind::File { size: data.len() as u64 }, 0o644);
        w.add(&e, &mut &data[..]).unwrap();
        // Small files share batches with each other and with the big one's tail.
        for i in 0..50usize {
            let d = &data[i * 1000..i * 1000 + i * 997];
            let e =
                Entry::new(format!("small/{i}"), EntryKind::File { size: d.len() as u64 }, 0o644);
            w.add(&e, &mut &d[..]).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn bytes_do_not_depend_on_the_thread_count() {
        let one = image(1);
        assert!(one == image(3), "3 threads");
        assert!(one == image(8), "8 threads");
    }
}
