//! The whole pipeline on images made by the test: YAML → store → tree → tar and kernel+initrd.
//! No network and no qemu: the boot test (tests/boot.rs) covers booting.

use baleen_build::limits::Limits;
use baleen_build::{build, Format, Output, Request};
use baleen_oci::{Platform, Store};
use baleen_testkit::image::ImageBuilder;
use baleen_testkit::layers::{dir, file, file_mode, tar_layer};
use baleen_testkit::Chain;
use std::collections::BTreeMap;
use std::io::Read;
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
    command: ["/bin/svc", "boot"]
services:
  - name: svc
    image: baleen/test-svc:1
    capabilities.add: [CAP_SYS_TIME]
files:
  - path: etc/motd
    contents: "hello\n"
    mode: "0644"
"#;

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
        .layer(&[file_mode("init", b"#!/bin/init\n", 0o755), dir("etc")])
        .build()
        .write_layout(at, "docker.io/baleen/test-init:1");
    let label = r#"{"readonly": true, "capabilities": ["CAP_NET_ADMIN"]}"#;
    ImageBuilder::new()
        .layer(&[file_mode("bin/svc", b"svc", 0o755), file("etc/hostname", b"drop me")])
        .config(
            serde_json::json!({"Cmd": ["/bin/svc"], "Labels": {"org.mobyproject.config": label}}),
        )
        .build()
        .write_layout(at, "docker.io/baleen/test-svc:1");
    ImageBuilder::new()
        .layer(&[file_mode("bin/svc", b"svc two", 0o755)])
        .config(
            serde_json::json!({"Cmd": ["/bin/svc"], "Labels": {"org.mobyproject.config": label}}),
        )
        .build()
        .write_layout(at, "docker.io/baleen/test-svc:2");
    Store::open(at).unwrap()
}

fn config(yaml: &str) -> baleen_spec::Config {
    let src = baleen_spec::Source { name: "test.yml", text: yaml, template_dir: None };
    baleen_spec::load_all(&[src], None).unwrap_or_else(|d| panic!("{d}"))
}

fn run(
    store: &Store,
    cfg: &baleen_spec::Config,
    formats: &[Format],
    out: &Path,
) -> Result<Vec<std::path::PathBuf>, baleen_build::BuildError> {
    run_limited(store, cfg, formats, out, Default::default())
}

/// [`run`] within `limits` (`--max-size`, `--max-expansion`).
fn run_limited(
    store: &Store,
    cfg: &baleen_spec::Config,
    formats: &[Format],
    out: &Path,
    limits: Limits,
) -> Result<Vec<std::path::PathBuf>, baleen_build::BuildError> {
    build(&Request {
        limits,
        ..Request::new(
            cfg,
            store,
            formats.to_vec(),
            Output::Base { dir: out.to_path_buf(), name: "sys".into() },
            Platform::new("linux", "amd64", None),
        )
    })
}

/// path → (mode, data) of every tar entry (the last wins, as on extraction).
fn read_tar(bytes: &[u8]) -> BTreeMap<String, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut ar = tar::Archive::new(bytes);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().trim_end_matches('/').to_string();
        let mode = e.header().mode().unwrap();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(path, (mode, data));
    }
    out
}

