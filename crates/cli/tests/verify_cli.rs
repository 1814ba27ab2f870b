//! `baleen verify` as a third party runs it: a fresh build of tar, kernel+initrd and raw-efi is
//! `identical` (exit 0); built from a YAML with one `files:` entry changed, each output names
//! that file (exit 1), inside the tar, the initrd's cpio and the UKI in the ESP of the disk and
//! of the EFI ISO; a lock
//! written by `build --lock` pins the images, so a tag moved since the build is no difference;
//! a YAML that no longer builds is exit 2 with the reason; a signed UKI compares equal with its
//! signature left out when the key is not given.

use baleen_testkit::image::ImageBuilder;
use baleen_testkit::layers::{dir, file_mode};
use std::path::Path;
use std::process::{Command, Output};

const STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

const YAML: &str = r#"
kernel:
  image: baleen/verify-kernel:1
  cmdline: console=ttyS0
  tar: none
init:
  - baleen/verify-init:1
services:
  - name: svc
    image: baleen/verify-svc:1
files:
  - path: etc/motd
    contents: "hello\n"
"#;

fn svc_image(body: &[u8]) -> baleen_testkit::image::BuiltImage {
    ImageBuilder::new()
        .layer(&[file_mode("bin/svc", body, 0o755)])
        .config(serde_json::json!({"Cmd": ["/bin/svc"]}))
        .build()
}

fn store(at: &Path) {
    ImageBuilder::new()
        .layer(&[file_mode("kernel", &b"not really a kernel ".repeat(64), 0o644)])
        .build()
        .write_layout(at, "docker.io/baleen/verify-kernel:1");
    ImageBuilder::new()
        // A stand-in that names the stage-1 marker: `--root` builds check for it.
        .layer(&[file_mode("init", b"#!/bin/init /etc/baleen-stage1\n", 0o755), dir("etc")])
        .build()
        .write_layout(at, "docker.io/baleen/verify-init:1");
    svc_image(b"svc one").write_layout(at, "docker.io/baleen/verify-svc:1");
}

