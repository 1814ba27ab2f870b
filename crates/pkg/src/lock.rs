//! `packages.lock`: the resolved Debian packages of a component, one line each, so a build needs
//! no archive index and the tag covers the exact `.deb`s.
//!
//! ```text
//! # baleen packages.lock: written by `baleen pkg lock`; do not edit.
//! request 9f2c…  (SHA-256 of build.yml's debian section, to detect a stale lock)
//! suite bookworm
//! amd64 busybox-static 1:1.35.0-4+b3 pool/main/b/busybox/busybox-static_1.35.0-4+b3_amd64.deb <sha256> <size>
//! amd64 libssl3 3.0.17-1~deb12u3 pool/updates/main/o/openssl/libssl3_….deb <sha256> <size> bookworm-security
//! ```
//! A seventh column names the suite a package came from when it is not the main one (with
//! `debian.security: true`, the `<suite>-security` updates).
//! The mirror is not recorded: the pool path is the same on every mirror, and the lock (hence the
//! tag) must not depend on which mirror the host's apt sources name.

use crate::deb::archive::DebRef;
use crate::spec::Debian;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "packages.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("reading {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("writing {path}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Syntax { path: PathBuf, line: usize, message: String },
}

/// One locked package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    pub arch: String,
    pub deb: DebRef,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub request: String,
    pub suite: String,
    pub packages: Vec<Locked>,
}

/// The hash of what a lock resolves: suite, packages, excludes and architectures.
pub fn request_hash(debian: &Debian, suite: &str, arches: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(format!("suite {suite}\n").as_bytes());
    for p in &debian.packages {
        h.update(format!("package {p}\n").as_bytes());
    }
    for p in &debian.exclude {
        h.update(format!("exclude {p}\n").as_bytes());
    }
    for a in arches {
        h.update(format!("arch {a}\n").as_bytes());
    }
    // Only when given, so that locks written before the option existed stay fresh.
    for (a, list) in &debian.arch_packages {
        for p in list {
            h.update(format!("arch-package {a} {p}\n").as_bytes());
        }
    }
    // Only when given, so that locks written before the option existed stay fresh.
    for c in &debian.components {
        h.update(format!("component {c}\n").as_bytes());
    }
    // Only when on, so that locks written before the option existed stay fresh.
    if debian.security {
        h.update(b"security\n");
    }
    hex::encode(h.finalize())
}

impl Lock {
    pub fn render(&self) -> String {
        let mut s =
            String::from("# baleen packages.lock: written by `baleen pkg lock`; do not edit.\n");
        s.push_str(&format!("request {}\nsuite {}\n", self.request, self.suite));
        for p in &self.packages {
            let d = &p.deb;
            s.push_str(&format!(
                "{} {} {} {} {} {}",
                p.arch, d.name, d.version, d.filename, d.sha256, d.size
            ));
            if let Some(suite) = &d.suite {
                s.push_str(&format!(" {suite}"));
            }
            s.push('\n');
        }
        s
    }

    pub fn write(&self, dir: &Path) -> Result<(), LockError> {
        let path = dir.join(LOCK_FILE);
        std::fs::write(&path, self.render()).map_err(|source| LockError::Write { path, source })
    }

    /// Reads `<dir>/packages.lock`; `None` when there is none.
    pub fn load(dir: &Path) -> Result<Option<Lock>, LockError> {
        let path = dir.join(LOCK_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(LockError::Read { path, source }),
        }
    }

    pub fn parse(text: &str, path: &Path) -> Result<Lock, LockError> {
        let mut lock = Lock { request: String::new(), suite: String::new(), packages: Vec::new() };
        for (i, line) in text.lines().enumerate() {
            let syntax =
                |message: String| LockError::Syntax { path: path.to_owned(), line: i + 1, message };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.as_slice() {
                ["request", h] => lock.request = (*h).to_owned(),
                ["suite", s] => lock.suite = (*s).to_owned(),
                [arch, name, version, filename, sha256, size, suite @ ..] if suite.len() < 2 => {
                    let size = size
                        .parse()
                        .map_err(|_| syntax(format!("size {size:?} is not a number")))?;
                    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(syntax(format!("{name}: {sha256:?} is not a SHA-256")));
                    }
                    lock.packages.push(Locked {
                        arch: (*arch).to_owned(),
                        deb: DebRef {
                            name: (*name).to_owned(),
                            version: (*version).to_owned(),
                            filename: (*filename).to_owned(),
                            sha256: (*sha256).to_owned(),
                            size,
                            suite: suite.first().map(|s| (*s).to_owned()),
                        },
                    });
                }
                _ => {
                    return Err(syntax(
                        "expected `arch name version filename sha256 size [suite]`".to_owned(),
                    ))
                }
            }
        }
        Ok(lock)
    }

    /// The packages for one architecture.
    pub fn for_arch<'a>(&'a self, arch: &'a str) -> impl Iterator<Item = &'a DebRef> + 'a {
        self.packages.iter().filter(move |p| p.arch == arch).map(|p| &p.deb)
    }
}

