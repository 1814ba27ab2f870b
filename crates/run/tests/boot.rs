//! Real boots under qemu (TCG) of Debian's cloud kernel with a tiny busybox initrd that plays
//! baleen-init's side of the console protocol. Three boots, a few seconds each: a failing
//! onboot container reported through isa-debug-exit, a clean poweroff, and a hung guest; a
//! guest with `--tpm`.

use baleen_run::{Event, QemuEnd, EXIT_TIMEOUT};
use baleen_testkit::boot::{
    busybox_initrd, debug_exit_elf, free_port, http_get, tcp_banner, test_options, BootTest,
    ScratchDir,
};
use baleen_testkit::kernel::debian_cloud_kernel;
use std::path::PathBuf;
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(120);

/// A kernel and an initrd whose `/init` is `script` (after the common preamble), in a scratch
/// dir that lives as long as the returned guard; `None` when the tools are missing (skip).
fn guest(name: &str, script: &str) -> Option<(ScratchDir, PathBuf, PathBuf)> {
    let kernel = debian_cloud_kernel()?;
    let dir = BootTest::scratch_dir(name);
    let init = format!(
        "#!/bin/busybox sh\n/bin/busybox --install -s /bin\nmount -t proc proc /proc\n{script}\n"
    );
    let initrd = busybox_initrd(&dir, &init, &[("bin/debug-exit", &debug_exit_elf(3), 0o755)])?;
    Some((dir, kernel.vmlinuz, initrd))
}

#[test]
fn failed_onboot_container_is_named_and_its_status_comes_back_through_isa_debug_exit() {
    let script = r#"
echo "[    0.400] baleen: init started"
echo "[    0.410] baleen: onboot 001-broken started pid 12"
echo "[    0.420] baleen: onboot 001-broken exited 2: sh: frobnicate: not found"
echo "[    0.500] baleen: poweroff status 3"
/bin/debug-exit
echo "debug-exit returned"
sleep 600
"#;
    let Some((_dir, kernel, initrd)) = guest("onboot-fails", script) else { return };
    let Some(vm) =
        BootTest::kernel_initrd("onboot-fails", &kernel, &initrd, "console=ttyS0 panic=-1")
    else {
        return;
    };
    vm.wait_for("baleen: poweroff status 3", BOOT);
    let out = vm.wait_exit();
    assert_eq!(out.end, QemuEnd::Exited((3 << 1) | 1), "qemu's own status");
    assert_eq!(out.verdict.code, 3);
    let msg = out.verdict.message.expect("a message for a non-zero status");
    assert!(msg.contains("001-broken") && msg.contains("frobnicate"), "{msg}");
    assert_eq!(out.watch.poweroff_status, Some(3));
}

#[test]
fn clean_poweroff_is_zero_and_the_timeline_is_read() {
    let script = r#"
echo "[    0.400] baleen: init started"
echo "[    0.450] baleen: service getty started pid 40"
echo "[    0.460] baleen: phase services started"
echo "[    0.900] baleen: poweroff status 0"
poweroff -f
"#;
    let Some((_dir, kernel, initrd)) = guest("poweroff", script) else { return };
    let Some(vm) = BootTest::kernel_initrd("poweroff", &kernel, &initrd, "console=ttyS0 panic=-1")
    else {
        return;
    };
    let out = vm.wait_exit();
    assert_eq!(out.end, QemuEnd::Exited(0));
    assert_eq!(out.verdict.code, 0, "{:?}", out.verdict.message);
    assert!(out.watch.events.iter().any(|(_, e)| *e == Event::InitStarted));
    let tl = out.watch.timeline().expect("a timeline");
    assert_eq!(tl.steps[0].0, "service getty started");
    assert!((tl.steps[0].1 - 0.05).abs() < 1e-6);
}

