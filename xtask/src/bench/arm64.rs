//! The arm64 section: `examples/minimal.yml` built for arm64 next to amd64 on this host, from one
//! warm store whose components were built with `--platforms linux/amd64,linux/arm64` (no
//! emulation: Debian's arm64 `.deb`s, baleen-init cross-compiled), and the arm64 build booted
//! under qemu-system-aarch64 with TCG (kernel+initrd directly, raw-efi under AAVMF).

use super::measure::{self, bytes, rss_mib, secs, Sample, Stats};
use super::parse::{parse_timeline, Timeline};
use super::sections::Bench;
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// What `examples/minimal.yml` names, and the EFI stub of raw-efi.
const COMPONENTS: &[&str] = &["kernel", "init", "dhcpcd", "getty", "systemd-boot"];
const FORMATS: &str = "kernel+initrd,raw-efi";

impl Bench {
    /// Build times of minimal for amd64 and arm64, alternating; then the arm64 TCG boots.
    pub(super) fn arm64(&mut self) -> Result<()> {
        let cache = self.work.join("arm64-store");
        let logs = self.work.join("logs");
        let mut pkg = Command::new(&self.baleen);
        pkg.current_dir(&self.root).env("BALEEN_CACHE", &cache);
        pkg.args(["pkg", "build", "-q", "--platforms", "linux/amd64,linux/arm64"]);
        pkg.args(COMPONENTS.iter().map(|c| format!("pkg/{c}")));
        measure::run(&mut pkg, &logs).context("baleen pkg build for amd64 and arm64")?;

        let runs = if self.quick { 3 } else { 5 };
        let arches = ["amd64", "arm64"];
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); arches.len()];
        for _ in 0..runs {
            for (i, arch) in arches.iter().enumerate() {
                samples[i].push(self.arch_build(arch, &cache)?);
            }
        }
        let mut t = String::new();
        let _ = writeln!(
            t,
            "### arm64 next to amd64: `baleen build --arch A -f {FORMATS} examples/minimal.yml`\n"
        );
        let _ = writeln!(t, "Warm store (components built once with `--platforms linux/amd64,linux/arm64`), same host, no emulation. Median (min–max) of {runs} runs, alternating.\n");
        let _ = writeln!(t, "| arch | build | peak RSS | kernel | initrd |\n|---|---|---|---|---|");
        for (i, arch) in arches.iter().enumerate() {
            let out = self.work.join("arm64-out").join(arch);
            let size = |f: &str| {
                std::fs::metadata(out.join(f)).map(|m| bytes(m.len())).unwrap_or("?".into())
            };
            let _ = writeln!(
                t,
                "| {arch} | {} | {} | {} | {} |",
                Stats::of(&secs(&samples[i])).show("s", 3),
                Stats::of(&rss_mib(&samples[i])).show("MiB", 1),
                size("minimal-kernel"),
                size("minimal-initrd.img"),
            );
        }
        self.tables.push_str(&t);
        self.tables.push('\n');
        if self.quick {
            self.notes.push("`--quick` boots no arm64 system; `cargo xtask bench` does.".into());
            return Ok(());
        }
        self.arm64_boots()
    }

    fn arch_build(&self, arch: &str, cache: &Path) -> Result<Sample> {
        let out = self.work.join("arm64-out").join(arch);
        std::fs::create_dir_all(&out)?;
        let mut cmd = Command::new(&self.baleen);
        cmd.current_dir(&self.root).args(["build", "--arch", arch, "-f", FORMATS]);
        cmd.arg("--cache").arg(cache).arg("--dir").arg(&out);
        cmd.args(["--name", "minimal", "examples/minimal.yml"]);
        measure::run(&mut cmd, &self.work.join("logs"))
            .with_context(|| format!("baleen build --arch {arch}"))
    }

    /// The arm64 build of minimal under qemu-system-aarch64, TCG, to the root shell, then
    /// `poweroff` typed as a user would.
    fn arm64_boots(&mut self) -> Result<()> {
        let runs = 3;
        let out = self.work.join("arm64-out/arm64");
        let targets =
            [("kernel+initrd", out.join("minimal")), ("raw-efi", out.join("minimal-efi.img"))];
        let mut timelines: Vec<Vec<Timeline>> = vec![Vec::new(); targets.len()];
        let mut walls: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
        let mut lost = 0;
        for _ in 0..runs {
            for (i, (_, path)) in targets.iter().enumerate() {
                let state = self.work.join("vm-state");
                let _ = std::fs::remove_dir_all(&state);
                let mut cmd = Command::new(&self.baleen);
                cmd.args(["run", "--accel", "tcg", "--measure", "--timeout", "6m", "--state"]);
                cmd.arg(&state).arg(path);
                let logs = self.work.join("logs");
                match measure::run_answering(&mut cmd, &logs, "login on", "poweroff\n") {
                    Ok(s) => match parse_timeline(&s.stderr) {
                        Some(tl) => {
                            timelines[i].push(tl);
                            walls[i].push(s.wall.as_secs_f64());
                        }
                        None => lost += 1,
                    },
                    Err(e) => {
                        lost += 1;
                        let msg = format!("{e:#}");
                        let last = msg.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
                        self.notes.push(format!("An arm64 boot failed: {}", last.trim()));
                    }
                }
            }
        }
        let mut t = String::new();
        let _ = writeln!(t, "### Boot: minimal for arm64 under qemu-system-aarch64, TCG\n");
        let _ = writeln!(t, "`baleen run --accel tcg --measure` (no `--arch`: read from the output), user networking; virt machine, `-cpu max,pauth-impdef=on`, AAVMF for raw-efi. Guest clock from baleen-init's console lines, and the host's wall time of the whole run (firmware and poweroff included). Median (min–max) of {runs} boots.\n");
        let _ = writeln!(t, "| arm64 output | kernel→init | init→first service | total | whole run (host) |\n|---|---|---|---|---|");
        for (i, (label, _)) in targets.iter().enumerate() {
            let [a, b, c] = Timeline::cells(&timelines[i]);
            let wall = Stats::of(&walls[i]).show("s", 1);
            let _ = writeln!(t, "| {label} | {a} | {b} | {c} | {wall} |");
        }
        self.tables.push_str(&t);
        self.tables.push('\n');
        if lost > 0 {
            self.notes.push(format!(
                "{lost} arm64 boot(s) printed no readable timeline and are not in the table."
            ));
        }
        Ok(())
    }
}
