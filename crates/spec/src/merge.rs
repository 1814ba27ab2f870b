//! Several files into one (spec §1.8), and the checks that need the whole merged config: uid/gid
//! names (§2.5) and volume references (§1.4).

use crate::config::{Config, NameUse, Origin, UseKind};
use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::ids::IdMap;
use crate::load::{load, Source, TemplateResolver};

/// Folds `next` into `acc` with LinuxKit's `AppendConfig` rules: kernel `image`/`cmdline`/`binary`
/// replaced when the later one is non-empty, `tar`/`ucode` when present; every list concatenated;
/// service names must stay unique.
pub fn append(acc: &mut Config, next: Config) -> Result<(), Diagnostics> {
    if let Some(k) = next.kernel {
        let a = acc.kernel.get_or_insert_with(Default::default);
        let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
        if let Some(v) = nonempty(k.image) {
            a.image = Some(v);
        }
        if let Some(v) = nonempty(k.cmdline) {
            a.cmdline = Some(v);
        }
        if let Some(v) = nonempty(k.binary) {
            a.binary = Some(v);
        }
        if k.tar.is_some() {
            a.tar = k.tar;
        }
        if k.ucode.is_some() {
            a.ucode = k.ucode;
        }
    }
    let mut diags = Vec::new();
    let known: std::collections::HashMap<&str, &crate::config::Image> =
        acc.services.iter().rev().map(|s| (s.name.as_str(), s)).collect();
    for svc in &next.services {
        if let Some(first) = known.get(svc.name.as_str()) {
            let msg = format!(
                "cannot append config files: duplicate service name `{}` (first in {}:{}:{})",
                svc.name, first.origin.file, first.origin.line, first.origin.col
            );
            diags.push(at_origin(&svc.origin, msg));
        }
    }
    acc.init.extend(next.init);
    acc.onboot.extend(next.onboot);
    acc.onshutdown.extend(next.onshutdown);
    acc.services.extend(next.services);
    acc.files.extend(next.files);
    acc.volumes.extend(next.volumes);
    acc.uses.extend(next.uses);
    if let Some(t) = next.trust {
        let a = acc.trust.get_or_insert_with(Default::default);
        for (dst, src) in [(&mut a.image, t.image), (&mut a.org, t.org)] {
            if let Some(src) = src {
                dst.get_or_insert_with(Vec::new).extend(src);
            }
        }
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics(diags))
    }
}

pub(crate) fn at_origin(o: &Origin, message: String) -> Diagnostic {
    Diagnostic {
        file: o.file.clone(),
        line: o.line,
        col: o.col,
        path: o.path.clone(),
        message,
        help: None,
        source_line: o.source_line.clone(),
        width: o.width.max(1),
    }
}

/// Checks what only the merged config can answer: every uid/gid name is a container, every volume
/// named by a bind or mount exists, and read-only volumes are mounted read-only.
pub fn check_merged(cfg: &Config) -> Result<(), Diagnostics> {
    let ids = IdMap::new(cfg);
    let volumes: std::collections::HashMap<&str, &crate::config::Volume> =
        cfg.volumes.iter().map(|v| (v.name.as_str(), v)).collect();
    let mut diags = dir_name_collisions(cfg);
    for NameUse { name, kind, origin } in &cfg.uses {
        match kind {
            UseKind::Id => {
                if let Err(e) = ids.resolve_name(name) {
                    let help = did_you_mean(name, ids.names());
                    diags.push(at_origin(origin, e).with_help(help));
                }
            }
            UseKind::Volume { writable } => match volumes.get(name.as_str()) {
                None => {
                    let help = did_you_mean(name, cfg.volumes.iter().map(|v| v.name.as_str()))
                        .or_else(|| Some("host paths must be absolute (start with `/`); other sources name a volume".into()));
                    diags.push(
                        at_origin(origin, format!("unknown volume `{name}`")).with_help(help),
                    );
                }
                Some(v) if *writable && v.readonly == Some(true) => {
                    let msg = format!("volume `{name}` is read-only, but attempting to write into container read-write");
                    diags.push(at_origin(origin, msg).with_help(Some("mount it read-only: add `ro` as the bind's options (`vol:/dst:ro`) or before `rw` in the mount options".into())));
                }
                Some(_) => {}
            },
        }
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics(diags))
    }
}

/// A service named as an onboot or onshutdown container's directory (`000-x` for the first
/// onboot `x`): init keys logs, `/var/log/NAME.log` and `baleen-ctl` by that name, so the two
/// would share them.
fn dir_name_collisions(cfg: &Config) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for svc in &cfg.services {
        for (section, list) in [("onboot", &cfg.onboot), ("onshutdown", &cfg.onshutdown)] {
            let Some((i, other)) =
                list.iter().enumerate().find(|(i, o)| format!("{i:03}-{}", o.name) == svc.name)
            else {
                continue;
            };
            let o = &other.origin;
            let msg = format!(
                "service name `{}` is the directory name of {section} container {i} (`{}`, {}:{}:{}): \
                 their logs and baleen-ctl names would be one",
                svc.name, other.name, o.file, o.line, o.col
            );
            let help = "rename the service (a service's directory is its name; an onboot or \
                        onshutdown container's is `NNN-name`)";
            diags.push(at_origin(&svc.origin, msg).with_help(Some(help.into())));
        }
    }
    diags
}

