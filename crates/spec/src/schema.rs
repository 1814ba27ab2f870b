//! LinuxKit's schema (spec §1.2–1.5), as code: one function per object, each listing the keys
//! valid at its level (for unknown-key errors and suggestions) and reading each key with its
//! JSON-schema type. The per-file rules of `NewConfig` (unique service and volume names, parsable
//! references) and the build-time rules that need only one entry (capabilities, binds, rlimits,
//! file sources…) are checked here too, while the node positions are at hand.

use crate::check;
use crate::config::*;
use crate::decode::{index_path, key_path, Decoder};
use crate::node::{Node, Pos};
use crate::reference;
use std::collections::HashMap;

const TOP_KEYS: &[&str] =
    &["kernel", "init", "onboot", "onshutdown", "services", "files", "volumes", "trust"];
const KERNEL_KEYS: &[&str] = &["image", "cmdline", "binary", "tar", "ucode"];
const TRUST_KEYS: &[&str] = &["image", "org"];
/// Image entry keys after `name` and `image`; the label may use exactly these.
pub(crate) const IMAGE_CONFIG_KEYS: &[&str] = &[
    "capabilities",
    "capabilities.add",
    "ambient",
    "mounts",
    "binds",
    "binds.add",
    "devices",
    "tmpfs",
    "command",
    "env",
    "cwd",
    "net",
    "pid",
    "ipc",
    "uts",
    "userns",
    "readonly",
    "maskedPaths",
    "readonlyPaths",
    "uid",
    "gid",
    "additionalGids",
    "noNewPrivileges",
    "hostname",
    "oomScoreAdj",
    "rootfsPropagation",
    "cgroupsPath",
    "resources",
    "sysctl",
    "rlimits",
    "uidMappings",
    "gidMappings",
    "annotations",
    "runtime",
];
const MOUNT_KEYS: &[&str] =
    &["destination", "type", "source", "options", "uidmappings", "gidmappings"];
const IDMAP_KEYS: &[&str] = &["hostID", "containerID", "size"];
const DEVICE_KEYS: &[&str] = &["path", "type", "major", "minor", "mode"];
const RESOURCES_KEYS: &[&str] =
    &["devices", "memory", "cpu", "pids", "blockio", "hugepageLimits", "network"];
const DEVCG_KEYS: &[&str] = &["allow", "type", "major", "minor", "access"];
const MEMORY_KEYS: &[&str] =
    &["limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness", "disableOOMKiller"];
const CPU_KEYS: &[&str] =
    &["shares", "quota", "period", "realtimeRuntime", "realtimePeriod", "cpus", "mems"];
const BLOCKIO_KEYS: &[&str] = &[
    "weight",
    "leafWeight",
    "weightDevice",
    "throttleReadBpsDevice",
    "throttleWriteBpsDevice",
    "throttleReadIOPSDevice",
    "throttleWriteIOPSDevice",
];
const RUNTIME_KEYS: &[&str] = &["cgroups", "mounts", "mkdir", "interfaces", "bindNS", "namespace"];
const INTERFACE_KEYS: &[&str] = &["name", "add", "peer", "createInRoot"];
const BINDNS_KEYS: &[&str] = &["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"];
const FILE_KEYS: &[&str] = &[
    "path",
    "directory",
    "symlink",
    "contents",
    "source",
    "metadata",
    "optional",
    "mode",
    "uid",
    "gid",
];
const VOLUME_KEYS: &[&str] = &["name", "image", "readonly", "format", "platforms"];

/// Where in a config `key` is a valid key, for the hint on an unknown key.
pub(crate) fn homes_of(key: &str) -> Vec<&'static str> {
    let places: [(&[&str], &'static str); 8] = [
        (TOP_KEYS, "the top level"),
        (KERNEL_KEYS, "`kernel`"),
        (&["name", "image"], "an onboot/onshutdown/services entry"),
        (IMAGE_CONFIG_KEYS, "an onboot/onshutdown/services entry"),
        (FILE_KEYS, "a `files` entry"),
        (VOLUME_KEYS, "a `volumes` entry"),
        (MOUNT_KEYS, "a mount"),
        (RUNTIME_KEYS, "`runtime`"),
    ];
    let mut out: Vec<&'static str> = Vec::new();
    for (keys, place) in places {
        if keys.contains(&key) && !out.contains(&place) {
            out.push(place);
        }
    }
    out
}

