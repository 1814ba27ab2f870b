//! Host-level power a container is granted, and whether the YAML or the image's
//! `org.mobyproject.config` label asked for it.
//!
//! LinuxKit lets an image label grant its own container host root (binds of `/`, all
//! capabilities, all devices, the host pid namespace, host-side `runtime` directories and mounts), and
//! that must keep working. [`grants`] reads what a rendered container gets; [`attribute`] tells
//! which of those grants the YAML alone would have given and which come only from the label, so
//! that `baleen build` can list them and `--privileges=deny-label` can refuse the label's.
//!
//! Non-goals: no judgement of ordinary capabilities or binds of other host paths; the list is
//! what gives host root in one step. Sysctls and masked paths are not grants: baleen-init
//! refuses host-wide sysctls ([`crate::sysctl`]) and adds containerd's masked paths to any
//! the bundle lists, so neither can loosen confinement.

use crate::check::ALL_CAPABILITIES;
use crate::oci::{RuntimeJson, Spec};
use std::fmt;

/// The host paths whose bind gives a container the host itself.
const HOST_PATHS: [&str; 4] = ["/", "/dev", "/proc", "/sys"];

/// Host directories whose bind, at any depth, gives host root in one step: `/containers` holds
/// every other container's config.json and root (rewrite a privileged one's), `/run/baleen`
/// baleen-init's control socket (`exec` into any container).
const HOST_TREES: [&str; 2] = ["/containers", "/run/baleen"];

/// Capabilities that are host root in one step on their own: loading a kernel module,
/// `open_by_handle_at` on any host file (the "shocker" escape), raw I/O ports and memory.
/// `CAP_SYS_PTRACE` is listed only with the host pid namespace, where it reaches init.
const ROOT_CAPABILITIES: [&str; 3] = ["CAP_SYS_MODULE", "CAP_DAC_READ_SEARCH", "CAP_SYS_RAWIO"];

/// One kind of host-level power.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grant {
    /// Every capability (`capabilities: [all]`, or all of them listed).
    AllCapabilities,
    /// `CAP_SYS_ADMIN` without all the others.
    SysAdmin,
    /// Another capability that is host root alone ([`ROOT_CAPABILITIES`]), or `CAP_SYS_PTRACE`
    /// with the host pid namespace; without all the others.
    Capability { name: String },
    /// A device-cgroup rule allowing every device (`kind` `a`), or every block (`b`) or
    /// character (`c`) device: `devices: [{path: all}]` or a `resources.devices` rule without
    /// major/minor.
    AllDevices { kind: String },
    /// A bind (or rbind) of the host's `/`, `/dev`, `/proc` or `/sys`.
    HostBind { source: String, destination: String },
    /// No pid namespace: the container sees and signals every host process. (The host
    /// network is not listed: it is LinuxKit's default for every container, `net: root`, so a
    /// label asking for it changes nothing.)
    HostPid,
    /// `runtime.mkdir` of an absolute path: a directory made in the host's root.
    HostMkdir { path: String },
    /// `runtime.mounts` at an absolute destination, or a `runtime.bindNS` path: a mount in the
    /// host's root.
    HostMount { destination: String },
    /// A `proc` or `sysfs` mount elsewhere than `/proc` and `/sys`: masked and read-only paths
    /// cover only those two, so `/p/sys/kernel/core_pattern` is writable by uid 0.
    KernelFs { kind: String, destination: String },
    /// An overlay's `upperdir=`/`workdir=` at an absolute host path: made and written there.
    HostOverlayDir { path: String },
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grant::AllCapabilities => f.write_str("all capabilities"),
            Grant::SysAdmin => f.write_str("CAP_SYS_ADMIN"),
            Grant::Capability { name } => f.write_str(name),
            Grant::AllDevices { kind } => match kind.as_str() {
                "b" => f.write_str("all block devices"),
                "c" => f.write_str("all character devices"),
                _ => f.write_str("all devices"),
            },
            Grant::HostBind { source, destination } => write!(f, "bind {source} at {destination}"),
            Grant::HostPid => f.write_str("host pid namespace"),
            Grant::HostMkdir { path } => write!(f, "host mkdir {path}"),
            Grant::HostMount { destination } => write!(f, "host mount {destination}"),
            Grant::KernelFs { kind, destination } => write!(f, "{kind} mounted at {destination}"),
            Grant::HostOverlayDir { path } => write!(f, "overlay directory {path} on the host"),
        }
    }
}

/// Who asked for a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// The YAML entry alone grants it.
    Yaml,
    /// Only the image's `org.mobyproject.config` label does.
    Label,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Yaml => "yaml",
            Origin::Label => "label",
        })
    }
}

/// A grant and who asked for it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Granted {
    pub grant: Grant,
    pub origin: Origin,
}

