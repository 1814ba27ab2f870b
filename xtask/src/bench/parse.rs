//! Reading what baleen prints: the format names of `baleen build --help` and the boot timeline
//! of `baleen run --measure`.

use anyhow::{bail, Result};
use std::path::Path;
use std::process::Command;

/// Every format `baleen build` names, read from its `--help` ("Possible values:" of
/// `--format`), so formats added to baleen are benchmarked without touching the bench. Those it
/// names but does not write yet fail the probe and go to the notes.
pub(super) fn format_names(baleen: &Path) -> Result<Vec<String>> {
    let out = Command::new(baleen).args(["build", "--help"]).output()?;
    let names = possible_formats(&String::from_utf8_lossy(&out.stdout));
    if names.is_empty() {
        bail!("`baleen build --help` lists no formats under --format's possible values");
    }
    Ok(names)
}

/// The `- NAME: …` items of the first "Possible values:" list after `--format`.
fn possible_formats(help: &str) -> Vec<String> {
    let Some(at) = help.find("--format") else { return Vec::new() };
    let Some(list) = help[at..].find("Possible values:") else { return Vec::new() };
    let mut names = Vec::new();
    for line in help[at + list..].lines().skip(1) {
        let line = line.trim();
        if line.is_empty() {
            break;
        }
        if let Some(item) = line.strip_prefix("- ") {
            let name = item.split(':').next().unwrap_or("").trim();
            if !name.is_empty() && !name.contains(' ') {
                names.push(name.to_string());
            }
        }
    }
    names
}

/// The figures the boot table shows.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Timeline {
    pub(super) kernel_to_init: f64,
    pub(super) init_to_first_service: f64,
    pub(super) total: f64,
}

impl Timeline {
    /// The three columns of a boot table for these boots: median (min–max) of each figure.
    pub(super) fn cells(boots: &[Timeline]) -> [String; 3] {
        let col = |k: fn(&Timeline) -> f64| {
            super::measure::Stats::of(&boots.iter().map(k).collect::<Vec<_>>()).show("s", 3)
        };
        [col(|t| t.kernel_to_init), col(|t| t.init_to_first_service), col(|t| t.total)]
    }
}

/// Reads `baleen run --measure`'s table: `  1.234  kernel -> init`, `  0.5  init -> service x
/// started`, `  2.0  total`.
pub(super) fn parse_timeline(stderr: &str) -> Option<Timeline> {
    let mut kernel_to_init = None;
    let mut first = None;
    let mut total = None;
    for line in stderr.lines() {
        let line = line.trim();
        let Some((num, what)) = line.split_once(char::is_whitespace) else { continue };
        let Ok(v) = num.parse::<f64>() else { continue };
        let what = what.trim();
        if what == "kernel -> init" {
            kernel_to_init = Some(v);
        } else if what.starts_with("init -> service ") && first.is_none() {
            first = Some(v);
        } else if what == "total" {
            total = Some(v);
        }
    }
    Some(Timeline { kernel_to_init: kernel_to_init?, init_to_first_service: first?, total: total? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_is_read_from_measure_output() {
        let out = "boot timeline (guest clock, seconds)\n     1.500  kernel -> init\n     0.100  init -> phase onboot\n     0.400  init -> service shell started\n     0.420  init -> service zz-poweroff started\n     1.920  total\n     3.100  host: qemu start -> init (includes firmware)\n";
        assert_eq!(
            parse_timeline(out),
            Some(Timeline { kernel_to_init: 1.5, init_to_first_service: 0.4, total: 1.92 })
        );
        assert_eq!(parse_timeline("measure: init printed no `baleen: init started` line"), None);
    }

    #[test]
    fn formats_are_read_from_the_help_text() {
        let help = "Options:\n  -f, --format <FORMAT>\n          Output formats.\n\n          Possible values:\n          - kernel+initrd:     `NAME-kernel`, `NAME-initrd.img`, `NAME-cmdline` (the default)\n          - docker:            The tar plus a Dockerfile entry, for `docker import` (`NAME.docker`,\n            or `--o`)\n          - uki:               Unified kernel image\n\n  -v, --verbose...\n          Possible values:\n          - nope: x\n";
        assert_eq!(possible_formats(help), ["kernel+initrd", "docker", "uki"]);
        assert!(possible_formats("no formats here").is_empty());
    }
}
