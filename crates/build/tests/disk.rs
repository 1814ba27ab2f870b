//! The EFI formats end to end: the spine system (Debian's cloud kernel, baleen-init, busybox
//! containers) built by the pipeline into a UKI, a raw EFI disk and its wrappers; each output
//! byte-identical across two builds, checked by the reference tools when installed, and booted
//! under OVMF (TCG) to the spine's markers — one boot per format at most.

use baleen_build::Format;
use baleen_oci::Store;
use baleen_testkit::boot::BootTest;
use baleen_testkit::image::ImageBuilder;
use baleen_testkit::layers::{dir, file};
use common::{boots_to_services, build_into, run, spine_config, spine_store};
use std::path::Path;
use std::time::Duration;

use crate::common;

const STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

/// The spine system's store, or None (skipped) when the kernel, busybox or the stub are missing.
fn setup(tmp: &Path) -> Option<(baleen_spec::Config, Store)> {
    baleen_testkit::require_tool("busybox")?;
    if !Path::new(STUB).is_file() {
        assert!(!baleen_testkit::tools_required(), "{STUB} missing: install systemd-boot-efi");
        eprintln!("skipping: {STUB} is not installed");
        return None;
    }
    let kernel = baleen_testkit::kernel::debian_cloud_kernel()?;
    let store = spine_store(&tmp.join("store"), &kernel);
    let cfg = spine_config();
    Some((cfg, store))
}

const EFI_FORMATS: &[Format] = &[
    Format::Uki,
    Format::RawEfi,
    Format::Aws,
    Format::Qcow2Efi,
    Format::Vhd,
    Format::Vmdk,
    Format::IsoEfiInitrd,
    Format::Gcp,
];

#[test]
fn efi_formats_are_byte_identical_across_two_builds() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((cfg, store)) = setup(tmp.path()) else { return };
    let a = build_into(&cfg, &store, EFI_FORMATS, &tmp.path().join("a"));
    let b = build_into(&cfg, &store, EFI_FORMATS, &tmp.path().join("b"));
    let names: Vec<_> =
        a.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(
        names,
        [
            "spine.efi",
            "spine-efi.img",
            "spine.raw",
            "spine-efi.qcow2",
            "spine.vhd",
            "spine.vmdk",
            "spine-efi-initrd.iso",
            "spine.img.tar.gz"
        ]
    );
    for (x, y) in a.iter().zip(&b) {
        assert!(std::fs::read(x).unwrap() == std::fs::read(y).unwrap(), "{} differs", x.display());
    }
    // Raw disks are written with holes where they hold zeros: at least the MiB before the ESP,
    // the MiB after it and the ESP's free space (the hybrid ESP, holding the kernel and initrd
    // beside the UKI, is sized to them, so little of it is free).
    let meta = std::fs::metadata(&a[1]).unwrap();
    let allocated = std::os::unix::fs::MetadataExt::blocks(&meta) * 512;
    assert!(allocated < meta.len() - (2 << 20), "{allocated} of {} bytes allocated", meta.len());
    // aws is the same hybrid disk at LinuxKit's default 1 GiB: the same ESP (from 1 MiB to a
    // MiB before raw-efi's end), its backup GPT at the new end.
    let raw = std::fs::read(&a[1]).unwrap();
    assert_eq!(std::fs::metadata(&a[2]).unwrap().len(), 1 << 30, "aws without --size is 1 GiB");
    let esp = 1 << 20..raw.len() - (1 << 20);
    let mut aws_esp = vec![0u8; esp.len()];
    let aws = std::fs::File::open(&a[2]).unwrap();
    std::os::unix::fs::FileExt::read_exact_at(&aws, &mut aws_esp, esp.start as u64).unwrap();
    assert!(raw[esp] == aws_esp[..], "aws holds raw-efi's ESP");
    // A fixed VHD is the raw disk and a 512-byte footer.
    let vhd = std::fs::read(&a[4]).unwrap();
    assert!(vhd[..vhd.len() - 512] == raw[..], "vhd starts with the raw-efi disk");
    assert_eq!(&vhd[vhd.len() - 512..][..8], b"conectix");
    let gcp = untar_gcp(&a[7], &tmp.path().join("gcp"));
    let gcp_len = std::fs::metadata(&gcp).unwrap().len();
    assert!(gcp_len > 0 && gcp_len % (1 << 30) == 0, "gcp's disk.raw is whole GiB: {gcp_len}");
    if let Some(qemu_img) = baleen_testkit::require_tool("qemu-img") {
        run(std::process::Command::new(&qemu_img).arg("check").arg(&a[3]));
        run(std::process::Command::new(&qemu_img).arg("check").arg(&a[5]));
        // What an import does: each wrapper converted back is the raw EFI disk, byte for byte.
        for (fmt, path) in [("qcow2", &a[3]), ("vpc", &a[4]), ("vmdk", &a[5])] {
            assert_eq!(convert_to_raw(&qemu_img, fmt, path), std::fs::read(&a[1]).unwrap());
        }
        let info = run(std::process::Command::new(&qemu_img)
            .args(["info", "--output=json", "-f", "raw"])
            .arg(&gcp));
        assert!(info.contains(&format!("\"virtual-size\": {gcp_len}")), "{info}");
    }
    if let Some(sgdisk) = baleen_testkit::require_tool("sgdisk") {
        for disk in [&a[1], &a[2], &gcp] {
            let text = run(std::process::Command::new(&sgdisk).arg("-v").arg(disk));
            assert!(text.contains("No problems found"), "{}: {text}", disk.display());
        }
    }
    if let Some(back) = common::esp_boot_file(&a[1], tmp.path()) {
        assert!(back == std::fs::read(&a[0]).unwrap(), "the ESP holds the UKI");
    }
}