/// The host-level grants of a rendered container (config.json and runtime.json), sorted.
pub fn grants(spec: &Spec, runtime: &RuntimeJson) -> Vec<Grant> {
    let mut out = Vec::new();
    let host_pid =
        spec.linux.as_ref().is_some_and(|l| !l.namespaces.iter().any(|n| n.kind == "pid"));
    if let Some(caps) = spec.process.as_ref().and_then(|p| p.capabilities.as_ref()) {
        let has = |c: &str| caps.bounding.iter().any(|b| b == c);
        if ALL_CAPABILITIES.iter().all(|c| has(c)) {
            out.push(Grant::AllCapabilities);
        } else {
            if has("CAP_SYS_ADMIN") {
                out.push(Grant::SysAdmin);
            }
            let ptrace = host_pid.then_some("CAP_SYS_PTRACE");
            for name in ROOT_CAPABILITIES.into_iter().chain(ptrace).filter(|c| has(c)) {
                out.push(Grant::Capability { name: name.to_string() });
            }
        }
    }
    for m in spec.mounts.iter().chain(&runtime.mounts) {
        let kind = m.kind.as_str();
        let home = match kind {
            "proc" => "/proc",
            "sysfs" => "/sys",
            _ => "",
        };
        if !home.is_empty() && lexical_clean(&m.destination) != home {
            out.push(Grant::KernelFs { kind: kind.into(), destination: m.destination.clone() });
        }
        if kind == "overlay" {
            for o in &m.options {
                let dir = o.strip_prefix("upperdir=").or_else(|| o.strip_prefix("workdir="));
                if let Some(path) = dir.filter(|p| p.starts_with('/')) {
                    out.push(Grant::HostOverlayDir { path: path.to_string() });
                }
            }
        }
    }
    let b = &runtime.bind_ns;
    for path in [&b.cgroup, &b.ipc, &b.mnt, &b.net, &b.pid, &b.user, &b.uts] {
        if !path.is_empty() {
            out.push(Grant::HostMount { destination: path.clone() });
        }
    }
    // runtime.json's mounts are made from the root namespace too: `source: /` into the rootfs
    // is the same grant as a bind in config.json.
    out.extend(spec.mounts.iter().chain(&runtime.mounts).filter_map(host_bind));
    if let Some(linux) = &spec.linux {
        let rules = linux.resources.iter().flat_map(|r| &r.devices);
        for rule in rules.filter(|r| r.allow && r.major.is_none() && r.minor.is_none()) {
            let kind = if rule.kind.is_empty() { "a".to_string() } else { rule.kind.clone() };
            out.push(Grant::AllDevices { kind });
        }
        if !linux.namespaces.iter().any(|n| n.kind == "pid") {
            out.push(Grant::HostPid);
        }
    }
    for path in runtime.mkdir.iter().filter(|p| p.starts_with('/')) {
        out.push(Grant::HostMkdir { path: path.clone() });
    }
    for m in runtime.mounts.iter().filter(|m| m.destination.starts_with('/')) {
        out.push(Grant::HostMount { destination: m.destination.clone() });
    }
    out.sort();
    out.dedup();
    out
}

/// A bind (or rbind) of one of [`HOST_PATHS`].
fn host_bind(m: &crate::oci::Mount) -> Option<Grant> {
    let is_bind = m.kind == "bind" || m.options.iter().any(|o| o == "bind" || o == "rbind");
    let source = lexical_clean(&m.source);
    let under_tree = HOST_TREES.iter().any(|t| {
        source.strip_prefix(t).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    });
    (is_bind && (HOST_PATHS.contains(&source.as_str()) || under_tree))
        .then(|| Grant::HostBind { source, destination: m.destination.clone() })
}

/// Labels each of `merged` (the container rendered with its label) with its origin: `Yaml` when
/// `yaml_only` (the same entry rendered without the label) has it too, else `Label`.
pub fn attribute(merged: Vec<Grant>, yaml_only: &[Grant]) -> Vec<Granted> {
    merged
        .into_iter()
        .map(|grant| {
            let origin = if yaml_only.contains(&grant) { Origin::Yaml } else { Origin::Label };
            Granted { grant, origin }
        })
        .collect()
}

