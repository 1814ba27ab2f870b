//! The spine system the boot tests share: Debian's cloud kernel and its overlay module, the
//! static baleen-init, and Debian's static busybox as the containers' userland, written as OCI
//! images into a store; and the YAML that names them.

#![allow(dead_code)] // each test file uses its own part; conformance.rs none of it

use baleen_build::{build_report, BuildError, Built, Format, Output, Request};
use baleen_formats::InitrdCompression;
use baleen_oci::{Platform, Store};
use baleen_testkit::boot::BootTest;
use baleen_testkit::image::ImageBuilder;
use baleen_testkit::layers::{dir, file, file_mode, symlink, tar_layer};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Builds `formats` of `cfg` as `<out>/spine*` (zstd initrd, amd64, no pull), `size` as
/// `--size`.
pub fn try_build(
    cfg: &baleen_spec::Config,
    store: &Store,
    formats: &[Format],
    out: &Path,
    size: Option<u64>,
) -> Result<Vec<PathBuf>, BuildError> {
    try_build_signed(cfg, store, formats, out, size, None)
}

/// [`try_build`] with `--sign-key`/`--sign-cert`.
pub fn try_build_signed(
    cfg: &baleen_spec::Config,
    store: &Store,
    formats: &[Format],
    out: &Path,
    size: Option<u64>,
    sign: Option<baleen_build::Signing>,
) -> Result<Vec<PathBuf>, BuildError> {
    try_build_report(cfg, store, formats, out, size, sign).map(|b| b.files)
}

/// [`try_build_signed`], with what the build predicted (PCR 11 of a signed UKI).
pub fn try_build_report(
    cfg: &baleen_spec::Config,
    store: &Store,
    formats: &[Format],
    out: &Path,
    size: Option<u64>,
    sign: Option<baleen_build::Signing>,
) -> Result<Built, BuildError> {
    build_report(&Request {
        compression: InitrdCompression::Zstd,
        size,
        sign,
        ..Request::new(
            cfg,
            store,
            formats.to_vec(),
            Output::Base { dir: out.to_path_buf(), name: "spine".into() },
            Platform::new("linux", "amd64", None),
        )
    })
}

/// [`try_build`] without `--size`, panicking with the formats and the error.
pub fn build_into(
    cfg: &baleen_spec::Config,
    store: &Store,
    formats: &[Format],
    out: &Path,
) -> Vec<PathBuf> {
    try_build(cfg, store, formats, out, None)
        .unwrap_or_else(|e| panic!("building {formats:?}: {e}"))
}

/// Runs a reference tool, asserting success; its stdout and stderr.
pub fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// The spine's markers, in order, then a clean poweroff.
pub fn boots_to_services(vm: BootTest) {
    let t = Duration::from_secs(240);
    vm.wait_for("spine-onboot-ok", t);
    vm.wait_for("spine-files-ok", t);
    vm.wait_for("spine-onshutdown-ok", t);
    vm.wait_for("baleen: poweroff status 0", t);
    let outcome = vm.wait_exit();
    assert_eq!(outcome.verdict.code, 0, "a clean poweroff exits 0: {:?}", outcome.verdict.message);
}

/// onboot `hello`, onshutdown `bye`, services `reader` (a writable root reading a `files` entry
/// through a bind) and `zz-poweroff`.
pub const SPINE_YAML: &str = r#"
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
    command: ["/bin/sh", "-c", "echo writable > /tmp-test && cat /tmp-test && cat /etc/motd; busybox sha256sum /noise; trap 'exit 0' TERM; while :; do sleep 1; done"]
  - name: zz-poweroff
    image: baleen/spine-busybox:1
    pid: host
    command: ["/bin/sh", "-c", "sleep 2; echo spine-powering-off; kill -USR2 1"]
files:
  - path: etc/motd
    contents: "spine-files-ok\n"
    mode: "0644"
"#;

/// 3 MiB of incompressible bytes, in the spine's busybox image as `/noise`.
pub fn spine_noise() -> Vec<u8> {
    baleen_testkit::noise(3 << 20, 0x2545_f491_4f6c_dd1d)
}

/// The spine YAML, loaded.
pub fn spine_config() -> baleen_spec::Config {
    let src = baleen_spec::Source { name: "spine.yml", text: SPINE_YAML, template_dir: None };
    baleen_spec::load_all(&[src], None).unwrap_or_else(|d| panic!("{d}"))
}

/// Images from the real parts: Debian's kernel and overlay module, the static baleen-init, and
/// Debian's static busybox as the containers' userland.
pub fn spine_store(at: &Path, kernel: &baleen_testkit::kernel::Kernel) -> Store {
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
            // Bytes no deflate shrinks (as a gzip'd or xz'd file in a real image): the initrd's
            // gzip stores them, so every boot of the spine proves the kernel inflates stored
            // blocks; the reader prints their SHA-256, which tests/boot.rs checks.
            file("noise", &spine_noise()),
        ])
        .build()
        .write_layout(at, "docker.io/baleen/spine-busybox:1");
    Store::open(at).unwrap()
}

/// The ESP's `/EFI/BOOT/BOOTX64.EFI` of the EFI disk `disk` (its ESP at 1 MiB), read back with
/// mtools' `mcopy` into `scratch`; `None` when mtools is not installed.
#[allow(dead_code)] // not every test binary that includes this module reads an ESP
pub fn esp_boot_file(disk: &Path, scratch: &Path) -> Option<Vec<u8>> {
    let mcopy = baleen_testkit::require_tool("mcopy")?;
    let back = scratch.join("back.efi");
    let spec = format!("{}@@1M", disk.display());
    run(std::process::Command::new(mcopy)
        .arg("-n")
        .arg("-i")
        .arg(&spec)
        .arg("::/EFI/BOOT/BOOTX64.EFI")
        .arg(&back));
    Some(std::fs::read(&back).unwrap())
}
