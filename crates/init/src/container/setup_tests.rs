use super::*;
use crate::spec::{Capabilities, Mount, Namespace};
use crate::sys::fake::Fake;

const ROOT: &str = "/containers/services/x/rootfs";

/// The state hooks would read.
const HS: crate::hooks::State = crate::hooks::State {
    id: "x",
    status: "creating",
    pid: Some(7),
    bundle: "/containers/services/x",
};

/// A config.json as LinuxKit generates it (defaults of §2.2), readonly or not.
fn linuxkit_config(readonly: bool) -> Config {
    let ro = if readonly { ",\"ro\"" } else { "" };
    let json = format!(
        r#"{{
        "process": {{"args": ["/bin/sh"], "cwd": "/", "user": {{"uid": 0, "gid": 0}}}},
        "root": {{"path": "rootfs", "readonly": {readonly}}},
        "mounts": [
            {{"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid","strictatime","mode=755","size=65536k"{ro}]}},
            {{"destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620"]}},
            {{"destination": "/etc/x.conf", "type": "bind", "source": "/etc/x.conf",
              "options": ["rbind","ro"]}},
            {{"destination": "/proc", "type": "proc", "source": "proc",
              "options": ["nosuid","nodev","noexec","relatime"]}},
            {{"destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid","noexec","nodev"{ro}]}},
            {{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid","noexec","nodev","relatime","ro"]}}
        ],
        "linux": {{"namespaces": [{{"type": "pid"}}, {{"type": "mount"}}],
                   "maskedPaths": ["/proc/kcore", "/proc/acpi"],
                   "readonlyPaths": ["/proc/sys"]}}
    }}"#
    );
    serde_json::from_str(&json).unwrap()
}

fn fake() -> Fake {
    Fake::new()
        .file("/etc/x.conf")
        .file("/containers/services/x/rootfs/proc/kcore")
        .dir("/containers/services/x/rootfs/proc/sys")
}

#[test]
fn mounts_run_in_config_order_before_pivot() {
    let cfg = linuxkit_config(true);
    let mut f = fake();
    setup_child(&mut f, &cfg, Path::new(ROOT), &CapSets::default(), None, &HS).unwrap();
    let mounts: Vec<&str> = f.matching("mount ");
    let expect = [
        "mount - / - rec|slave -",
        "mount /containers/services/x/rootfs /containers/services/x/rootfs - bind|rec -",
        // Not granted CAP_MKNOD: device nodes in the image's own tree are inert.
        "mount - /containers/services/x/rootfs - bind|remount|nodev -",
        // /dev is filled while writable and made read-only afterwards.
        "mount tmpfs /containers/services/x/rootfs/dev tmpfs nosuid|strictatime mode=755,size=65536k",
        "mount devpts /containers/services/x/rootfs/dev/pts devpts nosuid|noexec newinstance,ptmxmode=0666,mode=0620",
        "mount /etc/x.conf /containers/services/x/rootfs/etc/x.conf - bind|rec -",
        "mount - /containers/services/x/rootfs/etc/x.conf - bind|remount|ro -",
        "mount proc /containers/services/x/rootfs/proc proc nosuid|nodev|noexec|relatime -",
        "mount sysfs /containers/services/x/rootfs/sys sysfs ro|nosuid|nodev|noexec -",
        "mount cgroup2 /containers/services/x/rootfs/sys/fs/cgroup cgroup2 ro|nosuid|nodev|noexec|relatime -",
        // Read-only with the flags it was mounted with (a plain remount would clear nosuid).
        "mount - /containers/services/x/rootfs/dev - remount|ro|nosuid|strictatime -",
        // kcore is a file: /dev/null over it; /proc/acpi does not exist: skipped.
        "mount /dev/null /containers/services/x/rootfs/proc/kcore - bind -",
        "mount /containers/services/x/rootfs/proc/sys /containers/services/x/rootfs/proc/sys - bind|rec -",
        "mount - /containers/services/x/rootfs/proc/sys - bind|rec|remount|ro -",
        "mount - . - rec|slave -",
        "mount - / - bind|remount|ro -",
    ];
    assert_eq!(mounts, expect);
    // The bind target for a file is a file; the default devices land in the tmpfs /dev.
    assert!(f.calls.contains(&"touch /containers/services/x/rootfs/etc/x.conf".to_owned()));
    assert!(f.calls.contains(&"mknod /containers/services/x/rootfs/dev/null c 1:3 666".to_owned()));
    assert!(f
        .calls
        .contains(&"symlink /containers/services/x/rootfs/dev/ptmx -> pts/ptmx".to_owned()));
    let pos = |s: &str| f.calls.iter().position(|c| c.starts_with(s)).unwrap();
    assert!(pos("mknod") < pos("mount - /containers/services/x/rootfs/dev - remount|ro"));
    assert!(pos("pivot_root . .") < pos("umount . detach"));
    // The rslave after the pivot is for the old root, entered again by descriptor.
    assert!(pos("open_dir /") < pos("pivot_root . ."));
    assert!(pos("pivot_root . .") < pos("fchdir"));
    assert!(pos("fchdir") < pos("mount - . - rec|slave"));
    assert!(pos("umount . detach") < pos("mount - / - bind|remount|ro"));
}

