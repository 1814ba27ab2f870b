//! `format: oci` volumes on a multi-platform stand-in image: the volume's `lower/` is read back
//! from the built tar and opened as an OCI image layout by baleen's own store (every descriptor
//! resolves, every blob hashes to its name), with all platforms or the `platforms` listed; the
//! platforms a build did not pull are pulled from a local registry.

use baleen_build::{build, Format, Output, Request};
use baleen_oci::{Digest, Platform, Reference, Store};
use baleen_testkit::image::{index_of, sha256, BuiltIndex, ImageBuilder};
use baleen_testkit::layers::file;
use baleen_testkit::Chain;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

fn multi() -> BuiltIndex {
    let img = |os: &str, arch: &str, variant: Option<&str>| {
        ImageBuilder::new()
            .platform(os, arch, variant)
            .layer(&[file("etc/os", format!("{arch}{}\n", variant.unwrap_or("")).as_bytes())])
            .layer(&[file("etc/shared", b"same bytes on every platform\n")])
            .build()
    };
    index_of(&[
        img("linux", "amd64", None),
        img("linux", "arm64", None),
        img("linux", "arm", Some("v7")),
    ])
}

fn yaml(image: &str) -> String {
    format!(
        "volumes:\n  - name: all\n    image: {image}\n    format: oci\n  - name: arm\n    image: {image}\n    format: oci\n    platforms: [linux/arm64]\n"
    )
}

fn build_tar(store: &Store, yaml: &str, out: &Path) -> Vec<u8> {
    let src = baleen_spec::Source { name: "v.yml", text: yaml, template_dir: None };
    let cfg = baleen_spec::load_all(&[src], None).unwrap_or_else(|d| panic!("{d}"));
    build(&Request::new(
        &cfg,
        store,
        vec![Format::Tar],
        Output::File(out.to_path_buf()),
        Platform::new("linux", "amd64", None),
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::read(out).unwrap()
}

/// Extracts the files under `prefix` into `dir`; returns path → (type, mode) of every entry.
fn extract(tar_bytes: &[u8], prefix: &str, dir: &Path) -> BTreeMap<String, (char, u32)> {
    let mut seen = BTreeMap::new();
    let mut ar = tar::Archive::new(tar_bytes);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let Some(rel) = path.strip_prefix(prefix) else { continue };
        let t = if e.header().entry_type().is_dir() { 'd' } else { 'f' };
        seen.insert(rel.to_string(), (t, e.header().mode().unwrap()));
        if t == 'f' {
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            let to = dir.join(rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::write(to, data).unwrap();
        }
    }
    seen
}

/// Checks a layout extracted to `dir`: blobs hash to their names; `index.json` names the image;
/// each platform in `have` resolves and those in `lack` do not.
fn check_layout(dir: &Path, name: &str, have: &[&str], lack: &[&str]) -> serde_json::Value {
    for f in std::fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        let f = f.unwrap();
        let want = format!("sha256:{}", f.file_name().to_string_lossy());
        assert_eq!(
            sha256(&std::fs::read(f.path()).unwrap()),
            want,
            "blob content matches its name"
        );
    }
    let layout: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("oci-layout")).unwrap()).unwrap();
    assert_eq!(layout["imageLayoutVersion"], "1.0.0");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], name);
    let store = Store::open(dir).unwrap();
    let r = Reference::parse(name).unwrap();
    for p in have {
        let img = store.resolve(&r, &Platform::parse(p).unwrap()).unwrap();
        let img = img.unwrap_or_else(|| panic!("{p} does not resolve in the layout"));
        for d in img.layer_digests() {
            assert!(store.has_blob(&d));
        }
    }
    for p in lack {
        let res = store.resolve(&r, &Platform::parse(p).unwrap());
        assert!(!matches!(res, Ok(Some(_))), "{p} should not be in the layout");
    }
    index
}

