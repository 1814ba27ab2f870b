//! The six LinuxKit conformance YAMLs (copied verbatim from LinuxKit's repository into
//! `tests/golden/conformance/<stem>/<stem>.yml`) built with `-f tar` on stand-in images, and the
//! result compared with golden files: the tree listing read back from the tar (type, mode,
//! uid/gid, mtime, path, size and content hash, link target, the `LINUXKIT.*` PAX records) and
//! every `config.json`/`runtime.json` and metadata file. See `golden/conformance/INDEX.md`.
//!
//! The stand-ins carry the same references the YAMLs name and the `org.mobyproject.config`
//! labels the real packages carry (spec §12, LinuxKit's `pkg/*/Dockerfile`/`build.yml`), with
//! a few small files each instead of real binaries.
//!
//! `BALEEN_REGEN_GOLDEN=1` rewrites the golden files (see `golden/conformance/regen.sh`);
//! review the diff against spec §2–3 before committing.

use baleen_build::{build, Format, Output, Request};
use baleen_oci::{Platform, Store};
use baleen_testkit::image::{sha256, ImageBuilder};
use baleen_testkit::layers::{dir, file, file_mode, hardlink, symlink, tar_layer, whiteout};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Once;

fn golden_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/conformance")
}

/// `files` entries read host paths: `~/.ssh/id_rsa.pub` (optional) and `./check.sh`. The
/// process gets a fixed empty HOME and a working directory holding `check.sh`, once, for every
/// test of this binary alike.
fn host_paths() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let home = tempfile::tempdir().unwrap().keep();
        std::env::set_var("HOME", home);
        std::env::set_current_dir(
            golden_root().join("test-cases-000_build-070_volumes-006_mount_types"),
        )
        .unwrap();
    });
}

fn image(
    at: &Path,
    name: &str,
    layers: &[Vec<baleen_testkit::layers::TestEntry>],
    config: serde_json::Value,
) {
    let mut b = ImageBuilder::new().config(config);
    for l in layers {
        b = b.layer(l);
    }
    b.build().write_layout(at, name);
}

fn label(v: serde_json::Value) -> serde_json::Value {
    serde_json::json!({ "org.mobyproject.config": v.to_string() })
}

/// A small Alpine-like userland under every service image.
fn userland() -> Vec<baleen_testkit::layers::TestEntry> {
    vec![
        dir("bin"),
        file_mode("bin/busybox", b"busybox", 0o755),
        symlink("bin/sh", "/bin/busybox"),
        hardlink("bin/echo", "bin/busybox"),
        dir("etc"),
        file("etc/hostname", b"buildkitsandbox\n"),
        file("etc/hosts", b"127.0.0.1 image-hosts\n"),
        file("etc/resolv.conf", b"nameserver 8.8.8.8\n"),
        dir("dev"),
        dir("proc"),
        dir("tmp"),
    ]
}

