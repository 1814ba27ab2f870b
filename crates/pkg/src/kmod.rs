//! Kernel modules: reading `.modinfo` from `.ko` files and writing what `depmod` would —
//! `modules.dep`, `modules.alias`, `modules.softdep` — because Debian's kernel `.deb` ships none
//! (its postinst runs depmod) and baleen runs no maintainer scripts and no host `depmod`.
//!
//! Non-goals: the binary `*.bin` indexes (busybox modprobe and baleen-init read the text files),
//! `modules.symbols`, and module signing checks.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

#[derive(Debug, thiserror::Error)]
pub enum KmodError {
    #[error("{path}: {message}")]
    Elf { path: String, message: String },
    #[error("decompressing {path}")]
    Decompress { path: String, source: std::io::Error },
    #[error("kernel module {name:?} is neither a module of {release} nor built into it")]
    Unknown { name: String, release: String },
}

/// What a module's `.modinfo` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModInfo {
    pub depends: Vec<String>,
    pub aliases: Vec<String>,
    /// `softdep=pre: a b post: c` → (pre, post)
    pub softdep_pre: Vec<String>,
    pub softdep_post: Vec<String>,
}

/// The module name of a path: `…/virtio-net.ko.xz` → `virtio_net` (modprobe treats `-` and `_`
/// alike; the kernel uses `_`).
pub fn module_name(path: &str) -> Option<String> {
    let file = path.rsplit('/').next()?;
    let stem = file
        .strip_suffix(".ko")
        .or_else(|| file.strip_suffix(".ko.xz"))
        .or_else(|| file.strip_suffix(".ko.zst"))
        .or_else(|| file.strip_suffix(".ko.gz"))?;
    Some(stem.replace('-', "_"))
}

/// The uncompressed ELF of a module file, by its extension.
pub fn decompress(path: &str, bytes: Vec<u8>) -> Result<Vec<u8>, KmodError> {
    let err = |source| KmodError::Decompress { path: path.to_owned(), source };
    let mut out = Vec::new();
    if path.ends_with(".xz") {
        liblzma::read::XzDecoder::new(&bytes[..]).read_to_end(&mut out).map_err(err)?;
    } else if path.ends_with(".zst") {
        zstd::stream::read::Decoder::new(&bytes[..])
            .map_err(err)?
            .read_to_end(&mut out)
            .map_err(err)?;
    } else if path.ends_with(".gz") {
        flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut out).map_err(err)?;
    } else {
        return Ok(bytes);
    }
    Ok(out)
}

/// Reads `.modinfo` of an (uncompressed) module ELF.
pub fn modinfo(path: &str, elf: &[u8]) -> Result<ModInfo, KmodError> {
    use object::{Object, ObjectSection};
    let err = |message: String| KmodError::Elf { path: path.to_owned(), message };
    let file = object::File::parse(elf).map_err(|e| err(format!("not an ELF file: {e}")))?;
    let section =
        file.section_by_name(".modinfo").ok_or_else(|| err("no .modinfo section".into()))?;
    let data = section.data().map_err(|e| err(format!("reading .modinfo: {e}")))?;
    Ok(parse_modinfo(data))
}

/// Parses the NUL-separated `key=value` strings of a `.modinfo` section.
pub fn parse_modinfo(data: &[u8]) -> ModInfo {
    let mut info = ModInfo::default();
    for item in data.split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let item = String::from_utf8_lossy(item);
        let Some((key, value)) = item.split_once('=') else { continue };
        match key {
            "depends" => info
                .depends
                .extend(value.split(',').filter(|d| !d.is_empty()).map(|d| d.replace('-', "_"))),
            "alias" => info.aliases.push(value.to_owned()),
            "softdep" => {
                let mut pre = true;
                for w in value.split_whitespace() {
                    match w {
                        "pre:" => pre = true,
                        "post:" => pre = false,
                        m if pre => info.softdep_pre.push(m.replace('-', "_")),
                        m => info.softdep_post.push(m.replace('-', "_")),
                    }
                }
            }
            _ => {}
        }
    }
    info
}

