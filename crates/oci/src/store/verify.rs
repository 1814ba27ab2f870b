//! Reading blobs back with their digest checked: a disk can flip a byte after a blob was stored
//! verified, and a damaged layer must fail the build, not ship. [`VerifiedBlob`] hashes what it
//! reads and checks the digest (and size) when the last byte passes; [`BlobCheck::finish`]
//! reads what a consumer left (a tar reader stops at its end marker) so the check always runs.
//! A blob found damaged is moved to `quarantine/` (kept for inspection, never read again), so
//! the store no longer has it and the next pull fetches it anew.

use super::quarantine::{move_aside, QUARANTINE, QUARANTINE_BOUND};
use super::{Store, StoreError};
use crate::digest::{Digest, Hasher};
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

/// What a finished check found.
#[derive(Debug, Clone)]
enum Verdict {
    Intact,
    /// What was found instead, and where the blob went.
    Damaged {
        found: String,
        quarantined: PathBuf,
    },
}

#[derive(Debug)]
struct Check {
    file: File,
    digest: Digest,
    size: Option<u64>,
    hasher: Option<Hasher>,
    read: u64,
    verdict: Option<Verdict>,
    blob_path: PathBuf,
    quarantine: PathBuf,
}

impl Check {
    fn damaged(&mut self, found: String) -> Verdict {
        let stem = format!("{}-{}", self.digest.algorithm(), self.digest.hex());
        // Best effort: when the move fails the error still stops this build; the blob stays.
        let verdict = match move_aside(&self.quarantine, &self.blob_path, &stem, QUARANTINE_BOUND) {
            Ok(moved) => Verdict::Damaged { found, quarantined: moved.path },
            // Another reader of the same blob moved it first.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Verdict::Damaged { found, quarantined: self.quarantine.join(stem) }
            }
            Err(e) => {
                tracing::warn!("moving damaged blob {} aside: {e}", self.blob_path.display());
                Verdict::Damaged { found, quarantined: self.blob_path.clone() }
            }
        };
        self.verdict = Some(verdict.clone());
        verdict
    }

    fn conclude(&mut self) -> Verdict {
        let actual = self.hasher.take().map(Hasher::finish);
        match actual {
            Some(a) if a == self.digest => {
                self.verdict = Some(Verdict::Intact);
                Verdict::Intact
            }
            Some(a) => self.damaged(format!("its content hashes to {a}")),
            None => self.verdict.clone().unwrap_or(Verdict::Intact),
        }
    }

    /// Accounts for `n` more bytes in `buf`; the verdict once one is reached.
    fn account(&mut self, buf: &[u8]) -> Option<Verdict> {
        if let Some(v @ Verdict::Damaged { .. }) = &self.verdict {
            return Some(v.clone());
        }
        self.read += buf.len() as u64;
        match (self.size, buf.is_empty()) {
            (Some(size), _) if self.read > size => {
                let found = format!("more than the {size} bytes its descriptor says");
                Some(self.damaged(found))
            }
            (Some(size), true) if self.read < size => {
                let found = format!("{} bytes where its descriptor says {size}", self.read);
                Some(self.damaged(found))
            }
            (Some(size), false) if self.read == size => {
                if let Some(h) = &mut self.hasher {
                    h.update(buf);
                }
                Some(self.conclude())
            }
            (_, true) => Some(self.conclude()),
            (_, false) => {
                if let Some(h) = &mut self.hasher {
                    h.update(buf);
                }
                None
            }
        }
    }

    fn error(&self, verdict: &Verdict) -> Option<StoreError> {
        match verdict {
            Verdict::Intact => None,
            Verdict::Damaged { found, quarantined } => Some(StoreError::Damaged {
                digest: self.digest.clone(),
                found: found.clone(),
                quarantined: quarantined.clone(),
            }),
        }
    }

    /// The error once the blob is known to be damaged.
    fn failure(&self) -> Option<StoreError> {
        self.verdict.as_ref().and_then(|v| self.error(v))
    }
}

fn lock(c: &Mutex<Check>) -> std::sync::MutexGuard<'_, Check> {
    c.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A stored blob opened for reading with its digest checked as it is read. Reading fails with
/// [`StoreError::Damaged`] (inside an `io::Error` of kind `InvalidData`) instead of returning
/// the last bytes of a blob that does not match.
#[derive(Debug)]
pub struct VerifiedBlob {
    check: Arc<Mutex<Check>>,
}

/// The other end of a [`VerifiedBlob`]: kept by whoever hands the reader to a consumer that may
/// not read it to the end.
#[derive(Debug, Clone)]
pub struct BlobCheck {
    check: Arc<Mutex<Check>>,
}

impl VerifiedBlob {
    /// A handle to finish the check after the consumer is done.
    pub fn check(&self) -> BlobCheck {
        BlobCheck { check: self.check.clone() }
    }
}

impl Read for VerifiedBlob {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut c = lock(&self.check);
        if let Some(e) = c.failure() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        let n = c.file.read(buf)?;
        c.account(&buf[..n]);
        match c.failure() {
            Some(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            None => Ok(n),
        }
    }
}

