//! From an image entry to its OCI `config.json` and LinuxKit `runtime.json` (spec §2), as
//! LinuxKit's `ConfigToOCI` and `ImageBundle` do it.
//!
//! Precedence everywhere is YAML > `org.mobyproject.config` label > the image's own config
//! (which only supplies entrypoint+cmd, env and working dir). "Set" means present in the YAML,
//! so `env: []` wins over the label; for the plain strings (`cwd`, `net`, `hostname`…) an empty
//! string counts as unset.

use crate::check;
use crate::config::{self as cfg, ImageConfig};
use crate::ids::IdMap;
use crate::oci::*;
use std::collections::{BTreeMap, BTreeSet};

/// The runtime-spec version LinuxKit vendors.
pub const OCI_VERSION: &str = "1.2.1";

/// Whether containers get a cgroup namespace. The contract (spec §2.3) says LinuxKit adds none;
/// some LinuxKit versions append one after `mount`. One switch, should that change.
const CGROUP_NAMESPACE: bool = false;

/// What the image's own OCI config contributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDefaults {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `None` when the image config has no `Env` at all.
    pub env: Option<Vec<String>>,
    pub working_dir: String,
}

/// Why a config.json could not be generated; each names the container.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error("container `{name}`: unknown capability `{cap}`")]
    UnknownCapability { name: String, cap: String },
    #[error("container `{name}`: {message}")]
    Rlimit { name: String, message: String },
    #[error("container `{name}`: {message}")]
    Bind { name: String, message: String },
    #[error("container `{name}`: {message}")]
    Tmpfs { name: String, message: String },
    #[error("container `{name}`: {message}")]
    Mount { name: String, message: String },
    #[error("container `{name}`: device `{path}`: cannot parse mode `{mode}` as an octal value")]
    DeviceMode { name: String, path: String, mode: String },
    #[error("container `{name}`: {message}")]
    Id { name: String, message: String },
    #[error("container `{name}`: `{field}` = {value} is out of range")]
    Range { name: String, field: &'static str, value: i64 },
    #[error("container `{name}`: sysctl {key:?} {why}")]
    Sysctl { name: String, key: String, why: crate::sysctl::Refusal },
}

/// `yaml ‖ label` for an `Option`.
fn pick<'a, T>(yaml: &'a Option<T>, label: &'a Option<T>) -> Option<&'a T> {
    yaml.as_ref().or(label.as_ref())
}

/// `yaml ‖ label` for strings where empty means unset.
fn pick_str<'a>(yaml: &'a Option<String>, label: &'a Option<String>) -> Option<&'a str> {
    yaml.as_deref().filter(|s| !s.is_empty()).or(label.as_deref().filter(|s| !s.is_empty()))
}

/// LinuxKit's `mergeStrings`: label list + YAML `.add` list, concatenated without de-duplication
/// (its de-duplication map is never filled; spec §17 quirk, kept for identical output).
fn merge_add(label: &Option<Vec<String>>, add: &Option<Vec<String>>) -> Vec<String> {
    let mut v = label.clone().unwrap_or_default();
    v.extend(add.iter().flatten().cloned());
    v
}

