//! The Rust sources a package's `rust:` binaries are built from, as one digest.
//!
//! A workspace binary's inputs are the files of its crate and of the workspace crates it
//! depends on by path (normal and build dependencies), plus the workspace `Cargo.toml` and
//! `Cargo.lock`; [`digest`] hashes them in a fixed order. The package tag folds this digest in,
//! and the `baleen` binary's build script (`crates/cli/build.rs`, which compiles this file as
//! a module of its own) records it next to the `baleen-init` it embeds, so a build without the
//! sources or without cargo can tell whether that embedded binary is the one these sources
//! make. Hence this file uses only `std`, `sha2`, `hex`, `toml` and `thiserror`.

use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RustInputsError {
    #[error("hashing {path}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("reading {path}: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("rust package {package:?}: no member of the workspace at {root} has that name")]
    UnknownCrate { package: String, root: PathBuf },
}

/// The SHA-256 (hex) of the sources the workspace at `root` builds `packages` from.
pub fn digest(root: &Path, packages: &[&str]) -> Result<String, RustInputsError> {
    let ws = Workspace::load(root)?;
    let mut h = Sha256::new();
    h.update(b"baleen rust inputs v1\n");
    for (name, dir) in ws.crates(packages)? {
        hash_tree(&mut h, &format!("crate {name}"), &dir)?;
    }
    for f in ["Cargo.toml", "Cargo.lock"] {
        hash_file(&mut h, &format!("workspace {f}"), &root.join(f))?;
    }
    Ok(hex::encode(h.finalize()))
}

/// The files and directories [`digest`] reads, for a build script's `rerun-if-changed`.
pub fn input_paths(root: &Path, packages: &[&str]) -> Result<Vec<PathBuf>, RustInputsError> {
    let ws = Workspace::load(root)?;
    let mut paths: Vec<PathBuf> = ws.crates(packages)?.into_iter().map(|(_, d)| d).collect();
    paths.extend(["Cargo.toml", "Cargo.lock"].map(|f| root.join(f)));
    Ok(paths)
}

