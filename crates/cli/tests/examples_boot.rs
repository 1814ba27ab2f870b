//! The examples as a user runs them: `baleen pkg build` the components the examples name,
//! `baleen build` each example, boot it under qemu (TCG, user networking as `baleen run`
//! defaults to) and drive it as a person would: the console, an HTTP page, an SSH banner.
//! Components come from Debian's archive into a store cached under target/baleen-test-cache/,
//! so an unchanged component is not rebuilt on the next run.

use baleen_run::{Networking, Proto, Publish};
use baleen_testkit::boot::{free_port, http_get, tcp_banner, BootTest};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

const T: Duration = Duration::from_secs(240);

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

/// Every `@pkg:../pkg/NAME` the examples name, built once for this test binary.
fn store() -> &'static Path {
    static STORE: OnceLock<PathBuf> = OnceLock::new();
    STORE.get_or_init(|| {
        let store = baleen_testkit::kernel::cache_dir().join("examples-store");
        let examples = baleen_testkit::workspace_root().join("examples");
        let mut pkgs = std::collections::BTreeSet::new();
        for e in std::fs::read_dir(&examples).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            for part in text.split("\"@pkg:../").skip(1) {
                pkgs.insert(part.split('"').next().unwrap().to_string());
            }
        }
        let mut args = vec!["pkg", "build"];
        args.extend(pkgs.iter().map(String::as_str));
        baleen(&store, &args);
        store
    })
}

/// Builds `examples/NAME.yml` and boots it with `publish` (host port → guest port).
fn boot(name: &str, publish: &[(u16, u16)]) -> Option<(BootTest, tempfile::TempDir)> {
    baleen_testkit::require_tool("qemu-system-x86_64")?;
    let store = store();
    let out = tempfile::tempdir().unwrap();
    let example = format!("examples/{name}.yml");
    baleen(store, &["build", &example, "--dir", out.path().to_str().unwrap()]);
    let vm = format!("example-{name}");
    let mut opts =
        baleen_testkit::boot::test_options(out.path().join(name), &BootTest::scratch_dir(&vm));
    opts.networking = Networking::User;
    opts.publish =
        publish.iter().map(|&(host, guest)| Publish { host, guest, proto: Proto::Tcp }).collect();
    let vm = BootTest::with_options(&vm, opts, Duration::from_secs(360))?;
    Some((vm, out))
}

/// Types `poweroff` at the root shell and expects a clean power-off.
fn power_off(mut vm: BootTest) {
    vm.send("poweroff\n");
    vm.wait_for("baleen: poweroff status 0", T);
    assert_eq!(vm.wait_exit().verdict.code, 0, "a clean poweroff exits 0");
}

#[test]
fn minimal_boots_to_a_root_shell_with_its_services_as_containers() {
    let Some((mut vm, _out)) = boot("minimal", &[]) else { return };
    let console = vm.wait_for("login on", T);
    assert!(console.contains("baleen: onboot 000-dhcpcd exited 0"), "dhcpcd got an address");
    assert!(console.contains("baleen: service getty started"), "getty runs as a service");
    // getty shares the host's pid namespace: its shell sees init and the services.
    vm.send("echo shell-$((6*7)); ps\n");
    vm.wait_for("shell-42", T);
    // busybox ps's row for PID 1 (the kernel's "Run /init as init process" must not count).
    vm.wait_for("1 root     /init", T);
    power_off(vm);
}

#[test]
fn getty_runs_sysctl_at_boot() {
    let Some((mut vm, _out)) = boot("getty", &[]) else { return };
    let console = vm.wait_for("login on", T);
    assert!(console.contains("baleen: onboot 000-sysctl exited 0"), "sysctl applied");
    vm.send("cat /proc/sys/kernel/kptr_restrict; echo issue-$(grep -c baleen-built /hostroot/etc/issue)\n");
    vm.wait_for("issue-1", T);
    power_off(vm);
}

#[test]
fn webserver_serves_its_site_to_the_host() {
    let port = free_port();
    let Some((vm, _out)) = boot("webserver", &[(port, 80)]) else { return };
    vm.wait_for("baleen: service httpd started", T);
    let page = http_get(port, "/", "hello from baleen", T);
    assert!(page.contains("<h1>hello from baleen</h1>"), "{page}");
    vm.wait_for("login on", T);
    power_off(vm);
}

#[test]
fn sshd_answers_with_an_ssh_banner() {
    let port = free_port();
    let Some((vm, _out)) = boot("sshd", &[(port, 22)]) else { return };
    vm.wait_for("baleen: service sshd started", T);
    let banner = tcp_banner(port, "SSH-2.0-", T);
    assert!(banner.contains("OpenSSH"), "{banner}");
    vm.wait_for("login on", T);
    power_off(vm);
}

#[test]
fn volumes_are_shared_between_onboot_and_services() {
    let Some((mut vm, _out)) = boot("volumes", &[]) else { return };
    let console = vm.wait_for("login on", T);
    assert!(console.contains("baleen: onboot 000-seed exited 0"), "seed wrote the volume");
    vm.send("sleep 1; cat /var/log/reader.log\n");
    vm.wait_for("seeded-at-boot", T);
    vm.wait_for("index.html", T);
    power_off(vm);
}
