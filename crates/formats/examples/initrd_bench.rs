//! Throughput and peak memory of the initrd writer on a synthetic tree (no disk, no network):
//! `cargo run --release -p baleen-formats --example initrd_bench -- [MiB] [threads]`.
//! Prints one line per compression; `cargo xtask bench` can call it.

use baleen_formats::{InitrdCompression, InitrdOptions, InitrdWriter};
use baleen_tree::{Entry, EntryKind, EntrySink};
use std::io::{self, Read};
use std::time::Instant;

/// Text-like data (compresses about 3:1, like binaries and modules do).
struct Synth {
    left: u64,
    state: u64,
}

impl Read for Synth {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.left as usize);
        for b in &mut buf[..n] {
            self.state =
                self.state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let r = (self.state >> 33) as u8;
            *b = if r < 96 { r } else { b"the quick brown fox jumps over "[(r % 31) as usize] };
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        / 1024
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let mib: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(256);
    let threads: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0);
    for compression in [InitrdCompression::Gzip, InitrdCompression::Zstd] {
        let opts = InitrdOptions { compression, threads, prepend_ucode: true };
        let mut w = InitrdWriter::new(io::sink(), io::sink(), opts);
        let start = Instant::now();
        let file_size = 4 << 20;
        for i in 0..(mib << 20) / file_size {
            let e =
                Entry::new(format!("usr/lib/file{i}"), EntryKind::File { size: file_size }, 0o644);
            w.add(&e, &mut Synth { left: file_size, state: i })?;
        }
        let out = w.finish()?;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{compression:?}: {mib} MiB in {secs:.2} s = {:.0} MiB/s, ratio {:.2}, peak RSS {} MiB, threads {}",
            mib as f64 / secs,
            (mib << 20) as f64 / out.initrd_len as f64,
            peak_rss_mib(),
            if threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { threads }
        );
    }
    Ok(())
}