/// `--tpm`: the guest's kernel finds a TPM 2.0 (swtpm behind qemu's tpm-tis), whose PCR 11 is
/// zero since no systemd stub measured anything; swtpm keeps its state in the state dir and is
/// gone once qemu is.
#[test]
fn tpm_gives_the_guest_a_tpm2_whose_state_stays_in_the_state_dir() {
    if baleen_testkit::require_tool("swtpm").is_none() {
        return;
    }
    let script = r#"
mkdir -p /sys && mount -t sysfs sysfs /sys
echo "PCR11=$(cat /sys/class/tpm/tpm0/pcr-sha256/11) pcr11-read"
poweroff -f
"#;
    let Some((dir, kernel, initrd)) = guest("tpm", script) else { return };
    let prefix = dir.join("vm");
    std::os::unix::fs::symlink(&kernel, dir.join("vm-kernel")).unwrap();
    std::os::unix::fs::symlink(&initrd, dir.join("vm-initrd.img")).unwrap();
    std::fs::write(dir.join("vm-cmdline"), "console=ttyS0 panic=-1").unwrap();
    let mut opts = test_options(&prefix, &dir);
    opts.tpm = true;
    let Some(vm) = BootTest::with_options("tpm", opts, BOOT) else { return };
    let console = vm.wait_for("pcr11-read", BOOT);
    let out = vm.wait_exit();
    assert_eq!(out.end, QemuEnd::Exited(0), "{:?}", out.verdict);
    assert!(console.contains(&format!("PCR11={} pcr11-read", "0".repeat(64))), "{console}");
    let state = dir.join("state");
    let kept = std::fs::read_dir(state.join("tpm")).unwrap().count();
    assert!(kept > 0, "swtpm left no state in {}", state.display());
    let log = std::fs::read_to_string(state.join("swtpm.log")).unwrap_or_default();
    let pids = std::fs::read_dir("/proc").unwrap().filter_map(|e| {
        let cmd = std::fs::read(e.ok()?.path().join("cmdline")).ok()?;
        Some(String::from_utf8_lossy(&cmd).into_owned())
    });
    let sock = state.join("swtpm.sock").display().to_string();
    assert!(
        !pids.into_iter().any(|c| c.starts_with("swtpm") && c.contains(&sock)),
        "swtpm still runs after qemu ended; its log:\n{log}"
    );
}

#[test]
fn hung_guest_is_stopped_by_the_timeout_with_124() {
    let Some((_dir, kernel, initrd)) = guest("hang", "echo guest-is-up\nsleep 600") else { return };
    let dir = BootTest::scratch_dir("hang-vm");
    let prefix = dir.join("vm");
    std::os::unix::fs::symlink(&kernel, dir.join("vm-kernel")).unwrap();
    std::os::unix::fs::symlink(&initrd, dir.join("vm-initrd.img")).unwrap();
    std::fs::write(dir.join("vm-cmdline"), "console=ttyS0").unwrap();
    // Long enough to see the guest come up under TCG on a busy machine, then stop it.
    let Some(vm) =
        BootTest::with_options("hang", test_options(&prefix, &dir), Duration::from_secs(5))
    else {
        return;
    };
    let out = vm.wait_exit();
    assert_eq!(out.end, QemuEnd::TimedOut { secs: 5 });
    assert_eq!(out.verdict.code, EXIT_TIMEOUT);
    assert!(out.verdict.message.unwrap().contains("--timeout"));
}

