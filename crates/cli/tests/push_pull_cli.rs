//! `baleen push oci` and `baleen pull` against Debian's docker-registry: a built kernel+initrd
//! goes up as an artifact and comes back byte for byte into another directory; pushing it
//! again gives the same manifest digest; a container image and an artifact whose file title
//! climbs out of the directory (`../x`) are refused, and nothing is written.

use baleen_testkit::image::{sha256, Blob, BuiltImage, ImageBuilder};
use baleen_testkit::layers::{file, file_mode};
use baleen_testkit::registry::Registry;
use std::path::Path;
use std::process::{Command, Output};

fn baleen(store: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baleen"))
        .current_dir(cwd)
        .args(args)
        .env("BALEEN_CACHE", store)
        .env("DOCKER_CONFIG", cwd.join("no-docker-config"))
        .output()
        .unwrap()
}

pub(crate) fn ok(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

pub(crate) fn failed(out: &Output) -> String {
    assert_ne!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // Shown with --nocapture: the messages a user reads.
    eprintln!("{stderr}");
    stderr
}

/// Builds `sys.yml` as kernel+initrd in `dir` (sys-kernel, sys-initrd.img, sys-cmdline) from
/// stand-in images in `cache`.
fn build_system(cache: &Path, dir: &Path) {
    ImageBuilder::new()
        .layer(&[file("kernel", &b"stand-in kernel ".repeat(4096))])
        .build()
        .write_layout(cache, "docker.io/baleen/push-kernel:1");
    ImageBuilder::new()
        .layer(&[file_mode("init", b"#!/bin/init\n", 0o755)])
        .build()
        .write_layout(cache, "docker.io/baleen/push-init:1");
    let yaml = "kernel:\n  image: baleen/push-kernel:1\n  cmdline: console=ttyS0 quiet\n  \
                tar: none\ninit:\n  - baleen/push-init:1\n";
    std::fs::write(dir.join("sys.yml"), yaml).unwrap();
    ok(&baleen(cache, dir, &["build", "--cache", cache.to_str().unwrap(), "sys.yml"]));
}

/// The digest `REF  DIGEST` on stdout names.
fn pushed_digest(stdout: &str) -> String {
    stdout.split_whitespace().nth(1).expect("REF  DIGEST").to_string()
}

#[test]
fn a_pushed_system_pulls_back_byte_identical_with_a_stable_digest() {
    let Some(reg) = Registry::plain() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (cache, out) = (tmp.path().join("cache"), tmp.path().join("out"));
    std::fs::create_dir_all(&out).unwrap();
    build_system(&cache, &out);
    let name = format!("{}/systems/sys:1", reg.host);

    let first = ok(&baleen(&cache, &out, &["push", "oci", "sys", &name]));
    let digest = pushed_digest(&first);
    assert!(first.starts_with(&name), "{first}");
    // A second push from another store (nothing cached) gives the same manifest.
    let again = ok(&baleen(&tmp.path().join("cache2"), &out, &["push", "oci", "sys", &name]));
    assert_eq!(pushed_digest(&again), digest, "same files, same digest");

    let dest = tmp.path().join("pulled");
    let fresh = tmp.path().join("cache3");
    let pull = baleen(&fresh, tmp.path(), &["pull", &name, "--dir", dest.to_str().unwrap()]);
    let listed = ok(&pull);
    let mut names: Vec<String> = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["sys-cmdline", "sys-initrd.img", "sys-kernel"], "no temp file left");
    for n in &names {
        assert_eq!(
            std::fs::read(dest.join(n)).unwrap(),
            std::fs::read(out.join(n)).unwrap(),
            "{n} differs"
        );
        assert!(listed.contains(&dest.join(n).display().to_string()), "{listed}");
    }
    let stderr = String::from_utf8_lossy(&pull.stderr);
    assert!(stderr.contains(&digest) && stderr.contains("kernel+initrd"), "{stderr}");

    // What the registry holds is the documented artifact.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reg.blob_data(&digest)).unwrap()).unwrap();
    assert_eq!(manifest["artifactType"], "application/vnd.baleen.system.v1", "{manifest}");
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.oci.empty.v1+json");
    assert_eq!(manifest["config"]["size"], 2);
    assert_eq!(manifest["annotations"]["org.baleen.system.format"], "kernel+initrd");
    let host = if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" };
    assert_eq!(manifest["annotations"]["org.baleen.system.architecture"], host);
    let layers: Vec<(String, String)> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let title = l["annotations"]["org.opencontainers.image.title"].as_str().unwrap();
            (title.to_string(), l["mediaType"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(
        layers,
        [
            ("sys-kernel".into(), "application/vnd.baleen.system.kernel.v1".into()),
            ("sys-initrd.img".into(), "application/vnd.baleen.system.initrd.v1".into()),
            ("sys-cmdline".into(), "application/vnd.baleen.system.cmdline.v1+text".into()),
        ]
    );

    // By digest too, and into a directory that has the files already: replaced, same bytes.
    let by_digest = format!("{}/systems/sys@{digest}", reg.host);
    ok(&baleen(&fresh, tmp.path(), &["pull", &by_digest, "--dir", dest.to_str().unwrap()]));
    assert_eq!(std::fs::read(dest.join("sys-kernel")).unwrap(), b"stand-in kernel ".repeat(4096));
}

#[test]
fn pulling_a_container_image_is_refused_and_writes_nothing() {
    let Some(reg) = Registry::plain() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let name = format!("{}/library/app:1", reg.host);
    ImageBuilder::new().layer(&[file("etc/motd", b"hi")]).build().write_layout(&cache, &name);
    ok(&baleen(&cache, tmp.path(), &["cache", "push", &name]));

    let dest = tmp.path().join("pulled");
    let err =
        failed(&baleen(&cache, tmp.path(), &["pull", &name, "--dir", dest.to_str().unwrap()]));
    assert!(
        err.contains(&format!("{name} is a container image"))
            && err.contains("not a baleen system")
            && err.contains("baleen cache pull"),
        "{err}"
    );
    assert!(!dest.exists(), "nothing written");
}

/// An artifact crafted by a hostile registry whose title climbs out of `--dir`.
#[test]
fn a_title_that_leaves_the_directory_is_refused_before_anything_is_written() {
    let Some(reg) = Registry::plain() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let name = format!("{}/systems/hostile:1", reg.host);
    let data = b"escaped".to_vec();
    let layer = Blob {
        digest: sha256(&data),
        media_type: "application/vnd.baleen.system.kernel.v1".into(),
        data,
    };
    let config = Blob {
        digest: sha256(b"{}"),
        media_type: "application/vnd.oci.empty.v1+json".into(),
        data: b"{}".to_vec(),
    };
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.baleen.system.v1",
        "config": {"mediaType": config.media_type, "digest": config.digest, "size": 2},
        "layers": [{"mediaType": layer.media_type, "digest": layer.digest, "size": 7,
                    "annotations": {"org.opencontainers.image.title": "../x"}}],
    }))
    .unwrap();
    let image = BuiltImage {
        manifest: Blob {
            digest: sha256(&manifest),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            data: manifest,
        },
        config,
        layers: vec![layer],
        os: "linux".into(),
        arch: "amd64".into(),
        variant: None,
    };
    image.write_layout(&cache, &name);
    ok(&baleen(&cache, tmp.path(), &["cache", "push", &name]));

    let dest = tmp.path().join("d").join("pulled");
    let fresh = tmp.path().join("fresh");
    let err =
        failed(&baleen(&fresh, tmp.path(), &["pull", &name, "--dir", dest.to_str().unwrap()]));
    assert!(err.contains(r#"has title "../x""#) && err.contains("more than one path"), "{err}");
    assert!(!tmp.path().join("d").join("x").exists(), "nothing written beside --dir");
    assert!(!dest.exists(), "nothing written into --dir");
}

/// A disk image goes up as one layer of its own media type; a PATH that `baleen run` would not
/// boot is refused with run's explanation, and nothing is stored.
#[test]
fn a_disk_is_one_typed_layer_and_a_non_system_path_is_refused() {
    let Some(reg) = Registry::plain() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let mut qcow2 = b"QFI\xfb\0\0\0\x03".to_vec();
    qcow2.resize(64 << 10, 0);
    std::fs::write(tmp.path().join("sys-efi.qcow2"), &qcow2).unwrap();
    let name = format!("{}/systems/disk:1", reg.host);
    let digest =
        pushed_digest(&ok(&baleen(&cache, tmp.path(), &["push", "oci", "sys-efi.qcow2", &name])));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reg.blob_data(&digest)).unwrap()).unwrap();
    assert_eq!(manifest["annotations"]["org.baleen.system.format"], "disk");
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1, "{manifest}");
    assert_eq!(manifest["layers"][0]["mediaType"], "application/vnd.baleen.system.disk.qcow2.v1");
    assert_eq!(
        manifest["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "sys-efi.qcow2"
    );

    std::fs::write(tmp.path().join("notes.txt"), "not a system").unwrap();
    let other = tmp.path().join("other-cache");
    let err = failed(&baleen(&other, tmp.path(), &["push", "oci", "notes.txt", &name]));
    assert!(err.contains("notes.txt is not something qemu can boot"), "{err}");
    assert!(!other.exists(), "no store created for a refused PATH");
}