#[test]
fn tar_holds_every_section_with_linuxkit_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    let out = tmp.path().join("out");
    let written = run(&store, &config(YAML), &[Format::Tar], &out).unwrap();
    assert_eq!(written, vec![out.join("sys.tar")]);
    let entries = read_tar(&std::fs::read(out.join("sys.tar")).unwrap());

    assert_eq!(entries["boot/kernel"].1, b"KERNEL BYTES");
    assert_eq!(entries["boot/cmdline"].1, b"console=ttyS0");
    assert!(
        entries.contains_key("lib/modules/6.1.0-test/kernel/x.ko"),
        "kernel.tar expanded into /"
    );
    assert_eq!(entries["init"].0 & 0o777, 0o755);
    // The label makes the image read-only: extracted to rootfs/, once, and shared.
    assert!(entries.contains_key("containers/onboot/000-first/rootfs/bin/svc"));
    assert!(
        !entries.contains_key("containers/services/svc/rootfs/bin/svc"),
        "same image extracted once"
    );
    assert!(
        !entries.contains_key("containers/onboot/000-first/rootfs/etc/hostname"),
        "LinuxKit drops etc/hostname"
    );
    assert_eq!(entries["etc/motd"], (0o644, b"hello\n".to_vec()));

    let svc: serde_json::Value =
        serde_json::from_slice(&entries["containers/services/svc/config.json"].1).unwrap();
    assert_eq!(svc["process"]["args"], serde_json::json!(["/bin/svc"]), "image Cmd");
    assert_eq!(svc["root"]["readonly"], true, "readonly from the label");
    assert_eq!(
        svc["process"]["capabilities"]["effective"],
        serde_json::json!(["CAP_NET_ADMIN", "CAP_SYS_TIME"]),
        "label capabilities + capabilities.add"
    );
    let first: serde_json::Value =
        serde_json::from_slice(&entries["containers/onboot/000-first/config.json"].1).unwrap();
    assert_eq!(first["process"]["args"], serde_json::json!(["/bin/svc", "boot"]), "YAML command");
    let rt: serde_json::Value =
        serde_json::from_slice(&entries["containers/services/svc/runtime.json"].1).unwrap();
    assert_eq!(rt["mounts"][0]["source"], "/containers/onboot/000-first/rootfs", "{rt}");
}

#[test]
fn kernel_initrd_outputs_and_their_cpio() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    let out = tmp.path().join("out");
    let mut written = run(&store, &config(YAML), &[Format::KernelInitrd], &out).unwrap();
    written.sort();
    let names: Vec<_> =
        written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["sys-cmdline", "sys-initrd.img", "sys-kernel"]);
    assert_eq!(std::fs::read(out.join("sys-kernel")).unwrap(), b"KERNEL BYTES");
    assert_eq!(std::fs::read(out.join("sys-cmdline")).unwrap(), b"console=ttyS0");

    // Without a kernel section only the initrd is written (LinuxKit writes the non-empty
    // parts), and the previous build's kernel is left where it was.
    let i = YAML.find("init:").unwrap();
    let no_kernel = run(&store, &config(&YAML[i..]), &[Format::KernelInitrd], &out).unwrap();
    assert_eq!(no_kernel, [out.join("sys-initrd.img")]);
    assert_eq!(std::fs::read(out.join("sys-kernel")).unwrap(), b"KERNEL BYTES");
    let partial = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().ends_with(".partial"));
    assert!(partial.is_none(), "a temporary file stayed behind: {partial:?}");
    let written = run(&store, &config(YAML), &[Format::KernelInitrd], &out).unwrap();
    assert_eq!(written.len(), 3);

    // One gzip member per section (segmented, the default), each a cpio with its trailer.
    let gz = std::fs::read(out.join("sys-initrd.img")).unwrap();
    let members = gzip_members(&gz);
    assert!(members.len() >= 5, "kernel, init, two containers, files, SBOM: {}", members.len());
    let cpio = members.concat();
    let text = String::from_utf8_lossy(&cpio);
    assert!(text.contains("containers/services/svc/config.json"));
    assert!(!text.contains("boot/kernel"), "boot/ stays out of the initrd");
    assert_eq!(cpio.windows(10).filter(|w| w == b"TRAILER!!!").count(), members.len());

    if let Some(cpio_tool) = baleen_testkit::require_tool("cpio") {
        let mut listing = String::new();
        for (i, member) in members.iter().enumerate() {
            let dec = tmp.path().join(format!("initrd-{i}.cpio"));
            std::fs::write(&dec, member).unwrap();
            let out = std::process::Command::new(&cpio_tool)
                .args(["-it", "--quiet"])
                .stdin(std::fs::File::open(dec).unwrap())
                .output()
                .unwrap();
            assert!(out.status.success());
            listing += &String::from_utf8_lossy(&out.stdout);
        }
        for p in ["init", "etc/motd", "containers/onboot/000-first/rootfs/bin/svc"] {
            assert!(listing.lines().any(|l| l == p), "cpio -t lacks {p}:\n{listing}");
        }
    }
}

