//! `baleen audit OUTPUT` for every output format that holds the system's tree (all but
//! `docker`; `tar` is audit_cli's): the SBOM read
//! from inside it lists the same Debian packages as `baleen audit FILE.yml`; a damaged output,
//! a kernel, or an output without an SBOM is exit 2 naming what was wrong. `--keyring` checks
//! the packages of the signed private fixture archive, which Debian's keys cannot.

use crate::verify_cli::text;
use baleen_testkit::http::serve_dir;
use baleen_testkit::image::ImageBuilder;
use baleen_testkit::layers::{dir, file_mode};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

fn fixture() -> PathBuf {
    baleen_testkit::workspace_root().join("crates/pkg/tests/fixtures/release")
}

fn baleen(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baleen"))
        .args(args)
        .env("BALEEN_CACHE", cache)
        .env_remove("BALEEN_SIGN_KEY")
        .env_remove("BALEEN_SIGN_CERT")
        .env("TMPDIR", cache.parent().unwrap())
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The Debian packages an audit report lists, as `arch name version`.
fn packages(out: &Output) -> BTreeSet<String> {
    let json: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)));
    let mut set = BTreeSet::new();
    for c in json["components"].as_array().unwrap() {
        for p in c["debian_packages"].as_array().unwrap() {
            set.insert(format!("{} {} {}", p["arch"], p["name"], p["version"]).replace('"', ""));
        }
    }
    set
}