/// One package whose lock line `pkg lock --update` changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub arch: String,
    pub name: String,
    /// `version` or `version (suite)` before and after; `None` when absent on that side.
    pub before: Option<String>,
    pub after: Option<String>,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let side = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".to_owned());
        write!(f, "{} {}: {} -> {}", self.arch, self.name, side(&self.before), side(&self.after))
    }
}

/// The packages whose version, suite or file differ between two locks, by architecture and
/// name.
pub fn changes(before: Option<&Lock>, after: &Lock) -> Vec<Change> {
    use std::collections::BTreeMap;
    let key = |l: &Locked| (l.arch.clone(), l.deb.name.clone());
    let show = |l: &Locked| match &l.deb.suite {
        Some(s) => format!("{} ({s})", l.deb.version),
        None => l.deb.version.clone(),
    };
    type Sides<'a> = (Option<&'a Locked>, Option<&'a Locked>);
    let mut both: BTreeMap<(String, String), Sides> = BTreeMap::new();
    for l in before.map(|b| b.packages.as_slice()).unwrap_or_default() {
        both.entry(key(l)).or_default().0 = Some(l);
    }
    for l in &after.packages {
        both.entry(key(l)).or_default().1 = Some(l);
    }
    both.into_iter()
        .filter(|(_, (b, a))| b.map(|l| &l.deb) != a.map(|l| &l.deb))
        .map(|((arch, name), (b, a))| Change {
            arch,
            name,
            before: b.map(show),
            after: a.map(show),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use baleen_testkit::Chain;

    #[test]
    fn round_trip_and_errors() {
        let lock = Lock {
            request: "ab".repeat(32),
            suite: "bookworm".into(),
            packages: vec![Locked {
                arch: "amd64".into(),
                deb: DebRef {
                    name: "busybox-static".into(),
                    version: "1:1.35.0-4+b3".into(),
                    filename: "pool/main/b/busybox/busybox-static_1.35.0-4+b3_amd64.deb".into(),
                    sha256: "cd".repeat(32),
                    size: 123,
                    suite: None,
                },
            }],
        };
        let p = Path::new("pkg/init/packages.lock");
        assert_eq!(Lock::parse(&lock.render(), p).unwrap(), lock);
        let mut sec = lock.clone();
        sec.packages[0].deb.suite = Some("bookworm-security".into());
        assert!(sec.render().contains(" 123 bookworm-security\n"), "{}", sec.render());
        assert_eq!(Lock::parse(&sec.render(), p).unwrap(), sec);
        let err =
            Lock::parse("suite bookworm\namd64 x 1 pool/x.deb nothex 3\n", p).unwrap_err().chain();
        assert!(err.starts_with("pkg/init/packages.lock:2:") && err.contains("x:"), "{err}");
    }

    #[test]
    fn request_hash_sees_every_field() {
        let d = Debian {
            packages: vec!["a".into()],
            exclude: vec![],
            suite: None,
            mirror: None,
            check_valid_until: true,
            security: false,
            security_mirror: None,
            keyring: None,
            arch_packages: Default::default(),
            components: vec![],
        };
        let a = request_hash(&d, "bookworm", &["amd64".into()]);
        assert_ne!(a, request_hash(&d, "trixie", &["amd64".into()]));
        assert_ne!(a, request_hash(&d, "bookworm", &["arm64".into()]));
        let d2 = Debian { exclude: vec!["b".into()], ..d.clone() };
        assert_ne!(a, request_hash(&d2, "bookworm", &["amd64".into()]));
        // The mirror is not part of the request.
        let d3 = Debian { mirror: Some("http://elsewhere".into()), ..d.clone() };
        assert_eq!(a, request_hash(&d3, "bookworm", &["amd64".into()]));
        let d4 = Debian { security: true, ..d.clone() };
        assert_ne!(a, request_hash(&d4, "bookworm", &["amd64".into()]));
        let d6 = Debian { components: vec!["non-free-firmware".into()], ..d.clone() };
        assert_ne!(a, request_hash(&d6, "bookworm", &["amd64".into()]));
        let d5 = Debian {
            arch_packages: [("arm64".to_owned(), vec!["k".to_owned()])].into_iter().collect(),
            ..d
        };
        assert_ne!(a, request_hash(&d5, "bookworm", &["amd64".into()]));
    }
}