/// Each gzip member of an initrd, decompressed (the zero padding at the end skipped).
fn gzip_members(gz: &[u8]) -> Vec<Vec<u8>> {
    let mut rest = gz;
    let mut out = Vec::new();
    while rest.iter().any(|b| *b != 0) {
        let mut dec = flate2::bufread::GzDecoder::new(rest);
        let mut data = Vec::new();
        dec.read_to_end(&mut data).unwrap();
        rest = dec.into_inner();
        out.push(data);
    }
    out
}

#[test]
fn two_builds_are_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    let cfg = config(YAML);
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    run(&store, &cfg, &[Format::KernelInitrd, Format::TarKernelInitrd], &a).unwrap();
    run(&store, &cfg, &[Format::KernelInitrd, Format::TarKernelInitrd], &b).unwrap();
    for name in ["sys-kernel", "sys-initrd.img", "sys-cmdline", "sys-initrd.tar"] {
        let (x, y) = (std::fs::read(a.join(name)).unwrap(), std::fs::read(b.join(name)).unwrap());
        assert!(x == y, "{name} differs between two builds");
    }
}

#[test]
fn a_missing_image_names_the_container_and_keeps_the_old_output() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    let out = tmp.path().join("out");
    run(&store, &config(YAML), &[Format::Tar], &out).unwrap();
    let good = std::fs::read(out.join("sys.tar")).unwrap();

    // A registry that does not answer: port 9 on loopback (discard) is closed here.
    let broken = YAML.replace(
        "baleen/test-svc:1\n    capabilities",
        "127.0.0.1:9/none/missing:1\n    capabilities",
    );
    let err = run(&store, &config(&broken), &[Format::Tar], &out).unwrap_err().chain();
    assert!(err.contains("services[0] \"svc\""), "{err}");
    assert!(err.contains("127.0.0.1:9/none/missing:1"), "{err}");
    assert_eq!(std::fs::read(out.join("sys.tar")).unwrap(), good, "the previous output is intact");
}

#[test]
fn two_formats_writing_one_file_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    let out = tmp.path().join("out");
    for (a, b, suffix) in
        [(Format::IsoBios, Format::KernelIso, ".iso"), (Format::Vhd, Format::DynamicVhd, ".vhd")]
    {
        let err = run(&store, &config(YAML), &[Format::KernelInitrd, a, b], &out).unwrap_err();
        let text = err.chain();
        assert!(text.contains(&format!("`{a}` and `{b}` both write NAME{suffix}")), "{text}");
    }
    assert!(!out.exists(), "nothing is written when the formats clash");
}

fn run_incremental(
    store: &Store,
    cfg: &baleen_spec::Config,
    out: &Path,
    input_tar: Option<&Path>,
) -> Result<Vec<std::path::PathBuf>, baleen_build::BuildError> {
    build(&Request {
        input_tar: input_tar.map(Path::to_path_buf),
        ..Request::new(
            cfg,
            store,
            vec![Format::Tar],
            Output::Base { dir: out.to_path_buf(), name: "sys".into() },
            Platform::new("linux", "amd64", None),
        )
    })
}