/// Feeds `dir`'s files in sorted path order: `kind path mode sha256(bytes)`. Skips `target/` and
/// dot-directories (`.git`): build output and VCS data are not inputs.
pub fn hash_tree(h: &mut Sha256, label: &str, dir: &Path) -> Result<(), RustInputsError> {
    h.update(format!("tree {label}\n").as_bytes());
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    for rel in files {
        hash_file(h, &rel, &dir.join(&rel))?;
    }
    Ok(())
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), RustInputsError> {
    let io = |source| RustInputsError::Io { path: dir.to_owned(), source };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        let ft = entry
            .file_type()
            .map_err(|source| RustInputsError::Io { path: path.clone(), source })?;
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

fn hash_file(h: &mut Sha256, rel: &str, path: &Path) -> Result<(), RustInputsError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| RustInputsError::Io { path: path.to_owned(), source };
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
    /// `packages` and the workspace crates they depend on by path, by name, with their
    /// directories.
    fn crates(&self, packages: &[&str]) -> Result<Vec<(String, PathBuf)>, RustInputsError> {
        let mut names = BTreeSet::new();
        for p in packages {
            self.closure(p, &mut names)?;
        }
        Ok(names
            .into_iter()
            .filter_map(|n| {
                let dir = self.members.iter().find(|(m, _)| *m == n)?.1.clone();
                Some((n, dir))
            })
            .collect())
    }

    fn load(root: &Path) -> Result<Workspace, RustInputsError> {
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

    /// The package names of member `package`'s normal dependencies: `[dependencies]` and
    /// every `[target.<cfg>.dependencies]`, renames (`package = …`) followed.
    fn normal_dependencies(&self, package: &str) -> Result<Vec<String>, RustInputsError> {
        let dir =
            self.members.iter().find(|(n, _)| n == package).map(|(_, d)| d.clone()).ok_or_else(
                || RustInputsError::UnknownCrate {
                    package: package.to_owned(),
                    root: self.root.clone(),
                },
            )?;
        let t = read_toml(&dir.join("Cargo.toml"))?;
        let mut tables: Vec<&toml::Table> =
            t.get("dependencies").and_then(|d| d.as_table()).into_iter().collect();
        for (_, target) in t.get("target").and_then(|t| t.as_table()).into_iter().flatten() {
            tables.extend(target.get("dependencies").and_then(|d| d.as_table()));
        }
        Ok(tables
            .into_iter()
            .flatten()
            .map(|(key, v)| v.get("package").and_then(|p| p.as_str()).unwrap_or(key).to_owned())
            .collect())
    }

    /// Adds `package` and the workspace members it depends on (normal and build dependencies) to
    /// `out`.
    fn closure(&self, package: &str, out: &mut BTreeSet<String>) -> Result<(), RustInputsError> {
        if out.contains(package) {
            return Ok(());
        }
        let dir =
            self.members.iter().find(|(n, _)| n == package).map(|(_, d)| d.clone()).ok_or_else(
                || RustInputsError::UnknownCrate {
                    package: package.to_owned(),
                    root: self.root.clone(),
                },
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

fn read_toml(path: &Path) -> Result<toml::Table, RustInputsError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| RustInputsError::Io { path: path.to_owned(), source })?;
    text.parse::<toml::Table>()
        .map_err(|e| RustInputsError::Toml { path: path.to_owned(), message: e.to_string() })
}

/// One crate of `Cargo.lock`: name, version, `source` (empty for a workspace crate) and
/// `checksum` (SHA-256 of the `.crate`, empty for a workspace crate).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LockedCrate {
    pub name: String,
    pub version: String,
    pub source: String,
    pub checksum: String,
}

/// The version of workspace member `package` and the crates of `Cargo.lock` it is built from:
/// from the member, its normal dependencies (`[dependencies]` and `[target.*.dependencies]`,
/// not dev- or build-dependencies: they are not part of the binary), and from there everything
/// Cargo.lock lists (for crates outside the workspace Cargo.lock does not say which kind a
/// dependency is, so their build scripts' and proc macros' crates are included). Sorted by name
/// and version; the member itself is not in the list.
pub fn locked_crates(
    root: &Path,
    package: &str,
) -> Result<(String, Vec<LockedCrate>), RustInputsError> {
    let ws = Workspace::load(root)?;
    let lock_path = root.join("Cargo.lock");
    let lock = read_toml(&lock_path)?;
    let entries: Vec<&toml::Table> = lock
        .get("package")
        .and_then(|p| p.as_array())
        .map(|a| a.iter().filter_map(|e| e.as_table()).collect())
        .unwrap_or_default();
    let field =
        |e: &toml::Table, k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    // `name`, `name version` or `name version (source)`, as Cargo.lock writes a dependency.
    let find = |dep: &str| -> Option<&toml::Table> {
        let mut w = dep.split_whitespace();
        let (name, version) = (w.next()?, w.next());
        entries
            .iter()
            .copied()
            .find(|e| field(e, "name") == name && version.is_none_or(|v| field(e, "version") == v))
    };
    let member = find(package).ok_or_else(|| RustInputsError::Toml {
        path: lock_path.clone(),
        message: format!("no package {package:?} in it"),
    })?;
    let version = field(member, "version");
    let normal = ws.normal_dependencies(package)?;
    let deps_of = |e: &toml::Table| -> Vec<String> {
        e.get("dependencies")
            .and_then(|d| d.as_array())
            .map(|a| a.iter().filter_map(|d| d.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let mut queue: Vec<String> = deps_of(member)
        .into_iter()
        .filter(|d| normal.iter().any(|n| d.split_whitespace().next() == Some(n.as_str())))
        .collect();
    let mut seen: BTreeSet<LockedCrate> = BTreeSet::new();
    while let Some(dep) = queue.pop() {
        let Some(e) = find(&dep) else { continue };
        let c = LockedCrate {
            name: field(e, "name"),
            version: field(e, "version"),
            source: field(e, "source"),
            checksum: field(e, "checksum"),
        };
        if seen.contains(&c) {
            continue;
        }
        // A workspace member reached through a path dependency: its own normal dependencies.
        let next = if c.source.is_empty() {
            let normal = ws.normal_dependencies(&c.name)?;
            deps_of(e)
                .into_iter()
                .filter(|d| normal.iter().any(|n| d.split_whitespace().next() == Some(n.as_str())))
                .collect()
        } else {
            deps_of(e)
        };
        queue.extend(next);
        seen.insert(c);
    }
    Ok((version, seen.into_iter().collect()))
}

/// [`locked_crates`] as text, one `name version source checksum` line each (`-` for an empty
/// field), the version first: what the build script records next to an embedded binary.
pub fn locked_crates_text(root: &Path, package: &str) -> Result<String, RustInputsError> {
    let (version, crates) = locked_crates(root, package)?;
    let mut s = format!("{version}\n");
    for c in crates {
        let or_dash = |f: &str| if f.is_empty() { "-".to_owned() } else { f.to_owned() };
        s.push_str(&format!(
            "{} {} {} {}\n",
            c.name,
            c.version,
            or_dash(&c.source),
            or_dash(&c.checksum)
        ));
    }
    Ok(s)
}

/// Parses [`locked_crates_text`].
pub fn parse_locked_crates(text: &str) -> (String, Vec<LockedCrate>) {
    let mut lines = text.lines();
    let version = lines.next().unwrap_or_default().to_owned();
    let undash = |f: &str| if f == "-" { String::new() } else { f.to_owned() };
    let crates = lines
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                [n, v, s, c] => Some(LockedCrate {
                    name: (*n).to_owned(),
                    version: (*v).to_owned(),
                    source: undash(s),
                    checksum: undash(c),
                }),
                _ => None,
            }
        })
        .collect();
    (version, crates)
}
