//! Every format on a big system (the minimal system plus a 256 MiB service image by default,
//! `--format-size 1g` for issue 9's figure; all cached):
//! time, peak RSS and output size of `baleen build -f F`, next to `cp` of the very files it
//! wrote. Issue 9's goal is a build within 2× of a raw copy of its output, with flat memory.
//!
//! `cp` here copies files the build just wrote (in the page cache), so it is the cost of writing
//! the bytes once more: the floor a streaming writer can reach. Sparse outputs stay sparse
//! (`cp --sparse=auto`, its default).

use super::measure::{self, bytes, Sample};
use super::sections::{dir_size, size_points, sized_yaml, Bench};
use anyhow::Result;
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
        for f in self.formats.clone() {
            let out = self.work.join("bigfmt").join(&f);
            let copy = self.work.join("bigfmt-copy");
            let _ = std::fs::remove_dir_all(&out);
            let _ = std::fs::remove_dir_all(&copy);
            let build = match self.build(&yaml, "big", &self.store.clone(), &out, &["-f", &f]) {
                Ok(s) => s,
                Err(e) => {
                    let msg = format!("{e:#}");
                    let last = msg.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
                    failed.push(format!("`{f}` ({})", last.trim().trim_start_matches("error: ")));
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
                "xtask: bench: {f} with {label}: build {:.1} s, peak RSS {:.1} MiB, output {}, cp {:.2} s",
                build.wall.as_secs_f64(),
                build.max_rss_kib as f64 / 1024.0,
                bytes(size),
                cp.wall.as_secs_f64()
            );
            rows.push((f, build, cp, size));
        }
        let mut t = String::new();
        let _ = writeln!(
            t,
            "### Each format with a {label} service image, next to `cp` of its output\n"
        );
        let _ = writeln!(t, "The minimal system plus one service of {label} (generated, gzip ratio ≈ 0.55), all cached; one run per format. `cp`: the same output files copied once more (from the page cache, sparse files kept sparse). Goal (issue 9): build within 2× of `cp`, memory flat.\n");
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
