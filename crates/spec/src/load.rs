//! Loading one file: parse → templates (§1.7) → schema and per-file rules → [`Config`].

use crate::config::Config;
use crate::decode::{index_path, key_path, Decoder};
use crate::diag::{Diagnostic, Diagnostics};
use crate::node::{self, Kind, Node};
use crate::schema;
use std::path::Path;

/// Computes what an `@pkg:PATH` template stands for: the image reference (`docker.io/org/name:tag`)
/// that `baleen pkg show-tag` prints for the package directory. Supplied by the caller, because
/// that needs the filesystem.
/// Its error is shown in the diagnostic with every cause ([`crate::chain`]).
pub trait TemplateResolver {
    fn pkg_tag(&self, dir: &Path) -> Result<String, Box<dyn std::error::Error + Send + Sync>>;
}

/// One configuration document handed over by the caller.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The name to show in messages (`-` for stdin).
    pub name: &'a str,
    pub text: &'a str,
    /// The directory `@pkg:` paths are relative to: the file's directory. `None` for stdin or a
    /// URL, where LinuxKit does not expand templates either.
    pub template_dir: Option<&'a Path>,
}

/// Parses and validates one file. Every problem found is reported, not only the first.
pub fn load(
    src: Source<'_>,
    resolver: Option<&dyn TemplateResolver>,
) -> Result<Config, Diagnostics> {
    let root = match node::parse(src.text) {
        Ok(Some(root)) => root,
        // An empty document is an empty config: the schema has no root type.
        Ok(None) => return Ok(Config::default()),
        Err(e) => {
            let d = Diagnostic::at(
                src.name,
                src.text,
                e.pos,
                &e.path,
                format!("YAML syntax error: {}", e.message),
            );
            return Err(Diagnostics(vec![d]));
        }
    };
    let mut d = Decoder::new(src.name, src.text);
    let mut root = root;
    if let (Some(dir), Some(resolver)) = (src.template_dir, resolver) {
        expand_templates(&mut d, &mut root, "", dir, resolver);
    }
    let cfg = schema::config(&mut d, &root);
    if d.diags.is_empty() {
        Ok(cfg)
    } else {
        Err(Diagnostics(d.diags))
    }
}

/// Replaces every scalar `@pkg:PATH` with the resolved reference, in place.
fn expand_templates(
    d: &mut Decoder,
    node: &mut Node,
    path: &str,
    dir: &Path,
    resolver: &dyn TemplateResolver,
) {
    match &mut node.kind {
        Kind::Scalar { text, .. } => {
            if let Some(pkg) = text.strip_prefix("@pkg:") {
                match resolver.pkg_tag(&dir.join(pkg)) {
                    Ok(tag) => *text = tag,
                    Err(e) => {
                        let e = crate::chain(e.as_ref());
                        d.error(node.pos, path, format!("cannot expand template `{text}`: {e}"))
                    }
                }
            }
        }
        Kind::Seq(items) => {
            for (i, n) in items.iter_mut().enumerate() {
                expand_templates(d, n, &index_path(path, i), dir, resolver);
            }
        }
        Kind::Map(pairs) => {
            for (k, v) in pairs.iter_mut() {
                let key = match &k.kind {
                    Kind::Scalar { text, .. } => text.clone(),
                    _ => String::new(),
                };
                expand_templates(d, v, &key_path(path, &key), dir, resolver);
            }
        }
    }
}

/// Parses an `org.mobyproject.config` label (YAML or JSON) with the same rules as an image entry;
/// `name` and `image` are not allowed in it (§2.1). `what` names the image in messages.
pub fn parse_label(what: &str, text: &str) -> Result<crate::config::ImageConfig, Diagnostics> {
    let name = format!("org.mobyproject.config label of {what}");
    let root = match node::parse(text) {
        Ok(Some(root)) => root,
        Ok(None) => return Ok(Default::default()),
        Err(e) => {
            let message = format!("YAML syntax error: {}", e.message);
            let d = Diagnostic::at(&name, text, e.pos, &e.path, message);
            return Err(Diagnostics(vec![d]));
        }
    };
    let mut d = Decoder::new(&name, text);
    let cfg = schema::label(&mut d, &root);
    match cfg {
        Some(c) if d.diags.is_empty() => Ok(c),
        _ => Err(Diagnostics(d.diags)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_use_the_image_rules_without_name_and_image() {
        let l = parse_label(
            "x:1",
            r#"{"capabilities":["CAP_SYS_ADMIN"],"pid":"host","readonly":true}"#,
        )
        .unwrap();
        assert_eq!(l.capabilities, Some(vec!["CAP_SYS_ADMIN".to_string()]));
        assert_eq!(l.readonly, Some(true));
        let err = parse_label("x:1", r#"{"name":"n","capabilities":["CAP_NOPE"]}"#).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("unknown key `name`"), "{text}");
        assert!(text.contains("unknown capability `CAP_NOPE`"), "{text}");
        assert!(text.contains("org.mobyproject.config label of x:1"), "{text}");
        assert!(parse_label("x:1", "[1, 2]").is_err());
        assert_eq!(parse_label("x:1", "").unwrap(), Default::default());
    }

    struct Fixed;
    impl TemplateResolver for Fixed {
        fn pkg_tag(&self, dir: &Path) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
            match dir.file_name().and_then(|n| n.to_str()) {
                Some("getty") => Ok("docker.io/baleen/getty:0123456789abcdef".into()),
                _ => Err(format!("no package in {}", dir.display()).into()),
            }
        }
    }

    #[test]
    fn templates_expand_only_for_files_on_disk() {
        let text = "services:\n  - name: getty\n    image: \"@pkg:../pkg/getty\"\n";
        let dir = Path::new("/cfg");
        let on_disk = Source { name: "a.yml", text, template_dir: Some(dir) };
        let cfg = load(on_disk, Some(&Fixed)).unwrap();
        assert_eq!(cfg.services[0].image, "docker.io/baleen/getty:0123456789abcdef");
        let stdin = Source { name: "-", text, template_dir: None };
        let err = load(stdin, Some(&Fixed)).unwrap_err();
        assert!(err.0[0].help.as_deref().unwrap_or("").contains("templates"), "{err}");
        let missing = "onboot:\n  - name: x\n    image: \"@pkg:nope\"\n";
        let err =
            load(Source { name: "a.yml", text: missing, template_dir: Some(dir) }, Some(&Fixed))
                .unwrap_err();
        assert_eq!(
            (err.0[0].line, err.0[0].col, err.0[0].path.as_str()),
            (3, 12, "onboot[0].image")
        );
        assert!(err.0[0].message.contains("no package in /cfg/nope"), "{err}");
    }
}