/// Reads `key` of `f` with `read` when present.
macro_rules! opt {
    ($d:expr, $f:expr, $path:expr, $key:expr, $read:ident) => {
        $f.get($key).and_then(|n| $d.$read(n, &key_path($path, $key)))
    };
}

/// Reads an optional key with a decoding function of this module.
macro_rules! opt_fn {
    ($d:expr, $f:expr, $path:expr, $key:expr, $read:expr) => {
        $f.get($key).and_then(|n| $read($d, n, &key_path($path, $key)))
    };
}

/// Decodes a whole document. `None` only when the root is not a mapping.
pub(crate) fn config(d: &mut Decoder, root: &Node) -> Config {
    let mut cfg = Config::default();
    let Some(f) = d.fields(root, "", TOP_KEYS) else { return cfg };
    cfg.kernel = opt_fn!(d, f, "", "kernel", kernel);
    if let Some(n) = f.get("init") {
        cfg.init = d
            .list(n, "init", |d, n, p| {
                let s = d.string(n, p)?;
                image_ref(d, n.pos, p, &s);
                Some(s)
            })
            .unwrap_or_default();
    }
    let mut uses = Vec::new();
    for section in ["onboot", "onshutdown", "services"] {
        let Some(n) = f.get(section) else { continue };
        let images = d.list(n, section, |d, n, p| image(d, n, p, &mut uses)).unwrap_or_default();
        match section {
            "onboot" => cfg.onboot = images,
            "onshutdown" => cfg.onshutdown = images,
            _ => cfg.services = images,
        }
    }
    // LinuxKit checks only service names for uniqueness (onboot may repeat) [verified].
    let mut seen: HashMap<&str, &Image> = HashMap::new();
    for img in &cfg.services {
        if let Some(first) = seen.get(img.name.as_str()) {
            let msg = format!(
                "duplicate service name `{}` (first at line {})",
                img.name, first.origin.line
            );
            let o = &img.origin;
            d.error(Pos { line: o.line, col: o.col, width: o.width }, &o.path, msg);
        } else {
            seen.insert(&img.name, img);
        }
    }
    if let Some(n) = f.get("files") {
        cfg.files = d.list(n, "files", |d, n, p| file(d, n, p, &mut uses)).unwrap_or_default();
    }
    if let Some(n) = f.get("volumes") {
        cfg.volumes = d.list(n, "volumes", volume).unwrap_or_default();
        let mut names: HashMap<&str, &Volume> = HashMap::new();
        for v in &cfg.volumes {
            if let Some(first) = names.get(v.name.as_str()) {
                let msg = format!(
                    "duplicate volume name `{}` (first at line {})",
                    v.name, first.origin.line
                );
                let o = &v.origin;
                d.error(Pos { line: o.line, col: o.col, width: o.width }, &o.path, msg);
            } else {
                names.insert(&v.name, v);
            }
        }
    }
    cfg.trust = opt_fn!(d, f, "", "trust", trust);
    cfg.uses = uses;
    cfg
}

fn image_ref(d: &mut Decoder, pos: Pos, path: &str, s: &str) {
    if let Err(e) = reference::parse(s) {
        let help = s.starts_with("@pkg:").then(|| {
            "`@pkg:` templates are expanded only in files read from disk, with `baleen pkg` available".to_string()
        });
        d.error_help(pos, path, e.to_string(), help);
    }
}

fn kernel(d: &mut Decoder, n: &Node, path: &str) -> Option<Kernel> {
    let f = d.fields(n, path, KERNEL_KEYS)?;
    let k = Kernel {
        image: opt!(d, f, path, "image", string),
        cmdline: opt!(d, f, path, "cmdline", string),
        binary: opt!(d, f, path, "binary", string),
        tar: opt!(d, f, path, "tar", string),
        ucode: opt!(d, f, path, "ucode", string),
    };
    if let (Some(img), Some(node)) = (&k.image, f.get("image")) {
        if !img.is_empty() {
            image_ref(d, node.pos, &key_path(path, "image"), img);
        }
    }
    Some(k)
}

fn trust(d: &mut Decoder, n: &Node, path: &str) -> Option<Trust> {
    let f = d.fields(n, path, TRUST_KEYS)?;
    Some(Trust { image: opt!(d, f, path, "image", strings), org: opt!(d, f, path, "org", strings) })
}

