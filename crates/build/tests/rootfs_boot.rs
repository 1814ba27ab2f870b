//! kernel+squashfs, kernel+erofs and kernel+iso of the spine system, built by the pipeline and
//! booted as `baleen run PREFIX` boots them: Debian's cloud kernel, baleen's stage-1 initrd
//! (which loads virtio-scsi, sd_mod/sr_mod and the filesystem from the kernel image's modules,
//! mounts the root under a tmpfs overlay and execs the root's baleen-init), the image as a
//! virtio-scsi disk (/dev/sda) or, for kernel+iso, CD-ROM (/dev/sr0). Each boot checks onboot, a
//! writable service reading a `files` entry, and a clean poweroff; the outputs are checked first
//! without qemu (the stage-1 initrd's contents, every file identical across two builds).
//! `--verity`: both root formats boot through the verity target, and with one byte of the root
//! changed stop in stage 1 with the verity line and a non-zero verdict. `raw-efi --root
//! squashfs --verity`: a GPT disk with the ESP, a root and a root-verity partition (checked
//! without qemu first), booted under OVMF through the UKI's stage 1, and stopped by one changed
//! byte of the root partition.

use baleen_build::{build, Format, Output, Request};
use baleen_oci::{Platform, Store};
use baleen_testkit::boot::BootTest;
use baleen_testkit::image::ImageBuilder;
use baleen_testkit::layers::{dir, file, tar_layer, TestEntry};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use crate::common;
use common::{spine_store, SPINE_YAML};

/// What stage 1 needs from Debian's modules, with what they depend on (read from `.modinfo`).
const ROOT_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_scsi",
    "sd_mod",
    "squashfs",
    "erofs",
    "overlay",
    "sr_mod",
    "isofs",
    "dm_mod",
    "dm_verity",
];

fn depends(ko: &[u8]) -> Vec<String> {
    let key = b"\0depends=";
    let Some(at) = ko.windows(key.len()).position(|w| w == key) else { return vec![] };
    let rest = &ko[at + key.len()..];
    let end = rest.iter().position(|&b| b == 0).unwrap();
    String::from_utf8_lossy(&rest[..end])
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.replace('-', "_"))
        .collect()
}

/// A kernel image like pkg/kernel's but without modules.dep (the build must read `.modinfo`).
fn rootfs_kernel(store: &Path, kernel: &baleen_testkit::kernel::Kernel) {
    let mut by_name = std::collections::BTreeMap::new();
    let mut stack = vec![kernel.modules.join("kernel")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Some(n) = p.file_name().unwrap().to_str().unwrap().strip_suffix(".ko") {
                by_name.insert(n.replace('-', "_"), p);
            }
        }
    }
    let mut want: Vec<String> = ROOT_MODULES.iter().map(|s| s.to_string()).collect();
    let mut files = BTreeSet::new();
    while let Some(n) = want.pop() {
        let Some(p) = by_name.get(&n) else { continue };
        if files.insert(p.clone()) {
            want.extend(depends(&std::fs::read(p).unwrap()));
        }
    }
    let base = format!("lib/modules/{}", kernel.release);
    let mut entries: Vec<TestEntry> = Vec::new();
    let mut dirs = BTreeSet::new();
    for p in &files {
        let rel = p.strip_prefix(&kernel.modules).unwrap().to_str().unwrap().to_owned();
        let path = format!("{base}/{rel}");
        let parts: Vec<&str> = path.split('/').collect();
        for i in 1..parts.len() {
            let d = format!("{}/", parts[..i].join("/"));
            if dirs.insert(d.clone()) {
                entries.push(dir(&d));
            }
        }
        entries.push(file(&path, &std::fs::read(p).unwrap()));
    }
    ImageBuilder::new()
        .layer(&[
            file("kernel", &std::fs::read(&kernel.vmlinuz).unwrap()),
            file("kernel.tar", &tar_layer(&entries)),
        ])
        .build()
        .write_layout(store, "docker.io/baleen/rootfs-kernel:1");
}

