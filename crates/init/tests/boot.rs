//! Real boots: Debian's cloud kernel under qemu (TCG) with baleen-init as `/init` and a bundle
//! tree laid out as LinuxKit writes it (tests/harness). One boot checks many things at once, to
//! keep the suite's qemu time small:
//!
//! onboot order; a failing onboot reported with its stderr; overlay (a module, loaded from
//! `overlay.ko.xz`; veth from `veth.ko.zst`) for a writable root; a readonly root refusing
//! writes (EROFS); no capabilities refusing mknod; a bind whose destination goes through the
//! image's `hostile -> /` symlink staying inside it; a device cgroup (eBPF) allowing mknod and
//! kmsg but refusing to open ttyS0; a service born in another service's pid namespace joined
//! by path; a service reading a `files` entry through a bind; a `net: new` service reaching the
//! host namespace over a veth pair from runtime.json (veth's dependencies read without
//! modules.dep); a `poweroff` from a `pid: host` service; services stopped with SIGTERM;
//! onshutdown ran; the poweroff status reaching the host as qemu's exit code through
//! isa-debug-exit. Four short boots beside it: the ACPI power button; a poweroff asked for by an
//! onboot container, which stops that container at once and keeps the earlier failure's status;
//! `baleen.onboot_failure=poweroff` ending the boot at the first failing onboot container; a
//! service ignoring SIGTERM killed after the grace, beside one restarted once by
//! `org.baleen.restart=on-failure` and one whose uid, gids, rlimits, ambient capabilities,
//! noNewPrivileges, oomScoreAdj and sysctl are read back from /proc, an orphan reaped by init,
//! loopback up, `createInRoot` links, cgroup CPU weight and max, resolv.conf's target made, and
//! /etc/sysctl.d applied.

mod harness;

use harness::{boot, hook, Modules, C};
use serde_json::json;
use std::time::Duration;

