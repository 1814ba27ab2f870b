//! Every format on a big system (the minimal system plus a 256 MiB service image by default,
//! `--format-size 1g` for issue 9's figure; all cached):
//! time, peak RSS and output size of `baleen build -f F`, next to `cp` of the very files it
//! wrote, and two formats again with a zstd initrd. Issue 9's goal, each format writer within 2×
//! of a raw copy with flat memory, is measured alone by `writers` (below); a whole build adds the
//! layers' decompression and the initrd's compression, which these rows show.
//!
//! `cp` here copies files the build just wrote (in the page cache), so it is the cost of writing
//! the bytes once more: the floor a streaming writer can reach. Sparse outputs stay sparse
//! (`cp --sparse=auto`, its default).

use super::measure::{self, bytes, Sample};
use super::sections::{dir_size, size_points, sized_yaml, Bench};
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::process::Command;

impl Bench {
    pub fn big_formats(&mut self) -> Result<()> {
        let point = self.format_size;
        let label = size_points(false)
            .into_iter()
            .find(|(l, _)| *l == point)
            .map_or_else(|| point.to_string(), |(_, n)| bytes(n));
        if self.quick {
            self.notes.push(format!(
                "`--quick` does not build each format with the {label} image; `cargo xtask bench` does."
            ));
            return Ok(());
        }
        let yaml = sized_yaml(point);
        let mut rows: Vec<(String, Sample, Sample, u64)> = Vec::new();
        let mut failed = Vec::new();
        // Every format as LinuxKit builds it (gzip'd initrd), then two with a zstd initrd,
        // where the initrd's compression is what the gzip rows spend most of their time on.
        let mut runs: Vec<(String, String, &[&str])> =
            self.formats.iter().map(|f| (f.clone(), f.clone(), &[][..])).collect();
        for f in ["kernel+initrd", "raw-efi"] {
            if self.formats.iter().any(|g| g == f) {
                let zstd: &[&str] = &["--compress", "zstd"];
                runs.push((format!("{f}, `--compress zstd`"), f.to_string(), zstd));
            }
        }
        for (row, f, extra) in runs {
            let out = self.work.join("bigfmt").join(&f);
            let copy = self.work.join("bigfmt-copy");
            let _ = std::fs::remove_dir_all(&out);
            let _ = std::fs::remove_dir_all(&copy);
            let args: Vec<&str> =
                ["-f", f.as_str()].into_iter().chain(extra.iter().copied()).collect();
            let build = match self.build(&yaml, "big", &self.store.clone(), &out, &args) {
                Ok(s) => s,
                Err(e) => {
                    let msg = format!("{e:#}");
                    let last = msg.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
                    failed.push(format!("{row} ({})", last.trim().trim_start_matches("error: ")));
                    continue;
                }
            };
            let size = dir_size(&out)?;
            std::fs::create_dir_all(&copy)?;
            let mut files: Vec<_> =
                std::fs::read_dir(&out)?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
            files.sort();
            let mut cmd = Command::new("cp");
            cmd.args(&files).arg(&copy);
            let cp = measure::run(&mut cmd, &self.work.join("logs"))?;
            let _ = std::fs::remove_dir_all(&out);
            let _ = std::fs::remove_dir_all(&copy);
            // Each row as it is measured: at 1 GiB this table takes long, and a stopped run
            // should still have told what it saw.
            eprintln!(
                "xtask: bench: {row} with {label}: build {:.1} s, peak RSS {:.1} MiB, output {}, cp {:.2} s",
                build.wall.as_secs_f64(),
                build.max_rss_kib as f64 / 1024.0,
                bytes(size),
                cp.wall.as_secs_f64()
            );
            rows.push((row, build, cp, size));
        }
        let mut t = String::new();
        let _ = writeln!(
            t,
            "### Each format with a {label} service image, next to `cp` of its output\n"
        );
        let _ = writeln!(t, "The minimal system plus one service of {label} (generated, gzip ratio ≈ 0.55), all cached; one run per format. `cp`: the same output files copied once more (from the page cache, sparse files kept sparse). A build also unpacks the image layers (gunzip) and, for every format that boots a kernel and initrd, compresses the initrd (gzip -6 on all cores, as LinuxKit; or zstd, the last rows): that, not the format writer (the writers table: each within 2× of `cp`), is most of these times. Memory stays flat.\n");
        let _ = writeln!(t, "| format | build | peak RSS | output | output written per s | `cp` | build ÷ `cp` |\n|---|---|---|---|---|---|---|");
        for (f, build, cp, size) in &rows {
            let (b, c) = (build.wall.as_secs_f64(), cp.wall.as_secs_f64());
            let _ = writeln!(
                t,
                "| {f} | {b:.1} s | {:.1} MiB | {} | {:.0} MiB/s | {c:.2} s | {:.1}× |",
                build.max_rss_kib as f64 / 1024.0,
                bytes(*size),
                *size as f64 / (1024.0 * 1024.0) / b,
                b / c,
            );
        }
        self.tables.push_str(&t);
        self.tables.push('\n');
        if !failed.is_empty() {
            self.notes.push(format!(
                "Formats that built the minimal system but not the {label} one: {}.",
                failed.join("; ")
            ));
        }
        Ok(())
    }
}