#[test]
fn oci_volumes_hold_all_or_the_listed_platforms_as_a_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let at = tmp.path().join("store");
    let idx = multi();
    let name = "docker.io/baleen/multi:1";
    idx.write_layout(&at, name);
    let store = Store::open(&at).unwrap();
    let tar = build_tar(&store, &yaml("baleen/multi:1"), &tmp.path().join("v.tar"));

    let all = tmp.path().join("all");
    let entries = extract(&tar, "containers/volumes/all/lower/", &all);
    assert_eq!(entries["oci-layout"], ('f', 0o644));
    assert_eq!(entries["blobs"], ('d', 0o755));
    assert_eq!(entries["index.json"], ('f', 0o644));
    let index = check_layout(&all, name, &["linux/amd64", "linux/arm64", "linux/arm/v7"], &[]);
    assert_eq!(
        index["manifests"][0]["digest"], idx.index.digest,
        "every child written: the index as stored"
    );
    // 3 configs + 3 own layers + 1 shared layer + 3 manifests + the index.
    assert_eq!(std::fs::read_dir(all.join("blobs/sha256")).unwrap().count(), 11);

    let arm = tmp.path().join("arm");
    extract(&tar, "containers/volumes/arm/lower/", &arm);
    let index = check_layout(&arm, name, &["linux/arm64"], &["linux/amd64", "linux/arm/v7"]);
    assert_ne!(index["manifests"][0]["digest"], idx.index.digest, "a filtered copy of the index");
    assert_eq!(std::fs::read_dir(arm.join("blobs/sha256")).unwrap().count(), 5);

    let tar_text = String::from_utf8_lossy(&tar);
    for dir in ["containers/volumes/all/tmp", "containers/volumes/all/merged"] {
        assert!(tar_text.contains(dir), "{dir}");
    }
    // Deterministic.
    assert!(tar == build_tar(&store, &yaml("baleen/multi:1"), &tmp.path().join("w.tar")));
}

#[test]
fn unknown_platform_is_an_error_naming_the_volume() {
    let tmp = tempfile::tempdir().unwrap();
    let at = tmp.path().join("store");
    multi().write_layout(&at, "docker.io/baleen/multi:1");
    let store = Store::open(&at).unwrap();
    let yaml = "volumes:\n  - name: v\n    image: baleen/multi:1\n    format: oci\n    platforms: [linux/s390x]\n";
    let src = baleen_spec::Source { name: "v.yml", text: yaml, template_dir: None };
    let cfg = baleen_spec::load_all(&[src], None).unwrap();
    let err = build(&Request::new(
        &cfg,
        &store,
        vec![Format::Tar],
        Output::File(tmp.path().join("x.tar")),
        Platform::new("linux", "amd64", None),
    ))
    .unwrap_err()
    .chain();
    assert!(
        err.contains("volumes[0] \"v\"")
            && err.contains("linux/s390x")
            && err.contains("linux/arm64"),
        "{err}"
    );
    assert!(!tmp.path().join("x.tar").exists(), "no output from a failed build");
}

#[test]
fn platforms_the_build_did_not_pull_are_pulled_for_the_layout() {
    let Some(reg) = baleen_testkit::registry::Registry::plain() else { return };
    let name = format!("{}/test/multi:1", reg.host);
    let src = tempfile::tempdir().unwrap();
    let idx = multi();
    idx.write_layout(src.path(), &name);
    let r = Reference::parse(&name).unwrap();
    baleen_oci::push_blocking(&Store::open(src.path()).unwrap(), &r, &r, &Default::default())
        .unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let tar = build_tar(&store, &yaml(&name), &tmp.path().join("v.tar"));
    let all = tmp.path().join("all");
    extract(&tar, "containers/volumes/all/lower/", &all);
    check_layout(&all, &name, &["linux/amd64", "linux/arm64", "linux/arm/v7"], &[]);
    for image in &idx.images {
        assert!(
            store.has_blob(&Digest::parse(&image.manifest.digest).unwrap()),
            "{} cached",
            image.arch
        );
    }
}
