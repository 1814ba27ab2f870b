//! Delivery paths end to end, booted: a system built by `baleen build` (Debian's cloud kernel,
//! the static baleen-init, busybox services) is pushed to Debian's docker-registry on loopback
//! and booted with `baleen run oci://REF`, and served by `baleen serve` and booted with
//! `baleen run --netboot URL` through qemu's iPXE ROM (over HTTP under SeaBIOS and OVMF, and
//! over TFTP). Each boot reaches init's services, which power the VM off; `baleen run` exits 0.

use baleen_testkit::image::ImageBuilder;
use baleen_testkit::layers::{dir, file, file_mode, symlink, tar_layer};
use baleen_testkit::registry::Registry;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

/// onboot `hello`, the service `marker`, and `zz-poweroff`, which powers the VM off once the
/// services started (SIGUSR2 to init), so `baleen run` returns by itself.
const YAML: &str = r#"
kernel:
  image: baleen/deliver-kernel:1
  cmdline: "console=ttyS0 panic=-1 baleen.modules=overlay"
init:
  - baleen/deliver-init:1
onboot:
  - name: hello
    image: baleen/deliver-busybox:1
    command: ["/bin/sh", "-c", "echo deliver-onboot-ok"]
services:
  - name: marker
    image: baleen/deliver-busybox:1
    command: ["/bin/sh", "-c", "echo deliver-service-ok; trap 'exit 0' TERM; while :; do sleep 1; done"]
  - name: zz-poweroff
    image: baleen/deliver-busybox:1
    pid: host
    command: ["/bin/sh", "-c", "sleep 2; kill -USR2 1"]
"#;

/// The built system (`<dir>/sys-kernel`, `-initrd.img`, `-cmdline`), built once for this test
/// binary; `None` when qemu, busybox or Debian's kernel are not here.
fn system() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            baleen_testkit::require_tool("qemu-system-x86_64")?;
            baleen_testkit::require_tool("busybox")?;
            let kernel = baleen_testkit::kernel::debian_cloud_kernel()?;
            // One place, rebuilt at each run of this binary, so no run leaves a copy behind.
            let dir = baleen_testkit::kernel::cache_dir().join("deliver-system");
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let store = dir.join("store");
            write_images(&store, &kernel);
            std::fs::write(dir.join("sys.yml"), YAML).unwrap();
            let out = baleen(&store, &dir, &["build", "sys.yml"], &[]);
            assert_ok(&out);
            Some(dir)
        })
        .as_deref()
}

/// Debian's kernel with its overlay module, the static init, and busybox, as images in `at`.
fn write_images(at: &Path, kernel: &baleen_testkit::kernel::Kernel) {
    let overlay = "kernel/fs/overlayfs/overlay.ko";
    let m = format!("lib/modules/{}", kernel.release);
    let modules = tar_layer(&[
        dir("lib/"),
        dir("lib/modules/"),
        dir(&format!("{m}/")),
        dir(&format!("{m}/kernel/")),
        dir(&format!("{m}/kernel/fs/")),
        dir(&format!("{m}/kernel/fs/overlayfs/")),
        file(&format!("{m}/{overlay}"), &std::fs::read(kernel.modules.join(overlay)).unwrap()),
    ]);
    ImageBuilder::new()
        .layer(&[
            file("kernel", &std::fs::read(&kernel.vmlinuz).unwrap()),
            file("kernel.tar", &modules),
        ])
        .build()
        .write_layout(at, "docker.io/baleen/deliver-kernel:1");
    let init = std::fs::read(baleen_testkit::init::init_binary()).unwrap();
    ImageBuilder::new()
        .layer(&[file_mode("init", &init, 0o755)])
        .build()
        .write_layout(at, "docker.io/baleen/deliver-init:1");
    ImageBuilder::new()
        .layer(&[
            file_mode("bin/busybox", &std::fs::read("/bin/busybox").unwrap(), 0o755),
            symlink("bin/sh", "busybox"),
            symlink("bin/sleep", "busybox"),
            symlink("bin/kill", "busybox"),
        ])
        .build()
        .write_layout(at, "docker.io/baleen/deliver-busybox:1");
}

