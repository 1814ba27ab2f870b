//! The package tag: a content hash of everything a build reads, computed without network or git.
//!
//! Inputs, in this order: every file under the package directory (`build.yml`, `packages.lock`,
//! sources, README…) as sorted relative paths with their mode and bytes (symlinks by target), then
//! for each workspace Rust binary the files of its crate and of the workspace crates it depends on
//! by path, the workspace `Cargo.toml` and `Cargo.lock`. LinuxKit hashes the git tree of the
//! directory instead; ours also covers the Rust sources a package compiles and needs no git. The
//! rustc version is not an input: a toolchain change keeps the tag (documented in docs/pkg.md).

use crate::spec::{self, BuildSpec};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Hex digits of the hash kept in the tag.
pub const TAG_HEX_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Spec(spec::Error),
    #[error("hashing {path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("rust package {package:?} of {dir}: no Cargo workspace above the package directory")]
    NoWorkspace { package: String, dir: PathBuf },
    #[error("reading {path}: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("rust package {package:?}: no member of the workspace at {root} has that name")]
    UnknownCrate { package: String, root: PathBuf },
}

impl From<spec::Error> for Error {
    fn from(e: spec::Error) -> Self {
        Error::Spec(e)
    }
}

/// A package's full tag, `<org>/<image>:<hash>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub org: String,
    pub image: String,
    pub hash: String,
}

impl Tag {
    /// `docker.io/<org>/<image>:<hash>`, as LinuxKit's `show-tag --canonical`.
    pub fn canonical(&self) -> String {
        format!("docker.io/{self}")
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}:{}", self.org, self.image, self.hash)
    }
}

/// The tag of the package in `dir`, `<org>/<image>:<16 hex>`. Same inputs, same tag; any byte of
/// any input changed, a new tag. Reads files only.
pub fn show_tag(dir: &Path) -> Result<String, Error> {
    Ok(tag(dir)?.to_string())
}

/// [`show_tag`] as a structured [`Tag`].
pub fn tag(dir: &Path) -> Result<Tag, Error> {
    let spec = BuildSpec::load(dir)?;
    let hash = input_hash(dir, &spec)?;
    Ok(Tag {
        org: spec.org.clone(),
        image: spec.image.clone(),
        hash: hash[..TAG_HEX_LEN].to_owned(),
    })
}