fn build_to(store: &Store, format: Format, out: &Path) {
    build_with(store, format, out, false)
}

fn build_with(store: &Store, format: Format, out: &Path, verity: bool) {
    build_root(store, &[format], out, verity, None)
}

fn build_root(
    store: &Store,
    formats: &[Format],
    out: &Path,
    verity: bool,
    root: Option<baleen_build::RootFs>,
) {
    build_signed(store, formats, out, verity, root, None)
}

fn build_signed(
    store: &Store,
    formats: &[Format],
    out: &Path,
    verity: bool,
    root: Option<baleen_build::RootFs>,
    sign: Option<baleen_build::Signing>,
) {
    let yaml = SPINE_YAML.replace("baleen/spine-kernel:1", "baleen/rootfs-kernel:1");
    let src = baleen_spec::Source { name: "rootfs.yml", text: &yaml, template_dir: None };
    let cfg = baleen_spec::load_all(&[src], None).unwrap_or_else(|d| panic!("{d}"));
    build(&Request {
        sign,
        verity,
        root,
        ..Request::new(
            &cfg,
            store,
            formats.to_vec(),
            Output::Base { dir: out.to_owned(), name: "spine".into() },
            Platform::new("linux", "amd64", None),
        )
    })
    .unwrap_or_else(|e| panic!("building {formats:?}: {e}"));
}

/// The names in the stage-1 initrd (gzip'd newc cpio).
fn initrd_names(path: &Path) -> Vec<String> {
    let mut cpio = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()),
        &mut cpio,
    )
    .unwrap();
    let mut out = Vec::new();
    let mut at = 0;
    while at + 110 <= cpio.len() && &cpio[at..at + 6] == b"070701" {
        let field = |i: usize| {
            let s = std::str::from_utf8(&cpio[at + 6 + i * 8..at + 14 + i * 8]).unwrap();
            usize::from_str_radix(s, 16).unwrap()
        };
        let (size, namesize) = (field(6), field(11));
        let name = String::from_utf8(cpio[at + 110..at + 110 + namesize - 1].to_vec()).unwrap();
        at = ((at + 110 + namesize).div_ceil(4) * 4 + size).div_ceil(4) * 4;
        if name == "TRAILER!!!" {
            break;
        }
        out.push(name);
    }
    out
}

fn boot_rootfs(format: Format, image_suffix: &str, name: &str, root: &str) {
    let Some(_) = baleen_testkit::require_tool("busybox") else { return };
    let Some(kernel) = baleen_testkit::kernel::debian_cloud_kernel() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let store = spine_store(&tmp.path().join("store"), &kernel);
    rootfs_kernel(&tmp.path().join("store"), &kernel);
    let (out, again) = (tmp.path().join("out"), tmp.path().join("again"));
    build_to(&store, format, &out);
    build_to(&store, format, &again);
    for suffix in ["-kernel", "-cmdline", image_suffix, "-root-initrd.img"] {
        let (a, b) = (out.join(format!("spine{suffix}")), again.join(format!("spine{suffix}")));
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "{suffix} differs between builds"
        );
    }
    let names = initrd_names(&out.join("spine-root-initrd.img"));
    for want in [
        "init",
        "etc/baleen-stage1",
        "kernel/drivers/scsi/virtio_scsi.ko",
        "kernel/drivers/scsi/scsi_mod.ko",
        "modules.dep",
    ] {
        assert!(
            names.iter().any(|n| n == want || n.ends_with(&format!("/{want}"))),
            "{want} in the stage-1 initrd: {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n.contains("containers")),
        "only stage 1 in the initrd: {names:?}"
    );

    let Some(vm) = BootTest::path(name, &out.join("spine")) else { return };
    let t = Duration::from_secs(200);
    vm.wait_for(&format!("baleen: stage1 root {root}"), t);
    vm.wait_for("spine-onboot-ok", t);
    vm.wait_for("writable", t);
    vm.wait_for("spine-files-ok", t);
    let console = vm.wait_for("baleen: poweroff status 0", t);
    // Stage 1 runs first, then the root's own init from the start.
    let at =
        |m: &str| console.find(m).unwrap_or_else(|| panic!("{m:?} on the console:\n{console}"));
    assert!(at("baleen: stage1 started") < at("baleen: stage1 modules loaded"));
    assert!(at("baleen: stage1 root mounted") < at("baleen: stage1 switching root"));
    let second_init = console.rfind("baleen: init started").unwrap();
    assert!(
        at("baleen: stage1 switching root") < second_init,
        "the root's init runs after the switch"
    );
    assert!(at("baleen: phase mounts done") > second_init);
    for l in console.lines().filter(|l| l.contains("baleen: stage1") || l.contains("init started"))
    {
        eprintln!("{name}: {l}");
    }
    let outcome = vm.wait_exit();
    assert_eq!(outcome.verdict.code, 0, "a clean poweroff exits 0: {:?}", outcome.verdict.message);
}

