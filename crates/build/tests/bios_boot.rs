//! The BIOS disk formats end to end: the spine system built by the pipeline into `raw-bios`,
//! `qcow2-bios` and the hybrid `aws` disk; each byte-identical across two builds, checked by
//! sfdisk, sgdisk, qemu-img and mtools, sized by `--size`, and booted under SeaBIOS (TCG) to
//! the spine's markers — three boots in all. (The hybrid disks' OVMF boots are in disk.rs.)

use baleen_build::Format;
use baleen_oci::Store;
use baleen_testkit::boot::BootTest;
use baleen_testkit::image::ImageBuilder;
use baleen_testkit::layers::{dir, file};
use baleen_testkit::Chain;
use common::{boots_to_services, build_into, run, spine_config, spine_store, try_build};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;

const STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";
const MIB: u64 = 1 << 20;

/// The spine system's store, or None (skipped) when the kernel, busybox, SYSLINUX or the stub
/// (for the hybrid aws disk's UKI) are missing.
fn setup(tmp: &Path) -> Option<(baleen_spec::Config, Store)> {
    baleen_testkit::require_tool("busybox")?;
    baleen_testkit::require_tool("syslinux")?;
    if !Path::new(STUB).is_file() {
        assert!(!baleen_testkit::tools_required(), "{STUB} missing: install systemd-boot-efi");
        eprintln!("skipping: {STUB} is not installed");
        return None;
    }
    let kernel = baleen_testkit::kernel::debian_cloud_kernel()?;
    let store = spine_store(&tmp.join("store"), &kernel);
    Some((spine_config(), store))
}

const FORMATS: &[Format] = &[Format::KernelInitrd, Format::RawBios, Format::Qcow2Bios, Format::Aws];

/// One build checked and booted, a second compared with it: byte-identical outputs, the
/// reference tools' verdicts, the build's kernel/initrd/cmdline read back from the disks, then
/// one SeaBIOS boot per format: raw-bios (mbr.bin → SYSLINUX), qcow2-bios (the same disk
/// through qemu's qcow2 driver) and aws (gptmbr.bin → SYSLINUX on the hybrid disk's ESP).
#[test]
fn bios_formats_are_reproducible_pass_the_checkers_and_boot_under_seabios() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((cfg, store)) = setup(tmp.path()) else { return };
    let a = build_into(&cfg, &store, FORMATS, &tmp.path().join("a"));
    let b = build_into(&cfg, &store, FORMATS, &tmp.path().join("b"));
    let names: Vec<_> =
        a.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(
        names,
        [
            "spine-kernel",
            "spine-initrd.img",
            "spine-cmdline",
            "spine-bios.img",
            "spine.qcow2",
            "spine.raw"
        ]
    );
    for (x, y) in a.iter().zip(&b) {
        assert!(std::fs::read(x).unwrap() == std::fs::read(y).unwrap(), "{} differs", x.display());
    }
    let (raw_bios, qcow2, aws) = (&a[3], &a[4], &a[5]);
    // Without --size: LinuxKit's 1 GiB (sparse), for the fixed-size disks only.
    assert_eq!(std::fs::metadata(aws).unwrap().len(), 1 << 30, "aws defaults to 1 GiB");
    assert!(std::fs::metadata(raw_bios).unwrap().len() < 1 << 30, "raw-bios keeps its size");
    if let Some(sfdisk) = baleen_testkit::require_tool("sfdisk") {
        let text = run(Command::new(sfdisk).arg("-d").arg(raw_bios));
        assert!(text.contains("start=        2048") && text.contains("bootable"), "{text}");
    }
    if let Some(sgdisk) = baleen_testkit::require_tool("sgdisk") {
        let text = run(Command::new(&sgdisk).arg("-v").arg(aws));
        assert!(text.contains("No problems found"), "{text}");
        let text = run(Command::new(&sgdisk).args(["-i", "1"]).arg(aws));
        assert!(text.contains("Attribute flags: 0000000000000004"), "{text}");
    }
    if let Some(qemu_img) = baleen_testkit::require_tool("qemu-img") {
        run(Command::new(&qemu_img).arg("check").arg(qcow2));
        let info = run(Command::new(&qemu_img).args(["info", "--output=json"]).arg(qcow2));
        assert!(
            info.contains("\"virtual-size\": 1073741824"),
            "qcow2-bios defaults to 1 GiB: {info}"
        );
        // qcow2-bios holds the raw-bios disk.
        run(Command::new(&qemu_img)
            .args(["compare", "-f", "qcow2", "-F", "raw"])
            .arg(qcow2)
            .arg(raw_bios));
    }
    if let Some(mcopy) = baleen_testkit::require_tool("mcopy") {
        read_back(&mcopy, &a, tmp.path());
    }
    let Some(_) = baleen_testkit::require_tool("qemu-system-x86_64") else { return };
    for (name, path) in [("raw-bios", raw_bios), ("qcow2-bios", qcow2), ("aws-bios", aws)] {
        let Some(vm) = BootTest::path(name, path) else { return };
        boots_to_services(vm);
    }
}

