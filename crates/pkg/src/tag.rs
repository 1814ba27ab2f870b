//! The package tag: a content hash of everything a build reads, computed without network or git.
//!
//! Inputs, in this order: every file under the package directory (`build.yml`, `packages.lock`,
//! sources, README…) as sorted relative paths with their mode and bytes (symlinks by target), then
//! for the workspace Rust binaries the digest of their sources ([`rust_inputs::digest`]: the files
//! of their crates and of the workspace crates they depend on by path, the workspace `Cargo.toml`
//! and `Cargo.lock`), or outside a workspace the digest recorded with the prebuilt binary. LinuxKit hashes the git tree of the
//! directory instead; ours also covers the Rust sources a package compiles and needs no git. The
//! rustc version is not an input: a toolchain change keeps the tag (documented in docs/pkg.md).

use crate::rust_inputs::{self, hash_tree};
use crate::spec::{self, BuildSpec};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub use crate::rust_inputs::workspace_root;

/// Hex digits of the hash kept in the tag.
pub const TAG_HEX_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum TagError {
    #[error(transparent)]
    Spec(spec::SpecError),
    #[error("package {dir}: hashing its files")]
    Files { dir: PathBuf, source: rust_inputs::RustInputsError },
    #[error("package {dir}: hashing the Rust sources of {packages}")]
    Sources { dir: PathBuf, packages: String, source: rust_inputs::RustInputsError },
    #[error("rust package {package:?} of {dir}: no Cargo workspace above the package directory, and this baleen embeds no prebuilt {package}")]
    NoWorkspace { package: String, dir: PathBuf },
}

impl From<spec::SpecError> for TagError {
    fn from(e: spec::SpecError) -> Self {
        TagError::Spec(e)
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
pub fn show_tag(dir: &Path) -> Result<String, TagError> {
    Ok(tag(dir)?.to_string())
}

/// [`show_tag`] as a structured [`Tag`].
pub fn tag(dir: &Path) -> Result<Tag, TagError> {
    let spec = BuildSpec::load(dir)?;
    let hash = input_hash(dir, &spec)?;
    Ok(Tag {
        org: spec.org.clone(),
        image: spec.image.clone(),
        hash: hash[..TAG_HEX_LEN].to_owned(),
    })
}

/// The full hex SHA-256 over the package's inputs.
pub fn input_hash(dir: &Path, spec: &BuildSpec) -> Result<String, TagError> {
    let mut h = Sha256::new();
    h.update(b"baleen-pkg-tag v1\n");
    hash_tree(&mut h, "pkg", dir)
        .map_err(|source| TagError::Files { dir: dir.to_owned(), source })?;
    if !spec.rust.is_empty() {
        h.update(format!("rust {}\n", rust_digest(dir, spec)?).as_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

/// The digest of the sources of `spec`'s Rust binaries: from the workspace above `dir`, else,
/// outside any workspace, the one recorded with the prebuilt binary the program embeds (which
/// the build then uses), so a copy of `pkg/init` gets the tag of the sources its `/init` came
/// from.
fn rust_digest(dir: &Path, spec: &BuildSpec) -> Result<String, TagError> {
    let mut packages: Vec<&str> = spec.rust.iter().map(|r| r.package.as_str()).collect();
    packages.sort_unstable();
    packages.dedup();
    match workspace_root(dir) {
        Some(root) => rust_inputs::digest(&root, &packages).map_err(|source| TagError::Sources {
            dir: dir.to_owned(),
            packages: packages.join(", "),
            source,
        }),
        None => match packages.as_slice() {
            [one] => crate::prebuilt::inputs_of(one).map(str::to_owned),
            _ => None,
        }
        .ok_or_else(|| TagError::NoWorkspace { package: packages.join(", "), dir: dir.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baleen_testkit::Chain;

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
        let err = show_tag(&p).unwrap_err();
        let source = std::error::Error::source(&err).map(|c| c.to_string()).unwrap_or_default();
        assert!(err.chain().contains("sources of nope"), "{err}");
        assert!(source.contains("\"nope\"") && source.contains("no member"), "{source}");
    }

    #[test]
    fn missing_build_yml_names_the_file() {
        let t = tempfile::tempdir().unwrap();
        let err = show_tag(t.path()).unwrap_err().chain();
        assert!(err.contains("build.yml"), "{err}");
    }
}
