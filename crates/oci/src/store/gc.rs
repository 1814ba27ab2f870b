//! Garbage collection: delete blobs that no name in index.json reaches (nor a derived result
//! whose images it still names), damaged blobs moved to `quarantine/`, and stray temp files.

use super::index::digest_of;
use super::{io_err, Store, StoreError};
use crate::digest::Digest;
use std::collections::HashSet;

/// What `gc` removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs removed, those of `quarantine/` included.
    pub blobs_removed: usize,
    pub bytes_freed: u64,
    pub blobs_kept: usize,
    /// The files of `quarantine/` removed (damaged blobs kept for inspection until now).
    pub quarantine_removed: Vec<std::path::PathBuf>,
    /// Derived results (initrd segments) kept: every image they were made from is still named.
    pub derived_kept: usize,
    /// Derived results dropped (their images are gone, or they came from no image).
    pub derived_removed: usize,
}

impl Store {
    /// Every digest reachable from index.json: roots, index children that are present, configs
    /// and layers. A missing child (another platform that was never pulled) is simply skipped.
    pub fn reachable(&self) -> Result<HashSet<Digest>, StoreError> {
        let mut seen = HashSet::new();
        let mut todo = self.index()?;
        let anon = crate::Reference::parse("unnamed").expect("valid");
        while let Some(d) = todo.pop() {
            let digest = digest_of(&d)?;
            if !seen.insert(digest) {
                continue;
            }
            let mt = d.media_type().to_string();
            let is_manifest = mt.contains("manifest") || mt.contains("index") || mt.is_empty();
            if !is_manifest {
                continue;
            }
            // A blob that does not parse as a manifest is a leaf: gc must not fail on it.
            if let Ok(Some((_, m))) = self.manifest(&anon, &d) {
                todo.extend(m.children().into_iter().cloned());
            }
        }
        Ok(seen)
    }

    /// Deletes unreachable blobs and leftover temp files. Waits until no other [`Store`] on this
    /// directory is open, in any process (they might be writing blobs they have not named yet);
    /// so a process must not call it while holding a second `Store` on the same directory.
    pub fn gc(&self) -> Result<GcReport, StoreError> {
        let lock_path = self.dir.join("ingest/.lock");
        // Converting our shared lock to exclusive waits for the other holders.
        // `Ok(false)` means another holder (fs4 reports would-block as a value, not an error).
        if !matches!(fs4::fs_std::FileExt::try_lock_exclusive(&self.users_lock), Ok(true)) {
            tracing::warn!(
                "waiting for other baleen processes using {} to finish",
                self.dir.display()
            );
            fs4::fs_std::FileExt::lock_exclusive(&self.users_lock)
                .map_err(io_err("locking", &lock_path))?;
        }
        let result = self.gc_locked();
        fs4::fs_std::FileExt::lock_shared(&self.users_lock)
            .map_err(io_err("locking", &lock_path))?;
        result
    }

    fn gc_locked(&self) -> Result<GcReport, StoreError> {
        let mut keep = self.reachable()?;
        let mut report = GcReport::default();
        (report.derived_kept, report.derived_removed) = self.gc_derived(&mut keep)?;
        let blobs = self.dir.join("blobs");
        for alg in std::fs::read_dir(&blobs).map_err(io_err("listing", &blobs))? {
            let alg = alg.map_err(io_err("listing", &blobs))?;
            let alg_name = alg.file_name().to_string_lossy().into_owned();
            let alg_dir = alg.path();
            for entry in std::fs::read_dir(&alg_dir).map_err(io_err("listing", &alg_dir))? {
                let entry = entry.map_err(io_err("listing", &alg_dir))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let reachable =
                    Digest::parse(&format!("{alg_name}:{name}")).is_ok_and(|d| keep.contains(&d));
                if reachable {
                    report.blobs_kept += 1;
                    continue;
                }
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                std::fs::remove_file(entry.path()).map_err(io_err("removing", &entry.path()))?;
                report.blobs_removed += 1;
                report.bytes_freed += size;
            }
        }
        // Damaged blobs moved aside by a read: kept for inspection until now.
        let quarantine = self.dir.join(super::QUARANTINE);
        if let Ok(entries) = std::fs::read_dir(&quarantine) {
            for entry in entries {
                let entry = entry.map_err(io_err("listing", &quarantine))?;
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                std::fs::remove_file(entry.path()).map_err(io_err("removing", &entry.path()))?;
                report.blobs_removed += 1;
                report.bytes_freed += size;
                report.quarantine_removed.push(entry.path());
            }
        }
        let ingest = self.dir.join("ingest");
        for entry in std::fs::read_dir(&ingest).map_err(io_err("listing", &ingest))? {
            let entry = entry.map_err(io_err("listing", &ingest))?;
            if entry.file_name() != ".lock" {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(report)
    }
}
