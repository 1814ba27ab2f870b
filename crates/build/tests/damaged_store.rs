//! A store damaged on disk after a verified pull: one flipped byte in a layer blob must fail the
//! build (naming the blob and the image, writing no output), move the blob aside, and let the
//! next pull from a real registry (Debian's docker-registry on 127.0.0.1) heal the store.

use baleen_build::{build, Format, Output, Request};
use baleen_oci::{pull_blocking, push_blocking, Digest, Platform, PullOptions, Reference, Store};
use baleen_testkit::boot::chain;
use baleen_testkit::image::ImageBuilder;
use baleen_testkit::layers::{file, tar_layer};
use baleen_testkit::registry::Registry;
use std::path::Path;

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

fn build_tar(store: &Store, image: &str, out: &Path) -> Result<(), baleen_build::BuildError> {
    let yaml = format!("onboot:\n  - name: greet\n    image: {image}\n");
    let src = baleen_spec::Source { name: "d.yml", text: &yaml, template_dir: None };
    let cfg = baleen_spec::load_all(&[src], None).unwrap_or_else(|d| panic!("{d}"));
    build(&Request::new(&cfg, store, vec![Format::Tar], Output::File(out.to_path_buf()), amd64()))
        .map(|_| ())
}

#[test]
fn a_layer_damaged_in_the_store_fails_the_build_and_a_pull_heals_it() {
    let Some(reg) = Registry::plain() else { return };
    // An uncompressed layer: a flipped byte in it decompresses fine, so only a digest check
    // can notice (`hello` became `Jello` in the built tar before the fix).
    let tar = tar_layer(&[file("etc/greeting", b"hello\n")]);
    let img = ImageBuilder::new()
        .raw_layer(tar.clone(), tar, "application/vnd.oci.image.layer.v1.tar")
        .build();
    let name = format!("{}/test/greet:v1", reg.host);
    let publish = tempfile::tempdir().unwrap();
    img.write_layout(publish.path(), &name);
    let r = Reference::parse(&name).unwrap();
    push_blocking(&Store::open(publish.path()).unwrap(), &r, &r, &Default::default()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    pull_blocking(&store, &r, &amd64(), &PullOptions::default()).unwrap();
    let good = dir.path().join("good.tar");
    build_tar(&store, &name, &good).unwrap();

    let layer = Digest::parse(&img.layers[0].digest).unwrap();
    let blob = store.blob_path(&layer);
    let mut bytes = std::fs::read(&blob).unwrap();
    let at = bytes.windows(6).position(|w| w == b"hello\n").expect("the file data in the tar");
    bytes[at] = b'J';
    std::fs::write(&blob, &bytes).unwrap();

    let out = dir.path().join("sys.tar");
    let err = chain(&build_tar(&store, &name, &out).expect_err("a damaged layer must fail"));
    eprintln!("{err}");
    assert!(err.contains(&img.layers[0].digest), "names the blob: {err}");
    assert!(err.contains(&name), "names the image: {err}");
    assert!(err.contains("damaged"), "says what is wrong: {err}");
    assert!(!out.exists(), "no output from a damaged layer");
    assert!(!blob.exists(), "the damaged blob is moved out of blobs/");
    let aside = store.dir().join(baleen_oci::QUARANTINE).join(format!("sha256-{}", layer.hex()));
    assert_eq!(std::fs::read(&aside).unwrap(), bytes, "kept aside, not deleted");

    pull_blocking(&store, &r, &amd64(), &PullOptions::default()).unwrap();
    build_tar(&store, &name, &out).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&good).unwrap(), "healed by the pull");
}

#[test]
fn a_damaged_manifest_in_the_store_is_pulled_again_by_the_build() {
    let Some(reg) = Registry::plain() else { return };
    let img = ImageBuilder::new().layer(&[file("etc/greeting", b"hi\n")]).build();
    let name = format!("{}/test/manifest:v1", reg.host);
    let publish = tempfile::tempdir().unwrap();
    img.write_layout(publish.path(), &name);
    let r = Reference::parse(&name).unwrap();
    push_blocking(&Store::open(publish.path()).unwrap(), &r, &r, &Default::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    pull_blocking(&store, &r, &amd64(), &PullOptions::default()).unwrap();
    let good = dir.path().join("good.tar");
    build_tar(&store, &name, &good).unwrap();

    // Same length, one byte different: still JSON, but not the manifest the digest names.
    let manifest = store.blob_path(&Digest::parse(&img.manifest.digest).unwrap());
    let text = std::fs::read_to_string(&manifest).unwrap().replacen("\"size\"", "\"Size\"", 1);
    std::fs::write(&manifest, text).unwrap();
    let out = dir.path().join("again.tar");
    build_tar(&store, &name, &out).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&good).unwrap());
    assert!(
        store.dir().join(baleen_oci::QUARANTINE).read_dir().unwrap().count() == 1,
        "the damaged manifest was moved aside"
    );
}

/// The single-file reads (BIOS and ISO loaders, the EFI stub) go through `images::read_file`:
/// the topmost layer holding the file wins, and a damaged layer is an error (before, these
/// reads took the store's bytes as they were).
#[test]
fn a_component_file_is_read_from_the_top_layer_and_a_damaged_layer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let name = "docker.io/baleen/isolinux:test";
    // An uncompressed top layer: a changed byte decompresses fine, only the digest tells.
    let top = tar_layer(&[file("usr/lib/loader.bin", b"new loader")]);
    ImageBuilder::new()
        .layer(&[file("usr/lib/loader.bin", b"old loader")])
        .raw_layer(top.clone(), top, "application/vnd.oci.image.layer.v1.tar")
        .build()
        .write_layout(dir.path(), name);
    let store = Store::open(dir.path()).unwrap();
    let image = store.resolve(&Reference::parse(name).unwrap(), &amd64()).unwrap().expect("stored");
    let read = |path| baleen_build::images::read_file(&store, &image, "the loader", path);
    assert_eq!(read("usr/lib/loader.bin").unwrap().as_deref(), Some(&b"new loader"[..]));
    assert_eq!(read("usr/lib/none").unwrap(), None);

    let top = store.blob_path(&Digest::parse(image.layers[1].digest().as_ref()).unwrap());
    let mut bytes = std::fs::read(&top).unwrap();
    let at = bytes.windows(10).position(|w| w == b"new loader").expect("the file data");
    bytes[at] = b'J';
    std::fs::write(&top, bytes).unwrap();
    let err = chain(&read("usr/lib/loader.bin").expect_err("a damaged layer must be refused"));
    assert!(err.contains(image.layers[1].digest().as_ref()) && err.contains(name), "{err}");
    assert!(err.contains("damaged"), "{err}");
}