#[test]
fn input_tar_copies_unchanged_sections_and_matches_a_full_build() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    let yaml = format!("{YAML}  - path: etc/linuxkit-config\n    metadata: yaml\n");
    let changed = yaml.replace(
        "capabilities.add: [CAP_SYS_TIME]",
        "capabilities.add: [CAP_SYS_TIME]\n    env: [CHANGED=1]",
    );
    assert_ne!(yaml, changed);
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    run_incremental(&store, &config(&yaml), &a, None).unwrap();
    run_incremental(&store, &config(&changed), &b, None).unwrap();

    // Break the init image's layer: only a copy from the input tar can still produce init.
    let init = baleen_oci::Reference::parse("baleen/test-init:1").unwrap();
    let image = store.resolve(&init, &Platform::new("linux", "amd64", None)).unwrap().unwrap();
    let digest = baleen_oci::Digest::parse(image.layers[0].digest().as_ref()).unwrap();
    std::fs::write(store.blob_path(&digest), b"not a layer any more").unwrap();
    assert!(
        run_incremental(&store, &config(&changed), &tmp.path().join("d"), None).is_err(),
        "a full build now fails"
    );
    // That build moved the damaged blob aside; put it back so that the image still resolves
    // and only the copy from the input tar can produce init.
    std::fs::write(store.blob_path(&digest), b"not a layer any more").unwrap();

    run_incremental(&store, &config(&changed), &c, Some(&a.join("sys.tar"))).unwrap();
    let (full, incremental) =
        (std::fs::read(b.join("sys.tar")).unwrap(), std::fs::read(c.join("sys.tar")).unwrap());
    assert!(full == incremental, "an --input-tar rebuild differs from a full build");
    let svc: serde_json::Value =
        serde_json::from_slice(&read_tar(&incremental)["containers/services/svc/config.json"].1)
            .unwrap();
    assert_eq!(
        svc["process"]["env"],
        serde_json::json!(["CHANGED=1"]),
        "the changed service was rebuilt"
    );
}

#[test]
fn input_tar_follows_the_container_that_holds_a_shared_image() {
    // `svc` shares `first`'s extraction of test-svc:1. When `first` moves to another image, a
    // copied `svc` would point at a root that now holds that other image; in the other
    // direction a copied `svc` would keep its own root where a full build shares `first`'s.
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    let shared = format!("{YAML}  - path: etc/linuxkit-config\n    metadata: yaml\n");
    let apart = shared.replacen("image: baleen/test-svc:1", "image: baleen/test-svc:2", 1);
    assert_ne!(shared, apart);
    for (n, (before, after)) in [(&shared, &apart), (&apart, &shared)].into_iter().enumerate() {
        let dir = |d: &str| tmp.path().join(format!("{n}{d}"));
        run_incremental(&store, &config(before), &dir("prev"), None).unwrap();
        run_incremental(&store, &config(after), &dir("full"), None).unwrap();
        run_incremental(&store, &config(after), &dir("inc"), Some(&dir("prev").join("sys.tar")))
            .unwrap();
        let full = std::fs::read(dir("full").join("sys.tar")).unwrap();
        let incremental = std::fs::read(dir("inc").join("sys.tar")).unwrap();
        let entries = read_tar(&incremental);
        let own_root = entries.contains_key("containers/services/svc/rootfs/bin/svc");
        assert_eq!(own_root, after == &apart, "case {n}: svc has its own root only when apart");
        assert!(full == incremental, "case {n}: the --input-tar rebuild differs from a full build");
    }
}

#[test]
fn input_tar_without_a_section_builds_it() {
    // A tar with the right metadata file but none of the sections (not a previous build of
    // this config): every section is built, nothing is left out.
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    let yaml = format!("{YAML}  - path: etc/linuxkit-config\n    metadata: yaml\n");
    let full = tmp.path().join("full");
    run_incremental(&store, &config(&yaml), &full, None).unwrap();
    let full = std::fs::read(full.join("sys.tar")).unwrap();
    let metadata = &read_tar(&full)["etc/linuxkit-config"].1;
    let mut bare = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(metadata.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    bare.append_data(&mut h, "etc/linuxkit-config", &metadata[..]).unwrap();
    let bare_path = tmp.path().join("bare.tar");
    std::fs::write(&bare_path, bare.into_inner().unwrap()).unwrap();

    let out = tmp.path().join("inc");
    run_incremental(&store, &config(&yaml), &out, Some(&bare_path)).unwrap();
    assert!(std::fs::read(out.join("sys.tar")).unwrap() == full, "sections went missing");
}

#[test]
fn input_tar_needs_a_metadata_file() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    let out = tmp.path().join("a");
    run_incremental(&store, &config(YAML), &out, None).unwrap();
    let err =
        run_incremental(&store, &config(YAML), &tmp.path().join("b"), Some(&out.join("sys.tar")))
            .unwrap_err()
            .chain();
    assert!(err.contains("needs a `files` entry with `metadata: yaml`"), "{err}");
}