/// `iso-efi` and `dynamic-vhd`, which cannot share a build with `iso-efi-initrd` and `vhd`
/// (both pairs write one file name): byte-identical across two builds, and the dynamic VHD
/// converted back by qemu-img is the build's raw EFI disk.
#[test]
fn iso_efi_and_dynamic_vhd_are_byte_identical_and_convert_back() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((cfg, store)) = setup(tmp.path()) else { return };
    let formats = [Format::RawEfi, Format::IsoEfi, Format::DynamicVhd];
    let a = build_into(&cfg, &store, &formats, &tmp.path().join("a"));
    let b = build_into(&cfg, &store, &formats, &tmp.path().join("b"));
    assert_eq!(a.len(), 3, "{a:?}");
    for (x, y) in a.iter().zip(&b) {
        assert!(std::fs::read(x).unwrap() == std::fs::read(y).unwrap(), "{} differs", x.display());
    }
    let vhd = a.iter().find(|p| p.to_string_lossy().ends_with(".vhd")).unwrap();
    let raw = a.iter().find(|p| p.to_string_lossy().ends_with("-efi.img")).unwrap();
    if let Some(qemu_img) = baleen_testkit::require_tool("qemu-img") {
        // (qemu-img has no check for VHD: the read back is the check.)
        assert!(convert_to_raw(&qemu_img, "vpc", vhd) == std::fs::read(raw).unwrap());
    }
}

/// `qemu-img convert -f FMT -O raw` of `path`, read back.
fn convert_to_raw(qemu_img: &Path, fmt: &str, path: &Path) -> Vec<u8> {
    let out = path.with_extension(format!("{fmt}.raw"));
    run(std::process::Command::new(qemu_img)
        .args(["convert", "-f", fmt, "-O", "raw"])
        .arg(path)
        .arg(&out));
    let bytes = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    bytes
}

/// `disk.raw` out of gcp's tar.gz into `dir`, as Compute Engine's import reads it.
fn untar_gcp(tar_gz: &Path, dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut ar =
        tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(tar_gz).unwrap()));
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut f = std::fs::File::create(dir.join(&name)).unwrap();
            sparse_copy(&mut e, &mut f);
            name
        })
        .collect();
    assert_eq!(names, ["disk.raw"], "gcp's tar holds disk.raw alone");
    dir.join("disk.raw")
}

/// Copies `r` to `f`, seeking over zero MiBs so that the GiB disk stays a sparse file.
fn sparse_copy(r: &mut dyn std::io::Read, f: &mut std::fs::File) {
    use std::io::{Seek, Write};
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let mut n = 0;
        while n < buf.len() {
            match r.read(&mut buf[n..]).unwrap() {
                0 => break,
                k => n += k,
            }
        }
        if n == 0 {
            break;
        }
        if buf[..n].iter().all(|b| *b == 0) {
            f.seek(std::io::SeekFrom::Current(n as i64)).unwrap();
        } else {
            f.write_all(&buf[..n]).unwrap();
        }
        len += n as u64;
    }
    f.set_len(len).unwrap();
}

