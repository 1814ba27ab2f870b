//! Real boots under qemu (TCG) of Debian's cloud kernel with a tiny busybox initrd that plays
//! baleen-init's side of the console protocol. Three boots, a few seconds each: a failing
//! onboot container reported through isa-debug-exit, a clean poweroff, and a hung guest.

use baleen_run::{Event, QemuEnd, EXIT_TIMEOUT};
use baleen_testkit::boot::{busybox_initrd, debug_exit_elf, test_options, BootTest};
use baleen_testkit::kernel::debian_cloud_kernel;
use std::path::PathBuf;
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(120);

/// A kernel and an initrd whose `/init` is `script` (after the common preamble), or `None` when
/// the tools are missing (skip).
fn guest(name: &str, script: &str) -> Option<(PathBuf, PathBuf)> {
    let kernel = debian_cloud_kernel()?;
    let dir = BootTest::scratch_dir(name);
    let init = format!(
        "#!/bin/busybox sh\n/bin/busybox --install -s /bin\nmount -t proc proc /proc\n{script}\n"
    );
    let initrd = busybox_initrd(&dir, &init, &[("bin/debug-exit", &debug_exit_elf(3), 0o755)])?;
    Some((kernel.vmlinuz, initrd))
}

#[test]
fn failed_onboot_container_is_named_and_its_status_comes_back_through_isa_debug_exit() {
    let script = r#"
echo "[    0.400] baleen: init started"
echo "[    0.410] baleen: onboot 001-broken started pid 12"
echo "[    0.420] baleen: onboot 001-broken exited 2"
echo "[    0.421] baleen: onboot 001-broken failed: sh: frobnicate: not found"
echo "[    0.500] baleen: poweroff status 3"
/bin/debug-exit
echo "debug-exit returned"
sleep 600
"#;
    let Some((kernel, initrd)) = guest("onboot-fails", script) else { return };
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
    let Some((kernel, initrd)) = guest("poweroff", script) else { return };
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

#[test]
fn hung_guest_is_stopped_by_the_timeout_with_124() {
    let Some((kernel, initrd)) = guest("hang", "echo guest-is-up\nsleep 600") else { return };
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
