//! `baleen cache` as a user runs it: list, export, import into another store, remove, gc, and
//! the errors for a missing image and a damaged archive (which must leave the store as it was).

use baleen_testkit::image::ImageBuilder;
use baleen_testkit::layers::{file, file_mode};
use std::path::Path;
use std::process::{Command, Output};

const NAME: &str = "docker.io/baleen/cache-cli:1";

fn baleen(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baleen"))
        .arg("cache")
        .args(args)
        .arg("--cache")
        .arg(store)
        .env_remove("BALEEN_CACHE")
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn blob_count(store: &Path) -> usize {
    std::fs::read_dir(store.join("blobs/sha256")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn export_import_rm_gc_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let image = ImageBuilder::new()
        .layer(&[file_mode("bin/tool", b"#!/bin/sh\necho hi\n", 0o755), file("etc/motd", b"hi")])
        .build();
    image.write_layout(&a, NAME);

    let listed = ok(baleen(&a, &["ls"]));
    assert!(listed.contains(NAME) && listed.contains(&image.manifest.digest), "{listed}");

    let archive = tmp.path().join("img.tar");
    ok(baleen(&a, &["export", NAME, "-o", archive.to_str().unwrap()]));
    ok(baleen(&b, &["import", archive.to_str().unwrap()]));
    let listed = ok(baleen(&b, &["ls"]));
    assert!(listed.contains(NAME) && listed.contains(&image.manifest.digest), "{listed}");
    assert_eq!(blob_count(&b), image.blobs().len());

    ok(baleen(&b, &["rm", NAME]));
    assert!(!ok(baleen(&b, &["ls"])).contains(NAME));
    ok(baleen(&b, &["gc"]));
    assert_eq!(blob_count(&b), 0, "gc leaves no blob that no image uses");
}

#[test]
fn missing_image_and_damaged_archive_are_errors_that_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s");
    ImageBuilder::new().layer(&[file("a", b"a")]).build().write_layout(&store, NAME);
    let before = ok(baleen(&store, &["ls"]));

    let out = baleen(&store, &["export", "docker.io/baleen/absent:1", "-o", "/dev/null"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent"), "the error names the image");

    // An export cut short: the import must fail and leave the store exactly as it was.
    let other = tmp.path().join("o");
    let big = vec![7u8; 256 * 1024];
    ImageBuilder::new()
        .layer(&[file("big", &big)])
        .build()
        .write_layout(&other, "docker.io/baleen/cut:1");
    let full = tmp.path().join("full.tar");
    ok(baleen(&other, &["export", "docker.io/baleen/cut:1", "-o", full.to_str().unwrap()]));
    let bytes = std::fs::read(&full).unwrap();
    let cut = tmp.path().join("cut.tar");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = baleen(&store, &["import", cut.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0), "a truncated archive is refused");
    assert_eq!(ok(baleen(&store, &["ls"])), before, "the store is unchanged");
}

/// Runs `baleen cache ARGS` with `envs`; kills it and fails the test if it runs past 120 s.
fn baleen_watched(store: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_baleen"))
        .arg("cache")
        .args(args)
        .arg("--cache")
        .arg(store)
        .env_remove("BALEEN_CACHE")
        .envs(envs.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("baleen cache {args:?} hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn pull_from_a_stalled_registry_reports_the_wait_and_gives_up() {
    use baleen_testkit::registry::{Proxy, Registry};
    let Some(reg) = Registry::plain() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("{}/test/stalled:v1", reg.host);
    // Incompressible, so the gzip'd layer stays 1 MiB: far more than four attempts get.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect();
    let image = ImageBuilder::new().layer(&[file("big", &noise)]).build();
    let src = tmp.path().join("src");
    image.write_layout(&src, &name);
    ok(baleen(&src, &["push", &name]));
    let proxy = Proxy::start(reg.port, 0);
    proxy.stall_after(64 << 10);
    let through = format!("{}/test/stalled:v1", proxy.host);
    let store = tmp.path().join("dst");
    let out = baleen_watched(
        &store,
        &["pull", "--platform", "linux/amd64", &through],
        &[("BALEEN_REGISTRY_STALL_SECS", "2")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    for retry in ["retrying (2/4)", "retrying (3/4)", "retrying (4/4)"] {
        assert!(stderr.contains(&format!("sent no data for 2 s, {retry}")), "{stderr}");
    }
    assert!(stderr.contains("gave up after 4 attempts"), "{stderr}");
    assert!(stderr.contains(&image.layers[0].digest), "{stderr}");
}

#[test]
fn verify_finds_damaged_and_missing_blobs_and_repair_makes_them_pullable_again() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s");
    let image = |text: &[u8]| ImageBuilder::new().layer(&[file("etc/motd", text)]).build();
    let (damaged, missing, intact) = (image(b"one"), image(b"two"), image(b"three"));
    damaged.write_layout(&store, "docker.io/baleen/damaged:1");
    missing.write_layout(&store, "docker.io/baleen/missing:1");
    intact.write_layout(&store, "docker.io/baleen/intact:1");
    assert_eq!(ok(baleen(&store, &["verify"])), "", "nothing to say about a sound store");
    let blob = |d: &str| store.join("blobs/sha256").join(d.strip_prefix("sha256:").unwrap());
    let layer = blob(&damaged.layers[0].digest);
    let mut bytes = std::fs::read(&layer).unwrap();
    bytes[10] ^= 0x20;
    std::fs::write(&layer, &bytes).unwrap();
    std::fs::remove_file(blob(&missing.config.digest)).unwrap();

    let out = baleen(&store, &["verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&format!("blob {} is damaged", damaged.layers[0].digest)), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "docker.io/baleen/damaged:1: layer {} is damaged",
            damaged.layers[0].digest
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "docker.io/baleen/missing:1: config {} is missing",
            missing.config.digest
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("intact"), "{stdout}");
    assert!(layer.exists(), "plain verify changes nothing");

    let repaired = ok(baleen(&store, &["verify", "--repair"]));
    assert!(repaired.contains("removed docker.io/baleen/damaged:1"), "{repaired}");
    assert!(repaired.contains("removed docker.io/baleen/missing:1"), "{repaired}");
    assert!(!layer.exists());
    let aside = store.join("quarantine").join(format!("sha256-{}", &damaged.layers[0].digest[7..]));
    assert_eq!(std::fs::read(&aside).unwrap(), bytes, "moved aside, not deleted");
    let listed = ok(baleen(&store, &["ls"]));
    assert!(
        listed.contains("intact") && !listed.contains("damaged") && !listed.contains("missing")
    );
    assert_eq!(ok(baleen(&store, &["verify"])), "", "the repaired store verifies clean");
    // gc drops what quarantine kept, and says so file by file.
    let gc = baleen(&store, &["gc"]);
    let said = String::from_utf8_lossy(&gc.stderr);
    assert!(said.contains(&format!("removed {}", aside.display())), "{said}");
    assert!(!aside.exists());
}

/// `cache export` of a multi-platform image (what `pkg build` stores) had no manifest.json, so
/// `docker load` could not read it; exports were mode 0600; export and rm said nothing.
#[test]
fn export_of_an_index_has_manifest_json_mode_0644_and_says_what_it_did() {
    use baleen_testkit::image::index_of;
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s");
    let host = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        "riscv64" => "riscv64",
        _ => "amd64",
    };
    let other = if host == "amd64" { "arm64" } else { "amd64" };
    let images: Vec<_> = [host, other]
        .iter()
        .map(|arch| {
            ImageBuilder::new()
                .layer(&[file("etc/arch", arch.as_bytes())])
                .platform("linux", arch, None)
                .build()
        })
        .collect();
    index_of(&images).write_layout(&store, NAME);

    let archive = tmp.path().join("img.tar");
    let out = baleen(&store, &["export", NAME, "-o", archive.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    assert!(said.contains("exported") && said.contains("img.tar"), "{said}");
    let mode = std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "exports are readable as build outputs are");

    let mut manifest = None;
    for e in tar::Archive::new(std::fs::File::open(&archive).unwrap()).entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some("manifest.json") {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut e, &mut text).unwrap();
            manifest = Some(serde_json::from_str::<serde_json::Value>(&text).unwrap());
        }
    }
    let manifest = manifest.expect("the archive has a manifest.json for docker load");
    let host_image = &images[0];
    let config = format!("blobs/{}", host_image.config.digest.replacen(':', "/", 1));
    assert_eq!(manifest[0]["Config"], config.as_str(), "the host platform's image: {manifest}");
    assert_eq!(manifest[0]["RepoTags"][0], NAME);
    assert_eq!(manifest[0]["Layers"].as_array().unwrap().len(), 1);

    let out = baleen(&store, &["rm", NAME]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    assert!(said.contains("removed") && said.contains(NAME), "{said}");
    index_of(&images).write_layout(&store, NAME);
    let out = baleen(&store, &["-q", "rm", NAME]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "-q: {}", String::from_utf8_lossy(&out.stderr));
}

/// Read-only commands on a mistyped --cache created an empty store there and listed nothing.
#[test]
fn ls_on_a_missing_store_is_an_error_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let typo = tmp.path().join("cahce");
    for args in [&["ls"][..], &["export", NAME, "-o", "x.tar"], &["gc"], &["verify"]] {
        let out = baleen(&typo, args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("cahce") && err.contains("not an image store"), "{args:?}: {err}");
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
    }
}

/// On a fresh machine the default store (~/.baleen/cache) does not exist yet: `cache ls` lists
/// nothing and `gc` has nothing to do, without an error and without creating it (a mistyped
/// --cache is still an error, above).
#[test]
fn the_missing_default_store_is_empty_not_an_error() {
    let home = tempfile::tempdir().unwrap();
    for args in [&["ls"][..], &["gc"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_baleen"))
            .arg("cache")
            .args(args)
            .env_remove("BALEEN_CACHE")
            .env("HOME", home.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.contains("no image store at") && err.contains(".baleen/cache"), "{err}");
        assert!(!home.path().join(".baleen").exists(), "{args:?} created the store");
    }
}

/// `cache import /etc/passwd` quoted the file's content in the error (the tar reader's message
/// holds the header bytes).
#[test]
fn importing_a_file_that_is_no_tar_does_not_print_its_content() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("passwd");
    let mut text = String::from("root:x:0:0:SECRET-CONTENT:/root:/bin/bash\n");
    while text.len() < 2048 {
        text.push_str("daemon:x:1:1:SECRET-CONTENT:/usr/sbin:/usr/sbin/nologin\n");
    }
    std::fs::write(&secret, &text).unwrap();
    let out = baleen(&tmp.path().join("s"), &["import", secret.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not a tar archive"), "{err}");
    assert!(!err.contains("SECRET") && !err.contains("root:x"), "{err}");
}

/// `cache export -o` to a FIFO (or a device) writes into it, as build's outputs do, instead of
/// renaming a temporary file over it.
#[test]
fn export_to_a_fifo_writes_into_it_and_keeps_it() {
    use std::os::unix::fs::FileTypeExt;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s");
    ImageBuilder::new().layer(&[file("a", b"a")]).build().write_layout(&store, NAME);
    let fifo = tmp.path().join("pipe");
    let reader = baleen_testkit::fifo_reader(&fifo);
    ok(baleen(&store, &["export", NAME, "-o", fifo.to_str().unwrap()]));
    // Checked before joining: a replaced FIFO never gets a writer, and the reader would hang.
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO was replaced");
    let streamed = reader.join().unwrap();
    let names: Vec<String> = tar::Archive::new(&streamed[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n == "index.json"), "{names:?}");
    let left: Vec<_> =
        std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 2, "nothing beside the store and the FIFO: {left:?}");
}

/// `cache import --max-size` bounds what `docker save` layers may unpack to while their
/// diff_ids are checked (a gzip bomb was unpacked whole, once per listing); the error names
/// the layer and the limit, and `none` lifts it.
#[test]
fn import_max_size_bounds_what_layers_unpack_to() {
    use baleen_testkit::image::sha256;
    use baleen_testkit::layers::{gzip, tar_layer};
    let tmp = tempfile::tempdir().unwrap();
    let layer = tar_layer(&[file("zeros", &vec![0u8; 2 << 20])]);
    let gz = gzip(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        sha256(&layer)
    );
    let manifest =
        format!(r#"[{{"Config":"cfg.json","RepoTags":["{NAME}"],"Layers":["l0/layer.tar"]}}]"#);
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in [
        ("manifest.json", manifest.as_bytes()),
        ("cfg.json", config.as_bytes()),
        ("l0/layer.tar", &gz),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, data).unwrap();
    }
    let archive = tmp.path().join("save.tar");
    std::fs::write(&archive, b.into_inner().unwrap()).unwrap();
    let store = tmp.path().join("s");
    let path = archive.to_str().unwrap();
    let out = baleen(&store, &["import", path, "--max-size", "1M"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("limit of 1048576 bytes") && err.contains(&sha256(&gz)), "{err}");
    assert!(err.contains("--max-size"), "says how to lift it: {err}");
    assert!(!ok(baleen(&store, &["ls"])).contains("cache-cli"), "nothing named");
    assert!(ok(baleen(&store, &["import", path, "--max-size", "none"])).contains(NAME));
}

/// `~/x` names `$HOME/x` for `build` and `cache` alike, from `--cache` and from BALEEN_CACHE:
/// `cache` (and `run`, `push`, `pull`, `audit`, `pkg`) used to read it as a directory named `~`
/// in the working directory, while `build` expanded it.
#[test]
fn tilde_in_the_cache_dir_is_home_for_build_and_cache_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, work) = (tmp.path().join("home"), tmp.path().join("work"));
    std::fs::create_dir_all(&work).unwrap();
    ImageBuilder::new()
        .layer(&[file_mode("init", b"#!/bin/init\n", 0o755)])
        .build()
        .write_layout(&home.join("x"), NAME);
    std::fs::write(work.join("sys.yml"), format!("init:\n  - {NAME}\n")).unwrap();
    let run = |args: &[&str], env: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_baleen"));
        cmd.current_dir(&work).env("HOME", &home).env_remove("BALEEN_CACHE").args(args);
        if env {
            cmd.env("BALEEN_CACHE", "~/x");
        } else {
            cmd.args(["--cache", "~/x"]);
        }
        cmd.output().unwrap()
    };
    for env in [false, true] {
        let listed = ok(run(&["cache", "ls"], env));
        assert!(listed.contains(NAME), "cache ls (BALEEN_CACHE: {env}): {listed}");
        ok(run(&["build", "-f", "tar", "-o", "sys.tar", "sys.yml"], env));
        assert!(work.join("sys.tar").is_file());
        std::fs::remove_file(work.join("sys.tar")).unwrap();
    }
    assert!(!work.join("~").exists(), "a directory named ~ was made in the working directory");
}