/// The build's kernel, initrd and command line, read back from the raw-bios and aws disks.
fn read_back(mcopy: &Path, a: &[PathBuf], tmp: &Path) {
    let (kernel, initrd, raw_bios, aws) = (&a[0], &a[1], &a[3], &a[5]);
    for disk in [raw_bios, aws] {
        let spec = format!("{}@@1M", disk.display());
        for (name, want) in [("KERNEL", kernel), ("INITRD.IMG", initrd)] {
            let back = tmp.join("back");
            run(Command::new(mcopy)
                .arg("-n")
                .arg("-i")
                .arg(&spec)
                .arg(format!("::{name}"))
                .arg(&back));
            assert!(
                std::fs::read(&back).unwrap() == std::fs::read(want).unwrap(),
                "{name} on {} is the build's",
                disk.display()
            );
        }
        let back = tmp.join("cfg");
        run(Command::new(mcopy).arg("-n").arg("-i").arg(&spec).arg("::SYSLINUX.CFG").arg(&back));
        let cfg_text = std::fs::read_to_string(&back).unwrap();
        let cmdline = std::fs::read_to_string(&a[2]).unwrap();
        assert!(cfg_text.contains(&format!("APPEND {cmdline}\n")), "{cfg_text}");
    }
}

#[test]
fn size_fixes_the_disk_length_and_refuses_too_small() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((cfg, store)) = setup(tmp.path()) else { return };
    let size = 300 * MIB;
    let out = try_build(
        &cfg,
        &store,
        &[Format::RawBios, Format::Qcow2Bios, Format::Aws],
        &tmp.path().join("a"),
        Some(size),
    )
    .unwrap();
    let (raw_bios, qcow2, aws) = (&out[0], &out[1], &out[2]);
    assert!(std::fs::metadata(raw_bios).unwrap().len() < size, "--size leaves raw-bios alone");
    assert_eq!(std::fs::metadata(aws).unwrap().len(), size, "aws is --size long");
    if let Some(qemu_img) = baleen_testkit::require_tool("qemu-img") {
        let info = run(Command::new(&qemu_img).args(["info", "--output=json"]).arg(qcow2));
        assert!(info.contains(&format!("\"virtual-size\": {size}")), "{info}");
        run(Command::new(&qemu_img).arg("check").arg(qcow2));
        // The raw-bios disk, then zeros.
        run(Command::new(&qemu_img)
            .args(["compare", "-f", "qcow2", "-F", "raw"])
            .arg(qcow2)
            .arg(raw_bios));
    }
    if let Some(sgdisk) = baleen_testkit::require_tool("sgdisk") {
        let text = run(Command::new(&sgdisk).arg("-v").arg(aws));
        assert!(text.contains("No problems found"), "the backup GPT moved to the end: {text}");
    }
    let err = try_build(&cfg, &store, &[Format::Qcow2Bios], &tmp.path().join("b"), Some(8 * MIB))
        .unwrap_err()
        .chain();
    assert!(err.contains("the disk needs") && err.contains("more than the 8388608 bytes"), "{err}");
}

