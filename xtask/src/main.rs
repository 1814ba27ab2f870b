//! `cargo xtask`: everything a contributor or CI runs, in one place.
//!
//! - `cargo xtask demo`: install what is missing, build baleen and show it working.
//! - `cargo xtask test`: install what is missing, then fmt, clippy and every test.
//! - `cargo xtask fuzz [SECONDS]`: a short run of each fuzz target (needs cargo-fuzz).
//! - `cargo xtask bench [--quick]`: performance figures, appended to docs/benchmarks.md.
//!
//! System packages come from apt-get; on other systems the task stops with the list of what to
//! install by hand.

mod bench;
mod deps;
mod tasks;

use anyhow::{bail, Result};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  demo            build baleen and run the demo (examples/minimal.yml)
  test            install test dependencies, then fmt, clippy and all tests
  fuzz [SECONDS]  run each fuzz target for SECONDS (default 30); installs cargo-fuzz
  bench [--quick] measure builds, boots, pulls and gzip; append to docs/benchmarks.md
  deps            only install the system packages and Rust targets the tests need
";

fn main() {
    if let Err(err) = run() {
        eprintln!("xtask: error: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(task) = args.first() else {
        eprint!("{USAGE}");
        std::process::exit(2);
    };
    match task.as_str() {
        "demo" => tasks::demo(),
        "test" => tasks::test(&args[1..]),
        "fuzz" => tasks::fuzz(args.get(1).map(String::as_str)),
        "bench" => bench::run(&args[1..]),
        "deps" => deps::ensure_all(),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown task `{other}`\n\n{USAGE}"),
    }
}
