//! The boot section: the minimal system booted under TCG with gzip and zstd initrds, and once
//! with `--accel auto` to show whether KVM is usable here.

use super::measure::{self, Stats};
use super::parse::{parse_timeline, Timeline};
use super::sections::Bench;
use anyhow::{bail, Result};
use std::fmt::Write as _;
use std::process::Command;

impl Bench {
    /// The minimal system booted under TCG, gzip and zstd initrds alternating.
    pub(super) fn boot(&mut self) -> Result<()> {
        let runs = 3;
        let prefixes = [
            ("gzip", self.work.join("out/kernel+initrd/minimal")),
            ("zstd", self.work.join("out-zstd/minimal")),
        ];
        let mut timelines = vec![Vec::new(); prefixes.len()];
        let mut walls = vec![Vec::new(); prefixes.len()];
        let mut lost = 0;
        // A boot whose timeline cannot be read is retried (at most `runs` times in all) and
        // counted in the notes: a kernel message can land on the same console line as init's
        // `init started`, and then `--measure` does not see it.
        let mut attempts = 0;
        while timelines.iter().any(|t: &Vec<Timeline>| t.len() < runs) && attempts < 2 * runs {
            attempts += 1;
            for (i, (_, prefix)) in prefixes.iter().enumerate() {
                if timelines[i].len() >= runs {
                    continue;
                }
                let state = self.work.join("vm-state");
                let _ = std::fs::remove_dir_all(&state);
                let mut cmd = Command::new(&self.baleen);
                cmd.args([
                    "run",
                    "--accel",
                    "tcg",
                    "--measure",
                    "--timeout",
                    "3m",
                    "--networking",
                    "none",
                ]);
                cmd.arg("--state").arg(&state).arg(prefix);
                let s = measure::run(&mut cmd, &self.work.join("logs"))?;
                let Some(tl) = parse_timeline(&s.stderr) else {
                    lost += 1;
                    continue;
                };
                timelines[i].push(tl);
                walls[i].push(s.wall.as_secs_f64());
            }
        }
        let kvm = if self.quick {
            self.notes.push(
                "`--quick` does not try KVM (`--accel auto`); `cargo xtask bench` does.".into(),
            );
            None
        } else {
            self.kvm_boot()?
        };
        let mut t = String::new();
        let _ = writeln!(t, "### Boot: the `minimal` system under qemu, TCG\n");
        let _ = writeln!(t, "Guest clock, from baleen-init's console lines (`baleen run --accel tcg --measure`). Median (min–max) of {runs} boots. Host: `baleen run` from start to the guest's poweroff (1 s after services start).\n");
        let _ = writeln!(t, "| initrd | kernel→init | init→first service | total | host, whole run |\n|---|---|---|---|---|");
        for (i, (label, _)) in prefixes.iter().enumerate() {
            let [a, b, c] = Timeline::cells(&timelines[i]);
            let wall = Stats::of(&walls[i]).show("s", 2);
            let _ = writeln!(t, "| {label} | {a} | {b} | {c} | {wall} |");
        }
        if let Some((tl, wall)) = &kvm {
            let _ = writeln!(
                t,
                "| gzip, **KVM** (1 boot) | {:.3} s | {:.3} s | {:.3} s | {wall:.2} s |",
                tl.kernel_to_init, tl.init_to_first_service, tl.total
            );
        }
        self.tables.push_str(&t);
        self.tables.push('\n');
        if timelines.iter().any(Vec::is_empty) {
            bail!(
                "no boot gave a timeline; see {}",
                self.work.join("vm-state/console.log").display()
            );
        }
        if lost > 0 {
            self.notes.push(format!(
                "{lost} boot(s) printed no readable timeline (a kernel message on the same console line as init's `init started`) and were run again."
            ));
        }
        Ok(())
    }

    /// One boot with `--accel auto`: baleen's KVM probe decides. The timeline when KVM was
    /// used, else a note with the probe's reason.
    fn kvm_boot(&mut self) -> Result<Option<(Timeline, f64)>> {
        let state = self.work.join("vm-state");
        let _ = std::fs::remove_dir_all(&state);
        let mut cmd = Command::new(&self.baleen);
        cmd.args(["run", "--accel", "auto", "--measure", "--timeout", "3m"]);
        cmd.args(["--networking", "none", "--state"]).arg(&state);
        cmd.arg(self.work.join("out/kernel+initrd/minimal"));
        let s = match measure::run(&mut cmd, &self.work.join("logs")) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!("{e:#}");
                let last = msg.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
                self.notes.push(format!("KVM: `baleen run --accel auto` failed: {}", last.trim()));
                return Ok(None);
            }
        };
        if let Some(notice) = s.stderr.lines().find(|l| l.contains("KVM is not usable")) {
            self.notes.push(format!(
                "KVM: `baleen run --accel auto` probed /dev/kvm and fell back to TCG (“{}”), so every boot is TCG. On this machine KVM accepts a VM but nested guests hang.",
                notice.trim()
            ));
            return Ok(None);
        }
        Ok(parse_timeline(&s.stderr).map(|tl| (tl, s.wall.as_secs_f64())))
    }
}
