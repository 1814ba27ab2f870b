//! Bounds on what images may expand to: a layer that decompresses far beyond its size (a
//! decompression bomb), and a tree holding more file data than the caller allows. A 20 MB layer
//! of zeros would otherwise stream 20 GiB into a tar, or an initrd that unpacks to 12 GiB of RAM
//! at boot.
//!
//! [`Limits`] is what the caller sets (`baleen build --max-size`, `--max-expansion`); the
//! expansion check runs while a layer is read ([`Expanding`], in `flatten`), the tree's size as
//! entries enter the sink ([`Bounded`], in `TreeWriter`), before any byte of the entry is written.
//!
//! The kernel that `--decompress-kernel` gunzips is held to the same two bounds (`kernel.rs`),
//! counted in a first pass that keeps nothing.
//!
//! Non-goal: bounding memory (the tree streams).

use crate::entry::{Entry, EntryKind, EntrySink};
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

impl Expansion {
    /// The bomb verdict on a layer of `compressed` bytes once `expanded` bytes of it have come
    /// out, if the bound is crossed.
    fn crossed(self, expanded: u64, compressed: u64) -> bool {
        expanded > self.floor && expanded > compressed.saturating_mul(self.ratio)
    }

    /// Refuses a layer whose whole compressed size is `size` as soon as what it has expanded to
    /// plus what its next entry declares crosses the bound: reading that entry's data would
    /// cross it anyway (the bytes read so far are at most `size`), so the verdict is the one
    /// [`Expanding`] would reach, without decompressing a gigabyte first.
    pub(crate) fn check_declared(
        self,
        expanded: u64,
        declared: u64,
        size: u64,
    ) -> Result<(), LimitError> {
        let declared = expanded.saturating_add(declared);
        if self.crossed(declared, size) {
            let (ratio, floor) = (self.ratio, self.floor);
            return Err(LimitError::WouldExpand { declared, compressed: size, ratio, floor });
        }
        Ok(())
    }
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
        "it expanded to {expanded} bytes from {compressed} compressed, more than \
         {ratio} times its compressed size (past {}): refused as a decompression bomb",
        bytes(*floor)
    )]
    Expands { expanded: u64, compressed: u64, ratio: u64, floor: u64 },
    #[error(
        "its entries declare {declared} bytes from {compressed} compressed, more than {ratio} \
         times its compressed size (past {}): refused as a decompression bomb before expanding it",
        bytes(*floor)
    )]
    WouldExpand { declared: u64, compressed: u64, ratio: u64, floor: u64 },
    #[error(
        "the path is {len} bytes long; Linux takes at most {PATH_MAX} (PATH_MAX, with its NUL)"
    )]
    PathTooLong { len: usize },
    #[error(
        "the name {} is {len} bytes long; Linux takes at most {NAME_MAX} (NAME_MAX)",
        shown(name)
    )]
    NameTooLong { name: String, len: usize },
    #[error("the {what} target is {len} bytes long; Linux takes at most {PATH_MAX} (PATH_MAX)")]
    TargetTooLong { what: &'static str, len: usize },
}

/// The longest path Linux takes (`PATH_MAX`, 4096, counts the NUL); paths in the tree have no
/// leading `/`, which the kernel's initramfs unpacker does not add either.
pub const PATH_MAX: usize = 4095;
/// The longest name of one path component (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// Refuses what no Linux filesystem can hold, for every format: a path past [`PATH_MAX`], a
/// component past [`NAME_MAX`], a link target past [`PATH_MAX`].
fn check_names(entry: &Entry) -> Result<(), LimitError> {
    if let Some(name) = entry.path.split('/').find(|c| c.len() > NAME_MAX) {
        return Err(LimitError::NameTooLong { name: name.to_string(), len: name.len() });
    }
    if entry.path.len() > PATH_MAX {
        return Err(LimitError::PathTooLong { len: entry.path.len() });
    }
    let (what, target) = match &entry.kind {
        EntryKind::Symlink { target } => ("symlink", target),
        EntryKind::HardLink { target } => ("hard link", target),
        _ => return Ok(()),
    };
    if target.len() > PATH_MAX {
        return Err(LimitError::TargetTooLong { what, len: target.len() });
    }
    Ok(())
}

/// A name from an input, quoted for an error message: whole when short, else its start and end
/// around `…` with its length, so a 100 KB path does not bury the message.
pub fn shown(s: &str) -> String {
    const HEAD: usize = 60;
    const TAIL: usize = 40;
    if s.len() <= HEAD + TAIL + 20 {
        return format!("{s:?}");
    }
    let head = s.char_indices().take_while(|(i, _)| *i < HEAD).map(|(_, c)| c);
    let tail_start = (s.len() - TAIL..s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(s.len());
    let short: String = head.chain("…".chars()).chain(s[tail_start..].chars()).collect();
    format!("{short:?} ({} bytes)", s.len())
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
    pub expanded: Rc<Cell<u64>>,
    pub tripped: Option<LimitError>,
}

impl<R: Read> Read for Expanding<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.tripped {
            return Err(io::Error::other(e.clone()));
        }
        let n = self.inner.read(buf)?;
        let expanded = self.expanded.get().saturating_add(n as u64);
        self.expanded.set(expanded);
        if let Some(b) = self.bound {
            let compressed = self.compressed.get();
            if b.crossed(expanded, compressed) {
                let e =
                    LimitError::Expands { expanded, compressed, ratio: b.ratio, floor: b.floor };
                self.tripped = Some(e.clone());
                return Err(io::Error::other(e));
            }
        }
        Ok(n)
    }
}

/// The sink every `TreeWriter` writes through: refuses names Linux cannot hold, adds up the
/// entries' sizes and refuses the entry that would take the tree past
/// [`Limits::max_tree_bytes`], before its data is read.
#[derive(Debug)]
pub(crate) struct Bounded<S> {
    pub inner: S,
    pub max: Option<u64>,
    pub total: u64,
}

impl<S: EntrySink> EntrySink for Bounded<S> {
    fn add(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        check_names(entry).map_err(io::Error::other)?;
        let total = self.total.saturating_add(entry.size());
        if let Some(limit) = self.max.filter(|&m| total > m) {
            return Err(io::Error::other(LimitError::TreeTooLarge { total, limit }));
        }
        self.total = total;
        self.inner.add(entry, data)
    }
    fn section(&mut self, name: &str) -> io::Result<()> {
        self.inner.section(name)
    }
}

impl<S> Bounded<S> {
    /// Counts `bytes` of file data that reached the sink without passing through `add` (a
    /// section spliced whole from a cache), within the same limit.
    pub fn account(&mut self, bytes: u64) -> io::Result<()> {
        let total = self.total.saturating_add(bytes);
        if let Some(limit) = self.max.filter(|&m| total > m) {
            return Err(io::Error::other(LimitError::TreeTooLarge { total, limit }));
        }
        self.total = total;
        Ok(())
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

    #[test]
    fn long_names_are_shown_by_their_ends() {
        assert_eq!(shown("etc/x"), "\"etc/x\"");
        let long = format!("é{}z", "a".repeat(5000));
        let s = shown(&long);
        assert!(s.starts_with("\"éaaa") && s.ends_with("aaz\" (5003 bytes)"), "{s}");
        assert!(s.len() < 120, "{s}");
    }
}
