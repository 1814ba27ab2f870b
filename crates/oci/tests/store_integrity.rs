//! A store damaged on disk: blobs are checked when read back, not only when written. Export and
//! push of a blob whose bytes no longer match its digest fail, name the blob and the image, and
//! move the blob aside; `gc` clears what was moved aside.

use baleen_oci::{archive, push_blocking, Digest, Reference, Store, QUARANTINE};
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

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
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
