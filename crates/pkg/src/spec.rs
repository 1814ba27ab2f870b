//! `build.yml`: the declarative description of one component image.
//!
//! Strict: an unknown key is an error with the file, line and column. The format is ours (LinuxKit's
//! build.yml names a Dockerfile; ours names Debian packages, files and workspace binaries) and is
//! documented in `docs/pkg.md`.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file name a package directory must hold.
pub const BUILD_YML: &str = "build.yml";

/// Paths dropped from Debian packages when `drop` is not given: documentation, manuals, locales.
pub const DEFAULT_DROP: &[&str] = &[
    "usr/share/doc",
    "usr/share/doc/**",
    "usr/share/man",
    "usr/share/man/**",
    "usr/share/info",
    "usr/share/info/**",
    "usr/share/locale",
    "usr/share/locale/**",
    "usr/share/lintian",
    "usr/share/lintian/**",
    "usr/share/bug",
    "usr/share/bug/**",
];

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("reading {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {what}")]
    Invalid { path: PathBuf, what: String },
    #[error("{dir} is a LinuxKit package (a Dockerfile, and no debian, files, symlinks, rust or kernel in its build.yml): baleen does not run Dockerfiles, so it would build an empty image. Build it with `linuxkit pkg build` (or docker) and name the image in the YAML, or describe its content in build.yml (docs/pkg.md)")]
    DockerfilePackage { dir: PathBuf },
}

/// A parsed `build.yml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BuildSpec {
    /// Image name; the tag is `<org>/<image>:<hash>`.
    pub image: String,
    /// Organisation (registry namespace), default `baleen`.
    #[serde(default = "default_org")]
    pub org: String,
    /// Debian architectures to build for, default `[amd64]`.
    #[serde(default = "default_arches")]
    pub arches: Vec<String>,
    /// Debian packages whose dependency closure is unpacked into the image.
    #[serde(default)]
    pub debian: Option<Debian>,
    /// Files, directories and symlinks added on top of the packages.
    #[serde(default)]
    pub files: Vec<FileEntry>,
    /// Many symlinks to one target (busybox applets, …).
    #[serde(default)]
    pub symlinks: Vec<Symlinks>,
    /// Workspace Rust binaries built with cargo and added to the image.
    #[serde(default)]
    pub rust: Vec<RustBinary>,
    /// Globs of paths (relative to the image root) removed from the Debian layer. `None` means
    /// [`DEFAULT_DROP`]; an empty list drops nothing.
    #[serde(default)]
    pub drop: Option<Vec<String>>,
    /// The image config.
    #[serde(default)]
    pub config: ImageConfig,
    /// The `org.mobyproject.config` label: LinuxKit's runtime defaults for the component.
    #[serde(default)]
    pub label: Option<serde_json::Map<String, serde_json::Value>>,
    /// Extra image labels, verbatim.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// A kernel component: the image holds `kernel` and `kernel.tar` instead of the packages.
    #[serde(default)]
    pub kernel: Option<KernelSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Debian {
    /// Package names; their `Depends`/`Pre-Depends` closure is installed.
    #[serde(default)]
    pub packages: Vec<String>,
    /// More package names for one architecture only (a kernel is `linux-image-cloud-amd64`
    /// on amd64, `linux-image-cloud-arm64` on arm64), by Debian architecture.
    #[serde(default)]
    pub arch_packages: std::collections::BTreeMap<String, Vec<String>>,
    /// Packages left out of the closure even when something depends on them.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Archive components read besides `main` (`non-free-firmware`: Debian's firmware, such as
    /// `raspi-firmware`). Default: `main` only.
    #[serde(default)]
    pub components: Vec<String>,
    /// Suite, default `bookworm`.
    #[serde(default)]
    pub suite: Option<String>,
    /// Archive URL, default: the host's apt sources, else `http://deb.debian.org/debian`.
    #[serde(default)]
    pub mirror: Option<String>,
    /// Refuse an InRelease past its `Valid-Until` (default true; apt's `Check-Valid-Until`).
    #[serde(default = "default_true")]
    pub check_valid_until: bool,
    /// Also resolve from `<suite>-security` (Debian's security updates), the newest version of
    /// either suite winning, as apt. Default false: turning it on re-resolves (`pkg lock`).
    #[serde(default)]
    pub security: bool,
    /// Archive of the security suite, default: the host's apt sources, else
    /// `http://deb.debian.org/debian-security`.
    #[serde(default)]
    pub security_mirror: Option<String>,
    /// A binary OpenPGP keyring (`gpg --export`) in the package directory whose keys are trusted
    /// instead of Debian's for the main suite's InRelease: a private mirror (apt's `signed-by`).
    #[serde(default)]
    pub keyring: Option<String>,
}

