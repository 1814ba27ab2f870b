//! The SBOM `pkg build` attaches, `baleen audit`'s check and `pkg lock --update`, against the
//! signed private archive of tests/fixtures/release/private: baleen-hello is 1.0 in `bookworm`
//! and 1.1 in `bookworm-security` (whose changelog names CVE-2099-0001 and DSA-9999-1).
//! Offline: the archive is served from loopback.

use baleen_pkg::audit::{self, Component};
use baleen_pkg::image::LayoutDir;
use baleen_pkg::Options;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release")
}

use baleen_testkit::http::serve_dir;

/// A package of the private archive at `mirror`, its security suite there too, trusting the
/// fixture's key; `security` as build.yml's `debian.security`.
fn package(root: &Path, mirror: &str, packages: &str, security: bool) -> PathBuf {
    let d = root.join("pkg");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("build.yml"),
        format!(
            "image: private\ndebian:\n  packages: [{packages}]\n  mirror: {mirror}\n  \
             security: {security}\n  security-mirror: {mirror}\n  keyring: test-key.gpg\n"
        ),
    )
    .unwrap();
    std::fs::copy(fixture().join("test-key.gpg"), d.join("test-key.gpg")).unwrap();
    d
}

fn options(cache: &Path) -> Options {
    let mut o = Options::new();
    o.cache = cache.to_owned();
    o
}

fn blob_json(layout: &Path, digest: &str) -> Value {
    let p = layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The statement bytes attested for each platform manifest of the image index `digest`, found
/// as `baleen build` finds them (the index's attestation manifest naming the platform manifest,
/// its in-toto layer with the SPDX predicate type).
fn attested(layout: &Path, digest: &str) -> Vec<Vec<u8>> {
    let index = blob_json(layout, digest);
    let entries = index["manifests"].as_array().unwrap();
    let mut out = Vec::new();
    for m in entries.iter().filter(|m| m["platform"]["os"] == "linux") {
        let att: Vec<&Value> = entries
            .iter()
            .filter(|a| {
                a["annotations"]["vnd.docker.reference.type"] == "attestation-manifest"
                    && a["annotations"]["vnd.docker.reference.digest"] == m["digest"]
                    && a["platform"]["architecture"] == "unknown"
            })
            .collect();
        assert_eq!(att.len(), 1, "one attestation manifest for {}", m["digest"]);
        let manifest = blob_json(layout, att[0]["digest"].as_str().unwrap());
        let layer = &manifest["layers"][0];
        assert_eq!(layer["mediaType"], "application/vnd.in-toto+json");
        assert_eq!(layer["annotations"]["in-toto.io/predicate-type"], "https://spdx.dev/Document");
        let p = layout.join("blobs/sha256").join(&layer["digest"].as_str().unwrap()[7..]);
        out.push(std::fs::read(p).unwrap());
    }
    out
}

#[test]
fn the_sbom_is_attested_deterministic_and_lists_exactly_the_locked_debs() {
    let t = tempfile::tempdir().unwrap();
    let mirror = format!("http://127.0.0.1:{}", serve_dir(fixture().join("private")));
    let d = package(t.path(), &mirror, "baleen-hello, libbaleen", false);
    let o = options(&t.path().join("cache"));
    let lock = baleen_pkg::lock(&d, &o).unwrap();
    let statements: Vec<Vec<u8>> = ["a", "b"]
        .iter()
        .map(|run| {
            let out = t.path().join(run);
            let mut sink = LayoutDir::create(&out).unwrap();
            let built = baleen_pkg::build(&d, &o, &mut sink, true).unwrap();
            let mut s = attested(&out, &built.digest);
            assert_eq!(s.len(), 1, "one platform, one SBOM");
            s.remove(0)
        })
        .collect();
    assert_eq!(statements[0], statements[1], "built twice: the same SBOM bytes");

    let statement: Value = serde_json::from_slice(&statements[0]).unwrap();
    assert_eq!(statement["predicateType"], "https://spdx.dev/Document");
    let doc = &statement["predicate"];
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    let debs: Vec<&Value> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["externalRefs"][0]["referenceLocator"]
                .as_str()
                .is_some_and(|l| l.starts_with("pkg:deb/"))
        })
        .collect();
    // Exactly the lock's .debs: name, version, checksum and pool path each.
    let mut from_sbom: Vec<(String, String, String, String)> = debs
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["versionInfo"].as_str().unwrap().to_owned(),
                p["checksums"][0]["checksumValue"].as_str().unwrap().to_owned(),
                p["downloadLocation"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    from_sbom.sort();
    let mut from_lock: Vec<(String, String, String, String)> = lock
        .for_arch("amd64")
        .map(|p| {
            (
                p.name.clone(),
                p.version.clone(),
                p.sha256.clone(),
                format!("{mirror}/{}", p.filename),
            )
        })
        .collect();
    from_lock.sort();
    assert_eq!(from_sbom, from_lock);
    // Source package and licence from the .deb's control and DEP-5 copyright files (which the
    // image itself leaves out with usr/share/doc).
    let hello = debs.iter().find(|p| p["name"] == "baleen-hello").unwrap();
    assert_eq!(hello["sourceInfo"], "built from Debian source package baleen-greetings");
    assert_eq!(hello["licenseDeclared"], "GPL-2.0-or-later AND (BSD-3-Clause OR MIT)");
    assert_eq!(
        hello["externalRefs"][0]["referenceLocator"],
        "pkg:deb/debian/baleen-hello@1.0?arch=amd64&upstream=baleen-greetings&distro=bookworm"
    );
    assert!(doc["documentNamespace"].as_str().unwrap().starts_with("urn:uuid:"));
}

