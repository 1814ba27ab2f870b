//! The qemu harness of the init boot tests: bundles written as LinuxKit writes them
//! (config.json/runtime.json by hand, docs/init.md, "Containers"), an initrd of them with the
//! static init, busybox and kernel modules, and a boot under qemu (TCG) read back from the
//! console.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const BUSYBOX_ROOT: &str = "/containers/onboot/000-first/rootfs";

/// One container of the test image.
pub struct C {
    pub section: &'static str,
    pub dir: &'static str,
    pub script: &'static str,
    pub readonly: bool,
    pub caps: &'static [&'static str],
    pub net_new: bool,
    pub pid_host: bool,
    pub binds: &'static [&'static str],
    pub interfaces: Value,
    pub mkdir: &'static [&'static str],
    pub resources: Value,
    pub bind_net: &'static str,
    pub seccomp: Option<Value>,
    pub no_new_privs: bool,
    pub userns: bool,
    /// A pid namespace to join by path (empty: new, or the host's with `pid_host`).
    pub pid_path: &'static str,
    pub bind_pid: &'static str,
    pub hooks: Option<Value>,
    /// More `linux` keys (maskedPaths, readonlyPaths).
    pub linux_extra: Value,
    /// More `process` keys (user, rlimits, oomScoreAdj, capabilities with ambient), replacing.
    pub process_extra: Value,
    /// config.json `annotations`.
    pub annotations: Value,
}

impl C {
    pub fn new(section: &'static str, dir: &'static str, script: &'static str) -> C {
        C {
            section,
            dir,
            script,
            readonly: true,
            caps: &[],
            net_new: false,
            pid_host: false,
            binds: &[],
            interfaces: json!([]),
            mkdir: &[],
            resources: json!({}),
            bind_net: "",
            seccomp: None,
            no_new_privs: false,
            userns: false,
            pid_path: "",
            bind_pid: "",
            hooks: None,
            linux_extra: json!({}),
            process_extra: json!({}),
            annotations: json!({}),
        }
    }

    pub fn prefix(&self) -> String {
        format!("/containers/{}/{}", self.section, self.dir)
    }

    /// config.json as LinuxKit's ConfigToOCI writes it: default mounts + binds sorted by
    /// destination, namespaces in its order, capabilities in all sets.
    pub fn config(&self) -> Value {
        let ro = |mut v: Vec<&'static str>| {
            if self.readonly {
                v.push("ro");
            }
            v
        };
        let mut mounts = vec![
            json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                   "options": ro(vec!["nosuid", "strictatime", "mode=755", "size=65536k"])}),
            json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                   "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
            json!({"destination": "/proc", "type": "proc", "source": "proc",
                   "options": ["nosuid", "nodev", "noexec", "relatime"]}),
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                   "options": ro(vec!["nosuid", "noexec", "nodev"])}),
            json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                   "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
        ];
        for b in self.binds {
            let (src, dst) = b.split_once(':').unwrap();
            mounts.push(json!({"destination": dst, "type": "bind", "source": src,
                               "options": ["rw", "rbind", "rshared"]}));
        }
        mounts.sort_by(|a, b| a["destination"].as_str().cmp(&b["destination"].as_str()));
        let mut namespaces = vec![];
        if self.net_new {
            namespaces.push(json!({"type": "network"}));
        }
        if !self.pid_path.is_empty() {
            namespaces.push(json!({"type": "pid", "path": self.pid_path}));
        } else if !self.pid_host {
            namespaces.push(json!({"type": "pid"}));
        }
        if self.userns {
            namespaces.push(json!({"type": "user"}));
        }
        namespaces.push(json!({"type": "mount"}));
        let mut process = json!({
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/sh", "-c", self.script],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/"
        });
        if !self.caps.is_empty() {
            process["capabilities"] = json!({
                "bounding": self.caps, "effective": self.caps,
                "inheritable": self.caps, "permitted": self.caps
            });
        }
        if self.no_new_privs {
            process["noNewPrivileges"] = json!(true);
        }
        for (k, v) in self.process_extra.as_object().unwrap() {
            process[k] = v.clone();
        }
        let mut linux = json!({"resources": self.resources, "namespaces": namespaces});
        if let Some(sc) = &self.seccomp {
            linux["seccomp"] = sc.clone();
        }
        for (k, v) in self.linux_extra.as_object().unwrap() {
            linux[k] = v.clone();
        }
        if self.userns {
            let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            linux["uidMappings"] = map.clone();
            linux["gidMappings"] = map;
        }
        let mut config = json!({
            "ociVersion": "1.2.1",
            "process": process,
            "root": {"path": "rootfs", "readonly": self.readonly},
            "mounts": mounts,
            "linux": linux
        });
        if let Some(h) = &self.hooks {
            config["hooks"] = h.clone();
        }
        if self.annotations != json!({}) {
            config["annotations"] = self.annotations.clone();
        }
        config
    }

    /// runtime.json as LinuxKit's ImageBundle writes it; every container roots at the first
    /// one's extraction (LinuxKit's de-duplication of the same image).
    pub fn runtime(&self) -> Value {
        let p = self.prefix();
        let mounts = if self.readonly {
            json!([{"source": BUSYBOX_ROOT, "destination": format!("{p}/rootfs"),
                    "options": ["bind"]}])
        } else {
            json!([
                {"source": "tmpfs", "type": "tmpfs", "destination": format!("{p}/tmp")},
                {"destination": format!("{p}/tmp"), "options": ["remount", "private"]},
                {"source": "overlay", "type": "overlay", "destination": format!("{p}/rootfs"),
                 "options": [format!("lowerdir={BUSYBOX_ROOT}"), format!("upperdir={p}/tmp/upper"),
                             format!("workdir={p}/tmp/work")]}
            ])
        };
        json!({
            "cgroups": [], "mounts": mounts, "mkdir": self.mkdir, "interfaces": self.interfaces,
            "bindNS": {"cgroup": "", "ipc": "", "mnt": "", "net": self.bind_net, "pid": self.bind_pid,
                       "user": "", "uts": ""},
            "namespace": ""
        })
    }
}

