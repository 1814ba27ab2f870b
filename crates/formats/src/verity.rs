//! A dm-verity hash tree in veritysetup's on-disk format (format version 1, "normal" hashing:
//! each digest is SHA-256 over the salt followed by the block), 4 KiB data and hash blocks, the
//! 512-byte `verity\0\0` superblock in the first hash block, then the tree levels as
//! cryptsetup's `lib/verity/verity_hash.c` lays them out: the level nearest the root first, the
//! level of data-block digests last, each digest in a 32-byte slot, 128 to a block, the last
//! block of a level padded with zeros. The root hash is the digest of the one block of the top
//! level (or of the only data block, when there is one).
//!
//! [`write_tree`] reads the data once, front to back, and writes each hash block as soon as it
//! is full, seeking to where its level lives: memory is one block per level, whatever the size.
//! [`content_salt`] is the salt baleen uses, SHA-256 of the data itself, so that the same data
//! gives the same tree (anyone can check it with `sha256sum`) while two different roots never
//! share a salt. The superblock's UUID is derived from the salt for the same reason.
//!
//! Non-goals: other hashes or block sizes, format version 0 (Chrome OS), forward error
//! correction, verifying an existing tree (the kernel and `veritysetup verify` do).

use crate::num::usize_of;
use sha2::{Digest, Sha256};
use std::io::{self, Read, Seek, SeekFrom, Write};

/// The data and hash block size.
pub const VERITY_BLOCK: u64 = 4096;
const DIGEST: usize = 32;
/// Digests per hash block, and its log2.
const PER_BLOCK: u64 = VERITY_BLOCK / DIGEST as u64;
const PER_BLOCK_BITS: u32 = PER_BLOCK.trailing_zeros();
/// veritysetup refuses more levels than this.
const MAX_LEVELS: usize = 63;

/// A tree level (at most [`MAX_LEVELS`]) as a shift count.
#[allow(clippy::cast_possible_truncation)]
const fn level_u32(level: usize) -> u32 {
    level as u32
}

/// What went wrong writing a hash tree.
#[derive(Debug, thiserror::Error)]
pub enum VerityError {
    #[error("dm-verity: the data is empty: there is nothing to protect")]
    Empty,
    #[error("dm-verity: the data ended after {got} bytes, {expected} were announced")]
    Truncated { expected: u64, got: u64 },
    #[error("dm-verity: the data is longer than the {expected} bytes announced")]
    TooLong { expected: u64 },
    #[error("dm-verity: reading the data at byte {at}")]
    Read { at: u64, source: io::Error },
    #[error("dm-verity: writing the hash tree")]
    Write(#[source] io::Error),
    #[error("dm-verity: tree level {level} got {got} blocks where the layout has {want} (a bug)")]
    Layout { level: usize, got: u64, want: u64 },
}

/// Where each level of the tree lives, in hash blocks after the superblock's block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityLayout {
    /// Data blocks covered (the data rounded up to [`VERITY_BLOCK`], zero-padded).
    pub data_blocks: u64,
    /// Per level, from the data-block digests (level 0) up: (first block, blocks).
    pub levels: Vec<(u64, u64)>,
}

impl VerityLayout {
    /// The layout veritysetup gives `data_len` bytes of data.
    pub fn new(data_len: u64) -> Result<Self, VerityError> {
        if data_len == 0 {
            return Err(VerityError::Empty);
        }
        let data_blocks = data_len.div_ceil(VERITY_BLOCK);
        let mut count = 0;
        while count < MAX_LEVELS
            && (data_blocks - 1).checked_shr(PER_BLOCK_BITS * level_u32(count)).unwrap_or(0) != 0
        {
            count += 1;
        }
        let mut sizes = Vec::with_capacity(count);
        for i in 0..count {
            let shift = PER_BLOCK_BITS * level_u32(i + 1);
            let size = match 1u64.checked_shl(shift) {
                Some(span) if shift < 64 => data_blocks.div_ceil(span),
                _ => 1,
            };
            sizes.push(size);
        }
        // The top level comes first on disk.
        let mut levels = vec![(0, 0); count];
        let mut at = 0;
        for i in (0..count).rev() {
            levels[i] = (at, sizes[i]);
            at += sizes[i];
        }
        Ok(VerityLayout { data_blocks, levels })
    }

    /// Hash blocks after the superblock's block.
    pub fn tree_blocks(&self) -> u64 {
        self.levels.iter().map(|l| l.1).sum()
    }

    /// Bytes of the hash area: the superblock's block and the tree.
    pub fn hash_len(&self) -> u64 {
        (1 + self.tree_blocks()) * VERITY_BLOCK
    }
}