fn image(d: &mut Decoder, n: &Node, path: &str, uses: &mut Vec<NameUse>) -> Option<Image> {
    let mut keys: Vec<&str> = vec!["name", "image"];
    keys.extend_from_slice(IMAGE_CONFIG_KEYS);
    let f = d.fields(n, path, &keys)?;
    let name_node = d.required(&f, path, "name");
    let image_node = d.required(&f, path, "image");
    let name = name_node.and_then(|n| d.string(n, &key_path(path, "name")));
    if let (Some(name), Some(node)) = (&name, name_node) {
        if let Err(msg) = check::container_name(name) {
            d.error(node.pos, &key_path(path, "name"), msg);
        }
    }
    let image = image_node.and_then(|n| d.string(n, &key_path(path, "image")));
    if let (Some(img), Some(node)) = (&image, image_node) {
        image_ref(d, node.pos, &key_path(path, "image"), img);
    }
    let config = image_config_fields(d, &f, path, uses);
    let pos = name_node.map_or(n.pos, |n| n.pos);
    Some(Image {
        name: name?,
        image: image?,
        config,
        origin: d.origin(pos, &key_path(path, "name")),
    })
}

/// Decodes an `org.mobyproject.config` label document: the image keys without `name`/`image`.
pub(crate) fn label(d: &mut Decoder, n: &Node) -> Option<ImageConfig> {
    let f = d.fields(n, "", IMAGE_CONFIG_KEYS)?;
    let mut uses = Vec::new();
    Some(image_config_fields(d, &f, "", &mut uses))
}

fn image_config_fields(
    d: &mut Decoder,
    f: &crate::decode::Fields,
    path: &str,
    uses: &mut Vec<NameUse>,
) -> ImageConfig {
    let caps = |key: &str, d: &mut Decoder| -> Option<Vec<String>> {
        let node = f.get(key)?;
        let p = key_path(path, key);
        let list = d.strings(node, &p)?;
        if let crate::node::Kind::Seq(items) = &node.kind {
            for (i, (cap, item)) in list.iter().zip(items).enumerate() {
                // `capabilities.add` is appended to the label's list, so `all` is never alone.
                let len = if key == "capabilities.add" { 2 } else { list.len() };
                if let Err((msg, help)) = check::capability(cap, len) {
                    d.error_help(item.pos, &index_path(&p, i), msg, help);
                }
            }
        }
        Some(list)
    };
    let capabilities = caps("capabilities", d);
    let capabilities_add = caps("capabilities.add", d);
    let ambient = caps("ambient", d);

    let checked_strings = |key: &str,
                           d: &mut Decoder,
                           rule: &dyn Fn(&str) -> Result<(), String>|
     -> Option<Vec<String>> {
        let node = f.get(key)?;
        let p = key_path(path, key);
        d.list(node, &p, |d, n, ip| {
            let s = d.string(n, ip)?;
            if let Err(msg) = rule(&s) {
                d.error(n.pos, ip, msg);
            }
            Some(s)
        })
    };
    let bind_rule = |s: &str| check::bind(s).map(|_| ());
    let binds = checked_strings("binds", d, &bind_rule);
    let binds_add = checked_strings("binds.add", d, &bind_rule);
    for key in ["binds", "binds.add"] {
        if let (Some(crate::node::Kind::Seq(items)), Some(list)) =
            (f.get(key).map(|n| &n.kind), if key == "binds" { &binds } else { &binds_add })
        {
            for (i, (b, item)) in list.iter().zip(items).enumerate() {
                if let Ok(bind) = check::bind(b) {
                    if !bind.source.starts_with('/') {
                        let writable =
                            bind.options.as_ref().is_none_or(|o| o.first() != Some(&"ro"));
                        uses.push(NameUse {
                            name: bind.source.to_string(),
                            kind: UseKind::Volume { writable },
                            origin: d.origin(item.pos, &index_path(&key_path(path, key), i)),
                        });
                    }
                }
            }
        }
    }
    let tmpfs = checked_strings("tmpfs", d, &|s| check::tmpfs(s).map(|_| ()));
    let rlimits = checked_strings("rlimits", d, &|s| check::rlimit(s).map(|_| ()));

    let mounts = opt_fn!(d, f, path, "mounts", |d: &mut Decoder, n: &Node, p: &str| d.list(
        n,
        p,
        |d, n, p| mount(d, n, p, Some(&mut *uses))
    ));
    let devices =
        opt_fn!(d, f, path, "devices", |d: &mut Decoder, n: &Node, p: &str| d.list(n, p, device));

    let mut ids = |key: &str, d: &mut Decoder| -> Option<IdRef> {
        let node = f.get(key)?;
        let p = key_path(path, key);
        let id = d.id_ref(node, &p)?;
        if let IdRef::Name(name) = &id {
            uses.push(NameUse {
                name: name.clone(),
                kind: UseKind::Id,
                origin: d.origin(node.pos, &p),
            });
        }
        Some(id)
    };
    let uid = ids("uid", d);
    let gid = ids("gid", d);
    let additional_gids = f.get("additionalGids").and_then(|n| {
        let p = key_path(path, "additionalGids");
        d.list(n, &p, |d, n, ip| {
            let id = d.id_ref(n, ip)?;
            if let IdRef::Name(name) = &id {
                uses.push(NameUse {
                    name: name.clone(),
                    kind: UseKind::Id,
                    origin: d.origin(n.pos, ip),
                });
            }
            Some(id)
        })
    });

    ImageConfig {
        capabilities,
        capabilities_add,
        ambient,
        mounts,
        binds,
        binds_add,
        devices,
        tmpfs,
        command: opt!(d, f, path, "command", strings),
        env: opt!(d, f, path, "env", strings),
        cwd: opt!(d, f, path, "cwd", string),
        net: opt!(d, f, path, "net", string),
        pid: opt!(d, f, path, "pid", string),
        ipc: opt!(d, f, path, "ipc", string),
        uts: opt!(d, f, path, "uts", string),
        userns: opt!(d, f, path, "userns", string),
        hostname: opt!(d, f, path, "hostname", string),
        readonly: opt!(d, f, path, "readonly", boolean),
        masked_paths: opt!(d, f, path, "maskedPaths", strings),
        readonly_paths: opt!(d, f, path, "readonlyPaths", strings),
        uid,
        gid,
        additional_gids,
        no_new_privileges: opt!(d, f, path, "noNewPrivileges", boolean),
        oom_score_adj: opt!(d, f, path, "oomScoreAdj", int),
        rootfs_propagation: opt!(d, f, path, "rootfsPropagation", string),
        cgroups_path: opt!(d, f, path, "cgroupsPath", string),
        resources: opt_fn!(d, f, path, "resources", resources),
        sysctl: opt!(d, f, path, "sysctl", str_map),
        rlimits,
        uid_mappings: opt_fn!(d, f, path, "uidMappings", id_mappings),
        gid_mappings: opt_fn!(d, f, path, "gidMappings", id_mappings),
        annotations: opt!(d, f, path, "annotations", str_map),
        runtime: opt_fn!(d, f, path, "runtime", runtime),
    }
}

