//! arm64 end to end on this x86-64 host, with no emulation at build time: the components of
//! `examples/minimal.yml` built for linux/arm64 (Debian's arm64 `.deb`s, baleen-init
//! cross-compiled for aarch64-unknown-linux-musl), the unchanged example built with `--arch
//! arm64` as kernel+initrd, raw-efi, qcow2-efi, iso-efi and uki in one build (twice, to the
//! same bytes), and each booted under qemu-system-aarch64 (virt, TCG; AAVMF for all but
//! kernel+initrd) to init's `services started` and a clean poweroff. `baleen run`'s `--arch` is
//! left out: the outputs say their architecture.
//! The arm64 components live in their own store under target/baleen-test-cache/, so an
//! unchanged component is not rebuilt on the next run.

use baleen_testkit::boot::BootTest;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// TCG emulates arm64 on x86-64: several times slower than an x86-64 guest.
const T: Duration = Duration::from_secs(400);
const FORMATS: &str = "kernel+initrd,raw-efi,qcow2-efi,iso-efi,uki";

fn baleen(store: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_baleen"))
        .args(args)
        .current_dir(baleen_testkit::workspace_root())
        .env("BALEEN_CACHE", store)
        .output()
        .expect("running baleen");
    assert!(
        out.status.success(),
        "baleen {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the tests need: qemu-system-aarch64, AAVMF and the aarch64 musl target (the init is
/// cross-built). `false` (skipped) when missing and tools are not required.
fn available() -> bool {
    if baleen_testkit::require_tool("qemu-system-aarch64").is_none() {
        return false;
    }
    let aavmf = Path::new("/usr/share/AAVMF/AAVMF_CODE.fd").is_file();
    let target = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("aarch64-unknown-linux-musl"));
    if !(aavmf && target) {
        let what = "qemu-efi-aarch64 (AAVMF) and the aarch64-unknown-linux-musl target";
        assert!(!baleen_testkit::tools_required(), "{what}: cargo xtask test installs them");
        eprintln!("skipping: {what} are not installed");
        return false;
    }
    true
}

/// The components minimal.yml names, and the EFI stub, built for linux/arm64 once.
fn store() -> &'static Path {
    static STORE: OnceLock<PathBuf> = OnceLock::new();
    STORE.get_or_init(|| {
        let store = baleen_testkit::kernel::cache_dir().join("arm64-store");
        let mut args = vec!["pkg", "build", "--platforms", "linux/arm64"];
        args.extend(["pkg/kernel", "pkg/init", "pkg/dhcpcd", "pkg/getty", "pkg/systemd-boot"]);
        baleen(&store, &args);
        store
    })
}

/// `examples/minimal.yml` built for arm64 as [`FORMATS`] into `dir`.
fn build_into(dir: &Path) {
    let d = dir.to_str().unwrap();
    let args = ["build", "--arch", "arm64", "-f", FORMATS, "examples/minimal.yml", "--dir", d];
    baleen(store(), &args);
}

/// The one build the boots share.
fn built() -> Option<&'static Path> {
    static OUT: OnceLock<tempfile::TempDir> = OnceLock::new();
    if !available() {
        return None;
    }
    Some(
        OUT.get_or_init(|| {
            let out = tempfile::tempdir().unwrap();
            build_into(out.path());
            out
        })
        .path(),
    )
}

/// Boots `file` of the shared build (the arch unset: read from the output) to `services
/// started`, then types `poweroff` and expects a clean power-off.
fn boot_and_power_off(file: &str) {
    let Some(out) = built() else { return };
    let vm = format!("arm64-minimal-{file}");
    let mut opts = baleen_testkit::boot::test_options(out.join(file), &BootTest::scratch_dir(&vm));
    opts.networking = baleen_run::Networking::User;
    let Some(mut vm) = BootTest::with_options(&vm, opts, T + T) else { return };
    let console = vm.wait_for("baleen: phase services started", T);
    assert!(console.contains("baleen: onboot 000-dhcpcd exited 0"), "{file}: dhcpcd");
    assert!(console.contains("baleen: service getty started"), "{file}: getty runs");
    vm.wait_for("login on 'ttyAMA0'", T);
    vm.send("echo arch-$(uname -m)\n");
    vm.wait_for("arch-aarch64", T);
    vm.send("poweroff\n");
    vm.wait_for("baleen: poweroff status 0", T);
    assert_eq!(vm.wait_exit().verdict.code, 0, "{file}: a clean poweroff exits 0");
}

#[test]
fn minimal_for_arm64_boots_from_kernel_and_initrd_under_qemu_system_aarch64() {
    boot_and_power_off("minimal");
}

#[test]
fn minimal_for_arm64_boots_from_raw_efi_under_aavmf() {
    boot_and_power_off("minimal-efi.img");
}

#[test]
fn minimal_for_arm64_boots_from_qcow2_efi_under_aavmf() {
    boot_and_power_off("minimal-efi.qcow2");
}

#[test]
fn minimal_for_arm64_boots_from_iso_efi_under_aavmf() {
    boot_and_power_off("minimal-efi.iso");
}

#[test]
fn minimal_for_arm64_boots_as_a_uki_under_aavmf() {
    boot_and_power_off("minimal.efi");
}

/// A second arm64 build gives the same bytes, every file of it; the kernel is Debian's arm64
/// Image, the disk's ESP holds `BOOTAA64.EFI`; and no arm64 code can have run on the host
/// (no binfmt_misc handler for aarch64 is registered).
#[test]
fn arm64_builds_are_byte_identical_and_need_no_emulation() {
    let Some(first) = built() else { return };
    let binfmt = Path::new("/proc/sys/fs/binfmt_misc");
    let handlers: Vec<String> = std::fs::read_dir(binfmt)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(
        !handlers.iter().any(|h| h.contains("aarch64") || h.contains("arm64")),
        "an aarch64 binfmt_misc handler is registered ({handlers:?}): this test would not show \
         that building needs no emulation"
    );
    let second = tempfile::tempdir().unwrap();
    build_into(second.path());
    let mut names: Vec<String> = std::fs::read_dir(first)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "minimal-cmdline",
            "minimal-efi.img",
            "minimal-efi.iso",
            "minimal-efi.qcow2",
            "minimal-initrd.img",
            "minimal-kernel",
            "minimal.efi"
        ],
        "the outputs of {FORMATS}"
    );
    for n in &names {
        let (a, b) = (std::fs::read(first.join(n)).unwrap(), std::fs::read(second.path().join(n)));
        assert!(a == b.unwrap(), "{n} differs between two arm64 builds");
    }
    let kernel = std::fs::read(first.join("minimal-kernel")).unwrap();
    assert_eq!(&kernel[0x38..0x3c], b"ARMd", "the arm64 Image's magic");
    let disk = std::fs::read(first.join("minimal-efi.img")).unwrap();
    let entry = disk[..8 << 20].chunks_exact(32).position(|e| &e[..11] == b"BOOTAA64EFI");
    assert!(entry.is_some(), "the ESP holds EFI/BOOT/BOOTAA64.EFI");
    assert!(!disk[..8 << 20].chunks_exact(32).any(|e| &e[..11] == b"BOOTX64 EFI"));
}
