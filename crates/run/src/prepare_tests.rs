use super::*;
use crate::plan::Accel;

fn touch(p: &Path) {
    std::fs::write(p, b"x").unwrap();
}

#[test]
fn detects_a_kernel_initrd_prefix_and_reads_the_cmdline() {
    let d = tempfile::tempdir().unwrap();
    let prefix = d.path().join("m");
    touch(&d.path().join("m-kernel"));
    touch(&d.path().join("m-initrd.img"));
    std::fs::write(d.path().join("m-cmdline"), "console=ttyS0 quiet\n").unwrap();
    let want = BootSource::KernelInitrd {
        kernel: d.path().join("m-kernel"),
        initrd: d.path().join("m-initrd.img"),
        cmdline: "console=ttyS0 quiet".into(),
    };
    let got = detect(&prefix, None).unwrap();
    assert_eq!(got.boot, want);
    assert_eq!(got.prefix, prefix);
    // Naming the kernel file itself works the same.
    assert_eq!(detect(&d.path().join("m-kernel"), None).unwrap().boot, want);
}

#[test]
fn a_missing_initrd_is_named() {
    let d = tempfile::tempdir().unwrap();
    touch(&d.path().join("m-kernel"));
    let err = detect(&d.path().join("m"), None).unwrap_err();
    assert!(
        matches!(&err, PrepareError::MissingPart { missing, .. } if missing.ends_with("m-initrd.img"))
    );
    assert!(err.to_string().contains("m-initrd.img"), "{err}");
}

#[test]
fn a_missing_path_explains_what_path_can_be() {
    let d = tempfile::tempdir().unwrap();
    let err = detect(&d.path().join("nothing"), None).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("nothing-kernel") && msg.contains("ISO"), "{msg}");
}

#[test]
fn squashfs_prefix_wins_over_initrd() {
    let d = tempfile::tempdir().unwrap();
    touch(&d.path().join("m-kernel"));
    touch(&d.path().join("m-squashfs.img"));
    let got = detect(&d.path().join("m"), None).unwrap();
    assert!(matches!(got.boot, BootSource::Squashfs { cmdline, .. } if cmdline == "console=ttyS0"));
}

#[test]
fn erofs_and_kernel_iso_prefixes_take_the_stage1_initrd() {
    let d = tempfile::tempdir().unwrap();
    touch(&d.path().join("m-kernel"));
    touch(&d.path().join("m-erofs.img"));
    let got = detect(&d.path().join("m"), None).unwrap();
    assert!(matches!(got.boot, BootSource::Squashfs { initrd: None, cdrom: false, .. }));
    touch(&d.path().join("m-root-initrd.img"));
    let got = detect(&d.path().join("m-erofs.img"), None).unwrap();
    assert!(
        matches!(&got.boot, BootSource::Squashfs { squashfs, initrd: Some(i), cdrom: false, .. }
            if squashfs.ends_with("m-erofs.img") && i.ends_with("m-root-initrd.img")),
        "{:?}",
        got.boot
    );
    let d = tempfile::tempdir().unwrap();
    touch(&d.path().join("k-kernel"));
    touch(&d.path().join("k.iso"));
    assert!(detect(&d.path().join("k"), None).is_err(), "kernel+iso boots through stage 1 only");
    touch(&d.path().join("k-root-initrd.img"));
    let got = detect(&d.path().join("k"), None).unwrap();
    assert!(
        matches!(&got.boot, BootSource::Squashfs { squashfs, cdrom: true, .. } if squashfs.ends_with("k.iso")),
        "{:?}",
        got.boot
    );
}

