//! Time and peak memory of the squashfs and erofs writers for a tree of N MiB (half
//! incompressible, half text-like, in 20 000 files of mixed sizes across 200 directories),
//! against a plain copy of the same bytes. `cargo run --release -p baleen-formats --example
//! rootfs_bench -- 1024` (BENCH_DIR picks the disk, default /var/tmp).

use baleen_formats::{ErofsWriter, SquashfsWriter};
use baleen_tree::{Entry, EntryKind, EntrySink};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::Instant;

fn peak_rss_mib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The files: (path, size, seed); contents come from [`fill`].
fn plan(mib: u64) -> Vec<(String, usize, u64)> {
    let total = (mib << 20) as usize;
    let n = 20_000usize;
    let mut out = Vec::with_capacity(n);
    let mut left = total;
    for i in 0..n {
        // Sizes skewed like a root filesystem: many small, a few large.
        let size = if i % 1000 == 0 { total / 40 } else { (total / n / 4).max(1) * (1 + i % 3) };
        let size = size.min(left);
        left -= size;
        out.push((format!("d{:03}/f{i:05}", i % 200), size, i as u64 + 1));
    }
    out
}

fn fill(buf: &mut [u8], seed: u64) {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let text = seed % 2 == 0;
    for (i, b) in buf.iter_mut().enumerate() {
        if text {
            *b = b"the quick brown fox jumps over the lazy dog\n"[i % 44];
        } else {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
}

fn feed<S: EntrySink>(sink: &mut S, files: &[(String, usize, u64)]) {
    let mut buf = Vec::new();
    for d in 0..200 {
        sink.add(&Entry::new(format!("d{d:03}"), EntryKind::Dir, 0o755), &mut std::io::empty())
            .unwrap();
    }
    for (path, size, seed) in files {
        buf.resize(*size, 0);
        fill(&mut buf, *seed);
        let e = Entry::new(path.as_str(), EntryKind::File { size: *size as u64 }, 0o644);
        sink.add(&e, &mut &buf[..]).unwrap();
    }
}

fn main() {
    let mib: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(256);
    let dir =
        tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()))
            .unwrap();
    let files = plan(mib);
    println!("| step | seconds | MiB/s in | output MiB | peak RSS MiB |");
    println!("|---|---|---|---|---|");
    let report = |step: &str, secs: f64, out: u64| {
        println!(
            "| {step} | {secs:.1} | {:.0} | {} | {} |",
            mib as f64 / secs,
            out >> 20,
            peak_rss_mib()
        );
    };
    // Reference: the same bytes written to one file, as cp would.
    reset_peak();
    let t = Instant::now();
    {
        let mut w = BufWriter::new(File::create(dir.path().join("copy")).unwrap());
        let mut buf = Vec::new();
        for (_, size, seed) in &files {
            buf.resize(*size, 0);
            fill(&mut buf, *seed);
            w.write_all(&buf).unwrap();
        }
        w.into_inner().unwrap().sync_all().unwrap();
    }
    report("generate + write (reference)", t.elapsed().as_secs_f64(), mib << 20);

    reset_peak();
    let t = Instant::now();
    let f = File::create(dir.path().join("root.squashfs")).unwrap();
    let mut w = SquashfsWriter::new(BufWriter::new(f)).unwrap();
    feed(&mut w, &files);
    let f = w.finish().unwrap().into_inner().unwrap();
    f.sync_all().unwrap();
    report("squashfs (gzip)", t.elapsed().as_secs_f64(), f.metadata().unwrap().len());

    reset_peak();
    let t = Instant::now();
    let f = File::create(dir.path().join("root.erofs")).unwrap();
    let mut w = ErofsWriter::new(BufWriter::new(f)).unwrap();
    feed(&mut w, &files);
    let f = w.finish().unwrap().into_inner().unwrap();
    f.sync_all().unwrap();
    report("erofs (uncompressed)", t.elapsed().as_secs_f64(), f.metadata().unwrap().len());

    // The reference tools on the same tree written out as files (not counted in their time).
    let tree = dir.path().join("tree");
    for (path, size, seed) in &files {
        let p = tree.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let mut buf = vec![0u8; *size];
        fill(&mut buf, *seed);
        std::fs::write(p, buf).unwrap();
    }
    let tool = |step: &str, prog: &str, args: &[&std::ffi::OsStr], out: &std::path::Path| {
        let t = Instant::now();
        match std::process::Command::new(prog)
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
        {
            Ok(s) if s.success() => {
                let len = std::fs::metadata(out).map_or(0, |m| m.len());
                println!(
                    "| {step} | {:.1} | {:.0} | {} | (separate process) |",
                    t.elapsed().as_secs_f64(),
                    mib as f64 / t.elapsed().as_secs_f64(),
                    len >> 20
                );
            }
            _ => println!("| {step} | not run ({prog} missing or failed) | | | |"),
        }
    };
    let sq = dir.path().join("ref.squashfs");
    tool(
        "mksquashfs -no-fragments (gzip 9, all cores)",
        "mksquashfs",
        &[
            tree.as_os_str(),
            sq.as_os_str(),
            "-noappend".as_ref(),
            "-no-fragments".as_ref(),
            "-quiet".as_ref(),
        ],
        &sq,
    );
    let er = dir.path().join("ref.erofs");
    tool("mkfs.erofs (uncompressed)", "mkfs.erofs", &[er.as_os_str(), tree.as_os_str()], &er);
}