/// A mount; `uses` collects volume references (`type: bind` with a relative source) for
/// container mounts, `None` for `runtime.mounts` (root namespace, never volumes).
fn mount(d: &mut Decoder, n: &Node, path: &str, uses: Option<&mut Vec<NameUse>>) -> Option<Mount> {
    let f = d.fields(n, path, MOUNT_KEYS)?;
    let m = Mount {
        destination: opt!(d, f, path, "destination", string),
        kind: opt!(d, f, path, "type", string),
        source: opt!(d, f, path, "source", string),
        options: opt!(d, f, path, "options", strings),
        uid_mappings: opt_fn!(d, f, path, "uidmappings", id_mappings),
        gid_mappings: opt_fn!(d, f, path, "gidmappings", id_mappings),
    };
    let Some(uses) = uses else { return Some(m) };
    match check::mount_type(m.kind.as_deref(), m.source.as_deref(), m.destination.as_deref()) {
        Err(msg) => d.error(n.pos, path, msg),
        Ok(kind) => {
            let dest = m.destination.as_deref().filter(|s| !s.is_empty());
            if dest.is_none() && check::default_mount_destination(&kind).is_none() {
                let msg = format!("mount of type `{kind}` needs a destination (only proc, devpts, sysfs, cgroup and mqueue have a default)");
                d.error(n.pos, path, msg);
            }
            if kind == "bind" {
                if let Some(src) = m.source.as_deref().filter(|s| !s.starts_with('/')) {
                    let opts = m.options.as_deref().unwrap_or_default();
                    let ro = opts.iter().position(|o| o == "ro");
                    let rw = opts.iter().position(|o| o == "rw");
                    let writable = match (ro, rw) {
                        (Some(r), Some(w)) => w < r,
                        (Some(_), None) => false,
                        _ => true,
                    };
                    let pos = f.get("source").map_or(n.pos, |s| s.pos);
                    uses.push(NameUse {
                        name: src.to_string(),
                        kind: UseKind::Volume { writable },
                        origin: d.origin(pos, &key_path(path, "source")),
                    });
                }
            }
        }
    }
    Some(m)
}

