//! The initrd's segment cache (issue 27): what a rebuild takes from the store, and that the
//! output never depends on it. Images made by the test; no network, no qemu.

use baleen_build::{build_report, Built, Format, Output, Request};
use baleen_oci::{Platform, Store};
use baleen_testkit::image::ImageBuilder;
use baleen_testkit::layers::{dir, file, file_mode, tar_layer};
use std::path::Path;

const YAML: &str = r#"
kernel:
  image: baleen/test-kernel:1
  cmdline: "console=ttyS0"
init:
  - baleen/test-init:1
onboot:
  - name: first
    image: baleen/test-svc:1
services:
  - name: svc
    image: baleen/test-svc:1
  - name: other
    image: baleen/test-other:1
files:
  - path: etc/motd
    contents: "hello\n"
    mode: "0644"
  - path: etc/issue
    contents: "baleen\n"
"#;

/// The sections a cold build of [`YAML`] writes into the cache (the files and the SBOM are
/// written every time).
const CACHED: [&str; 5] = ["kernel", "init", "onboot[0]", "services[0]", "services[1]"];

fn store(at: &Path) -> Store {
    let modules = tar_layer(&[
        dir("lib/modules/6.1.0-test/"),
        file("lib/modules/6.1.0-test/kernel/x.ko", b"\x7fELF module"),
    ]);
    ImageBuilder::new()
        .layer(&[file("kernel", b"KERNEL BYTES"), file("kernel.tar", &modules)])
        .build()
        .write_layout(at, "docker.io/baleen/test-kernel:1");
    ImageBuilder::new()
        .layer(&[file_mode("init", b"#!/bin/init\n", 0o755), dir("etc"), dir("bin")])
        .build()
        .write_layout(at, "docker.io/baleen/test-init:1");
    for (tag, data) in
        [("test-svc:1", &b"svc"[..]), ("test-svc:2", b"svc two"), ("test-other:1", b"o")]
    {
        ImageBuilder::new()
            .layer(&[dir("bin"), file_mode("bin/svc", data, 0o755)])
            .config(serde_json::json!({"Cmd": ["/bin/svc"]}))
            .build()
            .write_layout(at, &format!("docker.io/baleen/{tag}"));
    }
    Store::open(at).unwrap()
}

fn config(yaml: &str) -> baleen_spec::Config {
    let src = baleen_spec::Source { name: "test.yml", text: yaml, template_dir: None };
    baleen_spec::load_all(&[src], None).unwrap_or_else(|d| panic!("{d}"))
}

/// Builds kernel+initrd into `out`; the initrd's bytes and what the cache did.
fn run(store: &Store, yaml: &str, out: &Path) -> (Vec<u8>, Built) {
    run_formats(store, yaml, out, &[Format::KernelInitrd])
}

/// [`run`] for `formats`: the same initrd path serves them all.
fn run_formats(store: &Store, yaml: &str, out: &Path, formats: &[Format]) -> (Vec<u8>, Built) {
    let cfg = config(yaml);
    let built = build_report(&Request::new(
        &cfg,
        store,
        formats.to_vec(),
        Output::Base { dir: out.to_path_buf(), name: "sys".into() },
        Platform::new("linux", "amd64", None),
    ))
    .unwrap_or_else(|e| panic!("building: {e}"));
    let initrd = std::fs::read(out.join("sys-initrd.img")).unwrap_or_default();
    (initrd, built)
}

#[test]
fn cold_warm_and_after_gc_builds_are_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    let (cold, built) = run(&store, YAML, &tmp.path().join("cold"));
    assert_eq!(built.segments.written, CACHED, "a cold build writes every section");
    assert!(built.segments.reused.is_empty());

    let (warm, built) = run(&store, YAML, &tmp.path().join("warm"));
    assert_eq!(built.segments.reused, CACHED, "a warm build takes every section from the cache");
    assert!(built.segments.written.is_empty());
    assert!(warm == cold, "the warm build's initrd differs from the cold one's");

    let report = store.gc().unwrap();
    assert_eq!(report.derived_kept, CACHED.len(), "{report:?}");
    let (after_gc, built) = run(&store, YAML, &tmp.path().join("gc"));
    assert_eq!(built.segments.reused, CACHED, "gc keeps the segments of images it keeps");
    assert!(after_gc == cold, "the build after gc differs from the cold one");

    // With the images gone, gc drops their segments; pulled again, they are written again.
    for name in store.list().unwrap().into_iter().map(|(n, _)| n) {
        store.remove(&baleen_oci::Reference::parse(&name).unwrap()).unwrap();
    }
    let report = store.gc().unwrap();
    assert_eq!((report.derived_kept, report.derived_removed), (0, CACHED.len()), "{report:?}");
    drop(store);
    let store = self::store(&tmp.path().join("store"));
    let (again, built) = run(&store, YAML, &tmp.path().join("again"));
    assert_eq!(built.segments.written, CACHED);
    assert!(again == cold, "a build after the cache was emptied differs from the cold one");
}

