//! baleen's OCI client and store against a real registry (Debian's docker-registry on
//! 127.0.0.1, started per test by `baleen_testkit::registry`). Images are made by the tests
//! (`baleen_testkit::image`) and pushed with baleen's own push.

use baleen_oci::{
    archive, pull_blocking, push_blocking, Digest, Platform, PullOptions, PushOptions, Reference,
    RegistryOptions, Store,
};
use baleen_testkit::image::{index_of, BuiltImage, ImageBuilder};
use baleen_testkit::layers::file;
use baleen_testkit::registry::{Mode, Proxy, Registry};
use baleen_testkit::Chain;
use std::path::Path;

fn amd64() -> Platform {
    Platform::parse("linux/amd64").unwrap()
}

/// Pseudo-random, incompressible bytes (a fixed LCG: tests stay reproducible).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

fn two_layer_image(seed: u64) -> BuiltImage {
    ImageBuilder::new()
        .layer(&[file("etc/hello", format!("hello {seed}\n").as_bytes())])
        .layer(&[file("usr/share/blob", &noise(64 << 10, seed))])
        .config(serde_json::json!({"Cmd": ["/bin/true"]}))
        .build()
}

fn opts() -> PullOptions {
    PullOptions {
        registry: RegistryOptions { retries: 1, ..Default::default() },
        ..Default::default()
    }
}

fn push_opts() -> PushOptions {
    PushOptions {
        registry: RegistryOptions { retries: 1, ..Default::default() },
        ..Default::default()
    }
}

/// Writes `img` into a scratch store named `name`, pushes it there with baleen, returns the
/// scratch store's directory.
fn publish(img: &BuiltImage, name: &str, popts: &PushOptions) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    img.write_layout(dir.path(), name);
    let store = Store::open(dir.path()).unwrap();
    let r = Reference::parse(name).unwrap();
    let d = push_blocking(&store, &r, &r, popts).unwrap();
    assert_eq!(d.to_string(), img.manifest.digest);
    dir
}