impl Debian {
    /// The packages asked for on `arch`: `packages`, then `arch-packages` of that architecture.
    pub fn for_arch(&self, arch: &str) -> Vec<String> {
        let extra = self.arch_packages.get(arch).into_iter().flatten();
        self.packages.iter().chain(extra).cloned().collect()
    }
}

fn default_true() -> bool {
    true
}

/// One entry added to the image. Exactly one of `source`, `contents`, `directory`, `symlink`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileEntry {
    /// Path inside the image.
    pub path: String,
    /// A file of the package directory (relative to it, must stay inside it).
    #[serde(default)]
    pub source: Option<String>,
    /// Inline contents.
    #[serde(default)]
    pub contents: Option<String>,
    /// Create a directory.
    #[serde(default)]
    pub directory: bool,
    /// Create a symlink with this target.
    #[serde(default)]
    pub symlink: Option<String>,
    /// Octal mode, e.g. `"0755"`; default 0644 for files, 0755 for directories.
    #[serde(default)]
    pub mode: Option<Mode>,
}

/// An octal mode, written as a string (`"0755"`) or a YAML integer (read as octal digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            N(u64),
        }
        let digits = match Raw::deserialize(d)? {
            Raw::S(s) => s,
            Raw::N(n) => n.to_string(),
        };
        let trimmed = digits.trim_start_matches("0o");
        u32::from_str_radix(trimmed, 8).ok().filter(|m| *m <= 0o7777).map(Mode).ok_or_else(|| {
            serde::de::Error::custom(format!("mode {digits:?} is not an octal mode"))
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Symlinks {
    /// What every link points at.
    pub target: String,
    /// The links, paths inside the image.
    pub paths: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RustBinary {
    /// The workspace package (`cargo build -p`).
    pub package: String,
    /// The binary target, default the package name.
    #[serde(default)]
    pub bin: Option<String>,
    /// Where it goes in the image.
    pub path: String,
    /// Link statically for musl (default true).
    #[serde(default = "yes", rename = "static")]
    pub static_: bool,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KernelSpec {
    /// Modules (names as `modprobe` takes them, `-` or `_`) put in `kernel.tar`, with their
    /// dependencies. Empty: every module.
    #[serde(default)]
    pub modules: Vec<String>,
    /// Device trees put in the image under `dtbs/`, by their paths below Debian's
    /// `/usr/lib/linux-image-<release>/` (`broadcom/bcm2711-rpi-4-b.dtb`, which `rpi4` reads).
    #[serde(default)]
    pub dtbs: Vec<String>,
}

fn default_org() -> String {
    "baleen".to_owned()
}
fn default_arches() -> Vec<String> {
    vec!["amd64".to_owned()]
}
fn yes() -> bool {
    true
}

impl BuildSpec {
    /// Reads and validates `<dir>/build.yml`. A LinuxKit package (a Dockerfile beside a
    /// build.yml that declares no content) is refused: built as ours, it would be an empty image.
    pub fn load(dir: &Path) -> Result<BuildSpec, SpecError> {
        let path = dir.join(BUILD_YML);
        let text = std::fs::read_to_string(&path)
            .map_err(|source| SpecError::Read { path: path.clone(), source })?;
        let dockerfile = dir.join("Dockerfile").is_file();
        let spec = Self::parse(&text, &path).map_err(|e| match e {
            // LinuxKit's own keys (network, buildArgs, dockerfile…) are unknown here: say why.
            SpecError::Parse { path, message } if dockerfile => SpecError::Parse {
                path,
                message: format!(
                    "{message}\n(the directory holds a Dockerfile: LinuxKit packages are not \
                     supported, see docs/pkg.md)"
                ),
            },
            e => e,
        })?;
        if dockerfile && !spec.has_content() {
            return Err(SpecError::DockerfilePackage { dir: dir.to_owned() });
        }
        Ok(spec)
    }

    /// Whether build.yml puts anything into the image (else only config and labels).
    fn has_content(&self) -> bool {
        self.debian.is_some()
            || !self.files.is_empty()
            || !self.symlinks.is_empty()
            || !self.rust.is_empty()
            || self.kernel.is_some()
    }

    /// Parses and validates build.yml text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<BuildSpec, SpecError> {
        let spec: BuildSpec = serde_saphyr::from_str(text).map_err(|e| {
            // serde-saphyr's snippet names the file `<input>` and starts with its own
            // "error: "; the CLI prints that prefix already.
            let message = e.to_string().replace("<input>", &path.display().to_string());
            let message = message.trim_start_matches("error: ").to_owned();
            SpecError::Parse { path: path.to_owned(), message }
        })?;
        spec.validate(path)?;
        Ok(spec)
    }

    fn validate(&self, path: &Path) -> Result<(), SpecError> {
        let invalid = |what: String| Err(SpecError::Invalid { path: path.to_owned(), what });
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
        };
        if !name_ok(&self.image) {
            return invalid(format!(
                "image {:?}: lower-case letters, digits, '.', '_', '-', '/' only",
                self.image
            ));
        }
        if !name_ok(&self.org) {
            return invalid(format!(
                "org {:?}: lower-case letters, digits, '.', '_', '-', '/' only",
                self.org
            ));
        }
        for a in &self.arches {
            if !matches!(a.as_str(), "amd64" | "arm64" | "riscv64") {
                return invalid(format!("arches: {a:?} is not one of amd64, arm64, riscv64"));
            }
        }
        for (i, f) in self.files.iter().enumerate() {
            let kinds =
                [f.source.is_some(), f.contents.is_some(), f.directory, f.symlink.is_some()];
            if kinds.iter().filter(|k| **k).count() != 1 {
                return invalid(format!(
                    "files[{i}] ({}): give exactly one of source, contents, directory, symlink",
                    f.path
                ));
            }
            if let Some(src) = &f.source {
                if !stays_inside(src) {
                    return invalid(format!(
                        "files[{i}] ({}): source {src:?} must stay inside the package directory",
                        f.path
                    ));
                }
            }
            if image_path(&f.path).is_none() {
                return invalid(format!("files[{i}]: path {:?} leaves the image root", f.path));
            }
        }
        for (i, s) in self.symlinks.iter().enumerate() {
            if let Some(p) = s.paths.iter().find(|p| image_path(p).is_none()) {
                return invalid(format!("symlinks[{i}]: path {p:?} leaves the image root"));
            }
        }
        for (i, r) in self.rust.iter().enumerate() {
            if image_path(&r.path).is_none() {
                return invalid(format!(
                    "rust[{i}] ({}): path {:?} leaves the image root",
                    r.package, r.path
                ));
            }
        }
        if let Some(d) = &self.debian {
            if d.packages.is_empty() && d.arch_packages.values().all(Vec::is_empty) {
                return invalid(
                    "debian: names no package (give packages, or arch-packages per architecture)"
                        .to_owned(),
                );
            }
            for a in d.arch_packages.keys() {
                if !matches!(a.as_str(), "amd64" | "arm64" | "riscv64") {
                    return invalid(format!(
                        "debian.arch-packages: {a:?} is not one of amd64, arm64, riscv64"
                    ));
                }
            }
        }
        if let Some(k) = self.debian.as_ref().and_then(|d| d.keyring.as_deref()) {
            if !stays_inside(k) {
                return invalid(format!(
                    "debian.keyring {k:?} must stay inside the package directory"
                ));
            }
        }
        if self.kernel.is_some() && self.debian.is_none() {
            return invalid("kernel: needs debian.packages naming the kernel package".to_owned());
        }
        Ok(())
    }

    /// `<org>/<image>`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.org, self.image)
    }

    /// The drop globs in effect.
    pub fn drop_globs(&self) -> Vec<String> {
        match &self.drop {
            Some(d) => d.iter().map(|g| g.trim_start_matches('/').to_owned()).collect(),
            None => DEFAULT_DROP.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// The `org.mobyproject.config` label value: compact JSON, keys in the order written.
    pub fn label_json(&self) -> Option<String> {
        self.label.as_ref().map(|m| serde_json::to_string(m).expect("a JSON map serialises"))
    }
}

/// A relative path that does not climb out with `..` and is not absolute.
fn stays_inside(p: &str) -> bool {
    let path = Path::new(p);
    !path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir))
}

/// Normalises an image path (`/usr/bin/x` or `usr/bin/x`) to its relative form `usr/bin/x`;
/// `None` when it has `..` or is empty.
pub fn image_path(p: &str) -> Option<String> {
    let mut parts = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => parts.push(c),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use baleen_testkit::Chain;

    fn parse(s: &str) -> Result<BuildSpec, SpecError> {
        BuildSpec::parse(s, Path::new("pkg/x/build.yml"))
    }

    #[test]
    fn minimal_defaults() {
        let s = parse("image: getty\n").unwrap();
        assert_eq!(s.name(), "baleen/getty");
        assert_eq!(s.arches, ["amd64"]);
        assert!(s.drop_globs().contains(&"usr/share/doc/**".to_owned()));
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let err = parse("image: getty\nfiels: []\n").unwrap_err().chain();
        assert!(err.contains("pkg/x/build.yml"), "{err}");
        assert!(err.contains("fiels"), "{err}");
        assert!(err.contains('2'), "line number missing: {err}");
    }

    #[test]
    fn label_keeps_order_and_is_compact() {
        let s = parse(
            "image: p\nlabel:\n  pid: host\n  readonly: true\n  capabilities: [CAP_SYS_BOOT]\n",
        )
        .unwrap();
        assert_eq!(
            s.label_json().unwrap(),
            r#"{"pid":"host","readonly":true,"capabilities":["CAP_SYS_BOOT"]}"#
        );
    }

    #[test]
    fn modes_and_file_kinds() {
        let s = parse("image: p\nfiles:\n- {path: /etc/x, contents: hi, mode: \"0600\"}\n- {path: bin, directory: true, mode: 755}\n").unwrap();
        assert_eq!(s.files[0].mode, Some(Mode(0o600)));
        assert_eq!(s.files[1].mode, Some(Mode(0o755)));
        assert!(
            parse("image: p\nfiles:\n- {path: /etc/x, contents: hi, directory: true}\n").is_err()
        );
        assert!(parse("image: p\nfiles:\n- {path: /etc/x, source: ../../etc/passwd}\n").is_err());
        assert!(parse("image: p\nfiles:\n- {path: /etc/x, contents: a, mode: \"0999\"}\n").is_err());
        let s = parse(
            "image: k\ndebian:\n  arch-packages:\n    amd64: [linux-image-cloud-amd64]\n    arm64: [linux-image-cloud-arm64]\n",
        )
        .unwrap();
        let d = s.debian.unwrap();
        assert_eq!(d.arch_packages["arm64"], ["linux-image-cloud-arm64"]);
        assert_eq!(d.for_arch("amd64"), ["linux-image-cloud-amd64"]);
        assert!(d.for_arch("riscv64").is_empty());
        let err = parse("image: k\ndebian:\n  arch-packages: {i386: [x]}\n").unwrap_err().chain();
        assert!(err.contains("arch-packages") && err.contains("i386"), "{err}");
        let err = parse("image: k\ndebian:\n  suite: bookworm\n").unwrap_err().chain();
        assert!(err.contains("names no package"), "{err}");
        let keyring =
            |k: &str| parse(&format!("image: p\ndebian:\n  packages: [a]\n  keyring: {k}\n"));
        assert!(keyring("keys/archive.gpg").is_ok());
        let err = keyring("../../etc/apt/trusted.gpg").unwrap_err().chain();
        assert!(err.contains("debian.keyring") && err.contains("stay inside"), "{err}");
    }

    #[test]
    fn image_paths() {
        assert_eq!(image_path("/usr//bin/./x").as_deref(), Some("usr/bin/x"));
        assert_eq!(image_path("/../etc"), None);
        assert_eq!(image_path("/"), None);
    }
}
