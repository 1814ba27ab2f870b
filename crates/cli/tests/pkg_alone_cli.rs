//! `baleen pkg build pkg/init` with the `baleen` binary alone: no cargo on `PATH`, and a copy of
//! `pkg/init` outside the checkout. The image must be the one cargo's build gives (same tag, same
//! index digest), from the `baleen-init` that build.rs embedded; what cannot be built must say
//! what is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `PATH` without any directory that holds `cargo`.
fn path_without_cargo() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    let kept: Vec<&str> =
        path.split(':').filter(|d| !Path::new(d).join("cargo").exists()).collect();
    kept.join(":")
}

/// Runs baleen with its store (and Debian download cache) in `store`; without cargo when
/// `cargo` is false (no `CARGO` variable, no `cargo` on `PATH`).
fn baleen(store: &Path, cargo: bool, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baleen"));
    cmd.args(args).env("BALEEN_CACHE", store);
    if !cargo {
        cmd.env_remove("CARGO").env("PATH", path_without_cargo());
    }
    cmd.output().unwrap()
}

/// A store whose Debian download cache is the test suite's shared one.
fn store(root: &Path, name: &str) -> PathBuf {
    let s = root.join(name);
    std::fs::create_dir_all(&s).unwrap();
    let debian = baleen_testkit::kernel::cache_dir().join("debian");
    std::fs::create_dir_all(&debian).unwrap();
    std::os::unix::fs::symlink(&debian, s.join("debian")).unwrap();
    s
}

/// (tag on stdout, index digest from the `built` line on stderr), or None when the archive is
/// unreachable and the build needed it (skipped unless tools are required).
fn built(out: Output) -> Option<(String, String)> {
    let err = String::from_utf8(out.stderr).unwrap();
    if out.status.code() != Some(0) && err.contains("fetching") && !baleen_testkit::tools_required()
    {
        eprintln!("skipping: the Debian archive is unreachable: {err}");
        return None;
    }
    assert_eq!(out.status.code(), Some(0), "{err}");
    let digest = err.split_whitespace().find(|w| w.starts_with("sha256:")).unwrap().to_owned();
    Some((String::from_utf8(out.stdout).unwrap().trim().to_owned(), digest))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn pkg_init_builds_without_cargo_and_outside_the_checkout_to_the_same_image() {
    let root = baleen_testkit::workspace_root();
    let pkg_init = root.join("pkg/init");
    let t = tempfile::tempdir().unwrap();

    let normal = baleen(&store(t.path(), "a"), true, &["pkg", "build", s(&pkg_init)]);
    let Some((tag, digest)) = built(normal) else { return };

    // The checkout, with no cargo: the embedded init, whose sources are these.
    let out = baleen(&store(t.path(), "b"), false, &["pkg", "build", s(&pkg_init)]);
    let (tag_b, digest_b) = built(out).unwrap();
    assert_eq!((&tag_b, &digest_b), (&tag, &digest), "no cargo: the same image");

    // A copy outside any workspace, with no cargo: the same tag and the same bytes.
    let copy = t.path().join("elsewhere/init");
    copy_dir(&pkg_init, &copy);
    let c = store(t.path(), "c");
    let out = baleen(&c, false, &["pkg", "build", s(&copy)]);
    let (tag_c, digest_c) = built(out).unwrap();
    assert_eq!((&tag_c, &digest_c), (&tag, &digest), "a copy of pkg/init: the same image");
    let shown = baleen(&c, false, &["pkg", "show-tag", s(&copy)]);
    assert_eq!(String::from_utf8(shown.stdout).unwrap().trim(), tag, "show-tag agrees");
}

/// Offline: a package holding only the init, copied outside the checkout, gets exactly the
/// binary `pkg build` compiles in the checkout (target/init-build, where build.rs built it).
#[test]
fn the_embedded_init_is_the_binary_cargo_builds() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("init-only");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("build.yml"),
        "image: init-only\nrust:\n  - {package: baleen-init, bin: baleen-init, path: /init, static: true}\n",
    )
    .unwrap();
    let out = baleen(
        &store(t.path(), "s"),
        false,
        &["pkg", "build", "--output", s(&t.path().join("oci")), s(&dir)],
    );
    let (_, digest) = built(out).unwrap();
    let layout = t.path().join("oci");
    let blob = |d: &str| layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"));
    let json = |d: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(blob(d)).unwrap()).unwrap()
    };
    let index = json(&digest);
    let manifest = json(index["manifests"][0]["digest"].as_str().unwrap());
    let layer =
        std::fs::File::open(blob(manifest["layers"][0]["digest"].as_str().unwrap())).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    let mut init = Vec::new();
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap() == Path::new("init") {
            std::io::Read::read_to_end(&mut e, &mut init).unwrap();
        }
    }
    let cargo_built = baleen_testkit::workspace_root()
        .join("target/init-build/x86_64-unknown-linux-musl/release-init/baleen-init");
    assert!(
        init == std::fs::read(&cargo_built).unwrap(),
        "/init differs from {}",
        cargo_built.display()
    );
}

fn refused(out: Output) -> String {
    let err = String::from_utf8(out.stderr).unwrap();
    assert_ne!(out.status.code(), Some(0), "{err}");
    err
}

/// What cannot be built without cargo says what is missing, not "running cargo: No such file".
#[test]
fn without_cargo_a_build_that_needs_it_says_what_is_missing() {
    let t = tempfile::tempdir().unwrap();
    let st = store(t.path(), "s");

    // A workspace whose baleen-init is not the one embedded: its sources differ.
    let ws = t.path().join("ws");
    std::fs::create_dir_all(ws.join("crates/init/src")).unwrap();
    std::fs::write(ws.join("Cargo.toml"), "[workspace]\nmembers = [\"crates/init\"]\n").unwrap();
    std::fs::write(ws.join("Cargo.lock"), "").unwrap();
    std::fs::write(ws.join("crates/init/Cargo.toml"), "[package]\nname = \"baleen-init\"\n")
        .unwrap();
    std::fs::write(ws.join("crates/init/src/main.rs"), "fn main() {}\n").unwrap();
    let p = ws.join("pkg/init");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(
        p.join("build.yml"),
        "image: init\nrust:\n  - {package: baleen-init, bin: baleen-init, path: /init, static: true}\n",
    )
    .unwrap();
    let err = refused(baleen(&st, false, &["pkg", "build", s(&p)]));
    assert!(err.contains("cargo is not installed") && err.contains("other sources"), "{err}");

    // Outside any workspace: an architecture the binary does not embed.
    let copy = t.path().join("copy");
    copy_dir(&p, &copy);
    let err =
        refused(baleen(&st, false, &["pkg", "build", "--platforms", "linux/riscv64", s(&copy)]));
    assert!(
        err.contains("not inside a Cargo workspace")
            && err.contains("embeds no baleen-init for riscv64"),
        "{err}"
    );

    // Outside any workspace: a crate the binary does not embed at all.
    std::fs::write(copy.join("build.yml"), "image: x\nrust:\n  - {package: other, path: /x}\n")
        .unwrap();
    let err = refused(baleen(&st, false, &["pkg", "build", s(&copy)]));
    assert!(
        err.contains("no Cargo workspace") && err.contains("embeds no prebuilt other"),
        "{err}"
    );
}
