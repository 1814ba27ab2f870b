//! Any bytes as a qcow2, VHD, VMDK or gcp output to `baleen verify`: the first byte chooses the
//! container, the rest is the file. `read_back` returns the raw disk's size or says why not;
//! it never panics or hangs, and never writes more than its budget (the input's length, × 1032
//! for deflate'd containers) onto a raw disk of at most 16 TiB.
#![no_main]

use baleen_disk::readback::{read_back, Container, MAX_DISK};
use libfuzzer_sys::fuzz_target;
use std::io::{self, Cursor, Seek, SeekFrom, Write};

/// A raw disk that keeps nothing: its position, and the highest byte written.
#[derive(Default)]
struct Sink {
    pos: u64,
    end: u64,
    written: u64,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len() as u64;
        self.pos = self.pos.checked_add(n).ok_or_else(|| io::Error::other("position overflow"))?;
        self.end = self.end.max(self.pos);
        self.written += n;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Sink {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let base = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.end.checked_add_signed(d),
        };
        self.pos = base.ok_or_else(|| io::Error::other("seek out of range"))?;
        Ok(self.pos)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, file)) = data.split_first() else { return };
    let c = [Container::Qcow2, Container::Vhd, Container::Vmdk, Container::Gcp]
        [usize::from(choice % 4)];
    let mut sink = Sink::default();
    match read_back(c, &mut Cursor::new(file), &mut sink) {
        Ok(size) => {
            assert!(size <= MAX_DISK, "{c:?}: a disk of {size} bytes");
            let budget = match c {
                Container::Qcow2 | Container::Vhd => file.len() as u64,
                Container::Vmdk | Container::Gcp => file.len() as u64 * 1032,
            };
            // Zeros are seeked over; what is written is bounded by the input.
            assert!(sink.written <= budget + (1 << 16), "{c:?}: {} bytes written", sink.written);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