fn blob_files(store: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(store.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn ingest_leftovers(store: &Path) -> Vec<String> {
    std::fs::read_dir(store.join("ingest"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".lock")
        .collect()
}

#[test]
fn push_then_pull_round_trips_and_second_pull_stays_local() {
    let Some(mut reg) = Registry::plain() else { return };
    let img = two_layer_image(1);
    let name = format!("{}/test/app:v1", reg.host);
    publish(&img, &name, &push_opts());

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = Reference::parse(&name).unwrap();
    let got = pull_blocking(&store, &r, &amd64(), &opts()).unwrap();
    assert_eq!(got.manifest_digest.to_string(), img.manifest.digest);
    let want: Vec<String> = img.layers.iter().map(|l| l.digest.clone()).collect();
    let have: Vec<String> = got.layer_digests().iter().map(|d| d.to_string()).collect();
    assert_eq!(have, want);
    for l in &img.layers {
        let stored = std::fs::read(store.blob_path(&Digest::parse(&l.digest).unwrap())).unwrap();
        assert_eq!(stored, l.data, "layer {} stored byte for byte", l.digest);
    }
    // LinuxKit's cache layout: the name annotation is the canonical reference.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], name);
    assert_eq!(index["manifests"][0]["digest"], img.manifest.digest);
    assert!(dir.path().join("oci-layout").is_file());

    if let Some(skopeo) = baleen_testkit::require_tool("skopeo") {
        let out = std::process::Command::new(skopeo)
            .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{name}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, img.manifest.data, "skopeo sees the manifest baleen pushed");
    }

    // By digest: fetched and verified against the digest, found again locally by it.
    let pinned =
        Reference::parse(&format!("{}/test/app@{}", reg.host, img.manifest.digest)).unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let store2 = Store::open(dir2.path()).unwrap();
    let got2 = pull_blocking(&store2, &pinned, &amd64(), &opts()).unwrap();
    assert_eq!(got2.manifest_digest, got.manifest_digest);
    assert!(store.resolve(&pinned, &amd64()).unwrap().is_some(), "digest lookup across names");

    // With the registry gone, the same pull is answered from the store.
    reg.kill();
    let again = pull_blocking(&store, &r, &amd64(), &opts()).unwrap();
    assert_eq!(again.manifest_digest, got.manifest_digest);
    let always = PullOptions { always: true, ..opts() };
    let err =
        baleen_testkit::boot::chain(&pull_blocking(&store, &r, &amd64(), &always).unwrap_err());
    assert!(err.contains(&reg.host) && err.contains("connecting"), "{err}");
}

#[test]
fn chunked_upload_and_cross_repository_mount() {
    let Some(reg) = Registry::plain() else { return };
    let img = ImageBuilder::new().layer(&[file("big", &noise(40 << 10, 7))]).build();
    let name = format!("{}/test/chunked:v1", reg.host);
    let chunky = PushOptions { chunk_threshold: 1024, chunk_size: 7000, ..push_opts() };
    let src = publish(&img, &name, &chunky);

    // Same registry, other repository: the blobs get mounted, and the image pulls whole.
    let store = Store::open(src.path()).unwrap();
    let other = Reference::parse(&format!("{}/other/copy:v2", reg.host)).unwrap();
    push_blocking(&store, &Reference::parse(&name).unwrap(), &other, &push_opts()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fresh = Store::open(dir.path()).unwrap();
    let got = pull_blocking(&fresh, &other, &amd64(), &opts()).unwrap();
    assert_eq!(got.manifest_digest.to_string(), img.manifest.digest);
    assert_eq!(got.layers[0].digest().to_string(), img.layers[0].digest);
}

#[test]
fn index_selects_platform_and_names_the_ones_it_has() {
    let Some(reg) = Registry::plain() else { return };
    let a = two_layer_image(2);
    let arm = ImageBuilder::new()
        .platform("linux", "arm", Some("v7"))
        .layer(&[file("arm", b"arm")])
        .build();
    let idx = index_of(&[a.clone(), arm.clone()]);
    let name = format!("{}/test/multi:1", reg.host);
    let src = tempfile::tempdir().unwrap();
    idx.write_layout(src.path(), &name);
    let r = Reference::parse(&name).unwrap();
    let d = push_blocking(&Store::open(src.path()).unwrap(), &r, &r, &push_opts()).unwrap();
    assert_eq!(d.to_string(), idx.index.digest);

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let got =
        pull_blocking(&store, &r, &Platform::parse("linux/arm/v7").unwrap(), &opts()).unwrap();
    assert_eq!(got.manifest_digest.to_string(), arm.manifest.digest);
    // Only the requested platform's blobs (plus the index) were fetched.
    assert!(!store.has_blob(&Digest::parse(&a.manifest.digest).unwrap()));
    assert!(store.has_blob(&Digest::parse(&idx.index.digest).unwrap()));

    let err = pull_blocking(&store, &r, &Platform::parse("linux/arm64").unwrap(), &opts())
        .unwrap_err()
        .chain();
    assert!(err.contains("has no linux/arm64 variant; it has: linux/amd64, linux/arm/v7"), "{err}");

    // --with-arch-tags: each platform's manifest also under <tag>-<arch>.
    let tagged = Reference::parse(&format!("{}/test/multi:2", reg.host)).unwrap();
    let arch_opts = PushOptions { arch_tags: true, ..push_opts() };
    push_blocking(&Store::open(src.path()).unwrap(), &r, &tagged, &arch_opts).unwrap();
    for (suffix, want) in [("2-amd64", &a), ("2-arm", &arm)] {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let by_arch = Reference::parse(&format!("{}/test/multi:{suffix}", reg.host)).unwrap();
        let p = Platform::parse(&format!("{}/{}", want.os, want.arch)).unwrap();
        let got = pull_blocking(&s, &by_arch, &p, &opts()).unwrap();
        assert_eq!(got.manifest_digest.to_string(), want.manifest.digest, "{suffix}");
    }

    // Pushing the partial local copy refuses rather than publishing a broken index.
    let elsewhere = Reference::parse(&format!("{}/test/partial:1", reg.host)).unwrap();
    let err = baleen_testkit::boot::chain(
        &push_blocking(&store, &r, &elsewhere, &push_opts()).unwrap_err(),
    );
    assert!(err.contains("only some platforms"), "{err}");
}

#[test]
fn unknown_manifest_is_reported_by_name() {
    let Some(reg) = Registry::plain() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = Reference::parse(&format!("{}/test/nope:v9", reg.host)).unwrap();
    let err =
        baleen_testkit::boot::chain(&pull_blocking(&store, &r, &amd64(), &opts()).unwrap_err());
    assert!(err.contains(&format!("manifest unknown: {}/test/nope:v9", reg.host)), "{err}");
}

/// Pulls after `tamper` edits the served copy of layer 1; expects an error containing `want`,
/// and a store with no trace of that layer or of the name.
fn pull_tampered(tamper: impl FnOnce(&Path), want: &[&str]) {
    let Some(reg) = Registry::plain() else { return };
    let img = two_layer_image(3);
    let name = format!("{}/test/tampered:v1", reg.host);
    publish(&img, &name, &push_opts());
    tamper(&reg.blob_data(&img.layers[1].digest));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = Reference::parse(&name).unwrap();
    let err =
        baleen_testkit::boot::chain(&pull_blocking(&store, &r, &amd64(), &opts()).unwrap_err());
    eprintln!("{err}");
    for w in want {
        assert!(err.contains(w), "expected {w:?} in: {err}");
    }
    let hex = img.layers[1].digest.strip_prefix("sha256:").unwrap();
    assert!(!blob_files(dir.path()).iter().any(|b| b == hex), "tampered layer stored");
    assert!(
        ingest_leftovers(dir.path()).is_empty(),
        "temp files left: {:?}",
        ingest_leftovers(dir.path())
    );
    assert!(store.list().unwrap().is_empty(), "a name was written for a failed pull");
}

#[test]
fn digest_mismatch_is_rejected_and_nothing_stored() {
    pull_tampered(
        |p| {
            let mut data = std::fs::read(p).unwrap();
            let n = data.len();
            data[n / 2] ^= 0xff;
            std::fs::write(p, data).unwrap();
        },
        &["does not match its digest", "nothing was stored"],
    );
}

#[test]
fn truncated_blob_is_rejected() {
    pull_tampered(
        |p| {
            let data = std::fs::read(p).unwrap();
            std::fs::write(p, &data[..data.len() / 2]).unwrap();
        },
        &["bytes"],
    );
}

#[test]
fn blob_longer_than_its_descriptor_is_rejected() {
    pull_tampered(
        |p| {
            let mut data = std::fs::read(p).unwrap();
            data.extend_from_slice(&[0u8; 4096]);
            std::fs::write(p, data).unwrap();
        },
        &["bytes"],
    );
}

#[test]
fn oversized_manifest_is_refused() {
    let Some(reg) = Registry::plain() else { return };
    let img = two_layer_image(4);
    let name = format!("{}/test/big:v1", reg.host);
    publish(&img, &name, &push_opts());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let small = PullOptions {
        registry: RegistryOptions { max_manifest_bytes: 100, ..Default::default() },
        ..opts()
    };
    let err = pull_blocking(&store, &Reference::parse(&name).unwrap(), &amd64(), &small)
        .unwrap_err()
        .chain();
    assert!(err.contains("larger than the 100-byte limit"), "{err}");
    assert!(blob_files(dir.path()).is_empty());
}

#[test]
fn basic_auth_uses_docker_config_and_names_where_it_looked() {
    let mode = Mode::Htpasswd { user: "alice".into(), password: "s3cret".into() };
    let Some(reg) = Registry::start(mode) else { return };
    let good = reg.docker_config("alice", "s3cret");
    let bad = reg.docker_config("alice", "wrong");
    let empty = tempfile::tempdir().unwrap();
    let with = |dir: &Path| RegistryOptions {
        docker_config: Some(dir.to_path_buf()),
        retries: 0,
        ..Default::default()
    };

    let img = two_layer_image(5);
    let name = format!("{}/test/private:v1", reg.host);
    publish(&img, &name, &PushOptions { registry: with(&good), ..Default::default() });

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = Reference::parse(&name).unwrap();
    let err = pull_blocking(&store, &r, &amd64(), &PullOptions { registry: with(&bad), ..opts() })
        .unwrap_err()
        .chain();
    eprintln!("{err}");
    assert!(err.contains(&format!("registry {} rejected the credentials", reg.host)), "{err}");
    assert!(err.contains(&bad.join("config.json").display().to_string()), "{err}");

    let err = pull_blocking(
        &store,
        &r,
        &amd64(),
        &PullOptions { registry: with(empty.path()), ..opts() },
    )
    .unwrap_err()
    .chain();
    assert!(
        err.contains("no credentials")
            && err.contains(&empty.path().join("config.json").display().to_string()),
        "{err}"
    );

    let got = pull_blocking(&store, &r, &amd64(), &PullOptions { registry: with(&good), ..opts() })
        .unwrap();
    assert_eq!(got.manifest_digest.to_string(), img.manifest.digest);
}

#[test]
fn tls_registry_needs_its_ca() {
    let Some(reg) = Registry::start(Mode::Tls) else { return };
    let ca = reg.ca_cert.clone().unwrap();
    let tls = RegistryOptions { ca_certs: vec![ca], retries: 0, ..Default::default() };
    let img = two_layer_image(6);
    let name = format!("{}/test/tls:v1", reg.host);
    publish(&img, &name, &PushOptions { registry: tls.clone(), ..Default::default() });

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = Reference::parse(&name).unwrap();
    let err =
        baleen_testkit::boot::chain(&pull_blocking(&store, &r, &amd64(), &opts()).unwrap_err());
    eprintln!("{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    let got =
        pull_blocking(&store, &r, &amd64(), &PullOptions { registry: tls, ..opts() }).unwrap();
    assert_eq!(got.manifest_digest.to_string(), img.manifest.digest);
}

#[test]
fn registry_killed_mid_pull_then_rerun_completes_reusing_verified_blobs() {
    let Some(mut reg) = Registry::plain() else { return };
    let img = ImageBuilder::new()
        .layer(&[file("small", b"small")])
        .layer(&[file("big", &noise(3 << 20, 9))])
        .build();
    let repo = "test/killed:v1";
    publish(&img, &format!("{}/{repo}", reg.host), &push_opts());

    // The proxy dies once a single connection has carried 1 MiB: inside the big layer.
    let proxy = Proxy::start(reg.port, 1 << 20);
    let r = Reference::parse(&format!("{}/{repo}", proxy.host)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let err =
        baleen_testkit::boot::chain(&pull_blocking(&store, &r, &amd64(), &opts()).unwrap_err());
    eprintln!("{err}");
    assert!(proxy.tripped());
    assert!(err.contains(&img.layers[1].digest) || err.contains("connecting"), "{err}");
    reg.kill();
    let big_hex = img.layers[1].digest.strip_prefix("sha256:").unwrap();
    assert!(!blob_files(dir.path()).iter().any(|b| b == big_hex), "partial big layer stored");
    assert!(ingest_leftovers(dir.path()).is_empty());
    assert!(store.list().unwrap().is_empty());
    // What was verified before the cut stays, and is not fetched again.
    let config = Digest::parse(&img.config.digest).unwrap();
    assert!(store.has_blob(&config), "config is fetched (and verified) before the layers");
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let config_inode = inode(&store.blob_path(&config));

    reg.restart();
    proxy.heal(reg.port);
    let got = pull_blocking(&store, &r, &amd64(), &opts()).unwrap();
    assert_eq!(got.manifest_digest.to_string(), img.manifest.digest);
    assert_eq!(inode(&store.blob_path(&config)), config_inode, "config blob rewritten");
}

#[test]
fn concurrent_pulls_into_one_store() {
    let Some(reg) = Registry::plain() else { return };
    let names: Vec<String> = (0..3).map(|i| format!("{}/test/c{i}:v1", reg.host)).collect();
    let images: Vec<BuiltImage> = (0..3).map(|i| two_layer_image(10 + i)).collect();
    for (img, name) in images.iter().zip(&names) {
        publish(img, name, &push_opts());
    }
    let dir = tempfile::tempdir().unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let names = &names;
            let dir = dir.path();
            s.spawn(move || {
                // Each thread opens its own Store, as two baleen processes would.
                let store = Store::open(dir).unwrap();
                for k in 0..names.len() {
                    let name = &names[(t + k) % names.len()];
                    pull_blocking(
                        &store,
                        &Reference::parse(name).unwrap(),
                        &amd64(),
                        &PullOptions { always: true, ..opts() },
                    )
                    .unwrap();
                }
            });
        }
    });
    let store = Store::open(dir.path()).unwrap();
    let listed: Vec<String> = store.list().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(listed, names, "each name exactly once");
    for (img, name) in images.iter().zip(&names) {
        let got =
            store.resolve(&Reference::parse(name).unwrap(), &amd64()).unwrap().expect("complete");
        assert_eq!(got.manifest_digest.to_string(), img.manifest.digest);
    }
    assert!(ingest_leftovers(dir.path()).is_empty());
}

#[test]
fn export_import_and_gc() {
    let a = two_layer_image(20);
    let b = two_layer_image(21);
    let src = tempfile::tempdir().unwrap();
    a.write_layout(src.path(), "example.org/a/app:1");
    b.write_layout(src.path(), "example.org/b/app:1");
    let store = Store::open(src.path()).unwrap();
    let ra = Reference::parse("example.org/a/app:1").unwrap();

    let mut tar1 = Vec::new();
    archive::export(&store, &ra, None, &mut tar1).unwrap();
    let mut tar2 = Vec::new();
    archive::export(&store, &ra, None, &mut tar2).unwrap();
    assert!(tar1 == tar2, "export is deterministic");
    let renamed = Reference::parse("example.org/renamed/app:7").unwrap();
    let mut tar3 = Vec::new();
    archive::export_as(&store, &ra, &renamed, None, &mut tar3).unwrap();
    let other_store = tempfile::tempdir().unwrap();
    let names =
        archive::import(&Store::open(other_store.path()).unwrap(), &tar3[..], None).unwrap();
    assert_eq!(names, vec![renamed]);

    let dst = tempfile::tempdir().unwrap();
    let fresh = Store::open(dst.path()).unwrap();
    let names = archive::import(&fresh, &tar1[..], None).unwrap();
    assert_eq!(names, vec![ra.clone()]);
    let got = fresh.resolve(&ra, &amd64()).unwrap().expect("imported image resolves");
    assert_eq!(got.manifest_digest.to_string(), a.manifest.digest);

    // A tampered archive: the blob's name no longer matches its content.
    let mut bad = tar1.clone();
    let needle = &a.layers[1].data[100..140];
    let pos = bad.windows(needle.len()).position(|w| w == needle).unwrap();
    bad[pos] ^= 1;
    let other = tempfile::tempdir().unwrap();
    let err =
        archive::import(&Store::open(other.path()).unwrap(), &bad[..], None).unwrap_err().chain();
    assert!(err.contains("does not match its digest"), "{err}");

    // gc: drop b's name, its blobs go, a's stay.
    assert!(store.remove(&Reference::parse("example.org/b/app:1").unwrap()).unwrap());
    let report = store.gc().unwrap();
    assert_eq!(report.blobs_removed, 4, "b's manifest, config and two layers: {report:?}");
    assert!(store.resolve(&ra, &amd64()).unwrap().is_some());
    assert!(!store.has_blob(&Digest::parse(&b.manifest.digest).unwrap()));
}

#[test]
fn imports_a_docker_save_tar() {
    let layer = baleen_testkit::layers::tar_layer(&[file("etc/os-release", b"ID=test\n")]);
    let layer_digest = baleen_testkit::image::sha256(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest, layer_digest]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": "cfg.json", "RepoTags": ["saved/app:2"], "Layers": ["abc/layer.tar", "dup/layer.tar"],
    }]))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, path, data).unwrap();
    };
    add("abc/layer.tar", &layer);
    add("cfg.json", &config);
    add("manifest.json", &manifest);
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "dup/layer.tar", "../abc/layer.tar").unwrap();
    let tar = b.into_inner().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let names = archive::import(&store, &tar[..], None).unwrap();
    let r = Reference::parse("saved/app:2").unwrap();
    assert_eq!(names, vec![r.clone()]);
    let img = store.resolve(&r, &amd64()).unwrap().expect("resolves");
    let digests: Vec<String> = img.layer_digests().iter().map(|d| d.to_string()).collect();
    assert_eq!(digests, vec![layer_digest.clone(), layer_digest]);
    assert_eq!(img.layers[0].media_type().to_string(), "application/vnd.oci.image.layer.v1.tar");
}

