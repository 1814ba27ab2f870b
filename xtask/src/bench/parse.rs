//! Reading what baleen prints: the format names of `baleen build --list-formats` and the boot
//! timeline
//! of `baleen run --measure`.

use anyhow::{bail, Result};
use std::path::Path;
use std::process::Command;

/// Every format `baleen build` takes, from `baleen build --list-formats` (one name a line, from
/// crates/build's `Format::ALL`), so formats added to baleen are benchmarked without touching
/// the bench.
pub(super) fn format_names(baleen: &Path) -> Result<Vec<String>> {
    let out = Command::new(baleen).args(["build", "--list-formats"]).output()?;
    if !out.status.success() {
        bail!(
            "`baleen build --list-formats` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let names = listed_formats(&String::from_utf8_lossy(&out.stdout));
    if names.is_empty() {
        bail!("`baleen build --list-formats` lists no formats");
    }
    Ok(names)
}

/// The names of `--list-formats`' output, one a line.
fn listed_formats(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
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
    fn formats_are_read_one_a_line() {
        assert_eq!(listed_formats("kernel+initrd\ntar\n\nuki\n"), ["kernel+initrd", "tar", "uki"]);
        assert!(listed_formats("").is_empty());
    }
}
