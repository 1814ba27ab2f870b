//! The spine, end to end: a YAML system whose kernel, init and containers are OCI images in the
//! store, built by the pipeline into kernel+initrd, booted under qemu (TCG) with Debian's cloud
//! kernel and baleen-init. One boot per initrd compression (gzip, zstd); each checks onboot,
//! a writable (overlay) service reading a `files` entry, an incompressible file read back
//! intact (stored blocks in the gzip initrd), onshutdown and a clean poweroff.

use baleen_build::{build, Format, Output, Request};
use baleen_formats::InitrdCompression;
use baleen_oci::Platform;
use baleen_testkit::boot::BootTest;
use std::time::Duration;

use crate::common;
use common::{spine_config, spine_store};

fn boot_with(compression: InitrdCompression, name: &str) {
    let Some(_) = baleen_testkit::require_tool("qemu-system-x86_64") else { return };
    let Some(_) = baleen_testkit::require_tool("busybox") else { return };
    let Some(kernel) = baleen_testkit::kernel::debian_cloud_kernel() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let store = spine_store(&tmp.path().join("store"), &kernel);
    let cfg = spine_config();
    let out = tmp.path().join("out");
    build(&Request {
        compression,
        ..Request::new(
            &cfg,
            &store,
            vec![Format::KernelInitrd],
            Output::Base { dir: out.clone(), name: "spine".into() },
            Platform::new("linux", "amd64", None),
        )
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
    // The incompressible file, stored (not deflated) in the gzip initrd, arrived intact.
    let digest = baleen_testkit::image::sha256(&common::spine_noise());
    let digest = digest.trim_start_matches("sha256:");
    vm.wait_for(&format!("{digest}  /noise"), t);
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