/// `credHelpers` runs `docker-credential-<name> get` from PATH. PATH is process-wide, so the
/// pull runs in a child process of this test binary with a PATH that holds a fake helper.
#[test]
fn credential_helper_supplies_credentials() {
    if let Ok(host) = std::env::var("BALEEN_TEST_HELPER_CHILD") {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let r = Reference::parse(&format!("{host}/test/helper:v1")).unwrap();
        pull_blocking(&store, &r, &amd64(), &opts()).unwrap();
        return;
    }
    let mode = Mode::Htpasswd { user: "bob".into(), password: "hunter2".into() };
    let Some(reg) = Registry::start(mode) else { return };
    let good = reg.docker_config("bob", "hunter2");
    let name = format!("{}/test/helper:v1", reg.host);
    let popts = PushOptions {
        registry: RegistryOptions { docker_config: Some(good), ..Default::default() },
        ..Default::default()
    };
    publish(&two_layer_image(30), &name, &popts);

    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("docker-credential-baleentest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nserver=$(cat)\n[ \"$server\" = \"{}\" ] || {{ echo \"credentials not found in native keychain\"; exit 1; }}\necho '{{\"ServerURL\":\"'$server'\",\"Username\":\"bob\",\"Secret\":\"hunter2\"}}'\n",
            reg.host
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"baleentest"}}}}"#, reg.host),
    )
    .unwrap();
    let path = format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap_or_default());
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "credential_helper_supplies_credentials", "--nocapture"])
        .env("BALEEN_TEST_HELPER_CHILD", &reg.host)
        .env("DOCKER_CONFIG", cfg.path())
        .env("PATH", path)
        .output()
        .unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child pull failed:\n{text}");
    assert!(text.contains("1 passed"), "child ran the pull:\n{text}");
}

