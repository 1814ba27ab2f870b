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
        let len = runs.iter().fold(0u64, |sum, r| sum.saturating_add(r.1));
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
            // A hostile table (a GPT entry) may end a run past 2^64 bytes.
            let from = at.checked_add(skip).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "a byte run ends past 2^64 bytes")
            })?;
            self.inner.seek(SeekFrom::Start(from))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A hostile GPT entry may place a partition whose end lies past 2^64 bytes (its start and
    /// length each fit): reading far into it added past u64::MAX (a panic, or in a release
    /// build a wrapped offset that read the disk's own start). It is an error now.
    #[test]
    fn a_run_ending_past_u64_max_is_an_error_not_a_wrapped_offset() {
        let mut disk = std::io::Cursor::new(vec![7u8; 64]);
        let mut part = Runs::new(&mut disk, vec![(u64::MAX - 8, 64)]);
        part.seek(SeekFrom::Start(32)).unwrap();
        let mut buf = [0u8; 8];
        let err = part.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(buf, [0; 8], "nothing read from a wrapped offset");
    }
}
