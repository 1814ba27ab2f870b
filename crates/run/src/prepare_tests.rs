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
        touch(&p);
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
