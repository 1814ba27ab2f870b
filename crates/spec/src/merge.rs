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
    for svc in &next.services {
        if let Some(first) = acc.services.iter().find(|s| s.name == svc.name) {
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
    let mut diags = Vec::new();
    for NameUse { name, kind, origin } in &cfg.uses {
        match kind {
            UseKind::Id => {
                if let Err(e) = ids.resolve_name(name) {
                    let help = did_you_mean(name, ids.names());
                    diags.push(at_origin(origin, e).with_help(help));
                }
            }
            UseKind::Volume { writable } => match cfg.volumes.iter().find(|v| &v.name == name) {
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
