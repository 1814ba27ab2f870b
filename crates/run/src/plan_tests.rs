//! Golden-style checks of the qemu argv: each test spells out the whole command line, so any
//! change in order or spelling shows up as a diff against LinuxKit's (spec §8.1).

use super::*;

fn base(boot: BootSource) -> QemuPlan {
    QemuPlan {
        arch: Arch::X86_64,
        cpus: 1,
        mem_mb: 1024,
        boot,
        firmware: Firmware::Bios,
        disks: Vec::new(),
        data_iso: None,
        networking: Networking::User,
        publish: Vec::new(),
        mac: "02:00:00:00:00:01".into(),
        uuid: "00000000-0000-4000-8000-000000000000".into(),
        accel: Accel::Tcg,
        state_dir: "/s".into(),
        gui: false,
        devices: Vec::new(),
        tpm: false,
        guest_agent: false,
    }
}

fn kernel_boot() -> BootSource {
    BootSource::KernelInitrd {
        kernel: "out/m-kernel".into(),
        initrd: "out/m-initrd.img".into(),
        cmdline: "console=ttyS0 quiet".into(),
    }
}

fn line(plan: &QemuPlan) -> String {
    plan.argv().iter().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
}

const HEAD: &str = "-smp 1 -m 1024 -uuid 00000000-0000-4000-8000-000000000000 -pidfile /s/qemu.pid \
                    -machine q35,accel=tcg \
                    -object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-pci,rng=rng0";
const NET: &str = "-device virtio-net-pci,netdev=t0,mac=02:00:00:00:00:01 -netdev user,id=t0";
/// The console: serial and monitor muxed on stdio, Ctrl-C for the guest.
const CONSOLE: &str = "-nographic -chardev stdio,id=con0,mux=on,signal=off -serial chardev:con0 -mon chardev=con0,mode=readline";

const TAIL: &str = "-nographic -chardev stdio,id=con0,mux=on,signal=off -serial chardev:con0 \
    -mon chardev=con0,mode=readline -qmp unix:/s/qmp.sock,server=on,wait=off \
                    -device isa-debug-exit,iobase=0xf4,iosize=0x04 -no-reboot";

#[test]
fn kernel_initrd_boot() {
    assert_eq!(
        line(&base(kernel_boot())),
        format!(
            "{HEAD} -kernel out/m-kernel -initrd out/m-initrd.img -append console=ttyS0 quiet \
             {NET} {TAIL}"
        )
    );
}

#[test]
fn the_cmdline_is_one_argument() {
    let argv = base(kernel_boot()).argv();
    let i = argv.iter().position(|a| a == "-append").unwrap();
    assert_eq!(argv[i + 1], "console=ttyS0 quiet");
}

#[test]
fn kvm_cpus_and_memory() {
    let mut p = base(kernel_boot());
    p.accel = Accel::Kvm;
    p.cpus = 4;
    p.mem_mb = 4096;
    let l = line(&p);
    assert!(l.starts_with("-smp 4 -m 4096 -uuid "), "{l}");
    assert!(l.contains(" -machine q35,accel=kvm "), "{l}");
}

#[test]
fn iso_boot_with_data_and_disks() {
    let mut p = base(BootSource::Iso("a.iso".into()));
    p.disks = vec![
        Disk { path: "d0.qcow2".into(), format: Some("qcow2".into()), size_mb: None },
        Disk { path: "d1.img".into(), format: None, size_mb: None },
    ];
    p.data_iso = Some("/s/data.iso".into());
    assert_eq!(
        line(&p),
        format!(
            "{HEAD} -boot d -cdrom a.iso -device virtio-scsi-pci,id=scsi0 \
             -drive file=d0.qcow2,format=qcow2,if=none,id=disk0 \
             -device scsi-hd,drive=disk0,bus=scsi0.0 \
             -drive file=d1.img,if=none,id=disk1 -device scsi-hd,drive=disk1,bus=scsi0.0 \
             -drive file=/s/data.iso,format=raw,if=none,id=data,media=cdrom,readonly=on \
             -device scsi-cd,drive=data,bus=scsi0.0 {NET} {TAIL}"
        )
    );
}

#[test]
fn data_iso_alone_is_a_scsi_cdrom() {
    let mut p = base(kernel_boot());
    p.data_iso = Some("/s/data.iso".into());
    let l = line(&p);
    assert!(
        l.contains(
            " -device virtio-scsi-pci,id=scsi0 \
             -drive file=/s/data.iso,format=raw,if=none,id=data,media=cdrom,readonly=on \
             -device scsi-cd,drive=data,bus=scsi0.0 -kernel out/m-kernel "
        ),
        "{l}"
    );
    assert!(!l.contains("-boot d") && !l.contains("-cdrom"), "{l}");
}

