//! The content store: an OCI image layout on disk that LinuxKit's cache reads and writes too.
//!
//! ```text
//! <dir>/oci-layout            {"imageLayoutVersion":"1.0.0"}
//! <dir>/index.json            one descriptor per cached name, annotated
//!                             org.opencontainers.image.ref.name: docker.io/library/alpine:3.20
//! <dir>/blobs/sha256/<hex>    content, only ever written whole and verified
//! <dir>/derived/<key>         results derived from stored blobs (initrd segments), see
//!                             `derived.rs`
//! <dir>/ingest/               temp files of blobs being written (same filesystem, for rename)
//! <dir>/quarantine/           blobs found damaged when read back (`<alg>-<hex>`, `…​.2` for a
//!                             second copy), bounded, until gc
//! <dir>/.lock                 flock: held exclusively while index.json is rewritten (LinuxKit's)
//! <dir>/ingest/.lock          flock: shared while a Store is open, exclusive during gc
//! ```
//!
//! Invariants: a file in `blobs/` always has the digest its name says (temp → verify → fsync →
//! rename, so a killed writer leaves at most a stray temp file in `ingest/`), and readers check
//! that it still does (`verify`: a disk may flip a bit later); `index.json` is
//! replaced by rename, never edited in place. Non-goals: other digest algorithms on disk than
//! the ones [`crate::Digest`] accepts, and containerd's `ingest` resume format.

mod check;
mod derived;
mod gc;
mod image;
pub(crate) mod index;
mod quarantine;
mod verify;

pub use check::{Problem, VerifyReport};
pub use derived::Derived;
pub use gc::GcReport;
pub use image::{Image, MAX_CONFIG_BYTES};
pub use quarantine::{MovedAside, QuarantineBound, QUARANTINE, QUARANTINE_BOUND};
pub use verify::{BlobCheck, VerifiedBlob};

use crate::digest::{Digest, Hasher};
use crate::manifest::ManifestError;
use oci_spec::image::Descriptor;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{action} {path}")]
    Io { action: &'static str, path: PathBuf, source: io::Error },
    #[error("reading {path}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("blob {digest} is not in the store {store}")]
    BlobMissing { digest: Digest, store: PathBuf },
    #[error("blob content does not match its digest: expected {expected}, got {actual} ({size} bytes); nothing was stored")]
    DigestMismatch { expected: Digest, actual: Digest, size: u64 },
    #[error("blob {digest}: expected {expected} bytes, got {actual}; nothing was stored")]
    SizeMismatch { digest: String, expected: u64, actual: u64 },
    #[error("blob {digest} is larger than the {limit} bytes allowed for it; nothing was stored")]
    TooLarge { digest: String, limit: u64 },
    #[error("image {reference}")]
    Manifest { reference: String, source: Box<ManifestError> },
    #[error(
        "image {reference}: manifest {digest} names config/layer digest {bad:?}, which is invalid"
    )]
    BadDescriptor { reference: String, digest: Digest, bad: String },
    #[error("image {reference}: parsing config {digest}")]
    Config { reference: String, digest: Digest, source: serde_json::Error },
    #[error("blob {digest} in the store is damaged ({found}); moved it aside to {quarantined}, so that pulling the image again fetches it anew")]
    Damaged { digest: Digest, found: String, quarantined: PathBuf },
    #[error("no image named {0} in the store")]
    NotFound(String),
    #[error("derived-result key {0:?} is not 64 lowercase hex digits")]
    BadDerivedKey(String),
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { action, path: path.to_path_buf(), source }
}

/// A digest and size of stored content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
}

/// An open content store. Cheap to share between threads (`&Store` is `Sync`).
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    /// Shared flock on `ingest/.lock`, held while open so that `gc` in another process waits
    /// for this one instead of deleting blobs we have written but not yet named in index.json.
    users_lock: File,
}