/// A file with the magic numbers its name promises (a raw disk: an MBR signature).
fn image(p: &Path) {
    let name = p.file_name().unwrap().to_string_lossy().into_owned();
    let mut b = vec![0u8; 34 * 1024];
    match name.rsplit('.').next().unwrap() {
        "iso" => b[32769..32774].copy_from_slice(b"CD001"),
        "efi" => {
            b[..2].copy_from_slice(b"MZ");
            b[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
            b[0x80..0x84].copy_from_slice(b"PE\0\0");
        }
        "qcow2" => b[..4].copy_from_slice(b"QFI\xfb"),
        "vhd" => b[..8].copy_from_slice(b"conectix"),
        "vmdk" => b[..4].copy_from_slice(b"KDMV"),
        _ => b[510..512].copy_from_slice(&[0x55, 0xaa]),
    }
    std::fs::write(p, b).unwrap();
}

/// `baleen run ok.yml` booted the YAML as a raw disk and sat at "No bootable device": now a
/// file that is no image, a bare kernel and a directory are refused with what they are.
#[test]
fn what_is_not_bootable_is_refused_by_its_content() {
    let d = tempfile::tempdir().unwrap();
    let yml = d.path().join("ok.yml");
    std::fs::write(&yml, "kernel:\n  image: linuxkit/kernel:6.6\n").unwrap();
    let e = detect(&yml, None).unwrap_err().to_string();
    assert!(e.contains("is not something qemu can boot") && e.contains("baleen build"), "{e}");
    assert!(e.contains("starts with \"kernel:\\n  image:\""), "{e}");
    let empty = d.path().join("empty.img");
    std::fs::write(&empty, b"").unwrap();
    assert!(detect(&empty, None).unwrap_err().to_string().contains("it is empty"));
    let bz = d.path().join("vmlinuz");
    let mut b = vec![0u8; 4096];
    b[0x202..0x206].copy_from_slice(b"HdrS");
    b[510..512].copy_from_slice(&[0x55, 0xaa]); // a bzImage has the boot signature too
    std::fs::write(&bz, b).unwrap();
    let e = detect(&bz, None).unwrap_err().to_string();
    assert!(e.contains("a kernel by itself") && e.contains("PREFIX-initrd.img"), "{e}");
    let e = detect(d.path(), None).unwrap_err().to_string();
    assert!(e.contains("is a directory"), "{e}");
    // A qcow2 called .img boots, but as raw: only the name may pick a format that can name
    // host files (backing files, VMDK extents). An ISO called .bin is an ISO.
    let q = d.path().join("disk.img");
    let mut b = vec![0u8; 1024];
    b[..4].copy_from_slice(b"QFI\xfb");
    std::fs::write(&q, b).unwrap();
    let got = detect(&q, None).unwrap().boot;
    assert!(matches!(&got, BootSource::Disk { format, .. } if format == "raw"), "{got:?}");
    let iso = d.path().join("cd.bin");
    image(&d.path().join("x.iso"));
    std::fs::rename(d.path().join("x.iso"), &iso).unwrap();
    assert!(matches!(detect(&iso, None).unwrap().boot, BootSource::Iso(_)));
    // A fixed VHD (a raw disk with the footer at its end) is accepted as a disk.
    let vhd = d.path().join("fixed.disk");
    let mut b = vec![0u8; 4096];
    b[4096 - 512..4096 - 504].copy_from_slice(b"conectix");
    std::fs::write(&vhd, b).unwrap();
    assert!(matches!(detect(&vhd, None).unwrap().boot, BootSource::Disk { .. }));
}

#[test]
fn file_types_by_name() {
    let d = tempfile::tempdir().unwrap();
    type Is = fn(&BootSource) -> bool;
    let cases: &[(&str, Is, bool)] = &[
        ("a.iso", |b| matches!(b, BootSource::Iso(_)), false),
        ("a-efi.iso", |b| matches!(b, BootSource::Iso(_)), true),
        ("a-efi-initrd.iso", |b| matches!(b, BootSource::Iso(_)), true),
        ("a.efi", |b| matches!(b, BootSource::Uki(_)), true),
        ("a.qcow2", |b| matches!(b, BootSource::Disk { format, .. } if format == "qcow2"), false),
        (
            "a-efi.qcow2",
            |b| matches!(b, BootSource::Disk { format, .. } if format == "qcow2"),
            true,
        ),
        ("a.vhd", |b| matches!(b, BootSource::Disk { format, .. } if format == "vpc"), false),
        ("a.vmdk", |b| matches!(b, BootSource::Disk { format, .. } if format == "vmdk"), false),
        ("a.raw", |b| matches!(b, BootSource::Disk { format, .. } if format == "raw"), false),
        ("a-efi.img", |b| matches!(b, BootSource::Disk { format, .. } if format == "raw"), true),
    ];
    for (name, is, uefi) in cases {
        let p = d.path().join(name);
        image(&p);
        let got = detect(&p, None).unwrap();
        assert!(is(&got.boot), "{name}: {:?}", got.boot);
        assert_eq!(got.needs_uefi, *uefi, "{name}");
    }
    // --iso forces the type whatever the name.
    let p = d.path().join("image.bin");
    touch(&p);
    assert!(matches!(detect(&p, Some(BootKind::Iso)).unwrap().boot, BootSource::Iso(_)));
    assert_eq!(detect(&d.path().join("a.qcow2"), None).unwrap().prefix, d.path().join("a"));
}

fn options(d: &Path) -> RunOptions {
    touch(&d.join("m-kernel"));
    touch(&d.join("m-initrd.img"));
    let mut o = RunOptions::new(d.join("m"));
    o.accel = AccelChoice::Tcg;
    o.cache_dir = Some(d.join("cache"));
    o
}

#[test]
fn prepare_makes_the_state_dir_and_keeps_the_mac() {
    let d = tempfile::tempdir().unwrap();
    let o = options(d.path());
    let first = prepare(&o).unwrap().plan;
    assert_eq!(first.state_dir, d.path().join("m-state"));
    assert_eq!(first.accel, Accel::Tcg);
    assert!(is_mac(&first.mac), "{}", first.mac);
    let octet = u8::from_str_radix(&first.mac[..2], 16).unwrap();
    assert_eq!(octet & 0x03, 0x02, "locally administered unicast: {}", first.mac);
    let second = prepare(&o).unwrap().plan;
    assert_eq!(first.mac, second.mac, "the MAC persists in the state dir");
    assert_ne!(first.uuid, second.uuid);
    assert_eq!(first.uuid.len(), 36);
}

#[test]
fn prepare_writes_the_data_iso() {
    let d = tempfile::tempdir().unwrap();
    let mut o = options(d.path());
    o.data = Some(DataSource::Inline("{\"a\":1}".into()));
    o.state_dir = Some(d.path().join("st"));
    let plan = prepare(&o).unwrap().plan;
    let iso = plan.data_iso.unwrap();
    assert_eq!(iso, d.path().join("st/data.iso"));
    let bytes = std::fs::read(&iso).unwrap();
    assert_eq!(&bytes[21 * 2048..21 * 2048 + 7], b"{\"a\":1}");

    o.data = Some(DataSource::File(d.path().join("absent.json")));
    let err = prepare(&o).unwrap_err();
    assert!(err.to_string().contains("absent.json"), "{err}");
}

#[test]
fn publish_needs_user_networking() {
    let d = tempfile::tempdir().unwrap();
    let mut o = options(d.path());
    o.networking = Networking::Tap("tap0".into());
    o.publish = vec![crate::flags::parse_publish("80:80").unwrap()];
    let err = prepare(&o).unwrap_err();
    assert!(matches!(err, PrepareError::PublishNeedsUser { .. }));
    assert!(err.to_string().ends_with("(got --networking tap,tap0)"), "{err}");
}

#[test]
fn missing_disks_are_created_with_qemu_img_or_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut o = options(d.path());
    o.disks = vec![DiskSpec::parse("file=nope.img").unwrap()];
    o.disks[0].path = Some(d.path().join("nope.img"));
    assert!(matches!(prepare(&o), Err(PrepareError::DiskMissing { .. })));

    if baleen_testkit::require_tool("qemu-img").is_none() {
        return;
    }
    o.disks =
        vec![DiskSpec::parse("size=16M").unwrap(), DiskSpec::parse("size=8M,format=raw").unwrap()];
    let plan = prepare(&o).unwrap().plan;
    let state = d.path().join("m-state");
    assert_eq!(plan.disks[0].path, state.join("disk.img"));
    assert_eq!(plan.disks[0].format.as_deref(), Some("qcow2"));
    assert_eq!(plan.disks[1].path, state.join("disk1.img"));
    let head = std::fs::read(state.join("disk.img")).unwrap();
    assert_eq!(&head[..4], b"QFI\xfb", "a qcow2 header");
    assert_eq!(std::fs::metadata(state.join("disk1.img")).unwrap().len(), 8 << 20);
}