/// Every image the six YAMLs name.
fn stand_ins(at: &Path) -> Store {
    let none = serde_json::json!({});
    let modules = tar_layer(&[
        dir("lib/"),
        dir("lib/modules/"),
        dir("lib/modules/6.12.59-linuxkit/"),
        file("lib/modules/6.12.59-linuxkit/modules.dep", b""),
    ]);
    image(
        at,
        "docker.io/linuxkit/kernel:6.12.59",
        &[vec![file("kernel", b"bzImage"), file("kernel.tar", &modules)]],
        none.clone(),
    );
    image(
        at,
        "docker.io/linuxkit/init:b5506cc74a6812dc40982cacfd2f4328f8a4b12a",
        &[vec![
            file_mode("init", b"#!/bin/sh\n", 0o755),
            dir("etc"),
            dir("etc/init.d"),
            file_mode("etc/init.d/rcS", b"#!/bin/sh\n", 0o755),
            dir("lib"),
            dir("lib/apk"),
            dir("lib/apk/db"),
            file("lib/apk/db/installed", b"P:busybox\nV:1.36\n"),
            symlink("etc/resolv.conf", "/etc/resolv.conf.orig"),
        ]],
        none.clone(),
    );
    image(
        at,
        "docker.io/linuxkit/runc:9442aa234715e751a16144f1d4ae3fd1a00fd492",
        &[vec![
            dir("usr"),
            dir("usr/bin"),
            file_mode("usr/bin/runc", b"runc", 0o755),
            dir("etc"),
            dir("etc/init.d"),
            file_mode("etc/init.d/010-onboot", b"#!/bin/sh\n", 0o755),
            dir("lib"),
            dir("lib/apk"),
            dir("lib/apk/db"),
            file("lib/apk/db/installed", b"P:runc\nV:1.2\n"),
        ]],
        none.clone(),
    );
    image(
        at,
        "docker.io/linuxkit/containerd:ba19f64efd3331a8fd0a33e00eabd14f6ee1780e",
        &[vec![
            dir("usr"),
            dir("usr/bin"),
            file_mode("usr/bin/containerd", b"containerd", 0o755),
            dir("etc"),
            dir("etc/containerd"),
            file("etc/containerd/config.toml", b"version = 2\n"),
        ]],
        none.clone(),
    );
    image(
        at,
        "docker.io/linuxkit/ca-certificates:256f1950df59f2f209e9f0b81374177409eb11de",
        &[vec![
            dir("etc"),
            dir("etc/ssl"),
            dir("etc/ssl/certs"),
            file("etc/ssl/certs/ca-certificates.crt", b"-----BEGIN CERTIFICATE-----\n"),
        ]],
        none.clone(),
    );
    let mut dhcpcd = userland();
    dhcpcd.extend([dir("sbin"), file_mode("sbin/dhcpcd", b"dhcpcd", 0o755)]);
    dhcpcd.push(file("dhcpcd.conf", b"option rapid_commit\n"));
    image(
        at,
        "docker.io/linuxkit/dhcpcd:b87e9ececac55a65eaa592f4dd8b4e0c3009afdb",
        &[dhcpcd],
        serde_json::json!({
            "Cmd": ["/sbin/dhcpcd", "--nobackground", "-f", "/dhcpcd.conf"],
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Labels": label(serde_json::json!({
                "binds": ["/run/resolvconf:/etc"],
                "capabilities": ["CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_ADMIN"],
            })),
        }),
    );
    let host_binds = |first: &[&str]| {
        let mut v: Vec<String> = first.iter().map(|s| s.to_string()).collect();
        for b in [
            "/etc/resolv.conf:/etc/resolv.conf",
            "/run:/run",
            "/tmp:/tmp",
            "/etc:/hostroot/etc",
            "/usr/bin/ctr:/usr/bin/ctr",
            "/usr/bin/runc:/usr/bin/runc",
            "/containers:/containers",
            "/var/log:/var/log",
            "/var/lib/containerd:/var/lib/containerd",
            "/dev:/dev",
            "/sys:/sys",
        ] {
            v.push(b.into());
        }
        v
    };
    let mut getty = userland();
    getty.extend([
        dir("usr"),
        dir("usr/bin"),
        file_mode("usr/bin/rungetty.sh", b"#!/bin/sh\n", 0o755),
    ]);
    image(
        at,
        "docker.io/linuxkit/getty:a86d74c8f89be8956330c3b115b0b1f2e09ef6e0",
        &[getty],
        serde_json::json!({
            "Entrypoint": ["/sbin/tini", "/usr/bin/rungetty.sh"],
            "Labels": label(serde_json::json!({
                "pid": "host",
                "net": "host",
                "binds": host_binds(&[]),
                "devices": [
                    {"path": "/dev/console", "type": "c", "major": 5, "minor": 1, "mode": "0666"},
                    {"path": "/dev/tty0", "type": "c", "major": 4, "minor": 0, "mode": "0666"},
                    {"path": "/dev/ttyS0", "type": "c", "major": 4, "minor": 64, "mode": "0666"},
                    {"path": "/dev/ttyAMA0", "type": "c", "major": 204, "minor": 64, "mode": "0666"},
                ],
                "capabilities": ["all"],
            })),
        }),
    );
    let mut sysctl = userland();
    sysctl.extend([
        dir("etc/sysctl.d"),
        file("etc/sysctl.d/00-linuxkit.conf", b"kernel.panic = 10\n"),
    ]);
    image(
        at,
        "docker.io/linuxkit/sysctl:43ac1d39da329c3567fcb9689e5ca99de6d169b6",
        &[sysctl],
        serde_json::json!({
            "Cmd": ["/sbin/sysctl", "-p", "/etc/sysctl.d/00-linuxkit.conf"],
            "Labels": label(serde_json::json!({
                "pid": "host", "readonly": true, "capabilities": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"],
            })),
        }),
    );
    image(
        at,
        "docker.io/linuxkit/rngd:984eb580ecb63986f07f626b61692a97aacd7198",
        &[vec![dir("sbin"), file_mode("sbin/rngd", b"rngd", 0o755)]],
        serde_json::json!({
            "Cmd": ["/sbin/rngd"],
            "WorkingDir": "/",
            "Labels": label(serde_json::json!({
                "capabilities": ["CAP_SYS_ADMIN"], "oomScoreAdj": -800, "readonly": true,
            })),
        }),
    );
    let mut sshd = userland();
    sshd.extend([dir("usr"), dir("usr/sbin"), file_mode("usr/sbin/sshd", b"sshd", 0o755)]);
    image(
        at,
        "docker.io/linuxkit/sshd:08e5d4a46603eff485d5d1b14001cc932a530858",
        &[sshd],
        serde_json::json!({
            "Cmd": ["/usr/sbin/sshd", "-D", "-e"],
            "Labels": label(serde_json::json!({
                "pid": "host", "binds": host_binds(&["/root/.ssh:/root/.ssh"]), "capabilities": ["all"],
            })),
        }),
    );
    let mut ip = userland();
    ip.extend([
        dir("usr"),
        dir("usr/bin"),
        file_mode("usr/bin/lk-wg-config", b"#!/bin/sh\n", 0o755),
    ]);
    image(
        at,
        "docker.io/linuxkit/ip:3c0676ee83a0dc739685be1253b8326f08581ef7",
        &[ip],
        none.clone(),
    );
    let mut poweroff = userland();
    poweroff.push(file("poweroff.sh", b"#!/bin/sh\npoweroff -f\n"));
    image(
        at,
        "docker.io/linuxkit/poweroff:4059858a555bed90c2280fa9b060b7a8f8de6d45",
        &[poweroff],
        serde_json::json!({
            "Entrypoint": ["/bin/sh", "/poweroff.sh"],
            "WorkingDir": "/",
            "Labels": label(serde_json::json!({
                "pid": "host", "readonly": true, "capabilities": ["CAP_SYS_BOOT"],
            })),
        }),
    );
    for version in ["1.13.8", "1.19.5"] {
        let mut nginx = userland();
        nginx.extend([
            dir("etc/nginx"),
            file("etc/nginx/nginx.conf", b"events {}\n"),
            dir("usr"),
            dir("usr/sbin"),
            file_mode("usr/sbin/nginx", b"nginx", 0o755),
        ]);
        image(
            at,
            &format!("docker.io/library/nginx:{version}-alpine"),
            &[nginx],
            serde_json::json!({
                "Cmd": ["nginx", "-g", "daemon off;"],
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", format!("NGINX_VERSION={version}")],
                "StopSignal": "SIGTERM",
            }),
        );
    }
    image(
        at,
        "docker.io/library/busybox:latest",
        &[userland()],
        serde_json::json!({"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}),
    );
    // alpine:3.21 has a second layer deleting a file of the first, so the volume shows a
    // flattened image.
    let alpine_cfg = serde_json::json!({"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]});
    let mut alpine = userland();
    alpine.push(file("etc/motd", b"Welcome to Alpine!\n"));
    image(at, "docker.io/library/alpine:3.20", &[alpine.clone()], alpine_cfg.clone());
    image(
        at,
        "docker.io/library/alpine:3.21",
        &[alpine, vec![whiteout("etc/motd"), file("etc/alpine-release", b"3.21.0\n")]],
        alpine_cfg,
    );
    Store::open(at).unwrap()
}

/// One line per tar entry, and the JSON/metadata files by name.
struct Tree {
    listing: String,
    files: Vec<(String, Vec<u8>)>,
}

fn read_tree(tar_bytes: &[u8], metadata_paths: &[String]) -> Tree {
    let mut listing = String::new();
    let mut files = Vec::new();
    let mut ar = tar::Archive::new(tar_bytes);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut pax = Vec::new();
        if let Some(exts) = e.pax_extensions().unwrap() {
            for ext in exts {
                let ext = ext.unwrap();
                let key = ext.key().unwrap().to_string();
                if key.starts_with("LINUXKIT.") {
                    pax.push(format!("{key}={}", ext.value().unwrap()));
                }
            }
        }
        let h = e.header().clone();
        let link = e.link_name().unwrap().map(|l| l.to_string_lossy().into_owned());
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let (t, extra) = match h.entry_type() {
            tar::EntryType::Regular => {
                ('f', format!(" size={} sha256={}", data.len(), &sha256(&data)[7..19]))
            }
            tar::EntryType::Directory => ('d', String::new()),
            tar::EntryType::Symlink => ('l', format!(" -> {}", link.unwrap_or_default())),
            tar::EntryType::Link => ('h', format!(" => {}", link.unwrap_or_default())),
            other => panic!("{path}: unexpected entry type {other:?}"),
        };
        listing.push_str(&format!(
            "{t} {:04o} {}:{} {} {path}{extra}  <{}>\n",
            h.mode().unwrap(),
            h.uid().unwrap(),
            h.gid().unwrap(),
            h.mtime().unwrap(),
            pax.join(" "),
        ));
        let base = path.rsplit('/').next().unwrap_or_default();
        if base == "config.json" || base == "runtime.json" {
            // containers/onboot/000-dhcpcd/config.json → onboot.000-dhcpcd.config.json
            let name = path.strip_prefix("containers/").unwrap_or(&path).replace('/', ".");
            files.push((name, data));
        } else if metadata_paths.contains(&path) {
            files.push((format!("files.{}", path.replace('/', ".")), data));
        }
    }
    Tree { listing, files }
}

fn conformance(stem: &str) {
    host_paths();
    let dir = golden_root().join(stem);
    let yaml = std::fs::read_to_string(dir.join(format!("{stem}.yml"))).unwrap();
    let name = format!("{stem}.yml");
    let src = baleen_spec::Source { name: &name, text: &yaml, template_dir: None };
    let cfg = baleen_spec::load_all(&[src], None).unwrap_or_else(|d| panic!("{d}"));
    let tmp = tempfile::tempdir().unwrap();
    let store = stand_ins(&tmp.path().join("store"));
    let out = tmp.path().join("out.tar");
    build(&Request::new(
        &cfg,
        &store,
        vec![Format::Tar],
        Output::File(out.clone()),
        Platform::new("linux", "amd64", None),
    ))
    .unwrap_or_else(|e| panic!("building {stem}: {e}"));
    let metadata: Vec<String> =
        cfg.files.iter().filter(|f| f.metadata.is_some()).map(|f| f.path.clone()).collect();
    let tree = read_tree(&std::fs::read(&out).unwrap(), &metadata);
    let mut expected = vec![("tree.txt".to_string(), tree.listing.into_bytes())];
    expected.extend(tree.files);
    check_golden(&dir, &expected);
}

/// Compares (or with `BALEEN_REGEN_GOLDEN=1` writes) every file, and fails on golden files no
/// longer produced.
fn check_golden(dir: &Path, files: &[(String, Vec<u8>)]) {
    let regen = std::env::var_os("BALEEN_REGEN_GOLDEN").is_some_and(|v| v == "1");
    let produced: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let golden = name == "tree.txt" || name.ends_with(".json") || name.starts_with("files.");
        if golden && !produced.contains(&name.as_str()) {
            if regen {
                std::fs::remove_file(dir.join(&name)).unwrap();
            } else {
                panic!("{}: golden file {name} is no longer produced", dir.display());
            }
        }
    }
    let mut diffs = Vec::new();
    for (name, data) in files {
        let path = dir.join(name);
        if regen {
            std::fs::write(&path, data).unwrap();
            continue;
        }
        let want = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run regen.sh)", path.display()));
        if &want != data {
            diffs.push(first_difference(name, &want, data));
        }
    }
    assert!(
        diffs.is_empty(),
        "{}: differs from golden files:\n{}",
        dir.display(),
        diffs.join("\n")
    );
}