#[test]
fn a_tampered_cached_segment_is_not_used() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    let (cold, _) = run(&store, YAML, &tmp.path().join("cold"));
    // Flip one byte of every segment blob the cache holds (derived/<key> names the record,
    // whose "blobs" are the segment).
    let derived = tmp.path().join("store/derived");
    let mut tampered = 0;
    for entry in std::fs::read_dir(&derived).unwrap() {
        let key = entry.unwrap().file_name().into_string().unwrap();
        let found = store.derived(&key).unwrap().unwrap();
        let path = store.blob_path(&found.blobs[0].digest);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        tampered += 1;
    }
    assert_eq!(tampered, CACHED.len());
    let (rebuilt, built) = run(&store, YAML, &tmp.path().join("rebuilt"));
    assert!(built.segments.reused.is_empty(), "a damaged segment was used: {:?}", built.segments);
    assert_eq!(built.segments.written, CACHED);
    assert!(rebuilt == cold, "the rebuild after tampering differs from the cold build");
    let quarantined = std::fs::read_dir(tmp.path().join("store/quarantine")).unwrap().count();
    assert_eq!(quarantined, CACHED.len(), "the damaged segments are moved aside");
    // And written anew: the next build takes them from the cache again.
    let (_, built) = run(&store, YAML, &tmp.path().join("next"));
    assert_eq!(built.segments.reused, CACHED);
}

#[test]
fn changing_one_files_entry_reuses_every_other_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    run(&store, YAML, &tmp.path().join("a"));
    let changed = YAML.replace("hello\\n", "changed\\n");
    assert_ne!(changed, YAML);
    let (initrd, built) = run(&store, &changed, &tmp.path().join("b"));
    assert_eq!(built.segments.reused, CACHED);
    assert!(built.segments.written.is_empty());
    // The same bytes as a build of the changed YAML that never saw the first one.
    let fresh = self::store(&tmp.path().join("fresh-store"));
    let (cold, _) = run(&fresh, &changed, &tmp.path().join("c"));
    assert!(initrd == cold, "the incremental build differs from a cold one");
}

#[test]
fn changing_one_services_image_writes_only_that_service_again() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    run(&store, YAML, &tmp.path().join("a"));
    let changed = YAML.replace("image: baleen/test-other:1", "image: baleen/test-svc:2");
    let (initrd, built) = run(&store, &changed, &tmp.path().join("b"));
    assert_eq!(built.segments.reused, ["kernel", "init", "onboot[0]", "services[0]"]);
    assert_eq!(built.segments.written, ["services[1]"]);
    let fresh = self::store(&tmp.path().join("fresh-store"));
    let (cold, _) = run(&fresh, &changed, &tmp.path().join("c"));
    assert!(initrd == cold, "the incremental build differs from a cold one");
}

#[test]
fn the_kernel_and_its_files_come_back_from_the_cache_for_every_initrd_format() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    let formats = [Format::KernelInitrd, Format::TarKernelInitrd];
    let (cold_dir, warm_dir) = (tmp.path().join("cold"), tmp.path().join("warm"));
    let (_, built) = run_formats(&store, YAML, &cold_dir, &formats);
    // The second format's initrd already finds what the first one wrote.
    assert_eq!(built.segments.written, CACHED);
    assert_eq!(built.segments.reused, CACHED);
    let (_, built) = run_formats(&store, YAML, &warm_dir, &formats);
    assert_eq!(built.segments.reused, [CACHED, CACHED].concat());
    for name in ["sys-kernel", "sys-cmdline", "sys-initrd.img", "sys-initrd.tar"] {
        let (a, b) = (cold_dir.join(name), warm_dir.join(name));
        assert!(std::fs::read(a).unwrap() == std::fs::read(b).unwrap(), "{name} differs");
    }
}
