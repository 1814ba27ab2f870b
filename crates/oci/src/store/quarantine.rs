//! `quarantine/`: blobs found damaged (and stray files in `blobs/`) moved aside for inspection,
//! never read again. Each move keeps what is already there: a second damaged copy of the same
//! digest becomes `<alg>-<hex>.2`, not a replacement of the first (the evidence of the first
//! damage stays). What quarantine keeps is bounded ([`QUARANTINE_BOUND`]): past it the oldest
//! files go, never the one just moved, and every caller reports what went. `gc` empties it.

use super::{io_err, Store, StoreError};
use std::io;
use std::path::{Path, PathBuf};

/// The directory of the store damaged blobs are moved to.
pub const QUARANTINE: &str = "quarantine";

/// How much quarantine keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarantineBound {
    pub files: usize,
    pub bytes: u64,
}

/// 32 files and 4 GiB: enough to compare a few damaged copies, not a second store.
pub const QUARANTINE_BOUND: QuarantineBound = QuarantineBound { files: 32, bytes: 4 << 30 };

/// Where a file moved aside went, and what quarantine dropped to stay within its bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedAside {
    pub path: PathBuf,
    pub pruned: Vec<PathBuf>,
}

/// The most names tried for one stem (`x`, `x.2`, … `x.N`): quarantine keeps far fewer.
const MAX_SUFFIX: usize = 10_000;

/// Moves `from` into `dir` as `stem`, or `stem.N` with the first free N, replacing nothing;
/// then drops the oldest files of `dir` past `bound`. `NotFound` when `from` is gone (another
/// reader moved it first).
pub(crate) fn move_aside(
    dir: &Path,
    from: &Path,
    stem: &str,
    bound: QuarantineBound,
) -> io::Result<MovedAside> {
    std::fs::create_dir_all(dir)?;
    let path = place(dir, from, stem)?;
    let pruned = prune(dir, &path, bound);
    for p in &pruned {
        tracing::info!(path = %p.display(), "removed from quarantine (it keeps {} files)", bound.files);
    }
    Ok(MovedAside { path, pruned })
}

fn place(dir: &Path, from: &Path, stem: &str) -> io::Result<PathBuf> {
    for n in 1..=MAX_SUFFIX {
        let to = if n == 1 { dir.join(stem) } else { dir.join(format!("{stem}.{n}")) };
        // link(2) fails on an existing name where rename(2) would replace it.
        match std::fs::hard_link(from, &to) {
            Ok(()) => {
                std::fs::remove_file(from)?;
                return Ok(to);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
            // A filesystem without hard links: rename to a name that is free now.
            Err(_) if !to.exists() => {
                std::fs::rename(from, &to)?;
                return Ok(to);
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{MAX_SUFFIX} copies of {stem}")))
}

/// Removes the oldest files of `dir` (by the time they were moved there: link(2) sets the
/// change time) until it is within `bound`, keeping `newest` whatever its size.
fn prune(dir: &Path, newest: &Path, bound: QuarantineBound) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<(i64, i64, PathBuf, u64)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let m = e.metadata().ok().filter(|m| m.is_file())?;
            Some((m.ctime(), m.ctime_nsec(), e.path(), m.len()))
        })
        .collect();
    files.sort();
    let mut count = files.len();
    let mut bytes: u64 = files.iter().map(|f| f.3).sum();
    let mut removed = Vec::new();
    for (_, _, path, size) in files {
        if count <= bound.files && bytes <= bound.bytes {
            break;
        }
        if path == newest || std::fs::remove_file(&path).is_err() {
            continue;
        }
        count -= 1;
        bytes = bytes.saturating_sub(size);
        removed.push(path);
    }
    removed
}

impl Store {
    /// Moves a file of the store into quarantine as `stem` (see [`move_aside`]).
    pub(crate) fn quarantine(&self, from: &Path, stem: &str) -> Result<MovedAside, StoreError> {
        move_aside(&self.dir.join(QUARANTINE), from, stem, QUARANTINE_BOUND)
            .map_err(io_err("moving aside", from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Issue 21 follow-up: moving a damaged blob aside renamed it over an earlier damaged copy
    /// of the same digest, so the evidence of the first damage was lost. Both are kept.
    #[test]
    fn a_second_copy_of_one_digest_is_kept_beside_the_first() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, blob) = (tmp.path().join("q"), tmp.path().join("blob"));
        let unbounded = QuarantineBound { files: 100, bytes: u64::MAX };
        for content in ["first damage", "second damage", "third damage"] {
            std::fs::write(&blob, content).unwrap();
            let moved = move_aside(&dir, &blob, "sha256-ab", unbounded).unwrap();
            assert!(moved.pruned.is_empty());
        }
        assert_eq!(names(&dir), ["sha256-ab", "sha256-ab.2", "sha256-ab.3"]);
        assert_eq!(std::fs::read(dir.join("sha256-ab")).unwrap(), b"first damage");
        assert_eq!(std::fs::read(dir.join("sha256-ab.3")).unwrap(), b"third damage");
        assert!(!blob.exists());
        let gone = move_aside(&dir, &blob, "sha256-ab", unbounded).unwrap_err();
        assert_eq!(gone.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn quarantine_drops_its_oldest_files_past_its_bound_and_says_which() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, blob) = (tmp.path().join("q"), tmp.path().join("blob"));
        let bound = QuarantineBound { files: 2, bytes: 10 };
        let mut moved = Vec::new();
        for (stem, content) in [("a", "1234"), ("b", "5678"), ("c", "9")] {
            std::fs::write(&blob, content).unwrap();
            moved.push(move_aside(&dir, &blob, stem, bound).unwrap());
            // Change times a clock tick apart, so "oldest" is well defined.
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(moved[2].pruned, vec![dir.join("a")]);
        assert_eq!(names(&dir), ["b", "c"]);
        // One file past the byte bound on its own is kept: it is the newest evidence.
        std::fs::write(&blob, "x".repeat(50)).unwrap();
        let big = move_aside(&dir, &blob, "d", bound).unwrap();
        assert_eq!(big.pruned, vec![dir.join("b"), dir.join("c")]);
        assert_eq!(names(&dir), ["d"]);
    }
}
