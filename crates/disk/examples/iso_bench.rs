//! Time and peak memory of the ISO 9660 writer on a synthetic tree:
//! `cargo run --release -p baleen-disk --example iso_bench -- MIB [FILES] [DIR]` writes FILES
//! files (default 2000) of incompressible data totalling MIB MiB into DIR (default /var/tmp),
//! then copies the ISO with `cp` as the reference.

use baleen_disk::{IsoOptions, IsoTree};
use baleen_tree::{Entry, EntryKind, EntrySink};
use std::io::{BufWriter, Read, Write};
use std::time::Instant;

struct Noise {
    state: u64,
    left: u64,
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.left as usize) & !7;
        let n = if n == 0 { buf.len().min(self.left as usize) } else { n };
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            chunk.copy_from_slice(&self.state.to_le_bytes()[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mib: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(256);
    let files: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let dir = std::path::PathBuf::from(args.get(3).map_or("/var/tmp", String::as_str));
    let each = (mib << 20) / files;
    let t = Instant::now();
    let mut tree = IsoTree::new(tempfile::tempfile_in(&dir).unwrap());
    for i in 0..files {
        let e = Entry::new(format!("d{}/f{i}", i % 50), EntryKind::File { size: each }, 0o644);
        tree.add(&e, &mut Noise { state: i + 1, left: each }).unwrap();
    }
    let pass1 = t.elapsed().as_secs_f64();
    let path = dir.join("iso_bench.iso");
    let out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
    let t = Instant::now();
    let mut out = out;
    let n = tree
        .write(&IsoOptions { volume_id: "LinuxKit", joliet: true, bios: None }, &mut out)
        .unwrap();
    out.flush().unwrap();
    drop(out);
    let pass2 = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let copy = dir.join("iso_bench.copy");
    std::process::Command::new("cp").arg(&path).arg(&copy).status().unwrap();
    let cp = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&copy);
    let _ = std::fs::remove_file(&path);
    let m = n as f64 / f64::from(1 << 20);
    println!("{files} files, {m:.0} MiB ISO");
    println!("pass 1 (spool): {pass1:.1} s, {:.0} MiB/s", m / pass1);
    println!("pass 2 (write): {pass2:.1} s, {:.0} MiB/s", m / pass2);
    println!("cp of the ISO:  {cp:.1} s, {:.0} MiB/s", m / cp);
    println!("peak RSS: {} MiB", peak_rss_mib());
}