/// The modules of one kernel release: name → (path under `lib/modules/<release>/`, info).
#[derive(Debug, Default)]
pub struct Modules {
    pub release: String,
    pub modules: BTreeMap<String, (String, ModInfo)>,
    pub builtin: BTreeSet<String>,
}

impl Modules {
    /// `modules.builtin` text (`kernel/fs/ext4/ext4.ko` lines) → built-in names.
    pub fn set_builtin(&mut self, text: &str) {
        self.builtin = text.lines().filter_map(module_name).collect();
    }

    /// `wanted` and everything they need (`depends`) or ask for (`softdep`, when present), by
    /// name. Built-in names are accepted and add nothing; unknown names are an error. Empty
    /// `wanted` selects every module.
    pub fn select(&self, wanted: &[String]) -> Result<BTreeSet<String>, KmodError> {
        if wanted.is_empty() {
            return Ok(self.modules.keys().cloned().collect());
        }
        let mut out = BTreeSet::new();
        let mut stack: Vec<(String, bool)> =
            wanted.iter().map(|w| (w.replace('-', "_"), true)).collect();
        while let Some((name, required)) = stack.pop() {
            if out.contains(&name) {
                continue;
            }
            match self.modules.get(&name) {
                Some((_, info)) => {
                    out.insert(name.clone());
                    stack.extend(info.depends.iter().map(|d| (d.clone(), true)));
                    stack.extend(
                        info.softdep_pre
                            .iter()
                            .chain(&info.softdep_post)
                            .map(|d| (d.clone(), false)),
                    );
                }
                None if self.builtin.contains(&name) || !required => {}
                None => return Err(KmodError::Unknown { name, release: self.release.clone() }),
            }
        }
        Ok(out)
    }

    /// `modules.dep` for `selected`: `path: dep-paths`, dependencies listed so that modprobe,
    /// which loads from the end of the list, loads each module after the ones it needs.
    pub fn modules_dep(&self, selected: &BTreeSet<String>) -> String {
        let mut lines: Vec<(String, String)> = Vec::new();
        for name in selected {
            let (path, _) = &self.modules[name];
            let mut order = Vec::new();
            let mut seen = BTreeSet::new();
            for d in &self.modules[name].1.depends {
                self.post_order(d, &mut seen, &mut order);
            }
            // post_order gives dependencies before dependents; modules.dep wants the reverse.
            order.reverse();
            let deps: Vec<&str> =
                order.iter().filter_map(|d| self.modules.get(d).map(|(p, _)| p.as_str())).collect();
            lines.push((
                path.clone(),
                format!("{path}:{}{}\n", if deps.is_empty() { "" } else { " " }, deps.join(" ")),
            ));
        }
        lines.sort();
        lines.into_iter().map(|(_, l)| l).collect()
    }

    fn post_order(&self, name: &str, seen: &mut BTreeSet<String>, out: &mut Vec<String>) {
        if !seen.insert(name.to_owned()) {
            return;
        }
        if let Some((_, info)) = self.modules.get(name) {
            for d in &info.depends {
                self.post_order(d, seen, out);
            }
            out.push(name.to_owned());
        }
    }

    /// `modules.alias`: `alias <pattern> <module>` for every alias of the selected modules.
    pub fn modules_alias(&self, selected: &BTreeSet<String>) -> String {
        let mut s = String::from("# Aliases extracted from modules themselves.\n");
        for name in selected {
            for a in &self.modules[name].1.aliases {
                s.push_str(&format!("alias {a} {name}\n"));
            }
        }
        s
    }