/// A bundle with no masked or read-only paths, not granted CAP_SYS_ADMIN, gets containerd's:
/// `/proc/sysrq-trigger` and `/proc/sys` (core_pattern) read-only, kcore masked. Granted
/// CAP_SYS_ADMIN (pkg/sysctl, format, mount) it keeps the plain view; granted CAP_MKNOD its
/// root keeps device nodes working.
#[test]
fn default_masks_and_nodev_for_the_unprivileged_only() {
    let mut cfg = linuxkit_config(true);
    cfg.linux.masked_paths.clear();
    cfg.linux.readonly_paths.clear();
    let r = |p: &str| format!("{ROOT}/{p}");
    let mut f = fake().file(&r("proc/sysrq-trigger")).dir(&r("sys/firmware"));
    setup_child(&mut f, &cfg, Path::new(ROOT), &CapSets::default(), None, &HS).unwrap();
    for want in [
        format!("mount /dev/null {} - bind -", r("proc/kcore")),
        format!("mount tmpfs {} tmpfs ro -", r("sys/firmware")),
        format!("mount - {} - bind|rec|remount|ro -", r("proc/sys")),
        format!("mount - {} - bind|rec|remount|ro -", r("proc/sysrq-trigger")),
        format!("mount - {ROOT} - bind|remount|nodev -"),
    ] {
        assert!(f.calls.contains(&want), "{want}\n{:#?}", f.calls);
    }
    let caps = CapSets { bounding: 1 << 21 | 1 << 27, ..CapSets::default() };
    let mut f = fake().file(&r("proc/sysrq-trigger")).dir(&r("sys/firmware"));
    setup_child(&mut f, &cfg, Path::new(ROOT), &caps, None, &HS).unwrap();
    assert!(!f.calls.iter().any(|c| c.contains("/proc/") && c.contains("remount|ro")));
    assert!(!f.calls.iter().any(|c| c.contains("nodev -")), "{:#?}", f.calls);
}

#[test]
fn writable_root_is_not_remounted() {
    let cfg = linuxkit_config(false);
    let mut f = fake();
    setup_child(&mut f, &cfg, Path::new(ROOT), &CapSets::default(), None, &HS).unwrap();
    assert!(!f.calls.iter().any(|c| c.starts_with("mount - / - bind|remount|ro")));
    assert!(!f.calls.iter().any(|c| c.contains("/dev - remount|ro")));
}

#[test]
fn capabilities_drop_bounding_before_ids_then_set() {
    let mut cfg = linuxkit_config(true);
    cfg.process.user.uid = 100;
    cfg.process.user.gid = 101;
    cfg.process.user.additional_gids = vec![5];
    cfg.process.no_new_privileges = true;
    cfg.process.capabilities = Some(Capabilities {
        bounding: vec!["CAP_NET_ADMIN".into(), "CAP_NET_BIND_SERVICE".into()],
        effective: vec!["CAP_NET_ADMIN".into()],
        permitted: vec!["CAP_NET_ADMIN".into(), "CAP_NET_BIND_SERVICE".into()],
        inheritable: vec!["CAP_NET_BIND_SERVICE".into()],
        ambient: vec!["CAP_NET_BIND_SERVICE".into()],
    });
    let caps = crate::caps::sets(cfg.process.capabilities.as_ref()).unwrap();
    let mut f = fake();
    setup_child(&mut f, &cfg, Path::new(ROOT), &caps, None, &HS).unwrap();
    let tail: Vec<&str> = f.calls.iter().rev().take(4).rev().map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "drop_bounding keep=0x1400",
            "set_ids 100:101 groups [5]",
            "set_caps eff=0x1000 prm=0x1400 inh=0x400 amb=0x400",
            "no_new_privs"
        ]
    );
}

