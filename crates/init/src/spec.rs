//! The bundle files LinuxKit writes (docs/init.md, "Containers"): `config.json` (the subset
//! of the OCI runtime spec that LinuxKit generates) and `runtime.json`. Unknown keys are
//! ignored, as runc ignores them; missing keys take the OCI defaults.
//!
//! Non-goals: `process.terminal`/consoleSize, apparmor/selinux labels, Windows/Solaris
//! sections, cgroup v1 parameters.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Errors reading a bundle.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("reading {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("parsing {path}")]
    Parse { path: PathBuf, source: serde_json::Error },
}

/// `config.json`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Config {
    pub process: Process,
    pub root: Root,
    pub hostname: Option<String>,
    pub mounts: Vec<Mount>,
    pub linux: Linux,
    pub hooks: Option<crate::hooks::Hooks>,
    /// From the YAML's or label's `annotations`; [`RESTART_ANNOTATION`] is init's.
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// The annotation a service sets to be restarted when it exits: `always`, `on-failure`, or
/// `no` (the default, LinuxKit's: a service that exits stays down).
pub const RESTART_ANNOTATION: &str = "org.baleen.restart";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Process {
    pub user: User,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub capabilities: Option<Capabilities>,
    pub rlimits: Vec<Rlimit>,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// The five capability sets, as names (`CAP_NET_ADMIN`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Capabilities {
    pub bounding: Vec<String>,
    pub effective: Vec<String>,
    pub inheritable: Vec<String>,
    pub permitted: Vec<String>,
    pub ambient: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub hard: u64,
    pub soft: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Root {
    pub path: String,
    pub readonly: bool,
}

impl Default for Root {
    fn default() -> Self {
        Root { path: "rootfs".into(), readonly: false }
    }
}

/// A mount entry (config.json `mounts` and runtime.json `mounts`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Mount {
    pub destination: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub source: Option<String>,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Linux {
    pub uid_mappings: Vec<IdMapping>,
    pub gid_mappings: Vec<IdMapping>,
    pub sysctl: BTreeMap<String, String>,
    pub resources: Resources,
    pub cgroups_path: Option<String>,
    pub namespaces: Vec<Namespace>,
    pub devices: Vec<Device>,
    pub rootfs_propagation: Option<String>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    pub seccomp: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IdMapping {
    #[serde(rename = "containerID")]
    pub container_id: u32,
    #[serde(rename = "hostID")]
    pub host_id: u32,
    pub size: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Resources {
    pub memory: Option<Memory>,
    pub cpu: Option<Cpu>,
    pub pids: Option<Pids>,
    /// The device cgroup rules ([`crate::devcg`]).
    pub devices: Vec<crate::devcg::DeviceRule>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Memory {
    pub limit: Option<i64>,
    pub reservation: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Cpu {
    pub shares: Option<u64>,
    pub quota: Option<i64>,
    pub period: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Pids {
    pub limit: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Device {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub major: u64,
    pub minor: u64,
    pub file_mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// `runtime.json`: what LinuxKit's init does in the root namespace around the container.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Runtime {
    pub cgroups: Vec<String>,
    pub mounts: Vec<Mount>,
    pub mkdir: Vec<String>,
    pub interfaces: Vec<Interface>,
    #[serde(rename = "bindNS")]
    pub bind_ns: BindNs,
    pub namespace: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct Interface {
    pub name: String,
    pub add: String,
    pub peer: String,
    pub create_in_root: bool,
}

/// Paths at which to bind-mount the container's namespaces (empty = don't).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BindNs {
    pub cgroup: String,
    pub ipc: String,
    pub mnt: String,
    pub net: String,
    pub pid: String,
    pub user: String,
    pub uts: String,
}

impl BindNs {
    /// `(namespace file name in /proc/PID/ns, path)` for the non-empty entries.
    pub fn entries(&self) -> Vec<(&'static str, &str)> {
        [
            ("cgroup", &self.cgroup),
            ("ipc", &self.ipc),
            ("mnt", &self.mnt),
            ("net", &self.net),
            ("pid", &self.pid),
            ("user", &self.user),
            ("uts", &self.uts),
        ]
        .into_iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(n, p)| (n, p.as_str()))
        .collect()
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, SpecError> {
    let bytes =
        std::fs::read(path).map_err(|source| SpecError::Read { path: path.into(), source })?;
    serde_json::from_slice(&bytes).map_err(|source| SpecError::Parse { path: path.into(), source })
}

/// Reads `<bundle>/config.json`.
pub fn load_config(bundle: &Path) -> Result<Config, SpecError> {
    read_json(&bundle.join("config.json"))
}

/// Reads `<bundle>/runtime.json`; a missing file is an empty runtime, as in LinuxKit.
pub fn load_runtime(bundle: &Path) -> Result<Runtime, SpecError> {
    let path = bundle.join("runtime.json");
    if !path.exists() {
        return Ok(Runtime::default());
    }
    read_json(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// config.json as LinuxKit writes it for `readonly: true`, `capabilities: [CAP_SYS_ADMIN]`,
    /// `net: host` (4-space Go indent, key order of runtime-spec structs).
    const LINUXKIT_CONFIG: &str = r#"{
    "ociVersion": "1.2.1",
    "process": {
        "user": {
            "uid": 0,
            "gid": 0
        },
        "args": [
            "/bin/sh", "-c", "echo hi"
        ],
        "env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        ],
        "cwd": "/",
        "capabilities": {
            "bounding": ["CAP_SYS_ADMIN"],
            "effective": ["CAP_SYS_ADMIN"],
            "inheritable": ["CAP_SYS_ADMIN"],
            "permitted": ["CAP_SYS_ADMIN"]
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512}],
        "noNewPrivileges": true
    },
    "root": {
        "path": "rootfs",
        "readonly": true
    },
    "mounts": [
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k", "ro"]
        }
    ],
    "linux": {
        "resources": {},
        "namespaces": [
            {"type": "pid"},
            {"type": "mount"}
        ],
        "maskedPaths": ["/proc/kcore"]
    }
}"#;

    #[test]
    fn parses_linuxkit_config() {
        let c: Config = serde_json::from_str(LINUXKIT_CONFIG).unwrap();
        assert_eq!(c.process.args, ["/bin/sh", "-c", "echo hi"]);
        assert!(c.root.readonly);
        assert_eq!(c.root.path, "rootfs");
        assert_eq!(c.process.capabilities.unwrap().bounding, ["CAP_SYS_ADMIN"]);
        assert_eq!(c.process.rlimits[0].soft, 512);
        assert!(c.process.no_new_privileges);
        assert_eq!(c.mounts[0].options.last().unwrap(), "ro");
        assert_eq!(c.linux.namespaces.len(), 2);
        assert_eq!(c.linux.masked_paths, ["/proc/kcore"]);
    }

    #[test]
    fn parses_linuxkit_runtime_with_all_keys() {
        let r: Runtime = serde_json::from_str(
            r#"{
    "cgroups": [],
    "mounts": [
        {"destination": "/containers/onboot/000-x/tmp", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/containers/onboot/000-x/tmp", "options": ["remount", "private"]}
    ],
    "mkdir": ["/var/lib/x"],
    "interfaces": [{"name": "veth0", "peer": "veth1", "createInRoot": false}],
    "bindNS": {"cgroup": "", "ipc": "", "mnt": "", "net": "/run/netns/x", "pid": "", "user": "", "uts": ""},
    "namespace": ""
}"#,
        )
        .unwrap();
        assert_eq!(r.mounts.len(), 2);
        assert_eq!(r.mounts[1].kind, None);
        assert_eq!(r.bind_ns.entries(), [("net", "/run/netns/x")]);
        assert_eq!(r.interfaces[0].peer, "veth1");
    }
}
