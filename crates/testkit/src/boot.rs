//! The boot-test harness: boot something under qemu (always TCG), watch its serial console,
//! drive it, and stop it.
//!
//! ```no_run
//! # use baleen_testkit::{boot::BootTest, kernel::debian_cloud_kernel};
//! # use std::time::Duration;
//! let Some(kernel) = debian_cloud_kernel() else { return };
//! let Some(mut vm) = BootTest::kernel_initrd("demo", &kernel.vmlinuz, "initrd.img".as_ref(), "console=ttyS0")
//! else { return };
//! vm.wait_for("login:", Duration::from_secs(60));
//! let end = vm.wait_exit();
//! assert_eq!(end.verdict.code, 0);
//! ```
//!
//! On a failed wait the harness panics with the last 60 console lines; when a test panics for
//! any other reason while a VM is alive, the drop guard prints them too and kills qemu. State
//! (console log, MAC, disks) lives under `target/baleen-test-cache/boot/<name>-<pid>-<n>/` and is
//! removed when the VM ends cleanly.

use baleen_run::{AccelChoice, Networking, RunConfig, RunOptions, RunOutcome, StdinMode, Vm};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How many console lines a failure shows.
pub const TAIL_LINES: usize = 60;

/// The longest any boot test VM may live unless the test says otherwise: generous for TCG on a
/// loaded 2-core machine, short enough that a hung guest cannot eat the suite's budget.
pub const DEFAULT_VM_TIMEOUT: Duration = Duration::from_secs(180);

/// A VM under test.
pub struct BootTest {
    vm: Option<Vm>,
    name: String,
    state: PathBuf,
    done: bool,
}

impl std::fmt::Debug for BootTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootTest").field("name", &self.name).field("state", &self.state).finish()
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Failed tests keep their directories for a look; a day later they are swept away.
const KEEP_FAILED: Duration = Duration::from_secs(24 * 3600);

fn sweep_old(boot_dir: &Path) {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| {
        let Ok(entries) = std::fs::read_dir(boot_dir) else { return };
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > KEEP_FAILED);
            if old {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    });
}

