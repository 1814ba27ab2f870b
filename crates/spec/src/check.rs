//! The rules LinuxKit applies after its schema (some only when it builds): capability names,
//! rlimits, bind/tmpfs syntax, mount types, file content sources, octal modes. Each is a small
//! pure function returning the message, so `load` can point at the node and `runtime` can reuse
//! the parsing.

/// Every capability `moby/sys/capability` v0.4.0 knows (41), in kernel number order: what `all`
/// expands to.
pub const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The rlimit names LinuxKit accepts (without the `RLIMIT_` prefix).
pub const RLIMIT_NAMES: [&str; 16] = [
    "CPU",
    "FSIZE",
    "DATA",
    "STACK",
    "CORE",
    "RSS",
    "NPROC",
    "NOFILE",
    "MEMLOCK",
    "AS",
    "LOCKS",
    "SIGPENDING",
    "MSGQUEUE",
    "NICE",
    "RTPRIO",
    "RTTIME",
];

/// Checks one entry of a capability list of length `len` (`all`/`none` are only special alone).
pub fn capability(name: &str, len: usize) -> Result<(), (String, Option<String>)> {
    if len == 1 && (name.eq_ignore_ascii_case("all") || name.eq_ignore_ascii_case("none")) {
        return Ok(());
    }
    if ALL_CAPABILITIES.contains(&name) {
        return Ok(());
    }
    let upper = name.to_ascii_uppercase();
    let guess = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
    let help = if ALL_CAPABILITIES.contains(&guess.as_str()) {
        Some(format!("did you mean `{guess}`?"))
    } else if name.eq_ignore_ascii_case("all") || name.eq_ignore_ascii_case("none") {
        Some(format!("`{name}` is only special as the single entry of the list"))
    } else {
        crate::diag::did_you_mean(name, ALL_CAPABILITIES)
    };
    Err((format!("unknown capability `{name}`"), help))
}

/// Expands a capability list: a single `all` is every capability, a single `none` is empty.
pub fn expand_capabilities(caps: &[String]) -> Vec<String> {
    if let [one] = caps {
        if one.eq_ignore_ascii_case("all") {
            return ALL_CAPABILITIES.iter().map(|s| s.to_string()).collect();
        }
        if one.eq_ignore_ascii_case("none") {
            return Vec::new();
        }
    }
    caps.to_vec()
}

/// A parsed `name,soft,hard` rlimit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rlimit {
    /// `RLIMIT_NOFILE` etc.
    pub kind: String,
    pub soft: u64,
    pub hard: u64,
}

/// Parses an rlimit string as LinuxKit does (§2.4).
pub fn rlimit(s: &str) -> Result<Rlimit, String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [name, soft, hard] = parts.as_slice() else {
        return Err(format!("rlimit `{s}` must be `name,soft,hard` (3 comma-separated parts)"));
    };
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("RLIMIT_").unwrap_or(&upper);
    if !RLIMIT_NAMES.contains(&bare) {
        return Err(format!("unknown rlimit `{name}` (one of {})", RLIMIT_NAMES.join(" ")));
    }
    let num = |v: &str| -> Result<u64, String> {
        if v.eq_ignore_ascii_case("unlimited") {
            return Ok(u64::MAX);
        }
        v.parse::<u64>().map_err(|_| format!("rlimit value `{v}` is not a number or `unlimited`"))
    };
    Ok(Rlimit { kind: format!("RLIMIT_{bare}"), soft: num(soft)?, hard: num(hard)? })
}

/// A parsed `src:dst[:opt,opt]` bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind<'a> {
    pub source: &'a str,
    pub destination: &'a str,
    pub options: Option<Vec<&'a str>>,
}

pub fn bind(s: &str) -> Result<Bind<'_>, String> {
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [src, dst] => Ok(Bind { source: src, destination: dst, options: None }),
        [src, dst, opts] => {
            Ok(Bind { source: src, destination: dst, options: Some(opts.split(',').collect()) })
        }
        _ => Err(format!("bind `{s}` must be `source:destination[:options]`")),
    }
}

/// A parsed `dst[:opt,opt]` tmpfs entry.
pub fn tmpfs(s: &str) -> Result<(&str, Option<Vec<&str>>), String> {
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [dst] => Ok((dst, None)),
        [dst, opts] => Ok((dst, Some(opts.split(',').collect()))),
        _ => Err(format!("tmpfs `{s}` must be `destination[:options]`")),
    }
}

/// The type LinuxKit infers for a mount without one (§2.2), or why it cannot.
pub fn mount_type(
    kind: Option<&str>,
    source: Option<&str>,
    dest: Option<&str>,
) -> Result<String, String> {
    if let Some(k) = kind.filter(|k| !k.is_empty()) {
        return Ok(k.to_string());
    }
    match source.unwrap_or("") {
        s @ ("mqueue" | "devpts" | "proc" | "sysfs" | "cgroup") => Ok(s.to_string()),
        _ if dest == Some("/dev") => Ok("tmpfs".to_string()),
        _ => Err(format!(
            "mount for destination `{}` is missing type (and its source does not name one of mqueue, devpts, proc, sysfs, cgroup)",
            dest.unwrap_or("")
        )),
    }
}