/// One row of `disk_bench`: `name secs s MiB/s MiB/s RSS MiB RSS (N MiB out)`.
struct WriterRow {
    name: String,
    secs: f64,
    mib_per_s: f64,
    rss_mib: u64,
    out_mib: u64,
}

fn writer_row(line: &str) -> Option<WriterRow> {
    let (head, out) = line.rsplit_once('(')?;
    let out_mib = out.split_whitespace().next()?.parse().ok()?;
    let w: Vec<&str> = head.split_whitespace().collect();
    // The name may hold a space ("cp (ref)" is printed as `cp (ref)`, so split from the end).
    let n = w.len();
    if n < 7 || w[n - 1] != "RSS" || w[n - 4] != "MiB/s" || w[n - 6] != "s" {
        return None;
    }
    Some(WriterRow {
        name: w[..n - 7].join(" "),
        secs: w[n - 7].parse().ok()?,
        mib_per_s: w[n - 5].parse().ok()?,
        rss_mib: w[n - 3].parse().ok()?,
        out_mib,
    })
}

impl Bench {
    /// Each disk and ISO writer alone (`crates/disk/examples/disk_bench.rs`), from a kernel of
    /// the `--format-size` point (64 MiB with `--quick`) and an empty initrd, next to a copy of
    /// the raw disk: what the format itself costs, with the kernel and initrd already made.
    pub fn writers(&mut self) -> Result<()> {
        let point = size_points(false).into_iter().find(|(l, _)| *l == self.format_size);
        let mib = if self.quick { 64 } else { point.map_or(256, |(_, n)| n >> 20) };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(&cargo)
            .args(["build", "--release", "-q", "-p", "baleen-disk", "--example", "disk_bench"])
            .current_dir(&self.root)
            .status()?;
        anyhow::ensure!(status.success(), "cargo build --example disk_bench failed");
        let exe = super::release_bin(&self.root, "x").with_file_name("examples").join("disk_bench");
        let scratch = self.work.join("writers");
        std::fs::create_dir_all(&scratch)?;
        let out = Command::new(&exe)
            .arg(mib.to_string())
            .env("BENCH_DIR", &scratch)
            .stderr(std::process::Stdio::inherit())
            .output()?;
        anyhow::ensure!(out.status.success(), "{} failed ({})", exe.display(), out.status);
        let rows: Vec<WriterRow> =
            String::from_utf8_lossy(&out.stdout).lines().filter_map(writer_row).collect();
        let cp = rows.iter().find(|r| r.name == "cp (ref)").map(|r| r.mib_per_s);
        let cp = cp.filter(|c| *c > 0.0).context("disk_bench printed no `cp (ref)` row")?;
        let rw = rows.iter().find(|r| r.name == "read+write").map(|r| r.mib_per_s);
        let rw = rw.filter(|c| *c > 0.0).context("disk_bench printed no `read+write` row")?;
        let mut t = String::new();
        let _ = writeln!(
            t,
            "### Each writer alone: a {} kernel, next to a copy of the raw disk\n",
            bytes(mib << 20)
        );
        let _ = writeln!(t, "`cargo run --release -p baleen-disk --example disk_bench -- {mib}`: an incompressible kernel (the worst case for vmdk and gcp, which deflate) and an empty initrd, written by each format's writer in one process; `cp (ref)` is `std::fs::copy` of the raw EFI disk (as `cp`, copy_file_range(2): the kernel moves the bytes, no process touches them); `read+write` copies it through a 1 MiB buffer, as any program that makes the bytes must write them. The ratios compare bytes written per second. Goal (issue 9): within 2× of a raw copy. hybrid is the BIOS+EFI disk of qcow2-bios, aws and gcp before conversion.\n");
        let _ = writeln!(t, "| writer | time | output | written per s | peak RSS | ÷ cp | ÷ read+write |\n|---|---|---|---|---|---|---|");
        for r in &rows {
            let _ = writeln!(
                t,
                "| {} | {:.2} s | {} MiB | {:.0} MiB/s | {} MiB | {:.2}× | {:.2}× |",
                r.name,
                r.secs,
                r.out_mib,
                r.mib_per_s,
                r.rss_mib,
                cp / r.mib_per_s.max(f64::MIN_POSITIVE),
                rw / r.mib_per_s.max(f64::MIN_POSITIVE)
            );
        }
        self.tables.push_str(&t);
        self.tables.push('\n');
        let _ = std::fs::remove_dir_all(&scratch);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn disk_bench_rows_parse() {
        let r = super::writer_row(
            "cp (ref)        0.52 s     1968 MiB/s     3 MiB RSS  (1025 MiB out)",
        )
        .unwrap();
        assert_eq!((r.name.as_str(), r.out_mib, r.rss_mib), ("cp (ref)", 1025, 3));
        assert!((r.secs - 0.52).abs() < 1e-9 && (r.mib_per_s - 1968.0).abs() < 1e-9);
        let r = super::writer_row(
            "dynamic-vhd     4.60 s      228 MiB/s     6 MiB RSS  (1025 MiB out)",
        )
        .unwrap();
        assert_eq!(r.name, "dynamic-vhd");
        assert!(super::writer_row("payload 1024 MiB; each row: seconds").is_none());
        let header =
            "payload 1024 MiB; each row: seconds (best of 3), MiB/s of output, peak RSS MiB";
        assert!(super::writer_row(header).is_none());
    }
}