/// What the kernel's `verity` target needs besides the devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityTree {
    pub root_hash: [u8; 32],
    pub salt: [u8; 32],
    pub uuid: [u8; 16],
    pub layout: VerityLayout,
}

impl VerityTree {
    /// The root hash in lowercase hex, as veritysetup prints it.
    pub fn root_hex(&self) -> String {
        hex(&self.root_hash)
    }

    pub fn salt_hex(&self) -> String {
        hex(&self.salt)
    }

    /// The superblock UUID as veritysetup prints it.
    pub fn uuid_string(&self) -> String {
        let h = hex(&self.uuid);
        format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The salt baleen uses: SHA-256 of the data.
pub fn content_salt(mut data: impl Read) -> Result<[u8; 32], VerityError> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    loop {
        let n = match data.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(VerityError::Read { at, source }),
        };
        h.update(&buf[..n]);
        at += n as u64;
    }
    Ok(h.finalize().into())
}

/// A UUID (version 4 bits) that follows the salt.
fn uuid_from(salt: &[u8; 32]) -> [u8; 16] {
    let d = Sha256::new().chain_update(b"baleen dm-verity uuid").chain_update(salt).finalize();
    let mut u = [0u8; 16];
    u.copy_from_slice(&d[..16]);
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

/// veritysetup's `struct verity_sb`, little-endian, 512 bytes.
fn superblock(tree: &VerityTree) -> [u8; 512] {
    let mut sb = [0u8; 512];
    sb[..8].copy_from_slice(b"verity\0\0");
    sb[8..12].copy_from_slice(&1u32.to_le_bytes()); // format version
    sb[12..16].copy_from_slice(&1u32.to_le_bytes()); // hash type: normal (salt first)
    sb[16..32].copy_from_slice(&tree.uuid);
    sb[32..38].copy_from_slice(b"sha256");
    #[allow(clippy::cast_possible_truncation)] // 4096
    let block = VERITY_BLOCK as u32;
    sb[64..68].copy_from_slice(&block.to_le_bytes());
    sb[68..72].copy_from_slice(&block.to_le_bytes());
    sb[72..80].copy_from_slice(&tree.layout.data_blocks.to_le_bytes());
    #[allow(clippy::cast_possible_truncation)] // 32
    let digest = DIGEST as u16;
    sb[80..82].copy_from_slice(&digest.to_le_bytes());
    sb[88..88 + DIGEST].copy_from_slice(&tree.salt);
    sb
}

/// The hash block being filled at one level.
struct Level {
    buf: Vec<u8>,
    written: u64,
    first: u64,
}

struct Emitter<'a, W> {
    out: W,
    salted: &'a Sha256,
    levels: Vec<Level>,
    /// The digest of the top level's (one) block, once written.
    root: Option<[u8; 32]>,
}

impl<W: Write + Seek> Emitter<'_, W> {
    /// Adds a digest at `level`; a full block goes to disk and its digest one level up.
    fn push(&mut self, level: usize, digest: &[u8]) -> Result<(), VerityError> {
        let l = &mut self.levels[level];
        l.buf.extend_from_slice(digest);
        if l.buf.len() as u64 == VERITY_BLOCK {
            self.emit(level)?;
        }
        Ok(())
    }

    /// Writes `level`'s block (zero-padded) and pushes its digest to the level above.
    fn emit(&mut self, level: usize) -> Result<(), VerityError> {
        let l = &mut self.levels[level];
        l.buf.resize(usize_of(VERITY_BLOCK), 0);
        let at = (1 + l.first + l.written) * VERITY_BLOCK;
        self.out.seek(SeekFrom::Start(at)).map_err(VerityError::Write)?;
        self.out.write_all(&l.buf).map_err(VerityError::Write)?;
        let digest = self.salted.clone().chain_update(&l.buf).finalize();
        l.written += 1;
        l.buf.clear();
        if level + 1 < self.levels.len() {
            self.push(level + 1, &digest)?;
        } else {
            self.root = Some(digest.into());
        }
        Ok(())
    }
}

