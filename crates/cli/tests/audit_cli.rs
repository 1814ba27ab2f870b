//! `baleen audit`, `baleen pkg lock --update` and the merged SBOM of a system built from
//! `pkg build` components, as a user runs them, against the signed private archive of
//! crates/pkg/tests/fixtures/release/private served from loopback (baleen-hello 1.0 in
//! `bookworm`, 1.1 in `bookworm-security`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture() -> PathBuf {
    baleen_testkit::workspace_root().join("crates/pkg/tests/fixtures/release")
}

use baleen_testkit::http::serve_dir;

fn package(root: &Path, mirror: &str, security: bool) -> PathBuf {
    let d = root.join("hello");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("build.yml"),
        format!(
            "image: hello\norg: baleentest\ndebian:\n  packages: [baleen-hello, libbaleen]\n  \
             mirror: {mirror}\n  security: {security}\n  security-mirror: {mirror}\n  \
             keyring: test-key.gpg\nconfig:\n  cmd: [/bin/true]\n"
        ),
    )
    .unwrap();
    std::fs::copy(fixture().join("test-key.gpg"), d.join("test-key.gpg")).unwrap();
    d
}

/// `baleen ARGS` with the store (and Debian cache) under `cache`.
fn baleen(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baleen"))
        .args(args)
        .env("BALEEN_CACHE", cache)
        .output()
        .unwrap()
}

fn text(out: &Output) -> (Option<i32>, String, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn audit_of_a_package_dir_exit_codes_json_and_lock_update() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let mirror = format!("http://127.0.0.1:{}", serve_dir(fixture().join("private")));
    let d = package(t.path(), &mirror, false);
    let (code, _, err) = text(&baleen(&cache, &["pkg", "lock", s(&d)]));
    assert_eq!(code, Some(0), "{err}");

    let (code, out, err) = text(&baleen(&cache, &["audit", s(&d)]));
    assert_eq!(code, Some(1), "superseded: {out}{err}");
    assert!(
        out.contains("amd64 baleen-hello 1.0 (bookworm): SUPERSEDED by 1.1 in bookworm-security [DSA-9999-1, CVE-2099-0001]")
            && out.contains("amd64 libbaleen 1.5 (bookworm): up to date")
            && out.contains(&format!("origin: {}", d.join("packages.lock").display())),
        "{out}"
    );
    // docs/audit.md shows this very report: its package lines are these.
    let doc =
        std::fs::read_to_string(baleen_testkit::workspace_root().join("docs/audit.md")).unwrap();
    let shown: Vec<&str> = doc.lines().filter(|l| l.starts_with("  amd64 ")).collect();
    assert_eq!(shown.len(), 2, "docs/audit.md's example");
    for line in shown {
        assert!(out.contains(&format!("{line}\n")), "docs/audit.md shows {line:?}; got {out}");
    }
    let (code, out, _) = text(&baleen(&cache, &["audit", "--json", "--offline", s(&d)]));
    assert_eq!(code, Some(1));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["superseded"], 1);
    let hello = &json["components"][0]["debian_packages"][0];
    assert_eq!(hello["superseded_by"]["version"], "1.1");
    assert_eq!(json["indexes"][0]["from_cache_offline"], true, "{out}");

    // Taking the security suite in, `pkg lock --update` says what moved; the audit is clean.
    std::fs::write(
        d.join("build.yml"),
        std::fs::read_to_string(d.join("build.yml"))
            .unwrap()
            .replace("security: false", "security: true"),
    )
    .unwrap();
    let (code, out, err) = text(&baleen(&cache, &["pkg", "lock", "--update", s(&d)]));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        format!("{}: amd64 baleen-hello: 1.0 -> 1.1 (bookworm-security)\n", d.display())
    );
    let (_, out, _) = text(&baleen(&cache, &["pkg", "lock", "--update", s(&d)]));
    assert_eq!(out, format!("{}: no changes\n", d.display()));
    let (code, out, _) = text(&baleen(&cache, &["audit", s(&d)]));
    assert_eq!(code, Some(0), "{out}");

    // An archive that cannot be reached, and no cached index: exit 2, saying which.
    let empty = t.path().join("empty");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let yml = std::fs::read_to_string(d.join("build.yml")).unwrap();
    std::fs::write(d.join("build.yml"), yml.replace(&mirror, &format!("http://127.0.0.1:{port}")))
        .unwrap();
    let (code, out, _) = text(&baleen(&empty, &["audit", s(&d)]));
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("could not check: the bookworm index for amd64: fetching http://127.0.0.1:")
            && out.contains("no cached copy"),
        "{out}"
    );
}

/// A system whose init and onboot images come from `pkg build`: its tar output carries a merged
/// `sbom.spdx.json` listing the component's Debian packages with the lock's checksums, and
/// `baleen audit` lists the YAML's image by reference and stored digest.
#[test]
fn a_system_of_pkg_components_has_a_merged_sbom_listing_their_packages() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let mirror = format!("http://127.0.0.1:{}", serve_dir(fixture().join("private")));
    let d = package(t.path(), &mirror, false);
    let (code, tag, err) = text(&baleen(&cache, &["pkg", "build", s(&d)]));
    assert_eq!(code, Some(0), "{err}");
    let tag = tag.trim().to_owned();
    let yml = t.path().join("sys.yml");
    std::fs::write(&yml, format!("init:\n  - {tag}\nonboot:\n  - name: hello\n    image: {tag}\n"))
        .unwrap();
    let out = t.path().join("out");
    let (code, _, err) = text(&baleen(&cache, &["build", "-f", "tar", "--dir", s(&out), s(&yml)]));
    assert_eq!(code, Some(0), "{err}");
    let tar = out.join("sys.tar");
    let mut sbom = None;
    for e in tar::Archive::new(std::fs::File::open(&tar).unwrap()).entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some("sbom.spdx.json") {
            let mut b = Vec::new();
            e.read_to_end(&mut b).unwrap();
            sbom = Some(serde_json::from_slice::<serde_json::Value>(&b).unwrap());
        }
    }
    let sbom = sbom.expect("sbom.spdx.json in the tar");
    let lock = std::fs::read_to_string(d.join("packages.lock")).unwrap();
    let packages = sbom["packages"].as_array().unwrap();
    for line in lock.lines().filter(|l| l.starts_with("amd64 ")) {
        let w: Vec<&str> = line.split(' ').collect();
        let (name, version, sha) = (w[1], w[2], w[4]);
        assert!(
            packages.iter().any(|p| p["name"] == name
                && p["versionInfo"] == version
                && p["checksums"][0]["checksumValue"] == sha),
            "{name} {version} missing from the merged SBOM: {sbom}"
        );
    }

    // From the YAML: the image by reference and digest, its packages from the attested SBOM.
    // The SBOM does not say which keyring the private archive needs (Debian's keys are
    // assumed), so this archive cannot be checked: exit 2, saying why.
    let (code, out, _) = text(&baleen(&cache, &["audit", s(&yml)]));
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains(&format!("docker.io/{tag}\n  origin: docker.io/{tag}@sha256:")), "{out}");
    assert!(out.contains("amd64 baleen-hello 1.0 (bookworm): not checked"), "{out}");
    assert!(out.contains("no valid signature by a Debian archive key"), "{out}");
    // From the built output, the same packages.
    let (code, out, _) = text(&baleen(&cache, &["audit", s(&tar)]));
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains(&format!("origin: {}", tar.display())), "{out}");
    assert!(out.contains("amd64 libbaleen 1.5 (bookworm)"), "{out}");
}