fn first_difference(name: &str, want: &[u8], got: &[u8]) -> String {
    let (w, g) = (String::from_utf8_lossy(want), String::from_utf8_lossy(got));
    for (i, (a, b)) in w.lines().zip(g.lines()).enumerate() {
        if a != b {
            return format!("{name}:{}:\n  golden: {a}\n  built:  {b}", i + 1);
        }
    }
    format!("{name}: {} lines golden, {} built", w.lines().count(), g.lines().count())
}

#[test]
fn examples_minimal() {
    conformance("examples-minimal");
}

#[test]
fn examples_sshd() {
    conformance("examples-sshd");
}

#[test]
fn examples_wireguard() {
    conformance("examples-wireguard");
}

#[test]
fn linuxkit() {
    conformance("linuxkit");
}

#[test]
fn test_cases_000_build_010_reproducible() {
    conformance("test-cases-000_build-010_reproducible");
}

#[test]
fn test_cases_000_build_070_volumes_006_mount_types() {
    conformance("test-cases-000_build-070_volumes-006_mount_types");
}

#[test]
fn input_tar_rebuild_of_a_volume_is_byte_identical() {
    host_paths();
    let yaml = "init:\n  - linuxkit/init:b5506cc74a6812dc40982cacfd2f4328f8a4b12a\nvolumes:\n  - name: vola\n    image: alpine:3.21\nfiles:\n  - path: etc/linuxkit.yml\n    metadata: yaml\n";
    let src = baleen_spec::Source { name: "v.yml", text: yaml, template_dir: None };
    let cfg = baleen_spec::load_all(&[src], None).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let store = stand_ins(&tmp.path().join("store"));
    let run = |out: &Path, input: Option<&Path>| {
        build(&Request {
            input_tar: input.map(Path::to_path_buf),
            ..Request::new(
                &cfg,
                &store,
                vec![Format::Tar],
                Output::File(out.to_path_buf()),
                Platform::new("linux", "amd64", None),
            )
        })
        .unwrap();
        std::fs::read(out).unwrap()
    };
    let full = run(&tmp.path().join("a.tar"), None);
    let again = run(&tmp.path().join("b.tar"), Some(&tmp.path().join("a.tar")));
    let list = |t: &[u8]| read_tree(t, &[]).listing;
    assert_eq!(list(&again), list(&full));
    assert!(again == full);
}