fn id_mappings(d: &mut Decoder, n: &Node, path: &str) -> Option<Vec<IdMapping>> {
    d.list(n, path, |d, n, p| {
        let f = d.fields(n, p, IDMAP_KEYS)?;
        Some(IdMapping {
            host_id: opt!(d, f, p, "hostID", int),
            container_id: opt!(d, f, p, "containerID", int),
            size: opt!(d, f, p, "size", int),
        })
    })
}

fn device(d: &mut Decoder, n: &Node, path: &str) -> Option<Device> {
    let f = d.fields(n, path, DEVICE_KEYS)?;
    let dev = Device {
        path: opt!(d, f, path, "path", string),
        kind: opt!(d, f, path, "type", string),
        major: opt!(d, f, path, "major", int),
        minor: opt!(d, f, path, "minor", int),
        mode: opt!(d, f, path, "mode", string),
    };
    if dev.path.as_deref() != Some("all") {
        match (&dev.mode, f.get("mode")) {
            (Some(m), Some(node)) => {
                if let Err(msg) = check::octal_mode(m) {
                    d.error(node.pos, &key_path(path, "mode"), msg);
                }
            }
            (None, None) => d.error(
                n.pos,
                path,
                "device needs a `mode` (octal text like \"0666\") unless its path is `all`",
            ),
            _ => {}
        }
    }
    Some(dev)
}

fn resources(d: &mut Decoder, n: &Node, path: &str) -> Option<Resources> {
    let f = d.fields(n, path, RESOURCES_KEYS)?;
    let devices = opt_fn!(d, f, path, "devices", |d: &mut Decoder, n: &Node, p: &str| d.list(
        n,
        p,
        |d, n, p| {
            let f = d.fields(n, p, DEVCG_KEYS)?;
            Some(DeviceCgroup {
                allow: opt!(d, f, p, "allow", boolean),
                kind: opt!(d, f, p, "type", string),
                major: opt!(d, f, p, "major", int),
                minor: opt!(d, f, p, "minor", int),
                access: opt!(d, f, p, "access", string),
            })
        }
    ));
    let memory = f.get("memory").and_then(|n| {
        let p = key_path(path, "memory");
        let f = d.fields(n, &p, MEMORY_KEYS)?;
        Some(Memory {
            limit: opt!(d, f, &p, "limit", int),
            reservation: opt!(d, f, &p, "reservation", int),
            swap: opt!(d, f, &p, "swap", int),
            kernel: opt!(d, f, &p, "kernel", int),
            kernel_tcp: opt!(d, f, &p, "kernelTCP", int),
            swappiness: opt!(d, f, &p, "swappiness", int),
            disable_oom_killer: opt!(d, f, &p, "disableOOMKiller", boolean),
        })
    });
    let cpu = f.get("cpu").and_then(|n| {
        let p = key_path(path, "cpu");
        let f = d.fields(n, &p, CPU_KEYS)?;
        Some(Cpu {
            shares: opt!(d, f, &p, "shares", int),
            quota: opt!(d, f, &p, "quota", int),
            period: opt!(d, f, &p, "period", int),
            realtime_runtime: opt!(d, f, &p, "realtimeRuntime", int),
            realtime_period: opt!(d, f, &p, "realtimePeriod", int),
            cpus: opt!(d, f, &p, "cpus", string),
            mems: opt!(d, f, &p, "mems", string),
        })
    });
    let pids = f.get("pids").and_then(|n| {
        let p = key_path(path, "pids");
        let f = d.fields(n, &p, &["limit"])?;
        Some(Pids { limit: opt!(d, f, &p, "limit", int) })
    });
    let throttle = |d: &mut Decoder, n: &Node, p: &str| {
        d.list(n, p, |d, n, p| {
            let f = d.fields(n, p, &["major", "minor", "rate"])?;
            Some(ThrottleDevice {
                major: opt!(d, f, p, "major", int),
                minor: opt!(d, f, p, "minor", int),
                rate: opt!(d, f, p, "rate", int),
            })
        })
    };
    let block_io = f.get("blockio").and_then(|n| {
        let p = key_path(path, "blockio");
        let f = d.fields(n, &p, BLOCKIO_KEYS)?;
        Some(BlockIo {
            weight: opt!(d, f, &p, "weight", int),
            leaf_weight: opt!(d, f, &p, "leafWeight", int),
            weight_device: opt_fn!(
                d,
                f,
                &p,
                "weightDevice",
                |d: &mut Decoder, n: &Node, p: &str| d.list(n, p, |d, n, p| {
                    let f = d.fields(n, p, &["major", "minor", "weight", "leafWeight"])?;
                    Some(WeightDevice {
                        major: opt!(d, f, p, "major", int),
                        minor: opt!(d, f, p, "minor", int),
                        weight: opt!(d, f, p, "weight", int),
                        leaf_weight: opt!(d, f, p, "leafWeight", int),
                    })
                })
            ),
            throttle_read_bps_device: opt_fn!(d, f, &p, "throttleReadBpsDevice", throttle),
            throttle_write_bps_device: opt_fn!(d, f, &p, "throttleWriteBpsDevice", throttle),
            throttle_read_iops_device: opt_fn!(d, f, &p, "throttleReadIOPSDevice", throttle),
            throttle_write_iops_device: opt_fn!(d, f, &p, "throttleWriteIOPSDevice", throttle),
        })
    });
    let hugepage_limits = f.get("hugepageLimits").and_then(|n| {
        d.list(n, &key_path(path, "hugepageLimits"), |d, n, p| {
            let f = d.fields(n, p, &["pageSize", "limit"])?;
            Some(HugepageLimit {
                page_size: opt!(d, f, p, "pageSize", int),
                limit: opt!(d, f, p, "limit", int),
            })
        })
    });
    let network = f.get("network").and_then(|n| {
        let p = key_path(path, "network");
        let f = d.fields(n, &p, &["classID", "priorities"])?;
        Some(Network {
            class_id: opt!(d, f, &p, "classID", int),
            priorities: f.get("priorities").and_then(|n| {
                d.list(n, &key_path(&p, "priorities"), |d, n, p| {
                    let f = d.fields(n, p, &["name", "priority"])?;
                    Some(InterfacePriority {
                        name: opt!(d, f, p, "name", string),
                        priority: opt!(d, f, p, "priority", int),
                    })
                })
            }),
        })
    });
    Some(Resources { devices, memory, cpu, pids, block_io, hugepage_limits, network })
}

