//! Helpers for baleen's test suites (a dev-dependency only).
//!
//! - [`require_tool`]: find an external program a test cross-checks with. Under
//!   `cargo xtask test` (`BALEEN_REQUIRE_TOOLS=1`) a missing tool fails the test, because xtask
//!   installed it; under a bare `cargo test` the test is skipped with a message.
//! - [`kernel::debian_cloud_kernel`]: Debian's cloud kernel and modules for boot tests, cached.
//! - [`init::init_binary`]: the static baleen-init, built once per test process.
//! - [`boot::BootTest`]: boot under qemu (TCG), wait for console markers, drive, stop.
//! - [`http::serve_dir`]: a loopback HTTP server of a directory (the signed Debian archive fixture).
//! - [`registry::Registry`]: Debian's docker-registry on 127.0.0.1 (plain, htpasswd, TLS);
//!   [`image::ImageBuilder`]: small multi-layer OCI images written as an OCI layout.
//! - [`Chain`]: an error with its causes, `: `-joined, as the CLI prints it (messages hold only
//!   their own layer's context, so a test looking for a cause reads the chain).

pub mod boot;
/// The error chain on one line: `baleen-spec`'s file, included so that it has one home.
#[path = "../../spec/src/chain.rs"]
mod chain_file;
pub mod http;
pub mod image;
pub mod init;
pub mod kernel;
pub mod layers;
pub mod registry;
pub mod signing;

use std::path::PathBuf;

/// An error and every cause under it on one line, `outer: inner: …`, as the CLI prints it.
pub trait Chain {
    fn chain(&self) -> String;
}

impl<E: std::error::Error + ?Sized> Chain for E {
    fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = self.source();
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        text
    }
}

/// `len` deterministic bytes no deflate can shrink (xorshift64, low byte of each step), as
/// already-compressed data is; `seed` picks the sequence.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// True when the suite runs under `cargo xtask test`, where every external tool is installed.
pub fn tools_required() -> bool {
    std::env::var_os("BALEEN_REQUIRE_TOOLS").is_some_and(|v| v == "1")
}

/// Looks `prog` up on `PATH` (and in `/usr/sbin`, `/sbin`, where Debian puts some checkers).
///
/// Returns `None` (after printing why) when it is missing and tools are not required; panics when
/// they are.
pub fn require_tool(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into(), "/usr/bin".into()])
        .map(|d| d.join(prog))
        .find(|p| p.is_file());
    match found {
        Some(p) => Some(p),
        None if tools_required() => {
            panic!("`{prog}` is not installed, but BALEEN_REQUIRE_TOOLS=1 (cargo xtask test installs it)")
        }
        None => {
            eprintln!("skipping: `{prog}` is not installed (cargo xtask test installs it)");
            None
        }
    }
}

/// The workspace root, for tests that read examples/ or ../shared/.
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().and_then(|p| p.parent()).expect("crates/testkit is two levels deep").to_path_buf()
}

/// Makes a FIFO at `path` (with coreutils' `mkfifo`) and a thread reading it to the end: what a
/// test gives an output that must be written in place, not renamed over.
pub fn fifo_reader(path: &std::path::Path) -> std::thread::JoinHandle<Vec<u8>> {
    let made = std::process::Command::new("mkfifo").arg(path).status().expect("running mkfifo");
    assert!(made.success(), "mkfifo {} failed", path.display());
    let path = path.to_path_buf();
    std::thread::spawn(move || std::fs::read(path).expect("reading the FIFO"))
}