#[test]
fn kernel_squashfs_boots_through_stage1_to_services() {
    boot_rootfs(Format::KernelSquashfs, "-squashfs.img", "rootfs-squashfs", "/dev/sda squashfs");
}

#[test]
fn kernel_erofs_boots_through_stage1_to_services() {
    boot_rootfs(Format::KernelErofs, "-erofs.img", "rootfs-erofs", "/dev/sda erofs");
}

#[test]
fn kernel_iso_boots_through_stage1_from_the_cdrom() {
    boot_rootfs(Format::KernelIso, ".iso", "rootfs-iso", "/dev/sr0 iso9660");
}

/// `--verity` output checked without qemu: two builds identical, the words on `-cmdline`, and
/// `veritysetup verify` accepting the image's own tree at the offset those words give.
fn verity_outputs(format: Format, image_suffix: &str) -> Option<(tempfile::TempDir, String)> {
    let kernel = baleen_testkit::kernel::debian_cloud_kernel()?;
    let tmp = tempfile::tempdir().unwrap();
    let store = spine_store(&tmp.path().join("store"), &kernel);
    rootfs_kernel(&tmp.path().join("store"), &kernel);
    let (out, again) = (tmp.path().join("out"), tmp.path().join("again"));
    build_with(&store, format, &out, true);
    build_with(&store, format, &again, true);
    for suffix in ["-kernel", "-cmdline", image_suffix, "-root-initrd.img"] {
        let (a, b) = (out.join(format!("spine{suffix}")), again.join(format!("spine{suffix}")));
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "{suffix} differs between two --verity builds"
        );
    }
    let cmdline = std::fs::read_to_string(out.join("spine-cmdline")).unwrap();
    let word = |k: &str| {
        cmdline
            .split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .unwrap_or_else(|| panic!("{k} on {cmdline:?}"))
            .to_owned()
    };
    let (root, blocks) = (word("roothash="), word("baleen.verity_data_blocks="));
    assert!(cmdline.starts_with("console=ttyS0"), "the YAML's words stay first: {cmdline}");
    let img = out.join(format!("spine{image_suffix}"));
    let blocks: u64 = blocks.parse().unwrap();
    let names = initrd_names(&out.join("spine-root-initrd.img"));
    for want in ["dm-mod.ko", "dm-verity.ko", "dm-bufio.ko"] {
        assert!(names.iter().any(|n| n.ends_with(want)), "{want} in the stage-1 initrd");
    }
    if baleen_testkit::require_tool("veritysetup").is_some() {
        let img = img.to_str().unwrap();
        let off = format!("--hash-offset={}", blocks * 4096);
        let out = std::process::Command::new("veritysetup")
            .args(["verify", &off, img, img, &root])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "veritysetup verify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Some((tmp, root))
}

#[test]
fn kernel_squashfs_with_verity_is_reproducible_and_veritysetup_accepts_it() {
    verity_outputs(Format::KernelSquashfs, "-squashfs.img");
}

#[test]
fn kernel_erofs_with_verity_is_reproducible_and_veritysetup_accepts_it() {
    verity_outputs(Format::KernelErofs, "-erofs.img");
}