/// An OCI hook running `script` with the busybox of the test image (on init's side).
pub fn hook(script: &str) -> Value {
    json!({"path": format!("{BUSYBOX_ROOT}/bin/busybox"), "args": ["sh", "-c", script],
           "timeout": 20})
}

pub fn write(path: &Path, data: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// Lays out the initrd tree (init, `files`, modules, bundles) and packs it with `cpio`.
pub fn build_initrd(
    dir: &Path,
    init: &Path,
    kernel: &baleen_testkit::kernel::Kernel,
    containers: &[C],
    m: &Modules,
) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let root = dir.join("root");
    let _ = std::fs::remove_dir_all(&root);
    for d in ["dev", "proc", "sys", "run", "tmp", "var", "etc/baleen"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(init, root.join("init")).unwrap();
    std::fs::set_permissions(root.join("init"), std::fs::Permissions::from_mode(0o755)).unwrap();
    write(&root.join("etc/test-file"), "hello from files\n");
    // A sysctl file an image adds with `files:`, applied by init before any container.
    write(&root.join("etc/sysctl.d/90-test.conf"), "# a comment\nnet.ipv4.ip_default_ttl = 42\n");
    // As LinuxKit's init image: dhcpcd writes resolv.conf through this link; init makes its target.
    std::os::unix::fs::symlink("/run/resolvconf/resolv.conf", root.join("etc/resolv.conf"))
        .unwrap();
    let mods = root.join("lib/modules").join(&kernel.release);
    for f in m.files {
        // `.ko.xz` and `.ko.zst` are made from the kernel's `.ko` as kernel builds compress
        // them (`xz --check=crc32 --lzma2=dict=1MiB`, zstd): init decompresses them itself.
        let data = match f.rsplit_once('.') {
            Some((ko, "xz")) => {
                let out = Command::new("xz")
                    .args(["--check=crc32", "--lzma2=dict=1MiB", "-c"])
                    .arg(kernel.modules.join(ko))
                    .output()
                    .expect("xz (xz-utils)");
                assert!(out.status.success(), "xz failed");
                out.stdout
            }
            Some((ko, "zst")) => {
                zstd::encode_all(&std::fs::read(kernel.modules.join(ko)).unwrap()[..], 19).unwrap()
            }
            _ => std::fs::read(kernel.modules.join(f)).unwrap(),
        };
        write(&mods.join(f), data);
    }
    write(&root.join("etc/baleen/modules"), m.explicit.join("\n"));
    if m.depmod {
        // modules.dep and modules.alias, as the kernel component will ship them.
        let ok = Command::new("/bin/busybox")
            .args(["depmod", "-b"])
            .arg(&root)
            .arg(&kernel.release)
            .status()
            .unwrap();
        assert!(ok.success(), "busybox depmod failed");
    }

    // The busybox image, extracted once at the first container's rootfs (LinuxKit de-dup).
    let bb = root.join(BUSYBOX_ROOT.trim_start_matches('/'));
    // rc.init/rc.shutdown hooks an image may add with `files:`.
    let sh = format!("#!{BUSYBOX_ROOT}/bin/busybox sh\n");
    for (path, text) in [
        ("etc/init.d/010-hello", "echo init.d-ran"),
        ("etc/shutdown.d/010-bye", "echo shutdown.d-ran"),
    ] {
        write(&root.join(path), format!("{sh}{text}\n"));
        std::fs::set_permissions(root.join(path), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // A volume as LinuxKit's build lays it out (lower/ with the contents, tmp/, merged/).
    write(&root.join("containers/volumes/data/lower/seed"), "volume seed\n");
    for d in ["tmp", "merged"] {
        std::fs::create_dir_all(root.join("containers/volumes/data").join(d)).unwrap();
    }
    let dirs = [
        "bin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "data",
        "run/baleen-test",
        "run/netns",
        "host-tmp",
        "hostrun",
        "hostdev",
        "hostlog",
    ];
    for d in dirs.iter().chain(&["run/baleen"]) {
        std::fs::create_dir_all(bb.join(d)).unwrap();
    }
    std::os::unix::fs::symlink("/", bb.join("hostile")).unwrap();
    // 41 links, c0 -> c1 -> … -> c40 -> /tmp: one more than the kernel follows. Taken
    // literally, the 41st would lead the host to its own /tmp.
    for i in 0..41 {
        let target = if i == 40 { "/tmp".to_owned() } else { format!("c{}", i + 1) };
        std::os::unix::fs::symlink(target, bb.join(format!("c{i}"))).unwrap();
    }
    // Mount points of file binds (the root is read-only).
    write(&bb.join("etc/test-file"), "");
    write(&bb.join("usr/bin/baleen-ctl"), "");
    std::fs::copy("/bin/busybox", bb.join("bin/busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", bb.join("bin").join(applet)).unwrap();
        }
    }
    for c in containers {
        let b = root.join(c.prefix().trim_start_matches('/'));
        std::fs::create_dir_all(b.join("rootfs")).unwrap();
        if !c.readonly {
            std::fs::create_dir_all(b.join("tmp")).unwrap();
        }
        write(&b.join("config.json"), serde_json::to_vec_pretty(&c.config()).unwrap());
        write(&b.join("runtime.json"), serde_json::to_vec_pretty(&c.runtime()).unwrap());
    }

    let out = dir.join("initrd.img");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet > '{}'",
            out.display()
        ))
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(status.success(), "cpio failed");
    // A hostile image's own device node, `c 1:11` (kmsg) mode 0666, at the image's
    // /hostile-kmsg: appended as a second newc archive (the kernel unpacks concatenated
    // ones), so making it needs no root on the test host.
    let node = format!("{}/hostile-kmsg", BUSYBOX_ROOT.trim_start_matches('/'));
    let mut cpio = std::fs::OpenOptions::new().append(true).open(&out).unwrap();
    std::io::Write::write_all(&mut cpio, &newc_char_device(&node, 0o666, 1, 11)).unwrap();
    out
}