/// kernel+squashfs and kernel+erofs prefixes carry their root image and baleen's stage-1
/// initrd, typed, with the format named on the manifest.
#[test]
fn root_image_prefixes_push_kernel_root_stage1_and_cmdline() {
    let Some(reg) = Registry::plain() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    for (root, format, media_type) in [
        ("squashfs", "kernel+squashfs", "application/vnd.baleen.system.rootfs.squashfs.v1"),
        ("erofs", "kernel+erofs", "application/vnd.baleen.system.rootfs.erofs.v1"),
    ] {
        let dir = tmp.path().join(root);
        std::fs::create_dir_all(&dir).unwrap();
        for (suffix, text) in [
            ("-kernel", "kernel"),
            (&format!("-{root}.img") as &str, "root"),
            ("-root-initrd.img", "stage1"),
            ("-cmdline", "console=ttyS0"),
        ] {
            std::fs::write(dir.join(format!("sys{suffix}")), text).unwrap();
        }
        let name = format!("{}/systems/{root}:1", reg.host);
        let digest = pushed_digest(&ok(&baleen(&cache, &dir, &["push", "oci", "sys", &name])));
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(reg.blob_data(&digest)).unwrap()).unwrap();
        assert_eq!(manifest["annotations"]["org.baleen.system.format"], format);
        let layers: Vec<(&str, &str)> = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let title = l["annotations"]["org.opencontainers.image.title"].as_str().unwrap();
                (title, l["mediaType"].as_str().unwrap())
            })
            .collect();
        let root_file = format!("sys-{root}.img");
        assert_eq!(
            layers,
            [
                ("sys-kernel", "application/vnd.baleen.system.kernel.v1"),
                (root_file.as_str(), media_type),
                ("sys-root-initrd.img", "application/vnd.baleen.system.initrd.v1"),
                ("sys-cmdline", "application/vnd.baleen.system.cmdline.v1+text"),
            ]
        );
    }
}