fn containers() -> Vec<C> {
    let shared = &["/run/baleen-test:/run/baleen-test"];
    vec![
        C::new(
            "onboot",
            "000-first",
            "echo first-ran; if touch /probe; then echo ro-BROKEN; else echo ro-refused; fi; \
             grep -q ' /dev tmpfs ro,nosuid' /proc/self/mounts && echo dev-ro-nosuid",
        ),
        C::new("onboot", "001-fail", "echo formatting; echo no disk found >&2; exit 3"),
        // Its root is nodev (no CAP_MKNOD), yet the node its linux.devices names works, as
        // under runc; before, writing it was EACCES.
        C {
            readonly: false,
            linux_extra: json!({"devices": [{"path": "/devs/listed-null", "type": "c",
                                             "major": 1, "minor": 3}]}),
            ..C::new(
                "onboot",
                "002-nocaps",
                "echo x > /written && echo rw-ok; mknod /n c 1 3 || echo mknod-refused; \
                 echo x > /devs/listed-null && echo listed-dev-ok",
            )
        },
        // A hostile image run with nothing granted (issue 20): its own `c 1:11` node, the
        // host's sysrq and core_pattern are all out of reach. Before, all three worked.
        C::new(
            "onboot",
            "004-hostile",
            "echo x > /hostile-kmsg && echo KMSG-OPENED || echo kmsg-refused; \
             echo h > /proc/sysrq-trigger && echo SYSRQ-WRITTEN || echo sysrq-refused; \
             echo '|/bin/false %p' > /proc/sys/kernel/core_pattern; \
             grep -q false /proc/sys/kernel/core_pattern && echo CORE-CHANGED || echo core-kept",
        ),
        // A 41-link chain (c0 -> … -> c40 -> /tmp) as a bind target, a device path and a
        // runtime mkdir: each start fails with ELOOP, and nothing appears in init's /tmp.
        C {
            binds: &["/etc/test-file:/c0/bindescape"],
            ..C::new("onboot", "005-chain-bind", "echo CHAIN-BIND-RAN")
        },
        C {
            linux_extra: json!({"devices": [{"path": "/c0/devescape", "type": "c",
                                             "major": 1, "minor": 3}]}),
            ..C::new("onboot", "006-chain-dev", "echo CHAIN-DEV-RAN")
        },
        C { mkdir: &["c0/mkdirescape"], ..C::new("onboot", "007-chain-mkdir", "echo CHAIN-MKDIR-RAN") },
        // LinuxKit's mount image: rootfsPropagation shared and an rshared bind carry a mount
        // made in the container out to init, where a later container finds it.
        C {
            caps: &["CAP_SYS_ADMIN"],
            binds: shared,
            mkdir: &["/run/baleen-test"],
            linux_extra: json!({"rootfsPropagation": "shared"}),
            ..C::new(
                "onboot",
                "003-mounter",
                "mkdir -p /run/baleen-test/shared && \
                 mount -t tmpfs shared /run/baleen-test/shared && \
                 echo carried-out > /run/baleen-test/shared/mark && echo mounter-ok",
            )
        },
        // A device cgroup (eBPF): LinuxKit's rule for a `devices:` entry (kmsg), runc's
        // defaults (mknod of anything), and nothing else: ttyS0 cannot be opened.
        // Also a hostile path: the image's `hostile -> /` symlink must keep the bind's mount
        // point inside the rootfs (its /tmp), not init's /tmp.
        C {
            readonly: false,
            caps: &["CAP_MKNOD"],
            binds: &["/etc/test-file:/hostile/tmp/escape"],
            resources: json!({"devices": [
                {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rwm"}
            ]}),
            ..C::new(
                "services",
                "devcg",
                "mknod /k c 1 11 && mknod /s c 4 64 && echo devcg-mknod-ok; \
                 echo devcg-kmsg > /k && echo devcg-allowed-ok; \
                 echo x > /s && echo devcg-BROKEN; cat /dev/null && echo devcg-null-ok; \
                 echo inside $(cat /tmp/escape)",
            )
        },
        C {
            bind_pid: "/run/baleen-test/files-pid",
            binds: &[
                "/etc/test-file:/etc/test-file",
                "/run/baleen-test:/run/baleen-test",
                "/containers/volumes/data/merged:/data",
            ],
            mkdir: &["/run/baleen-test"],
            resources: json!({"memory": {"limit": 67108864}, "pids": {"limit": 64}}),
            ..C::new(
                "services",
                "files",
                "cat /etc/test-file; cat /data/seed; echo w > /data/new && echo volume-rw-ok; \
                 echo shared-mount $(cat /run/baleen-test/shared/mark); \
                 echo cgroup $(cat /proc/self/cgroup) \
                   mem $(cat /sys/fs/cgroup/baleen/files/memory.max) \
                   pids $(cat /sys/fs/cgroup/baleen/files/pids.max); \
                 touch /run/baleen-test/files-ok; \
                 trap 'echo files-got-term; exit 0' TERM; while :; do sleep 1; done",
            )
        },
        C {
            net_new: true,
            caps: &["CAP_NET_ADMIN", "CAP_NET_RAW"],
            binds: shared,
            mkdir: &["/run/baleen-test"],
            interfaces: json!([{"name": "vc0", "peer": "vh0", "createInRoot": false}]),
            bind_net: "/run/netns/net",
            ..C::new(
                "services",
                "net",
                "ip addr add 10.9.0.2/24 dev vc0; ip link set vc0 up; i=0; \
                 while [ $i -lt 150 ]; do \
                   if ping -c1 -W1 10.9.0.1 >/dev/null 2>&1; then \
                     echo ping-ok; touch /run/baleen-test/ping-ok; break; fi; \
                   i=$((i+1)); sleep 0.2; done; \
                 trap 'exit 0' TERM; while :; do sleep 1; done",
            )
        },
        C {
            caps: &["CAP_NET_ADMIN"],
            ..C::new(
                "services",
                "nethost",
                "i=0; while ! ip link show vh0 >/dev/null 2>&1 && [ $i -lt 150 ]; do \
                   i=$((i+1)); sleep 0.2; done; \
                 ip addr add 10.9.0.1/24 dev vh0 && ip link set vh0 up && echo host-side-up; \
                 trap 'exit 0' TERM; while :; do sleep 1; done",
            )
        },
        // Born in the `files` service's pid namespace (joined by the path bindNS made), with
        // OCI hooks that print the state they read to init's console.
        C {
            pid_path: "/run/baleen-test/files-pid",
            hooks: Some(json!({
                "prestart": [hook("echo hook-prestart $(cat) >&2")],
                "createContainer": [hook("echo hook-createContainer $(cat) >&2")],
                // Run inside the container: its own /bin/sh.
                "startContainer": [{"path": "/bin/sh",
                                    "args": ["sh", "-c", "echo hook-startContainer $(cat) >&2"]}],
                "poststart": [hook("echo hook-poststart $(cat) >&2")],
                "poststop": [hook("echo hook-poststop $(cat) >&2; exit 4")]
            })),
            ..C::new(
                "services",
                "pidjoin",
                "grep -q files-got-term /proc/1/cmdline && echo pidns-joined-files",
            )
        },
        C {
            no_new_privs: true,
            seccomp: Some(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                              "errnoRet": 18}]
            })),
            // Masked and read-only paths, mounted on the pinned (/proc/self/fd) targets.
            linux_extra: json!({"maskedPaths": ["/proc/kcore", "/proc/acpi"],
                                "readonlyPaths": ["/proc/sys"]}),
            ..C::new(
                "services",
                "sec",
                "mkdir /tmp/x; echo kcore $(wc -c < /proc/kcore) acpi $(ls /proc/acpi | wc -l); \
                 grep -q ' /proc/sys proc ro,' /proc/self/mounts && echo proc-sys-ro; \
                 echo sec-done",
            )
        },
        C {
            userns: true,
            caps: &["CAP_CHOWN"],
            ..C::new(
                "services",
                "userns",
                "echo map $(cat /proc/self/uid_map); echo uid $(id -u); touch /dev/null && echo dev-ok",
            )
        },
        C {
            pid_host: true,
            // What `baleen-ctl exec` needs to join a container and set its identity.
            caps: &[
                "CAP_SYS_ADMIN",
                "CAP_SYS_CHROOT",
                "CAP_SYS_PTRACE",
                "CAP_SETUID",
                "CAP_SETGID",
                "CAP_SETPCAP",
            ],
            binds: &[
                "/run/baleen-test:/run/baleen-test",
                "/run/netns:/run/netns",
                "/run/baleen:/run/baleen",
                "/init:/usr/bin/baleen-ctl",
                "/tmp:/host-tmp",
            ],
            mkdir: &["/run/baleen-test", "/run/netns"],
            ..C::new(
                "services",
                "zz-poweroff",
                "i=0; while [ $i -lt 300 ]; do \
                   [ -e /run/baleen-test/ping-ok ] && [ -e /run/baleen-test/files-ok ] && break; \
                   i=$((i+1)); sleep 0.2; done; \
                 nsenter --net=/run/netns/net ip -o addr show vc0 | grep -q 10.9.0.2 \
                   && echo bindns-ok; \
                 baleen-ctl ps; baleen-ctl logs 001-fail; \
                 baleen-ctl logs fail | grep -q 'no disk found' && echo ctl-logs-yaml-name-ok; \
                 baleen-ctl ps | grep -q '^001-fail onboot - exited 3$' && echo ctl-ps-exit-ok; \
                 echo ctl-modes $(stat -c %a /run/baleen) $(stat -c %a /run/baleen/ctl.sock); \
                 baleen-ctl exec files sh -c 'cat /etc/test-file; \
                   grep -q files-got-term /proc/1/cmdline && echo ctl-exec-in-pidns; \
                   read -r _ _ _ _ _ sid _ < /proc/$$/stat; \
                   [ \"$sid\" = $$ ] && echo ctl-exec-own-session; \
                   grep -qx 0::/baleen/files /proc/self/cgroup && echo ctl-exec-in-cgroup; exit 7'; \
                 echo ctl-exec-status-$?; \
                 timeout 2 baleen-ctl logs -f files | sed 's/^/follow: /'; \
                 [ -e /host-tmp/escape ] && echo ESCAPED || echo no-escape; \
                 ls /host-tmp | grep escape && echo CHAIN-ESCAPED || echo no-chain-escape; \
                 baleen-ctl stop nethost; i=0; \
                 while baleen-ctl ps | grep -q '^nethost .*running' && [ $i -lt 150 ]; do \
                   i=$((i+1)); sleep 0.2; done; \
                 baleen-ctl start nethost | sed 's/^/ctl-/'; \
                 p=$(baleen-ctl ps | grep '^nethost ' | cut -d' ' -f3); \
                 baleen-ctl restart nethost | sed 's/^/ctl-/'; i=0; \
                 until baleen-ctl ps | grep '^nethost .* running' | grep -qv \" $p running\" \
                   || [ $i -ge 150 ]; do i=$((i+1)); sleep 0.2; done; \
                 echo powering-off; poweroff 2>/dev/null || kill -USR2 1",
            )
        },
        C::new("onshutdown", "000-marker", "echo onshutdown-marker-ok"),
    ]
}