#[test]
fn no_capabilities_means_empty_sets() {
    let cfg = linuxkit_config(true);
    let caps = crate::caps::sets(cfg.process.capabilities.as_ref()).unwrap();
    let mut f = fake();
    setup_child(&mut f, &cfg, Path::new(ROOT), &caps, None, &HS).unwrap();
    assert!(f.calls.contains(&"drop_bounding keep=0x0".to_owned()));
    assert!(f.calls.contains(&"set_caps eff=0x0 prm=0x0 inh=0x0 amb=0x0".to_owned()));
}

#[test]
fn sysctl_hostname_rlimits_and_devices() {
    let mut cfg = linuxkit_config(false);
    cfg.hostname = Some("box".into());
    cfg.linux.namespaces.push(Namespace { kind: "uts".into(), path: None });
    cfg.linux.namespaces.push(Namespace { kind: "network".into(), path: None });
    cfg.linux.sysctl.insert("net.ipv4.ip_forward".into(), "1".into());
    cfg.process.rlimits.push(crate::spec::Rlimit {
        kind: "RLIMIT_NOFILE".into(),
        hard: 10,
        soft: 5,
    });
    cfg.process.oom_score_adj = Some(-500);
    cfg.linux.devices.push(crate::spec::Device {
        path: "/dev/fuse".into(),
        kind: "c".into(),
        major: 10,
        minor: 229,
        file_mode: Some(0o600),
        uid: Some(1),
        gid: None,
    });
    let mut f = fake();
    setup_child(&mut f, &cfg, Path::new(ROOT), &CapSets::default(), None, &HS).unwrap();
    for want in [
        "write /proc/sys/net/ipv4/ip_forward 1",
        "sethostname box",
        "setrlimit 7 5 10",
        "write /proc/self/oom_score_adj -500",
        "mknod /containers/services/x/rootfs/dev/fuse c 10:229 600",
        "chown /containers/services/x/rootfs/dev/fuse 1:0",
    ] {
        assert!(f.calls.iter().any(|c| c == want), "missing {want:?} in {:#?}", f.calls);
    }
}

/// A sysctl is written by the still-privileged setup through /proc: one that is not scoped to a
/// namespace the container owns would be the host's. `kernel.core_pattern` from an image label
/// was host root for a container granted nothing; `net.*` in the host network namespace (the
/// default) rewired the host. Refused as runc refuses them, before anything is written.
#[test]
fn sysctls_outside_the_containers_own_namespaces_are_refused() {
    let refused = |key: &str, namespaces: Vec<Namespace>, links: &[(&str, &str)]| {
        let mut cfg = linuxkit_config(false);
        cfg.linux.namespaces.extend(namespaces);
        cfg.linux.sysctl.insert(key.into(), "|/evil".into());
        let mut f = fake();
        for (l, t) in links {
            f = f.link(l, t);
        }
        let e = setup_child(&mut f, &cfg, Path::new(ROOT), &CapSets::default(), None, &HS)
            .expect_err(key);
        assert!(!f.calls.iter().any(|c| c.starts_with("write /proc/sys")), "{:#?}", f.calls);
        crate::console::chain(&e)
    };
    let net = |path: Option<&str>| Namespace { kind: "network".into(), path: path.map(Into::into) };
    let e = refused("kernel.core_pattern", vec![net(None)], &[]);
    assert!(e.contains("\"kernel.core_pattern\" is not in a separate kernel namespace"), "{e}");
    refused("kernel/core_pattern", vec![], &[]);
    let e = refused("net.ipv4.ip_forward", vec![], &[]);
    assert!(e.contains("network namespace of the container's own"), "{e}");
    // Joined by path, but the path is the host's own namespace.
    let host = [("/proc/self/ns/net", "net:[4026531840]"), ("/proc/1/ns/net", "net:[4026531840]")];
    refused("net.ipv4.ip_forward", vec![net(Some("/proc/1/ns/net"))], &host);
    // A namespace of its own, joined by path: allowed.
    let mut cfg = linuxkit_config(false);
    cfg.linux.namespaces.push(net(Some("/run/netns/x")));
    cfg.linux.sysctl.insert("net.ipv4.ip_forward".into(), "1".into());
    let mut f = fake()
        .link("/proc/self/ns/net", "net:[4026532000]")
        .link("/proc/1/ns/net", "net:[4026531840]");
    setup_child(&mut f, &cfg, Path::new(ROOT), &CapSets::default(), None, &HS).unwrap();
    assert!(f.calls.contains(&"write /proc/sys/net/ipv4/ip_forward 1".to_owned()));
}

