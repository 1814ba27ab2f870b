//! Hostile YAML files and image labels (issue 21): each must end in a clean error (exit 1, the
//! file or label, line:column and the limit named) rather than a stack overflow (exit 134) or an
//! allocation that kills the process, and no terminal escape they carry reaches stderr raw.

use baleen_testkit::image::ImageBuilder;
use baleen_testkit::layers::file_mode;
use std::path::Path;
use std::process::{Command, Output};

fn baleen(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baleen"))
        .current_dir(dir)
        .args(args)
        .env_remove("BALEEN_CACHE")
        .output()
        .unwrap()
}

fn failed_cleanly(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
    stderr
}

/// `services:\n  - - - … x`, 30,000 deep: every command that reads it aborted on a stack
/// overflow (exit 134).
#[test]
fn deeply_nested_yaml_is_an_error_in_validate_and_build() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = format!("services:\n  {}x\n", "- ".repeat(30_000));
    std::fs::write(tmp.path().join("deep.yml"), yaml).unwrap();
    let cache = tmp.path().join("cache");
    let cache = cache.to_str().unwrap();
    for args in [
        &["validate", "deep.yml"][..],
        &["build", "--cache", cache, "--dry-run", "deep.yml"],
        &["build", "--cache", cache, "-f", "tar", "--o", "x.tar", "deep.yml"],
    ] {
        let stderr = failed_cleanly(&baleen(tmp.path(), args), args[0]);
        assert!(stderr.contains("deeper than 128 levels"), "{args:?}: {stderr}");
        assert!(stderr.contains("--> deep.yml:2:257"), "{args:?}: {stderr}");
        assert!(stderr.contains("error: services[0][0]"), "{args:?}: {stderr}");
    }
}

/// One 1 MiB scalar aliased 99,000 times (a 1.3 MB file) allocated until the process died: the
/// alias budget counted nodes, not bytes.
#[test]
fn aliasing_a_big_scalar_is_an_error_not_an_oom() {
    let tmp = tempfile::tempdir().unwrap();
    let big = "x".repeat(1 << 20);
    let aliases = vec!["*big"; 99_000].join(",");
    let yaml = format!(
        "files:\n  - path: a\n    contents: &big {big}\n  - path: b\n    contents: [{aliases}]\n"
    );
    std::fs::write(tmp.path().join("bomb.yml"), yaml).unwrap();
    let stderr = failed_cleanly(&baleen(tmp.path(), &["validate", "bomb.yml"]), "validate");
    assert!(stderr.contains("aliases expand to more than"), "{stderr}");
    assert!(stderr.contains("bytes of text"), "{stderr}");
    assert!(stderr.contains("--> bomb.yml:5:"), "{stderr}");
    assert!(stderr.contains("error: files[1].contents["), "{stderr}");
}