/// Loads every source, merges them left to right and checks the result: what `baleen validate`
/// and `baleen build` do with their FILE arguments. All problems of all files are reported.
pub fn load_all(
    sources: &[Source<'_>],
    resolver: Option<&dyn TemplateResolver>,
) -> Result<Config, Diagnostics> {
    let mut acc = Config::default();
    let mut diags = Vec::new();
    for src in sources {
        match load(*src, resolver) {
            Ok(cfg) => {
                if let Err(Diagnostics(d)) = append(&mut acc, cfg) {
                    diags.extend(d);
                }
            }
            Err(Diagnostics(d)) => diags.extend(d),
        }
    }
    if diags.is_empty() {
        if let Err(Diagnostics(d)) = check_merged(&acc) {
            diags.extend(d);
        }
    }
    if diags.is_empty() {
        Ok(acc)
    } else {
        Err(Diagnostics(diags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src<'a>(name: &'a str, text: &'a str) -> Source<'a> {
        Source { name, text, template_dir: None }
    }

    #[test]
    fn kernel_fields_follow_append_config() {
        let a = "kernel:\n  image: k/a:1\n  cmdline: a\n  tar: kernel.tar\n  ucode: u.cpio\n";
        let b = "kernel:\n  image: \"\"\n  binary: bzImage\n  tar: \"\"\n";
        let cfg = load_all(&[src("a.yml", a), src("b.yml", b)], None).unwrap();
        let k = cfg.kernel.unwrap();
        assert_eq!(k.image.as_deref(), Some("k/a:1"), "an empty later image does not override");
        assert_eq!(k.cmdline.as_deref(), Some("a"));
        assert_eq!(k.binary.as_deref(), Some("bzImage"));
        assert_eq!(k.tar.as_deref(), Some(""), "a present tar overrides, even empty");
        assert_eq!(k.ucode.as_deref(), Some("u.cpio"));
    }

    #[test]
    fn names_resolve_across_files() {
        let a = "onboot:\n  - name: a\n    image: x\n    uid: b\n";
        let b = "services:\n  - name: b\n    image: y\nfiles:\n  - path: f\n    contents: \"\"\n    gid: a\n";
        assert!(load_all(&[src("a.yml", a)], None).is_err(), "b is unknown in a.yml alone");
        let cfg = load_all(&[src("a.yml", a), src("b.yml", b)], None).unwrap();
        let ids = IdMap::new(&cfg);
        assert_eq!((ids.get("a"), ids.get("b")), (Some(100), Some(101)));
    }

    #[test]
    fn volumes_resolve_across_files() {
        let a = "onboot:\n  - name: a\n    image: x\n    binds: [\"v:/v:ro\"]\n";
        let b = "volumes:\n  - name: v\n    readonly: true\n";
        load_all(&[src("a.yml", a), src("b.yml", b)], None).unwrap();
        let err = load_all(&[src("a.yml", a)], None).unwrap_err();
        assert!(err.to_string().contains("unknown volume `v`"), "{err}");
    }

    #[test]
    fn errors_of_every_file_are_reported() {
        let err = load_all(&[src("a.yml", "kernal: {}\n"), src("b.yml", "servces: []\n")], None)
            .unwrap_err();
        assert_eq!(err.0.len(), 2);
        assert_eq!((err.0[0].file.as_str(), err.0[1].file.as_str()), ("a.yml", "b.yml"));
    }

    /// The bug: a service `000-x` and the first onboot `x` (directory `000-x`) shared their logs,
    /// their `finished` entry and every `baleen-ctl` request in init.
    #[test]
    fn a_service_named_as_an_onboot_directory_is_refused() {
        let a = "onboot:\n  - name: x\n    image: i\nonshutdown:\n  - name: y\n    image: i\n";
        let b = "services:\n  - name: 000-x\n    image: i\n  - name: 000-y\n    image: i\n  - name: 001-x\n    image: i\n";
        let err = load_all(&[src("a.yml", a), src("b.yml", b)], None).unwrap_err();
        let got: Vec<String> = err
            .0
            .iter()
            .map(|d| format!("{}:{}:{} {}", d.file, d.line, d.col, d.message))
            .collect();
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(got[0].starts_with("b.yml:2:11 service name `000-x` is the directory name of onboot container 0 (`x`, a.yml:2:11)"), "{got:#?}");
        assert!(
            got[1].starts_with(
                "b.yml:4:11 service name `000-y` is the directory name of onshutdown container 0"
            ),
            "{got:#?}"
        );
    }

    #[test]
    fn later_duplicate_names_take_the_id() {
        let a = "onboot:\n  - name: x\n    image: i\n  - name: x\n    image: i\nservices:\n  - name: y\n    image: i\n";
        let cfg = load_all(&[src("a.yml", a)], None).unwrap();
        let ids = IdMap::new(&cfg);
        assert_eq!((ids.get("x"), ids.get("y")), (Some(101), Some(102)));
        assert_eq!(ids.resolve(&crate::IdRef::Name("root".into())), Ok(0));
        assert!(ids.resolve(&crate::IdRef::Num(-1)).is_err());
    }
}