#[test]
fn uefi_gets_a_private_copy_of_the_vars() {
    let d = tempfile::tempdir().unwrap();
    let fw = d.path().join("fw");
    std::fs::create_dir(&fw).unwrap();
    std::fs::write(fw.join("MY_CODE.fd"), b"code").unwrap();
    std::fs::write(fw.join("MY_VARS.fd"), b"vars").unwrap();
    let mut o = options(d.path());
    o.fw = Some(fw.join("MY_CODE.fd"));
    let plan = prepare(&o).unwrap().plan;
    let vars = d.path().join("m-state/MY_VARS.fd");
    assert_eq!(
        plan.firmware,
        Firmware::Uefi { code: fw.join("MY_CODE.fd"), vars: Some(vars.clone()) }
    );
    assert_eq!(std::fs::read(&vars).unwrap(), b"vars");
    // The VM's variables survive the next run.
    std::fs::write(&vars, b"changed by the guest").unwrap();
    prepare(&o).unwrap();
    assert_eq!(std::fs::read(&vars).unwrap(), b"changed by the guest");
}

#[test]
fn debian_ovmf_is_found() {
    if !Path::new("/usr/share/OVMF/OVMF_CODE_4M.fd").exists() {
        if baleen_testkit::tools_required() {
            panic!("Debian's ovmf is not installed");
        }
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let mut o = options(d.path());
    o.uefi = true;
    let plan = prepare(&o).unwrap().plan;
    assert_eq!(
        plan.firmware,
        Firmware::Uefi {
            code: "/usr/share/OVMF/OVMF_CODE_4M.fd".into(),
            vars: Some(d.path().join("m-state/OVMF_VARS_4M.fd")),
        }
    );
}

/// "KVM is not usable" printed on every run: once per probe now, then only with -v.
#[test]
fn a_cached_kvm_verdict_is_not_repeated() {
    let r = |cached| crate::accel::Resolved {
        accel: Accel::Tcg,
        notice: Some("note: KVM is not usable here".into()),
        cached,
    };
    assert_eq!(split_notices(r(false)), (vec!["note: KVM is not usable here".into()], vec![]));
    assert_eq!(split_notices(r(true)), (vec![], vec!["note: KVM is not usable here".into()]));
}

#[test]
fn netboot_needs_no_path_rewrites_loopback_and_needs_user_networking() {
    if crate::netboot::find_rom().is_err() {
        eprintln!("skipping: no virtio-net iPXE ROM (Debian's ipxe-qemu)");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let mut o = RunOptions::new("");
    o.accel = AccelChoice::Tcg;
    o.cache_dir = Some(d.path().join("cache"));
    o.netboot = Some("http://127.0.0.1:8080/sys.ipxe".into());
    let prepared = prepare(&o).unwrap();
    let plan = prepared.plan;
    assert_eq!(plan.boot, BootSource::Network { url: "http://10.0.2.2:8080/sys.ipxe".into() });
    assert_eq!(plan.firmware, Firmware::Bios);
    let state = plan.state_dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(plan.state_dir.starts_with(d.path().join("cache")), "{}", plan.state_dir.display());
    assert!(state.starts_with("netboot-") && state.ends_with("-state"), "{state}");
    assert!(prepared.notices.iter().any(|n| n.contains("10.0.2.2:8080")), "{:?}", prepared.notices);
    assert_eq!(prepare(&o).unwrap().plan.mac, plan.mac, "one state dir per URL: the MAC stays");

    o.networking = Networking::None;
    let err = prepare(&o).unwrap_err();
    let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(chain.contains("--netboot needs user networking (got --networking none)"), "{chain}");
}