/// A fresh directory for one VM's files.
fn vm_dir(name: &str) -> PathBuf {
    sweep_old(&crate::kernel::cache_dir().join("boot"));
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir =
        crate::kernel::cache_dir().join("boot").join(format!("{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the boot test dir");
    dir
}

/// Options every boot test starts from: TCG, 512 MiB, no network, a private state dir.
pub fn test_options(path: impl Into<PathBuf>, dir: &Path) -> RunOptions {
    let mut o = RunOptions::new(path);
    o.accel = AccelChoice::Tcg;
    o.mem_mb = 512;
    o.networking = Networking::None;
    o.state_dir = Some(dir.join("state"));
    o.cache_dir = Some(dir.join("cache"));
    o
}

impl BootTest {
    /// Boots `kernel` + `initrd` with `cmdline` (give it `console=ttyS0`). `None` (test skipped)
    /// when qemu is not installed and tools are not required.
    pub fn kernel_initrd(
        name: &str,
        kernel: &Path,
        initrd: &Path,
        cmdline: &str,
    ) -> Option<BootTest> {
        crate::require_tool("qemu-system-x86_64")?;
        let dir = vm_dir(name);
        let prefix = dir.join("vm");
        let abs =
            |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        std::os::unix::fs::symlink(abs(kernel), dir.join("vm-kernel")).expect("linking the kernel");
        std::os::unix::fs::symlink(abs(initrd), dir.join("vm-initrd.img"))
            .expect("linking the initrd");
        std::fs::write(dir.join("vm-cmdline"), cmdline).expect("writing the cmdline");
        let opts = test_options(&prefix, &dir);
        Some(Self::start(name, opts, &dir, DEFAULT_VM_TIMEOUT))
    }

    /// Boots an ISO, a disk image, a UKI or a kernel+initrd prefix, as `baleen run` would.
    pub fn path(name: &str, path: &Path) -> Option<BootTest> {
        crate::require_tool("qemu-system-x86_64")?;
        let dir = vm_dir(name);
        let opts = test_options(path, &dir);
        Some(Self::start(name, opts, &dir, DEFAULT_VM_TIMEOUT))
    }

    /// Boots with options the test adjusted (start from [`test_options`]); the VM is stopped
    /// after `timeout`. Panics when the VM cannot be started.
    /// With `opts.arch` unset (the output's own architecture), x86-64's qemu is required: a
    /// test booting another architecture requires its qemu itself.
    pub fn with_options(name: &str, opts: RunOptions, timeout: Duration) -> Option<BootTest> {
        crate::require_tool(opts.arch.map_or("qemu-system-x86_64", |a| a.qemu_binary()))?;
        let dir = vm_dir(name);
        Some(Self::start(name, opts, &dir, timeout))
    }

    /// A scratch directory for files a test builds for this VM (initrds, disks); removed when
    /// dropped, unless the test is failing.
    pub fn scratch_dir(name: &str) -> ScratchDir {
        ScratchDir(vm_dir(name))
    }

    fn start(name: &str, opts: RunOptions, dir: &Path, timeout: Duration) -> BootTest {
        let prepared = baleen_run::prepare(&opts)
            .unwrap_or_else(|e| panic!("boot test {name}: preparing the VM: {}", chain(&e)));
        let config = RunConfig {
            echo: false,
            console_file: Some(dir.join("console.log")),
            stdin: StdinMode::Piped,
            timeout: Some(timeout),
            handle_signals: false,
            measure: false,
        };
        let vm = Vm::start(&prepared.plan, config)
            .unwrap_or_else(|e| panic!("boot test {name}: starting qemu: {}", chain(&e)));
        BootTest { vm: Some(vm), name: name.into(), state: dir.to_owned(), done: false }
    }

    fn vm(&self) -> &Vm {
        self.vm.as_ref().expect("the VM is alive until wait_exit")
    }

    /// Waits for `marker` on the console and returns the console so far; panics with the last
    /// [`TAIL_LINES`] lines when it does not come within `timeout` or the VM ends first.
    pub fn wait_for(&self, marker: &str, timeout: Duration) -> String {
        match self.vm().wait_for(marker, timeout) {
            Ok(console) => console,
            Err(e) => panic!(
                "boot test {}: {e}\n--- last {TAIL_LINES} console lines ({}) ---\n{}",
                self.name,
                self.vm().console_file().display(),
                tail(e.console(), TAIL_LINES)
            ),
        }
    }

    /// The console so far.
    pub fn console(&self) -> String {
        self.vm().console()
    }

    /// Types into the serial console (e.g. `"root\n"` at a login prompt).
    pub fn send(&mut self, text: &str) {
        let name = self.name.clone();
        self.vm
            .as_mut()
            .expect("the VM is alive")
            .send(text.as_bytes())
            .unwrap_or_else(|e| panic!("boot test {name}: typing into the console: {e}"));
    }

    /// Waits for the VM to end by itself (it is killed at the start-time timeout) and returns how
    /// it ended.
    pub fn wait_exit(mut self) -> RunOutcome {
        let mut vm = self.vm.take().expect("the VM is alive");
        let out = vm
            .wait()
            .unwrap_or_else(|e| panic!("boot test {}: waiting for qemu: {}", self.name, chain(&e)));
        self.done = true;
        out
    }

    /// Presses the ACPI power button and waits up to `grace` for the guest to power off
    /// (baleen-init runs the onshutdown containers first: check `watch` for
    /// `Event::OnshutdownExited`). A guest that does not is stopped: `end` is then `TimedOut`.
    pub fn shutdown(mut self, grace: Duration) -> RunOutcome {
        let mut vm = self.vm.take().expect("the VM is alive");
        let out = vm.shutdown(grace);
        self.done = true;
        match out {
            Ok(out) => out,
            Err(e) => {
                let console = vm.console();
                panic!(
                    "boot test {}: shutting down: {}\n--- last {TAIL_LINES} console lines ---\n{}",
                    self.name,
                    chain(&e),
                    tail(&console, TAIL_LINES)
                )
            }
        }
    }

    /// Stops the VM now (SIGTERM to qemu, then SIGKILL).
    pub fn stop(mut self) {
        if let Some(mut vm) = self.vm.take() {
            let _ = vm.stop();
        }
        self.done = true;
    }
}

impl Drop for BootTest {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        if let Some(vm) = &self.vm {
            if panicking && !self.done {
                eprintln!(
                    "--- boot test {}: last {TAIL_LINES} console lines ({}) ---\n{}",
                    self.name,
                    vm.console_file().display(),
                    tail(&vm.console(), TAIL_LINES)
                );
            }
        }
        // Dropping the Vm kills qemu.
        self.vm = None;
        // A failing test keeps its console log and state for a look afterwards.
        if !panicking {
            let _ = std::fs::remove_dir_all(&self.state);
        }
    }
}