/// A `--verity` system boots through the verity target; the same image with one byte of its
/// first filesystem block changed stops in stage 1 with the verity line and a non-zero verdict.
fn verity_boot(format: Format, image_suffix: &str, name: &str) {
    let Some(_) = baleen_testkit::require_tool("busybox") else { return };
    let Some((tmp, root)) = verity_outputs(format, image_suffix) else { return };
    let prefix = tmp.path().join("out").join("spine");
    let t = Duration::from_secs(200);
    let Some(vm) = BootTest::path(name, &prefix) else { return };
    vm.wait_for(&format!("baleen: stage1 verity /dev/sda as /dev/dm-0 roothash={root}"), t);
    vm.wait_for("baleen: stage1 root /dev/dm-0", t);
    vm.wait_for("spine-onboot-ok", t);
    vm.wait_for("spine-files-ok", t);
    vm.wait_for("baleen: poweroff status 0", t);
    let outcome = vm.wait_exit();
    assert_eq!(outcome.verdict.code, 0, "the intact system: {:?}", outcome.verdict.message);

    // Byte 2000 lies in block 0 (past both filesystems' superblocks): the first read of the
    // mapped root fails verification.
    let img = prefix.with_file_name(format!("spine{image_suffix}"));
    let mut bytes = std::fs::read(&img).unwrap();
    bytes[2000] ^= 0x40;
    std::fs::write(&img, &bytes).unwrap();
    let Some(vm) = BootTest::path(&format!("{name}-changed"), &prefix) else { return };
    refused_by_verity(vm, &format!("/dev/sda does not match roothash={root}"), t);
}

/// A boot whose root was changed: stage 1 prints `marker` (the error line through its
/// `roothash=`), mounts nothing, and the run fails. The whole line is waited for, not its start:
/// the console arrives in pieces, and a line cut after "does not" made these tests fail now and
/// then.
fn refused_by_verity(vm: BootTest, marker: &str, t: Duration) {
    let console = vm.wait_for(marker, t);
    let line = console.lines().find(|l| l.contains("error stage1")).unwrap().to_owned();
    assert!(line.contains(marker), "{line}");
    assert!(!console.contains("baleen: stage1 root mounted"), "nothing mounted: {console}");
    let outcome = vm.wait_exit();
    assert_ne!(outcome.verdict.code, 0, "a changed root is a failed run: {line}");
    eprintln!("{line}");
}

#[test]
fn kernel_squashfs_with_verity_boots_and_a_changed_byte_stops_it() {
    verity_boot(Format::KernelSquashfs, "-squashfs.img", "verity-squashfs");
}

#[test]
fn kernel_erofs_with_verity_boots_and_a_changed_byte_stops_it() {
    verity_boot(Format::KernelErofs, "-erofs.img", "verity-erofs");
}

/// One GPT entry: type and partition GUID as the kernel prints them, first byte, bytes.
#[derive(Debug)]
struct GptEntry {
    type_guid: String,
    guid: String,
    start: u64,
    len: u64,
}

fn guid_text(b: &[u8]) -> String {
    let u = [b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]];
    let h: String = u.iter().chain(&b[8..16]).map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// The used entries of the primary GPT of `disk` (512-byte sectors, entries at LBA 2).
fn gpt_entries(disk: &[u8]) -> Vec<GptEntry> {
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    (0..128)
        .map(|i| &disk[1024 + 128 * i..1024 + 128 * (i + 1)])
        .filter(|e| e[..16].iter().any(|&b| b != 0))
        .map(|e| GptEntry {
            type_guid: guid_text(&e[..16]),
            guid: guid_text(&e[16..32]),
            start: u64_at(e, 32) * 512,
            len: (u64_at(e, 40) - u64_at(e, 32) + 1) * 512,
        })
        .collect()
}

