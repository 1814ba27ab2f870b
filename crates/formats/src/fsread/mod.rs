//! Readers for the root images baleen writes, squashfs and erofs, that list a whole image as
//! [`Member`]s (path, kind, mode, owner, mtime, a SHA-256 of the data): what `baleen verify`
//! compares with [`crate::compare::first_difference`] to name the file that differs inside a
//! `-squashfs.img`, an `-erofs.img` or a disk's root partition.
//!
//! Key items: [`squashfs_members`], [`erofs_members`], [`FsReadError`] (the image, the offset,
//! what is wrong). Entries come depth first, each directory's children in the order the image
//! stores them (sorted by name in both formats). Paths are relative (`etc/motd`), the root is
//! left out.
//!
//! Bounded by the image, never by what it claims: metadata is read block by block (a few
//! recent blocks cached), file data is hashed as it is read, a directory reached twice or
//! nested deeper than [`MAX_DEPTH`] is an error rather than a loop, and a listing larger than
//! the image is refused. A hostile image repeating small records is bounded too: names over
//! [`MAX_NAME`] and paths over [`MAX_PATH`] bytes are refused, members and their path bytes are
//! capped in proportion to the image's length, each file inode is hashed once however many
//! entries name it, and the file bytes read (squashfs: stored bytes, sparse blocks at their
//! full size) are capped at 4 × the image's length.
//!
//! Non-goals: what baleen's writers never write — squashfs compressors other than gzip,
//! fragments and xattrs; erofs compression, chunked files and xattrs (they are skipped over
//! where the inode says how long they are). A hostile image gets an error, not a listing.

mod erofs;
mod squashfs;

pub use erofs::{erofs_file, erofs_members};
pub use squashfs::{squashfs_file, squashfs_members};

use std::io::{self, Read, Seek, SeekFrom};

/// Directories nested deeper than this are refused (Linux's PATH_MAX allows ~2048 levels of
/// one-letter names; no root image baleen writes comes near).
pub const MAX_DEPTH: usize = 1024;

/// Names longer than this are refused (Linux's NAME_MAX).
pub const MAX_NAME: usize = 255;

/// Paths longer than this are refused (Linux's PATH_MAX).
pub const MAX_PATH: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum FsReadError {
    #[error("reading the {fs} image at offset {offset}")]
    Read { fs: &'static str, offset: u64, source: io::Error },
    #[error("the {fs} image at offset {offset}: {what}")]
    Malformed { fs: &'static str, offset: u64, what: String },
    #[error("the {fs} image: {what}, which baleen does not write")]
    Unsupported { fs: &'static str, what: String },
    #[error("the {fs} image's {path} is {size} bytes, more than the {max} read")]
    FileTooLarge { fs: &'static str, path: String, size: u64, max: u64 },
}

/// The one file a walk looks for (`squashfs_file`, `erofs_file`) instead of listing the image:
/// only the directories on its way are read, and only its data.
struct Find {
    path: String,
    max: u64,
    data: Option<Vec<u8>>,
}

impl Find {
    fn new(want: crate::compare::Wanted<'_>) -> Find {
        Find { path: want.path.trim_start_matches('/').to_owned(), max: want.max, data: None }
    }

    /// Whether the walk goes to `path`: the file itself, or a directory on its way.
    fn on_the_way(&self, path: &str) -> bool {
        self.path == path
            || (self.path.starts_with(path) && self.path.as_bytes().get(path.len()) == Some(&b'/'))
    }

    /// Refuses a file larger than what is read.
    fn check_size(&self, fs: &'static str, size: u64) -> Result<(), FsReadError> {
        if size > self.max {
            return Err(FsReadError::FileTooLarge {
                fs,
                path: self.path.clone(),
                size,
                max: self.max,
            });
        }
        Ok(())
    }
}

/// Reads exactly `buf.len()` bytes at `offset`.
fn read_at<R: Read + Seek>(
    r: &mut R,
    fs: &'static str,
    offset: u64,
    buf: &mut [u8],
) -> Result<(), FsReadError> {
    let err = |source| FsReadError::Read { fs, offset, source };
    r.seek(SeekFrom::Start(offset)).map_err(err)?;
    r.read_exact(buf).map_err(err)
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from(le32(b, at)) | (u64::from(le32(b, at + 4)) << 32)
}

/// What listing an image may cost, in proportion to its length: a hostile image can name one
/// inode, listing or data run from many places, multiplying what it makes the reader do.
struct Budget {
    fs: &'static str,
    members: u64,
    path_bytes: u64,
    hashed: u64,
}

impl Budget {
    fn new(fs: &'static str, len: u64) -> Budget {
        Budget {
            fs,
            // Every member takes an inode and a directory entry, 40 bytes and more before
            // squashfs compresses them (honestly, ~4:1 to 10:1): two members per byte of image
            // and 64 path bytes per byte are far past what an honest image needs, and linear.
            members: len.saturating_mul(2).saturating_add(1024),
            path_bytes: len.saturating_mul(64).saturating_add(16 << 20),
            hashed: len.saturating_mul(4),
        }
    }

    fn bad(&self, offset: u64, what: String) -> FsReadError {
        FsReadError::Malformed { fs: self.fs, offset, what }
    }

    /// `dir/name` (or `name` at the root), a member more, refused past the bounds.
    fn join(&mut self, at: u64, dir: &str, name: &[u8]) -> Result<String, FsReadError> {
        if name.len() > MAX_NAME {
            return Err(self.bad(at, format!("{dir}: a name of {} bytes", name.len())));
        }
        let name = String::from_utf8_lossy(name);
        let path = if dir.is_empty() { name.into_owned() } else { format!("{dir}/{name}") };
        if path.len() > MAX_PATH {
            return Err(self.bad(at, format!("{dir}: a path of {} bytes", path.len())));
        }
        let n = path.len() as u64;
        if self.members == 0 || self.path_bytes < n {
            return Err(self.bad(at, format!("{path}: more members than the image can hold")));
        }
        self.members -= 1;
        self.path_bytes -= n;
        Ok(path)
    }

    /// `n` bytes more to hash for `path`, refused past 4 × the image's length.
    fn hash(&mut self, at: u64, path: &str, n: u64) -> Result<(), FsReadError> {
        self.hashed = self.hashed.checked_sub(n).ok_or_else(|| {
            self.bad(at, format!("{path}: more file data than 4 × the image's length"))
        })?;
        Ok(())
    }
}

/// An inode's mode, owner and mtime: what every member takes from it, in either format.
#[derive(Debug, Clone, Copy)]
struct Stat {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

/// The member at `path`: `stat`'s permission bits, owner and mtime, and what the reader found.
fn member(
    path: &str,
    stat: Stat,
    kind: crate::compare::Kind,
    size: u64,
    sha256: [u8; 32],
    extra: String,
) -> crate::compare::Member {
    crate::compare::Member {
        path: path.to_string(),
        kind,
        mode: stat.mode & 0o7777,
        uid: stat.uid,
        gid: stat.gid,
        mtime: stat.mtime,
        size,
        sha256,
        extra,
    }
}

/// Kernel `new_encode_dev` numbers as compared text.
fn dev_text(dev: u32) -> String {
    let major = (dev >> 8) & 0xfff;
    let minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    format!("dev {major},{minor}")
}

/// A file type from the mode's type bits, as the compared kind.
fn special_kind(mode: u32) -> crate::compare::Kind {
    let what = match mode & 0o170000 {
        0o060000 => "block device",
        0o020000 => "character device",
        0o010000 => "fifo",
        0o140000 => "socket",
        _ => "unknown type",
    };
    crate::compare::Kind::Other(what.into())
}