fn command(store: &Path, cwd: &Path, args: &[&str], env: &[(&str, &Path)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_baleen"));
    c.current_dir(cwd)
        .args(args)
        .env("BALEEN_CACHE", store)
        .env("DOCKER_CONFIG", cwd.join("no-docker-config"))
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    c
}

fn baleen(store: &Path, cwd: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    command(store, cwd, args, env).output().unwrap()
}

fn assert_ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout (console):\n{}\nstderr:\n{}",
        baleen_testkit::boot::tail(&String::from_utf8_lossy(&out.stdout), 60),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `baleen run` as a test boots: TCG, 512 MiB, a bound on the whole run, state in `state`.
const RUN: &[&str] = &["run", "--accel", "tcg", "--mem", "512", "--timeout", "300"];

/// The console of a run that reached init's services and powered off cleanly.
fn booted_to_services(out: &Output) -> String {
    assert_ok(out);
    let console = String::from_utf8_lossy(&out.stdout).into_owned();
    for marker in [
        "baleen: onboot 000-hello exited 0",
        "baleen: service marker started",
        "baleen: poweroff status 0",
    ] {
        assert!(console.contains(marker), "no {marker:?} on the console:\n{console}");
    }
    console
}

#[test]
fn run_oci_boots_a_pushed_system_to_its_services() {
    let Some(sys) = system() else { return };
    let Some(reg) = Registry::plain() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("{}/systems/deliver:1", reg.host);
    assert_ok(&baleen(&sys.join("store"), sys, &["push", "oci", "sys", &name], &[]));

    // Another machine: an empty store, its own cache directory.
    let (store, xdg) = (tmp.path().join("store"), tmp.path().join("xdg"));
    let target = format!("oci://{name}");
    let mut args = RUN.to_vec();
    args.push(&target);
    let out = baleen(&store, tmp.path(), &args, &[("XDG_CACHE_HOME", &xdg)]);
    booted_to_services(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("pulled {name}")), "{stderr}");
    // The files landed in a directory named by the manifest digest, byte for byte.
    let systems = xdg.join("baleen/systems");
    let dirs: Vec<PathBuf> =
        std::fs::read_dir(&systems).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert!(dirs[0].file_name().unwrap().to_string_lossy().starts_with("sha256-"), "{dirs:?}");
    for f in ["sys-kernel", "sys-initrd.img", "sys-cmdline"] {
        assert_eq!(std::fs::read(dirs[0].join(f)).unwrap(), std::fs::read(sys.join(f)).unwrap());
    }
}

/// `baleen serve`, killed when dropped.
struct Serving {
    child: Child,
    urls: Vec<String>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `baleen serve ARGS… sys` on free ports; its URLs are the first `n` stdout lines.
fn serve(sys: &Path, args: &[&str], n: usize) -> Serving {
    let mut all = vec!["serve", "--addr", "127.0.0.1:0"];
    all.extend_from_slice(args);
    all.push("sys");
    let mut child = command(&sys.join("store"), sys, &all, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let urls = (0..n).map(|_| lines.next().expect("a URL").unwrap()).collect();
    Serving { child, urls }
}

/// Boots `url` with `baleen run --netboot` (and `extra` flags) and checks the iPXE ROM fetched
/// the script.
fn netboot(url: &str, extra: &[&str]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let mut args = RUN.to_vec();
    args.extend(extra);
    args.extend(["--state", state.to_str().unwrap(), "--netboot", url]);
    let out = baleen(&tmp.path().join("store"), tmp.path(), &args, &[]);
    let console = booted_to_services(&out);
    let guest = url.replace("127.0.0.1", "10.0.2.2");
    assert!(console.contains(&guest), "iPXE names the rewritten URL {guest}:\n{console}");
    // The script's relative names resolved against its URL: the files came from `serve`.
    assert!(
        console.contains("sys-kernel...") && console.contains("sys-initrd.img..."),
        "{console}"
    );
    console
}

#[test]
fn run_netboot_boots_a_served_system_over_http() {
    let Some(sys) = system() else { return };
    let served = serve(sys, &[], 1);
    let url = &served.urls[0];
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/sys.ipxe"), "{url}");
    netboot(url, &[]);
}

/// Under OVMF the same ROM's EFI driver runs iPXE, which starts the kernel through its EFI
/// stub (the initrd named by the script's `initrd=`).
#[test]
fn run_netboot_boots_a_served_system_under_uefi() {
    let Some(sys) = system() else { return };
    if !Path::new("/usr/share/OVMF/OVMF_CODE_4M.fd").is_file() {
        eprintln!("skipping: no OVMF (Debian's ovmf)");
        return;
    }
    let served = serve(sys, &[], 1);
    netboot(&served.urls[0], &["--uefi"]);
}

#[test]
fn run_netboot_boots_a_served_system_over_tftp() {
    let Some(sys) = system() else { return };
    let served = serve(sys, &["--tftp", "--tftp-addr", "127.0.0.1:0"], 2);
    let url = &served.urls[1];
    assert!(url.starts_with("tftp://127.0.0.1:") && url.ends_with("/sys.ipxe"), "{url}");
    netboot(url, &[]);
}
