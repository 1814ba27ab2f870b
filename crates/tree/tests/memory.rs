//! Streaming: a layer holding a 512 MiB file goes through the tree without the process growing by
//! anything near that. Its own test binary, so the peak-RSS reading is not shared with others.

use baleen_tree::*;
use std::io::{self, Read};

static PATTERN: [u8; 65536] = {
    let mut p = [0u8; 65536];
    let mut i = 0;
    while i < p.len() {
        p[i] = (i % 251) as u8;
        i += 1;
    }
    p
};

/// A tar stream with one big file, generated on the fly (never held in memory).
struct BigTar {
    head: Vec<u8>,
    pos: u64,
    size: u64,
}

impl BigTar {
    fn new(size: u64) -> Self {
        let mut h = tar::Header::new_ustar();
        h.set_path("big/file").unwrap();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        BigTar { head: h.as_bytes().to_vec(), pos: 0, size }
    }
}

impl Read for BigTar {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let total = 512 + self.size.next_multiple_of(512) + 1024;
        if self.pos >= total {
            return Ok(0);
        }
        let p = self.pos;
        let n = if p < 512 {
            let n = buf.len().min((512 - p) as usize);
            buf[..n].copy_from_slice(&self.head[p as usize..p as usize + n]);
            n
        } else if p < 512 + self.size {
            // Data: a byte pattern, copied in chunks (a per-byte loop is slow in debug builds).
            let n = buf.len().min((512 + self.size - p) as usize).min(PATTERN.len());
            buf[..n].copy_from_slice(&PATTERN[..n]);
            n
        } else {
            let n = buf.len().min((total - p) as usize);
            buf[..n].fill(0);
            n
        };
        self.pos += n as u64;
        Ok(n)
    }
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Counts what reaches it and drops it.
struct Count(u64);
impl EntrySink for Count {
    fn add(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        let n = io::copy(data, &mut io::sink())?;
        assert_eq!(n, entry.size());
        self.0 += n;
        Ok(())
    }
}

#[test]
fn a_512_mib_file_streams_through_the_tree() {
    const SIZE: u64 = 512 << 20;
    let before = peak_rss_kib();
    let img = Image {
        reference: "big".into(),
        layers: vec![Layer::new(
            "sha256:big",
            "application/vnd.oci.image.layer.v1.tar",
            BigTar::new(SIZE),
        )],
    };
    let mut w = TreeWriter::new(Count(0));
    w.init(0, img).unwrap();
    let sink = w.into_sink();
    assert!(sink.0 >= SIZE);
    if let (Some(b), Some(a)) = (before, peak_rss_kib()) {
        let grown_mib = a.saturating_sub(b) / 1024;
        eprintln!("peak RSS grew by {grown_mib} MiB while streaming {} MiB", SIZE >> 20);
        assert!(grown_mib < 64, "peak RSS grew by {grown_mib} MiB: file data is being buffered");
    }
}
