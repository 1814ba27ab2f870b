//! The examples as a user runs them: `baleen pkg build` the components an example names, `baleen
//! build` the example, boot it under qemu (TCG) and drive it over the console. The components
//! come from Debian's archive (cached in a store under target/baleen-test-cache/, so reruns do
//! not rebuild an unchanged component).

use baleen_testkit::boot::BootTest;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

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

#[test]
fn minimal_example_boots_to_a_root_shell_with_its_services_as_containers() {
    if baleen_testkit::require_tool("qemu-system-x86_64").is_none() {
        return;
    }
    let store = baleen_testkit::kernel::cache_dir().join("examples-store");
    baleen(&store, &["pkg", "build", "pkg/kernel", "pkg/init", "pkg/dhcpcd", "pkg/getty"]);
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    baleen(&store, &["build", "examples/minimal.yml", "--dir", dir]);
    for f in ["minimal-kernel", "minimal-initrd.img", "minimal-cmdline"] {
        assert!(out.path().join(f).is_file(), "{f} was not written");
    }

    // User-mode networking, as `baleen run` defaults to: the DHCP client needs an interface.
    let mut opts = baleen_testkit::boot::test_options(
        out.path().join("minimal"),
        &BootTest::scratch_dir("example-minimal"),
    );
    opts.networking = baleen_run::Networking::User;
    let Some(mut vm) = BootTest::with_options("example-minimal", opts, Duration::from_secs(300))
    else {
        return;
    };
    let t = Duration::from_secs(180);
    let console = vm.wait_for("login on", t);
    assert!(console.contains("baleen: onboot 000-dhcpcd exited 0"), "dhcpcd ran at boot");
    assert!(console.contains("baleen: service getty started"), "getty runs as a service");
    // The getty container shares the host's pid namespace: the shell sees init and its services.
    vm.send("echo shell-$((6*7)); ps; poweroff\n");
    vm.wait_for("shell-42", t);
    let console = vm.wait_for("baleen: poweroff status 0", t);
    assert!(console.contains("/init"), "ps shows baleen-init as PID 1:\n{console}");
    assert_eq!(vm.wait_exit().verdict.code, 0, "a clean poweroff exits 0");
}