/// `raw-efi --root squashfs --verity` checked without qemu: two builds identical, `sgdisk -v`
/// happy, the ESP then the DPS root and root-verity partitions whose UUIDs are the halves of
/// the root hash, the words on the UKI's `.cmdline`, `veritysetup verify` accepting the root
/// partition against the hash partition. Returns the build's directory, the disk's path, the
/// root hash and the root partition's first byte.
fn efi_root_outputs() -> Option<(tempfile::TempDir, std::path::PathBuf, String, u64)> {
    let kernel = baleen_testkit::kernel::debian_cloud_kernel()?;
    baleen_testkit::require_tool("syslinux")?;
    if !Path::new("/usr/lib/systemd/boot/efi/linuxx64.efi.stub").is_file() {
        assert!(!baleen_testkit::tools_required(), "install systemd-boot-efi");
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = spine_store(&tmp.path().join("store"), &kernel);
    rootfs_kernel(&tmp.path().join("store"), &kernel);
    let (out, again) = (tmp.path().join("out"), tmp.path().join("again"));
    let squashfs = Some(baleen_build::RootFs::Squashfs);
    build_root(&store, &[Format::RawEfi], &out, true, squashfs);
    build_root(&store, &[Format::RawEfi], &again, true, squashfs);
    let disk_path = out.join("spine-efi.img");
    let disk = std::fs::read(&disk_path).unwrap();
    assert!(disk == std::fs::read(again.join("spine-efi.img")).unwrap(), "two builds differ");
    let parts = gpt_entries(&disk);
    assert_eq!(parts.len(), 3, "ESP, root, root-verity: {parts:?}");
    assert_eq!(parts[0].type_guid, "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
    assert_eq!(parts[1].type_guid, "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "DPS root x86-64");
    assert_eq!(parts[2].type_guid, "2c7357ed-ebd2-46d9-aec3-23d7f4a0e1e5", "DPS root verity");
    let root = &disk[parts[1].start as usize..][..parts[1].len as usize];
    assert_eq!(&root[..4], b"hsqs", "a squashfs in the root partition");
    let hash = &disk[parts[2].start as usize..][..parts[2].len as usize];
    assert_eq!(&hash[..8], b"verity\0\0", "the hash partition starts with its superblock");

    let uki = common::esp_boot_file(&disk_path, tmp.path());
    let text = uki.as_deref().map(String::from_utf8_lossy).unwrap_or_default().into_owned();
    let root_hash = match text.find("roothash=") {
        Some(at) => text[at + 9..at + 9 + 64].to_owned(),
        // Without mtools: the hash from the partition UUIDs.
        None => format!("{}{}", parts[1].guid, parts[2].guid).replace('-', ""),
    };
    let uuid =
        |h: &str| format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]);
    assert_eq!(parts[1].guid, uuid(&root_hash[..32]), "root UUID = first half of the root hash");
    assert_eq!(parts[2].guid, uuid(&root_hash[32..]), "verity UUID = last half");
    if uki.is_some() {
        for word in [
            format!("root=PARTUUID={}", parts[1].guid),
            format!("baleen.verity_hash=PARTUUID={}", parts[2].guid),
            "baleen.verity_data_blocks=".to_owned(),
        ] {
            assert!(text.contains(&word), "{word} on the UKI's .cmdline");
        }
    }
    if let Some(sgdisk) = baleen_testkit::require_tool("sgdisk") {
        let text = common::run(std::process::Command::new(&sgdisk).arg("-v").arg(&disk_path));
        assert!(text.contains("No problems found"), "{text}");
    }
    if baleen_testkit::require_tool("veritysetup").is_some() {
        let (data, tree) = (tmp.path().join("root.part"), tmp.path().join("hash.part"));
        std::fs::write(&data, root).unwrap();
        std::fs::write(&tree, hash).unwrap();
        common::run(
            std::process::Command::new("veritysetup")
                .arg("verify")
                .arg(&data)
                .arg(&tree)
                .arg(&root_hash),
        );
    }
    let start = parts[1].start;
    Some((tmp, disk_path, root_hash, start))
}

#[test]
fn raw_efi_with_a_verity_root_partition_is_reproducible_and_checks_out() {
    efi_root_outputs();
}

/// The disk boots through the UKI's stage 1 and the verity target to its services; the same
/// disk with one byte of the root partition changed stops in stage 1 with the verity line and
/// a non-zero verdict. Two boots.
#[test]
fn raw_efi_with_a_verity_root_partition_boots_and_a_changed_byte_stops_it() {
    let Some(_) = baleen_testkit::require_tool("busybox") else { return };
    let Some((_tmp, disk, root, start)) = efi_root_outputs() else { return };
    let t = Duration::from_secs(300);
    let Some(vm) = BootTest::path("efi-root-verity", &disk) else { return };
    let console = vm.wait_for("baleen: stage1 root /dev/dm-0", t);
    let line = console.lines().find(|l| l.contains("baleen: stage1 verity")).unwrap().to_owned();
    assert!(line.ends_with(&format!("as /dev/dm-0 roothash={root}")), "{line}");
    vm.wait_for("spine-onboot-ok", t);
    vm.wait_for("spine-files-ok", t);
    vm.wait_for("baleen: poweroff status 0", t);
    let outcome = vm.wait_exit();
    assert_eq!(outcome.verdict.code, 0, "the intact disk: {:?}", outcome.verdict.message);
    eprintln!("efi-root-verity: {line}");

    // Byte 2000 of the root partition lies in its first block, past the squashfs superblock.
    let f = std::fs::OpenOptions::new().read(true).write(true).open(&disk).unwrap();
    let mut b = [0u8; 1];
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut b, start + 2000).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[b[0] ^ 0x40], start + 2000).unwrap();
    drop(f);
    let Some(vm) = BootTest::path("efi-root-verity-changed", &disk) else { return };
    refused_by_verity(vm, &format!("does not match roothash={root}"), t);
}

