//! The spine, end to end: a YAML system whose kernel, init and containers are OCI images in the
//! store, built by the pipeline into kernel+initrd, booted under qemu (TCG) with Debian's cloud
//! kernel and baleen-init. One boot per initrd compression (gzip, zstd); each checks onboot,
//! a writable (overlay) service reading a `files` entry, onshutdown and a clean poweroff.

use baleen_build::{build, Format, Output, Request};
use baleen_formats::InitrdCompression;
use baleen_oci::{Platform, PullOptions, Store};
use baleen_testkit::boot::BootTest;
use baleen_testkit::image::ImageBuilder;
use baleen_testkit::layers::{dir, file, file_mode, symlink, tar_layer};
use std::path::Path;
use std::time::Duration;

const YAML: &str = r#"
kernel:
  image: baleen/spine-kernel:1
  cmdline: "console=ttyS0 panic=-1 baleen.modules=overlay baleen.debug=1"
init:
  - baleen/spine-init:1
onboot:
  - name: hello
    image: baleen/spine-busybox:1
    command: ["/bin/sh", "-c", "echo spine-onboot-ok"]
onshutdown:
  - name: bye
    image: baleen/spine-busybox:1
    command: ["/bin/sh", "-c", "echo spine-onshutdown-ok"]
services:
  - name: reader
    image: baleen/spine-busybox:1
    binds:
      - /etc/motd:/etc/motd:ro
    command: ["/bin/sh", "-c", "echo writable > /tmp-test && cat /tmp-test && cat /etc/motd; trap 'exit 0' TERM; while :; do sleep 1; done"]
  - name: zz-poweroff
    image: baleen/spine-busybox:1
    pid: host
    command: ["/bin/sh", "-c", "sleep 2; echo spine-powering-off; kill -USR2 1"]
files:
  - path: etc/motd
    contents: "spine-files-ok\n"
    mode: "0644"
"#;

/// Images from the real parts: Debian's kernel and overlay module, the static baleen-init, and
/// Debian's static busybox as the containers' userland.
fn store(at: &Path, kernel: &baleen_testkit::kernel::Kernel) -> Store {
    let overlay = "kernel/fs/overlayfs/overlay.ko";
    let modules_dir = format!("lib/modules/{}", kernel.release);
    // Every directory is listed, as in LinuxKit's kernel tars: the kernel's initramfs unpacker
    // creates no missing parents.
    let modules = tar_layer(&[
        dir("lib/"),
        dir("lib/modules/"),
        dir(&format!("{modules_dir}/")),
        dir(&format!("{modules_dir}/kernel/")),
        dir(&format!("{modules_dir}/kernel/fs/")),
        dir(&format!("{modules_dir}/kernel/fs/overlayfs/")),
        file(
            &format!("{modules_dir}/{overlay}"),
            &std::fs::read(kernel.modules.join(overlay)).unwrap(),
        ),
    ]);
    ImageBuilder::new()
        .layer(&[
            file("kernel", &std::fs::read(&kernel.vmlinuz).unwrap()),
            file("kernel.tar", &modules),
        ])
        .build()
        .write_layout(at, "docker.io/baleen/spine-kernel:1");
    let init = std::fs::read(baleen_testkit::init::init_binary()).unwrap();
    ImageBuilder::new()
        .layer(&[file_mode("init", &init, 0o755)])
        .build()
        .write_layout(at, "docker.io/baleen/spine-init:1");
    let busybox = std::fs::read("/bin/busybox").unwrap();
    ImageBuilder::new()
        // No `bin` entry: the initrd writer must create the missing parent, or the kernel's
        // unpacker silently drops bin/busybox (regression: found booting this test).
        .layer(&[
            file_mode("bin/busybox", &busybox, 0o755),
            symlink("bin/sh", "busybox"),
            symlink("bin/cat", "busybox"),
            symlink("bin/sleep", "busybox"),
            symlink("bin/kill", "busybox"),
            dir("tmp"),
        ])
        .build()
        .write_layout(at, "docker.io/baleen/spine-busybox:1");
    Store::open(at).unwrap()
}

fn boot_with(compression: InitrdCompression, name: &str) {
    let Some(_) = baleen_testkit::require_tool("qemu-system-x86_64") else { return };
    let Some(_) = baleen_testkit::require_tool("busybox") else { return };
    let Some(kernel) = baleen_testkit::kernel::debian_cloud_kernel() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"), &kernel);
    let src = baleen_spec::Source { name: "spine.yml", text: YAML, template_dir: None };
    let cfg = baleen_spec::load_all(&[src], None).unwrap_or_else(|d| panic!("{d}"));
    let out = tmp.path().join("out");
    build(&Request {
        config: &cfg,
        formats: vec![Format::KernelInitrd],
        output: Output::Base { dir: out.clone(), name: "spine".into() },
        platform: Platform::new("linux", "amd64", None),
        store: &store,
        pull: PullOptions::default(),
        decompress_kernel: false,
        compression,
        input_tar: None,
    })
    .expect("building the spine system");
    let cmdline = std::fs::read_to_string(out.join("spine-cmdline")).unwrap();
    let Some(vm) = BootTest::kernel_initrd(
        name,
        &out.join("spine-kernel"),
        &out.join("spine-initrd.img"),
        &cmdline,
    ) else {
        return;
    };
    let t = Duration::from_secs(150);
    vm.wait_for("spine-onboot-ok", t);
    vm.wait_for("writable", t);
    vm.wait_for("spine-files-ok", t);
    vm.wait_for("spine-onshutdown-ok", t);
    let console = vm.wait_for("baleen: poweroff status 0", t);
    assert!(
        console.find("spine-onboot-ok") < console.find("baleen: service reader started"),
        "onboot runs before services:\n{console}"
    );
    let outcome = vm.wait_exit();
    assert_eq!(outcome.verdict.code, 0, "a clean poweroff exits 0: {:?}", outcome.verdict.message);
}

#[test]
fn gzip_initrd_boots_to_services_and_powers_off() {
    boot_with(InitrdCompression::Gzip, "spine-gzip");
}

#[test]
fn zstd_initrd_boots_to_services_and_powers_off() {
    boot_with(InitrdCompression::Zstd, "spine-zstd");
}