#[test]
fn disk_boot_is_disk_zero_with_its_format() {
    let mut p = base(BootSource::Disk { path: "x.qcow2".into(), format: "qcow2".into() });
    p.disks = vec![Disk {
        path: "/s/disk.img".into(),
        format: Some("qcow2".into()),
        size_mb: Some(1024),
    }];
    assert_eq!(
        line(&p),
        format!(
            "{HEAD} -drive file=x.qcow2,format=qcow2,index=0,media=disk \
             -device virtio-scsi-pci,id=scsi0 \
             -drive file=/s/disk.img,format=qcow2,if=none,id=disk0 \
             -device scsi-hd,drive=disk0,bus=scsi0.0 {NET} {TAIL}"
        )
    );
}

/// An EFI disk sits on virtio-scsi as the first SCSI disk: a `--root` disk's stage 1 reads its
/// root partition, and Debian's cloud kernel has no AHCI driver.
#[test]
fn uefi_disk_uses_two_pflash_drives_with_a_private_vars_copy() {
    let mut p = base(BootSource::Disk { path: "x-efi.img".into(), format: "raw".into() });
    p.firmware = Firmware::Uefi {
        code: "/usr/share/OVMF/OVMF_CODE_4M.fd".into(),
        vars: Some("/s/OVMF_VARS_4M.fd".into()),
    };
    assert_eq!(
        line(&p),
        format!(
            "{HEAD} -device virtio-scsi-pci,id=scsi0 \
             -drive file=x-efi.img,format=raw,if=none,id=boot \
             -device scsi-hd,drive=boot,bus=scsi0.0,bootindex=0 \
             -drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
             -drive if=pflash,format=raw,unit=1,file=/s/OVMF_VARS_4M.fd {NET} {TAIL}"
        )
    );
}

/// Also under Secure Boot the EFI disk is the first SCSI disk, not on q35's AHCI: a signed
/// `--root` disk's stage 1 found no block device at all when it was.
#[test]
fn secure_boot_turns_smm_on_and_locks_the_variable_flash_to_smm() {
    let mut p = base(BootSource::Disk { path: "x-efi.img".into(), format: "raw".into() });
    p.firmware = Firmware::SecureBoot {
        code: "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd".into(),
        vars: "/s/OVMF_VARS_4M.enrolled.fd".into(),
    };
    let head = HEAD.replace("q35,accel=tcg", "q35,smm=on,accel=tcg");
    assert_eq!(
        line(&p),
        format!(
            "{head} -device virtio-scsi-pci,id=scsi0 \
             -drive file=x-efi.img,format=raw,if=none,id=boot \
             -device scsi-hd,drive=boot,bus=scsi0.0,bootindex=0 \
             -global driver=cfi.pflash01,property=secure,value=on \
             -drive if=pflash,format=raw,unit=0,readonly=on,\
             file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd \
             -drive if=pflash,format=raw,unit=1,file=/s/OVMF_VARS_4M.enrolled.fd {NET} {TAIL}"
        )
    );
}

#[test]
fn uki_boots_through_ovmf_kernel_loading() {
    let mut p = base(BootSource::Uki("m.efi".into()));
    p.firmware = Firmware::Uefi { code: "/fw/OVMF.fd".into(), vars: None };
    assert_eq!(
        line(&p),
        format!(
            "{HEAD} -drive if=pflash,format=raw,unit=0,readonly=on,file=/fw/OVMF.fd \
             -kernel m.efi {NET} {TAIL}"
        )
    );
}

#[test]
fn squashfs_root_is_disk_zero_and_root_is_appended() {
    let p = base(BootSource::Squashfs {
        kernel: "m-kernel".into(),
        squashfs: "m-squashfs.img".into(),
        cmdline: "console=ttyS0".into(),
        initrd: None,
        cdrom: false,
    });
    assert_eq!(
        line(&p),
        format!(
            "{HEAD} -drive file=m-squashfs.img,format=raw,index=0,media=disk \
             -kernel m-kernel -append console=ttyS0 root=/dev/sda {NET} {TAIL}"
        )
    );
}

