//! What a container gets beyond what its bundle says, so that one granted nothing is confined at
//! least as runc and containerd confine it. LinuxKit's config.json carries no masked or
//! read-only paths, so under LinuxKit's runc a capability-less uid-0 process may write
//! `/proc/sysrq-trigger` or `/proc/sys/kernel/core_pattern` (checked against uid 0, not a
//! capability: host root). baleen-init closes that here, at start, leaving the bundle (and so
//! the image tree, equal to LinuxKit's) as it is:
//!
//! - [`paths`]: containerd's default masked and read-only paths, when the bundle lists none
//!   and the container is not granted `CAP_SYS_ADMIN` (which could unmount them again; pkg/
//!   sysctl, format and mount keep their view of `/proc`).
//! - [`root_nodev`]: the container's root mounted `nodev` unless it is granted `CAP_MKNOD`, so
//!   a device node shipped in an image is inert even where the device cgroup would allow it.
//! - [`sysctl_refused`]: runc's check that a sysctl belongs to the container's namespaces.
//! - The device cgroup's default deny lives in [`crate::devcg`].

use crate::spec::Config;
use crate::sys::CapSets;

/// `CAP_SYS_ADMIN` and `CAP_MKNOD` (linux/capability.h).
const CAP_SYS_ADMIN: u32 = 21;
const CAP_MKNOD: u32 = 27;

/// containerd's `defaultUnixSpec` masked paths.
pub const DEFAULT_MASKED: [&str; 10] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

/// containerd's `defaultUnixSpec` read-only paths.
pub const DEFAULT_READONLY: [&str; 5] =
    ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Whether the container may hold `cap`: in its bounding set (uid 0 gains the bounding set on
/// every execve), or permitted, effective or ambient.
fn granted(caps: &CapSets, cap: u32) -> bool {
    let any = caps.bounding | caps.permitted | caps.effective | caps.ambient;
    any & (1 << cap) != 0
}

/// The masked and read-only paths the container gets: the bundle's when it lists any, else
/// containerd's defaults unless it is granted `CAP_SYS_ADMIN`.
pub fn paths(cfg: &Config, caps: &CapSets) -> (Vec<String>, Vec<String>) {
    let l = &cfg.linux;
    if !l.masked_paths.is_empty() || !l.readonly_paths.is_empty() || granted(caps, CAP_SYS_ADMIN) {
        return (l.masked_paths.clone(), l.readonly_paths.clone());
    }
    let own = |v: &[&str]| v.iter().map(|p| (*p).to_owned()).collect();
    (own(&DEFAULT_MASKED), own(&DEFAULT_READONLY))
}

/// Why `key` may not be set for this container, as runc's validator says it: a sysctl is set
/// through init's /proc, so only a key that belongs to a namespace the container has apart
/// from init's (listed in config.json, new or joined) stays the container's; any other would
/// change the whole machine (`kernel.core_pattern`: host root).
pub fn sysctl_refused(cfg: &Config, key: &str) -> Option<&'static str> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let has = |kind: &str| cfg.linux.namespaces.iter().any(|n| n.kind == kind);
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        return (!has("ipc")).then_some("the container shares init's ipc namespace");
    }
    if key.starts_with("net.") {
        return (!has("network")).then_some("the container shares init's network namespace");
    }
    match key {
        "kernel.domainname" if has("uts") => None,
        "kernel.hostname" => Some("config.json's hostname sets it"),
        _ => Some("it belongs to no namespace of the container's own"),
    }
}

/// Whether the container's root is remounted `nodev`: unless it is granted `CAP_MKNOD`.
pub fn root_nodev(caps: &CapSets) -> bool {
    !granted(caps, CAP_MKNOD)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(linux: serde_json::Value) -> Config {
        serde_json::from_value(serde_json::json!({"process": {"args": ["x"]}, "linux": linux}))
            .unwrap()
    }

    #[test]
    fn defaults_only_without_sys_admin_and_without_the_bundles_own() {
        let none = CapSets::default();
        let (m, r) = paths(&cfg(serde_json::json!({})), &none);
        assert!(m.iter().any(|p| p == "/proc/kcore") && m.contains(&"/sys/firmware".into()));
        assert!(r.contains(&"/proc/sys".into()) && r.contains(&"/proc/sysrq-trigger".into()));
        // Granted CAP_SYS_ADMIN in any set, even the bounding set alone: today's view.
        let admin = CapSets { bounding: 1 << CAP_SYS_ADMIN, ..CapSets::default() };
        assert_eq!(paths(&cfg(serde_json::json!({})), &admin), (vec![], vec![]));
        // The bundle's own lists replace the defaults, whatever the capabilities.
        let own = cfg(serde_json::json!({"maskedPaths": ["/proc/kcore"]}));
        assert_eq!(paths(&own, &none), (vec!["/proc/kcore".into()], vec![]));
    }

    #[test]
    fn the_root_is_nodev_unless_mknod_is_granted() {
        assert!(root_nodev(&CapSets::default()));
        assert!(!root_nodev(&CapSets { permitted: 1 << CAP_MKNOD, ..CapSets::default() }));
        assert!(root_nodev(&CapSets { effective: 1 << CAP_SYS_ADMIN, ..CapSets::default() }));
    }
}