    /// `modules.softdep`: `softdep <module> pre: … post: …`.
    pub fn modules_softdep(&self, selected: &BTreeSet<String>) -> String {
        let mut s = String::from("# Soft dependencies extracted from modules themselves.\n");
        for name in selected {
            let info = &self.modules[name].1;
            if info.softdep_pre.is_empty() && info.softdep_post.is_empty() {
                continue;
            }
            s.push_str(&format!("softdep {name}"));
            if !info.softdep_pre.is_empty() {
                s.push_str(&format!(" pre: {}", info.softdep_pre.join(" ")));
            }
            if !info.softdep_post.is_empty() {
                s.push_str(&format!(" post: {}", info.softdep_post.join(" ")));
            }
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baleen_testkit::Chain;

    fn m(path: &str, depends: &[&str]) -> (String, (String, ModInfo)) {
        let info = ModInfo {
            depends: depends.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        (module_name(path).unwrap(), (path.to_owned(), info))
    }

    #[test]
    fn parses_modinfo_strings() {
        let raw = b"license=GPL\0depends=net_failover,virtio-ring\0alias=virtio:d00000001v*\0softdep=pre: crc32c post: foo\0\0name=virtio_net\0";
        let i = parse_modinfo(raw);
        assert_eq!(i.depends, ["net_failover", "virtio_ring"]);
        assert_eq!(i.aliases, ["virtio:d00000001v*"]);
        assert_eq!(i.softdep_pre, ["crc32c"]);
        assert_eq!(i.softdep_post, ["foo"]);
        assert_eq!(
            module_name("kernel/drivers/net/virtio-net.ko.xz").as_deref(),
            Some("virtio_net")
        );
        assert_eq!(module_name("modules.dep"), None);
    }

    #[test]
    fn selection_and_dep_order() {
        let mut ms = Modules { release: "6.1.0-x".into(), ..Default::default() };
        ms.modules.extend([
            m("kernel/drivers/net/virtio_net.ko", &["net_failover"]),
            m("kernel/drivers/net/net_failover.ko", &["failover"]),
            m("kernel/net/core/failover.ko", &[]),
            m("kernel/fs/unused.ko", &[]),
        ]);
        ms.set_builtin("kernel/fs/ext4/ext4.ko\n");
        let sel = ms.select(&["virtio-net".into(), "ext4".into()]).unwrap();
        assert_eq!(sel.iter().collect::<Vec<_>>(), ["failover", "net_failover", "virtio_net"]);
        let dep = ms.modules_dep(&sel);
        assert!(
            dep.contains("kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko\n"),
            "{dep}"
        );
        assert!(dep.contains("kernel/net/core/failover.ko:\n"), "{dep}");
        let err = ms.select(&["nope".into()]).unwrap_err().chain();
        assert!(err.contains("\"nope\"") && err.contains("6.1.0-x"), "{err}");
    }

    /// Reads real `.ko` files of Debian's cloud kernel (cached by testkit) and checks what
    /// `modinfo` would say about virtio_net.
    #[test]
    fn real_debian_modules() {
        let Some(k) = baleen_testkit::kernel::debian_cloud_kernel() else { return };
        let find = |name: &str| {
            let mut stack = vec![k.modules.clone()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).unwrap() {
                    let p = e.unwrap().path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if module_name(&p.to_string_lossy()).as_deref() == Some(name) {
                        return p;
                    }
                }
            }
            panic!("{name} not in {}", k.modules.display());
        };
        let p = find("virtio_net");
        let ps = p.to_string_lossy().into_owned();
        let elf = decompress(&ps, std::fs::read(&p).unwrap()).unwrap();
        let info = modinfo(&ps, &elf).unwrap();
        assert!(info.depends.contains(&"net_failover".to_owned()), "{info:?}");
        assert!(info.aliases.iter().any(|a| a.starts_with("virtio:d00000001")), "{info:?}");
        let err = modinfo("x", b"not elf").unwrap_err().chain();
        assert!(err.contains("not an ELF"), "{err}");
    }
}
