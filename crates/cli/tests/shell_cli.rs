//! Shell completions and man pages are generated from the clap definitions: every subcommand
//! is in them, the bash script parses (and zsh's and fish's, where those shells are installed),
//! and `man --dir` writes one page per subcommand.

use std::process::{Command, Output};

const SUBCOMMANDS: &[&str] =
    &["validate", "build", "pkg", "run", "push", "pull", "cache", "version"];

fn baleen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baleen")).args(args).output().unwrap()
}

fn stdout(out: Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `shell -n FILE` (parse only), when `shell` is installed.
fn parses(shell: &str, script: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("script");
    std::fs::write(&file, script).unwrap();
    match Command::new(shell).arg("-n").arg(&file).output() {
        Ok(out) => {
            assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr))
        }
        Err(e) => eprintln!("not checking the {shell} script with {shell} -n: {e}"),
    }
}

#[test]
fn completions_for_bash_zsh_and_fish_name_every_subcommand_and_parse() {
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout(baleen(&["completions", shell]));
        for sub in SUBCOMMANDS.iter().chain(&["show-tag", "export", "--format", "--dry-run"]) {
            assert!(script.contains(sub), "{shell} completions lack {sub}");
        }
        parses(shell, &script);
    }
    let out = baleen(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
}

#[test]
fn man_prints_baleen_1_and_writes_a_page_per_subcommand() {
    let page = stdout(baleen(&["man"]));
    assert!(page.contains(".TH baleen 1"), "{page}");
    for sub in SUBCOMMANDS {
        assert!(page.contains(sub), "baleen(1) lacks {sub}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man1");
    stdout(baleen(&["man", "--dir", dir.to_str().unwrap()]));
    for sub in SUBCOMMANDS.iter().chain(&["cache-export", "pkg-build"]) {
        let page = std::fs::read_to_string(dir.join(format!("baleen-{sub}.1"))).unwrap();
        assert!(page.contains(".TH"), "baleen-{sub}.1: {page}");
    }
    let build = std::fs::read_to_string(dir.join("baleen-build.1")).unwrap();
    assert!(build.contains("dry\\-run") || build.contains("dry-run"), "{build}");
}