/// A directory under the test cache, removed on drop unless the thread is panicking.
#[derive(Debug)]
pub struct ScratchDir(PathBuf);

impl std::ops::Deref for ScratchDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for ScratchDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// An error and its causes on one line, as the CLI prints them (`crates/spec/src/chain.rs`).
pub use crate::chain_file::chain;

/// Builds an uncompressed newc initrd from Debian's static busybox: `/bin/busybox`, an `/init`
/// shell script (`#!/bin/busybox sh`, installing the applets first is up to the script), and
/// `extra` files (path inside the initrd, contents, mode). `None` (skip) when busybox-static or
/// cpio is missing and tools are not required.
pub fn busybox_initrd(dir: &Path, init: &str, extra: &[(&str, &[u8], u32)]) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let busybox = Path::new("/bin/busybox");
    let cpio = crate::require_tool("cpio")?;
    if !busybox.is_file() {
        assert!(!crate::tools_required(), "/bin/busybox (busybox-static) is not installed");
        eprintln!("skipping: /bin/busybox (busybox-static) is not installed");
        return None;
    }
    let root = dir.join("initrd-root");
    let _ = std::fs::remove_dir_all(&root);
    for d in ["bin", "sbin", "dev", "proc", "sys", "tmp", "usr/bin", "usr/sbin"] {
        std::fs::create_dir_all(root.join(d)).expect("creating initrd dirs");
    }
    let put = |rel: &str, data: &[u8], mode: u32| {
        let p = root.join(rel.trim_start_matches('/'));
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("creating initrd dirs");
        }
        std::fs::write(&p, data).expect("writing an initrd file");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    put("bin/busybox", &std::fs::read(busybox).expect("reading /bin/busybox"), 0o755);
    put("init", init.as_bytes(), 0o755);
    for (rel, data, mode) in extra {
        put(rel, data, *mode);
    }
    let out = dir.join("initrd.img");
    // `find` lists parents before children, which newc needs; sorted for a stable archive.
    let list = std::process::Command::new("find")
        .arg(".")
        .current_dir(&root)
        .output()
        .expect("running find");
    let mut names: Vec<&str> =
        std::str::from_utf8(&list.stdout).expect("utf-8 names").lines().collect();
    names.sort();
    let mut child = std::process::Command::new(cpio)
        .args(["-o", "-H", "newc", "--quiet", "-R", "0:0"])
        .current_dir(&root)
        .stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create(&out).expect("creating the initrd"))
        .spawn()
        .expect("running cpio");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("piped");
        stdin.write_all(names.join("\n").as_bytes()).expect("feeding cpio");
        stdin.write_all(b"\n").expect("feeding cpio");
    }
    assert!(child.wait().expect("waiting for cpio").success(), "cpio failed");
    Some(out)
}