/// Builds config.json's [`Spec`] and the YAML/label part of runtime.json (without the rootfs
/// mounts, which [`runtime_json`] prepends once the bundle layout is known).
pub fn config_to_oci(
    name: &str,
    yaml: &ImageConfig,
    label: Option<&ImageConfig>,
    image: &ImageDefaults,
    ids: &IdMap,
) -> Result<(Spec, RuntimeJson), RuntimeError> {
    let empty = ImageConfig::default();
    let label = label.unwrap_or(&empty);
    let n = || name.to_string();

    let inspect: Vec<String> = image.entrypoint.iter().chain(&image.cmd).cloned().collect();
    let args = pick(&yaml.command, &label.command).cloned().unwrap_or(inspect);
    let env =
        pick(&yaml.env, &label.env).cloned().or_else(|| image.env.clone()).unwrap_or_default();
    let cwd = pick_str(&yaml.cwd, &label.cwd)
        .or(Some(image.working_dir.as_str()).filter(|s| !s.is_empty()))
        .unwrap_or("/")
        .to_string();
    let readonly = yaml.readonly.or(label.readonly).unwrap_or(false);

    let mounts = mounts(name, yaml, label, readonly)?;
    let namespaces = namespaces(yaml, label);
    let sysctl = pick(&yaml.sysctl, &label.sysctl).cloned().unwrap_or_default();
    for key in sysctl.keys() {
        // A namespace joined by path is the container's own unless the path is init's (pid 1)
        // namespace, the host's; baleen-init checks the joined namespace itself at start.
        let own = |kind: &str| {
            namespaces.iter().any(|n| {
                n.kind == kind && !n.path.starts_with("/proc/1/") && n.path != "/proc/self/ns/net"
            })
        };
        crate::sysctl::check(key, own).map_err(|why| RuntimeError::Sysctl {
            name: n(),
            key: key.clone(),
            why,
        })?;
    }

    // Capabilities.
    let caps = match &yaml.capabilities {
        Some(c) => c.clone(),
        None => merge_add(&label.capabilities, &yaml.capabilities_add),
    };
    let caps = check::expand_capabilities(&caps);
    let ambient =
        check::expand_capabilities(pick(&yaml.ambient, &label.ambient).map_or(&[][..], |v| v));
    for c in caps.iter().chain(&ambient) {
        if !check::ALL_CAPABILITIES.contains(&c.as_str()) {
            return Err(RuntimeError::UnknownCapability { name: n(), cap: c.clone() });
        }
    }
    let bounding: Vec<String> =
        caps.iter().chain(&ambient).cloned().collect::<BTreeSet<_>>().into_iter().collect();

    let mut rlimits = Vec::new();
    for r in pick(&yaml.rlimits, &label.rlimits).into_iter().flatten() {
        let r = check::rlimit(r).map_err(|message| RuntimeError::Rlimit { name: n(), message })?;
        rlimits.push(Rlimit { kind: r.kind, hard: r.hard, soft: r.soft });
    }

    let id = |v: Option<&cfg::IdRef>| -> Result<u32, RuntimeError> {
        v.map_or(Ok(0), |v| ids.resolve(v))
            .map_err(|message| RuntimeError::Id { name: n(), message })
    };
    let uid = id(pick(&yaml.uid, &label.uid))?;
    let gid = id(pick(&yaml.gid, &label.gid))?;
    let additional_gids = pick(&yaml.additional_gids, &label.additional_gids)
        .into_iter()
        .flatten()
        .map(|g| id(Some(g)))
        .collect::<Result<Vec<_>, _>>()?;

    let mut resources = match pick(&yaml.resources, &label.resources) {
        Some(r) => convert_resources(name, r)?,
        None => Resources::default(),
    };
    let mut devices = Vec::new();
    for d in pick(&yaml.devices, &label.devices).into_iter().flatten() {
        let kind = d.kind.clone().unwrap_or_default();
        let path = d.path.clone().unwrap_or_default();
        if path == "all" {
            resources.devices.push(DeviceCgroup {
                allow: true,
                kind,
                access: "rwm".into(),
                ..Default::default()
            });
            continue;
        }
        let mode_text = d.mode.clone().unwrap_or_default();
        let mode = u32::from_str_radix(&mode_text, 8).map_err(|_| RuntimeError::DeviceMode {
            name: n(),
            path: path.clone(),
            mode: mode_text,
        })?;
        let (major, minor) = (d.major.unwrap_or(0), d.minor.unwrap_or(0));
        resources.devices.push(DeviceCgroup {
            allow: true,
            kind: kind.clone(),
            major: Some(major),
            minor: Some(minor),
            access: "rwm".into(),
        });
        devices.push(Device { path, kind, major, minor, file_mode: Some(mode) });
    }

    let spec = Spec {
        version: OCI_VERSION.into(),
        process: Some(Process {
            terminal: false,
            user: User { uid, gid, additional_gids },
            args,
            env,
            cwd,
            capabilities: Some(Capabilities {
                bounding: bounding.clone(),
                effective: caps,
                inheritable: bounding.clone(),
                permitted: bounding,
                ambient,
            }),
            rlimits,
            no_new_privileges: yaml.no_new_privileges.or(label.no_new_privileges).unwrap_or(false),
            oom_score_adj: yaml.oom_score_adj.or(label.oom_score_adj),
        }),
        root: Some(Root { path: "rootfs".into(), readonly }),
        hostname: pick_str(&yaml.hostname, &label.hostname).unwrap_or_default().to_string(),
        mounts,
        annotations: pick(&yaml.annotations, &label.annotations).cloned().unwrap_or_default(),
        linux: Some(Linux {
            uid_mappings: id_mappings(name, pick(&yaml.uid_mappings, &label.uid_mappings))?,
            gid_mappings: id_mappings(name, pick(&yaml.gid_mappings, &label.gid_mappings))?,
            sysctl,
            resources: Some(resources),
            cgroups_path: pick(&yaml.cgroups_path, &label.cgroups_path)
                .cloned()
                .unwrap_or_default(),
            namespaces,
            devices,
            rootfs_propagation: pick(&yaml.rootfs_propagation, &label.rootfs_propagation)
                .cloned()
                .unwrap_or_default(),
            masked_paths: pick(&yaml.masked_paths, &label.masked_paths)
                .cloned()
                .unwrap_or_default(),
            readonly_paths: pick(&yaml.readonly_paths, &label.readonly_paths)
                .cloned()
                .unwrap_or_default(),
        }),
    };
    Ok((spec, runtime(name, yaml, label)?))
}

