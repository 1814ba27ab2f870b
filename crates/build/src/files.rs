//! The `files` section, resolved against the host: `source` files opened (a leading `~/` is the
//! builder's home; other relative paths are relative to the working directory, as LinuxKit),
//! absent `optional` sources skipped, `metadata` rendered from the merged config, and user names
//! turned into ids. The tree crate then applies LinuxKit's layout rules.

use baleen_spec::{Config, File, IdMap, IdRef};
use baleen_tree::{FileData, FileItem, FileKind};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("files[{index}] {path:?}: reading source {source_path}: {error}")]
    Source { index: usize, path: String, source_path: PathBuf, error: std::io::Error },
    #[error("files[{index}] {path:?}: {message}")]
    Invalid { index: usize, path: String, message: String },
}

/// Turns the config's `files` into tree items, in order.
pub fn resolve(cfg: &Config, ids: &IdMap) -> Result<Vec<FileItem>, FilesError> {
    let mut items = Vec::with_capacity(cfg.files.len());
    for (index, f) in cfg.files.iter().enumerate() {
        let invalid =
            |message: String| FilesError::Invalid { index, path: f.path.clone(), message };
        let id = |r: &Option<IdRef>| -> Result<u64, FilesError> {
            r.as_ref().map_or(Ok(0), |r| ids.resolve(r).map(u64::from).map_err(invalid))
        };
        let (uid, gid) = (id(&f.uid)?, id(&f.gid)?);
        let Some(kind) = kind_of(index, f, cfg)? else { continue };
        items.push(FileItem {
            index,
            path: f.path.clone(),
            kind,
            mode: f.mode.as_ref().map(|_| f.mode_bits()),
            uid,
            gid,
        });
    }
    Ok(items)
}

/// `None` when an optional source is missing.
fn kind_of(index: usize, f: &File, cfg: &Config) -> Result<Option<FileKind>, FilesError> {
    if f.directory == Some(true) {
        return Ok(Some(FileKind::Directory));
    }
    if let Some(target) = &f.symlink {
        return Ok(Some(FileKind::Symlink(target.clone())));
    }
    if let Some(contents) = &f.contents {
        return Ok(Some(FileKind::Contents(FileData::Bytes(contents.clone().into_bytes()))));
    }
    if let Some(kind) = &f.metadata {
        let bytes = render_metadata(cfg, kind).map_err(|message| FilesError::Invalid {
            index,
            path: f.path.clone(),
            message,
        })?;
        return Ok(Some(FileKind::Contents(FileData::Bytes(bytes))));
    }
    if let Some(source) = &f.source {
        let source_path = expand_home(source);
        let opened = std::fs::File::open(&source_path).and_then(|file| {
            let meta = file.metadata()?;
            if meta.is_dir() {
                return Err(std::io::Error::other("is a directory"));
            }
            Ok((file, meta.len()))
        });
        return match opened {
            Ok((file, size)) => {
                Ok(Some(FileKind::Contents(FileData::Stream { size, reader: Box::new(file) })))
            }
            Err(_) if f.optional == Some(true) => Ok(None),
            Err(error) => {
                Err(FilesError::Source { index, path: f.path.clone(), source_path, error })
            }
        };
    }
    Err(FilesError::Invalid {
        index,
        path: f.path.clone(),
        message:
            "contents of file not specified (give contents, source, metadata, symlink or directory)"
                .into(),
    })
}

/// The merged config, image references expanded, as LinuxKit's `metadata: yaml|json` writes it
/// (byte for byte: crates/spec renders Go's encoders).
fn render_metadata(cfg: &Config, kind: &str) -> Result<Vec<u8>, String> {
    let text = match kind {
        "yaml" => baleen_spec::metadata::yaml(cfg),
        "json" => baleen_spec::metadata::json(cfg),
        other => return Err(format!("unsupported metadata type `{other}` (use yaml or json)")),
    };
    text.map(String::into_bytes).map_err(|e| format!("rendering metadata as {kind}: {e}"))
}

/// `~/rest` → `$HOME/rest`, as LinuxKit expands `files: source` and `--cache`; other paths as
/// they are.
pub fn expand_home(source: &str) -> PathBuf {
    match (source.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(files: Vec<File>) -> Config {
        Config { files, ..Config::default() }
    }

    #[test]
    fn missing_optional_source_is_skipped_and_required_one_is_an_error() {
        let missing = "/nonexistent/baleen-test/key.pub".to_string();
        let optional = File {
            path: "a".into(),
            source: Some(missing.clone()),
            optional: Some(true),
            ..File::default()
        };
        let c = cfg(vec![optional]);
        assert!(resolve(&c, &IdMap::new(&c)).unwrap().is_empty());

        let required = File { path: "b".into(), source: Some(missing), ..File::default() };
        let c = cfg(vec![required]);
        let err = resolve(&c, &IdMap::new(&c)).unwrap_err().to_string();
        assert!(
            err.contains("files[0]") && err.contains("/nonexistent/baleen-test/key.pub"),
            "{err}"
        );
    }

    #[test]
    fn source_is_streamed_with_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("motd");
        std::fs::write(&src, b"hello\n").unwrap();
        let f = File {
            path: "etc/motd".into(),
            source: Some(src.display().to_string()),
            mode: Some("0644".into()),
            ..File::default()
        };
        let c = cfg(vec![f]);
        let items = resolve(&c, &IdMap::new(&c)).unwrap();
        assert_eq!(items[0].mode, Some(0o644));
        match &items[0].kind {
            FileKind::Contents(FileData::Stream { size, .. }) => assert_eq!(*size, 6),
            other => panic!("expected a stream, got {other:?}"),
        }
    }

    #[test]
    fn metadata_json_is_the_expanded_config() {
        let f = File {
            path: "etc/linuxkit-config".into(),
            metadata: Some("json".into()),
            ..File::default()
        };
        let c = Config { init: vec!["alpine".into()], files: vec![f], ..Config::default() };
        let items = resolve(&c, &IdMap::new(&c)).unwrap();
        let FileKind::Contents(FileData::Bytes(b)) = &items[0].kind else { panic!() };
        let v: serde_json::Value = serde_json::from_slice(b).unwrap();
        assert_eq!(v["init"][0], "docker.io/library/alpine");
    }
}
