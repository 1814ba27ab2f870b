//! `baleen build --arch arm64 -f rpi4`: the Raspberry Pi 4 SD card, tested by its structure
//! (there is no Pi here): an MBR with one FAT32 partition at 4 MiB that `fsck.vfat` passes, the
//! files the firmware reads (listed and read back by mtools, an independent FAT reader), the
//! same bytes from two builds; refused for amd64, and without a device tree in the kernel image.
//! The components are stand-ins in a local image cache: the firmware files and the device tree
//! only need to be copied, not run.

use baleen_testkit::image::ImageBuilder;
use baleen_testkit::layers::{file, file_mode};
use std::path::Path;
use std::process::{Command, Output};

const YAML: &str = "kernel:\n  image: baleen/pi-kernel:1\n  cmdline: console=ttyS1,115200 \
                    console=tty1\n  tar: none\ninit:\n  - baleen/pi-init:1\n";
const KERNEL: &[u8] = b"arm64 Image bytes";
const DTB: &[u8] = b"\xd0\x0d\xfe\xed the Pi 4 B's device tree";

fn arm64() -> ImageBuilder {
    ImageBuilder::new().platform("linux", "arm64", None)
}

/// The kernel (with the device tree when `dtb`), the init and the firmware component.
fn store(at: &Path, dtb: bool) {
    let mut kernel = vec![file("kernel", KERNEL)];
    if dtb {
        kernel.push(file("dtbs/broadcom/bcm2711-rpi-4-b.dtb", DTB));
    }
    arm64().layer(&kernel).build().write_layout(at, "docker.io/baleen/pi-kernel:1");
    arm64()
        .layer(&[file_mode("init", b"#!/bin/init\n", 0o755)])
        .build()
        .write_layout(at, "docker.io/baleen/pi-init:1");
    arm64()
        .layer(&[
            file("usr/lib/raspi-firmware/start4.elf", b"GPU firmware"),
            file("usr/lib/raspi-firmware/fixup4.dat", b"memory map"),
            file("usr/lib/raspi-firmware/start.elf", b"the Pi 3's, not taken"),
        ])
        .build()
        .write_layout(at, "docker.io/baleen/rpi-firmware:1");
}

fn baleen(dir: &Path, args: &[&str]) -> Output {
    std::fs::write(dir.join("pi.yml"), YAML).unwrap();
    Command::new(env!("CARGO_BIN_EXE_baleen"))
        .current_dir(dir)
        .args(["build", "--cache", "cache"])
        .args(args)
        .output()
        .expect("running baleen")
}

fn ok(out: &Output) {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn run(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog).args(args).output().expect(prog);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{prog} {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn an_rpi4_card_is_one_fat32_partition_with_what_the_pi_reads() {
    let tmp = tempfile::tempdir().unwrap();
    store(&tmp.path().join("cache"), true);
    ok(&baleen(tmp.path(), &["--arch", "arm64", "-f", "rpi4", "pi.yml"]));
    ok(&baleen(tmp.path(), &["--arch", "arm64", "-f", "rpi4", "--name", "again", "pi.yml"]));
    let card = std::fs::read(tmp.path().join("pi-rpi4.img")).unwrap();
    assert!(
        card == std::fs::read(tmp.path().join("again-rpi4.img")).unwrap(),
        "two builds give the same bytes"
    );

    // The MBR: one FAT32 (LBA) partition from sector 8192 to the end of the image.
    assert_eq!(&card[510..512], &[0x55, 0xaa]);
    assert_eq!(card[446 + 4], 0x0c, "partition type FAT32 LBA");
    let first = u32::from_le_bytes(card[454..458].try_into().unwrap()) as usize;
    let sectors = u32::from_le_bytes(card[458..462].try_into().unwrap()) as usize;
    assert_eq!(first, 8192);
    assert_eq!((first + sectors) * 512, card.len());
    assert!(card[462..510].iter().all(|b| *b == 0), "one partition");
    let part = tmp.path().join("part.img");
    std::fs::write(&part, &card[first * 512..]).unwrap();
    assert_eq!(&card[first * 512 + 82..first * 512 + 90], b"FAT32   ");

    let Some(fsck) = baleen_testkit::require_tool("fsck.vfat") else { return };
    let report = run(fsck.to_str().unwrap(), &["-n", "-v", part.to_str().unwrap()]);
    assert!(report.contains("2 FATs, 32 bit entries"), "FAT32: {report}");
    let Some(_) = baleen_testkit::require_tool("mdir") else { return };
    let p = part.to_str().unwrap();
    let mut listed: Vec<String> = run("mdir", &["-b", "-i", p, "::"])
        .lines()
        .map(|l| l.trim_start_matches("::/").to_owned())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "bcm2711.dtb",
            "cmdline.txt",
            "config.txt",
            "fixup4.dat",
            "initrd.img",
            "kernel8.img",
            "start4.elf"
        ],
        "the files, named in lower case as the Pi's documentation names them"
    );
    let mtype = |name: &str| run("mtype", &["-i", p, &format!("::{name}")]);
    let config = mtype("config.txt");
    for line in [
        "arm_64bit=1",
        "kernel=kernel8.img",
        "initramfs initrd.img followkernel",
        "device_tree=bcm2711.dtb",
    ] {
        assert!(config.lines().any(|l| l == line), "{line:?} in config.txt:\n{config}");
    }
    assert_eq!(mtype("cmdline.txt"), "console=ttyS1,115200 console=tty1\n");
    assert_eq!(mtype("kernel8.img").as_bytes(), KERNEL);
    assert_eq!(mtype("start4.elf"), "GPU firmware");
    assert_eq!(mtype("fixup4.dat"), "memory map");
    let dtb = Command::new("mtype").args(["-i", p, "::bcm2711.dtb"]).output().unwrap().stdout;
    assert_eq!(dtb, DTB);
    let initrd = Command::new("mtype").args(["-i", p, "::initrd.img"]).output().unwrap().stdout;
    assert!(initrd.len() > 100, "the initrd holds the system");
}

/// `-f rpi4` for amd64 is a usage error before anything is read; for arm64 with a kernel image
/// that has no device tree (Debian's cloud kernel has none), the error names the image and the
/// kernel to use.
#[test]
fn rpi4_needs_arm64_and_a_kernel_with_the_pis_device_tree() {
    let tmp = tempfile::tempdir().unwrap();
    store(&tmp.path().join("cache"), false);
    let out = baleen(tmp.path(), &["--arch", "amd64", "-f", "rpi4", "none.yml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("`rpi4`") && err.contains("--arch arm64"), "{err}");

    let out = baleen(tmp.path(), &["--arch", "arm64", "-f", "rpi4", "pi.yml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("baleen/pi-kernel:1")
            && err.contains("dtbs/broadcom/bcm2711-rpi-4-b.dtb")
            && err.contains("pkg/kernel-rpi"),
        "{err}"
    );
    assert!(!tmp.path().join("pi-rpi4.img").exists(), "no card is left behind");
}