/// The published-port path end to end: user networking, `--publish`, a guest HTTP server.
/// Debian's cloud kernel has virtio-net as modules, so the initrd carries and loads them.
#[test]
fn published_port_reaches_a_guest_http_server() {
    let Some(kernel) = debian_cloud_kernel() else { return };
    let mods = [
        "kernel/drivers/virtio/virtio_ring.ko",
        "kernel/drivers/virtio/virtio.ko",
        "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
        "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
        "kernel/drivers/virtio/virtio_pci.ko",
        "kernel/net/core/failover.ko",
        "kernel/drivers/net/net_failover.ko",
        "kernel/drivers/net/virtio_net.ko",
    ];
    let blobs: Vec<(String, Vec<u8>)> = mods
        .iter()
        .map(|m| {
            let name = m.rsplit('/').next().unwrap();
            (format!("mod/{name}"), std::fs::read(kernel.modules.join(m)).unwrap())
        })
        .collect();
    let load: String =
        mods.iter().map(|m| format!("insmod /mod/{}\n", m.rsplit('/').next().unwrap())).collect();
    let script = format!(
        "{load}ip link set lo up\nip link set eth0 up\nip addr add 10.0.2.15/24 dev eth0\n\
         mkdir -p /www\necho hello-from-the-guest > /www/index.html\n\
         httpd -p 80 -h /www\necho httpd-is-up\n\
         while true; do echo SSH-2.0-fake | nc -l -p 22; done &\nsleep 1\necho banner-is-up\n\
         sleep 600"
    );
    let dir = BootTest::scratch_dir("publish");
    let init = format!(
        "#!/bin/busybox sh\n/bin/busybox --install -s /bin\nmount -t proc proc /proc\n\
         mount -t sysfs sys /sys\nmount -t devtmpfs dev /dev\n{script}\n"
    );
    let extra: Vec<(&str, &[u8], u32)> =
        blobs.iter().map(|(p, b)| (p.as_str(), b.as_slice(), 0o644)).collect();
    let Some(initrd) = busybox_initrd(&dir, &init, &extra) else { return };
    std::os::unix::fs::symlink(&kernel.vmlinuz, dir.join("vm-kernel")).unwrap();
    std::os::unix::fs::symlink(&initrd, dir.join("vm-initrd.img")).unwrap();
    std::fs::write(dir.join("vm-cmdline"), "console=ttyS0").unwrap();
    let port = free_port();
    let port2 = std::iter::repeat_with(free_port).find(|p| *p != port).unwrap();
    let mut opts = test_options(dir.join("vm"), &dir);
    opts.networking = baleen_run::Networking::User;
    opts.publish = vec![
        baleen_run::flags::parse_publish(&format!("{port}:80")).unwrap(),
        baleen_run::flags::parse_publish(&format!("{port2}:22")).unwrap(),
    ];
    let Some(vm) = BootTest::with_options("publish", opts, BOOT) else { return };
    vm.wait_for("httpd-is-up", BOOT);
    let body = http_get(port, "/index.html", "hello-from-the-guest", Duration::from_secs(30));
    assert!(body.starts_with("HTTP/1.") && body.contains(" 200 "), "{body}");
    // A guest service that speaks first (as sshd's banner): busybox nc serving one line.
    vm.wait_for("banner-is-up", BOOT);
    assert_eq!(tcp_banner(port2, "SSH-2.0-", Duration::from_secs(30)), "SSH-2.0-fake");
    vm.stop();
}