fn baleen(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baleen"))
        .current_dir(dir)
        .args(args)
        .env_remove("BALEEN_CACHE")
        .env_remove("BALEEN_SIGN_KEY")
        .env_remove("BALEEN_SIGN_CERT")
        .env("TMPDIR", dir)
        .output()
        .unwrap()
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tmp dir with the store, `sys.yml`, and the formats built into `out/` with `--lock`.
fn built(formats: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    store(&tmp.path().join("cache"));
    std::fs::write(tmp.path().join("sys.yml"), YAML).unwrap();
    let out = baleen(
        tmp.path(),
        &[
            "build", "--cache", "cache", "--dir", "out", "--lock", "sys.lock", "-f", formats,
            "sys.yml",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    tmp
}

fn have_stub() -> bool {
    if Path::new(STUB).is_file() {
        return true;
    }
    assert!(!baleen_testkit::tools_required(), "{STUB} missing: install systemd-boot-efi");
    eprintln!("skipping the raw-efi part: {STUB} is not installed");
    false
}

fn verify(tmp: &Path, outputs: &[&str], extra: &[&str]) -> Output {
    let mut args = vec!["verify", "--cache", "cache"];
    args.extend_from_slice(extra);
    args.extend_from_slice(outputs);
    args.extend_from_slice(&["--", "sys.yml"]);
    baleen(tmp, &args)
}

#[test]
fn a_fresh_build_is_identical() {
    let efi = have_stub();
    let tmp = built("tar");
    let out = verify(tmp.path(), &["out/sys.tar"], &["--lock", "sys.lock"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(stdout(&out), "out/sys.tar: identical\n");

    // kernel+initrd (and raw-efi) in one build, checked together.
    let formats = if efi { "kernel+initrd,raw-efi,iso-efi" } else { "kernel+initrd" };
    let out = baleen(
        tmp.path(),
        &["build", "--cache", "cache", "--dir", "kb", "--name", "sys", "-f", formats, "sys.yml"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut outputs = vec!["kb/sys-kernel", "kb/sys-initrd.img", "kb/sys-cmdline"];
    if efi {
        outputs.extend(["kb/sys-efi.img", "kb/sys-efi.iso"]);
    }
    let out = verify(tmp.path(), &outputs, &["--lock", "sys.lock"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for o in outputs {
        assert!(stdout(&out).contains(&format!("{o}: identical\n")), "{o}: {}", text(&out));
    }
}

#[test]
fn one_changed_file_is_named_in_every_format() {
    let efi = have_stub();
    let tmp = built("tar");
    let formats = if efi { "kernel+initrd,raw-efi,iso-efi" } else { "kernel+initrd" };
    let out = baleen(
        tmp.path(),
        &["build", "--cache", "cache", "--dir", "kb", "--name", "sys", "-f", formats, "sys.yml"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The YAML changes after the build: one files: entry's contents.
    std::fs::write(tmp.path().join("sys.yml"), YAML.replace("hello\\n", "HELLO\\n")).unwrap();

    let out = verify(tmp.path(), &["out/sys.tar"], &["--lock", "sys.lock"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(stdout(&out), "out/sys.tar: differs: etc/motd: content differs (both 6 bytes)\n");

    let mut outputs = vec!["kb/sys-kernel", "kb/sys-initrd.img"];
    if efi {
        outputs.extend(["kb/sys-efi.img", "kb/sys-efi.iso"]);
    }
    let out = verify(tmp.path(), &outputs, &["--lock", "sys.lock"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = stdout(&out);
    assert!(s.contains("kb/sys-kernel: identical\n"), "{s}");
    assert!(
        s.contains("kb/sys-initrd.img: differs: etc/motd: content differs (both 6 bytes)\n"),
        "{s}"
    );
    if efi {
        assert!(
            s.contains(
                "kb/sys-efi.img: differs: partition 1 (\"ESP\"): file EFI/BOOT/BOOTX64.EFI: PE \
                 section .initrd:"
            ),
            "{s}"
        );
        assert!(
            s.contains(
                "kb/sys-efi.iso: differs: ISO file /BOOT/EFIBOOT.IMG: file EFI/BOOT/BOOTX64.EFI: \
                 PE section .initrd:"
            ),
            "{s}"
        );
    }
}

#[test]
fn the_lock_pins_images_whose_tag_moved() {
    let tmp = built("tar");
    // The tag now names another image; the build's is still in the cache.
    svc_image(b"svc two").write_layout(&tmp.path().join("cache"), "docker.io/baleen/verify-svc:1");

    let out = verify(tmp.path(), &["out/sys.tar"], &["--lock", "sys.lock"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = verify(tmp.path(), &["out/sys.tar"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: no --lock"), "{}", text(&out));
    assert_eq!(
        stdout(&out),
        "out/sys.tar: differs: containers/services/svc/lower/bin/svc: content differs (both 7 \
         bytes)\n"
    );
    // The lock itself is the same bytes when the same build runs again.
    let lock = std::fs::read(tmp.path().join("sys.lock")).unwrap();
    let text_lock = String::from_utf8(lock.clone()).unwrap();
    assert!(text_lock.contains("\"image\": \"baleen/verify-svc:1\""), "{text_lock}");
}

#[test]
fn what_cannot_be_rebuilt_is_exit_2_with_the_reason() {
    let tmp = built("tar");
    // A YAML that no longer builds: an image the lock does not name.
    let broken = YAML.replace("baleen/verify-svc:1", "baleen/verify-other:1");
    std::fs::write(tmp.path().join("sys.yml"), broken).unwrap();
    let out = verify(tmp.path(), &["out/sys.tar"], &["--lock", "sys.lock"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: could not rebuild"), "{stderr}");
    assert!(
        stderr.contains("baleen/verify-other:1") && stderr.contains("not in the lock file"),
        "{stderr}"
    );
    assert!(stdout(&out).is_empty(), "{}", text(&out));

    // An invalid YAML.
    std::fs::write(tmp.path().join("sys.yml"), "services: 3\n").unwrap();
    let out = verify(tmp.path(), &["out/sys.tar"], &["--lock", "sys.lock"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // A file that is no output of baleen build.
    std::fs::write(tmp.path().join("sys.yml"), YAML).unwrap();
    let out = verify(tmp.path(), &["notes.txt"], &["--lock", "sys.lock"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("notes.txt: not a file name"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_signed_uki_is_compared_unsigned_without_the_key_and_whole_with_it() {
    if !have_stub() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some((key, cert)) = baleen_testkit::signing::key_pair(
        tmp.path(),
        "db",
        baleen_testkit::signing::KeyKind::Rsa2048,
    ) else {
        return;
    };
    store(&tmp.path().join("cache"));
    std::fs::write(tmp.path().join("sys.yml"), YAML).unwrap();
    let (key, cert) = (key.to_str().unwrap(), cert.to_str().unwrap());
    let sign = ["--sign-key", key, "--sign-cert", cert];
    let mut args =
        vec!["build", "--cache", "cache", "--dir", "out", "--lock", "sys.lock", "-f", "uki"];
    args.extend_from_slice(&sign);
    args.push("sys.yml");
    let out = baleen(tmp.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = verify(tmp.path(), &["out/sys.efi"], &["--lock", "sys.lock"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).starts_with("out/sys.efi: identical once unsigned"), "{}", text(&out));

    let with_key = [&["--lock", "sys.lock"][..], &sign].concat();
    let out = verify(tmp.path(), &["out/sys.efi"], &with_key);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(stdout(&out), "out/sys.efi: identical\n");

    std::fs::write(tmp.path().join("sys.yml"), YAML.replace("hello\\n", "HELLO\\n")).unwrap();
    let out = verify(tmp.path(), &["out/sys.efi"], &["--lock", "sys.lock"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout(&out).starts_with("out/sys.efi: differs: PE section .initrd: content differs"),
        "{}",
        text(&out)
    );
}

#[test]
fn help_says_what_is_compared_and_what_the_exit_codes_mean() {
    let tmp = tempfile::tempdir().unwrap();
    let out = baleen(tmp.path(), &["verify", "--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let help = stdout(&out);
    for says in [
        "--lock <FILE>",
        "baleen build --lock FILE",
        "the path in the tree",
        "the PE section",
        "identical once unsigned",
        "Exit status: 0 every OUTPUT identical, 1 one differs, 2 could not rebuild",
        "docs/verify.md",
    ] {
        assert!(help.contains(says), "--help lacks {says:?}:\n{help}");
    }
}

#[test]
fn a_mode_or_a_missing_file_is_told_as_such() {
    let tmp = built("tar");
    let yml = tmp.path().join("sys.yml");
    std::fs::write(&yml, YAML.replace("    contents:", "    mode: \"0644\"\n    contents:"))
        .unwrap();
    let out = verify(tmp.path(), &["out/sys.tar"], &["--lock", "sys.lock"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        stdout(&out),
        // The first difference in the tar's order: the parent directory LinuxKit makes with
        // the file's mode plus x bits comes before the file.
        "out/sys.tar: differs: etc: mode differs: output 0700, rebuild 0755\n"
    );

    let without = YAML.split("files:").next().unwrap().to_string();
    std::fs::write(&yml, without).unwrap();
    let out = verify(tmp.path(), &["out/sys.tar"], &["--lock", "sys.lock"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = stdout(&out);
    assert!(s.starts_with("out/sys.tar: differs: etc"), "{s}");
    assert!(s.contains(": present in the output, not in the rebuild"), "{s}");
}

/// Builds `formats` into `kb/` as `sys` with `extra` flags, then changes the motd in the YAML.
fn built_then_changed(formats: &str, extra: &[&str]) -> tempfile::TempDir {
    let tmp = built("tar");
    let mut args = vec!["build", "--cache", "cache", "--dir", "kb", "--name", "sys", "-f", formats];
    args.extend_from_slice(extra);
    args.push("sys.yml");
    let out = baleen(tmp.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    std::fs::write(tmp.path().join("sys.yml"), YAML.replace("hello\\n", "HELLO\\n")).unwrap();
    tmp
}

#[test]
fn a_changed_file_is_named_inside_the_root_partition_of_every_container() {
    if !have_stub() {
        return;
    }
    let tmp = built_then_changed("raw-efi,qcow2-efi,vhd,vmdk,gcp", &["--root", "squashfs"]);
    let outputs =
        ["kb/sys-efi.img", "kb/sys-efi.qcow2", "kb/sys.vhd", "kb/sys.vmdk", "kb/sys.img.tar.gz"];
    let out = verify(tmp.path(), &outputs, &["--lock", "sys.lock", "--root", "squashfs"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = stdout(&out);
    for o in outputs {
        let line = s
            .lines()
            .find(|l| l.starts_with(&format!("{o}: ")))
            .unwrap_or_else(|| panic!("{o}: {s}"));
        // Both partitions differ: the root names the file, and the UKI in the ESP its
        // command line, whose root=PARTUUID= is derived from the root's content.
        let inside = if o == "kb/sys-efi.img" { "" } else { "in the raw disk: " };
        assert!(
            line.starts_with(&format!(
                "{o}: differs: {inside}partition 1 (\"ESP\"): file EFI/BOOT/BOOTX64.EFI: PE \
                 section .cmdline: content differs"
            )),
            "{line}"
        );
        assert!(
            line.ends_with(
                "; partition 2 (\"root-x86-64\"): squashfs etc/motd: content differs (both 6 \
                 bytes)"
            ),
            "{line}"
        );
    }
    // Unchanged, the same outputs are identical, and the root partition needs --root to be
    // rebuilt as it was.
    std::fs::write(tmp.path().join("sys.yml"), YAML).unwrap();
    let out = verify(tmp.path(), &outputs[..2], &["--lock", "sys.lock", "--root", "squashfs"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = verify(tmp.path(), &outputs[..1], &["--lock", "sys.lock"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn a_changed_file_is_named_inside_the_fat_volume_of_every_container_and_iso() {
    if !have_stub() {
        return;
    }
    let formats = "qcow2-efi,vhd,vmdk,gcp,aws,iso-efi-initrd,raw-bios,qcow2-bios";
    let tmp = built_then_changed(formats, &[]);
    let outputs = [
        "kb/sys-efi.qcow2",
        "kb/sys.vhd",
        "kb/sys.vmdk",
        "kb/sys.img.tar.gz",
        "kb/sys.raw",
        "kb/sys-efi-initrd.iso",
        "kb/sys-bios.img",
        "kb/sys.qcow2",
    ];
    let out = verify(tmp.path(), &outputs, &["--lock", "sys.lock"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = stdout(&out);
    let line = |o: &str| {
        s.lines().find(|l| l.starts_with(&format!("{o}: "))).unwrap_or_else(|| panic!("{o}: {s}"))
    };
    assert!(
        line("kb/sys-efi.qcow2").starts_with(
            "kb/sys-efi.qcow2: differs: in the raw disk: partition 1 (\"ESP\"): file \
             EFI/BOOT/BOOTX64.EFI: PE section .initrd: content differs"
        ),
        "{s}"
    );
    // The hybrid disks' FAT partition holds SYSLINUX's files, the kernel, the initrd and the
    // UKI: the first that differs is named.
    let uki =
        "partition 1 (\"ESP\"): file EFI/BOOT/BOOTX64.EFI: PE section .initrd: content differs";
    for o in ["kb/sys.vhd", "kb/sys.vmdk", "kb/sys.img.tar.gz"] {
        let l = line(o);
        assert!(l.starts_with(&format!("{o}: differs: in the raw disk: {uki}")), "{l}");
    }
    assert!(line("kb/sys.raw").starts_with(&format!("kb/sys.raw: differs: {uki}")), "{s}");
    // raw-bios and qcow2-bios: an MBR disk whose FAT partition holds the kernel and the
    // compressed initrd. The initrd is segmented: the changed file changes the bytes of the
    // `files` segment only, at the same length.
    for (o, inside) in [("kb/sys-bios.img", ""), ("kb/sys.qcow2", "in the raw disk: ")] {
        let want = format!(
            "{o}: differs: {inside}partition 1 (\"MBR entry 1, type 0x0e\"): file INITRD.IMG: \
             content differs"
        );
        assert!(line(o).starts_with(&want), "{s}");
    }
    assert!(
        line("kb/sys-efi-initrd.iso").starts_with(
            "kb/sys-efi-initrd.iso: differs: ISO file /BOOT/EFIBOOT.IMG: file \
             EFI/BOOT/BOOTX64.EFI: PE section .initrd: content differs"
        ),
        "{s}"
    );
}

#[test]
fn a_changed_file_is_named_inside_squashfs_and_erofs_root_images() {
    let tmp = built("tar");
    for (dir, format, extra) in
        [("kb", "kernel+squashfs", None), ("ke", "kernel+erofs", Some("--verity"))]
    {
        let mut args =
            vec!["build", "--cache", "cache", "--dir", dir, "--name", "sys", "-f", format];
        args.extend(extra);
        args.push("sys.yml");
        let out = baleen(tmp.path(), &args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    std::fs::write(tmp.path().join("sys.yml"), YAML.replace("hello\\n", "HELLO\\n")).unwrap();

    let out = verify(tmp.path(), &["kb/sys-squashfs.img"], &["--lock", "sys.lock"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        stdout(&out),
        "kb/sys-squashfs.img: differs: etc/motd: content differs (both 6 bytes)\n"
    );
    // The verity hash tree after the filesystem differs too; the file is what is named.
    let out = verify(tmp.path(), &["ke/sys-erofs.img"], &["--lock", "sys.lock", "--verity"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        stdout(&out),
        "ke/sys-erofs.img: differs: etc/motd: content differs (both 6 bytes)\n"
    );
}

/// Files under `dir`, recursively (0 when it does not exist).
fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.map(|e| e.unwrap().path()).map(|p| if p.is_dir() { files_under(&p) } else { 1 }).sum()
}

/// From a security review: verify's rebuild used the store's segment cache, so a segment
/// tampered in the store (its blob and its record rewritten together) would be spliced into
/// the rebuild as into the output, and verify would call a poisoned initrd identical. The
/// rebuild neither reads nor writes the cache: after verify, the emptied cache stays empty.
#[test]
fn verify_rebuilds_without_the_segment_cache() {
    let tmp = built("kernel+initrd");
    let derived = tmp.path().join("cache/derived");
    assert!(files_under(&derived) > 0, "the build caches its segments");
    std::fs::remove_dir_all(&derived).unwrap();
    let outputs = ["out/sys-kernel", "out/sys-initrd.img", "out/sys-cmdline"];
    let out = verify(tmp.path(), &outputs, &["--lock", "sys.lock"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(files_under(&derived), 0, "verify touched the segment cache");
}
