//! Embeds in the `baleen` binary:
//!
//! - the commit `baleen version` prints: `BALEEN_COMMIT` (`abc123def456`, with `-dirty` when
//!   tracked files differ from it), from git when the source is a git checkout, else `unknown`.
//!   A packager building from a tarball sets `BALEEN_COMMIT` itself. Only the `baleen` binary
//!   carries it; nothing it writes (images, SBOMs, archives) does, so builds of images stay
//!   byte-for-byte reproducible whatever commit built the tool.
//! - the static `baleen-init` for each musl target the toolchain has (see `init_embed.rs`), so
//!   `baleen pkg build pkg/init` works with the binary alone.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "build/init_embed.rs"]
mod init_embed;
#[allow(dead_code)] // the tag's other helpers
#[path = "../pkg/src/rust_inputs.rs"]
mod rust_inputs;

fn main() {
    commit();
    init_embed::main();
}

fn commit() {
    println!("cargo:rerun-if-env-changed=BALEEN_COMMIT");
    let commit = match std::env::var("BALEEN_COMMIT") {
        Ok(c) if !c.is_empty() => c,
        _ => from_git().unwrap_or_else(|| "unknown".to_owned()),
    };
    println!("cargo:rustc-env=BALEEN_COMMIT={commit}");
}

/// `HEAD`'s short hash and whether tracked files differ from it; `None` outside a git checkout
/// or without git.
fn from_git() -> Option<String> {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let git = |args: &[&str]| {
        let out = Command::new("git").arg("-C").arg(&manifest).args(args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let hash = git(&["rev-parse", "--short=12", "HEAD"])?;
    // Rerun when HEAD moves, a branch is committed to, or files are staged or edited.
    for dir in [git(&["rev-parse", "--git-dir"]), git(&["rev-parse", "--git-common-dir"])]
        .into_iter()
        .flatten()
    {
        let dir = manifest.join(dir);
        for file in ["HEAD", "index", "packed-refs", "refs/heads"] {
            rerun_if_exists(&dir.join(file));
        }
    }
    if let Some(top) = git(&["rev-parse", "--show-toplevel"]) {
        rerun_if_exists(&Path::new(&top).join("crates"));
    }
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])?;
    Some(if dirty.is_empty() { hash } else { format!("{hash}-dirty") })
}

fn rerun_if_exists(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
