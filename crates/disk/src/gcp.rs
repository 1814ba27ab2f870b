//! Compute Engine's import format: a gzip'd tar whose only member is `disk.raw`.
//!
//! The member is written by baleen-formats' [`TarWriter`] (the headers Go's `archive/tar`
//! writes): mtime LinuxKit's epoch, owner root, mode 0644; a disk of 8 GiB or more gets its size
//! in a PAX record, as Go and GNU tar write it. The gzip header (baleen-formats' parallel gzip)
//! carries no name and mtime 0, so the archive depends only on the disk. Non-goal: GNU sparse
//! members (the gzip stream makes zero runs small anyway).

use crate::sparse::SparseError;
use baleen_formats::{ParallelGzip, TarWriter};
use baleen_tree::{Entry, EntryKind, EntrySink, Mtime, DEFAULT_MTIME};
use flate2::Compression;
use std::io::{self, BufReader, Read, Write};

/// Writes `disk.raw` (the `size`-byte raw image, read from `raw` once from where it stands: it
/// can be a pipe) as a gzip'd tar to `out`.
pub fn write_gcp_tar<R: Read, W: Write>(raw: &mut R, size: u64, out: W) -> Result<(), SparseError> {
    let w = |source| SparseError::Write { source };
    // One gzip member compressed on every core; its bytes do not depend on the thread count.
    // Level 6, not LinuxKit's `gzip -9`: most of a disk is zeros or already-compressed bytes
    // (stored either way), and on the rest, the FATs of the boot partition, level 9 takes
    // five times as long (8 against 45 MiB/s on a core) to make the archive 0.4–1 % smaller.
    let mut tar = TarWriter::new(ParallelGzip::new(out, Compression::default(), 0));
    let mut entry = Entry::new("disk.raw", EntryKind::File { size }, 0o644);
    entry.mtime = Mtime::secs(DEFAULT_MTIME);
    // Whole gzip blocks at a time from the source: most of a GiB disk is zeros, which the gzip
    // writer deflates once and reuses, so 8 KiB reads from a pipe would dominate.
    let inner = BufReader::with_capacity(baleen_formats::BLOCK_SIZE, raw.take(size));
    let mut src = Counted { inner, n: 0, failed: false };
    match tar.add(&entry, &mut src) {
        Ok(()) => {}
        Err(source) if src.failed => return Err(SparseError::Read { offset: src.n, source }),
        // The tar writer's own complaint: the disk ended before `size`.
        Err(source) if source.kind() == io::ErrorKind::UnexpectedEof && src.n < size => {
            let source = io::Error::new(io::ErrorKind::UnexpectedEof, "raw disk too short");
            return Err(SparseError::Read { offset: src.n, source });
        }
        Err(source) => return Err(w(source)),
    }
    tar.finish().map_err(w)?.finish().map_err(w)?;
    Ok(())
}

/// Counts what the raw disk gave and whether it was the one that failed, so a read error is
/// told from a write error.
struct Counted<R> {
    inner: R,
    n: u64,
    failed: bool,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let got = self.inner.read(buf).inspect_err(|_| self.failed = true)?;
        self.n += got as u64;
        Ok(got)
    }
}