/// baleen-init's crates, from Cargo.lock: its normal dependencies and theirs, not its
/// dev-dependencies (baleen-testkit, zstd).
#[test]
fn the_crates_of_baleen_init_come_from_cargo_lock_without_dev_dependencies() {
    let root = baleen_testkit::workspace_root();
    let (version, crates) = baleen_pkg::rust_inputs::locked_crates(&root, "baleen-init").unwrap();
    assert!(!version.is_empty());
    let names: Vec<&str> = crates.iter().map(|c| c.name.as_str()).collect();
    for want in ["libc", "serde", "serde_json", "ruzstd", "lzma-rs", "flate2"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for dev in ["baleen-testkit", "zstd", "tokio"] {
        assert!(!names.contains(&dev), "{dev} is not in baleen-init: {names:?}");
    }
    let libc = crates.iter().find(|c| c.name == "libc").unwrap();
    assert_eq!(libc.checksum.len(), 64, "crates.io crates carry Cargo.lock's SHA-256");
    let text = baleen_pkg::rust_inputs::locked_crates_text(&root, "baleen-init").unwrap();
    assert_eq!(baleen_pkg::rust_inputs::parse_locked_crates(&text), (version, crates));
}

/// The component of a package directory, as `baleen audit DIR` builds it.
fn component(d: &Path, o: &Options) -> Component {
    let spec = baleen_pkg::BuildSpec::load(d).unwrap();
    let lock = baleen_pkg::lock::Lock::load(d).unwrap().unwrap();
    audit::Component::of_lock(d, &lock, Some(o.audit_archive(d, &spec).unwrap()))
}

fn audit_options(cache: &Path, offline: bool) -> audit::Options {
    audit::Options { cache: cache.to_owned(), offline, progress: baleen_oci::Progress::Silent }
}

#[test]
fn audit_reports_a_pin_the_security_suite_supersedes_and_is_clean_once_updated() {
    let t = tempfile::tempdir().unwrap();
    let mirror = format!("http://127.0.0.1:{}", serve_dir(fixture().join("private")));
    let cache = t.path().join("cache");
    let o = options(&cache);
    // Locked without the security suite: baleen-hello 1.0, which bookworm-security supersedes.
    let d = package(t.path(), &mirror, "baleen-hello, libbaleen", false);
    baleen_pkg::lock(&d, &o).unwrap();
    let report = audit::audit(vec![component(&d, &o)], &audit_options(&cache, false));
    assert_eq!(report.exit_code(), 1, "{}", report.text());
    let f = &report.components[0].findings;
    let hello = f.iter().find(|f| f.pinned.name == "baleen-hello").unwrap();
    let newer = hello.newer.as_ref().unwrap();
    assert_eq!((newer.version.as_str(), newer.suite.as_str()), ("1.1", "bookworm-security"));
    // The 1.1 changelog entry's identifiers; not the 1.0 entry's CVE, which the pin has.
    assert_eq!(newer.advisories, ["DSA-9999-1", "CVE-2099-0001"]);
    let lib = f.iter().find(|f| f.pinned.name == "libbaleen").unwrap();
    assert!(lib.newer.is_none() && lib.unchecked.is_none());
    let text = report.text();
    assert!(
        text.contains("amd64 baleen-hello 1.0 (bookworm): SUPERSEDED by 1.1 in bookworm-security [DSA-9999-1, CVE-2099-0001]"),
        "{text}"
    );
    assert!(text.contains(&format!("origin: {}", d.join("packages.lock").display())), "{text}");
    let json = report.json();
    assert_eq!(json["superseded"], 1);
    assert_eq!(json["exit_code"], 1);

    // Offline, from the indexes just cached: the same answer, and it says the index is cached.
    let report = audit::audit(vec![component(&d, &o)], &audit_options(&cache, true));
    assert_eq!(report.exit_code(), 1, "{}", report.text());
    assert!(report.indexes.iter().all(|i| i.freshness.offline), "{:?}", report.indexes);
    assert!(report.text().contains("cached copy from"), "{}", report.text());

    // With the security suite, the lock takes 1.1: nothing superseded.
    let d = package(t.path(), &mirror, "baleen-hello, libbaleen", true);
    baleen_pkg::lock(&d, &o).unwrap();
    let report = audit::audit(vec![component(&d, &o)], &audit_options(&cache, false));
    assert_eq!(report.exit_code(), 0, "{}", report.text());
    assert!(report.text().ends_with("nothing superseded\n"), "{}", report.text());
}

#[test]
fn audit_of_an_unreachable_archive_without_a_cached_index_exits_2_naming_it() {
    let t = tempfile::tempdir().unwrap();
    let mirror = format!("http://127.0.0.1:{}", serve_dir(fixture().join("private")));
    let d = package(t.path(), &mirror, "baleen-hello", false);
    baleen_pkg::lock(&d, &options(&t.path().join("warm"))).unwrap();
    // Nothing listens there now, and this cache is empty.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead = format!("http://127.0.0.1:{port}");
    let yml = std::fs::read_to_string(d.join("build.yml")).unwrap().replace(&mirror, &dead);
    std::fs::write(d.join("build.yml"), yml).unwrap();
    let cache = t.path().join("empty");
    let o = options(&cache);
    let report = audit::audit(vec![component(&d, &o)], &audit_options(&cache, false));
    assert_eq!(report.exit_code(), 2, "{}", report.text());
    let text = report.text();
    assert!(
        text.contains(&format!("could not check: the bookworm index for amd64: fetching {dead}/dists/bookworm/InRelease"))
            && text.contains("no cached copy"),
        "{text}"
    );
    assert!(text.contains("baleen-hello 1.0 (bookworm): not checked"), "{text}");
    // --offline with nothing cached says where it looked.
    let report = audit::audit(vec![component(&d, &o)], &audit_options(&cache, true));
    assert_eq!(report.exit_code(), 2);
    assert!(report.text().contains("not in the cache"), "{}", report.text());
}

#[test]
fn lock_update_moves_the_superseded_package_and_nothing_else() {
    let t = tempfile::tempdir().unwrap();
    let mirror = format!("http://127.0.0.1:{}", serve_dir(fixture().join("private")));
    let o = options(&t.path().join("cache"));
    let d = package(t.path(), &mirror, "baleen-hello, libbaleen", true);
    let newest = baleen_pkg::lock(&d, &o).unwrap().render();
    assert!(newest.contains(" baleen-hello 1.1 pool/updates/"), "{newest}");
    // The lock as it was before bookworm-security had 1.1: the main suite's line.
    let main_only = package(&t.path().join("old"), &mirror, "baleen-hello", false);
    let old_line = baleen_pkg::lock(&main_only, &o).unwrap().render();
    let old_line = old_line.lines().find(|l| l.contains(" baleen-hello ")).unwrap();
    let stale: String = newest
        .lines()
        .map(|l| if l.contains(" baleen-hello ") { old_line } else { l })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(d.join("packages.lock"), &stale).unwrap();

    let (lock, changes) = baleen_pkg::builder::update(&d, &o).unwrap();
    assert_eq!(
        changes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["amd64 baleen-hello: 1.0 -> 1.1 (bookworm-security)"]
    );
    let now = std::fs::read_to_string(d.join("packages.lock")).unwrap();
    assert_eq!(now, newest, "only the superseded line moved");
    assert_eq!(lock.render(), newest);
    let (_, again) = baleen_pkg::builder::update(&d, &o).unwrap();
    assert!(again.is_empty(), "{again:?}");
}