#[test]
fn boots_linuxkit_bundles_and_powers_off_with_status() {
    // No modules.dep: dependencies come from each module's .modinfo.
    let modules = Modules {
        files: &["kernel/fs/overlayfs/overlay.ko.xz", "kernel/drivers/net/veth.ko.zst"],
        explicit: &["overlay", "veth"],
        depmod: false,
    };
    let cmdline = "baleen.debug=1 baleen.shutdown_grace=3";
    let Some(b) = boot("bundles", &containers(), &modules, &[], cmdline, None, |_| {}) else {
        return;
    };

    // Protocol lines and container output, in the order they must appear.
    let ordered = [
        "baleen: init started",
        "baleen: phase mounts done",
        "baleen: phase modules done",
        "init.d-ran",
        "baleen: onboot 000-first started pid ",
        "000-first: ro-refused",
        "000-first: dev-ro-nosuid",
        "baleen: onboot 000-first exited 0",
        "baleen: onboot 001-fail started pid ",
        "baleen: onboot 001-fail exited 3: no disk found",
        "baleen: onboot 002-nocaps started pid ",
        "002-nocaps: rw-ok",
        "002-nocaps: mknod-refused",
        "002-nocaps: listed-dev-ok",
        "baleen: onboot 002-nocaps exited 0",
        "004-hostile: kmsg-refused",
        "004-hostile: sysrq-refused",
        "004-hostile: core-kept",
        "baleen: onboot 004-hostile exited 0",
        "baleen: onboot 005-chain-bind exited 127: ",
        "baleen: onboot 006-chain-dev exited 127: ",
        "baleen: onboot 007-chain-mkdir exited 127: ",
        "baleen: phase onboot done",
        "baleen: service files started pid ",
        "baleen: service net started pid ",
        "baleen: service nethost started pid ",
        "baleen: service zz-poweroff started pid ",
        "baleen: phase services started",
        "zz-poweroff: stopping nethost (pid ",
        "baleen: service nethost exited 0",
        "zz-poweroff: powering-off",
        "baleen: shutdown begin",
        "baleen: onshutdown 000-marker started pid ",
        "000-marker: onshutdown-marker-ok",
        "baleen: onshutdown 000-marker exited 0",
        "shutdown.d-ran",
        "baleen: poweroff status 1",
    ];
    b.in_order(&ordered);
    // Order among concurrent services is free; these must just be there.
    b.contains(&[
        "files: hello from files",
        "files: volume seed",
        "files: volume-rw-ok",
        "files: shared-mount carried-out",
        "003-mounter: mounter-ok",
        "nethost: host-side-up",
        "net: ping-ok",
        "files: files-got-term",
        "baleen: service files exited 0",
        "files: cgroup 0::/baleen/files mem 67108864 pids 64",
        "zz-poweroff: bindns-ok",
        "zz-poweroff: files service ",
        "zz-poweroff: no disk found",
        "sec: sec-done",
        "sec: kcore 0 acpi 0",
        "sec: proc-sys-ro",
        "userns: map 0 100000 65536",
        "userns: uid 0",
        "userns: dev-ok",
        "baleen: service userns exited 0",
        "baleen: service sec exited 0",
        "devcg: devcg-mknod-ok",
        "devcg: devcg-allowed-ok",
        "devcg: devcg-null-ok",
        "devcg: inside hello from files",
        "zz-poweroff: no-escape",
        "zz-poweroff: ctl-logs-yaml-name-ok",
        "zz-poweroff: ctl-ps-exit-ok",
        "zz-poweroff: hello from files",
        "zz-poweroff: ctl-exec-in-pidns",
        "zz-poweroff: ctl-exec-in-cgroup",
        "zz-poweroff: ctl-exec-status-7",
        "zz-poweroff: ctl-exec-own-session",
        "zz-poweroff: ctl-modes 700 600",
        "zz-poweroff: follow: hello from files",
        "zz-poweroff: ctl-started nethost (pid ",
        "zz-poweroff: ctl-restarting nethost (pid ",
        "zz-poweroff: no-chain-escape",
        "pidjoin: pidns-joined-files",
        "baleen: service pidjoin exited 0",
    ]);
    // OCI hooks: the state JSON on stdin at each phase; a failing poststop is a warning.
    b.in_order(&[
        r#"hook-prestart {"ociVersion":"1.2.1","id":"pidjoin","status":"creating","pid":"#,
        "baleen: service pidjoin started pid ",
    ]);
    // The in-container ones print into the container's stderr, hence its log.
    b.in_order(&[
        r#"pidjoin: hook-createContainer {"ociVersion":"1.2.1","id":"pidjoin","status":"creating","pid":"#,
        r#"pidjoin: hook-startContainer {"ociVersion":"1.2.1","id":"pidjoin","status":"created","pid":"#,
    ]);
    b.contains(&[
        r#"hook-poststart {"ociVersion":"1.2.1","id":"pidjoin","status":"running","pid":"#,
        r#"hook-poststop {"ociVersion":"1.2.1","id":"pidjoin","status":"stopped","bundle":"/containers/services/pidjoin","annotations":{}}"#,
        "baleen: warning pidjoin: poststop hook /containers/onboot/000-first/rootfs/bin/busybox: exited with exit status: 4",
    ]);
    // The device cgroup refused opening ttyS0 (EPERM), which mknod was allowed to create.
    if !b
        .console
        .lines()
        .any(|l| l.contains("devcg: ") && l.contains("/s: Operation not permitted"))
        || b.console.contains("devcg-BROKEN")
    {
        b.fail("the device cgroup did not refuse /dev/ttyS0 with EPERM".into());
    }
    // The read-only root refused the write as such.
    b.contains(&["000-first: touch: /probe: Read-only file system"]);
    // The seccomp filter answered mkdir with the profile's errno (EXDEV), before the
    // read-only root could (EROFS).
    if !b.console.lines().any(|l| l.contains("sec: mkdir:") && l.contains("cross-device")) {
        b.fail("seccomp did not refuse mkdir with EXDEV".into());
    }
    // mknod failed for want of CAP_MKNOD, not because the root was read-only.
    if !b.console.lines().any(|l| l.contains("002-nocaps: mknod:") && l.contains("not permitted")) {
        b.fail("mknod was not refused with EPERM".into());
    }
    if b.console.contains("ro-BROKEN") || b.console.contains("baleen: warning module") {
        b.fail("a read-only root accepted a write, or a module failed to load".into());
    }
    // baleen-ctl start and restart ran nethost twice more.
    if b.console.matches("baleen: service nethost started pid ").count() != 3 {
        b.fail("nethost was not started again by `baleen-ctl start` and `restart`".into());
    }
    // Each chain start failed for the chain itself, naming the path.
    for (dir, path) in [
        ("005-chain-bind", "/c0/bindescape"),
        ("006-chain-dev", "/c0/devescape"),
        ("007-chain-mkdir", "c0/mkdirescape"),
    ] {
        let ok = b.console.lines().any(|l| {
            l.contains(&format!("onboot {dir} exited 127: "))
                && l.contains(path)
                && l.contains("(os error 40)")
        });
        if !ok {
            b.fail(format!("{dir} did not fail with ELOOP on {path}"));
        }
    }
    for broken in ["KMSG-OPENED", "SYSRQ-WRITTEN", "CORE-CHANGED", "CHAIN-", "sysrq: HELP"] {
        if b.console.contains(broken) {
            b.fail(format!("{broken:?}: a capability-less container reached the host"));
        }
    }
    if b.console.contains("ESCAPED") {
        b.fail(
            "a bind through the image's `hostile -> /` symlink created init's /tmp/escape".into(),
        );
    }
    // Status 1 on poweroff goes out through isa-debug-exit: qemu exits (1 << 1) | 1.
    b.exit_code(3);
    b.done();
}