/// The destination LinuxKit gives a mount of `kind` that has none.
pub fn default_mount_destination(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "proc" => "/proc",
        "devpts" => "/dev/pts",
        "sysfs" => "/sys",
        "cgroup" => "/sys/fs/cgroup",
        "mqueue" => "/dev/mqueue",
        _ => return None,
    })
}

/// Octal mode text (`"0644"`, `"644"`, `"1777"`).
pub fn octal_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("mode `{s}` is not an octal permission (like \"0644\")"))
}

/// `^[a-z0-9_-]*$`
pub fn volume_name_ok(name: &str) -> bool {
    name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A container's `name` is one directory of the image (`containers/services/<name>`,
/// `containers/onboot/000-<name>`), so it must be exactly one path component: LinuxKit writes
/// `../../../etc` or `a/b` verbatim, which lands outside `containers/` (a deliberate fix, see
/// docs/compat.md). Control characters are refused too: the name is printed in messages.
pub fn container_name(name: &str) -> Result<(), String> {
    let problem = if name.is_empty() {
        "is empty"
    } else if name == "." || name == ".." {
        "is `.` or `..`"
    } else if name.contains('/') {
        "contains `/`"
    } else if name.chars().any(char::is_control) {
        "contains a control character"
    } else if name.chars().any(char::is_whitespace) {
        // `baleen-ctl` requests and answers (`ps`, `info`) are whitespace-separated words;
        // containerd's ids, which LinuxKit uses, allow no whitespace either.
        return Err(format!(
            "container name `{name}` contains whitespace: baleen-ctl names containers in \
             whitespace-separated words"
        ));
    } else {
        return Ok(());
    };
    Err(format!(
        "container name {problem}: it names the container's directory, so it must be one path \
         component"
    ))
}

/// A `files` entry's `path` must stay inside the image: no `..` component, whatever the
/// components before it (`etc/../x` included, which LinuxKit accepts; refusing every `..` is
/// simpler to check and to trust, and no LinuxKit example uses one).
pub fn file_path(path: &str) -> Result<(), String> {
    if path.split('/').any(|c| c == "..") {
        return Err(format!(
            "file path `{path}` has a `..` component; paths stay inside the image root"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities() {
        assert_eq!(ALL_CAPABILITIES.len(), 41);
        assert!(capability("CAP_NET_ADMIN", 2).is_ok());
        assert!(capability("all", 1).is_ok());
        assert!(capability("ALL", 1).is_ok());
        let (msg, help) = capability("all", 2).unwrap_err();
        assert!(msg.contains("unknown capability"));
        assert!(help.unwrap().contains("single entry"));
        assert_eq!(
            capability("net_admin", 1).unwrap_err().1.unwrap(),
            "did you mean `CAP_NET_ADMIN`?"
        );
        assert_eq!(expand_capabilities(&["none".into()]), Vec::<String>::new());
        assert_eq!(expand_capabilities(&["All".into()]).len(), 41);
    }

    #[test]
    fn rlimits() {
        assert_eq!(
            rlimit(" nofile , 1024, unlimited").unwrap(),
            Rlimit { kind: "RLIMIT_NOFILE".into(), soft: 1024, hard: u64::MAX }
        );
        assert_eq!(rlimit("RLIMIT_CORE,0,0").unwrap().kind, "RLIMIT_CORE");
        assert!(rlimit("nofile,1").is_err());
        assert!(rlimit("files,1,2").is_err());
        assert!(rlimit("nofile,x,2").is_err());
    }

    #[test]
    fn binds_and_tmpfs() {
        assert_eq!(bind("/a:/b").unwrap().options, None);
        assert_eq!(bind("/a:/b:ro,rshared").unwrap().options, Some(vec!["ro", "rshared"]));
        assert!(bind("/a").is_err());
        assert!(bind("/a:/b:c:d").is_err());
        assert_eq!(tmpfs("/t:size=1m").unwrap(), ("/t", Some(vec!["size=1m"])));
        assert!(tmpfs("/t:a:b").is_err());
    }

    /// The bug: a name with a space passed, and `baleen-ctl exec` split init's `info` answer
    /// on whitespace, so it could not exec into that container (or read a wrong field).
    #[test]
    fn container_names_with_whitespace_are_refused() {
        for bad in ["my svc", "nbsp\u{a0}x", " lead"] {
            let e = container_name(bad).unwrap_err();
            assert!(e.contains("contains whitespace"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn mounts_and_modes() {
        assert_eq!(mount_type(None, Some("proc"), None).unwrap(), "proc");
        assert_eq!(mount_type(None, None, Some("/dev")).unwrap(), "tmpfs");
        assert!(mount_type(None, Some("/x"), Some("/y")).is_err());
        assert_eq!(octal_mode("0644").unwrap(), 0o644);
        assert!(octal_mode("0999").is_err());
        assert!(volume_name_ok("a_b-1"));
        assert!(container_name("getty-1.2_x").is_ok());
        for bad in ["", ".", "..", "../../../etc", "a/b", "/", "a\x1b[2J"] {
            assert!(container_name(bad).is_err(), "{bad:?}");
        }
        assert!(file_path("etc/linuxkit-config").is_ok());
        assert!(file_path("/etc/./x..y/..z").is_ok());
        for bad in ["../../../../tmp/x", "/etc/../../../x2", "etc/..", ".."] {
            assert!(file_path(bad).is_err(), "{bad:?}");
        }
        assert!(!volume_name_ok("A"));
    }
}
