//! The tasks themselves.

use crate::deps;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask has a parent").to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn step(name: &str, mut cmd: Command) -> Result<()> {
    eprintln!("xtask: == {name}");
    let status = cmd.status().with_context(|| format!("starting {name}"))?;
    if !status.success() {
        bail!("{name} failed ({status})");
    }
    Ok(())
}

pub fn test(extra: &[String]) -> Result<()> {
    deps::ensure_all()?;
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    step("cargo fmt --check", fmt)?;
    let mut clippy = cargo();
    clippy.args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]);
    step("cargo clippy", clippy)?;
    let mut t = cargo();
    // Tests that need an external tool (qemu, docker-registry…) fail instead of skipping when
    // this is set: under xtask every tool has been installed above.
    t.env("BALEEN_REQUIRE_TOOLS", "1");
    t.args(["test", "--workspace"]).args(extra);
    step("cargo test", t)
}

pub fn demo() -> Result<()> {
    deps::ensure_packages(deps::DEMO_PACKAGES)?;
    let mut build = cargo();
    build.args(["build", "--release", "-p", "baleen"]);
    step("building baleen", build)?;
    let baleen = root().join("target/release/baleen");
    let example = root().join("examples/minimal.yml");
    let mut validate = Command::new(&baleen);
    validate.arg("validate").arg(&example);
    step("baleen validate examples/minimal.yml", validate)?;
    Ok(())
}

pub fn fuzz(seconds: Option<&str>) -> Result<()> {
    let seconds: u32 = seconds.unwrap_or("30").parse().context("SECONDS must be a number")?;
    if deps::which("cargo-fuzz").is_none() {
        let mut install = cargo();
        install.args(["install", "--locked", "cargo-fuzz"]);
        step("cargo install cargo-fuzz", install)?;
    }
    let fuzz_dir = root().join("fuzz");
    let out = cargo()
        .current_dir(&fuzz_dir)
        .args(["fuzz", "list"])
        .env("RUSTC_BOOTSTRAP", "1")
        .output()?;
    let targets = String::from_utf8_lossy(&out.stdout).to_string();
    for target in targets.lines().filter(|l| !l.trim().is_empty()) {
        let mut run = cargo();
        run.current_dir(&fuzz_dir)
            // cargo-fuzz needs nightly flags; the one stable toolchain here accepts them this way.
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", target, "--", &format!("-max_total_time={seconds}")]);
        step(&format!("fuzz {target} for {seconds}s"), run)?;
    }
    Ok(())
}
