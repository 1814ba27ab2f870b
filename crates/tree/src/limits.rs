//! Bounds on what images may expand to: a layer that decompresses far beyond its size (a
//! decompression bomb), and a tree holding more file data than the caller allows. A 20 MB layer
//! of zeros would otherwise stream 20 GiB into a tar, or an initrd that unpacks to 12 GiB of RAM
//! at boot.
//!
//! [`Limits`] is what the caller sets (`baleen build --max-size`, `--max-expansion`); the
//! expansion check runs while a layer is read ([`Expanding`], in `flatten`), the tree's size as
//! entries enter the sink ([`Bounded`], in `TreeWriter`), before any byte of the entry is written.
//!
//! Non-goals: bounding memory (the tree streams), or the kernel decompressed in memory for
//! `--decompress-kernel` (bounded by the kernel's own size).

use crate::entry::{Entry, EntrySink};
use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// What the tree refuses to expand to. [`Limits::default`] is baleen's default; [`Limits::NONE`]
/// bounds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes of file data the whole tree may hold (every entry's size, duplicates
    /// included, as every format writes them). `None`: no bound.
    pub max_tree_bytes: Option<u64>,
    /// The decompression-bomb check. `None`: none.
    pub expansion: Option<Expansion>,
}

/// A layer is refused when it has expanded past `floor` bytes and to more than `ratio` times
/// the compressed bytes read so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expansion {
    pub ratio: u64,
    pub floor: u64,
}

/// 64 GiB: far above any system meant to boot, far below what fills a disk by surprise.
pub const DEFAULT_MAX_TREE_BYTES: u64 = 64 << 30;
/// gzip's best case on zeros is about 1,000×; real layers stay under 10×.
pub const DEFAULT_MAX_EXPANSION: u64 = 100;
/// Below 1 GiB no layer is a bomb, whatever its ratio (a 1 MiB sparse file is fine).
pub const EXPANSION_FLOOR: u64 = 1 << 30;

impl Limits {
    pub const NONE: Limits = Limits { max_tree_bytes: None, expansion: None };
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tree_bytes: Some(DEFAULT_MAX_TREE_BYTES),
            expansion: Some(Expansion { ratio: DEFAULT_MAX_EXPANSION, floor: EXPANSION_FLOOR }),
        }
    }
}

/// A limit an entry or a layer went over; carried inside the `io::Error` a sink returns, so the
/// caller can tell it from a failing disk ([`crate::TreeError::limit`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error(
        "the tree would hold {total} bytes of file data, more than the limit of {}",
        bytes(*limit)
    )]
    TreeTooLarge { total: u64, limit: u64 },
    #[error(
        "the layer expanded to {expanded} bytes from {compressed} compressed, more than {ratio} \
         times its size (past {}): refused as a decompression bomb",
        bytes(*floor)
    )]
    Expands { expanded: u64, compressed: u64, ratio: u64, floor: u64 },
}

/// `64 GiB`, `1.5 MiB`, `512 bytes`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    let mut unit = "bytes";
    let mut whole = n;
    let mut scale = 1u64;
    for u in UNITS {
        if whole < 1024 {
            break;
        }
        whole /= 1024;
        scale *= 1024;
        unit = u;
    }
    let tenths = (n % scale) * 10 / scale;
    if tenths == 0 {
        format!("{whole} {unit}")
    } else {
        format!("{whole}.{tenths} {unit}")
    }
}

/// Counts the bytes read through it into a shared cell: the compressed side of a layer.
pub(crate) struct Counting<R> {
    pub inner: R,
    pub count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get().saturating_add(n as u64));
        Ok(n)
    }
}

/// The decompressed side of a layer: fails once the [`Expansion`] bound is crossed, and
/// remembers that it did, so `flatten` reports the bomb rather than the read error it caused.
pub(crate) struct Expanding<R> {
    pub inner: R,
    pub compressed: Rc<Cell<u64>>,
    pub bound: Option<Expansion>,
    pub expanded: u64,
    pub tripped: Option<LimitError>,
}

impl<R: Read> Read for Expanding<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.tripped {
            return Err(io::Error::other(e.clone()));
        }
        let n = self.inner.read(buf)?;
        self.expanded = self.expanded.saturating_add(n as u64);
        if let Some(b) = self.bound {
            let compressed = self.compressed.get();
            if self.expanded > b.floor && self.expanded > compressed.saturating_mul(b.ratio) {
                let e = LimitError::Expands {
                    expanded: self.expanded,
                    compressed,
                    ratio: b.ratio,
                    floor: b.floor,
                };
                self.tripped = Some(e.clone());
                return Err(io::Error::other(e));
            }
        }
        Ok(n)
    }
}

/// The sink every `TreeWriter` writes through: adds up the entries' sizes and refuses the
/// entry that would take the tree past [`Limits::max_tree_bytes`], before its data is read.
#[derive(Debug)]
pub(crate) struct Bounded<S> {
    pub inner: S,
    pub max: Option<u64>,
    pub total: u64,
}

impl<S: EntrySink> EntrySink for Bounded<S> {
    fn add(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        let total = self.total.saturating_add(entry.size());
        if let Some(limit) = self.max.filter(|&m| total > m) {
            return Err(io::Error::other(LimitError::TreeTooLarge { total, limit }));
        }
        self.total = total;
        self.inner.add(entry, data)
    }
}

/// The limit inside an `io::Error` from [`Bounded`] or [`Expanding`], if that is what it is.
pub(crate) fn limit_of(e: &io::Error) -> Option<&LimitError> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<LimitError>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(bytes(64 << 30), "64 GiB");
        assert_eq!(bytes(3 << 19), "1.5 MiB");
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(1 << 20), "1 MiB");
    }
}