#[test]
fn a_failing_step_names_itself() {
    let cfg = linuxkit_config(true);
    let mut f = fake();
    f.fail.push("mount proc".into());
    let e = setup_child(&mut f, &cfg, Path::new(ROOT), &CapSets::default(), None, &HS).unwrap_err();
    // The step is the message, the errno its source (printed once, by the chain).
    assert_eq!(e.to_string(), format!("mounting {ROOT}/proc"));
    let errno = io::Error::from_raw_os_error(1);
    assert_eq!(crate::console::chain(&e), format!("mounting {ROOT}/proc: {errno}"));
}

#[test]
fn prepare_host_runs_linuxkit_runtime_mounts() {
    // runtime.json for a writable container, as LinuxKit writes it (§2.6).
    let rt: Runtime = serde_json::from_str(
        r#"{
        "mounts": [
            {"destination": "/containers/onboot/001-x/tmp", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/containers/onboot/001-x/tmp", "options": ["remount", "private"]},
            {"destination": "/containers/onboot/001-x/rootfs", "type": "overlay", "source": "overlay",
             "options": ["lowerdir=/containers/onboot/001-x/lower",
                         "upperdir=/containers/onboot/001-x/tmp/upper",
                         "workdir=/containers/onboot/001-x/tmp/work"]}
        ],
        "mkdir": ["/var/lib/x", "rel"],
        "cgroups": ["/dockerd"]
    }"#,
    )
    .unwrap();
    let mut f =
        Fake::new().dir("/containers/onboot/001-x/tmp").dir("/containers/onboot/001-x/rootfs");
    prepare_host(&mut f, Path::new("/containers/onboot/001-x/rootfs"), &rt).unwrap();
    assert_eq!(
        f.calls,
        [
            "mount tmpfs /containers/onboot/001-x/tmp tmpfs 0 -",
            "mount - /containers/onboot/001-x/tmp - remount -",
            "mount - /containers/onboot/001-x/tmp - private -",
            "mkdir /containers/onboot/001-x/tmp/upper 755",
            "mkdir /containers/onboot/001-x/tmp/work 755",
            "mount overlay /containers/onboot/001-x/rootfs overlay 0 \
             lowerdir=/containers/onboot/001-x/lower,upperdir=/containers/onboot/001-x/tmp/upper,\
             workdir=/containers/onboot/001-x/tmp/work",
            "mkdir /var/lib/x 755",
            "mkdir /containers/onboot/001-x/rootfs/rel 755",
            "mkdir /sys/fs/cgroup/dockerd 755",
        ]
    );
}

/// A hostile image: `etc -> /` in its rootfs must not turn runtime.json's relative `mkdir`
/// or mount destination into init's own `/etc`.
#[test]
fn relative_runtime_paths_resolve_inside_the_rootfs() {
    let rt: Runtime = serde_json::from_str(
        r#"{"mounts": [{"destination": "etc/conf", "type": "tmpfs", "source": "tmpfs"}],
            "mkdir": ["etc/state"]}"#,
    )
    .unwrap();
    let root = "/containers/services/x/rootfs";
    let mut f = Fake::new().link(&format!("{root}/etc"), "/");
    prepare_host(&mut f, Path::new(root), &rt).unwrap();
    assert_eq!(
        f.calls,
        [
            format!("mkdir {root}/conf 755"),
            format!("mount tmpfs {root}/conf tmpfs 0 -"),
            format!("mkdir {root}/state 755"),
        ]
    );
}

#[test]
fn joins_namespaces_by_path() {
    let mut cfg = linuxkit_config(false);
    cfg.linux
        .namespaces
        .push(Namespace { kind: "network".into(), path: Some("/run/netns/x".into()) });
    let mut f = Fake::new();
    join_namespaces(&mut f, &cfg).unwrap();
    assert_eq!(f.calls, ["setns /run/netns/x 0x40000000"]);
    // A pid namespace by path is the parent's business (before clone): the child skips it.
    cfg.linux
        .namespaces
        .push(Namespace { kind: "pid".into(), path: Some("/proc/1/ns/pid".into()) });
    let mut f = Fake::new();
    join_namespaces(&mut f, &cfg).unwrap();
    assert_eq!(f.calls, ["setns /run/netns/x 0x40000000"]);
    cfg.linux.namespaces.push(Namespace { kind: "time".into(), path: Some("/x".into()) });
    assert!(join_namespaces(&mut Fake::new(), &cfg).is_err());
}

