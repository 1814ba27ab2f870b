//! `baleen cache verify`: every blob hashed against its name, and every name walked to check
//! that the blobs it needs are there, with the sizes its descriptors say. With `repair`,
//! damaged blobs are moved to `quarantine/` and names that reach missing or damaged content
//! are removed, so that the next build pulls them again.

use super::index::name_of;
use super::{io_err, Store, StoreError};
use crate::digest::Digest;
use crate::manifest::{Manifest, MAX_MANIFEST_BYTES};
use oci_spec::image::Descriptor;
use std::collections::BTreeSet;
use std::fmt;
use std::io::Read;
use std::path::PathBuf;

/// One thing wrong with a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A blob whose content does not hash to its name.
    Damaged { digest: Digest, actual: Digest },
    /// A file in `blobs/` whose name is not a digest.
    Stray { path: PathBuf },
    /// A name reaching a blob (its `role`: manifest, config, layer…) that is not in the store.
    Missing { name: String, role: &'static str, digest: Digest },
    /// A name reaching a damaged blob.
    ReachesDamaged { name: String, role: &'static str, digest: Digest },
    /// A name reaching a blob whose size differs from its descriptor's.
    WrongSize { name: String, role: &'static str, digest: Digest, expected: u64, actual: u64 },
    /// A name whose manifest or index cannot be read or parsed, or names an invalid digest.
    Unreadable { name: String, role: &'static str, digest: String, detail: String },
}

impl Problem {
    /// The name this problem makes unusable, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            Problem::Damaged { .. } | Problem::Stray { .. } => None,
            Problem::Missing { name, .. }
            | Problem::ReachesDamaged { name, .. }
            | Problem::WrongSize { name, .. }
            | Problem::Unreadable { name, .. } => Some(name),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Damaged { digest, actual } => {
                write!(f, "blob {digest} is damaged: its content hashes to {actual}")
            }
            Problem::Stray { path } => {
                write!(f, "{} is not named by a digest", path.display())
            }
            Problem::Missing { name, role, digest } => {
                write!(f, "{name}: {role} {digest} is missing")
            }
            Problem::ReachesDamaged { name, role, digest } => {
                write!(f, "{name}: {role} {digest} is damaged")
            }
            Problem::WrongSize { name, role, digest, expected, actual } => write!(
                f,
                "{name}: {role} {digest} holds {actual} bytes, its descriptor says {expected}"
            ),
            Problem::Unreadable { name, role, digest, detail } => {
                write!(f, "{name}: {role} {digest} is unreadable: {detail}")
            }
        }
    }
}

/// What [`Store::verify`] found (and, with `repair`, did).
#[derive(Debug, Default, Clone)]
pub struct VerifyReport {
    pub blobs_checked: usize,
    pub bytes_checked: u64,
    pub names_checked: usize,
    pub problems: Vec<Problem>,
    /// Blobs (and stray files) moved to `quarantine/` by `repair`.
    pub moved_aside: Vec<PathBuf>,
    /// Older files quarantine dropped to stay within its bound while `repair` moved blobs in.
    pub quarantine_pruned: Vec<PathBuf>,
    /// Names removed from index.json by `repair`.
    pub names_removed: Vec<String>,
}

impl Store {
    /// Hashes every blob and walks every name; with `repair`, moves damaged blobs aside and
    /// removes names whose content is missing or damaged.
    pub fn verify(&self, repair: bool) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        let damaged = self.check_blobs(repair, &mut report)?;
        let mut broken = BTreeSet::new();
        for d in self.index()? {
            let Some(name) = name_of(&d).map(str::to_string) else { continue };
            report.names_checked += 1;
            let before = report.problems.len();
            self.check_name(&name, &d, &damaged, &mut report);
            if report.problems.len() > before {
                broken.insert(name);
            }
        }
        if repair && !broken.is_empty() {
            self.update_index(|manifests| {
                manifests.retain(|d| name_of(d).is_none_or(|n| !broken.contains(n)));
                Ok(())
            })?;
            report.names_removed = broken.into_iter().collect();
        }
        Ok(report)
    }

    /// Hashes every file of `blobs/`; returns the damaged digests.
    fn check_blobs(
        &self,
        repair: bool,
        report: &mut VerifyReport,
    ) -> Result<BTreeSet<Digest>, StoreError> {
        let mut damaged = BTreeSet::new();
        let blobs = self.dir.join("blobs");
        let mut files = Vec::new();
        for alg in std::fs::read_dir(&blobs).map_err(io_err("listing", &blobs))? {
            let alg = alg.map_err(io_err("listing", &blobs))?;
            let alg_dir = alg.path();
            if !alg_dir.is_dir() {
                files.push((alg_dir, None));
                continue;
            }
            for entry in std::fs::read_dir(&alg_dir).map_err(io_err("listing", &alg_dir))? {
                let entry = entry.map_err(io_err("listing", &alg_dir))?;
                let name = format!(
                    "{}:{}",
                    alg.file_name().to_string_lossy(),
                    entry.file_name().to_string_lossy()
                );
                files.push((entry.path(), Digest::parse(&name).ok()));
            }
        }
        files.sort();
        for (path, digest) in files {
            let Some(digest) = digest else {
                report.problems.push(Problem::Stray { path: path.clone() });
                if repair {
                    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                    let stem = format!("stray-{}", name.unwrap_or_default());
                    self.move_aside(&path, &stem, report)?;
                }
                continue;
            };
            let (actual, size) = hash_file(&path, &digest)?;
            report.blobs_checked += 1;
            report.bytes_checked += size;
            if actual != digest {
                report.problems.push(Problem::Damaged { digest: digest.clone(), actual });
                if repair {
                    let stem = format!("{}-{}", digest.algorithm(), digest.hex());
                    self.move_aside(&path, &stem, report)?;
                }
                damaged.insert(digest);
            }
        }
        Ok(damaged)
    }

    fn move_aside(
        &self,
        path: &std::path::Path,
        as_name: &str,
        report: &mut VerifyReport,
    ) -> Result<(), StoreError> {
        let moved = self.quarantine(path, as_name)?;
        report.moved_aside.push(moved.path);
        report.quarantine_pruned.extend(moved.pruned);
        Ok(())
    }

    /// Walks the blobs `name` needs from its root: the root, (for an index) the platform
    /// manifests that are present — others were never pulled — and their configs and layers.
    fn check_name(
        &self,
        name: &str,
        root: &Descriptor,
        damaged: &BTreeSet<Digest>,
        report: &mut VerifyReport,
    ) {
        let mut todo = vec![(root.clone(), "root", true)];
        let mut seen = BTreeSet::new();
        while let Some((d, role, required)) = todo.pop() {
            let unreadable = |detail: String| Problem::Unreadable {
                name: name.to_string(),
                role,
                digest: d.digest().to_string(),
                detail,
            };
            let digest = match Digest::from_oci(d.digest()) {
                Ok(digest) => digest,
                Err(e) => {
                    report.problems.push(unreadable(crate::chain(&e)));
                    continue;
                }
            };
            if !seen.insert(digest.clone()) {
                continue;
            }
            let (name, digest_c) = (name.to_string(), digest.clone());
            if damaged.contains(&digest) {
                report.problems.push(Problem::ReachesDamaged { name, role, digest: digest_c });
                continue;
            }
            let path = self.blob_path(&digest);
            let Ok(meta) = std::fs::metadata(&path) else {
                if required {
                    report.problems.push(Problem::Missing { name, role, digest: digest_c });
                }
                continue;
            };
            if meta.len() != d.size() {
                report.problems.push(Problem::WrongSize {
                    name,
                    role,
                    digest: digest_c,
                    expected: d.size(),
                    actual: meta.len(),
                });
                continue;
            }
            let mt = d.media_type().to_string();
            let is_manifest = role == "root" || mt.contains("manifest") || mt.contains("index");
            if !is_manifest {
                continue;
            }
            let parsed = self
                .read_blob(&digest, MAX_MANIFEST_BYTES)
                .map_err(|e| crate::chain(&e))
                .and_then(|bytes| {
                    Manifest::parse(&bytes, &digest, Some(mt.as_str()))
                        .map_err(|e| crate::chain(&e))
                });
            match parsed {
                Err(detail) => report.problems.push(unreadable(detail)),
                Ok(Manifest::Index(i)) => {
                    todo.extend(
                        i.manifests().iter().map(|c| (c.clone(), "platform manifest", false)),
                    );
                }
                Ok(Manifest::Image(m)) => {
                    todo.push((m.config().clone(), "config", true));
                    todo.extend(m.layers().iter().map(|l| (l.clone(), "layer", true)));
                }
            }
        }
    }
}

/// The digest of a file's content (in `like`'s algorithm) and its size.
fn hash_file(path: &std::path::Path, like: &Digest) -> Result<(Digest, u64), StoreError> {
    let mut f = std::fs::File::open(path).map_err(io_err("opening", path))?;
    let mut h = like.hasher();
    let mut buf = vec![0u8; 256 << 10];
    let mut size = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(StoreError::Io { action: "reading", path: path.into(), source: e })
            }
        };
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((h.finish(), size))
}