#[test]
fn bearer_token_flow_with_docker_config_credentials() {
    let mode = Mode::Token { user: "carol".into(), password: "tok-pass".into() };
    let Some(reg) = Registry::start(mode) else { return };
    let good = reg.docker_config("carol", "tok-pass");
    let bad = reg.docker_config("carol", "nope");
    let with = |dir: &Path| RegistryOptions {
        docker_config: Some(dir.to_path_buf()),
        retries: 0,
        ..Default::default()
    };
    let img = two_layer_image(40);
    let name = format!("{}/test/token:v1", reg.host);
    publish(&img, &name, &PushOptions { registry: with(&good), ..Default::default() });
    assert!(reg.tokens_issued() > 0, "push went through the token server");

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = Reference::parse(&name).unwrap();
    let err = pull_blocking(&store, &r, &amd64(), &PullOptions { registry: with(&bad), ..opts() })
        .unwrap_err()
        .chain();
    assert!(err.contains(&format!("registry {} rejected the credentials", reg.host)), "{err}");
    let before = reg.tokens_issued();
    let got = pull_blocking(&store, &r, &amd64(), &PullOptions { registry: with(&good), ..opts() })
        .unwrap();
    assert_eq!(got.manifest_digest.to_string(), img.manifest.digest);
    // One token for the pull scope serves the manifest, the config and both layers.
    assert_eq!(reg.tokens_issued() - before, 1);

    // An identity token (OAuth2 refresh token, as `az acr login` stores) is exchanged by POST.
    let identity = reg.docker_config_identity_token("tok-pass");
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let got =
        pull_blocking(&store, &r, &amd64(), &PullOptions { registry: with(&identity), ..opts() })
            .unwrap();
    assert_eq!(got.manifest_digest.to_string(), img.manifest.digest);
    let wrong = reg.docker_config_identity_token("not-the-token");
    let err = pull_blocking(
        &store,
        &r,
        &amd64(),
        &PullOptions { registry: with(&wrong), always: true, ..opts() },
    )
    .unwrap_err()
    .chain();
    eprintln!("{err}");
    assert!(err.contains("rejected the credentials"), "{err}");
    assert!(err.contains(&wrong.join("config.json").display().to_string()), "{err}");
}