#[test]
fn a_pid_namespace_by_path_is_joined_around_the_fork() {
    let mut cfg = linuxkit_config(false);
    cfg.linux.namespaces =
        vec![Namespace { kind: "pid".into(), path: Some("/run/pidns/a".into()) }];
    let mut f = Fake::new();
    let pid = in_pid_namespace(&mut f, &cfg, |f| {
        f.calls.push("fork".into());
        42
    })
    .unwrap();
    assert_eq!(pid, 42);
    assert_eq!(
        f.calls,
        ["setns /run/pidns/a 0x20000000", "fork", "setns /proc/self/ns/pid 0x20000000"]
    );
    // A failed join forks nothing.
    let mut f = Fake { fail: vec!["setns /run/pidns/a".into()], ..Fake::new() };
    let r = in_pid_namespace(&mut f, &cfg, |f| f.calls.push("fork".into()));
    assert!(r.unwrap_err().to_string().contains("joining pid namespace /run/pidns/a"));
    assert!(!f.calls.contains(&"fork".to_owned()));
    // A new pid namespace (no path) is clone's business: no setns at all.
    let mut f = Fake::new();
    in_pid_namespace(&mut f, &linuxkit_config(false), |f| f.calls.push("fork".into())).unwrap();
    assert_eq!(f.calls, ["fork"]);
}

#[test]
fn symlinks_in_the_rootfs_cannot_escape_it() {
    let root = Path::new(ROOT);
    let mut f = Fake::new()
        .link("/containers/services/x/rootfs/etc", "/run/host")
        .link("/containers/services/x/rootfs/run/host", "../../../../../../outside")
        .link("/containers/services/x/rootfs/var/lib", "data")
        .link("/containers/services/x/rootfs/loop", "loop");
    let j = |f: &mut Fake, p: &str| secure_join(f, root, p).unwrap().display().to_string();
    assert_eq!(j(&mut f, "/etc/passwd"), format!("{ROOT}/outside/passwd"));
    assert_eq!(j(&mut f, "/var/lib/x"), format!("{ROOT}/var/data/x"));
    assert_eq!(j(&mut f, "/../../x/./y/"), format!("{ROOT}/x/y"));
    // A loop is ELOOP, never the link taken literally (which the host would then follow).
    let e = secure_join(&mut f, root, "/loop/z").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(40), "{e}");
}

/// `l0 -> l1 -> … -> lN -> /tmp`: the kernel's 40 links resolve inside the root; 41 are ELOOP.
/// Before, the walk kept the 41st link as a literal component, so the mkdir/touch/mknod that
/// followed went through it to init's /tmp.
fn chain(links: usize) -> Fake {
    let mut f = Fake::new();
    for i in 0..links {
        let target = if i + 1 == links { "/tmp".to_owned() } else { format!("l{}", i + 1) };
        f = f.link(&format!("{ROOT}/l{i}"), &target);
    }
    f
}