impl BlobCheck {
    /// Reads what the consumer left of the blob and returns the verdict: `Ok` only when every
    /// byte matched the digest (and the descriptor's size).
    pub fn finish(&self) -> Result<(), StoreError> {
        let mut c = lock(&self.check);
        let mut buf = vec![0u8; 64 << 10];
        let verdict = loop {
            if let Some(v @ Verdict::Damaged { .. }) = &c.verdict {
                break v.clone();
            }
            let n = match c.file.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(StoreError::Io {
                        action: "reading",
                        path: c.blob_path.clone(),
                        source,
                    })
                }
            };
            let verdict = c.account(&buf[..n]);
            if n == 0 {
                break verdict.unwrap_or(Verdict::Intact);
            }
        };
        match c.error(&verdict) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Store {
    /// Opens a blob whose bytes are checked against `d` (and `size`, when known) as they are
    /// read; see [`VerifiedBlob`].
    pub fn open_verified(&self, d: &Digest, size: Option<u64>) -> Result<VerifiedBlob, StoreError> {
        let file = self.open_blob(d)?;
        let check = Check {
            file,
            digest: d.clone(),
            size,
            hasher: Some(d.hasher()),
            read: 0,
            verdict: None,
            blob_path: self.blob_path(d),
            quarantine: self.dir.join(QUARANTINE),
        };
        Ok(VerifiedBlob { check: Arc::new(Mutex::new(check)) })
    }

    /// Hashes a whole stored blob; a damaged one is moved aside as [`VerifiedBlob`] does.
    pub fn verify_blob(&self, d: &Digest, size: Option<u64>) -> Result<(), StoreError> {
        self.open_verified(d, size)?.check().finish()
    }

    /// Checks bytes already read whole (a manifest or config) against `d`; moves the blob aside
    /// when they do not match.
    pub(crate) fn verify_bytes(&self, d: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        let mut h = d.hasher();
        h.update(bytes);
        let actual = h.finish();
        if actual == *d {
            return Ok(());
        }
        let stem = format!("{}-{}", d.algorithm(), d.hex());
        let quarantined = self.quarantine(&self.blob_path(d), &stem)?.path;
        Err(StoreError::Damaged {
            digest: d.clone(),
            found: format!("its content hashes to {actual}"),
            quarantined,
        })
    }
}

impl StoreError {
    /// The error of reading a [`VerifiedBlob`] at `path`: the [`StoreError::Damaged`] it carries,
    /// else the I/O error itself.
    pub fn from_read(e: io::Error, path: PathBuf) -> StoreError {
        if !e.get_ref().is_some_and(|i| i.is::<StoreError>()) {
            return StoreError::Io { action: "reading", path, source: e };
        }
        let kind = e.kind();
        match e.into_inner().map(|i| i.downcast::<StoreError>()) {
            Some(Ok(inner)) => *inner,
            Some(Err(other)) => {
                StoreError::Io { action: "reading", path, source: io::Error::new(kind, other) }
            }
            None => StoreError::Io { action: "reading", path, source: kind.into() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(data: &[u8]) -> (tempfile::TempDir, Store, Digest) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = store.write_blob(data, None).unwrap().digest;
        (dir, store, d)
    }

    #[test]
    fn an_intact_blob_reads_through_and_finishes_ok() {
        let (_dir, store, d) = store_with(b"hello world");
        let mut blob = store.open_verified(&d, Some(11)).unwrap();
        let check = blob.check();
        let mut head = [0u8; 5];
        blob.read_exact(&mut head).unwrap();
        check.finish().unwrap();
        assert!(store.has_blob(&d));
    }

    #[test]
    fn a_blob_changed_on_disk_fails_at_its_last_byte_and_is_moved_aside() {
        let (_dir, store, d) = store_with(b"hello world");
        std::fs::write(store.blob_path(&d), b"Jello world").unwrap();
        let mut out = Vec::new();
        let err = store.open_verified(&d, Some(11)).unwrap().read_to_end(&mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(matches!(StoreError::from_read(err, PathBuf::new()), StoreError::Damaged { .. }));
        assert!(!store.has_blob(&d));
        let aside = store.dir().join(QUARANTINE).join(format!("sha256-{}", d.hex()));
        assert_eq!(std::fs::read(aside).unwrap(), b"Jello world");
    }

    #[test]
    fn a_consumer_that_stops_early_still_gets_the_verdict_from_finish() {
        let (_dir, store, d) = store_with(b"hello world");
        std::fs::write(store.blob_path(&d), b"hello worlD").unwrap();
        let mut blob = store.open_verified(&d, Some(11)).unwrap();
        let mut head = [0u8; 5];
        blob.read_exact(&mut head).unwrap();
        assert!(matches!(blob.check().finish(), Err(StoreError::Damaged { .. })));
    }

    #[test]
    fn truncated_and_extended_blobs_are_damaged() {
        for bad in [&b"hello"[..], b"hello world!"] {
            let (_dir, store, d) = store_with(b"hello world");
            std::fs::write(store.blob_path(&d), bad).unwrap();
            let err = store.verify_blob(&d, Some(11)).unwrap_err();
            assert!(matches!(err, StoreError::Damaged { .. }), "{bad:?}: {err}");
        }
    }
}