/// A registry that serves other bytes than the manifest names: the pull fails on the digest
/// and writes nothing into `--dir`.
#[test]
fn a_file_the_registry_altered_fails_its_digest_and_nothing_is_written() {
    let Some(reg) = Registry::plain() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (cache, out) = (tmp.path().join("cache"), tmp.path().join("out"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("sys-kernel"), b"kernel").unwrap();
    std::fs::write(out.join("sys-initrd.img"), b"initrd").unwrap();
    let name = format!("{}/systems/altered:1", reg.host);
    ok(&baleen(&cache, &out, &["push", "oci", "sys", &name]));
    let initrd = baleen_testkit::image::sha256(b"initrd");
    std::fs::write(reg.blob_data(&initrd), b"INITRD").unwrap();

    let dest = tmp.path().join("pulled");
    let fresh = tmp.path().join("fresh");
    let err =
        failed(&baleen(&fresh, tmp.path(), &["pull", &name, "--dir", dest.to_str().unwrap()]));
    assert!(err.contains(&initrd), "{err}");
    assert!(!dest.exists(), "nothing written");
}

/// Behind bearer-token auth (Docker Hub's flow), push and pull take their credentials from
/// `--docker-config`; without them the pull says the registry refused and writes nothing.
#[test]
fn push_and_pull_authenticate_with_docker_config() {
    use baleen_testkit::registry::Mode;
    let (user, password) = ("fleet", "s3cret-pass");
    let mode = Mode::Token { user: user.into(), password: password.into() };
    let Some(reg) = Registry::start(mode) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (cache, out) = (tmp.path().join("cache"), tmp.path().join("out"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("sys-kernel"), b"kernel").unwrap();
    std::fs::write(out.join("sys-initrd.img"), b"initrd").unwrap();
    let creds = reg.docker_config(user, password);
    let creds = creds.to_str().unwrap();
    let name = format!("{}/private/sys:1", reg.host);
    ok(&baleen(&cache, &out, &["push", "oci", "sys", &name, "--docker-config", creds]));

    let dest = tmp.path().join("pulled");
    let fresh = tmp.path().join("fresh");
    let d = dest.to_str().unwrap();
    let err = failed(&baleen(&fresh, tmp.path(), &["pull", &name, "--dir", d]));
    assert!(err.contains(&format!("pulling {name}")), "{err}");
    assert!(!dest.exists(), "nothing written");
    ok(&baleen(&fresh, tmp.path(), &["pull", &name, "--dir", d, "--docker-config", creds]));
    assert_eq!(std::fs::read(dest.join("sys-initrd.img")).unwrap(), b"initrd");
    assert!(!err.contains(password));
}

/// `build --push REF` pushes what it built once the build succeeded (the manifest `push oci`
/// makes of the same files); a build that fails pushes nothing; a format `run` cannot boot and
/// several formats are refused before anything is built.
#[test]
fn build_push_pushes_only_what_a_successful_build_wrote() {
    let Some(reg) = Registry::plain() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (cache, out) = (tmp.path().join("cache"), tmp.path().join("out"));
    std::fs::create_dir_all(&out).unwrap();
    build_system(&cache, &out);
    let c = cache.to_str().unwrap();
    let name = format!("{}/systems/built:1", reg.host);
    let stdout = ok(&baleen(&cache, &out, &["build", "--cache", c, "--push", &name, "sys.yml"]));
    let pushed = stdout.lines().last().expect("REF  DIGEST last");
    assert!(pushed.starts_with(&name), "{stdout}");
    let again = ok(&baleen(&tmp.path().join("other"), &out, &["push", "oci", "sys", &name]));
    assert_eq!(pushed_digest(pushed), pushed_digest(&again), "the files the build wrote");

    // A `files:` source that does not exist: the build fails, nothing reaches the registry.
    let yaml = std::fs::read_to_string(out.join("sys.yml")).unwrap();
    let yaml = format!("{yaml}files:\n  - path: etc/x\n    source: /nonexistent/baleen-x\n");
    std::fs::write(out.join("broken.yml"), yaml).unwrap();
    let broken = format!("{}/systems/broken:1", reg.host);
    let err =
        failed(&baleen(&cache, &out, &["build", "--cache", c, "--push", &broken, "broken.yml"]));
    assert!(err.contains("build failed"), "{err}");
    let repos = reg.storage().join("docker/registry/v2/repositories/systems");
    assert!(repos.join("built").exists() && !repos.join("broken").exists());

    for (args, want) in [
        (&["-f", "tar"][..], "format `tar` is not one"),
        (&["-f", "kernel+initrd,raw-bios"][..], "give one format"),
    ] {
        let mut all = vec!["build", "--cache", c, "--push", &broken, "--name", "refused"];
        all.extend_from_slice(args);
        all.push("sys.yml");
        let err = failed(&baleen(&cache, &out, &all));
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!out.join("refused-kernel").exists() && !out.join("refused.tar").exists());
    }
}