/// ISO boot (`-cdrom`, `-boot d`, SeaBIOS → isolinux) and typing into the serial console: the
/// guest reads a line from /dev/console and echoes it back, then powers off.
#[test]
fn iso_boots_from_the_cdrom_and_the_console_takes_input() {
    let Some(genisoimage) = baleen_testkit::require_tool("genisoimage") else { return };
    let isolinux = std::path::Path::new("/usr/lib/ISOLINUX/isolinux.bin");
    let ldlinux = std::path::Path::new("/usr/lib/syslinux/modules/bios/ldlinux.c32");
    if !isolinux.is_file() || !ldlinux.is_file() {
        assert!(!baleen_testkit::tools_required(), "isolinux / syslinux-common are not installed");
        eprintln!("skipping: isolinux / syslinux-common are not installed");
        return;
    }
    let script = "echo type-something\nread line\necho \"got:$line\"\npoweroff -f";
    let Some((dir, kernel, initrd)) = guest("iso", script) else { return };
    let root = dir.join("iso-root");
    std::fs::create_dir_all(root.join("isolinux")).unwrap();
    std::fs::copy(isolinux, root.join("isolinux/isolinux.bin")).unwrap();
    std::fs::copy(ldlinux, root.join("isolinux/ldlinux.c32")).unwrap();
    std::fs::copy(&kernel, root.join("vmlinuz")).unwrap();
    std::fs::copy(&initrd, root.join("initrd.img")).unwrap();
    std::fs::write(
        root.join("isolinux/isolinux.cfg"),
        "DEFAULT linux\nLABEL linux\n  KERNEL /vmlinuz\n  INITRD /initrd.img\n  \
         APPEND console=ttyS0 panic=-1\n",
    )
    .unwrap();
    let iso = dir.join("test.iso");
    let ok = std::process::Command::new(genisoimage)
        .args(["-quiet", "-o"])
        .arg(&iso)
        .args(["-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat", "-no-emul-boot"])
        .args(["-boot-load-size", "4", "-boot-info-table"])
        .arg(&root)
        .status()
        .unwrap();
    assert!(ok.success(), "genisoimage failed");
    let Some(mut vm) = BootTest::path("iso", &iso) else { return };
    vm.wait_for("type-something", BOOT);
    vm.send("hello-over-serial\n");
    vm.wait_for("got:hello-over-serial", Duration::from_secs(60));
    let out = vm.wait_exit();
    assert_eq!(out.verdict.code, 0, "{:?}", out.verdict.message);
}

/// A kernel panic without `panic=N` on the cmdline: baleen stops the VM and says why, instead of
/// waiting for the timeout.
#[test]
fn kernel_panic_is_reported_and_the_vm_stopped() {
    // init exits at once: "Kernel panic - not syncing: Attempted to kill init!"
    let Some((_dir, kernel, initrd)) = guest("panic", "echo about-to-exit\nexit 7") else { return };
    let Some(vm) = BootTest::kernel_initrd("panic", &kernel, &initrd, "console=ttyS0") else {
        return;
    };
    let out = vm.wait_exit();
    assert_eq!(out.end, QemuEnd::KernelPanicked);
    assert_eq!(out.verdict.code, 1);
    let msg = out.verdict.message.unwrap();
    assert!(msg.contains("Attempted to kill init"), "{msg}");
}

/// The harness's clean shutdown: QMP `system_powerdown` presses the ACPI power button. The guest
/// (with the kernel's `button` driver, as baleen-init loads it) sees the ACPI interrupt and
/// powers off.
#[test]
fn shutdown_presses_the_acpi_power_button() {
    let Some(kernel) = debian_cloud_kernel() else { return };
    let button = std::fs::read(kernel.modules.join("kernel/drivers/acpi/button.ko")).unwrap();
    let dir = BootTest::scratch_dir("powerdown");
    let init = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
insmod /mod/button.ko
before=$(grep acpi /proc/interrupts)
echo waiting-for-power-button
while [ "$(grep acpi /proc/interrupts)" = "$before" ]; do sleep 0.2; done
echo power-button-pressed
poweroff -f
"#;
    let Some(initrd) = busybox_initrd(&dir, init, &[("mod/button.ko", &button, 0o644)]) else {
        return;
    };
    let Some(vm) =
        BootTest::kernel_initrd("powerdown", &kernel.vmlinuz, &initrd, "console=ttyS0 quiet")
    else {
        return;
    };
    vm.wait_for("waiting-for-power-button", BOOT);
    let out = vm.shutdown(Duration::from_secs(60));
    assert_eq!(out.end, QemuEnd::Exited(0), "{:?}", out.verdict);
    assert_eq!(out.verdict.code, 0);
}

