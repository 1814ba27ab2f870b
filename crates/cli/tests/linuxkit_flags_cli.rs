//! LinuxKit users' command lines: Go's single-dash long flags (`-format tar -dir out`) work for
//! `build`, `run`, `pkg` and `cache`, and a LinuxKit flag baleen does not have is refused with
//! what to do instead (exit 2) rather than clap's nearest-spelling guess.

use baleen_testkit::image::ImageBuilder;
use baleen_testkit::layers::{dir, file_mode};
use std::path::Path;
use std::process::{Command, Output};

fn baleen(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baleen"))
        .current_dir(cwd)
        .args(args)
        .env_remove("BALEEN_CACHE")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn single_dash_build_flags_were_read_as_short_clusters() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    ImageBuilder::new()
        .layer(&[file_mode("init", b"#!/bin/init\n", 0o755), dir("etc")])
        .build()
        .write_layout(&cache, "docker.io/baleen/lk-init:1");
    std::fs::write(tmp.path().join("sys.yml"), "init:\n  - baleen/lk-init:1\n").unwrap();
    let out = baleen(
        tmp.path(),
        &["build", "-cache", cache.to_str().unwrap(), "-format", "tar", "-dir", "out"]
            .into_iter()
            .chain(["-name", "x", "-no-sbom", "sys.yml"])
            .collect::<Vec<_>>(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(tmp.path().join("out/x.tar").is_file(), "-dir out -name x names the output");
}

#[test]
fn single_dash_run_and_pkg_flags_reach_the_command() {
    let tmp = tempfile::tempdir().unwrap();
    // Parsed, then refused for the missing image: not a flag error.
    let out = baleen(tmp.path(), &["run", "-mem", "2048", "-cpus", "2", "-accel", "tcg", "nope"]);
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("unexpected argument") && !err.contains("invalid value"), "{err}");
    assert!(err.contains("nope"), "{err}");

    let pkg = tmp.path().join("hello");
    std::fs::create_dir(&pkg).unwrap();
    std::fs::write(
        pkg.join("build.yml"),
        "image: hello\norg: lk\nfiles:\n  - {path: /etc/motd, contents: \"hi\\n\"}\n",
    )
    .unwrap();
    let out = baleen(tmp.path(), &["pkg", "show-tag", "-canonical", "hello"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("docker.io/lk/hello:"));
}

#[test]
fn linuxkit_only_flags_got_a_similar_argument_guess() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, instead) in [
        (&["build", "--docker", "sys.yml"][..], "cache import"),
        (&["build", "-docker", "sys.yml"][..], "cache import"),
        (&["build", "--disable-content-trust", "sys.yml"][..], "digest"),
        (&["pkg", "build", "-org", "me", "hello"][..], "org:"),
        (&["pkg", "build", "--docker", "hello"][..], "docker load"),
        (&["run", "--qemu", "/usr/bin/qemu", "out/x"][..], "PATH"),
    ] {
        let out = baleen(tmp.path(), args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("LinuxKit flag") && err.contains(instead), "{args:?}: {err}");
        assert!(!err.contains("similar argument"), "{args:?}: {err}");
    }
}
