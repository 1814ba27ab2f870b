//! The bytes of a `files:` entry with `metadata: yaml|json` (spec §1.3): the merged config with
//! canonical image references, as LinuxKit serializes its `Moby` struct — JSON with Go's
//! `json.MarshalIndent(m, "", "    ")`, YAML with `gopkg.in/yaml.v2`.
//!
//! Field presence follows each Go struct tag (`directory:`/`optional:` always, devices always
//! with `major`/`minor`, empty top-level lists as `[]` in YAML and `null` in JSON). The YAML
//! writer copies libyaml's scalar style choice (plain, single-quoted, double-quoted, literal)
//! and its folding of long lines at 80 columns. Non-goal: the rarely used `resources` block is
//! written with the OCI field names, not byte-checked against yaml.v2's reflection of the
//! runtime-spec structs.

use crate::config::*;
use crate::oci::to_go_json;
use crate::runtime::RuntimeError;
use serde_json::{json, Map, Value};

mod yaml_v2;
use yaml_v2::write_map;

/// A Go value about to be marshalled, in field order.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum V {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Seq(Vec<V>),
    Map(Vec<(String, V)>),
}

/// Which Go encoder the tree is for: presence rules differ between `json` and `yaml` tags.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Enc {
    Json,
    Yaml,
}

/// `metadata: json`.
pub fn json(cfg: &Config) -> Result<String, RuntimeError> {
    Ok(to_go_json(&to_json(&moby(&cfg.with_expanded_refs(), Enc::Json)?)))
}

/// `metadata: yaml`.
pub fn yaml(cfg: &Config) -> Result<String, RuntimeError> {
    let mut out = String::new();
    if let V::Map(entries) = moby(&cfg.with_expanded_refs(), Enc::Yaml)? {
        write_map(&mut out, &entries, 0);
    }
    Ok(out)
}

fn s(v: &str) -> V {
    V::Str(v.to_string())
}

fn strs(v: &[String]) -> V {
    V::Seq(v.iter().map(|x| s(x)).collect())
}

/// A top-level list: `[]` in YAML, `null` in JSON when empty (Go nil slice).
fn list(enc: Enc, items: Vec<V>) -> V {
    if items.is_empty() && enc == Enc::Json {
        V::Null
    } else {
        V::Seq(items)
    }
}

fn id(v: &IdRef) -> V {
    match v {
        IdRef::Num(n) => V::Int(*n),
        IdRef::Name(n) => s(n),
    }
}

fn moby(cfg: &Config, enc: Enc) -> Result<V, RuntimeError> {
    let k = cfg.kernel.clone().unwrap_or_default();
    let mut kernel = vec![("image".to_string(), s(k.image.as_deref().unwrap_or("")))];
    for (key, v) in [("cmdline", &k.cmdline), ("binary", &k.binary)] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            kernel.push((key.into(), s(v)));
        }
    }
    for (key, v) in [("tar", &k.tar), ("ucode", &k.ucode)] {
        if let Some(v) = v {
            kernel.push((key.into(), s(v)));
        }
    }
    let images = |list: &[Image]| -> Result<Vec<V>, RuntimeError> {
        list.iter().map(|i| image(i, enc)).collect()
    };
    Ok(V::Map(vec![
        ("kernel".into(), V::Map(kernel)),
        ("init".into(), list(enc, cfg.init.iter().map(|i| s(i)).collect())),
        ("onboot".into(), list(enc, images(&cfg.onboot)?)),
        ("onshutdown".into(), list(enc, images(&cfg.onshutdown)?)),
        ("services".into(), list(enc, images(&cfg.services)?)),
        ("files".into(), list(enc, cfg.files.iter().map(file).collect())),
        ("volumes".into(), list(enc, cfg.volumes.iter().map(volume).collect())),
    ]))
}

fn file(f: &File) -> V {
    let mut m = vec![
        ("path".to_string(), s(&f.path)),
        ("directory".into(), V::Bool(f.directory.unwrap_or(false))),
    ];
    let mut opt = |key: &str, v: &Option<String>, keep_empty: bool| {
        if let Some(v) = v.as_deref().filter(|v| keep_empty || !v.is_empty()) {
            m.push((key.into(), s(v)));
        }
    };
    opt("symlink", &f.symlink, false);
    opt("contents", &f.contents, true);
    opt("source", &f.source, false);
    opt("metadata", &f.metadata, false);
    m.push(("optional".into(), V::Bool(f.optional.unwrap_or(false))));
    if let Some(mode) = f.mode.as_deref().filter(|v| !v.is_empty()) {
        m.push(("mode".into(), s(mode)));
    }
    for (key, v) in [("uid", &f.uid), ("gid", &f.gid)] {
        if let Some(v) = v {
            m.push((key.into(), id(v)));
        }
    }
    V::Map(m)
}

