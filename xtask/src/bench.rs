//! `cargo xtask bench [--quick]`: reproducible performance figures, printed as Markdown and
//! appended to docs/benchmarks.md with the date, the machine and baleen's commit.
//!
//! What it measures, each as child processes timed with `wait4` (own peak RSS per child):
//! build time cold (pulled from a loopback registry) and warm, for every output format that
//! builds today; sizes of the outputs and of the init; growth of time and memory with the size
//! of a service image and with the number of services; boot timeline under qemu (TCG); pulls,
//! baleen vs `skopeo copy`; our parallel gzip vs `pigz` and `gzip` on the same cpio. Every
//! comparison alternates its contenders run by run (A B A B…), so ratios hold on a busy machine.
//!
//! It also times what a new user waits for with the examples: `baleen pkg build` of each
//! component they name (cold and warm `.deb` cache), `baleen build` of each `examples/*.yml`
//! (cold and warm), and boots of two of them; minimal built for arm64 next to amd64 and booted
//! under qemu-system-aarch64 (TCG); and every format on a 1 GiB system next to `cp`
//! of its output (`--format-size`, 256 MiB by default: at 1 GiB that table alone takes half an
//! hour on 2 cores). `--only SECTION,…` runs some sections; the heading names the command, so a
//! partial table says what it is.
//!
//! Not a test: `cargo xtask test` never runs it. The dev-profile xtask only builds the release
//! binaries (baleen, and xtask itself, whose optimised copy generates the images and is the
//! parallel-gzip contender) and hands over to them.

mod arm64;
mod bigformats;
mod boot;
mod examples;
mod gen;
mod measure;
mod parse;
mod sections;

use crate::deps;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// What the bench installs, with what for.
const BENCH_PACKAGES: &[(&str, &str)] = &[
    ("qemu-system-x86", "boot timings"),
    ("seabios", "BIOS firmware for the boots"),
    ("docker-registry", "the loopback registry cold builds pull from"),
    ("skopeo", "the pull comparison"),
    ("pigz", "the compression comparison"),
    ("gzip", "the compression comparison"),
    ("busybox-static", "the services' userland"),
    ("systemd-boot-efi", "the EFI stub of every EFI format"),
    ("isolinux", "the BIOS loader of iso-bios"),
    ("syslinux-common", "ldlinux.c32 for iso-bios"),
    ("syslinux", "the SYSLINUX of the BIOS disks"),
    ("qemu-system-arm", "the arm64 boot timeline"),
    ("qemu-efi-aarch64", "AAVMF, the firmware of the arm64 raw-efi boot"),
];

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("--gzip-worker") => return gzip_worker(&args[1..]),
        Some("--rusage-child") => return measure::rusage_child(&args[1..]),
        _ => {}
    }
    let mut quick = false;
    let mut only: Option<Vec<String>> = None;
    let mut format_size = "256m";
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--format-size" => {
                let v = it.next().map(String::as_str).unwrap_or("");
                format_size = sections::size_points(false)
                    .into_iter()
                    .map(|(l, _)| l)
                    .find(|l| *l == v)
                    .with_context(|| {
                        format!("--format-size: `{v}` is not one of 16m, 256m, 1g, 2g")
                    })?;
            }
            "--only" => {
                let list = it.next().context("--only needs a comma-separated list of sections")?;
                only = Some(list.split(',').map(str::to_owned).collect());
            }
            other => {
                bail!("bench: unknown argument `{other}` (usage: cargo xtask bench [--quick] [--only SECTION,…] [--format-size 16m|256m|1g|2g])")
            }
        }
    }
    let root = crate::tasks::root();
    if cfg!(debug_assertions) {
        return hand_over(&root, args);
    }
    let started = Instant::now();
    deps::ensure_packages(BENCH_PACKAGES)?;
    // The systems benchmarked boot baleen-init, a static musl binary.
    deps::ensure_rust_target(deps::MUSL_TARGET)?;
    // The arm64 section cross-builds it.
    deps::ensure_rust_target(deps::ARM64_MUSL_TARGET)?;
    let mut bench = sections::Bench::prepare(&root, quick, format_size)?;
    bench.run_all(only.as_deref())?;
    let command = std::iter::once("cargo xtask bench").chain(args.iter().map(String::as_str));
    let report = bench.report(started.elapsed(), &command.collect::<Vec<_>>().join(" "))?;
    print!("{report}");
    let doc = root.join("docs/benchmarks.md");
    let mut text = std::fs::read_to_string(&doc).unwrap_or_else(|_| "# Benchmarks\n".into());
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push('\n');
    text.push_str(&report);
    std::fs::write(&doc, text).with_context(|| format!("appending to {}", doc.display()))?;
    eprintln!("xtask: bench: appended to {}", doc.display());
    Ok(())
}

/// Builds the release binaries, then runs the optimised xtask with the same arguments: image
/// generation and the in-process gzip must not be measured (or wait) in a debug build.
fn hand_over(root: &Path, args: &[String]) -> Result<()> {
    eprintln!("xtask: bench: building release binaries (baleen, xtask)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(["build", "--release", "-q", "-p", "baleen", "-p", "xtask"])
        .current_dir(root)
        .status()
        .context("running cargo build --release")?;
    if !status.success() {
        bail!("cargo build --release -p baleen -p xtask failed");
    }
    let status = Command::new(release_bin(root, "xtask"))
        .arg("bench")
        .args(args)
        .current_dir(root)
        .env("CARGO", cargo)
        .status()
        .context("starting the release xtask")?;
    if !status.success() {
        bail!("the benchmark failed ({status})");
    }
    Ok(())
}

pub fn release_bin(root: &Path, name: &str) -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    target.join("release").join(name)
}

/// `xtask bench --gzip-worker IN OUT`: baleen's ParallelGzip (every core, level 6, as the initrd
/// writer uses it) from file to file, the contender of `pigz -6` and `gzip -6`.
fn gzip_worker(args: &[String]) -> Result<()> {
    let [input, output] = args else { bail!("usage: xtask bench --gzip-worker IN OUT") };
    let mut r = std::fs::File::open(input).with_context(|| format!("opening {input}"))?;
    let w = std::fs::File::create(output).with_context(|| format!("creating {output}"))?;
    let mut gz = baleen_formats::ParallelGzip::new(w, flate2::Compression::default(), 0);
    std::io::copy(&mut r, &mut gz).with_context(|| format!("compressing {input}"))?;
    gz.finish()?.sync_all()?;
    Ok(())
}