fn runtime(d: &mut Decoder, n: &Node, path: &str) -> Option<Runtime> {
    let f = d.fields(n, path, RUNTIME_KEYS)?;
    Some(Runtime {
        cgroups: opt!(d, f, path, "cgroups", strings),
        mounts: f
            .get("mounts")
            .and_then(|n| d.list(n, &key_path(path, "mounts"), |d, n, p| mount(d, n, p, None))),
        mkdir: opt!(d, f, path, "mkdir", strings),
        interfaces: f.get("interfaces").and_then(|n| {
            d.list(n, &key_path(path, "interfaces"), |d, n, p| {
                let f = d.fields(n, p, INTERFACE_KEYS)?;
                Some(Interface {
                    name: opt!(d, f, p, "name", string),
                    add: opt!(d, f, p, "add", string),
                    peer: opt!(d, f, p, "peer", string),
                    create_in_root: opt!(d, f, p, "createInRoot", boolean),
                })
            })
        }),
        bind_ns: f.get("bindNS").and_then(|n| {
            let p = key_path(path, "bindNS");
            let f = d.fields(n, &p, BINDNS_KEYS)?;
            Some(BindNs {
                cgroup: opt!(d, f, &p, "cgroup", string),
                ipc: opt!(d, f, &p, "ipc", string),
                mnt: opt!(d, f, &p, "mnt", string),
                net: opt!(d, f, &p, "net", string),
                pid: opt!(d, f, &p, "pid", string),
                user: opt!(d, f, &p, "user", string),
                uts: opt!(d, f, &p, "uts", string),
            })
        }),
        namespace: opt!(d, f, path, "namespace", string),
    })
}