fn volume(v: &Volume) -> V {
    let mut m = vec![("name".to_string(), s(&v.name))];
    if let Some(i) = v.image.as_deref().filter(|i| !i.is_empty()) {
        m.push(("image".into(), s(i)));
    }
    if v.readonly == Some(true) {
        m.push(("readonly".into(), V::Bool(true)));
    }
    if let Some(f) = v.format {
        m.push(("format".into(), s(if f == VolumeFormat::Oci { "oci" } else { "filesystem" })));
    }
    if let Some(p) = v.platforms.as_deref().filter(|p| !p.is_empty()) {
        m.push(("platforms".into(), strs(p)));
    }
    V::Map(m)
}

fn mount(m: &Mount, enc: Enc) -> V {
    let (uid_key, gid_key) = match enc {
        Enc::Json => ("uidMappings", "gidMappings"),
        Enc::Yaml => ("uidmappings", "gidmappings"),
    };
    let maps =
        |v: &Option<Vec<IdMapping>>| V::Seq(v.iter().flatten().map(|x| idmap(x, enc)).collect());
    let fields = [
        ("destination", s(m.destination.as_deref().unwrap_or(""))),
        ("type", s(m.kind.as_deref().unwrap_or(""))),
        ("source", s(m.source.as_deref().unwrap_or(""))),
        ("options", strs(m.options.as_deref().unwrap_or_default())),
        (uid_key, maps(&m.uid_mappings)),
        (gid_key, maps(&m.gid_mappings)),
    ];
    // specs.Mount has json tags (omitempty but `destination`) and no yaml tags (every field).
    V::Map(
        fields
            .into_iter()
            .filter(|(k, v)| enc == Enc::Yaml || *k == "destination" || !is_empty(v))
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

fn idmap(m: &IdMapping, enc: Enc) -> V {
    let (c, h) = match enc {
        Enc::Json => ("containerID", "hostID"),
        Enc::Yaml => ("containerid", "hostid"),
    };
    V::Map(vec![
        (c.into(), V::Int(m.container_id.unwrap_or(0))),
        (h.into(), V::Int(m.host_id.unwrap_or(0))),
        ("size".into(), V::Int(m.size.unwrap_or(0))),
    ])
}

fn is_empty(v: &V) -> bool {
    match v {
        V::Str(s) => s.is_empty(),
        V::Seq(s) => s.is_empty(),
        V::Map(m) => m.is_empty(),
        V::Null => true,
        V::Bool(b) => !b,
        V::Int(i) => *i == 0,
    }
}

fn image(i: &Image, enc: Enc) -> Result<V, RuntimeError> {
    let c = &i.config;
    let mut m = vec![("name".to_string(), s(&i.name)), ("image".into(), s(&i.image))];
    let mut list = |key: &str, v: &Option<Vec<String>>| {
        if let Some(v) = v {
            m.push((key.into(), strs(v)));
        }
    };
    list("capabilities", &c.capabilities);
    list("capabilities.add", &c.capabilities_add);
    list("ambient", &c.ambient);
    if let Some(mounts) = &c.mounts {
        m.push(("mounts".into(), V::Seq(mounts.iter().map(|x| mount(x, enc)).collect())));
    }
    let mut list = |key: &str, v: &Option<Vec<String>>| {
        if let Some(v) = v {
            m.push((key.into(), strs(v)));
        }
    };
    list("binds", &c.binds);
    list("binds.add", &c.binds_add);
    if let Some(devices) = &c.devices {
        let dev = |d: &Device| {
            let mut f = vec![
                ("path".to_string(), s(d.path.as_deref().unwrap_or(""))),
                ("type".into(), s(d.kind.as_deref().unwrap_or(""))),
                ("major".into(), V::Int(d.major.unwrap_or(0))),
                ("minor".into(), V::Int(d.minor.unwrap_or(0))),
            ];
            if let Some(mode) = d.mode.as_deref().filter(|x| !x.is_empty()) {
                f.push(("mode".into(), s(mode)));
            }
            V::Map(f)
        };
        m.push(("devices".into(), V::Seq(devices.iter().map(dev).collect())));
    }
    for (key, v) in [("tmpfs", &c.tmpfs), ("command", &c.command), ("env", &c.env)] {
        if let Some(v) = v {
            m.push((key.into(), strs(v)));
        }
    }
    for (key, v) in [
        ("cwd", &c.cwd),
        ("net", &c.net),
        ("pid", &c.pid),
        ("ipc", &c.ipc),
        ("uts", &c.uts),
        ("userns", &c.userns),
        ("hostname", &c.hostname),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            m.push((key.into(), s(v)));
        }
    }
    if let Some(b) = c.readonly {
        m.push(("readonly".into(), V::Bool(b)));
    }
    for (key, v) in [("maskedPaths", &c.masked_paths), ("readonlyPaths", &c.readonly_paths)] {
        if let Some(v) = v {
            m.push((key.into(), strs(v)));
        }
    }
    for (key, v) in [("uid", &c.uid), ("gid", &c.gid)] {
        if let Some(v) = v {
            m.push((key.into(), id(v)));
        }
    }
    if let Some(g) = &c.additional_gids {
        m.push(("additionalGids".into(), V::Seq(g.iter().map(id).collect())));
    }
    if let Some(b) = c.no_new_privileges {
        m.push(("noNewPrivileges".into(), V::Bool(b)));
    }
    if let Some(n) = c.oom_score_adj {
        m.push(("oomScoreAdj".into(), V::Int(n)));
    }
    for (key, v) in [("rootfsPropagation", &c.rootfs_propagation), ("cgroupsPath", &c.cgroups_path)]
    {
        if let Some(v) = v {
            m.push((key.into(), s(v)));
        }
    }
    if let Some(r) = &c.resources {
        let oci = crate::runtime::convert_resources(&i.name, r)?;
        m.push(("resources".into(), from_json(&serde_json::to_value(oci).unwrap_or(Value::Null))));
    }
    let smap = |v: &std::collections::BTreeMap<String, String>| {
        V::Map(v.iter().map(|(k, x)| (k.clone(), s(x))).collect())
    };
    if let Some(v) = &c.sysctl {
        m.push(("sysctl".into(), smap(v)));
    }
    if let Some(v) = &c.rlimits {
        m.push(("rlimits".into(), strs(v)));
    }
    for (key, v) in [("uidMappings", &c.uid_mappings), ("gidMappings", &c.gid_mappings)] {
        if let Some(v) = v {
            m.push((key.into(), V::Seq(v.iter().map(|x| idmap(x, enc)).collect())));
        }
    }
    if let Some(v) = &c.annotations {
        m.push(("annotations".into(), smap(v)));
    }
    if let Some(rt) = &c.runtime {
        m.push(("runtime".into(), runtime(rt, enc)));
    }
    Ok(V::Map(m))
}

fn runtime(rt: &Runtime, enc: Enc) -> V {
    let mut m = Vec::new();
    if let Some(v) = &rt.cgroups {
        m.push(("cgroups".to_string(), strs(v)));
    }
    if let Some(v) = &rt.mounts {
        m.push(("mounts".into(), V::Seq(v.iter().map(|x| mount(x, enc)).collect())));
    }
    if let Some(v) = &rt.mkdir {
        m.push(("mkdir".into(), strs(v)));
    }
    if let Some(v) = &rt.interfaces {
        let iface = |i: &Interface| {
            let mut f = Vec::new();
            for (key, v) in [("name", &i.name), ("add", &i.add), ("peer", &i.peer)] {
                if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                    f.push((key.to_string(), s(v)));
                }
            }
            f.push(("createInRoot".into(), V::Bool(i.create_in_root.unwrap_or(false))));
            V::Map(f)
        };
        m.push(("interfaces".into(), V::Seq(v.iter().map(iface).collect())));
    }
    let ns = rt.bind_ns.clone().unwrap_or_default();
    let fields: Vec<(String, V)> = [
        ("cgroup", &ns.cgroup),
        ("ipc", &ns.ipc),
        ("mnt", &ns.mnt),
        ("net", &ns.net),
        ("pid", &ns.pid),
        ("user", &ns.user),
        ("uts", &ns.uts),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_string(), s(v))))
    .collect();
    // A struct: encoding/json never omits it; yaml.v2's omitempty drops it when all-nil.
    if enc == Enc::Json || !fields.is_empty() {
        m.push(("bindNS".into(), V::Map(fields)));
    }
    if let Some(v) = &rt.namespace {
        m.push(("namespace".into(), s(v)));
    }
    V::Map(m)
}