/// `path` with `.`, empty components and `..` resolved lexically (`/dev/../` → `/`), so that a
/// spelling cannot hide a bind of the root.
fn lexical_clean(path: &str) -> String {
    let parts = crate::lexical::clean_components(path);
    if !path.starts_with('/') {
        return parts.join("/");
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{config_to_oci, ImageDefaults};
    use crate::{parse_label, Config, IdMap, ImageConfig};

    /// The grants of a container whose YAML entry and label are these, with their origins.
    fn granted(yaml: &str, label: &str) -> Vec<(String, Origin)> {
        let yaml = parse_label("yaml", yaml).unwrap();
        let label: ImageConfig = parse_label("label", label).unwrap();
        let ids = IdMap::new(&Config::default());
        let render = |label: Option<&ImageConfig>| {
            let (spec, rt) =
                config_to_oci("c", &yaml, label, &ImageDefaults::default(), &ids).expect("renders");
            grants(&spec, &rt)
        };
        let yaml_only = render(None);
        attribute(render(Some(&label)), &yaml_only)
            .into_iter()
            .map(|g| (g.grant.to_string(), g.origin))
            .collect()
    }

    fn label_only(label: &str) -> Vec<String> {
        granted("{}", label).into_iter().map(|(g, o)| format!("{g} ({o})")).collect()
    }

    #[test]
    fn a_plain_container_has_no_grants() {
        assert_eq!(granted("{}", "{}"), []);
        assert_eq!(granted("{capabilities: [CAP_NET_ADMIN], binds: [/etc:/etc]}", "{}"), []);
    }

    #[test]
    fn each_kind_of_grant_from_a_label() {
        assert_eq!(label_only("{capabilities: [all]}"), ["all capabilities (label)"]);
        assert_eq!(label_only("{capabilities: [CAP_SYS_ADMIN]}"), ["CAP_SYS_ADMIN (label)"]);
        assert_eq!(
            label_only("{binds: [/:/hostroot, /dev:/dev, /proc:/hp, /sys:/hs:ro, /etc:/e]}"),
            [
                "bind / at /hostroot (label)",
                "bind /dev at /dev (label)",
                "bind /proc at /hp (label)",
                "bind /sys at /hs (label)",
            ]
        );
        assert_eq!(
            label_only(
                "{mounts: [{type: bind, source: /dev/.., destination: /r, options: [rbind]}]}"
            ),
            ["bind / at /r (label)"]
        );
        assert_eq!(label_only("{devices: [{path: all, type: a}]}"), ["all devices (label)"]);
        assert_eq!(label_only("{devices: [{path: all, type: b}]}"), ["all block devices (label)"]);
        assert_eq!(
            label_only("{resources: {devices: [{allow: true, type: a, access: rwm}]}}"),
            ["all devices (label)"]
        );
        assert_eq!(label_only("{pid: host}"), ["host pid namespace (label)"]);
        // Found by review: each of these is host root in one step too.
        assert_eq!(
            label_only("{capabilities: [CAP_SYS_MODULE, CAP_DAC_READ_SEARCH, CAP_SYS_RAWIO, CAP_SYS_PTRACE]}"),
            ["CAP_DAC_READ_SEARCH (label)", "CAP_SYS_MODULE (label)", "CAP_SYS_RAWIO (label)"]
        );
        assert_eq!(
            label_only("{pid: host, capabilities: [CAP_SYS_PTRACE]}"),
            ["CAP_SYS_PTRACE (label)", "host pid namespace (label)"]
        );
        assert_eq!(
            label_only("{mounts: [{type: proc, source: proc, destination: /p}, {type: sysfs, source: sysfs, destination: /s}]}"),
            ["proc mounted at /p (label)", "sysfs mounted at /s (label)"]
        );
        assert_eq!(
            label_only(
                "{binds: [/containers/services/x:/x, /run/baleen:/rb, /containersx:/y, /run:/run]}"
            ),
            ["bind /containers/services/x at /x (label)", "bind /run/baleen at /rb (label)"]
        );
        assert_eq!(
            label_only("{mounts: [{type: overlay, source: overlay, destination: /o, options: [lowerdir=/a, upperdir=/var/u, workdir=rel]}]}"),
            ["overlay directory /var/u on the host (label)"]
        );
        assert_eq!(
            label_only("{runtime: {bindNS: {net: /run/netns/x}}}"),
            ["host mount /run/netns/x (label)"]
        );
        assert_eq!(label_only("{net: host}"), Vec::<String>::new(), "the default anyway");
        assert_eq!(
            label_only("{runtime: {mkdir: [/var/lib/x, rel/dir], mounts: [{type: bind, source: /a, destination: /b}, {type: bind, source: /a, destination: rel}, {type: bind, source: /, destination: rel2}]}}"),
            ["bind / at rel2 (label)", "host mkdir /var/lib/x (label)", "host mount /b (label)"]
        );
    }

    #[test]
    fn explicit_yaml_makes_the_same_grant_a_yaml_one() {
        assert_eq!(
            granted("{capabilities: [all], pid: host}", "{capabilities: [all], pid: host}"),
            [
                ("all capabilities".into(), Origin::Yaml),
                ("host pid namespace".into(), Origin::Yaml)
            ]
        );
        // `binds.add` keeps the label's binds: the label's is still the label's.
        assert_eq!(
            granted("{binds.add: [/:/mine]}", "{binds: [/:/hostroot]}"),
            [
                ("bind / at /hostroot".into(), Origin::Label),
                ("bind / at /mine".into(), Origin::Yaml)
            ]
        );
        // `binds` replaces the label's list: nothing of the label is left.
        assert_eq!(granted("{binds: [/etc:/etc]}", "{binds: [/:/hostroot]}"), []);
        // The YAML asks for CAP_SYS_ADMIN; the label adds the rest.
        assert_eq!(
            granted(
                "{capabilities.add: [CAP_SYS_ADMIN]}",
                &format!("{{capabilities: [{}]}}", ALL_CAPABILITIES.join(", "))
            ),
            [("all capabilities".into(), Origin::Label)]
        );
    }

    #[test]
    fn spellings_of_the_root_are_the_root() {
        assert_eq!(lexical_clean("/"), "/");
        assert_eq!(lexical_clean("//./dev/"), "/dev");
        assert_eq!(lexical_clean("/dev/../.."), "/");
        assert_eq!(lexical_clean("/devx"), "/devx");
    }
}
