//! Byte runs of a reader seen as one file: a FAT file's clusters, a partition of a disk, a file
//! of an ISO, a PE section. `baleen verify` compares through them and `baleen audit` reads the
//! system's tree through them, nested (a UKI's `.initrd` in a FAT volume in a disk).

use std::io::{self, Read, Seek, SeekFrom};

/// Byte runs of a reader seen as one file: a FAT file's clusters, a partition.
pub struct Runs<'a, R: ?Sized> {
    inner: &'a mut R,
    /// (offset in `inner`, length), in file order.
    runs: Vec<(u64, u64)>,
    len: u64,
    pos: u64,
}

impl<'a, R: ?Sized> Runs<'a, R> {
    pub fn new(inner: &'a mut R, runs: Vec<(u64, u64)>) -> Self {
        let len = runs.iter().map(|r| r.1).sum();
        Runs { inner, runs, len, pos: 0 }
    }
}

impl<R: Read + Seek + ?Sized> Read for Runs<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut skip = self.pos;
        for &(at, n) in &self.runs {
            if skip >= n {
                skip -= n;
                continue;
            }
            let want = usize::try_from(n - skip).unwrap_or(usize::MAX).min(buf.len());
            self.inner.seek(SeekFrom::Start(at + skip))?;
            let got = self.inner.read(&mut buf[..want])?;
            self.pos += got as u64;
            return Ok(got);
        }
        Ok(0)
    }
}

impl<R: Read + Seek + ?Sized> Seek for Runs<'_, R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| io::Error::other("seek before the start"))?;
        Ok(self.pos)
    }
}
