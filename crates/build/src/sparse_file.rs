//! Reading back a raw disk the build wrote with holes, without the kernel zero-filling the
//! holes page by page: `lseek(SEEK_DATA/SEEK_HOLE)` finds them and they are returned as zeros
//! from user space. A gcp disk is mostly hole (its natural size rounded up to whole GiB), and
//! perf showed ext4's readahead zeroing those pages (`zero_user_segments`) as a fifth of a gcp
//! build's CPU.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::os::unix::fs::FileExt;

/// A `Read + Seek` over a file that knows where its holes are.
pub struct SparseFile {
    file: File,
    len: u64,
    pos: u64,
    /// The extent `pos` was last found in, and whether it holds data.
    extent: Range<u64>,
    data: bool,
}

impl SparseFile {
    pub fn new(file: File) -> io::Result<SparseFile> {
        let len = file.metadata()?.len();
        Ok(SparseFile { file, len, pos: 0, extent: 0..0, data: false })
    }

    /// The extent holding `pos` (< len): data up to the next hole, or a hole up to the next
    /// data. A file system without SEEK_DATA reports all data, which is still correct.
    fn locate(&mut self) -> io::Result<()> {
        use rustix::fs::{seek, SeekFrom as S};
        let next_data = match seek(&self.file, S::Data(self.pos)) {
            Ok(d) => d,
            Err(rustix::io::Errno::NXIO) => self.len, // only a hole from here on
            Err(e) => return Err(e.into()),
        };
        if next_data > self.pos {
            self.extent = self.pos..next_data.min(self.len);
            self.data = false;
        } else {
            let hole = seek(&self.file, S::Hole(self.pos)).map_err(io::Error::from)?;
            self.extent = self.pos..hole.min(self.len);
            self.data = true;
        }
        Ok(())
    }
}

impl Read for SparseFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        if !self.extent.contains(&self.pos) {
            self.locate()?;
        }
        let n = buf.len().min((self.extent.end - self.pos) as usize);
        let n = if self.data {
            self.file.read_at(&mut buf[..n], self.pos)?
        } else {
            buf[..n].fill(0);
            n
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SparseFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::other("seek before the start of the file"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_what_the_file_holds_holes_and_all() {
        // Data, a 3 MiB hole, data, a trailing hole (made by set_len).
        let mut f = tempfile::tempfile().unwrap();
        let a: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8 | 1).collect();
        f.write_all(&a).unwrap();
        f.seek(SeekFrom::Current(3 << 20)).unwrap();
        f.write_all(&a).unwrap();
        f.set_len(8 << 20).unwrap();
        let mut want = Vec::new();
        f.rewind().unwrap();
        f.read_to_end(&mut want).unwrap();
        assert_eq!(want.len(), 8 << 20);

        let mut s = SparseFile::new(f).unwrap();
        for chunk in [1 << 20, 4096, 777] {
            s.rewind().unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0xaa; chunk];
            loop {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert!(got == want, "chunks of {chunk}");
        }
        // Seeks into the middle of a hole and of data.
        let mut b = [0u8; 8];
        s.seek(SeekFrom::Start(2 << 20)).unwrap();
        s.read_exact(&mut b).unwrap();
        assert_eq!(b, [0; 8]);
        assert!(!s.data, "the 3 MiB gap is found as a hole (SEEK_DATA), not read");
        let at = 70_000 + (3 << 20) + 5;
        s.seek(SeekFrom::Start(at)).unwrap();
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b[..], &want[at as usize..at as usize + 8]);
        assert_eq!(s.seek(SeekFrom::End(0)).unwrap(), 8 << 20);
        assert_eq!(s.read(&mut b).unwrap(), 0);
    }
}