/// A unified kernel image (systemd's EFI stub + kernel + initrd + cmdline, assembled with
/// objcopy) boots under OVMF through `-kernel`, with this VM's own copy of the UEFI variables;
/// its status comes back through isa-debug-exit as from any other boot. Then the same UKI boots
/// from an EFI disk image.
#[test]
fn uki_and_efi_disk_boot_under_ovmf() {
    let stub = std::path::Path::new("/usr/lib/systemd/boot/efi/linuxx64.efi.stub");
    let ovmf = std::path::Path::new("/usr/share/OVMF/OVMF_CODE_4M.fd");
    let Some(objcopy) = baleen_testkit::require_tool("objcopy") else { return };
    if !stub.is_file() || !ovmf.is_file() {
        assert!(!baleen_testkit::tools_required(), "systemd-boot-efi / ovmf are not installed");
        eprintln!("skipping: systemd-boot-efi / ovmf are not installed");
        return;
    }
    let script = "echo \"[    0.500] baleen: poweroff status 3\"\n/bin/debug-exit\nsleep 600";
    let Some((dir, kernel, initrd)) = guest("uki", script) else { return };
    let cmdline = dir.join("cmdline.txt");
    std::fs::write(&cmdline, "console=ttyS0 panic=-1").unwrap();
    let kernel_len = std::fs::metadata(&kernel).unwrap().len();
    let linux_vma: u64 = 0x200_0000;
    let initrd_vma = (linux_vma + kernel_len).next_multiple_of(0x10_0000);
    let uki = dir.join("test.efi");
    let mut cmd = std::process::Command::new(objcopy);
    for (name, file, vma) in [
        (".cmdline", cmdline.as_path(), 0x3_0000u64),
        (".linux", kernel.as_path(), linux_vma),
        (".initrd", initrd.as_path(), initrd_vma),
    ] {
        cmd.arg("--add-section").arg(format!("{name}={}", file.display()));
        cmd.arg("--change-section-vma").arg(format!("{name}={vma:#x}"));
    }
    assert!(cmd.arg(stub).arg(&uki).status().unwrap().success(), "objcopy failed");

    let Some(vm) = BootTest::path("uki", &uki) else { return };
    vm.wait_for("poweroff status 3", BOOT);
    let out = vm.wait_exit();
    assert_eq!(out.end, QemuEnd::Exited((3 << 1) | 1));
    assert_eq!(out.verdict.code, 3);

    // The same UKI as \EFI\BOOT\BOOTX64.EFI on a FAT disk named `*-efi.img`: detected as a
    // raw disk that needs UEFI, found by OVMF's removable-media boot path.
    let (Some(mkfs), Some(mmd), Some(mcopy)) = (
        baleen_testkit::require_tool("mkfs.vfat"),
        baleen_testkit::require_tool("mmd"),
        baleen_testkit::require_tool("mcopy"),
    ) else {
        return;
    };
    let disk = dir.join("esp-efi.img");
    std::fs::File::create(&disk).unwrap().set_len(40 << 20).unwrap();
    let run = |cmd: &mut std::process::Command| {
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(std::process::Command::new(mkfs).arg(&disk));
    run(std::process::Command::new(mmd).arg("-i").arg(&disk).args(["::/EFI", "::/EFI/BOOT"]));
    run(std::process::Command::new(mcopy)
        .arg("-i")
        .arg(&disk)
        .arg(&uki)
        .arg("::/EFI/BOOT/BOOTX64.EFI"));
    let Some(vm) = BootTest::path("esp", &disk) else { return };
    vm.wait_for("poweroff status 3", BOOT);
    assert_eq!(vm.wait_exit().verdict.code, 3);
}

/// The issue's "done when", with the real baleen-init: a deliberately broken onboot container
/// (LinuxKit's bundle layout, written here by hand) under `baleen.onboot_failure=poweroff` makes
/// the run end non-zero with the container's name and its stderr in the message.
#[test]
fn real_init_names_a_broken_onboot_container() {
    use std::os::unix::fs::PermissionsExt;
    if baleen_testkit::require_tool("qemu-system-x86_64").is_none() {
        return;
    }
    let Some(kernel) = debian_cloud_kernel() else { return };
    let init = baleen_testkit::init::init_binary();
    let dir = BootTest::scratch_dir("real-init");
    let root = dir.join("root");
    let bundle = root.join("containers/onboot/000-broken");
    let rootfs = bundle.join("rootfs");
    for d in ["dev", "proc", "sys", "run", "tmp", "var", "etc"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for d in ["bin", "dev", "proc", "sys", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(&init, root.join("init")).unwrap();
    std::fs::set_permissions(root.join("init"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    // config.json in LinuxKit's ConfigToOCI shape (defaults: ro root, pid+mount namespaces).
    let config = r#"{
  "ociVersion": "1.2.1",
  "process": {
    "user": {"uid": 0, "gid": 0},
    "args": ["/bin/sh", "-c", "echo cannot-frobnicate-the-widget >&2; exit 3"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    "cwd": "/"
  },
  "root": {"path": "rootfs", "readonly": true},
  "mounts": [
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k", "ro"]},
    {"destination": "/proc", "type": "proc", "source": "proc",
     "options": ["nosuid", "nodev", "noexec", "relatime"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]}
  ],
  "linux": {"resources": {}, "namespaces": [{"type": "pid"}, {"type": "mount"}]}
}"#;
    let runtime = r#"{
  "cgroups": [],
  "mounts": [{"source": "/containers/onboot/000-broken/rootfs",
              "destination": "/containers/onboot/000-broken/rootfs", "options": ["bind"]}],
  "mkdir": [], "interfaces": [],
  "bindNS": {"cgroup": "", "ipc": "", "mnt": "", "net": "", "pid": "", "user": "", "uts": ""},
  "namespace": ""
}"#;
    std::fs::write(bundle.join("config.json"), config).unwrap();
    std::fs::write(bundle.join("runtime.json"), runtime).unwrap();
    let initrd = dir.join("initrd.img");
    let ok = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet > '{}'",
            initrd.display()
        ))
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(ok.success(), "cpio failed");

    let Some(vm) = BootTest::kernel_initrd(
        "real-init",
        &kernel.vmlinuz,
        &initrd,
        "console=ttyS0 baleen.onboot_failure=poweroff",
    ) else {
        return;
    };
    vm.wait_for("baleen: poweroff status", BOOT);
    let out = vm.wait_exit();
    assert_ne!(out.verdict.code, 0);
    let msg = out.verdict.message.unwrap_or_default();
    eprintln!("baleen run would say: {msg} (exit {})", out.verdict.code);
    assert!(
        msg.contains("000-broken") && msg.contains("cannot-frobnicate-the-widget"),
        "the message names the container and quotes its stderr: {msg}"
    );
}

/// `--data` and `--disk` as Debian's cloud kernel sees them: on virtio-scsi, the metadata
/// CD-ROM as /dev/sr0 with a file `config` (our ISO9660 writer read by Linux's isofs), the disk
/// as /dev/sda.
#[test]
fn data_cdrom_and_extra_disk_are_visible_to_the_guest() {
    let Some(kernel) = debian_cloud_kernel() else { return };
    let mods = [
        "kernel/drivers/virtio/virtio_ring.ko",
        "kernel/drivers/virtio/virtio.ko",
        "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
        "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
        "kernel/drivers/virtio/virtio_pci.ko",
        "kernel/drivers/scsi/scsi_common.ko",
        "kernel/drivers/scsi/scsi_mod.ko",
        "kernel/drivers/scsi/virtio_scsi.ko",
        "kernel/drivers/scsi/sd_mod.ko",
        "kernel/drivers/cdrom/cdrom.ko",
        "kernel/drivers/scsi/sr_mod.ko",
        "kernel/fs/isofs/isofs.ko",
    ];
    let blobs: Vec<(String, Vec<u8>)> = mods
        .iter()
        .map(|m| {
            let name = m.rsplit('/').next().unwrap();
            (format!("mod/{name}"), std::fs::read(kernel.modules.join(m)).unwrap())
        })
        .collect();
    let load: String =
        mods.iter().map(|m| format!("insmod /mod/{}\n", m.rsplit('/').next().unwrap())).collect();
    let init = format!(
        "#!/bin/busybox sh\n/bin/busybox --install -s /bin\nmount -t proc proc /proc\n\
         mount -t sysfs sys /sys\nmount -t devtmpfs dev /dev\n{load}\
         for i in $(seq 50); do [ -b /dev/sr0 ] && [ -b /dev/sda ] && break; sleep 0.2; done\n\
         mkdir -p /mnt && mount -t iso9660 -o ro /dev/sr0 /mnt\n\
         echo \"config:$(cat /mnt/config)\"\n\
         echo \"sda-sectors:$(cat /sys/block/sda/size)\"\npoweroff -f\n"
    );
    let dir = BootTest::scratch_dir("data-disk");
    let extra: Vec<(&str, &[u8], u32)> =
        blobs.iter().map(|(p, b)| (p.as_str(), b.as_slice(), 0o644)).collect();
    let Some(initrd) = busybox_initrd(&dir, &init, &extra) else { return };
    std::os::unix::fs::symlink(&kernel.vmlinuz, dir.join("vm-kernel")).unwrap();
    std::os::unix::fs::symlink(&initrd, dir.join("vm-initrd.img")).unwrap();
    std::fs::write(dir.join("vm-cmdline"), "console=ttyS0 quiet").unwrap();
    let disk = dir.join("extra.img");
    std::fs::File::create(&disk).unwrap().set_len(16 << 20).unwrap();
    let mut opts = test_options(dir.join("vm"), &dir);
    opts.data = Some(baleen_run::DataSource::Inline("{\"hostname\":\"baleen-test\"}".into()));
    opts.disks =
        vec![baleen_run::DiskSpec::parse(&format!("{},format=raw", disk.display())).unwrap()];
    let Some(vm) = BootTest::with_options("data-disk", opts, BOOT) else { return };
    vm.wait_for("config:{\"hostname\":\"baleen-test\"}", BOOT);
    vm.wait_for("sda-sectors:32768", BOOT);
    assert_eq!(vm.wait_exit().verdict.code, 0);
}

/// Something the firmware cannot boot (here a file of text given as `--iso`): SeaBIOS says
/// "No bootable device" and retries every minute; the run stops there with status 1 and says
/// why, instead of sitting until `--timeout` (124).
#[test]
fn nothing_to_boot_stops_the_run_with_a_message() {
    let dir = BootTest::scratch_dir("no-boot");
    let junk = dir.join("notes.bin");
    std::fs::write(&junk, "kernel:\n  image: linuxkit/kernel\n".repeat(2000)).unwrap();
    let mut opts = test_options(junk, &dir);
    opts.boot_kind = Some(baleen_run::BootKind::Iso);
    let Some(vm) = BootTest::with_options("no-boot", opts, Duration::from_secs(300)) else {
        return;
    };
    let out = vm.wait_exit();
    assert_eq!(out.end, QemuEnd::NoBootDevice, "{:?}", out.verdict);
    assert_eq!(out.verdict.code, 1);
    let msg = out.verdict.message.unwrap();
    assert!(msg.contains("found nothing to boot"), "{msg}");
}

/// The console keys `run --help` promises: Ctrl-A H lists them and Ctrl-A X quits qemu. They
/// did nothing: `-qmp` counts as a monitor, so `-nographic` alone gave a plain stdio serial
/// without qemu's mux (and Ctrl-C, with signal=on, killed the VM instead of reaching the guest).
#[test]
fn ctrl_a_h_lists_the_console_keys_and_ctrl_a_x_quits() {
    let Some((_dir, kernel, initrd)) = guest("ctrl-a", "echo guest-is-up\nsleep 600") else {
        return;
    };
    let Some(mut vm) = BootTest::kernel_initrd("ctrl-a", &kernel, &initrd, "console=ttyS0") else {
        return;
    };
    vm.wait_for("guest-is-up", BOOT);
    vm.send("\x01h");
    vm.wait_for("C-a x    exit emulator", BOOT);
    vm.send("\x01x");
    let out = vm.wait_exit();
    assert_eq!(out.end, QemuEnd::Exited(0), "{:?}", out.verdict);
}