/// One build, then one OVMF boot per format: the raw EFI disk, its qcow2 and the EFI ISO (the
/// VHD, VMDK and gcp disk convert back to that raw disk, as the first test shows, and boot
/// themselves in the tests below).
#[test]
fn raw_efi_qcow2_efi_and_iso_efi_initrd_boot_under_ovmf() {
    let Some(_) = baleen_testkit::require_tool("qemu-system-x86_64") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let Some((cfg, store)) = setup(tmp.path()) else { return };
    let formats = [Format::RawEfi, Format::Qcow2Efi, Format::IsoEfiInitrd];
    let out = build_into(&cfg, &store, &formats, &tmp.path().join("out"));
    for (name, path) in [("raw-efi", &out[0]), ("qcow2-efi", &out[1])] {
        let Some(vm) = BootTest::path(name, path) else { return };
        boots_to_services(vm);
    }
    // `-efi-initrd.iso` is not named `-efi`: ask for UEFI, as `baleen run --uefi` would.
    let dir = BootTest::scratch_dir("iso-efi-initrd");
    let mut opts = baleen_testkit::boot::test_options(&out[2], &dir);
    opts.uefi = true;
    let Some(vm) = BootTest::with_options("iso-efi-initrd", opts, Duration::from_secs(300)) else {
        return;
    };
    boots_to_services(vm);
}

/// The VHD and the streamOptimized VMDK boot too, not only compare equal to the raw disk: qemu
/// reads them as a hypervisor would. Their names carry no `-efi`: UEFI is asked for, as
/// `baleen run --uefi` does.
#[test]
fn vhd_and_vmdk_boot_under_ovmf() {
    let Some(_) = baleen_testkit::require_tool("qemu-system-x86_64") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let Some((cfg, store)) = setup(tmp.path()) else { return };
    let out = build_into(&cfg, &store, &[Format::Vhd, Format::Vmdk], &tmp.path().join("out"));
    for (name, path) in [("vhd", &out[0]), ("vmdk", &out[1])] {
        let mut opts = baleen_testkit::boot::test_options(path, &BootTest::scratch_dir(name));
        opts.uefi = true;
        let Some(vm) = BootTest::with_options(name, opts, Duration::from_secs(300)) else {
            return;
        };
        boots_to_services(vm);
    }
}

/// A `baleen/systemd-boot` component in the store wins over the host's stub.
#[test]
fn the_stub_comes_from_the_systemd_boot_component_when_the_store_has_one() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((cfg, _)) = setup(tmp.path()) else { return };
    let host = std::fs::read(STUB).unwrap();
    let at = host.windows(8).position(|w| w == b"DOS mode").expect("the stub's DOS message");
    let mut marked = host.clone();
    marked[at..at + 8].copy_from_slice(b"BLN mode");
    ImageBuilder::new()
        .layer(&[
            dir("usr/"),
            dir("usr/lib/"),
            dir("usr/lib/systemd/"),
            dir("usr/lib/systemd/boot/"),
            dir("usr/lib/systemd/boot/efi/"),
            file("usr/lib/systemd/boot/efi/linuxx64.efi.stub", &marked),
        ])
        .build()
        .write_layout(&tmp.path().join("store"), "docker.io/baleen/systemd-boot:1");
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let out = build_into(&cfg, &store, &[Format::Uki], &tmp.path().join("out"));
    let uki = std::fs::read(&out[0]).unwrap();
    assert_eq!(&uki[at..at + 8], b"BLN mode", "the component's stub was used");
}

/// The formats the tests above do not boot, one boot each: the bare UKI (OVMF loads it as
/// `baleen run spine.efi` does), `iso-efi`, `dynamic-vhd` (OVMF), and the disk inside `gcp`'s
/// tar.gz, taken out as Compute Engine does and booted under SeaBIOS (GCE's default firmware;
/// the cloud disks are hybrid).
#[test]
fn uki_iso_efi_dynamic_vhd_and_gcp_boot() {
    let Some(_) = baleen_testkit::require_tool("qemu-system-x86_64") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let Some((cfg, store)) = setup(tmp.path()) else { return };
    let out = build_into(
        &cfg,
        &store,
        &[Format::Uki, Format::IsoEfi, Format::DynamicVhd, Format::Gcp],
        &tmp.path().join("out"),
    );
    let file = |suffix: &str| {
        out.iter()
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("no {suffix} among {out:?}"))
            .clone()
    };
    let raw = untar_gcp(&file(".img.tar.gz"), &tmp.path().join("gcp"));

    for (name, path, uefi) in [
        ("uki", file(".efi"), true),
        ("iso-efi", file("-efi.iso"), true),
        ("dynamic-vhd", file(".vhd"), true),
        ("gcp-disk", raw, false),
    ] {
        let mut opts = baleen_testkit::boot::test_options(&path, &BootTest::scratch_dir(name));
        opts.uefi = uefi;
        let Some(vm) = BootTest::with_options(name, opts, Duration::from_secs(300)) else {
            return;
        };
        boots_to_services(vm);
    }
}
