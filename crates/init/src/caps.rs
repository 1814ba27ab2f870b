//! Capability names (`CAP_NET_ADMIN`) → numbers, and the five sets of a container.

use crate::spec::Capabilities;
use crate::sys::CapSets;

/// Errors turning capability names into sets.
#[derive(Debug, thiserror::Error)]
pub enum CapError {
    #[error("unknown capability {name:?} in the {set} set")]
    Unknown { name: String, set: &'static str },
}

/// Every capability Linux 6.x knows, in number order (CAP_CHOWN = 0).
pub const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The number of a capability name, with or without the `CAP_` prefix, any case.
pub fn number(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    NAMES.iter().position(|n| *n == bare).map(|i| i as u32)
}

fn mask(names: &[String], set: &'static str) -> Result<u64, CapError> {
    names.iter().try_fold(0u64, |m, n| match number(n) {
        Some(i) => Ok(m | (1 << i)),
        None => Err(CapError::Unknown { name: n.clone(), set }),
    })
}

/// The sets for a container. No `capabilities` object at all means no capabilities, as in
/// LinuxKit's generated configs (§2.3: "all sets empty").
pub fn sets(caps: Option<&Capabilities>) -> Result<CapSets, CapError> {
    let Some(c) = caps else { return Ok(CapSets::default()) };
    Ok(CapSets {
        bounding: mask(&c.bounding, "bounding")?,
        effective: mask(&c.effective, "effective")?,
        permitted: mask(&c.permitted, "permitted")?,
        inheritable: mask(&c.inheritable, "inheritable")?,
        ambient: mask(&c.ambient, "ambient")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_the_kernel() {
        assert_eq!(number("CAP_CHOWN"), Some(0));
        assert_eq!(number("CAP_NET_ADMIN"), Some(12));
        assert_eq!(number("cap_sys_admin"), Some(21));
        assert_eq!(number("MKNOD"), Some(27));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("CAP_FLY"), None);
    }

    #[test]
    fn sets_are_built_per_set() {
        let c = Capabilities {
            bounding: vec!["CAP_NET_ADMIN".into(), "CAP_NET_RAW".into()],
            effective: vec!["CAP_NET_ADMIN".into()],
            permitted: vec!["CAP_NET_ADMIN".into(), "CAP_NET_RAW".into()],
            inheritable: vec![],
            ambient: vec!["CAP_NET_RAW".into()],
        };
        let s = sets(Some(&c)).unwrap();
        assert_eq!(s.bounding, (1 << 12) | (1 << 13));
        assert_eq!(s.effective, 1 << 12);
        assert_eq!(s.inheritable, 0);
        assert_eq!(s.ambient, 1 << 13);
        assert_eq!(sets(None).unwrap(), CapSets::default());
    }

    #[test]
    fn unknown_names_say_which_set() {
        let c = Capabilities { effective: vec!["CAP_FLY".into()], ..Default::default() };
        let e = sets(Some(&c)).unwrap_err().to_string();
        assert_eq!(e, "unknown capability \"CAP_FLY\" in the effective set");
    }
}