fn from_json(v: &Value) -> V {
    match v {
        Value::Null => V::Null,
        Value::Bool(b) => V::Bool(*b),
        Value::Number(n) => V::Int(n.as_i64().unwrap_or(i64::MAX)),
        Value::String(x) => s(x),
        Value::Array(a) => V::Seq(a.iter().map(from_json).collect()),
        Value::Object(o) => V::Map(o.iter().map(|(k, x)| (k.clone(), from_json(x))).collect()),
    }
}

fn to_json(v: &V) -> Value {
    match v {
        V::Null => Value::Null,
        V::Bool(b) => json!(b),
        V::Int(i) => json!(i),
        V::Str(x) => json!(x),
        V::Seq(a) => Value::Array(a.iter().map(to_json).collect()),
        V::Map(m) => {
            let mut o = Map::new();
            for (k, x) in m {
                o.insert(k.clone(), to_json(x));
            }
            Value::Object(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::yaml_v2::scalar_text;
    use super::*;
    use crate::{load, Source};

    fn cfg(text: &str) -> Config {
        load(Source { name: "t.yml", text, template_dir: None }, None).unwrap()
    }

    #[test]
    fn yaml_like_linuxkit() {
        let c = cfg(concat!(
            "kernel:\n  image: linuxkit/kernel:6.12\n  cmdline: console=ttyS0\n",
            "onboot:\n  - name: dhcpcd\n    image: linuxkit/dhcpcd:v1\n",
            "    command: [\"/sbin/dhcpcd\", \"--nobackground\", \"-1\"]\n",
            "files:\n  - path: etc/x\n    contents: |\n      a\n\n      b\n    mode: \"0644\"\n",
        ));
        assert_eq!(
            yaml(&c).unwrap(),
            concat!(
                "kernel:\n  image: docker.io/linuxkit/kernel:6.12\n  cmdline: console=ttyS0\n",
                "init: []\n",
                "onboot:\n- name: dhcpcd\n  image: docker.io/linuxkit/dhcpcd:v1\n",
                "  command:\n  - /sbin/dhcpcd\n  - --nobackground\n  - \"-1\"\n",
                "onshutdown: []\nservices: []\n",
                "files:\n- path: etc/x\n  directory: false\n  contents: |\n    a\n\n    b\n  optional: false\n  mode: \"0644\"\n",
                "volumes: []\n",
            )
        );
    }

    #[test]
    fn json_like_linuxkit() {
        let c = cfg("services:\n  - name: s\n    image: alpine\n    runtime:\n      mkdir: [/x]\n");
        let j = json(&c).unwrap();
        assert!(
            j.starts_with(
                "{\n    \"kernel\": {\n        \"image\": \"\"\n    },\n    \"init\": null,"
            ),
            "{j}"
        );
        assert!(j.contains("\"image\": \"docker.io/library/alpine\""), "{j}");
        assert!(j.contains("\"mkdir\": [\n"), "{j}");
        assert!(j.contains("\"bindNS\": {}"), "{j}");
        assert!(j.ends_with("\"volumes\": null\n}"), "{j}");
    }

    #[test]
    fn scalar_styles() {
        let sc = |t: &str| scalar_text(t, 2, 10);
        assert_eq!(sc("plain text"), "plain text");
        assert_eq!(sc(""), "\"\"");
        assert_eq!(sc("yes"), "\"yes\"");
        assert_eq!(sc("0644"), "\"0644\"");
        assert_eq!(sc("1:20"), "\"1:20\"");
        assert_eq!(sc("2024-01-02"), "\"2024-01-02\"");
        assert_eq!(sc("@pkg:x"), "'@pkg:x'");
        assert_eq!(sc("a: b"), "'a: b'");
        assert_eq!(sc("it's #1"), "'it''s #1'");
        assert_eq!(sc(" lead"), "' lead'");
        assert_eq!(sc("tab\there"), "\"tab\\there\"");
        assert_eq!(sc("x\n"), "|\n  x");
        assert_eq!(sc("x"), "x");
        assert_eq!(sc("x\ny"), "|-\n  x\n  y");
        assert_eq!(sc("trailing \nspace\n"), "\"trailing \\nspace\\n\"");
    }

    #[test]
    fn yaml_reads_back_and_prints_the_same() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            let c = cfg(&text);
            // It is a valid config again (zero values now explicit), and prints the same.
            let printed = yaml(&c).unwrap();
            let back = cfg(&printed);
            assert_eq!(yaml(&back).unwrap(), printed);
            assert_eq!(json(&back).unwrap(), json(&c).unwrap());
            n += 1;
        }
        assert_eq!(n, 6);
    }

    #[test]
    fn long_plain_lines_fold_past_80_columns() {
        let words = vec!["word"; 30].join(" ");
        let t = scalar_text(&words, 2, 11);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines.len() > 1, "{t}");
        assert!(lines[1].starts_with("  word"));
        assert_eq!(t.replace("\n  ", " "), words);
    }
}
