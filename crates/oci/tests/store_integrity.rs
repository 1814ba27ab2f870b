//! A store damaged on disk: blobs are checked when read back, not only when written. Export and
//! push of a blob whose bytes no longer match its digest fail, name the blob and the image, and
//! move the blob aside; `gc` clears what was moved aside.

use baleen_oci::{archive, push_blocking, Digest, Reference, Store, QUARANTINE};
use baleen_testkit::boot::chain;
use baleen_testkit::image::{BuiltImage, ImageBuilder};
use baleen_testkit::layers::file;
use baleen_testkit::registry::Registry;
use std::path::{Path, PathBuf};

fn image() -> BuiltImage {
    ImageBuilder::new().layer(&[file("etc/greeting", b"hello\n")]).build()
}

/// Flips one bit of the image's layer blob; returns the blob's path.
fn damage_layer(store: &Store, img: &BuiltImage) -> PathBuf {
    let blob = store.blob_path(&Digest::parse(&img.layers[0].digest).unwrap());
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    blob
}

fn quarantined(store: &Path) -> usize {
    std::fs::read_dir(store.join(QUARANTINE)).map_or(0, Iterator::count)
}

#[test]
fn export_of_a_blob_damaged_on_disk_fails_instead_of_shipping_it() {
    let img = image();
    let dir = tempfile::tempdir().unwrap();
    let name = "docker.io/test/greet:v1";
    img.write_layout(dir.path(), name);
    let store = Store::open(dir.path()).unwrap();
    let blob = damage_layer(&store, &img);
    let r = Reference::parse(name).unwrap();
    let mut out = Vec::new();
    let err = chain(&archive::export(&store, &r, None, &mut out).unwrap_err());
    assert!(err.contains(&img.layers[0].digest), "names the blob: {err}");
    assert!(err.contains(name), "names the image: {err}");
    assert!(err.contains("damaged"), "{err}");
    assert!(!blob.exists());
    assert_eq!(quarantined(dir.path()), 1);
    let report = store.gc().unwrap();
    assert_eq!(quarantined(dir.path()), 0, "gc removes what was moved aside");
    assert!(report.blobs_removed >= 1);
}

#[test]
fn push_of_a_blob_damaged_on_disk_fails_instead_of_publishing_it() {
    let Some(reg) = Registry::plain() else { return };
    let img = image();
    let dir = tempfile::tempdir().unwrap();
    let name = format!("{}/test/greet:v1", reg.host);
    img.write_layout(dir.path(), &name);
    let store = Store::open(dir.path()).unwrap();
    let blob = damage_layer(&store, &img);
    let r = Reference::parse(&name).unwrap();
    let err = chain(&push_blocking(&store, &r, &r, &Default::default()).unwrap_err());
    assert!(err.contains(&img.layers[0].digest), "names the blob: {err}");
    assert!(err.contains(&name), "names the image: {err}");
    assert!(err.contains("damaged"), "{err}");
    assert!(!blob.exists());
    assert_eq!(quarantined(dir.path()), 1);
}

#[test]
fn verify_reports_a_descriptor_size_that_disagrees_with_the_blob() {
    let img = image();
    let dir = tempfile::tempdir().unwrap();
    img.write_layout(dir.path(), "docker.io/test/sound:v1");
    let store = Store::open(dir.path()).unwrap();
    let mut manifest: serde_json::Value = serde_json::from_slice(&img.manifest.data).unwrap();
    manifest["layers"][0]["size"] = (img.layers[0].data.len() as u64 + 1).into();
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let blob = store.write_blob(&bytes[..], None).unwrap();
    let desc = baleen_oci::Descriptor::new(
        baleen_oci::MediaType::ImageManifest,
        blob.size,
        blob.digest.to_oci(),
    );
    let name = Reference::parse("docker.io/test/lying:v1").unwrap();
    store.tag(&name, desc).unwrap();

    let report = store.verify(false).unwrap();
    assert_eq!(report.names_checked, 2);
    let wanted = baleen_oci::Problem::WrongSize {
        name: name.to_string(),
        role: "layer",
        digest: Digest::parse(&img.layers[0].digest).unwrap(),
        expected: img.layers[0].data.len() as u64 + 1,
        actual: img.layers[0].data.len() as u64,
    };
    assert_eq!(report.problems, vec![wanted]);
    let report = store.verify(true).unwrap();
    assert_eq!(report.names_removed, vec![name.to_string()]);
    assert!(report.moved_aside.is_empty(), "the blob itself is sound");
    assert!(store.verify(false).unwrap().problems.is_empty());
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn a_pull_over_a_damaged_manifest_and_config_fetches_them_again() {
    let Some(reg) = Registry::plain() else { return };
    let img = image();
    let name = format!("{}/test/heal:v1", reg.host);
    let src = tempfile::tempdir().unwrap();
    img.write_layout(src.path(), &name);
    let r = Reference::parse(&name).unwrap();
    push_blocking(&Store::open(src.path()).unwrap(), &r, &r, &Default::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let amd64 = baleen_oci::Platform::new("linux", "amd64", None);
    baleen_oci::pull_blocking(&store, &r, &amd64, &Default::default()).unwrap();
    for d in [&img.manifest.digest, &img.config.digest] {
        let path = store.blob_path(&Digest::parse(d).unwrap());
        let text = std::fs::read_to_string(&path).unwrap().replacen("sha256", "SHA256", 1);
        std::fs::write(path, text).unwrap();
    }
    let got = baleen_oci::pull_blocking(&store, &r, &amd64, &Default::default()).unwrap();
    assert_eq!(got.manifest_digest.to_string(), img.manifest.digest);
    assert!(store.verify(false).unwrap().problems.is_empty(), "the store is whole again");
    assert_eq!(quarantined(dir.path()), 2);
}

/// Issue 21 follow-up: moving a damaged blob aside renamed it over an earlier damaged copy of
/// the same digest, so the evidence of the first damage was lost. Both copies are kept, and
/// `gc` lists what it removed.
#[test]
fn a_blob_damaged_twice_keeps_both_copies_in_quarantine() {
    let img = image();
    let dir = tempfile::tempdir().unwrap();
    let name = "docker.io/test/greet:v1";
    let r = Reference::parse(name).unwrap();
    let store = Store::open(dir.path()).unwrap();
    let blob = store.blob_path(&Digest::parse(&img.layers[0].digest).unwrap());
    for damage in ["first damage", "second damage"] {
        img.write_layout(dir.path(), name); // the blob whole again, as a re-pull makes it
        std::fs::write(&blob, damage).unwrap();
        archive::export(&store, &r, None, &mut Vec::new()).unwrap_err();
        assert!(!blob.exists());
    }
    let mut kept: Vec<String> = std::fs::read_dir(dir.path().join(QUARANTINE))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    kept.sort();
    assert_eq!(kept, ["first damage", "second damage"]);
    let report = store.gc().unwrap();
    let aside = dir.path().join(QUARANTINE).join(format!("sha256-{}", &img.layers[0].digest[7..]));
    let mut removed = report.quarantine_removed.clone();
    removed.sort();
    let second = PathBuf::from(format!("{}.2", aside.display()));
    assert_eq!(removed, [aside, second], "gc says which files it removed");
}
