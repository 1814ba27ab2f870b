//! `baleen pkg` as a user runs it, on packages without Debian packages (no network): show-tag
//! agrees with build, an unchanged package is not rebuilt, a file among the directories is
//! skipped, a bad build.yml is an error with its line, and `--push` reaches a real registry
//! (Debian's docker-registry on loopback) from which another store pulls the image back.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BUILD_YML: &str = "image: hello\norg: baleentest\nfiles:\n  - {path: /etc/motd, contents: \"hi\\n\"}\nconfig:\n  cmd: [/bin/true]\nlabel:\n  readonly: true\n";

fn baleen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baleen"))
        .args(args)
        .env_remove("BALEEN_CACHE")
        .output()
        .unwrap()
}

fn ok(out: Output) -> (String, String) {
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{err}");
    (String::from_utf8(out.stdout).unwrap(), err)
}

fn package(root: &Path, yml: &str) -> PathBuf {
    let d = root.join("hello");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("build.yml"), yml).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn show_tag_build_and_up_to_date() {
    let t = tempfile::tempdir().unwrap();
    let d = package(t.path(), BUILD_YML);
    let store = t.path().join("store");
    let (tag, _) = ok(baleen(&["pkg", "show-tag", s(&d)]));
    let tag = tag.trim().to_owned();
    assert!(tag.starts_with("baleentest/hello:") && tag.len() > "baleentest/hello:".len(), "{tag}");
    let (canonical, _) = ok(baleen(&["pkg", "show-tag", "--canonical", s(&d)]));
    assert_eq!(canonical.trim(), format!("docker.io/{tag}"));

    // A stray file among the arguments (pkg/* matches pkg/README.md) is skipped with a note.
    let readme = t.path().join("README.md");
    std::fs::write(&readme, "x").unwrap();
    let (out, err) = ok(baleen(&["pkg", "build", "--store", s(&store), s(&d), s(&readme)]));
    assert_eq!(out, format!("{tag}\n"), "stdout is the tag and nothing else");
    let skipped = format!("skipping {}: not a package directory", readme.display());
    assert_eq!(err.matches(&skipped).count(), 1, "noted once: {err}");
    assert!(err.contains(&format!("built {tag} sha256:")), "{err}");
    let (out, err) = ok(baleen(&["pkg", "build", "--store", s(&store), s(&d)]));
    assert_eq!(out, format!("{tag}\n"));
    assert!(err.contains(&format!("up to date {tag}")), "{err}");
    let (out, err) = ok(baleen(&["pkg", "build", "--force", "--store", s(&store), s(&d)]));
    assert_eq!(out, format!("{tag}\n"));
    assert!(err.contains(&format!("built {tag}")), "--force builds again: {err}");
    let (listed, _) = ok(baleen(&["cache", "ls", "--cache", s(&store)]));
    assert!(listed.contains(&format!("docker.io/{tag}")), "{listed}");

    // Any change to the package's files is a new tag.
    std::fs::write(d.join("extra"), "x").unwrap();
    let (moved, _) = ok(baleen(&["pkg", "show-tag", s(&d)]));
    assert_ne!(moved.trim(), tag);
}