/// One newc archive holding a character device node, then its trailer.
fn newc_char_device(name: &str, mode: u32, major: u32, minor: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut entry = |ino: u32, mode: u32, rdev: (u32, u32), name: &str| {
        let header = format!(
            "070701{ino:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            0, 0, 1, 0, 0, 0, 0, rdev.0, rdev.1, name.len() + 1, 0
        );
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    };
    entry(1, 0o020000 | mode, (major, minor), name);
    entry(0, 0, (0, 0), "TRAILER!!!");
    out
}

pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The modules an initrd carries: files under lib/modules/<release>, the names listed in
/// /etc/baleen/modules, and whether modules.dep/modules.alias are generated.
pub struct Modules {
    pub files: &'static [&'static str],
    pub explicit: &'static [&'static str],
    pub depmod: bool,
}

/// A finished boot: the console and how qemu exited (`None`: killed at the time limit).
pub struct Booted {
    pub console: String,
    pub console_path: PathBuf,
    pub code: Option<i32>,
    pub dir: PathBuf,
}

impl Booted {
    pub fn fail(&self, why: String) -> ! {
        panic!(
            "{why}\n--- last 60 console lines ({}) ---\n{}",
            self.console_path.display(),
            tail(&self.console, 60)
        )
    }

    /// Asserts that `markers` appear in this order.
    pub fn in_order(&self, markers: &[&str]) {
        let mut at = 0;
        for want in markers {
            match self.console[at..].find(want) {
                Some(i) => at += i + want.len(),
                None => self.fail(format!("console lacks {want:?} (after the previous marker)")),
            }
        }
    }