/// Reads `data_len` bytes of `data` and writes its hash area to `out` (position 0 is the
/// superblock; the tree follows from [`VERITY_BLOCK`]), leaving `out` at the end of the area.
/// A last partial data block is hashed as if zero-padded: the caller puts the data on a device
/// whose size is rounded up to [`VERITY_BLOCK`].
pub fn write_tree<R: Read, W: Write + Seek>(
    mut data: R,
    data_len: u64,
    salt: [u8; 32],
    out: W,
) -> Result<VerityTree, VerityError> {
    let layout = VerityLayout::new(data_len)?;
    let salted = Sha256::new_with_prefix(salt);
    let levels = layout
        .levels
        .iter()
        .map(|&(first, _)| Level {
            buf: Vec::with_capacity(usize_of(VERITY_BLOCK)),
            written: 0,
            first,
        })
        .collect();
    let mut e = Emitter { out, salted: &salted, levels, root: None };
    let block = usize_of(VERITY_BLOCK);
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    let mut filled = 0usize;
    let mut only = None;
    loop {
        let n = match data.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(VerityError::Read { at: at + filled as u64, source }),
        };
        filled += n;
        let end = n == 0;
        if at + filled as u64 > data_len {
            return Err(VerityError::TooLong { expected: data_len });
        }
        let mut whole = filled / block * block;
        if end && whole < filled {
            buf[filled..whole + block].fill(0);
            whole += block;
        }
        for chunk in buf[..whole].chunks(block) {
            let digest = salted.clone().chain_update(chunk).finalize();
            if e.levels.is_empty() {
                only = Some(digest.into());
            } else {
                e.push(0, &digest)?;
            }
        }
        let consumed = whole.min(filled);
        buf.copy_within(consumed..filled, 0);
        at += consumed as u64;
        filled -= consumed;
        if end {
            break;
        }
    }
    if at < data_len {
        return Err(VerityError::Truncated { expected: data_len, got: at });
    }
    for level in 0..e.levels.len() {
        if !e.levels[level].buf.is_empty() {
            e.emit(level)?;
        }
    }
    let root_hash = match (e.root, only) {
        (Some(d), _) | (None, Some(d)) => d,
        (None, None) => return Err(VerityError::Empty),
    };
    for (level, (l, &(_, want))) in e.levels.iter().zip(&layout.levels).enumerate() {
        if l.written != want {
            return Err(VerityError::Layout { level, got: l.written, want });
        }
    }
    let tree = VerityTree { root_hash, salt, uuid: uuid_from(&salt), layout };
    let mut sb = vec![0u8; block];
    sb[..512].copy_from_slice(&superblock(&tree));
    e.out.seek(SeekFrom::Start(0)).map_err(VerityError::Write)?;
    e.out.write_all(&sb).map_err(VerityError::Write)?;
    e.out.seek(SeekFrom::Start(tree.layout.hash_len())).map_err(VerityError::Write)?;
    e.out.flush().map_err(VerityError::Write)?;
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn levels_follow_veritysetups_arithmetic() {
        let l = |blocks: u64| VerityLayout::new(blocks * VERITY_BLOCK).unwrap();
        assert_eq!(l(1).levels, [], "one block: the root hash is its digest");
        assert_eq!(l(2).levels, [(0, 1)]);
        assert_eq!(l(128).levels, [(0, 1)], "128 digests fill one block");
        assert_eq!(l(129).levels, [(1, 2), (0, 1)], "top level first on disk");
        assert_eq!(l(16_385).levels, [(3, 129), (1, 2), (0, 1)]);
        assert_eq!(l(129).hash_len(), 4 * VERITY_BLOCK, "superblock + 3 tree blocks");
        assert_eq!(VerityLayout::new(1).unwrap().data_blocks, 1, "a partial block counts");
        assert!(matches!(VerityLayout::new(0), Err(VerityError::Empty)));
    }

    #[test]
    fn root_of_one_block_is_the_salted_digest_of_that_block() {
        let data = vec![7u8; 4096];
        let salt = [1u8; 32];
        let t = write_tree(&data[..], 4096, salt, Cursor::new(Vec::new())).unwrap();
        let want: [u8; 32] = Sha256::new().chain_update(salt).chain_update(&data).finalize().into();
        assert_eq!(t.root_hash, want);
    }

    #[test]
    fn a_short_or_long_stream_is_refused() {
        let out = || Cursor::new(Vec::new());
        let e = write_tree(&[0u8; 100][..], 8192, [0; 32], out()).unwrap_err();
        assert!(matches!(e, VerityError::Truncated { expected: 8192, got: 100 }), "{e}");
        let e = write_tree(&[0u8; 9000][..], 8192, [0; 32], out()).unwrap_err();
        assert!(matches!(e, VerityError::TooLong { expected: 8192 }), "{e}");
    }

    #[test]
    fn superblock_fields_and_hash_area_size() {
        let data = vec![3u8; 130 * 4096];
        let salt = content_salt(&data[..]).unwrap();
        let mut out = Cursor::new(Vec::new());
        let t = write_tree(&data[..], data.len() as u64, salt, &mut out).unwrap();
        let area = out.into_inner();
        assert_eq!(area.len() as u64, t.layout.hash_len());
        assert_eq!(&area[..8], b"verity\0\0");
        assert_eq!(area[72..80], 130u64.to_le_bytes(), "data blocks");
        assert_eq!(area[88..120], salt);
        assert_eq!(t.uuid_string().len(), 36);
        assert_eq!(&t.uuid_string()[14..15], "4", "a version-4 UUID");
    }
}
