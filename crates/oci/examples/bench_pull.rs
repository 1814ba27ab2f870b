//! Cold pull of a ≥200 MB multi-layer image from a loopback registry: baleen vs `skopeo copy`
//! to an OCI layout, same run, same registry. Run with
//! `cargo run -p baleen-oci --release --example bench_pull [-- MB LAYERS RUNS]`.
//! Prints a Markdown table for docs/benchmarks.md.

use baleen_oci::{
    pull_blocking, push_blocking, Platform, PullOptions, PushOptions, Reference, Store,
};
use baleen_testkit::image::ImageBuilder;
use baleen_testkit::layers::file;
use baleen_testkit::registry::Registry;
use std::time::{Duration, Instant};

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_add(0x9e3779b97f4a7c15);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (mb, layers, runs) = (
        args.first().copied().unwrap_or(220),
        args.get(1).copied().unwrap_or(4),
        args.get(2).copied().unwrap_or(3),
    );
    let Some(reg) = Registry::plain() else { return };
    let mut b = ImageBuilder::new();
    for i in 0..layers {
        b = b.layer(&[file(&format!("data/{i}"), &noise(mb * 1_000_000 / layers, i as u64))]);
    }
    let img = b.build();
    let total: usize = img.layers.iter().map(|l| l.data.len()).sum();
    let name = format!("{}/bench/big:1", reg.host);
    let r = Reference::parse(&name).unwrap();
    let src = tempfile::tempdir().unwrap();
    img.write_layout(src.path(), &name);
    let t = Instant::now();
    push_blocking(&Store::open(src.path()).unwrap(), &r, &r, &PushOptions::default()).unwrap();
    let push_time = t.elapsed();

    let mut baleen = Vec::new();
    let mut skopeo = Vec::new();
    let skopeo_bin = baleen_testkit::require_tool("skopeo");
    for _ in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t = Instant::now();
        pull_blocking(
            &store,
            &r,
            &Platform::parse("linux/amd64").unwrap(),
            &PullOptions::default(),
        )
        .unwrap();
        baleen.push(t.elapsed());
        if let Some(s) = &skopeo_bin {
            let dir = tempfile::tempdir().unwrap();
            let t = Instant::now();
            let st = std::process::Command::new(s)
                .args(["copy", "--quiet", "--src-tls-verify=false", &format!("docker://{name}")])
                .arg(format!("oci:{}:big", dir.path().join("layout").display()))
                .status()
                .unwrap();
            assert!(st.success());
            skopeo.push(t.elapsed());
        }
    }
    let mbs = |d: Duration| total as f64 / 1e6 / d.as_secs_f64();
    println!(
        "image: {layers} layers, {:.1} MB compressed; runs: {runs} (median)",
        total as f64 / 1e6
    );
    println!();
    println!("| tool | cold pull (median) | MB/s |");
    println!("|---|---|---|");
    let b = median(baleen.clone());
    println!("| baleen | {:.2} s | {:.0} |", b.as_secs_f64(), mbs(b));
    if !skopeo.is_empty() {
        let s = median(skopeo.clone());
        println!("| skopeo copy → oci: | {:.2} s | {:.0} |", s.as_secs_f64(), mbs(s));
    }
    println!();
    println!(
        "all runs: baleen {baleen:.2?}, skopeo {skopeo:.2?}; baleen push: {:.2} s",
        push_time.as_secs_f64()
    );
}