#[test]
fn server_errors_are_retried_a_bounded_number_of_times() {
    let Some(reg) = Registry::plain() else { return };
    let img = two_layer_image(50);
    publish(&img, &format!("{}/test/flaky:v1", reg.host), &push_opts());
    let proxy = Proxy::start(reg.port, 0);
    let r = Reference::parse(&format!("{}/test/flaky:v1", proxy.host)).unwrap();
    let with_retries = |n| PullOptions {
        always: true,
        registry: RegistryOptions { retries: n, ..Default::default() },
        ..Default::default()
    };
    // The endpoint probe takes two connections (HTTPS, then plain HTTP); the manifest
    // request then meets two more 503s and succeeds on its third attempt.
    proxy.fail_next(4);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let got = pull_blocking(&store, &r, &amd64(), &with_retries(3)).unwrap();
    assert_eq!(got.manifest_digest.to_string(), img.manifest.digest);

    proxy.fail_next(4);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let err = baleen_testkit::boot::chain(
        &pull_blocking(&store, &r, &amd64(), &with_retries(0)).unwrap_err(),
    );
    assert!(err.contains("503"), "{err}");
}

/// A cache as LinuxKit leaves it after pulling a Docker Hub image: a Docker manifest list as the
/// root, only the host platform's manifest (Docker media types) and blobs present.
#[test]
fn reads_a_linuxkit_style_cache_with_docker_media_types() {
    let img = two_layer_image(60);
    let dir = tempfile::tempdir().unwrap();
    let blobs = dir.path().join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let d = baleen_testkit::image::sha256(data);
        std::fs::write(blobs.join(d.strip_prefix("sha256:").unwrap()), data).unwrap();
        d
    };
    for l in &img.layers {
        put(&l.data);
    }
    put(&img.config.data);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": img.config.digest, "size": img.config.data.len()},
        "layers": img.layers.iter().map(|l| serde_json::json!({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": l.digest, "size": l.data.len()})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let md = put(&manifest);
    let absent = format!("sha256:{}", "ab".repeat(32));
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": md, "size": manifest.len(), "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": absent, "size": 500, "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
        ],
    }))
    .unwrap();
    let ld = put(&list);
    std::fs::write(dir.path().join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.path().join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
            "digest": ld, "size": list.len(),
            "annotations": {"org.opencontainers.image.ref.name": "docker.io/library/alpine:3.20"},
        }]}))
        .unwrap(),
    )
    .unwrap();

    let store = Store::open(dir.path()).unwrap();
    let r = Reference::parse("alpine:3.20").unwrap();
    let got = store.resolve(&r, &amd64()).unwrap().expect("amd64 is complete");
    assert_eq!(got.manifest_digest.to_string(), md);
    assert_eq!(got.layers.len(), 2);
    assert!(store.resolve(&r, &Platform::parse("linux/arm/v7").unwrap()).unwrap().is_none());
    let err = baleen_testkit::boot::chain(
        &store.resolve(&r, &Platform::parse("linux/arm64").unwrap()).unwrap_err(),
    );
    assert!(err.contains("has no linux/arm64 variant; it has: linux/amd64, linux/arm/v7"), "{err}");
    // gc keeps everything the list reaches locally.
    assert_eq!(store.gc().unwrap().blobs_removed, 0);
}