/// The host's "power button" (qemu `system_powerdown`) reaches init through ACPI; with every
/// onboot container successful the status is 0 and init powers off with reboot(2): qemu 0.
#[test]
fn acpi_power_button_powers_off_cleanly() {
    let containers = vec![
        C::new("onboot", "000-first", "echo first-ran"),
        // No device rules, yet runc's default-deny program applies (the default now; before,
        // only with baleen.devices=strict) — the host's ttyS0, bound in, cannot be opened;
        // /dev/null can.
        C {
            binds: &["/dev:/hostdev"],
            ..C::new(
                "services",
                "idle",
                "echo host $(hostname); echo x > /hostdev/ttyS0 || echo strict-denied; \
                 cat /hostdev/null && echo strict-null-ok; \
                 trap 'echo idle-got-term; exit 0' TERM; while :; do sleep 1; done",
            )
        },
        C::new("onshutdown", "000-bye", "echo bye"),
    ];
    // Coldplug through modules.alias: virtio_pci for the NIC's PCI id, then virtio_net for the
    // virtio device it creates (a second pass), then the hostname from eth0's MAC.
    let modules = Modules {
        files: &[
            "kernel/drivers/acpi/button.ko",
            "kernel/drivers/virtio/virtio.ko",
            "kernel/drivers/virtio/virtio_ring.ko",
            "kernel/drivers/virtio/virtio_pci.ko",
            "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
            "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
            "kernel/drivers/net/virtio_net.ko",
            "kernel/drivers/net/net_failover.ko",
            "kernel/net/core/failover.ko",
        ],
        explicit: &[],
        depmod: true,
    };
    let nic =
        ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56"];
    let Some(b) = boot(
        "acpi",
        &containers,
        &modules,
        &nic,
        "baleen.debug=1",
        Some("idle: strict-null-ok"),
        |monitor| {
            // The human monitor drops input that arrives before its prompt.
            use std::io::{Read, Write};
            let mut s = std::os::unix::net::UnixStream::connect(monitor).expect("qemu monitor");
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 512];
            while !String::from_utf8_lossy(&seen).contains("(qemu)") {
                let n = s.read(&mut buf).expect("reading the monitor prompt");
                assert!(n > 0, "qemu monitor closed");
                seen.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"system_powerdown\n").unwrap();
            // The next prompt means the command ran; closing earlier can discard it.
            seen.clear();
            while !String::from_utf8_lossy(&seen).contains("(qemu)") {
                match s.read(&mut buf) {
                    Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
        },
    ) else {
        return;
    };
    b.in_order(&[
        "baleen: onboot 000-first exited 0",
        "baleen: phase services started",
        "idle: host linuxkit-525400123456",
        "idle: strict-denied",
        "idle: strict-null-ok",
        "baleen: shutdown requested: acpi power button (poweroff)",
        "baleen: shutdown begin",
        "idle: idle-got-term",
        "baleen: service idle exited 0",
        "000-bye: bye",
        "baleen: onshutdown 000-bye exited 0",
        "baleen: poweroff status 0",
    ]);
    b.exit_code(0);
    b.done();
}

/// `baleen.onboot_failure=poweroff`: the first failing onboot container ends the boot — the
/// next onboot container and the services never start, onshutdown still runs — and init
/// powers off with status 1 (qemu 3). The failure is one line with its stderr, not stdout.
#[test]
fn an_onboot_failure_under_the_poweroff_policy_ends_the_boot() {
    let containers = vec![
        C::new("onboot", "000-first", "echo first-ok"),
        C::new(
            "onboot",
            "001-fail",
            "echo formatting; echo mkfs: /dev/sdz: no such disk >&2; exit 3",
        ),
        C::new("onboot", "002-never", "echo never-ran"),
        C::new("services", "svc", "echo svc-ran; while :; do sleep 1; done"),
        C::new("onshutdown", "000-bye", "echo bye"),
    ];
    let modules = Modules { files: &[], explicit: &[], depmod: false };
    let Some(b) = boot(
        "policy",
        &containers,
        &modules,
        &[],
        "baleen.onboot_failure=poweroff baleen.debug=1",
        None,
        |_| {},
    ) else {
        return;
    };
    b.in_order(&[
        "baleen: onboot 000-first exited 0",
        "baleen: onboot 001-fail started pid ",
        "baleen: onboot 001-fail exited 3: mkfs: /dev/sdz: no such disk",
        "baleen: shutdown begin",
        "000-bye: bye",
        "baleen: onshutdown 000-bye exited 0",
        "baleen: poweroff status 1",
    ]);
    for never in ["002-never", "never-ran", "service svc", "svc-ran"] {
        if b.console.contains(never) {
            b.fail(format!("{never:?} appeared: the boot went on after the failure"));
        }
    }
    b.exit_code(3);
    b.done();
}

/// A service that ignores SIGTERM is killed (status 137) once `baleen.shutdown_grace` is
/// over; the polite one exits on TERM; onshutdown runs after both are gone. Beside them: a
/// restart, a process identity, an orphan reaped, lo up in init's and a new namespace,
/// runtime.json links made in and out of the root namespace, CPU limits, resolv.conf's target,
/// /etc/sysctl.d.
#[test]
fn a_service_ignoring_sigterm_is_killed_after_the_grace() {
    let containers = vec![
        C::new("onboot", "000-first", "echo first-ok"),
        C::new(
            "services",
            "polite",
            "trap 'echo polite-got-term; exit 0' TERM; echo polite-up; while :; do sleep 1; done",
        ),
        C::new(
            "services",
            "stubborn",
            "trap 'echo stubborn-ignores-term' TERM; echo stubborn-up; while :; do sleep 1; done",
        ),
        // Powers off once both have set their traps (they print after), read from init's logs.
        // Before that, from init's namespaces: the orphan left by `orphaner` was reaped (no
        // zombie), lo is up, the dummy links went into netcheck's namespace and not here, and
        // init made the target of the /etc/resolv.conf symlink and applied /etc/sysctl.d.
        C {
            pid_host: true,
            caps: &["CAP_NET_ADMIN"],
            binds: &["/var/log:/hostlog", "/tmp:/host-tmp", "/run:/hostrun"],
            ..C::new(
                "services",
                "zz-poweroff",
                "until grep -q stubborn-up /hostlog/stubborn.log && grep -q polite-up \
                 /hostlog/polite.log && grep -q flaky-second-run /hostlog/flaky.log && \
                 grep -q netcheck-done /hostlog/netcheck.log && [ -s /host-tmp/orphan ]; \
                 do sleep 1; done 2>/dev/null; \
                 p=$(cat /host-tmp/orphan); i=0; \
                 while [ -e /proc/$p ] && ! grep -q '^State:.*Z' /proc/$p/status && \
                   [ $i -lt 100 ]; do i=$((i+1)); sleep 0.2; done; sleep 1; \
                 if [ -e /proc/$p ]; then echo orphan-left $(grep State /proc/$p/status); \
                 else echo orphan-reaped; fi; \
                 ip -o link show lo | grep -q 'LOOPBACK,UP' && echo host-lo-up; \
                 ip link show dm0 >/dev/null 2>&1 || echo dm0-not-in-root; \
                 ip link show dm1 >/dev/null 2>&1 || echo dm1-not-in-root; \
                 [ -f /hostrun/resolvconf/resolv.conf ] && echo resolv-target-made; \
                 echo ttl $(cat /proc/sys/net/ipv4/ip_default_ttl); \
                 kill -USR2 1",
            )
        },
        // Its child's child outlives it: an orphan, reparented to init, which must reap it.
        C {
            pid_host: true,
            binds: &["/tmp:/host-tmp"],
            ..C::new(
                "services",
                "orphaner",
                "sh -c 'sleep 2 & echo $! > /host-tmp/orphan.new'; \
                 mv /host-tmp/orphan.new /host-tmp/orphan; echo orphaner-done",
            )
        },
        // A new network namespace: lo up (as runc does), two runtime.json links made by init,
        // one created in init's namespace and moved (createInRoot), one created in place; and
        // a CPU share and quota as cgroup v2 weight and max.
        C {
            net_new: true,
            caps: &["CAP_NET_RAW"],
            interfaces: json!([
                {"name": "dm0", "add": "dummy", "createInRoot": true},
                {"name": "dm1", "add": "dummy"}
            ]),
            resources: json!({"cpu": {"shares": 512, "quota": 50000, "period": 100000}}),
            ..C::new(
                "services",
                "netcheck",
                "ip -o link show lo | grep -q 'LOOPBACK,UP' && ping -c1 -W2 127.0.0.1 >/dev/null \
                   && echo netns-lo-up; \
                 ip -o link show dm0 >/dev/null && echo dm0-here; \
                 ip -o link show dm1 >/dev/null && echo dm1-here; \
                 echo cpu $(cat /sys/fs/cgroup/baleen/netcheck/cpu.weight) \
                   $(cat /sys/fs/cgroup/baleen/netcheck/cpu.max); echo netcheck-done",
            )
        },
        // The process identity config.json asks for, as the kernel reports it.
        C {
            net_new: true,
            process_extra: json!({
                "user": {"uid": 1000, "gid": 1000, "additionalGids": [27, 100]},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}],
                "oomScoreAdj": 500,
                "noNewPrivileges": true,
                "capabilities": {
                    "bounding": ["CAP_NET_BIND_SERVICE"], "effective": ["CAP_NET_BIND_SERVICE"],
                    "inheritable": ["CAP_NET_BIND_SERVICE"], "permitted": ["CAP_NET_BIND_SERVICE"],
                    "ambient": ["CAP_NET_BIND_SERVICE"]
                }
            }),
            linux_extra: json!({"sysctl": {"net.ipv4.ip_forward": "1"}}),
            ..C::new(
                "services",
                "identity",
                "grep -E '^(Uid|Gid|Groups|CapEff|CapAmb|NoNewPrivs):' /proc/self/status \
                 | tr -s '\\t ' ' '; grep 'open files' /proc/self/limits | tr -s ' '; \
                 echo oom $(cat /proc/self/oom_score_adj); \
                 echo fwd $(cat /proc/sys/net/ipv4/ip_forward)",
            )
        },
        // Fails once, is started again after the 1 s back-off (on-failure), then succeeds
        // and stays down.
        C {
            binds: &["/tmp:/host-tmp"],
            annotations: json!({"org.baleen.restart": "on-failure"}),
            ..C::new(
                "services",
                "flaky",
                "if [ -e /host-tmp/flaky ]; then echo flaky-second-run; exit 0; fi; \
                 touch /host-tmp/flaky; echo flaky-first-run; exit 1",
            )
        },
        C::new("onshutdown", "000-after", "echo after-services"),
    ];
    let modules =
        Modules { files: &["kernel/drivers/net/dummy.ko"], explicit: &["dummy"], depmod: false };
    let Some(b) = boot(
        "grace",
        &containers,
        &modules,
        &[],
        "baleen.shutdown_grace=2 baleen.debug=1",
        None,
        |_| {},
    ) else {
        return;
    };
    b.in_order(&[
        "baleen: shutdown begin",
        "baleen: service stubborn exited 137",
        "000-after: after-services",
    ]);
    b.contains(&[
        "polite: polite-got-term",
        "baleen: service polite exited 0",
        "stubborn: stubborn-ignores-term",
    ]);
    b.in_order(&["baleen: onshutdown 000-after exited 0", "baleen: poweroff status 0"]);
    b.in_order(&[
        "flaky: flaky-first-run",
        "baleen: service flaky exited 1",
        "baleen: service flaky restarting in 1 s (org.baleen.restart=on-failure)",
        "baleen: service flaky started pid ",
        "flaky: flaky-second-run",
        "baleen: service flaky exited 0",
    ]);
    if b.console.matches("service flaky restarting").count() != 1 {
        b.fail("flaky restarted after exiting 0 (on-failure)".into());
    }
    // CAP_NET_BIND_SERVICE is bit 10: effective and ambient hold it, and nothing else.
    b.contains(&[
        "identity: Uid: 1000 1000 1000 1000",
        "identity: Gid: 1000 1000 1000 1000",
        "identity: Groups: 27 100",
        "identity: CapEff: 0000000000000400",
        "identity: CapAmb: 0000000000000400",
        "identity: NoNewPrivs: 1",
        "identity: Max open files 256 512 files",
        "identity: oom 500",
        "identity: fwd 1",
    ]);
    // runc's shares→weight: 1 + (512 - 2) * 9999 / 262142 = 20.
    b.contains(&[
        "orphaner: orphaner-done",
        "zz-poweroff: orphan-reaped",
        "zz-poweroff: host-lo-up",
        "zz-poweroff: dm0-not-in-root",
        "zz-poweroff: dm1-not-in-root",
        "zz-poweroff: resolv-target-made",
        "zz-poweroff: ttl 42",
        "netcheck: netns-lo-up",
        "netcheck: dm0-here",
        "netcheck: dm1-here",
        "netcheck: cpu 20 50000 100000",
    ]);
    b.exit_code(0);
    b.done();
}