/// Issue 21: nothing bounded what a tree expands to. The error names the format, the image, the
/// layer, the entry and the limit, says which flag raises it, and no output is written.
#[test]
fn a_tree_past_max_size_fails_naming_image_layer_and_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    let out = tmp.path().join("out");
    let limits = Limits { max_tree_bytes: Some(10), expansion: None };
    for format in [Format::Tar, Format::KernelInitrd] {
        let err = run_limited(&store, &config(YAML), &[format], &out, limits).unwrap_err();
        let text = err.chain();
        for want in [
            "docker.io/baleen/test-kernel:1",
            "layer sha256:",
            "writing entry \"boot/cmdline\"",
            "limit of 10 bytes",
            "hint: raise the limit with --max-size SIZE",
        ] {
            assert!(text.contains(want), "{format}: {want:?} missing from: {text}");
        }
    }
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(), "no output");
}

/// Issue 21: a 20 MB layer of zeros streamed 20 GiB into a tar. A layer past the expansion
/// bound (lowered here to 1 MiB through the API `--max-expansion` sets) fails the build naming
/// it, and the hint says how to allow it.
#[test]
fn a_decompression_bomb_fails_naming_the_layer_and_flag() {
    use baleen_build::limits::Expansion;
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    let out = tmp.path().join("out");
    ImageBuilder::new()
        .layer(&[file("zeros", &vec![0u8; 4 << 20])])
        .build()
        .write_layout(&tmp.path().join("store"), "docker.io/baleen/test-bomb:1");
    let yaml =
        YAML.replace("baleen/test-svc:1\n    capabilities", "baleen/test-bomb:1\n    capabilities");
    let limits =
        Limits { max_tree_bytes: None, expansion: Some(Expansion { ratio: 100, floor: 1 << 20 }) };
    let err = run_limited(&store, &config(&yaml), &[Format::Tar], &out, limits).unwrap_err();
    let text = err.chain();
    for want in [
        "services[0] docker.io/baleen/test-bomb:1",
        "layer sha256:",
        "more than 100 times its compressed size",
        "--max-expansion none",
    ] {
        assert!(text.contains(want), "{want:?} missing from: {text}");
    }
}

/// What SIGINT does to a build (`abandon_all`, then exit) while other threads are creating
/// outputs in `dir`: run in a child process, since `abandon_all` refuses every later output.
fn abandon_while_creating(dir: &Path) {
    use baleen_build::output::{abandon_all, Outputs};
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for t in 0..2 {
        let (dir, stop) = (dir.to_path_buf(), std::sync::Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut outs = Outputs::default();
                let _ = outs.create(&dir.join(format!("out{t}.tar")));
            }
        });
    }
    std::thread::sleep(std::time::Duration::from_millis(30));
    abandon_all();
    // The signal handler exits the process here: whatever the threads hold is never dropped.
    std::process::exit(0);
}

/// Issue 21 follow-up: a SIGINT while an output was being created left its `.locking` file
/// (created, not yet renamed to `.partial` nor known to `abandon_all`) behind for good, and no
/// later build swept it. Each child is interrupted mid-creation; nothing may remain.
#[test]
fn sigint_while_outputs_are_created_leaves_no_locking_file() {
    if let Ok(dir) = std::env::var("BALEEN_TEST_ABANDON_CHILD") {
        abandon_while_creating(Path::new(&dir));
    }
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "sigint_while_outputs_are_created_leaves_no_locking_file"])
            .env("BALEEN_TEST_ABANDON_CHILD", dir.path())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "round {round}: the child failed");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(left.is_empty(), "round {round}: left behind: {left:?}");
    }
}
