//! Which sysctls a container may set: runc's rule (libcontainer's validator). A sysctl is written
//! through `/proc/sys` by the container's still-privileged setup, so one that is not scoped to a
//! namespace the container owns changes the host: `kernel.core_pattern` alone is host root, and
//! `net.*` in the host network namespace (LinuxKit's default, `net: root`) rewires the host's
//! network. Allowed, as runc allows them:
//!
//! - `kernel.msgmax`, `msgmnb`, `msgmni`, `sem`, `shmall`, `shmmax`, `shmmni`,
//!   `shm_rmid_forced` and `fs.mqueue.*` with a new or joined IPC namespace;
//! - `kernel.hostname` and `kernel.domainname` with a UTS namespace;
//! - `net.*` with a network namespace other than the host's.
//!
//! This file has no dependencies: baleen-init enforces it when a container starts, and the
//! `baleen-spec` crate includes the same file (`#[path]`) to refuse such a YAML or label at build
//! time with its position, so the rule has one home.

/// The namespace a sysctl is scoped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Ipc,
    Uts,
    Net,
}

impl Scope {
    /// The namespace's kind as config.json names it.
    pub fn kind(self) -> &'static str {
        match self {
            Scope::Ipc => "ipc",
            Scope::Uts => "uts",
            Scope::Net => "network",
        }
    }
}

/// Why a sysctl is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Empty, or a component that is empty, `.` or `..`.
    BadName,
    /// Not scoped to any namespace: it would change the host.
    NotNamespaced,
    /// Scoped, but the container does not have its own namespace of that kind.
    HostNamespace(Scope),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::BadName => f.write_str("is not a sysctl name"),
            Refusal::NotNamespaced => {
                f.write_str("is not in a separate kernel namespace: setting it would change the host")
            }
            Refusal::HostNamespace(s) => write!(
                f,
                "is only allowed with a {} namespace of the container's own (the container shares the host's)",
                s.kind()
            ),
        }
    }
}

/// The components of a sysctl name, dotted (`net.ipv4.ip_forward`) or with slashes
/// (`net/ipv4/conf/eth0.1/forwarding`, where a component may hold dots).
fn components(key: &str) -> Result<Vec<&str>, Refusal> {
    let sep = if key.contains('/') { '/' } else { '.' };
    let parts: Vec<&str> = key.split(sep).collect();
    if parts.iter().any(|p| p.is_empty() || *p == "." || *p == ".." || p.contains('\0')) {
        return Err(Refusal::BadName);
    }
    Ok(parts)
}

/// The namespace `key` is scoped to.
pub fn scope(key: &str) -> Result<Scope, Refusal> {
    const IPC_KERNEL: [&str; 8] =
        ["msgmax", "msgmnb", "msgmni", "sem", "shmall", "shmmax", "shmmni", "shm_rmid_forced"];
    match components(key)?.as_slice() {
        ["net", ..] => Ok(Scope::Net),
        ["fs", "mqueue", ..] => Ok(Scope::Ipc),
        ["kernel", k] if IPC_KERNEL.contains(k) => Ok(Scope::Ipc),
        ["kernel", "hostname" | "domainname"] => Ok(Scope::Uts),
        _ => Err(Refusal::NotNamespaced),
    }
}

/// Whether a container may set `key`, given whether it has its own namespace of each kind
/// (`own(kind)`, with config.json's kinds `ipc`, `uts`, `network`).
pub fn check(key: &str, mut own: impl FnMut(&str) -> bool) -> Result<(), Refusal> {
    let s = scope(key)?;
    if own(s.kind()) {
        Ok(())
    } else {
        Err(Refusal::HostNamespace(s))
    }
}

/// The file under `/proc/sys` that sets `key` (checked by [`scope`] first).
pub fn proc_path(key: &str) -> String {
    if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_wide_sysctls_are_refused_whatever_the_namespaces() {
        for key in ["kernel.core_pattern", "kernel.modprobe", "vm.overcommit_memory", "kernel"] {
            assert_eq!(check(key, |_| true), Err(Refusal::NotNamespaced), "{key}");
        }
        // A slash spelling is no way around it.
        assert_eq!(check("kernel/core_pattern", |_| true), Err(Refusal::NotNamespaced));
        for key in ["", "net..x", "net/../kernel/core_pattern", "net/./x", "net/"] {
            assert_eq!(check(key, |_| true), Err(Refusal::BadName), "{key:?}");
        }
    }

    #[test]
    fn namespaced_sysctls_need_the_containers_own_namespace() {
        let only = |kind: &'static str| move |k: &str| k == kind;
        assert_eq!(check("net.ipv4.ip_forward", only("network")), Ok(()));
        assert_eq!(
            check("net.ipv4.ip_forward", only("ipc")),
            Err(Refusal::HostNamespace(Scope::Net))
        );
        assert_eq!(check("kernel.shmmax", only("ipc")), Ok(()));
        assert_eq!(check("fs.mqueue.msg_max", only("ipc")), Ok(()));
        assert_eq!(check("kernel.shmmax", only("uts")), Err(Refusal::HostNamespace(Scope::Ipc)));
        assert_eq!(check("kernel.hostname", only("uts")), Ok(()));
        assert_eq!(check("kernel.hostname", |_| false), Err(Refusal::HostNamespace(Scope::Uts)));
        // `kernel.sem` is scoped; `kernel.sem.x` is not a sysctl of the IPC namespace.
        assert_eq!(check("kernel.sem.x", |_| true), Err(Refusal::NotNamespaced));
    }

    #[test]
    fn the_proc_path_keeps_dots_inside_slash_components() {
        assert_eq!(proc_path("net.ipv4.ip_forward"), "net/ipv4/ip_forward");
        assert_eq!(proc_path("net/ipv4/conf/eth0.1/forwarding"), "net/ipv4/conf/eth0.1/forwarding");
        assert_eq!(scope("net/ipv4/conf/eth0.1/forwarding"), Ok(Scope::Net));
    }
}