/// The full hex SHA-256 over the package's inputs.
pub fn input_hash(dir: &Path, spec: &BuildSpec) -> Result<String, Error> {
    let mut h = Sha256::new();
    h.update(b"baleen-pkg-tag v1\n");
    hash_tree(&mut h, "pkg", dir)?;
    if !spec.rust.is_empty() {
        let root = workspace_root(dir).ok_or_else(|| Error::NoWorkspace {
            package: spec.rust[0].package.clone(),
            dir: dir.to_owned(),
        })?;
        let ws = Workspace::load(&root)?;
        let mut crates = BTreeSet::new();
        for r in &spec.rust {
            ws.closure(&r.package, &mut crates)?;
        }
        for name in &crates {
            let cdir =
                &ws.members.iter().find(|(n, _)| n == name).expect("closure names members").1;
            hash_tree(&mut h, &format!("crate {name}"), cdir)?;
        }
        for f in ["Cargo.toml", "Cargo.lock"] {
            hash_file(&mut h, &format!("workspace {f}"), &root.join(f))?;
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// Feeds `dir`'s files in sorted path order: `kind path mode sha256(bytes)`. Skips `target/` and
/// dot-directories (`.git`): build output and VCS data are not inputs.
fn hash_tree(h: &mut Sha256, label: &str, dir: &Path) -> Result<(), Error> {
    h.update(format!("tree {label}\n").as_bytes());
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    for rel in files {
        hash_file(h, &rel, &dir.join(&rel))?;
    }
    Ok(())
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), Error> {
    let io = |cause| Error::Io { path: dir.to_owned(), cause };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        let ft = entry.file_type().map_err(|cause| Error::Io { path: path.clone(), cause })?;
        if ft.is_dir() {
            if name.starts_with('.') || name == "target" {
                continue;
            }
            walk(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).expect("walk stays under root");
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

fn hash_file(h: &mut Sha256, rel: &str, path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let io = |cause| Error::Io { path: path.to_owned(), cause };
    let meta = std::fs::symlink_metadata(path).map_err(io)?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path).map_err(io)?;
        h.update(format!("L {rel}\0{}\n", target.display()).as_bytes());
        return Ok(());
    }
    // Only the executable bit is kept: umask differences between checkouts must not change tags.
    let mode = if meta.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 };
    let mut fh = Sha256::new();
    let mut f = std::fs::File::open(path).map_err(io)?;
    std::io::copy(&mut f, &mut fh).map_err(io)?;
    h.update(format!("F {rel}\0{mode:o}\0{}\n", hex::encode(fh.finalize())).as_bytes());
    Ok(())
}

/// The nearest ancestor of `dir` whose `Cargo.toml` has a `[workspace]` table.
pub fn workspace_root(dir: &Path) -> Option<PathBuf> {
    let abs = std::fs::canonicalize(dir).ok()?;
    abs.ancestors()
        .find(|d| {
            std::fs::read_to_string(d.join("Cargo.toml"))
                .ok()
                .and_then(|t| t.parse::<toml::Table>().ok())
                .is_some_and(|t| t.contains_key("workspace"))
        })
        .map(Path::to_path_buf)
}

/// Just enough of a Cargo workspace to find a package's directory and its path dependencies.
struct Workspace {
    root: PathBuf,
    /// (package name, directory)
    members: Vec<(String, PathBuf)>,
    /// `[workspace.dependencies]` names that are path dependencies → package names.
    path_deps: Vec<String>,
}

impl Workspace {
    fn load(root: &Path) -> Result<Workspace, Error> {
        let top = read_toml(&root.join("Cargo.toml"))?;
        let ws = top.get("workspace").and_then(|w| w.as_table());
        let mut members = Vec::new();
        let patterns = ws
            .and_then(|w| w.get("members"))
            .and_then(|m| m.as_array())
            .cloned()
            .unwrap_or_default();
        for p in patterns.iter().filter_map(|p| p.as_str()) {
            // Cargo allows globs; `dir/*` is the only form we expand.
            let dirs: Vec<PathBuf> = match p.strip_suffix("/*") {
                Some(parent) => std::fs::read_dir(root.join(parent))
                    .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
                    .unwrap_or_default(),
                None => vec![root.join(p)],
            };
            for d in dirs {
                let manifest = d.join("Cargo.toml");
                if !manifest.is_file() {
                    continue;
                }
                let t = read_toml(&manifest)?;
                if let Some(name) =
                    t.get("package").and_then(|p| p.get("name")).and_then(|n| n.as_str())
                {
                    members.push((name.to_owned(), d));
                }
            }
        }
        let path_deps = ws
            .and_then(|w| w.get("dependencies"))
            .and_then(|d| d.as_table())
            .map(|d| {
                d.iter()
                    .filter(|(_, v)| v.get("path").is_some())
                    .map(|(k, v)| v.get("package").and_then(|p| p.as_str()).unwrap_or(k).to_owned())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Workspace { root: root.to_owned(), members, path_deps })
    }

    /// Adds `package` and the workspace members it depends on (normal and build dependencies) to
    /// `out`.
    fn closure(&self, package: &str, out: &mut BTreeSet<String>) -> Result<(), Error> {
        if out.contains(package) {
            return Ok(());
        }
        let dir =
            self.members.iter().find(|(n, _)| n == package).map(|(_, d)| d.clone()).ok_or_else(
                || Error::UnknownCrate { package: package.to_owned(), root: self.root.clone() },
            )?;
        out.insert(package.to_owned());
        let t = read_toml(&dir.join("Cargo.toml"))?;
        for table in ["dependencies", "build-dependencies"] {
            let Some(deps) = t.get(table).and_then(|d| d.as_table()) else { continue };
            for (key, v) in deps {
                let name = v.get("package").and_then(|p| p.as_str()).unwrap_or(key);
                let is_path = v.get("path").is_some()
                    || (v.get("workspace").and_then(|w| w.as_bool()) == Some(true)
                        && self.path_deps.iter().any(|d| d == name));
                if is_path && self.members.iter().any(|(n, _)| n == name) {
                    self.closure(name, out)?;
                }
            }
        }
        Ok(())
    }
}

fn read_toml(path: &Path) -> Result<toml::Table, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|cause| Error::Io { path: path.to_owned(), cause })?;
    text.parse::<toml::Table>()
        .map_err(|e| Error::Toml { path: path.to_owned(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(dir: &Path, yml: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("build.yml"), yml).unwrap();
    }

    #[test]
    fn same_inputs_same_tag_and_one_byte_changes_it() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("getty");
        pkg(&d, "image: getty\nfiles:\n- {path: /etc/issue, source: issue}\n");
        std::fs::write(d.join("issue"), "welcome\n").unwrap();
        let a = show_tag(&d).unwrap();
        assert!(a.starts_with("baleen/getty:"), "{a}");
        assert_eq!(a.len(), "baleen/getty:".len() + TAG_HEX_LEN);
        assert_eq!(show_tag(&d).unwrap(), a, "same inputs, same tag");

        // A copy elsewhere hashes the same: absolute paths are not inputs.
        let d2 = t.path().join("elsewhere/getty");
        pkg(&d2, "image: getty\nfiles:\n- {path: /etc/issue, source: issue}\n");
        std::fs::write(d2.join("issue"), "welcome\n").unwrap();
        assert_eq!(show_tag(&d2).unwrap(), a);

        std::fs::write(d.join("issue"), "welcomE\n").unwrap();
        let b = show_tag(&d).unwrap();
        assert_ne!(a, b, "one changed byte of a file must change the tag");

        std::fs::write(d.join("packages.lock"), "").unwrap();
        let c = show_tag(&d).unwrap();
        assert_ne!(b, c, "a new file must change the tag");

        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("issue"), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_ne!(show_tag(&d).unwrap(), c, "the executable bit is an input");
    }

    #[test]
    fn org_and_canonical() {
        let t = tempfile::tempdir().unwrap();
        pkg(t.path(), "image: sshd\norg: example\n");
        let tag = tag(t.path()).unwrap();
        assert_eq!(tag.org, "example");
        assert!(tag.canonical().starts_with("docker.io/example/sshd:"));
    }

    #[test]
    fn rust_sources_are_inputs() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::write(
            root.join("Cargo.toml"),
            "[workspace]\nmembers = [\"crates/*\"]\n[workspace.dependencies]\nlib = { path = \"crates/lib\" }\n",
        )
        .unwrap();
        std::fs::write(root.join("Cargo.lock"), "").unwrap();
        for (name, deps) in
            [("app", "[dependencies]\nlib.workspace = true\n"), ("lib", ""), ("other", "")]
        {
            let d = root.join("crates").join(name);
            std::fs::create_dir_all(d.join("src")).unwrap();
            std::fs::write(d.join("Cargo.toml"), format!("[package]\nname = \"{name}\"\n{deps}"))
                .unwrap();
            std::fs::write(d.join("src/lib.rs"), "").unwrap();
        }
        let p = root.join("pkg/app");
        pkg(&p, "image: app\nrust:\n- {package: app, path: /app}\n");
        let a = show_tag(&p).unwrap();
        std::fs::write(root.join("crates/other/src/lib.rs"), "// unrelated").unwrap();
        assert_eq!(show_tag(&p).unwrap(), a, "a crate the binary does not use is not an input");
        std::fs::write(root.join("crates/lib/src/lib.rs"), "// changed").unwrap();
        assert_ne!(show_tag(&p).unwrap(), a, "a path dependency's source is an input");

        pkg(&p, "image: app\nrust:\n- {package: nope, path: /app}\n");
        let err = show_tag(&p).unwrap_err().to_string();
        assert!(err.contains("\"nope\""), "{err}");
    }

    #[test]
    fn missing_build_yml_names_the_file() {
        let t = tempfile::tempdir().unwrap();
        let err = show_tag(t.path()).unwrap_err().to_string();
        assert!(err.contains("build.yml"), "{err}");
    }
}