/// `--root erofs` without `--verity`: two partitions, the erofs image in the DPS root
/// partition, `root=PARTUUID=` of it on the UKI's command line and no verity words; the
/// qcow2-efi and vmdk of the same build convert back (qemu-img) to that raw disk.
#[test]
fn raw_efi_with_an_erofs_root_partition_and_no_verity() {
    let Some(kernel) = baleen_testkit::kernel::debian_cloud_kernel() else { return };
    let Some(_) = baleen_testkit::require_tool("syslinux") else { return };
    if !Path::new("/usr/lib/systemd/boot/efi/linuxx64.efi.stub").is_file() {
        assert!(!baleen_testkit::tools_required(), "install systemd-boot-efi");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = spine_store(&tmp.path().join("store"), &kernel);
    rootfs_kernel(&tmp.path().join("store"), &kernel);
    let out = tmp.path().join("out");
    let formats = [Format::RawEfi, Format::Qcow2Efi, Format::Vmdk];
    build_root(&store, &formats, &out, false, Some(baleen_build::RootFs::Erofs));
    let disk_path = out.join("spine-efi.img");
    let disk = std::fs::read(&disk_path).unwrap();
    let parts = gpt_entries(&disk);
    assert_eq!(parts.len(), 2, "ESP and root: {parts:?}");
    assert_eq!(parts[1].type_guid, "4f68bce3-e8cd-4db1-96e7-fbcaf984b709");
    let root = parts[1].start as usize;
    assert_eq!(disk[root + 1024..root + 1028], 0xE0F5_E1E2u32.to_le_bytes(), "erofs magic");
    if let Some(qemu_img) = baleen_testkit::require_tool("qemu-img") {
        for (fmt, name) in [("qcow2", "spine-efi.qcow2"), ("vmdk", "spine.vmdk")] {
            let back = tmp.path().join(format!("{name}.raw"));
            common::run(
                std::process::Command::new(&qemu_img)
                    .args(["convert", "-f", fmt, "-O", "raw"])
                    .arg(out.join(name))
                    .arg(&back),
            );
            assert!(std::fs::read(&back).unwrap() == disk, "{name} converts back to the raw disk");
        }
    }
    let Some(uki) = common::esp_boot_file(&disk_path, tmp.path()) else { return };
    let text = String::from_utf8_lossy(&uki);
    assert!(text.contains(&format!("root=PARTUUID={}", parts[1].guid)), "root= on .cmdline");
    assert!(!text.contains("roothash="), "no verity words without --verity");
    if let Some(sgdisk) = baleen_testkit::require_tool("sgdisk") {
        let text = common::run(std::process::Command::new(&sgdisk).arg("-v").arg(&disk_path));
        assert!(text.contains("No problems found"), "{text}");
    }
}

/// With `--sign-key`, the root hash is under the Secure Boot signature: the UKI on the ESP of
/// `raw-efi --root squashfs --verity` passes `sbverify` and carries `roothash=`, and the same
/// UKI with one digit of that hash changed fails it.
#[test]
fn raw_efi_verity_root_hash_is_under_the_secure_boot_signature() {
    let Some(kernel) = baleen_testkit::kernel::debian_cloud_kernel() else { return };
    let Some(_) = baleen_testkit::require_tool("syslinux") else { return };
    if !Path::new("/usr/lib/systemd/boot/efi/linuxx64.efi.stub").is_file() {
        assert!(!baleen_testkit::tools_required(), "install systemd-boot-efi");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let kind = baleen_testkit::signing::KeyKind::Rsa2048;
    let Some((key, cert)) = baleen_testkit::signing::key_pair(tmp.path(), "db", kind) else {
        return;
    };
    let store = spine_store(&tmp.path().join("store"), &kernel);
    rootfs_kernel(&tmp.path().join("store"), &kernel);
    let out = tmp.path().join("out");
    let sign = baleen_build::Signing { key, cert: cert.clone() };
    let squashfs = Some(baleen_build::RootFs::Squashfs);
    build_signed(&store, &[Format::RawEfi], &out, true, squashfs, Some(sign));
    let Some(mut uki) = common::esp_boot_file(&out.join("spine-efi.img"), tmp.path()) else {
        return;
    };
    let signed = tmp.path().join("signed.efi");
    std::fs::write(&signed, &uki).unwrap();
    let Some((ok, text)) = baleen_testkit::signing::sbverify(&cert, &signed) else { return };
    assert!(ok, "sbverify refused the signed UKI of the --root disk:\n{text}");
    let at = uki.windows(9).position(|w| w == b"roothash=").expect("roothash= in the UKI") + 9;
    uki[at] = if uki[at] == b'0' { b'1' } else { b'0' };
    let tampered = tmp.path().join("tampered.efi");
    std::fs::write(&tampered, &uki).unwrap();
    let (ok, text) = baleen_testkit::signing::sbverify(&cert, &tampered).unwrap();
    assert!(!ok, "sbverify accepted a UKI whose roothash= was changed:\n{text}");

    // And it boots under OVMF with Secure Boot enforcing and the certificate enrolled: the
    // signed UKI, then stage 1 through the verity root, to the spine's services.
    let ovmf = Path::new(baleen_run::secure_boot::OVMF_DIR);
    let firmware = [baleen_run::secure_boot::SECBOOT_CODE, baleen_run::secure_boot::EMPTY_VARS];
    if let Some(missing) = firmware.iter().map(|f| ovmf.join(f)).find(|p| !p.is_file()) {
        assert!(!baleen_testkit::tools_required(), "{missing:?} missing: install Debian's ovmf");
        return;
    }
    let dir = BootTest::scratch_dir("secure-root-verity");
    let mut opts = baleen_testkit::boot::test_options(out.join("spine-efi.img"), &dir);
    opts.secure_boot = Some(baleen_run::SecureBoot::Enroll(cert));
    let Some(vm) = BootTest::with_options("secure-root-verity", opts, Duration::from_secs(400))
    else {
        return;
    };
    let t = Duration::from_secs(300);
    vm.wait_for("Secure boot enabled", t);
    vm.wait_for("baleen: stage1 root /dev/dm-0", t);
    vm.wait_for("spine-files-ok", t);
    vm.wait_for("baleen: poweroff status 0", t);
    assert_eq!(vm.wait_exit().verdict.code, 0, "a clean poweroff exits 0");
}