fn file(d: &mut Decoder, n: &Node, path: &str, uses: &mut Vec<NameUse>) -> Option<File> {
    let f = d.fields(n, path, FILE_KEYS)?;
    let mut id = |key: &str, d: &mut Decoder| -> Option<IdRef> {
        let node = f.get(key)?;
        let p = key_path(path, key);
        let id = d.id_ref(node, &p)?;
        if let IdRef::Name(name) = &id {
            uses.push(NameUse {
                name: name.clone(),
                kind: UseKind::Id,
                origin: d.origin(node.pos, &p),
            });
        }
        Some(id)
    };
    let uid = id("uid", d);
    let gid = id("gid", d);
    let file = File {
        path: opt!(d, f, path, "path", string).unwrap_or_default(),
        directory: opt!(d, f, path, "directory", boolean),
        symlink: opt!(d, f, path, "symlink", string),
        contents: opt!(d, f, path, "contents", string),
        source: opt!(d, f, path, "source", string),
        metadata: opt!(d, f, path, "metadata", string),
        optional: opt!(d, f, path, "optional", boolean),
        mode: opt!(d, f, path, "mode", string),
        uid,
        gid,
    };
    // The build-time rules of LinuxKit's `filesystem()` (§1.3), reported with a location.
    if file.path.is_empty() && f.get("path").is_none() {
        d.error(n.pos, path, "file entry needs a `path`");
    }
    let at = |key: &str| f.get(key).map_or(n.pos, |k| k.pos);
    let p = |key: &str| key_path(path, key);
    if let Err(msg) = check::file_path(&file.path) {
        d.error(at("path"), &p("path"), msg);
    }
    if let (Some(m), Some(node)) = (&file.mode, f.get("mode")) {
        if let Err(msg) = check::octal_mode(m) {
            d.error(node.pos, &p("mode"), msg);
        }
    }
    if let Some(m) = &file.metadata {
        if m != "yaml" && m != "json" {
            d.error_help(
                at("metadata"),
                &p("metadata"),
                format!("unsupported metadata type `{m}`"),
                Some("use `yaml` or `json`".into()),
            );
        }
    }
    let is_dir = file.directory == Some(true);
    if is_dir && file.contents.is_some() {
        d.error(at("contents"), &p("contents"), "a directory cannot have `contents`");
    }
    if file.contents.is_some() && (file.source.is_some() || file.metadata.is_some()) {
        let other = if file.source.is_some() { "source" } else { "metadata" };
        d.error(
            at(other),
            &p(other),
            format!("file has both `contents` and `{other}`; give exactly one content source"),
        );
    }
    if file.source.is_some() && file.metadata.is_some() {
        d.error(
            at("metadata"),
            &p("metadata"),
            "file has both `source` and `metadata`; give exactly one content source",
        );
    }
    if !is_dir
        && file.symlink.is_none()
        && file.contents.is_none()
        && file.source.is_none()
        && file.metadata.is_none()
        && !file.path.is_empty()
    {
        d.error_help(
            n.pos,
            path,
            format!("contents of file `{}` not specified", file.path),
            Some("add `contents`, `source` or `metadata`, or `directory: true`".into()),
        );
    }
    Some(file)
}

fn volume(d: &mut Decoder, n: &Node, path: &str) -> Option<Volume> {
    let f = d.fields(n, path, VOLUME_KEYS)?;
    let name_node = d.required(&f, path, "name")?;
    let name_path = key_path(path, "name");
    let name = d.string(name_node, &name_path)?;
    if !check::volume_name_ok(&name) || name.is_empty() {
        d.error_help(
            name_node.pos,
            &name_path,
            format!("invalid volume name `{name}`"),
            Some("volume names use only a-z, 0-9, `_` and `-`".into()),
        );
    }
    let image = opt!(d, f, path, "image", string);
    if let (Some(img), Some(node)) = (&image, f.get("image")) {
        if !img.is_empty() {
            image_ref(d, node.pos, &key_path(path, "image"), img);
        }
    }
    let format = f.get("format").and_then(|node| {
        let p = key_path(path, "format");
        match d.string(node, &p)?.as_str() {
            "filesystem" => Some(VolumeFormat::Filesystem),
            "oci" => Some(VolumeFormat::Oci),
            other => {
                let msg = format!("unknown volume format `{other}`");
                d.error_help(node.pos, &p, msg, Some("use `filesystem` (default) or `oci`".into()));
                None
            }
        }
    });
    Some(Volume {
        origin: d.origin(name_node.pos, &name_path),
        name,
        image,
        readonly: opt!(d, f, path, "readonly", boolean),
        format,
        platforms: opt!(d, f, path, "platforms", strings),
    })
}
