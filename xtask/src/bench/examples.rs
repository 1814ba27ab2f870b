//! The examples as a new user meets them: `baleen pkg build` of the components they name (cold:
//! an empty Debian `.deb` cache; warm: every `.deb` cached, `--force` so the image is made
//! again), `baleen build` of each `examples/*.yml` (cold: every component pulled from the
//! loopback registry into an empty cache; warm: all cached), and boots of `minimal` and `sshd`.
//!
//! The examples name components as `@pkg:../pkg/X`; the bench writes a copy of each example with
//! those replaced by the registry's `HOST/baleen/X:TAG` (the tag `baleen pkg show-tag` gives), so
//! a cold build pulls exactly what `baleen build examples/X.yml` would read from the store.
//! Examples that do not build (one being written while the bench runs) go to the notes.

use super::measure::{self, bytes, rss_mib, secs, Sample, Stats};
use super::parse::{parse_timeline, Timeline};
use super::sections::Bench;
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The examples booted for the boot table (the others need a disk, or a user at the console).
const BOOTED: &[&str] = &["minimal", "sshd"];

impl Bench {
    /// Every `examples/*.yml` (name, text), sorted by name.
    fn example_files(&self) -> Result<Vec<(String, String)>> {
        let dir = self.root.join("examples");
        let mut v = Vec::new();
        for e in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "yml") {
                let name = p.file_stem().unwrap_or_default().to_string_lossy().into_owned();
                v.push((name, std::fs::read_to_string(&p)?));
            }
        }
        v.sort();
        Ok(v)
    }

    fn pkg_build(&self, cache: &Path, component: &str, force: bool) -> Result<Sample> {
        let mut cmd = Command::new(&self.baleen);
        cmd.current_dir(&self.root).env("BALEEN_CACHE", cache).args(["pkg", "build", "-q"]);
        if force {
            cmd.arg("--force");
        }
        cmd.arg(format!("pkg/{component}"));
        measure::run(&mut cmd, &self.work.join("logs"))
            .with_context(|| format!("baleen pkg build pkg/{component}"))
    }

    /// Components, example builds and example boots. `--quick` does `minimal` only.
    pub fn examples(&mut self) -> Result<()> {
        let mut examples = self.example_files()?;
        if self.quick {
            examples.retain(|(name, _)| name == "minimal");
            self.notes.push("`--quick` builds `examples/minimal.yml` and its components only, and boots no example; `cargo xtask bench` does every example and boots minimal and sshd.".into());
        }
        let mut components = BTreeSet::new();
        for (_, text) in &examples {
            for part in text.split("@pkg:../pkg/").skip(1) {
                let name: String =
                    part.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
                components.insert(name);
            }
        }
        // Each component has its own cache (store and `.deb`s): the first cold run fills it,
        // later cold runs use a scratch cache emptied each time, warm runs reuse it. A component
        // that does not build (one being written while the bench runs) is left out, and with it
        // the examples that name it.
        let own_cache = |c: &str| self.work.join("pkg").join(c);
        let cold_cache = self.work.join("pkg-cold");
        let (cold_runs, warm_runs) = if self.quick { (1, 1) } else { (3, 3) };
        let (mut cold, mut warm, mut downloaded) = (Vec::new(), Vec::new(), Vec::new());
        let mut broken = Vec::new();
        let mut built = Vec::new();
        for c in components {
            let _ = std::fs::remove_dir_all(own_cache(&c));
            match self.pkg_build(&own_cache(&c), &c, false) {
                Ok(first) => {
                    cold.push(vec![first]);
                    warm.push(Vec::new());
                    downloaded.push(dir_tree_size(&own_cache(&c).join("debian")).unwrap_or(0));
                    built.push(c);
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    let last = msg.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
                    broken.push(format!("`pkg/{c}` ({})", last.trim()));
                }
            }
        }
        let components = built;
        if !broken.is_empty() {
            self.notes.push(format!(
                "Components that do not build, left out with the examples naming them: {}.",
                broken.join("; ")
            ));
        }
        for run in 0..cold_runs.max(warm_runs) {
            for (i, c) in components.iter().enumerate() {
                if run < warm_runs {
                    warm[i].push(self.pkg_build(&own_cache(c), c, true)?);
                }
                if run + 1 < cold_runs {
                    let _ = std::fs::remove_dir_all(&cold_cache);
                    cold[i].push(self.pkg_build(&cold_cache, c, false)?);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&cold_cache);
        let mut t = String::new();
        let _ = writeln!(
            t,
            "### Components: `baleen pkg build pkg/X`, each component the examples name\n"
        );
        let _ = writeln!(t, "Cold: an empty cache, every `.deb` downloaded from deb.debian.org (the network is part of the figure). Warm: every `.deb` cached, `--force` so the image is made again. Median (min–max) of {cold_runs} cold and {warm_runs} warm runs, alternating. `init` includes a `cargo build` of baleen-init (musl, `release-init`) that is already up to date.\n");
        let _ = writeln!(t, "| component | cold | warm | peak RSS cold | peak RSS warm | `.deb`s downloaded |\n|---|---|---|---|---|---|");
        for (i, c) in components.iter().enumerate() {
            let _ = writeln!(
                t,
                "| {c} | {} | {} | {} | {} | {} |",
                Stats::of(&secs(&cold[i])).show("s", 2),
                Stats::of(&secs(&warm[i])).show("s", 2),
                Stats::of(&rss_mib(&cold[i])).show("MiB", 1),
                Stats::of(&rss_mib(&warm[i])).show("MiB", 1),
                bytes(downloaded[i]),
            );
        }
        self.tables.push_str(&t);
        self.tables.push('\n');

        let yamls = self.push_components(&components, &examples)?;
        self.example_builds(&yamls)?;
        if !self.quick {
            self.example_boots(&yamls)?;
        }
        Ok(())
    }

    /// Pushes every component (from its own cache) to the registry and writes each example
    /// with registry names.
    fn push_components(
        &mut self,
        components: &[String],
        examples: &[(String, String)],
    ) -> Result<Vec<(String, PathBuf)>> {
        let host = self.registry.host.clone();
        let mut names = Vec::new();
        for c in components {
            let out = Command::new(&self.baleen)
                .current_dir(&self.root)
                .args(["pkg", "show-tag"])
                .arg(format!("pkg/{c}"))
                .output()?;
            if !out.status.success() {
                bail!("baleen pkg show-tag pkg/{c}: {}", String::from_utf8_lossy(&out.stderr));
            }
            let tag = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let mut cmd = Command::new(&self.baleen);
            cmd.args(["cache", "push", "-q", "--cache"]).arg(self.work.join("pkg").join(c));
            cmd.arg(format!("docker.io/{tag}")).args(["--to", &format!("{host}/{tag}")]);
            measure::run(&mut cmd, &self.work.join("push"))
                .with_context(|| format!("pushing {tag}"))?;
            names.push((c.clone(), format!("{host}/{tag}")));
        }
        let dir = self.work.join("examples");
        std::fs::create_dir_all(&dir)?;
        let mut yamls = Vec::new();
        for (name, text) in examples {
            let mut text = text.clone();
            for (c, reference) in &names {
                text = text.replace(&format!("\"@pkg:../pkg/{c}\""), &format!("\"{reference}\""));
            }
            if text.lines().any(|l| !l.trim_start().starts_with('#') && l.contains("@pkg:")) {
                self.notes.push(format!(
                    "examples/{name}.yml left out: an `@pkg:` reference the bench cannot rewrite."
                ));
                continue;
            }
            let file = dir.join(format!("{name}.yml"));
            std::fs::write(&file, text)?;
            yamls.push((name.clone(), file));
        }
        Ok(yamls)
    }

    fn example_build(&self, file: &Path, name: &str, cache: &Path, out: &Path) -> Result<Sample> {
        std::fs::create_dir_all(out)?;
        let mut cmd = Command::new(&self.baleen);
        cmd.arg("build").arg(file).arg("--cache").arg(cache).arg("--dir").arg(out);
        cmd.args(["--name", name]);
        measure::run(&mut cmd, &self.work.join("logs"))
    }

    /// `file` with one `files` entry whose contents are `stamp` (added to the example's `files`,
    /// or as its only one): a rebuild after a one-file change.
    fn one_file_changed(&self, file: &Path, name: &str, stamp: usize) -> Result<PathBuf> {
        let text = std::fs::read_to_string(file)?;
        let entry = format!("  - path: etc/bench-stamp\n    contents: \"{stamp}\\n\"\n");
        let text = match text.find("\nfiles:\n") {
            Some(i) => format!("{}{entry}{}", &text[..i + 8], &text[i + 8..]),
            None => format!("{}\nfiles:\n{entry}", text.trim_end()),
        };
        let out = self.work.join("examples-changed");
        std::fs::create_dir_all(&out)?;
        let changed = out.join(format!("{name}.yml"));
        std::fs::write(&changed, text)?;
        Ok(changed)
    }

    /// `file` with its first service's image swapped for its first onboot container's (both in
    /// the warm store) and its name stamped with `stamp` (so that each run's change is new to
    /// the cache): a rebuild after one service changed. `None` when the example has no service
    /// or no onboot container.
    fn one_service_changed(
        &self,
        file: &Path,
        name: &str,
        stamp: usize,
    ) -> Result<Option<PathBuf>> {
        let text = std::fs::read_to_string(file)?;
        let image_after = |key: &str| -> Option<(usize, usize)> {
            let from = text.find(key)? + key.len();
            let at = from + text[from..].find("    image: ")? + "    image: ".len();
            Some((at, at + text[at..].find('\n')?))
        };
        let (Some(svc), Some(boot)) = (image_after("\nservices:\n"), image_after("\nonboot:\n"))
        else {
            return Ok(None);
        };
        let text = format!("{}{}{}", &text[..svc.0], &text[boot.0..boot.1], &text[svc.1..]);
        let services = text.find("\nservices:\n").unwrap_or(0);
        let text = format!(
            "{}{}",
            &text[..services],
            text[services..].replacen("  - name: ", &format!("  - name: run{stamp}-"), 1)
        );
        let out = self.work.join("examples-changed");
        std::fs::create_dir_all(&out)?;
        let changed = out.join(format!("{name}-service.yml"));
        std::fs::write(&changed, text)?;
        Ok(Some(changed))
    }

    /// Each example (kernel+initrd, its default), alternating: cold, warm and unchanged (its
    /// initrd segments cached), warm after one `files` entry changed, and after one service's image
    /// changed (each after a warm unchanged build, so that only that change is new).
    fn example_builds(&mut self, yamls: &[(String, PathBuf)]) -> Result<()> {
        let runs = if self.quick { 3 } else { 5 };
        let warm = self.work.join("ex-warm");
        let mut built = Vec::new();
        for (name, file) in yamls {
            match self.example_build(file, name, &warm, &self.work.join("ex-out").join(name)) {
                Ok(_) => built.push((name.clone(), file.clone())),
                Err(e) => {
                    let msg = format!("{e:#}");
                    let last = msg.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
                    self.notes.push(format!(
                        "examples/{name}.yml does not build, left out: {}",
                        last.trim()
                    ));
                }
            }
        }
        let mut rows = vec![(Vec::new(), Vec::new(), Vec::new(), Vec::new()); built.len()];
        for run in 0..runs {
            for (i, (name, file)) in built.iter().enumerate() {
                let cold = self.work.join("ex-cold");
                let _ = std::fs::remove_dir_all(&cold);
                let out = self.work.join("ex-out").join(name);
                rows[i].0.push(self.example_build(file, name, &cold, &out)?);
                rows[i].1.push(self.example_build(file, name, &warm, &out)?);
                let changed = self.one_file_changed(file, name, run)?;
                let changed_out = self.work.join("ex-out-changed").join(name);
                rows[i].2.push(self.example_build(&changed, name, &warm, &changed_out)?);
                if let Some(changed) = self.one_service_changed(file, name, run)? {
                    // Back to unchanged first: the changed service's segment is then new.
                    self.example_build(file, name, &warm, &out)?;
                    rows[i].3.push(self.example_build(&changed, name, &warm, &changed_out)?);
                }
            }
        }
        let _ = std::fs::remove_dir_all(self.work.join("ex-cold"));
        let mut t = String::new();
        let _ = writeln!(
            t,
            "### Build time: each example (`baleen build examples/X.yml`, kernel+initrd)\n"
        );
        let _ = writeln!(t, "Median (min–max) of {runs} runs, alternating. Cold: every component pulled from the loopback registry into an empty `--cache`. Warm: all cached, the initrd's unchanged sections included (docs/cache.md). One file: warm, after one `files` entry changed (its section and the SBOM's are compressed again). One service: warm, after the first service's image became the first onboot container's (– when the example has none).\n");
        let _ = writeln!(t, "| example | cold | warm | one file | one service | peak RSS cold | peak RSS warm | peak RSS one file | initrd |\n|---|---|---|---|---|---|---|---|---|");
        for ((name, _), (cold, warm, one_file, one_service)) in built.iter().zip(&rows) {
            let service = if one_service.is_empty() {
                "–".to_string()
            } else {
                Stats::of(&secs(one_service)).show("s", 3)
            };
            let initrd = self.work.join("ex-out").join(name).join(format!("{name}-initrd.img"));
            let size = std::fs::metadata(&initrd).map(|m| bytes(m.len())).unwrap_or("?".into());
            let _ = writeln!(
                t,
                "| {name} | {} | {} | {} | {service} | {} | {} | {} | {size} |",
                Stats::of(&secs(cold)).show("s", 3),
                Stats::of(&secs(warm)).show("s", 3),
                Stats::of(&secs(one_file)).show("s", 3),
                Stats::of(&rss_mib(cold)).show("MiB", 1),
                Stats::of(&rss_mib(warm)).show("MiB", 1),
                Stats::of(&rss_mib(one_file)).show("MiB", 1),
            );
        }
        self.tables.push_str(&t);
        self.tables.push('\n');
        Ok(())
    }

    /// `minimal` and `sshd` booted under TCG with user networking (their DHCP client needs
    /// it); once the root shell is up the bench types `poweroff`, as a user would.
    fn example_boots(&mut self, yamls: &[(String, PathBuf)]) -> Result<()> {
        let runs = 3;
        let booted: Vec<&str> = BOOTED
            .iter()
            .copied()
            .filter(|n| yamls.iter().any(|(y, _)| y == n))
            .filter(|n| self.work.join("ex-out").join(n).join(format!("{n}-initrd.img")).exists())
            .collect();
        let mut timelines: Vec<Vec<Timeline>> = vec![Vec::new(); booted.len()];
        let mut lost = 0;
        for _ in 0..runs {
            for (i, name) in booted.iter().enumerate() {
                let state = self.work.join("vm-state");
                let _ = std::fs::remove_dir_all(&state);
                let mut cmd = Command::new(&self.baleen);
                cmd.args(["run", "--accel", "tcg", "--measure", "--timeout", "4m", "--state"]);
                cmd.arg(&state).arg(self.work.join("ex-out").join(name).join(name));
                let logs = self.work.join("logs");
                // A boot that fails is a note, not the end of the bench (its tables so far
                // are worth keeping).
                match measure::run_answering(&mut cmd, &logs, "login on", "poweroff\n") {
                    Ok(s) => match parse_timeline(&s.stderr) {
                        Some(tl) => timelines[i].push(tl),
                        None => lost += 1,
                    },
                    Err(e) => {
                        lost += 1;
                        let msg = format!("{e:#}");
                        let last = msg.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
                        self.notes
                            .push(format!("A boot of examples/{name}.yml failed: {}", last.trim()));
                    }
                }
            }
        }
        let mut t = String::new();
        let _ = writeln!(t, "### Boot: examples under qemu, TCG\n");
        let _ = writeln!(t, "Guest clock, from baleen-init's console lines (`baleen run --accel tcg --measure`, user networking). Median (min–max) of {runs} boots. Total: kernel start to `phase services started`.\n");
        let _ = writeln!(
            t,
            "| example | kernel→init | init→first service | total |\n|---|---|---|---|"
        );
        for (i, name) in booted.iter().enumerate() {
            let [a, b, c] = Timeline::cells(&timelines[i]);
            let _ = writeln!(t, "| {name} | {a} | {b} | {c} |");
        }
        self.tables.push_str(&t);
        self.tables.push('\n');
        if lost > 0 {
            self.notes.push(format!(
                "{lost} example boot(s) printed no readable timeline and are not in the table."
            ));
        }
        Ok(())
    }
}

fn dir_tree_size(dir: &Path) -> Result<u64> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let m = e.metadata()?;
        n += if m.is_dir() { dir_tree_size(&e.path())? } else { m.len() };
    }
    Ok(n)
}
