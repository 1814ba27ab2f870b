//! What a container gets beyond what its bundle says, so that one granted nothing is confined at
//! least as runc and containerd confine it. LinuxKit's config.json carries no masked or
//! read-only paths, so under LinuxKit's runc a capability-less uid-0 process may write
//! `/proc/sysrq-trigger` or `/proc/sys/kernel/core_pattern` (checked against uid 0, not a
//! capability: host root). baleen-init closes that here, at start, leaving the bundle (and so
//! the image tree, equal to LinuxKit's) as it is:
//!
//! - [`paths`]: containerd's default masked and read-only paths, added to the bundle's own
//!   unless the container is granted `CAP_SYS_ADMIN` (which could unmount them again; pkg/
//!   sysctl, format and mount keep their view of `/proc`).
//! - Sysctls: only those scoped to a namespace the container owns ([`crate::sysctl`]).
//! - [`root_nodev`]: the container's root mounted `nodev` unless it is granted `CAP_MKNOD`, so
//!   a device node shipped in an image is inert even where the device cgroup would allow it.
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

/// The masked and read-only paths the container gets: the bundle's, and containerd's defaults
/// besides unless it is granted `CAP_SYS_ADMIN`. The bundle's lists add to the defaults and never
/// replace them: they can come from an image's label, and a label listing only `/proc/kcore`
/// must not leave `/proc/sys` writable.
pub fn paths(cfg: &Config, caps: &CapSets) -> (Vec<String>, Vec<String>) {
    let l = &cfg.linux;
    if granted(caps, CAP_SYS_ADMIN) {
        return (l.masked_paths.clone(), l.readonly_paths.clone());
    }
    let with_defaults = |own: &[String], defaults: &[&str]| {
        let mut v = own.to_vec();
        v.extend(defaults.iter().filter(|d| !own.iter().any(|p| p == *d)).map(|d| d.to_string()));
        v
    };
    (
        with_defaults(&l.masked_paths, &DEFAULT_MASKED),
        with_defaults(&l.readonly_paths, &DEFAULT_READONLY),
    )
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
    fn defaults_are_added_unless_sys_admin_is_granted() {
        let none = CapSets::default();
        let (m, r) = paths(&cfg(serde_json::json!({})), &none);
        assert!(m.iter().any(|p| p == "/proc/kcore") && m.contains(&"/sys/firmware".into()));
        assert!(r.contains(&"/proc/sys".into()) && r.contains(&"/proc/sysrq-trigger".into()));
        // Granted CAP_SYS_ADMIN in any set, even the bounding set alone: today's view.
        let admin = CapSets { bounding: 1 << CAP_SYS_ADMIN, ..CapSets::default() };
        assert_eq!(paths(&cfg(serde_json::json!({})), &admin), (vec![], vec![]));
        // The bundle's own lists add to the defaults: a label listing only /proc/kcore once
        // left /proc/sys writable (core_pattern, host root).
        let own = cfg(serde_json::json!({"maskedPaths": ["/proc/kcore", "/proc/x"]}));
        let (m, r) = paths(&own, &none);
        assert_eq!(m.iter().filter(|p| *p == "/proc/kcore").count(), 1);
        assert!(m.contains(&"/proc/x".into()) && m.contains(&"/sys/firmware".into()));
        assert!(r.contains(&"/proc/sys".into()) && r.contains(&"/proc/sysrq-trigger".into()));
        // With CAP_SYS_ADMIN, the bundle's own lists alone.
        assert_eq!(paths(&own, &admin).0, vec!["/proc/kcore".to_string(), "/proc/x".into()]);
    }

    #[test]
    fn the_root_is_nodev_unless_mknod_is_granted() {
        assert!(root_nodev(&CapSets::default()));
        assert!(!root_nodev(&CapSets { permitted: 1 << CAP_MKNOD, ..CapSets::default() }));
        assert!(root_nodev(&CapSets { effective: 1 << CAP_SYS_ADMIN, ..CapSets::default() }));
    }
}