    pub fn contains(&self, markers: &[&str]) {
        for want in markers {
            if !self.console.contains(want) {
                self.fail(format!("console lacks {want:?}"));
            }
        }
    }

    /// Asserts how qemu exited (isa-debug-exit: `(status << 1) | 1`, 0 for a clean reboot(2)).
    pub fn exit_code(&self, want: i32) {
        if self.code != Some(want) {
            self.fail(format!("qemu exited {:?}, want {want}", self.code));
        }
    }

    pub fn done(self) {
        if std::env::var_os("BALEEN_KEEP_TEST_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Boots an initrd of `containers` under qemu (TCG, 150 s limit, `qemu_args` added). `during`
/// runs once the console shows `wait_for` (with the path of qemu's monitor socket). `None`:
/// skipped.
pub fn boot(
    name: &str,
    containers: &[C],
    modules: &Modules,
    qemu_args: &[&str],
    cmdline: &str,
    wait_for: Option<&str>,
    during: impl FnOnce(&Path),
) -> Option<Booted> {
    let qemu = baleen_testkit::require_tool("qemu-system-x86_64")?;
    baleen_testkit::require_tool("cpio")?;
    if !Path::new("/bin/busybox").is_file() {
        assert!(!baleen_testkit::tools_required(), "busybox-static is not installed");
        eprintln!("skipping: /bin/busybox (busybox-static) is not installed");
        return None;
    }
    let kernel = baleen_testkit::kernel::debian_cloud_kernel()?;
    let init = baleen_testkit::init::init_binary();
    let dir = baleen_testkit::kernel::cache_dir()
        .join(format!("init-boot-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let initrd = build_initrd(&dir, &init, &kernel, containers, modules);

    let console_path = dir.join("console.log");
    let monitor = dir.join("monitor.sock");
    let mut child = Command::new(qemu)
        .args(["-accel", "tcg", "-m", "512", "-smp", "1", "-nographic", "-no-reboot"])
        .args(["-net", "none", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .arg("-monitor")
        .arg(format!("unix:{},server=on,wait=off", monitor.display()))
        .args(qemu_args)
        .arg("-kernel")
        .arg(&kernel.vmlinuz)
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", &format!("console=ttyS0 panic=-1 {cmdline}")])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&console_path).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting qemu");
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut during = Some(during);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if let (Some(marker), Some(_)) = (wait_for, &during) {
            let so_far = std::fs::read(&console_path).unwrap_or_default();
            if String::from_utf8_lossy(&so_far).contains(marker) {
                (during.take().unwrap())(&monitor);
            }
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let console = String::from_utf8_lossy(&std::fs::read(&console_path).unwrap()).into_owned();
    let b = Booted { console, console_path, code: status.and_then(|s| s.code()), dir };
    if status.is_none() {
        b.fail("qemu still running after 150 s".into());
    }
    Some(b)
}