#[test]
fn a_bad_build_yml_is_an_error_with_its_line() {
    let t = tempfile::tempdir().unwrap();
    let d = package(t.path(), &BUILD_YML.replace("files:", "fils:"));
    let o = t.path().join("o");
    for args in [vec!["pkg", "show-tag", s(&d)], vec!["pkg", "build", "--output", s(&o), s(&d)]] {
        let out = baleen(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{args:?} succeeded");
        assert!(
            err.contains("build.yml") && err.contains("fils") && err.contains(":3:"),
            "{args:?}: {err}"
        );
    }
    assert!(!o.exists(), "a failed pkg build creates no output layout");
    let out = baleen(&["pkg", "show-tag", s(&t.path().join("missing"))]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"));
}

#[test]
fn build_push_and_pull_back() {
    let Some(reg) = baleen_testkit::registry::Registry::plain() else { return };
    let t = tempfile::tempdir().unwrap();
    let d = package(t.path(), BUILD_YML);
    let store = t.path().join("store");
    let (tag, err) = ok(baleen(&[
        "pkg",
        "build",
        "--store",
        s(&store),
        "--push",
        "--registry",
        &reg.host,
        s(&d),
    ]));
    let remote = format!("{}/{}", reg.host, tag.trim());
    assert!(err.contains(&format!("pushed {remote}")), "{err}");
    // Each blob pushed (layer, config) is one plain line off a terminal.
    let blobs = err
        .lines()
        .filter(|l| l.starts_with(&format!("pushed {}/baleentest/hello blob ", reg.host)))
        .count();
    assert!(blobs >= 2 && !err.contains('\x1b'), "{err:?}");

    let other = t.path().join("other");
    let (_, pulled) = ok(baleen(&["cache", "pull", "--cache", s(&other), &remote]));
    // Not a terminal: one plain line per layer, with its size and rate, no escape codes.
    let layers: Vec<&str> = pulled.lines().filter(|l| l.starts_with("pulled ")).collect();
    assert_eq!(layers.len(), 1, "one line for the one layer: {pulled:?}");
    assert!(layers[0].contains(" layer ") && layers[0].ends_with("/s)"), "{pulled:?}");
    assert!(!pulled.contains('\x1b'), "{pulled:?}");
    let (listed, _) = ok(baleen(&["cache", "ls", "--cache", s(&other)]));
    let (mine, _) = ok(baleen(&["cache", "ls", "--cache", s(&store)]));
    let digest = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.contains(name))
            .and_then(|l| l.split_whitespace().find(|w| w.starts_with("sha256:")))
            .map(str::to_owned)
    };
    let pulled = digest(&listed, &remote).unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(Some(pulled), digest(&mine, tag.trim()), "the registry holds the built image");

    // --registry needs --push.
    let out = baleen(&["pkg", "build", "--store", s(&store), "--registry", &reg.host, s(&d)]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A LinuxKit package (build.yml + Dockerfile) was "built" as an empty image.
#[test]
fn a_linuxkit_dockerfile_package_is_refused_not_built_empty() {
    let t = tempfile::tempdir().unwrap();
    let d = package(t.path(), "image: hello\norg: linuxkit\n");
    std::fs::write(d.join("Dockerfile"), "FROM alpine:3.20\nRUN apk add curl\n").unwrap();
    let o = t.path().join("o");
    for args in [vec!["pkg", "build", "--output", s(&o), s(&d)], vec!["pkg", "show-tag", s(&d)]] {
        let out = baleen(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(!err.contains("built"), "{args:?}: {err}");
        assert!(
            err.contains("LinuxKit package")
                && err.contains("Dockerfile")
                && err.contains("linuxkit pkg build"),
            "{args:?}: {err}"
        );
    }
    assert!(!o.exists(), "nothing is written");
    // LinuxKit's own build.yml keys: the parse error says why they are unknown.
    std::fs::write(d.join("build.yml"), "image: hello\nnetwork: true\n").unwrap();
    let out = baleen(&["pkg", "build", "--output", s(&o), s(&d)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("network") && err.contains("LinuxKit packages"), "{err}");
}

/// On a terminal, `pkg build` printed each tag twice: on stdout (the data) and in the note on
/// stderr. Run under `script`, which gives it a terminal for both.
#[test]
fn a_tag_is_shown_once_on_a_terminal() {
    let t = tempfile::tempdir().unwrap();
    let d = package(t.path(), BUILD_YML);
    let store = t.path().join("store");
    let (tag, _) = ok(baleen(&["pkg", "show-tag", s(&d)]));
    let line =
        format!("{} pkg build --store {} {}", env!("CARGO_BIN_EXE_baleen"), s(&store), s(&d));
    let out = match Command::new("script").args(["-qec", &line, "/dev/null"]).output() {
        Ok(out) => out,
        Err(e) => return eprintln!("skipping: no script(1) for a terminal: {e}"),
    };
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert_eq!(shown.matches(tag.trim()).count(), 1, "{shown}");
    assert!(shown.contains("built sha256:"), "{shown}");
}

/// `pkg build` downloads said nothing, even with -v. Not on a terminal, each download is one
/// plain line (what, bytes, rate), with no escape codes.
#[test]
fn a_deb_download_is_one_plain_line_when_stderr_is_not_a_terminal() {
    let t = tempfile::tempdir().unwrap();
    let root = baleen_testkit::workspace_root();
    let lock = std::fs::read_to_string(root.join("pkg/init/packages.lock")).unwrap();
    let busybox = lock
        .lines()
        .find(|l| l.starts_with("amd64 busybox-static "))
        .and_then(|l| l.split_whitespace().nth(4))
        .unwrap()
        .to_owned();
    // A cache holding the shared one's files but busybox's, so exactly that is downloaded.
    let shared = baleen_testkit::kernel::cache_dir().join("debian");
    let debian = t.path().join("store/debian");
    std::fs::create_dir_all(debian.join("by-hash")).unwrap();
    std::fs::create_dir_all(shared.join("dists")).unwrap();
    std::os::unix::fs::symlink(shared.join("dists"), debian.join("dists")).unwrap();
    for e in std::fs::read_dir(shared.join("by-hash")).into_iter().flatten() {
        let e = e.unwrap();
        if e.file_name().to_str() != Some(busybox.as_str()) {
            std::os::unix::fs::symlink(e.path(), debian.join("by-hash").join(e.file_name()))
                .unwrap();
        }
    }
    let d = package(t.path(), "image: bb\ndebian:\n  packages: [busybox-static]\n");
    std::fs::write(d.join("packages.lock"), &lock).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_baleen"))
        .args(["pkg", "build", "--output", s(&t.path().join("oci")), s(&d)])
        .env("BALEEN_CACHE", t.path().join("store"))
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    if out.status.code() != Some(0) && err.contains("fetching") && !baleen_testkit::tools_required()
    {
        return eprintln!("skipping: the Debian archive is unreachable: {err}");
    }
    assert_eq!(out.status.code(), Some(0), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("downloaded ")).collect();
    assert_eq!(lines.len(), 1, "one download, one line: {err:?}");
    assert!(lines[0].starts_with("downloaded package busybox-static 1:1.35"), "{err:?}");
    assert!(lines[0].contains("KiB in ") && lines[0].ends_with("/s)"), "{err:?}");
    assert!(!err.contains('\x1b'), "{err:?}");
}