#[test]
fn stage1_roots_sit_on_virtio_scsi_before_any_disk() {
    let mut p = base(BootSource::Squashfs {
        kernel: "m-kernel".into(),
        squashfs: "m-erofs.img".into(),
        cmdline: "console=ttyS0".into(),
        initrd: Some("m-root-initrd.img".into()),
        cdrom: false,
    });
    p.disks = vec![Disk { path: "d.img".into(), format: Some("raw".into()), size_mb: None }];
    assert_eq!(
        line(&p),
        format!(
            "{HEAD} -device virtio-scsi-pci,id=scsi0 \
             -drive file=m-erofs.img,format=raw,if=none,id=root,readonly=on \
             -device scsi-hd,drive=root,bus=scsi0.0 \
             -drive file=d.img,format=raw,if=none,id=disk0 -device scsi-hd,drive=disk0,bus=scsi0.0 \
             -kernel m-kernel -initrd m-root-initrd.img -append console=ttyS0 root=/dev/sda \
             {NET} {TAIL}"
        )
    );
    p.disks.clear();
    p.boot = BootSource::Squashfs {
        kernel: "m-kernel".into(),
        squashfs: "m.iso".into(),
        cmdline: String::new(),
        initrd: Some("m-root-initrd.img".into()),
        cdrom: true,
    };
    assert_eq!(
        line(&p),
        format!(
            "{HEAD} -device virtio-scsi-pci,id=scsi0 \
             -drive file=m.iso,format=raw,if=none,id=root,media=cdrom,readonly=on \
             -device scsi-cd,drive=root,bus=scsi0.0 \
             -kernel m-kernel -initrd m-root-initrd.img -append root=/dev/sr0 {NET} {TAIL}"
        )
    );
}

#[test]
fn networking_variants() {
    let mut p = base(kernel_boot());
    p.publish = vec![
        Publish { host: 8080, guest: 80, proto: Proto::Tcp },
        Publish { host: 5353, guest: 53, proto: Proto::Udp },
    ];
    assert!(line(&p)
        .contains(" -netdev user,id=t0,hostfwd=tcp::8080-:80,hostfwd=udp::5353-:53 -nographic"));
    p.publish.clear();
    p.networking = Networking::None;
    let l = line(&p);
    assert!(l.contains(" -net none -nographic") && !l.contains("virtio-net"), "{l}");
    p.networking = Networking::Tap("tap0".into());
    assert!(line(&p).contains(" -netdev tap,id=t0,ifname=tap0,script=no,downscript=no "));
    p.networking = Networking::Bridge("br0".into());
    assert!(line(&p).contains(" -netdev bridge,id=t0,br=br0 "));
}

#[test]
fn gui_and_extra_devices() {
    let mut p = base(kernel_boot());
    p.gui = true;
    p.devices = vec!["virtio-balloon".into(), "usb-kbd".into()];
    let l = line(&p);
    assert!(!l.contains("-nographic"), "{l}");
    assert!(l.ends_with(
        "-device virtio-balloon -device usb-kbd -qmp unix:/s/qmp.sock,server=on,wait=off \
         -device isa-debug-exit,iobase=0xf4,iosize=0x04 -no-reboot"
    ));
}

#[test]
fn guest_agent_is_a_virtio_serial_port_on_a_socket_in_the_state_dir() {
    let mut p = base(kernel_boot());
    assert!(!line(&p).contains("qga"), "no port unless asked for");
    p.guest_agent = true;
    let l = line(&p);
    assert!(
        l.contains(
            "-chardev socket,id=qga0,server=on,wait=off,path=/s/qga.sock -device virtio-serial \
             -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0"
        ),
        "{l}"
    );
}

#[test]
fn commas_in_paths_are_doubled_for_drive_options() {
    let p = base(BootSource::Disk { path: "a,b.img".into(), format: "raw".into() });
    assert!(line(&p).contains(" -drive file=a,,b.img,format=raw,index=0,media=disk "));
}

#[test]
fn aarch64_under_tcg_uses_virt_and_no_isa_device() {
    let mut p = base(kernel_boot());
    p.arch = Arch::Aarch64;
    assert_eq!(p.qemu_binary(), "qemu-system-aarch64");
    let l = line(&p);
    assert!(l.contains(" -cpu max,pauth-impdef=on -machine virt,accel=tcg "), "{l}");
    assert!(
        !l.contains("isa-debug-exit")
            && l.ends_with(&format!(
                "{CONSOLE} -qmp unix:/s/qmp.sock,server=on,wait=off -no-reboot"
            )),
        "{l}"
    );
}

#[test]
fn no_qmp_socket_when_the_state_path_is_too_long_for_a_socket() {
    let mut p = base(kernel_boot());
    p.state_dir = PathBuf::from(format!("/{}", "d".repeat(120)));
    assert_eq!(p.qmp_socket(), None);
    assert!(!line(&p).contains("-qmp"));
}

#[test]
fn argv_is_a_pure_function_of_the_plan() {
    let p = base(BootSource::Iso("a.iso".into()));
    assert_eq!(p.argv(), p.clone().argv());
}

#[test]
fn netboot_boots_the_nic_with_the_url_as_the_dhcp_boot_file() {
    let plan = base(BootSource::Network { url: "http://10.0.2.2:8080/a,b.ipxe".into() });
    assert_eq!(
        line(&plan),
        format!(
            "{HEAD} -boot n -device virtio-net-pci,netdev=t0,mac=02:00:00:00:00:01 \
             -netdev user,id=t0,bootfile=http://10.0.2.2:8080/a,,b.ipxe {TAIL}"
        )
    );
}
