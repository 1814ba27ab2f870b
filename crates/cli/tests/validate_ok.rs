//! Valid configs: the examples, LinuxKit's own YAMLs, multi-file merges and `build --dry-run`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn baleen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baleen")).args(args).output().unwrap()
}

fn conformance_dir() -> PathBuf {
    baleen_testkit::workspace_root().join("crates/spec/tests/conformance")
}

fn yml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    v.sort();
    v
}

fn assert_valid(file: &Path) {
    let out = baleen(&["validate", file.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}:\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(": valid ("));
}

#[test]
fn every_example_validates() {
    let files = yml_files(&baleen_testkit::workspace_root().join("examples"));
    assert!(files.len() >= 5, "{files:?}");
    for f in files {
        assert_valid(&f);
    }
}

#[test]
fn linuxkits_own_configs_validate() {
    let files = yml_files(&conformance_dir());
    assert_eq!(files.len(), 6, "{files:?}");
    for f in &files {
        assert_valid(f);
    }
    // The copies must stay equal to the shared originals when those are present.
    let shared = baleen_testkit::workspace_root().join("../shared/conformance/linuxkit");
    if shared.is_dir() {
        for f in &files {
            let orig = shared.join(f.file_name().unwrap());
            assert_eq!(
                std::fs::read(f).unwrap(),
                std::fs::read(&orig).unwrap(),
                "{} differs from {}",
                f.display(),
                orig.display()
            );
        }
    }
}

#[test]
fn two_files_merge_like_linuxkit() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("merge");
    std::fs::create_dir_all(&dir).unwrap();
    let base = conformance_dir().join("examples-minimal.yml");
    let extra = dir.join("extra.yml");
    std::fs::write(
        &extra,
        "kernel:\n  cmdline: \"console=ttyS0 quiet\"\ninit:\n  - linuxkit/ca-certificates:v1\nonboot:\n  - name: dhcpcd\n    image: alpine:3.20\nservices:\n  - name: sshd\n    image: linuxkit/sshd:v1\n",
    )
    .unwrap();
    let out = baleen(&["validate", "--json", base.to_str().unwrap(), extra.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Kernel: image kept (later one empty), cmdline replaced.
    assert_eq!(v["kernel"]["image"], "linuxkit/kernel:6.12.59");
    assert_eq!(v["kernel"]["cmdline"], "console=ttyS0 quiet");
    // Lists concatenated in file order; onboot names may repeat.
    assert_eq!(v["init"].as_array().unwrap().len(), 4);
    assert_eq!(v["init"][3], "linuxkit/ca-certificates:v1");
    let names = |k: &str| -> Vec<String> {
        v[k].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names("onboot"), ["dhcpcd", "dhcpcd"]);
    assert_eq!(names("services"), ["getty", "sshd"]);
}

#[test]
fn a_service_name_repeated_across_files_is_an_error() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("merge");
    std::fs::create_dir_all(&dir).unwrap();
    let base = conformance_dir().join("examples-minimal.yml");
    let extra = dir.join("dup.yml");
    std::fs::write(&extra, "services:\n  - name: getty\n    image: alpine\n").unwrap();
    let out = baleen(&["validate", base.to_str().unwrap(), extra.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot append config files: duplicate service name `getty`"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("--> {}:2:11", extra.display())), "{stderr}");
    assert!(
        stderr.contains("examples-minimal.yml:15:11"),
        "points at the first definition: {stderr}"
    );
}

#[test]
fn dry_run_prints_the_merged_config_and_round_trips() {
    let file = conformance_dir().join("linuxkit.yml");
    let out = baleen(&["build", "--dry-run", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(yaml.starts_with("kernel:\n    image: linuxkit/kernel:6.12.59\n"), "{yaml}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("kernel+initrd"));
    // What dry-run prints is itself a valid config that prints the same.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let again = dir.join("roundtrip.yml");
    std::fs::write(&again, &yaml).unwrap();
    let out2 = baleen(&["build", "--dry-run", again.to_str().unwrap()]);
    assert_eq!(out2.status.code(), Some(0), "{}", String::from_utf8_lossy(&out2.stderr));
    assert_eq!(String::from_utf8(out2.stdout).unwrap(), yaml);
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(baleen(&["validate"]).status.code(), Some(2));
    assert_eq!(baleen(&["validate", "/nonexistent/x.yml"]).status.code(), Some(2));
    let f = baleen_testkit::workspace_root().join("examples/minimal.yml");
    let f = f.to_str().unwrap();
    assert_eq!(baleen(&["build", "--dry-run", "-f", "tar,iso-bios", f]).status.code(), Some(2));
    assert_eq!(
        baleen(&["build", "--dry-run", "--o", "x.tar", "--dir", "d", f]).status.code(),
        Some(2)
    );
    assert_eq!(baleen(&["build", "--dry-run", "-f", "nope", f]).status.code(), Some(2));
}

#[test]
fn stdin_is_a_file_named_dash() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_baleen"))
        .args(["validate", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"init:\n  - 3\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--> -:2:5"));
}

#[test]
fn quiet_validate_prints_nothing_on_success_and_still_reports_errors() {
    let ok = baleen_testkit::workspace_root().join("examples/minimal.yml");
    let out = baleen(&["-q", "validate", ok.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "kernel:\n  imag: x\n").unwrap();
    let out = baleen(&["validate", "-q", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yml:2:3"));
}