/// Default mounts, then tmpfs, binds and mounts, later ones replacing earlier ones with the same
/// destination; sorted by destination (byte order), as LinuxKit does.
fn mounts(
    name: &str,
    yaml: &ImageConfig,
    label: &ImageConfig,
    readonly: bool,
) -> Result<Vec<Mount>, RuntimeError> {
    let n = || name.to_string();
    let strs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let ro = |mut v: Vec<String>| {
        if readonly {
            v.push("ro".into());
        }
        v
    };
    let mut map: BTreeMap<String, Mount> = BTreeMap::new();
    let mut put = |dest: &str, kind: &str, source: &str, options: Vec<String>| {
        let m = Mount {
            destination: dest.into(),
            kind: kind.into(),
            source: source.into(),
            options,
            ..Default::default()
        };
        map.insert(dest.to_string(), m);
    };
    put("/proc", "proc", "proc", strs(&["nosuid", "nodev", "noexec", "relatime"]));
    put("/dev", "tmpfs", "tmpfs", ro(strs(&["nosuid", "strictatime", "mode=755", "size=65536k"])));
    put(
        "/dev/pts",
        "devpts",
        "devpts",
        strs(&["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]),
    );
    put("/sys", "sysfs", "sysfs", ro(strs(&["nosuid", "noexec", "nodev"])));
    put(
        "/sys/fs/cgroup",
        "cgroup",
        "cgroup",
        strs(&["nosuid", "noexec", "nodev", "relatime", "ro"]),
    );

    for t in pick(&yaml.tmpfs, &label.tmpfs).into_iter().flatten() {
        let (dest, opts) =
            check::tmpfs(t).map_err(|message| RuntimeError::Tmpfs { name: n(), message })?;
        put(dest, "tmpfs", "tmpfs", opts.map(|o| strs(&o)).unwrap_or_default());
    }
    let binds = match &yaml.binds {
        Some(b) => b.clone(),
        None => merge_add(&label.binds, &yaml.binds_add),
    };
    for b in &binds {
        let bind = check::bind(b).map_err(|message| RuntimeError::Bind { name: n(), message })?;
        let opts = match bind.options {
            None => strs(&["rw", "rbind", "rshared"]),
            Some(o) => {
                let mut o = strs(&o);
                o.push("rbind".into());
                o
            }
        };
        put(bind.destination, "bind", &volume_source(bind.source), opts);
    }
    for m in pick(&yaml.mounts, &label.mounts).into_iter().flatten() {
        let dest = m.destination.clone().unwrap_or_default();
        let kind = check::mount_type(m.kind.as_deref(), m.source.as_deref(), Some(&dest))
            .map_err(|message| RuntimeError::Mount { name: n(), message })?;
        let source = m.source.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| kind.clone());
        let dest = if dest.is_empty() {
            check::default_mount_destination(&kind)
                .ok_or_else(|| RuntimeError::Mount {
                    name: n(),
                    message: format!("mount type `{kind}` is missing destination"),
                })?
                .to_string()
        } else {
            dest
        };
        let source = if kind == "bind" { volume_source(&source) } else { source };
        // LinuxKit rebuilds the mount from these four fields: id mappings are dropped.
        put(&dest, &kind, &source, m.options.clone().unwrap_or_default());
    }
    Ok(map.into_values().collect())
}

/// A bind source that is not a path names a volume (§1.4, checked when the config was loaded):
/// the container binds the volume's merged view, as LinuxKit rewrites it.
fn volume_source(source: &str) -> String {
    if source.starts_with('/') {
        source.to_string()
    } else {
        format!("/containers/volumes/{source}/merged")
    }
}

fn namespaces(yaml: &ImageConfig, label: &ImageConfig) -> Vec<Namespace> {
    let mut out = Vec::new();
    let mut ns = |kind: &str, value: &str, new_words: &[&str]| {
        if value == "host" || value == "root" {
            return;
        }
        let path = if new_words.contains(&value) { "" } else { value };
        out.push(Namespace { kind: kind.into(), path: path.into() });
    };
    ns("network", pick_str(&yaml.net, &label.net).unwrap_or("root"), &["new", "none"]);
    ns("ipc", pick_str(&yaml.ipc, &label.ipc).unwrap_or("root"), &["new"]);
    ns("uts", pick_str(&yaml.uts, &label.uts).unwrap_or("root"), &["new"]);
    // A new pid namespace unless asked otherwise.
    ns("pid", pick_str(&yaml.pid, &label.pid).unwrap_or(""), &["new", ""]);
    ns("user", pick_str(&yaml.userns, &label.userns).unwrap_or("root"), &["new"]);
    out.push(Namespace { kind: "mount".into(), path: String::new() });
    if CGROUP_NAMESPACE {
        out.push(Namespace { kind: "cgroup".into(), path: String::new() });
    }
    out
}

fn range<T: TryFrom<i64>>(name: &str, field: &'static str, v: i64) -> Result<T, RuntimeError> {
    T::try_from(v).map_err(|_| RuntimeError::Range { name: name.to_string(), field, value: v })
}

fn opt_range<T: TryFrom<i64>>(
    name: &str,
    field: &'static str,
    v: Option<i64>,
) -> Result<Option<T>, RuntimeError> {
    v.map(|v| range(name, field, v)).transpose()
}

fn id_mappings(
    name: &str,
    v: Option<&Vec<cfg::IdMapping>>,
) -> Result<Vec<IdMapping>, RuntimeError> {
    v.into_iter()
        .flatten()
        .map(|m| {
            Ok(IdMapping {
                container_id: range(name, "containerID", m.container_id.unwrap_or(0))?,
                host_id: range(name, "hostID", m.host_id.unwrap_or(0))?,
                size: range(name, "size", m.size.unwrap_or(0))?,
            })
        })
        .collect()
}

pub(crate) fn convert_resources(name: &str, r: &cfg::Resources) -> Result<Resources, RuntimeError> {
    let throttle = |v: &Option<Vec<cfg::ThrottleDevice>>,
                    field: &'static str|
     -> Result<Vec<ThrottleDevice>, RuntimeError> {
        v.iter()
            .flatten()
            .map(|t| {
                Ok(ThrottleDevice {
                    major: t.major.unwrap_or(0),
                    minor: t.minor.unwrap_or(0),
                    rate: range(name, field, t.rate.unwrap_or(0))?,
                })
            })
            .collect()
    };
    Ok(Resources {
        devices: r
            .devices
            .iter()
            .flatten()
            .map(|d| DeviceCgroup {
                allow: d.allow.unwrap_or(false),
                kind: d.kind.clone().unwrap_or_default(),
                major: d.major,
                minor: d.minor,
                access: d.access.clone().unwrap_or_default(),
            })
            .collect(),
        memory: r
            .memory
            .as_ref()
            .map(|m| -> Result<Memory, RuntimeError> {
                Ok(Memory {
                    limit: m.limit,
                    reservation: m.reservation,
                    swap: m.swap,
                    kernel: m.kernel,
                    kernel_tcp: m.kernel_tcp,
                    swappiness: opt_range(name, "swappiness", m.swappiness)?,
                    disable_oom_killer: m.disable_oom_killer,
                })
            })
            .transpose()?,
        cpu: r
            .cpu
            .as_ref()
            .map(|c| -> Result<Cpu, RuntimeError> {
                Ok(Cpu {
                    shares: opt_range(name, "shares", c.shares)?,
                    quota: c.quota,
                    period: opt_range(name, "period", c.period)?,
                    realtime_runtime: c.realtime_runtime,
                    realtime_period: opt_range(name, "realtimePeriod", c.realtime_period)?,
                    cpus: c.cpus.clone().unwrap_or_default(),
                    mems: c.mems.clone().unwrap_or_default(),
                })
            })
            .transpose()?,
        pids: r.pids.as_ref().map(|p| Pids { limit: p.limit.unwrap_or(0) }),
        block_io: r
            .block_io
            .as_ref()
            .map(|b| -> Result<BlockIo, RuntimeError> {
                Ok(BlockIo {
                    weight: opt_range(name, "weight", b.weight)?,
                    leaf_weight: opt_range(name, "leafWeight", b.leaf_weight)?,
                    weight_device: b
                        .weight_device
                        .iter()
                        .flatten()
                        .map(|w| {
                            Ok(WeightDevice {
                                major: w.major.unwrap_or(0),
                                minor: w.minor.unwrap_or(0),
                                weight: opt_range(name, "weight", w.weight)?,
                                leaf_weight: opt_range(name, "leafWeight", w.leaf_weight)?,
                            })
                        })
                        .collect::<Result<_, RuntimeError>>()?,
                    throttle_read_bps_device: throttle(&b.throttle_read_bps_device, "rate")?,
                    throttle_write_bps_device: throttle(&b.throttle_write_bps_device, "rate")?,
                    throttle_read_iops_device: throttle(&b.throttle_read_iops_device, "rate")?,
                    throttle_write_iops_device: throttle(&b.throttle_write_iops_device, "rate")?,
                })
            })
            .transpose()?,
        hugepage_limits: r
            .hugepage_limits
            .iter()
            .flatten()
            .map(|h| {
                Ok(HugepageLimit {
                    page_size: h.page_size.map(|p| p.to_string()).unwrap_or_default(),
                    limit: range(name, "limit", h.limit.unwrap_or(0))?,
                })
            })
            .collect::<Result<_, RuntimeError>>()?,
        network: r
            .network
            .as_ref()
            .map(|nw| -> Result<Network, RuntimeError> {
                Ok(Network {
                    class_id: opt_range(name, "classID", nw.class_id)?,
                    priorities: nw
                        .priorities
                        .iter()
                        .flatten()
                        .map(|p| {
                            Ok(InterfacePriority {
                                name: p.name.clone().unwrap_or_default(),
                                priority: range(name, "priority", p.priority.unwrap_or(0))?,
                            })
                        })
                        .collect::<Result<_, RuntimeError>>()?,
                })
            })
            .transpose()?,
    })
}

fn convert_mount(name: &str, m: &cfg::Mount) -> Result<Mount, RuntimeError> {
    Ok(Mount {
        destination: m.destination.clone().unwrap_or_default(),
        kind: m.kind.clone().unwrap_or_default(),
        source: m.source.clone().unwrap_or_default(),
        options: m.options.clone().unwrap_or_default(),
        uid_mappings: id_mappings(name, m.uid_mappings.as_ref())?,
        gid_mappings: id_mappings(name, m.gid_mappings.as_ref())?,
    })
}

/// `assignRuntime`: each sub-field from the YAML if set, else the label, else empty.
fn runtime(
    name: &str,
    yaml: &ImageConfig,
    label: &ImageConfig,
) -> Result<RuntimeJson, RuntimeError> {
    let none = cfg::Runtime::default();
    let y = yaml.runtime.as_ref().unwrap_or(&none);
    let l = label.runtime.as_ref().unwrap_or(&none);
    let no_ns = cfg::BindNs::default();
    let yb = y.bind_ns.as_ref().unwrap_or(&no_ns);
    let lb = l.bind_ns.as_ref().unwrap_or(&no_ns);
    let ns = |a: &Option<String>, b: &Option<String>| pick(a, b).cloned().unwrap_or_default();
    Ok(RuntimeJson {
        cgroups: pick(&y.cgroups, &l.cgroups).cloned().unwrap_or_default(),
        mounts: pick(&y.mounts, &l.mounts)
            .into_iter()
            .flatten()
            .map(|m| convert_mount(name, m))
            .collect::<Result<_, _>>()?,
        mkdir: pick(&y.mkdir, &l.mkdir).cloned().unwrap_or_default(),
        interfaces: pick(&y.interfaces, &l.interfaces)
            .into_iter()
            .flatten()
            .map(|i| RuntimeInterface {
                name: i.name.clone().unwrap_or_default(),
                add: i.add.clone().unwrap_or_default(),
                peer: i.peer.clone().unwrap_or_default(),
                create_in_root: i.create_in_root.unwrap_or(false),
            })
            .collect(),
        bind_ns: RuntimeBindNs {
            cgroup: ns(&yb.cgroup, &lb.cgroup),
            ipc: ns(&yb.ipc, &lb.ipc),
            mnt: ns(&yb.mnt, &lb.mnt),
            net: ns(&yb.net, &lb.net),
            pid: ns(&yb.pid, &lb.pid),
            user: ns(&yb.user, &lb.user),
            uts: ns(&yb.uts, &lb.uts),
        },
        namespace: pick(&y.namespace, &l.namespace).cloned().unwrap_or_default(),
    })
}

/// Prepends the container's root filesystem mounts to `rt.mounts` (§2.6). `prefix` is the bundle
/// directory (`containers/services/getty`), `root` where the image was unpacked (usually
/// `<prefix>/rootfs` when read-only, `<prefix>/lower` otherwise, or another bundle's copy).
pub fn runtime_json(mut rt: RuntimeJson, prefix: &str, root: &str, readonly: bool) -> RuntimeJson {
    let rootfs = format!("/{prefix}/rootfs");
    let head = if readonly {
        vec![Mount {
            destination: rootfs,
            source: format!("/{root}"),
            options: vec!["bind".into()],
            ..Default::default()
        }]
    } else {
        let tmp = format!("/{prefix}/tmp");
        vec![
            Mount {
                destination: tmp.clone(),
                kind: "tmpfs".into(),
                source: "tmpfs".into(),
                ..Default::default()
            },
            Mount {
                destination: tmp.clone(),
                options: vec!["remount".into(), "private".into()],
                ..Default::default()
            },
            Mount {
                destination: rootfs,
                kind: "overlay".into(),
                source: "overlay".into(),
                options: vec![
                    format!("lowerdir=/{root}"),
                    format!("upperdir={tmp}/upper"),
                    format!("workdir={tmp}/work"),
                ],
                ..Default::default()
            },
        ]
    };
    rt.mounts.splice(0..0, head);
    rt
}

/// Whether the container's root is read-only (YAML > label > false): decides the bundle layout.
pub fn is_readonly(yaml: &ImageConfig, label: Option<&ImageConfig>) -> bool {
    yaml.readonly.or(label.and_then(|l| l.readonly)).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen(yaml: &str) -> Result<(Spec, RuntimeJson), RuntimeError> {
        let cfg: ImageConfig = crate::parse_label("t", yaml).unwrap();
        config_to_oci("t", &cfg, None, &ImageDefaults::default(), &IdMap::default())
    }

    #[test]
    fn errors_name_the_container() {
        let mut c = ImageConfig { capabilities: Some(vec!["CAP_X".into()]), ..Default::default() };
        let e = config_to_oci("svc", &c, None, &ImageDefaults::default(), &IdMap::default())
            .unwrap_err();
        assert_eq!(e.to_string(), "container `svc`: unknown capability `CAP_X`");
        c.capabilities = None;
        c.uid = Some(cfg::IdRef::Name("nobody".into()));
        let e = config_to_oci("svc", &c, None, &ImageDefaults::default(), &IdMap::default())
            .unwrap_err();
        assert!(e.to_string().contains("cannot find id for `nobody`"), "{e}");
    }

    #[test]
    fn cwd_falls_back_to_root_and_empty_strings_are_unset() {
        let (spec, _) = gen("cwd: \"\"\nhostname: \"\"").unwrap();
        assert_eq!(spec.process.unwrap().cwd, "/");
        assert_eq!(spec.hostname, "");
    }

    #[test]
    fn an_explicit_empty_env_overrides_the_image() {
        let img = ImageDefaults { env: Some(vec!["PATH=/bin".into()]), ..Default::default() };
        let cfg = crate::parse_label("t", "env: []").unwrap();
        let (spec, _) = config_to_oci("t", &cfg, None, &img, &IdMap::default()).unwrap();
        assert!(spec.process.unwrap().env.is_empty());
        let (spec, _) =
            config_to_oci("t", &ImageConfig::default(), None, &img, &IdMap::default()).unwrap();
        assert_eq!(spec.process.unwrap().env, ["PATH=/bin"]);
    }
}