#[test]
fn dropped_connection_resumes_the_blob_where_it_broke_off() {
    let Some(reg) = Registry::plain() else { return };
    let big = 3 << 20;
    let img = ImageBuilder::new().layer(&[file("big", &noise(big, 70))]).build();
    publish(&img, &format!("{}/test/resume:v1", reg.host), &push_opts());
    let proxy = Proxy::start(reg.port, 1 << 20);
    proxy.cut_once();
    let r = Reference::parse(&format!("{}/test/resume:v1", proxy.host)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let got = pull_blocking(&store, &r, &amd64(), &opts()).unwrap();
    assert_eq!(got.manifest_digest.to_string(), img.manifest.digest);
    let layer = img.layers[0].data.len() as u64;
    // Starting over would have sent ~1 MiB + the whole layer again.
    assert!(
        proxy.forwarded() < layer + (256 << 10),
        "forwarded {} for a {layer}-byte layer",
        proxy.forwarded()
    );
}

#[test]
fn pull_all_fetches_repeated_images_once() {
    let Some(reg) = Registry::plain() else { return };
    let img = two_layer_image(80);
    let name = format!("{}/test/rep:v1", reg.host);
    publish(&img, &name, &push_opts());
    let proxy = Proxy::start(reg.port, 0);
    let r = Reference::parse(&format!("{}/test/rep:v1", proxy.host)).unwrap();
    let missing = Reference::parse(&format!("{}/test/absent:v1", proxy.host)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let refs = vec![(r.clone(), amd64()), (missing, amd64()), (r.clone(), amd64()), (r, amd64())];
    let results = baleen_oci::pull_all_blocking(&store, &refs, &opts());
    assert_eq!(results.len(), 4);
    for i in [0, 2, 3] {
        assert_eq!(results[i].as_ref().unwrap().manifest_digest.to_string(), img.manifest.digest);
    }
    let err = baleen_testkit::boot::chain(&results[1].as_ref().unwrap_err());
    assert!(err.contains("manifest unknown"), "{err}");
    let layers: u64 = img.layers.iter().map(|l| l.data.len() as u64).sum();
    assert!(
        proxy.forwarded() < layers + (32 << 10),
        "layers fetched more than once: {}",
        proxy.forwarded()
    );
}

/// Archives written by another tool: skopeo's `oci-archive` (ref.name holds only a tag) and
/// `docker-archive` (the `docker save` format), both imported and checked against the source.
#[test]
fn imports_archives_that_skopeo_writes() {
    let Some(skopeo) = baleen_testkit::require_tool("skopeo") else { return };
    let Some(reg) = Registry::plain() else { return };
    let img = two_layer_image(90);
    let name = format!("{}/test/sko:v1", reg.host);
    publish(&img, &name, &push_opts());
    let work = tempfile::tempdir().unwrap();
    let oci = work.path().join("oci.tar");
    let docker = work.path().join("docker.tar");
    for dest in [
        format!("oci-archive:{}:v1", oci.display()),
        format!("docker-archive:{}:saved/sko:v1", docker.display()),
    ] {
        let out = std::process::Command::new(&skopeo)
            .args(["copy", "--quiet", "--src-tls-verify=false", &format!("docker://{name}"), &dest])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo copy to {dest}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let f = || std::io::BufReader::new(std::fs::File::open(&oci).unwrap());
    let err = baleen_testkit::boot::chain(&archive::import(&store, f(), None).unwrap_err());
    assert!(err.contains("pass a name"), "{err}");
    let named = Reference::parse("example.org/imported/sko:v1").unwrap();
    assert_eq!(archive::import(&store, f(), Some(&named)).unwrap(), vec![named.clone()]);
    let got = store.resolve(&named, &amd64()).unwrap().expect("oci-archive import resolves");
    assert_eq!(
        got.manifest_digest.to_string(),
        img.manifest.digest,
        "oci-archive keeps the manifest"
    );

    let saved = std::io::BufReader::new(std::fs::File::open(&docker).unwrap());
    let names = archive::import(&store, saved, None).unwrap();
    let r = Reference::parse("saved/sko:v1").unwrap();
    assert_eq!(names, vec![r.clone()]);
    let got = store.resolve(&r, &amd64()).unwrap().expect("docker-archive import resolves");
    // docker-archive stores layers uncompressed: their digests are the config's diff_ids.
    let config: serde_json::Value = serde_json::from_slice(&img.config.data).unwrap();
    let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let digests: Vec<String> = got.layer_digests().iter().map(|d| d.to_string()).collect();
    assert_eq!(digests, diff_ids);
}

#[test]
fn insecure_registry_skips_certificate_checks() {
    let Some(reg) = Registry::start(Mode::Tls) else { return };
    let insecure =
        RegistryOptions { insecure: vec![reg.host.clone()], retries: 0, ..Default::default() };
    let img = two_layer_image(100);
    let name = format!("{}/test/insecure:v1", reg.host);
    publish(&img, &name, &PushOptions { registry: insecure.clone(), ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = Reference::parse(&name).unwrap();
    let got =
        pull_blocking(&store, &r, &amd64(), &PullOptions { registry: insecure, ..opts() }).unwrap();
    assert_eq!(got.manifest_digest.to_string(), img.manifest.digest);
}

#[test]
fn is_published_compares_the_remote_root_with_the_stored_one() {
    let Some(reg) = Registry::plain() else { return };
    let img = two_layer_image(110);
    let name = format!("{}/test/pub:v1", reg.host);
    let src = publish(&img, &name, &push_opts());
    let store = Store::open(src.path()).unwrap();
    let reg_opts = RegistryOptions { retries: 0, ..Default::default() };
    let r = Reference::parse(&name).unwrap();
    assert!(baleen_oci::is_published_blocking(&store, &r, &reg_opts).unwrap());
    // The same name locally pointing at other content: not what the registry has.
    two_layer_image(111).write_layout(src.path(), &name);
    assert!(!baleen_oci::is_published_blocking(&store, &r, &reg_opts).unwrap());
    let never = Reference::parse(&format!("{}/test/never:v1", reg.host)).unwrap();
    two_layer_image(112).write_layout(src.path(), &never.to_string());
    assert!(!baleen_oci::is_published_blocking(&store, &never, &reg_opts).unwrap());
}

/// gc must not run while another Store on the directory is open: that one may hold blobs it
/// has written but not yet named.
#[test]
fn gc_waits_for_other_users_of_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let builder = Store::open(dir.path()).unwrap();
    let unnamed = builder.write_blob(&b"written, not yet named"[..], None).unwrap();
    // What a SIGKILLed pull leaves behind.
    std::fs::write(dir.path().join("ingest/blob-killed"), b"partial").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let path = dir.path().to_path_buf();
    let gc = std::thread::spawn(move || {
        let store = Store::open(&path).unwrap();
        let report = store.gc().unwrap();
        tx.send(()).unwrap();
        report
    });
    // Still blocked while `builder` is open, however long we look.
    assert!(
        rx.recv_timeout(std::time::Duration::from_millis(500)).is_err(),
        "gc ran under an open store"
    );
    assert!(builder.has_blob(&unnamed.digest));
    drop(builder);
    let report = gc.join().unwrap();
    assert_eq!(report.blobs_removed, 1);
    assert!(ingest_leftovers(dir.path()).is_empty(), "gc removes temp files of dead pulls");
}