/// A `baleen/isolinux` component in the store wins over the host's SYSLINUX.
#[test]
fn syslinux_comes_from_the_isolinux_component_when_the_store_has_one() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((cfg, _)) = setup(tmp.path()) else { return };
    let host = |p: &str| std::fs::read(Path::new("/").join(p)).unwrap();
    let mut mbr = host("usr/lib/syslinux/mbr/mbr.bin");
    mbr[..6].copy_from_slice(b"BALEEN");
    ImageBuilder::new()
        .layer(&[
            dir("usr/"),
            dir("usr/bin/"),
            file("usr/bin/syslinux", &host("usr/bin/syslinux")),
            dir("usr/lib/"),
            dir("usr/lib/syslinux/"),
            dir("usr/lib/syslinux/mbr/"),
            file("usr/lib/syslinux/mbr/mbr.bin", &mbr),
            file("usr/lib/syslinux/mbr/gptmbr.bin", &host("usr/lib/syslinux/mbr/gptmbr.bin")),
        ])
        .build()
        .write_layout(&tmp.path().join("store"), "docker.io/baleen/isolinux:1");
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let out = build_into(&cfg, &store, &[Format::RawBios], &tmp.path().join("out"));
    let disk = std::fs::read(&out[0]).unwrap();
    assert_eq!(&disk[..440], &mbr[..], "the component's mbr.bin was used");
}

/// FAT32 with 4 KiB clusters, which only volumes over 260 MiB get: the spine's hybrid disk
/// written again on a 300 MiB partition, then booted through SYSLINUX under SeaBIOS and through
/// OVMF's FAT driver. Two boots.
#[test]
fn hybrid_disk_with_4_kib_clusters_boots_under_seabios_and_ovmf() {
    use baleen_disk::{write_hybrid_disk_on, BootFiles, DiskLayout};
    use std::fs::File;

    let tmp = tempfile::tempdir().unwrap();
    let Some((cfg, store)) = setup(tmp.path()) else { return };
    let Some(_) = baleen_testkit::require_tool("qemu-system-x86_64") else { return };
    let out =
        build_into(&cfg, &store, &[Format::KernelInitrd, Format::Uki], &tmp.path().join("out"));
    let (kernel, initrd, uki) = (&out[0], &out[1], &out[3]);
    let cmdline = std::fs::read(&out[2]).unwrap();
    let platform = baleen_oci::Platform::new("linux", "amd64", None);
    let loader = baleen_build::bios::require_loader(&store, &platform).unwrap();
    let len = |p: &Path| std::fs::metadata(p).unwrap().len();
    let need = DiskLayout::hybrid(&loader.syslinux, len(kernel), len(initrd), &cmdline, len(uki));
    assert!(need.part_size < 260 * MIB, "the spine alone gets 512-byte clusters");
    let layout = DiskLayout { part_size: 300 * MIB, disk_size: 302 * MIB, ..need };

    let disk = tmp.path().join("big.raw");
    let mut w = std::io::BufWriter::new(File::create(&disk).unwrap());
    let boot = BootFiles {
        kernel: &mut File::open(kernel).unwrap(),
        kernel_len: len(kernel),
        initrd: &mut File::open(initrd).unwrap(),
        initrd_len: len(initrd),
        cmdline: &cmdline,
    };
    write_hybrid_disk_on(
        &loader,
        boot,
        &mut File::open(uki).unwrap(),
        len(uki),
        b"big",
        layout,
        &mut w,
    )
    .unwrap();
    drop(w);
    let mut bpb = [0u8; 14];
    std::os::unix::fs::FileExt::read_exact_at(&File::open(&disk).unwrap(), &mut bpb, MIB).unwrap();
    assert_eq!(bpb[13], 8, "4 KiB clusters");

    for (name, uefi) in [("big-bios", false), ("big-efi", true)] {
        let mut opts = baleen_testkit::boot::test_options(&disk, &BootTest::scratch_dir(name));
        opts.uefi = uefi;
        let Some(vm) = BootTest::with_options(name, opts, std::time::Duration::from_secs(300))
        else {
            return;
        };
        boots_to_services(vm);
    }
}
