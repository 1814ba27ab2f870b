//! The tasks themselves.

use crate::deps;
use anyhow::{bail, Context, Result};
use std::io::IsTerminal;
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
    // --no-fail-fast: one failing test binary must not hide how the others fare.
    t.args(["test", "--workspace", "--no-fail-fast"]).args(extra);
    step("cargo test", t)
}

/// The components `examples/minimal.yml` names.
const DEMO_COMPONENTS: &[&str] = &["pkg/kernel", "pkg/init", "pkg/dhcpcd", "pkg/getty"];

pub fn demo() -> Result<()> {
    deps::ensure_packages(deps::DEMO_PACKAGES)?;
    // pkg/init builds baleen-init as a static musl binary.
    deps::ensure_rust_target(deps::MUSL_TARGET)?;
    let mut build = cargo();
    build.args(["build", "--release", "-p", "baleen"]);
    step("building baleen", build)?;
    let baleen = root().join("target/release/baleen");
    let out = root().join("target/demo");

    let mut pkg = Command::new(&baleen);
    pkg.current_dir(root()).args(["pkg", "build"]).args(DEMO_COMPONENTS);
    step("baleen pkg build (kernel, init, dhcpcd, getty from Debian packages)", pkg)?;

    let mut system = Command::new(&baleen);
    system.current_dir(root()).args(["build", "examples/minimal.yml", "--dir"]).arg(&out);
    step("baleen build examples/minimal.yml", system)?;

    let mut run = Command::new(&baleen);
    run.current_dir(root()).arg("run").arg(out.join("minimal"));
    if std::io::stdin().is_terminal() {
        eprintln!(
            "xtask: == booting the demo system in qemu: you get a root shell on its console.\n\
             xtask:    try `ps` (every service is a container) and `cat /proc/cmdline`; \
             `poweroff` ends it."
        );
        return step("baleen run", run);
    }
    scripted_session(run)
}

/// Without a terminal: boot, wait for the login, show the processes, power off.
fn scripted_session(mut run: Command) -> Result<()> {
    use std::io::{BufRead, BufReader, Write};
    eprintln!("xtask: == booting the demo system (no terminal: the session is scripted)");
    let mut child = run
        .args(["--timeout", "300"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting baleen run")?;
    let mut stdin = child.stdin.take().context("qemu console input")?;
    let stdout = BufReader::new(child.stdout.take().context("qemu console output")?);
    let mut sent = false;
    for line in stdout.split(b'\n') {
        let line = String::from_utf8_lossy(&line?).into_owned();
        println!("{line}");
        if !sent && line.contains("login on") {
            sent = true;
            // The getty container sees every process (pid: host): the services are there.
            stdin.write_all(b"sleep 1; echo; ps; poweroff\n")?;
        }
    }
    let status = child.wait()?;
    if !status.success() || !sent {
        bail!("the demo system did not reach its login prompt and power off cleanly ({status})");
    }
    eprintln!("xtask: the demo system booted, ran its services as containers and powered off");
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
            // libFuzzer's default per-input timeout is 20 minutes: a hang would eat the whole
            // run instead of being reported. 10 s is what the issue allows a hostile input.
            .args([
                "fuzz",
                "run",
                target,
                "--",
                &format!("-max_total_time={seconds}"),
                "-timeout=10",
            ]);
        step(&format!("fuzz {target} for {seconds}s"), run)?;
    }
    Ok(())
}