impl Store {
    /// Opens the store at `dir`, creating an empty layout when missing.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        for sub in ["blobs/sha256", "ingest"] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).map_err(io_err("creating", &p))?;
        }
        let layout = dir.join("oci-layout");
        if !layout.exists() {
            write_atomic(dir, &layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let lock_path = dir.join("ingest/.lock");
        let users_lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err("opening lock file", &lock_path))?;
        fs4::fs_std::FileExt::lock_shared(&users_lock).map_err(io_err("locking", &lock_path))?;
        let store = Store { dir: dir.to_path_buf(), users_lock };
        if !store.index_path().exists() {
            store.update_index(|_| Ok(()))?;
        }
        Ok(store)
    }

    /// `$BALEEN_CACHE` when set, else `~/.baleen/cache`.
    pub fn default_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("BALEEN_CACHE").filter(|d| !d.is_empty()) {
            return PathBuf::from(d);
        }
        let home =
            std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"));
        home.join(".baleen/cache")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.dir.join("blobs").join(d.algorithm()).join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Opens a stored blob for reading.
    pub fn open_blob(&self, d: &Digest) -> Result<File, StoreError> {
        let p = self.blob_path(d);
        File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => {
                StoreError::BlobMissing { digest: d.clone(), store: self.dir.clone() }
            }
            _ => StoreError::Io { action: "opening", path: p, source: e },
        })
    }

    /// Reads a whole blob into memory, refusing ones past `limit` bytes (for manifests/configs),
    /// and checks it against its digest (a damaged one is moved aside: [`StoreError::Damaged`]).
    pub fn read_blob(&self, d: &Digest, limit: u64) -> Result<Vec<u8>, StoreError> {
        let f = self.open_blob(d)?;
        let mut buf = Vec::new();
        f.take(limit + 1).read_to_end(&mut buf).map_err(io_err("reading", &self.blob_path(d)))?;
        if buf.len() as u64 > limit {
            return Err(StoreError::TooLarge { digest: d.to_string(), limit });
        }
        self.verify_bytes(d, &buf)?;
        Ok(buf)
    }

    /// Starts writing a blob. `expected` picks the hash algorithm and, with `limit`, lets the
    /// writer stop as soon as too many bytes arrive.
    pub fn ingest(
        &self,
        expected: Option<&Digest>,
        limit: Option<u64>,
    ) -> Result<Ingest, StoreError> {
        let dir = self.dir.join("ingest");
        let file = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&dir)
            .map_err(io_err("creating a temp file in", &dir))?;
        let hasher = expected.map_or_else(Hasher::sha256, Digest::hasher);
        Ok(Ingest {
            file: io::BufWriter::with_capacity(256 << 10, file),
            hasher,
            size: 0,
            limit,
            label: expected.map_or_else(|| "being written".to_string(), Digest::to_string),
            blobs: self.dir.join("blobs"),
        })
    }

    /// Streams `data` into the store: temp file, hash, verify against `expected`, rename.
    pub fn write_blob(
        &self,
        data: impl Read,
        expected: Option<&Digest>,
    ) -> Result<Blob, StoreError> {
        let mut ing = self.ingest(expected, None)?;
        ing.copy_from(data)?;
        ing.commit(expected, None)
    }

    /// Like [`Store::write_blob`], verifying digest and size against a descriptor and stopping
    /// early when the data runs past the size.
    pub fn write_blob_for(&self, data: impl Read, desc: &Descriptor) -> Result<Blob, StoreError> {
        let d = Digest::from_oci(desc.digest()).map_err(|_| StoreError::BadDescriptor {
            reference: "(descriptor)".into(),
            digest: Digest::sha256_of(b""),
            bad: desc.digest().to_string(),
        })?;
        let mut ing = self.ingest(Some(&d), Some(desc.size()))?;
        ing.copy_from(data)?;
        ing.commit(Some(&d), Some(desc.size()))
    }
}

/// A blob being written: a temp file in `ingest/`, hashed as it grows. Dropping it without
/// [`Ingest::commit`] deletes the temp file; nothing reaches `blobs/`.
#[derive(Debug)]
pub struct Ingest {
    file: io::BufWriter<tempfile::NamedTempFile>,
    hasher: Hasher,
    size: u64,
    limit: Option<u64>,
    label: String,
    blobs: PathBuf,
}

impl Ingest {
    /// Appends bytes, failing once more than the size limit has arrived.
    pub fn write(&mut self, data: &[u8]) -> Result<(), StoreError> {
        self.size += data.len() as u64;
        if let Some(limit) = self.limit {
            if self.size > limit {
                return Err(StoreError::TooLarge { digest: self.label.clone(), limit });
            }
        }
        self.hasher.update(data);
        let path = self.file.get_ref().path().to_path_buf();
        self.file.write_all(data).map_err(io_err("writing", &path))
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    fn copy_from(&mut self, mut data: impl Read) -> Result<(), StoreError> {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(StoreError::Io {
                        action: "reading the data of blob",
                        path: PathBuf::from(&self.label),
                        source,
                    })
                }
            };
            self.write(&buf[..n])?;
        }
    }

    /// Verifies digest and size, syncs, and renames the blob into place.
    pub fn commit(
        self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<Blob, StoreError> {
        let actual = self.hasher.finish();
        if let Some(size) = expected_size {
            if size != self.size {
                return Err(StoreError::SizeMismatch {
                    digest: self.label,
                    expected: size,
                    actual: self.size,
                });
            }
        }
        if let Some(e) = expected {
            if *e != actual {
                return Err(StoreError::DigestMismatch {
                    expected: e.clone(),
                    actual,
                    size: self.size,
                });
            }
        }
        let path = self.file.get_ref().path().to_path_buf();
        let tmp = self.file.into_inner().map_err(|e| StoreError::Io {
            action: "flushing",
            path,
            source: e.into_error(),
        })?;
        // Blobs are content, not secrets: readable like LinuxKit's cache (temp files are 0600).
        tmp.as_file()
            .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .map_err(io_err("setting permissions of", tmp.path()))?;
        tmp.as_file().sync_all().map_err(io_err("syncing", tmp.path()))?;
        let dir = self.blobs.join(actual.algorithm());
        std::fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        let dest = dir.join(actual.hex());
        // Same content under the same name: replacing an existing copy is harmless.
        tmp.persist(&dest).map_err(|e| StoreError::Io {
            action: "renaming into",
            path: dest,
            source: e.error,
        })?;
        Ok(Blob { digest: actual, size: self.size })
    }
}

/// Writes `data` to `path` via a temp file in `dir` and a rename.
pub(crate) fn write_atomic(dir: &Path, path: &Path, data: &[u8]) -> Result<(), StoreError> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err("creating a temp file in", dir))?;
    tmp.write_all(data).map_err(io_err("writing", tmp.path()))?;
    tmp.as_file().sync_all().map_err(io_err("syncing", tmp.path()))?;
    tmp.persist(path).map_err(|e| StoreError::Io {
        action: "renaming into",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}
