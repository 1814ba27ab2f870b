//! `baleen version` promised the commit and printed only `baleen version 0.1.0`: it now prints
//! `baleen 0.1.0 (commit abc123def456[-dirty])`, the commit from git at build time.

use std::process::Command;

fn baleen(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_baleen")).args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let version = env!("CARGO_PKG_VERSION");
    let commit = baleen(&["version", "--commit"]).trim().to_owned();
    assert_eq!(baleen(&["version"]), format!("baleen {version} (commit {commit})\n"));
    assert_eq!(baleen(&["--version"]), format!("baleen {version} (commit {commit})\n"));
    assert_eq!(baleen(&["version", "--short"]), format!("{version}\n"));
    let head = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap());
    match head {
        // Built from this checkout (the test runs right after the build).
        Some(head) => {
            let hash = commit.strip_suffix("-dirty").unwrap_or(&commit);
            assert_eq!(hash.len(), 12, "{commit}");
            assert!(head.starts_with(hash), "commit {commit}, HEAD {head}");
        }
        None => assert_eq!(commit, "unknown"),
    }
}