/// A 158-byte static x86-64 ELF program that writes `status` to the `isa-debug-exit` port
/// (ioperm + outb, so it must run as root in the guest) — qemu then exits with
/// `(status << 1) | 1`. It is what baleen-init does for a non-zero poweroff status; Debian's
/// kernel has no /dev/port, so a shell cannot do it. If the write has no effect (no such
/// device), the program exits 1.
pub fn debug_exit_elf(status: u8) -> Vec<u8> {
    // mov $0xf4,%edi; mov $1,%esi; mov $1,%edx; mov $173,%eax (ioperm); syscall
    // mov $status,%al; out %al,$0xf4; mov $60,%eax (exit); mov $1,%edi; syscall
    let code: Vec<u8> = [
        &[0xbf, 0xf4, 0, 0, 0, 0xbe, 1, 0, 0, 0, 0xba, 1, 0, 0, 0, 0xb8, 173, 0, 0, 0, 0x0f, 0x05]
            [..],
        &[0xb0, status, 0xe6, 0xf4],
        &[0xb8, 60, 0, 0, 0, 0xbf, 1, 0, 0, 0, 0x0f, 0x05],
    ]
    .concat();
    const BASE: u64 = 0x40_0000;
    const HEADERS: u64 = 64 + 56;
    let total = HEADERS + code.len() as u64;
    let mut elf = Vec::with_capacity(total as usize);
    elf.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0"); // 64-bit, LE, SysV
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&0x3eu16.to_le_bytes()); // x86-64
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&(BASE + HEADERS).to_le_bytes()); // entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // program headers right after this header
    elf.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    elf.extend_from_slice(&0u32.to_le_bytes());
    for v in [64u16, 56, 1, 0, 0, 0] {
        elf.extend_from_slice(&v.to_le_bytes()); // ehsize, phentsize, phnum, sh*
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // R+X
    elf.extend_from_slice(&0u64.to_le_bytes()); // from file offset 0
    elf.extend_from_slice(&BASE.to_le_bytes());
    elf.extend_from_slice(&BASE.to_le_bytes());
    elf.extend_from_slice(&total.to_le_bytes());
    elf.extend_from_slice(&total.to_le_bytes());
    elf.extend_from_slice(&0x1000u64.to_le_bytes());
    elf.extend_from_slice(&code);
    elf
}

/// `GET path` over HTTP/1.0 from 127.0.0.1:`port` (a `--publish`ed guest port), retried until
/// an answer containing `expect` arrives or `timeout` passes (user networking accepts the
/// connection before the guest listens, so early attempts see a reset). Returns the whole
/// response, headers included; panics with the last response on timeout.
pub fn http_get(port: u16, path: &str, expect: &str, timeout: Duration) -> String {
    use std::io::{Read, Write};
    let deadline = std::time::Instant::now() + timeout;
    let mut last = String::new();
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut body = String::new();
            let req = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
            if s.write_all(req.as_bytes()).is_ok() && s.read_to_string(&mut body).is_ok() {
                if body.contains(expect) {
                    return body;
                }
                last = body;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no HTTP answer containing {expect:?} on 127.0.0.1:{port}{path} within {timeout:?}; last: {last:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The first line a TCP server sends on 127.0.0.1:`port` (an SSH banner: `SSH-2.0-…`), retried
/// until one starting with `prefix` arrives or `timeout` passes (then panics).
pub fn tcp_banner(port: u16, prefix: &str, timeout: Duration) -> String {
    use std::io::BufRead;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut line = String::new();
            if std::io::BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with(prefix) {
                return line.trim_end().to_owned();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no banner starting {prefix:?} on 127.0.0.1:{port} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A free TCP port on 127.0.0.1 for `--publish` (racy by nature; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binding a port")
        .local_addr()
        .expect("addr")
        .port()
}