/// A system of a `pkg build` component (init and onboot) from the private fixture archive, with
/// a stand-in kernel and a stand-in init naming the stage-1 marker (`--root` and root formats
/// check for it): the tmp dir, the store, the YAML.
fn system() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let mirror = format!("http://127.0.0.1:{}", serve_dir(fixture().join("private")));
    let d = t.path().join("hello");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("build.yml"),
        format!(
            "image: hello\norg: baleentest\ndebian:\n  packages: [baleen-hello, libbaleen]\n  \
             mirror: {mirror}\n  security: false\n  security-mirror: {mirror}\n  \
             keyring: test-key.gpg\nconfig:\n  cmd: [/bin/true]\n"
        ),
    )
    .unwrap();
    std::fs::copy(fixture().join("test-key.gpg"), d.join("test-key.gpg")).unwrap();
    let out = baleen(&cache, &["pkg", "build", s(&d)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let tag = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    ImageBuilder::new()
        .layer(&[file_mode("kernel", &b"not really a kernel ".repeat(64), 0o644)])
        .build()
        .write_layout(&cache, "docker.io/baleen/audit-kernel:1");
    ImageBuilder::new()
        .layer(&[file_mode("init", b"#!/bin/init /etc/baleen-stage1\n", 0o755), dir("etc")])
        .build()
        .write_layout(&cache, "docker.io/baleen/audit-init:1");
    let yml = t.path().join("sys.yml");
    std::fs::write(
        &yml,
        format!(
            "kernel:\n  image: baleen/audit-kernel:1\n  cmdline: console=ttyS0\n  tar: none\n\
             init:\n  - baleen/audit-init:1\n  - {tag}\nonboot:\n  - name: hello\n    image: {tag}\n"
        ),
    )
    .unwrap();
    (t, cache, yml)
}

fn build(cache: &Path, yml: &Path, dir: &Path, formats: &str, extra: &[&str]) {
    let mut args = vec!["build", "--dir", s(dir), "-f", formats];
    args.extend_from_slice(extra);
    args.push(s(yml));
    let out = baleen(cache, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn every_output_family_gives_the_packages_of_its_yaml() {
    let (t, cache, yml) = system();
    let efi = Path::new(STUB).is_file();
    assert!(efi || !baleen_testkit::tools_required(), "{STUB} missing: install systemd-boot-efi");
    let from_yaml = baleen(&cache, &["audit", "--json", s(&yml)]);
    let expected = packages(&from_yaml);
    assert_eq!(
        expected,
        BTreeSet::from(["amd64 baleen-hello 1.0".to_owned(), "amd64 libbaleen 1.5".to_owned()]),
        "{}",
        text(&from_yaml)
    );

    let (a, b, c) = (t.path().join("a"), t.path().join("b"), t.path().join("c"));
    let mut outputs = vec![a.join("sys-initrd.img"), a.join("sys-initrd.tar")];
    let mut formats = "kernel+initrd,tar-kernel-initrd".to_owned();
    if efi {
        formats.push_str(",iso-efi,iso-efi-initrd,raw-efi,qcow2-efi,vhd,vmdk,gcp,uki");
        formats.push_str(",aws,raw-bios,qcow2-bios,iso-bios");
        for o in ["sys-efi.iso", "sys-efi-initrd.iso", "sys-efi.img", "sys-efi.qcow2"] {
            outputs.push(a.join(o));
        }
        for o in ["sys.raw", "sys-bios.img", "sys.qcow2", "sys.iso"] {
            outputs.push(a.join(o));
        }
        for o in ["sys.vhd", "sys.vmdk", "sys.img.tar.gz", "sys.efi"] {
            outputs.push(a.join(o));
        }
    }
    build(&cache, &yml, &a, &formats, &[]);
    build(&cache, &yml, &b, "kernel+squashfs", &[]);
    outputs.push(b.join("sys-squashfs.img"));
    build(&cache, &yml, &c, "kernel+erofs", &[]);
    outputs.push(c.join("sys-erofs.img"));
    // kernel+iso: the tree is the ISO's own files.
    let i = t.path().join("i");
    build(&cache, &yml, &i, "kernel+iso", &[]);
    outputs.push(i.join("sys.iso"));
    // A zstd initrd, in one stream: its first block is larger than gzip's first bytes.
    let z = t.path().join("z");
    build(&cache, &yml, &z, "kernel+initrd", &["--compress", "zstd", "--initrd-layout", "single"]);
    outputs.push(z.join("sys-initrd.img"));
    if efi {
        // The ESP's UKI holds the stage-1 initrd only: the SBOM is in the root partition.
        let r = t.path().join("r");
        build(&cache, &yml, &r, "raw-efi", &["--root", "squashfs"]);
        outputs.push(r.join("sys-efi.img"));
        // A dynamic VHD (its name is a fixed one's): read back through its block table.
        let v = t.path().join("v");
        build(&cache, &yml, &v, "dynamic-vhd", &[]);
        outputs.push(v.join("sys.vhd"));
    }
    for o in &outputs {
        let out = baleen(&cache, &["audit", "--json", s(o)]);
        // Debian's keys do not sign the private archive: exit 2, and the packages are listed.
        assert_eq!(out.status.code(), Some(2), "{}: {}", o.display(), text(&out));
        assert_eq!(packages(&out), expected, "{}: {}", o.display(), text(&out));
    }

    // With the archive's keyring, the packages are checked: baleen-hello 1.0 is superseded by
    // the fixture's bookworm-security 1.1, from the YAML and from the output alike.
    let key = fixture().join("test-key.gpg");
    for input in [yml.clone(), a.join("sys-initrd.img")] {
        let out = baleen(&cache, &["audit", "--keyring", s(&key), s(&input)]);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(1), "{}: {shown}", input.display());
        assert!(!shown.contains("no valid signature"), "{shown}");
        assert!(
            shown.contains(
                "amd64 baleen-hello 1.0 (bookworm): SUPERSEDED by 1.1 in bookworm-security \
                 [DSA-9999-1, CVE-2099-0001]"
            ) && shown.contains("amd64 libbaleen 1.5 (bookworm): up to date"),
            "{}: {shown}",
            input.display()
        );
    }
    // A keyring that is no keyring is refused, naming it.
    let out = baleen(&cache, &["audit", "--keyring", s(&yml), s(&yml)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains(&format!("--keyring {}: no OpenPGP public key", yml.display())));
}

#[test]
fn a_damaged_output_a_kernel_and_no_sbom_are_exit_2_saying_why() {
    let (t, cache, yml) = system();
    let a = t.path().join("a");
    build(&cache, &yml, &a, "kernel+initrd", &[]);
    let audit = |p: &Path| {
        let out = baleen(&cache, &["audit", s(p)]);
        assert_eq!(out.status.code(), Some(2), "{}: {}", p.display(), text(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // The stand-in kernel is text: a real one is told by its boot header ("HdrS" at 0x202),
    // though its boot sector ends in 0x55AA as an MBR does.
    let kernel = t.path().join("vmlinuz");
    let mut bz = vec![0u8; 8192];
    bz[0x202..0x206].copy_from_slice(b"HdrS");
    bz[510..512].copy_from_slice(&[0x55, 0xaa]);
    std::fs::write(&kernel, bz).unwrap();
    let err = audit(&kernel);
    assert!(err.contains("is a kernel, which holds no file of the system"), "{err}");
    let err = audit(&a.join("sys-kernel"));
    assert!(err.contains("no sbom.spdx.json found (looked into: nothing"), "{err}");

    // The initrd cut short: the error names the output and where the initrd broke.
    let initrd = std::fs::read(a.join("sys-initrd.img")).unwrap();
    let cut = t.path().join("cut-initrd.img");
    std::fs::write(&cut, &initrd[..initrd.len() / 2]).unwrap();
    let err = audit(&cut);
    assert!(
        err.contains(&format!(
            "could not check: auditing {p}: {p}: reading it as an initrd",
            p = cut.display()
        )),
        "{err}"
    );

    // Built without an SBOM: not found, saying what was looked into.
    let n = t.path().join("n");
    build(&cache, &yml, &n, "kernel+initrd", &["--no-sbom"]);
    let p = n.join("sys-initrd.img");
    let err = audit(&p);
    assert!(
        err.contains(&format!(
            "{p}: no sbom.spdx.json found (looked into: {p}: initrd)",
            p = p.display()
        )),
        "{err}"
    );
    // Not an output at all.
    let junk = t.path().join("junk.img");
    std::fs::write(&junk, [7u8; 5000]).unwrap();
    assert!(audit(&junk).contains("no sbom.spdx.json found"));

    if Path::new(STUB).is_file() {
        // Not found in a disk: each place looked into is named, down to the UKI's initrd.
        build(&cache, &yml, &n, "raw-efi", &["--no-sbom"]);
        let p = n.join("sys-efi.img");
        let err = audit(&p);
        let uki = format!("{}, partition 1 (\"ESP\"), file EFI/BOOT/BOOTX64.EFI", p.display());
        assert!(err.contains(&format!("{uki}: PE file; {uki}, section .initrd: initrd")), "{err}");
        // A qcow2 whose header is damaged: the container is named.
        build(&cache, &yml, &a, "qcow2-efi", &[]);
        let mut q = std::fs::read(a.join("sys-efi.qcow2")).unwrap();
        q[24..32].copy_from_slice(&u64::MAX.to_be_bytes());
        let bad = t.path().join("bad.qcow2");
        std::fs::write(&bad, q).unwrap();
        let err = audit(&bad);
        assert!(err.contains("reading its raw disk back as qcow2"), "{err}");
    }
}