/// A poweroff requested while an onboot container runs (pkg/poweroff as the last onboot step:
/// `kill -USR2 1`, then a 30 s fallback) stops that container at once instead of waiting for
/// it, skips the rest of the boot, runs onshutdown, and keeps the status of the onboot step
/// that failed before (1: qemu 3). The stopped container is not a failure of its own. Before,
/// init waited out the 30 s and the fallback fired.
#[test]
fn a_shutdown_during_onboot_stops_the_step_and_keeps_the_status() {
    let containers = vec![
        // 000-first: the harness extracts the busybox image at this container's rootfs.
        C::new("onboot", "000-first", "echo broken-on-purpose >&2; exit 3"),
        C {
            pid_host: true,
            caps: &["CAP_KILL"],
            ..C::new(
                "onboot",
                "001-poweroff",
                "echo requesting; kill -USR2 1; sleep 30; echo FALLBACK-FIRED",
            )
        },
        C::new("onboot", "002-never", "echo never-ran"),
        C::new("services", "svc", "echo svc-ran; while :; do sleep 1; done"),
        C::new("onshutdown", "000-bye", "echo bye"),
    ];
    let modules = Modules { files: &[], explicit: &[], depmod: false };
    let Some(b) = boot("onboot-stop", &containers, &modules, &[], "baleen.debug=1", None, |_| {})
    else {
        return;
    };
    b.in_order(&[
        "baleen: onboot 000-first exited 3: broken-on-purpose",
        "baleen: onboot 001-poweroff started pid ",
        // (Its `requesting` line may reach the console before or after init's.)
        "baleen: shutdown requested: ",
        "baleen: stopping onboot 001-poweroff for the shutdown",
        "baleen: onboot 001-poweroff stopped 143",
        "baleen: shutdown begin",
        "baleen: onshutdown 000-bye exited 0",
        "baleen: poweroff status 1",
    ]);
    b.contains(&["001-poweroff: requesting"]);
    for never in ["FALLBACK-FIRED", "never-ran", "svc-ran", "001-poweroff exited"] {
        if b.console.contains(never) {
            b.fail(format!("{never:?} appeared: init waited for the onboot step or went on"));
        }
    }
    b.exit_code(3);
    b.done();
}