#[test]
fn a_chain_of_41_symlinks_is_eloop_not_a_way_out() {
    let root = Path::new(ROOT);
    let ok = secure_join(&mut chain(40), root, "/l0/x").unwrap();
    assert_eq!(ok, root.join("tmp/x"));
    let e = secure_join(&mut chain(41), root, "/l0/x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(40), "{e}");

    // As a bind target, a device path and a runtime mkdir: the start fails naming the path,
    // and nothing is made anywhere.
    let mut cfg = linuxkit_config(false);
    cfg.mounts.retain(|m| m.destination == "/etc/x.conf");
    cfg.mounts[0].destination = "/l0/bindescape".into();
    let mut f = chain(41).file("/etc/x.conf");
    let e = setup_child(&mut f, &cfg, root, &CapSets::default(), None, &HS).unwrap_err();
    assert!(e.to_string().contains("/l0/bindescape"), "{e}");
    assert!(!f.calls.iter().any(|c| c.contains("escape")), "{:#?}", f.calls);

    let mut cfg = linuxkit_config(false);
    cfg.linux.devices.push(crate::spec::Device {
        path: "/l0/devescape".into(),
        kind: "c".into(),
        major: 1,
        minor: 3,
        file_mode: None,
        uid: None,
        gid: None,
    });
    let mut f = chain(41);
    let e = setup_child(&mut f, &cfg, root, &CapSets::default(), None, &HS).unwrap_err();
    assert!(e.to_string().contains("/l0/devescape"), "{e}");
    assert!(!f.calls.iter().any(|c| c.contains("escape")), "{:#?}", f.calls);

    let rt: crate::spec::Runtime =
        serde_json::from_str(r#"{"mkdir": ["l0/mkdirescape"]}"#).unwrap();
    let mut f = chain(41);
    let e = prepare_host(&mut f, root, &rt).unwrap_err();
    assert!(e.to_string().contains("l0/mkdirescape"), "{e}");
    assert!(f.calls.is_empty(), "{:#?}", f.calls);
}

/// Whatever a resolver answers, nothing is made outside the container's root: the seam
/// refuses a path that is not under it.
#[test]
fn create_in_refuses_paths_outside_the_root() {
    let mut f = Fake::new();
    let e = f.create_in(Path::new(ROOT), Path::new("/tmp/x"), crate::sys::Node::File);
    assert_eq!(e.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    let inside = Path::new(ROOT).join("../../../../tmp/x");
    let e = f.create_in(Path::new(ROOT), &inside, crate::sys::Node::Dir(0o755));
    assert_eq!(e.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    assert!(f.calls.is_empty());
}

/// CVE-2024-21626: a cwd that getcwd reports outside the root (reached through a leaked
/// descriptor) stops the start.
#[test]
fn a_working_directory_outside_the_root_is_refused() {
    let mut cfg = linuxkit_config(false);
    cfg.process.cwd = Some("/proc/self/fd/7".into());
    let mut f = fake();
    f.cwd = Some("(unreachable)/host".into());
    let e = setup_child(&mut f, &cfg, Path::new(ROOT), &CapSets::default(), None, &HS);
    let e = e.unwrap_err().to_string();
    assert!(e.contains("checking the working directory /proc/self/fd/7"), "{e}");
    assert!(!f.calls.iter().any(|c| c.starts_with("set_ids")), "{:#?}", f.calls);
}

/// Regression: a bind whose destination goes through a rootfs symlink to an absolute path
/// lands inside the rootfs, not on init's filesystem.
#[test]
fn mount_points_resolve_symlinks_inside_the_rootfs() {
    let mut cfg = linuxkit_config(false);
    cfg.mounts.retain(|m| m.destination == "/etc/x.conf");
    let mut f = fake().link("/containers/services/x/rootfs/etc", "/run/evil");
    setup_child(&mut f, &cfg, Path::new(ROOT), &CapSets::default(), None, &HS).unwrap();
    assert!(f.calls.contains(&format!("touch {ROOT}/run/evil/x.conf")), "{:#?}", f.calls);
    assert!(!f.calls.iter().any(|c| c.contains(" /run/evil")), "{:#?}", f.calls);
}

#[test]
fn seccomp_goes_last_with_no_new_privs_and_first_without() {
    let prog =
        crate::seccomp::compile(&serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"})).unwrap();
    let mut cfg = linuxkit_config(false);
    cfg.process.no_new_privileges = true;
    let mut f = fake();
    setup_child(&mut f, &cfg, Path::new(ROOT), &CapSets::default(), Some(&prog), &HS).unwrap();
    assert_eq!(f.calls[f.calls.len() - 2..], ["no_new_privs", "seccomp 7 insns"]);
    cfg.process.no_new_privileges = false;
    let mut f = fake();
    setup_child(&mut f, &cfg, Path::new(ROOT), &CapSets::default(), Some(&prog), &HS).unwrap();
    let pos = |s: &str| f.calls.iter().position(|c| c.starts_with(s)).unwrap();
    assert!(pos("seccomp") < pos("drop_bounding"), "{:#?}", f.calls);
}

#[test]
fn devices_are_not_made_in_a_bound_host_dev() {
    let mut cfg = linuxkit_config(false);
    cfg.mounts.retain(|m| m.destination != "/dev" && m.destination != "/dev/pts");
    cfg.mounts.push(Mount {
        destination: "/dev".into(),
        kind: Some("bind".into()),
        source: Some("/dev".into()),
        options: vec!["rbind".into(), "rw".into()],
    });
    cfg.linux.devices.push(crate::spec::Device {
        path: "/dev/console".into(),
        kind: "c".into(),
        major: 5,
        minor: 1,
        ..Default::default()
    });
    let mut f = fake().dir("/dev");
    setup_child(&mut f, &cfg, Path::new(ROOT), &CapSets::default(), None, &HS).unwrap();
    assert!(!f.calls.iter().any(|c| c.starts_with("mknod")), "{:#?}", f.calls);
}

#[test]
fn in_a_user_namespace_devices_and_sysfs_come_from_the_host() {
    let cfg = linuxkit_config(false);
    let mut f = fake();
    f.fail.push(format!("mknod {ROOT}/dev/null"));
    f.fail.push("mount sysfs".into());
    setup_child(&mut f, &cfg, Path::new(ROOT), &CapSets::default(), None, &HS).unwrap();
    for want in [
        format!("touch {ROOT}/dev/null"),
        format!("mount /dev/null {ROOT}/dev/null - bind -"),
        format!("mount /sys {ROOT}/sys - bind|rec -"),
    ] {
        assert!(f.calls.contains(&want), "missing {want:?} in {:#?}", f.calls);
    }
}

#[test]
fn the_user_namespace_is_joined_first() {
    let mut cfg = linuxkit_config(false);
    cfg.linux.namespaces = vec![
        Namespace { kind: "network".into(), path: Some("/run/netns/x".into()) },
        Namespace { kind: "user".into(), path: Some("/proc/9/ns/user".into()) },
    ];
    let mut f = Fake::new();
    join_namespaces(&mut f, &cfg).unwrap();
    assert_eq!(f.calls, ["setns /proc/9/ns/user 0x10000000", "setns /run/netns/x 0x40000000"]);
}

#[test]
fn in_container_hooks_run_before_pivot_root_and_right_before_exec() {
    let mut cfg = linuxkit_config(true);
    let hook = |p: &str| crate::hooks::Hook { path: p.into(), ..Default::default() };
    cfg.hooks = Some(crate::hooks::Hooks {
        create_container: vec![hook("/usr/bin/cc1"), hook("/usr/bin/cc2")],
        start_container: vec![hook("/bin/sc")],
        ..Default::default()
    });
    cfg.process.no_new_privileges = true;
    let mut f = fake();
    let prog =
        crate::seccomp::compile(&serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"})).unwrap();
    setup_child(&mut f, &cfg, Path::new(ROOT), &CapSets::default(), Some(&prog), &HS).unwrap();
    let at = |prefix: &str| f.calls.iter().position(|c| c.starts_with(prefix)).unwrap();
    let cc = at("hooks createContainer /usr/bin/cc1 /usr/bin/cc2");
    // After every mount into the rootfs (the last: /dev made read-only), before pivot_root.
    assert!(at(&format!("mount - {ROOT}/dev - remount|ro")) < cc, "{:#?}", f.calls);
    assert!(cc < at("pivot_root"));
    // Inside the container, last: after the ids, capabilities and the seccomp filter.
    assert_eq!(f.calls.last().unwrap(), "hooks startContainer /bin/sc");
    assert!(at("seccomp") < f.calls.len() - 1);
    // A failing hook stops the setup with what was being done.
    let mut f = Fake { fail: vec!["hooks createContainer".into()], ..fake() };
    let e = setup_child(&mut f, &cfg, Path::new(ROOT), &CapSets::default(), None, &HS).unwrap_err();
    assert!(e.to_string().starts_with("running hooks before pivot_root in"), "{e}");
    assert!(!f.calls.iter().any(|c| c.starts_with("pivot_root")));
}

/// The bug: the read-only remount of a tmpfs named its path again at the end of setup, so a
/// path swapped meanwhile (a symlink, another mount) got the remount instead; and a plain
/// remount given only `ro` cleared the tmpfs's nosuid. Now the remount names the descriptor
/// opened right after the mount, with the flags it was mounted with.
#[test]
fn a_read_only_tmpfs_is_remounted_through_its_own_mount_with_its_flags() {
    let cfg = linuxkit_config(true);
    let mut f = fake();
    f.pins = true;
    setup_child(&mut f, &cfg, Path::new(ROOT), &CapSets::default(), None, &HS).unwrap();
    let pos = |s: &str| f.calls.iter().position(|c| c.starts_with(s)).unwrap();
    let mounted = pos("mount tmpfs /proc/self/fd/");
    let pin = &f.calls[mounted + 1];
    let fd = pin.strip_prefix(&format!("pin {ROOT}/dev -> ")).unwrap_or_else(|| panic!("{pin}"));
    let remount = format!("mount - {fd} - remount|ro|nosuid|strictatime -");
    assert!(pos(&remount) > pos("mknod"), "{:#?}", f.calls);
    assert!(!f.calls.iter().any(|c| c.starts_with(&format!("mount - {ROOT}/dev "))));
}

/// A `linux.devices` entry with no /dev mount in the bundle: the node is made on the root,
/// which is nodev (not granted CAP_MKNOD), so it is bound onto itself and that bind alone made
/// dev-capable, as it would work under runc. Not needed below a /dev mount or with CAP_MKNOD.
#[test]
fn listed_devices_on_the_nodev_root_are_bound_usable() {
    let fuse = crate::spec::Device {
        path: "/dev/fuse".into(),
        kind: "c".into(),
        major: 10,
        minor: 229,
        ..Default::default()
    };
    let mut cfg = linuxkit_config(true);
    cfg.mounts.retain(|m| m.destination != "/dev" && m.destination != "/dev/pts");
    cfg.linux.devices.push(fuse);
    let mut f = fake();
    f.pins = true;
    setup_child(&mut f, &cfg, Path::new(ROOT), &CapSets::default(), None, &HS).unwrap();
    let node = format!("{ROOT}/dev/fuse");
    let i = f.calls.iter().position(|c| c == &format!("mknod {node} c 10:229 666")).unwrap();
    let fd = |c: &str| c.strip_prefix(&format!("pin {node} -> ")).unwrap().to_owned();
    let (a, b) = (fd(&f.calls[i + 1]), fd(&f.calls[i + 3]));
    assert_eq!(f.calls[i + 2], format!("mount {a} {a} - bind -"));
    // nodev cleared on this bind only; read-only as the root is.
    assert_eq!(f.calls[i + 4], format!("mount - {b} - bind|remount|ro|nosuid|noexec -"));

    let binds = |f: &Fake| f.calls.iter().filter(|c| c.ends_with(" - bind -")).count();
    let mknod = CapSets { bounding: 1 << 27, ..CapSets::default() };
    let mut f = fake();
    setup_child(&mut f, &cfg, Path::new(ROOT), &mknod, None, &HS).unwrap();
    assert_eq!(binds(&f), 1, "with CAP_MKNOD only kcore's mask: {:#?}", f.calls);
    let mut with_dev = linuxkit_config(true);
    with_dev.linux.devices = cfg.linux.devices.clone();
    let mut f = fake();
    setup_child(&mut f, &with_dev, Path::new(ROOT), &CapSets::default(), None, &HS).unwrap();
    assert_eq!(binds(&f), 1, "in a /dev tmpfs only kcore's mask: {:#?}", f.calls);
}

/// The bug: runtime.json `cgroups` entries were joined to /sys/fs/cgroup as given, so
/// `../../../etc/x` made /etc/x on the host.
#[test]
fn runtime_cgroups_stay_under_the_cgroup_tree() {
    let rt: Runtime =
        serde_json::from_str(r#"{"cgroups": ["../../../etc/x", "/baleen/y"]}"#).unwrap();
    let mut f = Fake::new();
    prepare_host(&mut f, Path::new(ROOT), &rt).unwrap();
    assert_eq!(f.calls, ["mkdir /sys/fs/cgroup/etc/x 755", "mkdir /sys/fs/cgroup/baleen/y 755"]);
}

/// The bug: any sysctl config.json listed was written through init's /proc, so a bundle (an
/// image label) could set `kernel.core_pattern` for the whole machine. As runc, only keys of
/// a namespace the container has apart from init's are set; the rest fail the start.
#[test]
fn only_sysctls_of_the_containers_own_namespaces_are_set() {
    let mut cfg = linuxkit_config(false);
    cfg.linux.sysctl.insert("kernel.core_pattern".into(), "|/bin/evil".into());
    let e = setup_child(&mut fake(), &cfg, Path::new(ROOT), &CapSets::default(), None, &HS)
        .unwrap_err();
    let e = crate::console::chain(&e);
    assert!(e.starts_with("setting sysctl /proc/sys/kernel/core_pattern: "), "{e}");

    let ns = |kinds: &[&str]| -> Vec<Namespace> {
        kinds.iter().map(|k| Namespace { kind: (*k).into(), path: None }).collect()
    };
    let refused = |kinds: &[&str], key: &str| {
        let mut cfg = linuxkit_config(false);
        cfg.linux.namespaces = ns(kinds);
        cfg.linux.sysctl.insert(key.into(), "1".into());
        let mut f = fake();
        let r = setup_child(&mut f, &cfg, Path::new(ROOT), &CapSets::default(), None, &HS);
        assert_eq!(r.is_err(), !f.calls.iter().any(|c| c.starts_with("write /proc/sys/")));
        r.is_err()
    };
    assert!(refused(&["mount"], "net.ipv4.ip_forward"), "the host's network");
    assert!(!refused(&["mount", "network"], "net.ipv4.ip_forward"));
    assert!(refused(&["mount"], "kernel.shmmax"), "the host's ipc");
    assert!(!refused(&["mount", "ipc"], "kernel.shmmax"));
    assert!(!refused(&["mount", "ipc"], "fs.mqueue.msg_max"));
    assert!(!refused(&["mount", "uts"], "kernel.domainname"));
    assert!(refused(&["mount", "uts"], "kernel.hostname"), "the hostname field is for that");
    assert!(refused(&["mount", "uts", "ipc", "network"], "kernel.sysrq"));
}
