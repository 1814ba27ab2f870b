//! The docs and the CLI cannot drift: every `baleen …` command line in a code block (fenced, or
//! an inline span) of README.md or docs/*.md names subcommands that exist, and each `--flag` on it appears in that
//! subcommand's `--help`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Deliberate exceptions: command lines the docs name as planned, not as existing (none today:
/// `baleen verify` and `run --secure-boot`, once listed here, exist).
const PLANNED: &[&str] = &[];

fn help(path: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_baleen")).args(path).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "baleen {} --help", path.join(" "));
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommand names in a `--help`'s `Commands:` section.
fn subcommands(help: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if line.starts_with("Commands:") {
            inside = true;
        } else if inside && !line.starts_with(' ') && !line.is_empty() {
            break;
        } else if inside {
            // "  name   Description", names at two spaces of indent; wrapped lines at more.
            if let Some(rest) = line.strip_prefix("  ") {
                if !rest.starts_with(' ') {
                    names.extend(rest.split_whitespace().next().map(str::to_owned));
                }
            }
        }
    }
    names
}

/// `baleen …` lines of the code blocks of `text` (continuations joined), with where they are.
fn command_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_code = false;
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            // Inline code spans: `baleen cache export -o FILE`.
            for (k, span) in line.split('`').enumerate() {
                if k % 2 == 1 && span.starts_with("baleen ") {
                    out.push((i + 1, span.to_owned()));
                }
            }
            continue;
        }
        if let Some((n, mut acc)) = pending.take() {
            acc.push(' ');
            acc.push_str(line.trim().trim_end_matches('\\'));
            if line.trim_end().ends_with('\\') {
                pending = Some((n, acc));
            } else {
                out.push((n, acc));
            }
            continue;
        }
        let l = line.trim_start().trim_start_matches("$ ");
        // `baleen run: boot over its time budget…` is output quoted in a block, not a command.
        let output = l.split_whitespace().nth(1).is_some_and(|w| w.ends_with(':'));
        if l.starts_with("baleen ") && !output {
            if l.trim_end().ends_with('\\') {
                pending = Some((i + 1, l.trim_end().trim_end_matches('\\').to_owned()));
            } else {
                out.push((i + 1, l.to_owned()));
            }
        }
    }
    out
}

#[test]
fn every_baleen_flag_and_subcommand_in_the_docs_exists() {
    let root = baleen_testkit::workspace_root();
    let mut files = vec![root.join("README.md")];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    files.sort();
    let mut helps: BTreeMap<Vec<String>, String> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let name = file.strip_prefix(&root).unwrap_or(Path::new("?")).display().to_string();
        for (line, cmd) in command_lines(&text) {
            if PLANNED.iter().any(|p| cmd.starts_with(p)) {
                continue;
            }
            checked += 1;
            let words: Vec<&str> = cmd
                .split_whitespace()
                .skip(1)
                .take_while(|w| {
                    !w.starts_with('#') && !["|", "&&", "||", ";", ">", "2>&1"].contains(w)
                })
                .collect();
            let mut path: Vec<String> = Vec::new();
            let mut flags = Vec::new();
            for w in words {
                if let Some(flag) = w.strip_prefix("--") {
                    let flag = flag.split('=').next().unwrap_or_default();
                    if !flag.is_empty() {
                        flags.push(format!("--{flag}"));
                    }
                    continue;
                }
                if w.starts_with('-') {
                    continue;
                }
                let h = helps.entry(path.clone()).or_insert_with(|| help(&path));
                let subs = subcommands(h);
                if subs.is_empty() {
                    continue; // a positional argument (or a flag's value) of a leaf command
                }
                // `cache ls|pull|push`: each alternative must exist.
                let alternatives: Vec<&str> = w.split('|').collect();
                if alternatives.iter().all(|a| subs.iter().any(|s| s == a)) {
                    if alternatives.len() > 1 {
                        break; // the flags after alternatives belong to none in particular
                    }
                    path.push(w.to_owned());
                } else if flags.is_empty() {
                    problems.push(format!(
                        "{name}:{line}: `baleen {} {w}`: no such subcommand",
                        path.join(" ")
                    ));
                    break;
                }
            }
            let h = helps.entry(path.clone()).or_insert_with(|| help(&path)).clone();
            for f in flags {
                let listed = h.split(|c: char| !(c.is_alphanumeric() || c == '-')).any(|t| t == f);
                if !listed {
                    problems.push(format!("{name}:{line}: `baleen {}` has no {f}", path.join(" ")));
                }
            }
        }
    }
    assert!(checked > 40, "only {checked} command lines found: is the parser right?");
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}
