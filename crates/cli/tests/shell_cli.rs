//! Shell completions and man pages are generated from the clap definitions: every subcommand
//! is in them, the bash script parses (and zsh's and fish's, where those shells are installed),
//! and `man --dir` writes one page per subcommand.

use std::process::{Command, Output};

const SUBCOMMANDS: &[&str] =
    &["validate", "build", "pkg", "audit", "run", "push", "pull", "cache", "version"];

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

/// Runs `shell args…` with the completion script in a file named by `$1`/`{}`; `None` when the
/// shell is not installed (skipped, unless tools are required).
fn run_shell(shell: &str, args: &[&str], script: &str) -> Option<String> {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("script");
    std::fs::write(&file, script).unwrap();
    let args: Vec<String> = args.iter().map(|a| a.replace("{}", file.to_str().unwrap())).collect();
    match Command::new(shell).args(&args).env("HOME", tmp.path()).output() {
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success() && err.is_empty(), "{shell} {args:?}: {err}");
            Some(String::from_utf8(out.stdout).unwrap())
        }
        Err(e) => {
            assert!(!baleen_testkit::tools_required(), "{shell}: {e}");
            eprintln!("skipping the {shell} check: {e}");
            None
        }
    }
}

/// Each script loads in its shell (not only parses) and completes: fish lists the
/// subcommands of `baleen ` and `baleen cache `, zsh defines `_baleen` after `compinit`, bash
/// registers `_baleen` for `baleen`.
#[test]
fn completion_scripts_load_and_complete_in_their_shells() {
    let fish = stdout(baleen(&["completions", "fish"]));
    if let Some(out) = run_shell(
        "fish",
        &["--no-config", "-c", "source {}; complete -C 'baleen '; complete -C 'baleen cache '"],
        &fish,
    ) {
        let words: Vec<&str> = out.lines().filter_map(|l| l.split('\t').next()).collect();
        for want in SUBCOMMANDS.iter().chain(&["ls", "export", "gc"]) {
            assert!(words.contains(want), "fish completes no {want}: {out}");
        }
    }
    let zsh = stdout(baleen(&["completions", "zsh"]));
    if let Some(out) = run_shell(
        "zsh",
        &[
            "-f",
            "-c",
            "autoload -U compinit && compinit -u -D && source {} && print ${+functions[_baleen]}",
        ],
        &zsh,
    ) {
        assert_eq!(out.trim(), "1", "zsh: _baleen is not defined");
    }
    let bash = stdout(baleen(&["completions", "bash"]));
    if let Some(out) = run_shell("bash", &["-c", "source {} && complete -p baleen"], &bash) {
        assert!(out.contains("-F _baleen baleen"), "bash: {out}");
    }
}

/// Every man page `man --dir` writes renders without a warning from man/groff.
#[test]
fn every_man_page_renders_without_warnings() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man1");
    stdout(baleen(&["man", "--dir", dir.to_str().unwrap()]));
    let mut pages = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let page = e.unwrap().path();
        let out = match Command::new("man")
            .arg("--warnings")
            .arg("-l")
            .arg(&page)
            .env("MANWIDTH", "80")
            .output()
        {
            Ok(o) => o,
            Err(e) => {
                assert!(!baleen_testkit::tools_required(), "man: {e}");
                return eprintln!("skipping: no man: {e}");
            }
        };
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && err.is_empty(), "{}: {err}", page.display());
        assert!(String::from_utf8_lossy(&out.stdout).contains("NAME"), "{}", page.display());
        pages += 1;
    }
    assert!(pages > SUBCOMMANDS.len(), "{pages} pages");
}
