//! `index.json`: the names in the store. Rewritten whole (temp + rename) under an exclusive
//! flock on `<store>/.lock`, the lock LinuxKit takes for the same file.

use super::{io_err, write_atomic, Store, StoreError};
use crate::digest::Digest;
use crate::manifest::{media_type_of, Manifest, MAX_MANIFEST_BYTES};
use crate::reference::Reference;
use oci_spec::image::Descriptor;
use std::collections::HashMap;
use std::path::PathBuf;

/// The annotation LinuxKit (and the OCI layout spec) names cached images with.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd and `docker save` put the full name in.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// index.json as read and written. Unknown top-level fields survive a rewrite, so a file
/// LinuxKit wrote keeps what it had.
#[derive(serde::Deserialize, serde::Serialize)]
struct IndexFile {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(default)]
    manifests: Vec<Descriptor>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

impl Store {
    pub(crate) fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    /// The descriptors of index.json, in file order.
    pub fn index(&self) -> Result<Vec<Descriptor>, StoreError> {
        Ok(self.read_index()?.manifests)
    }

    fn read_index(&self) -> Result<IndexFile, StoreError> {
        let p = self.index_path();
        match std::fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| StoreError::Json { path: p, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(IndexFile { schema_version: 2, manifests: Vec::new(), rest: Default::default() })
            }
            Err(e) => Err(StoreError::Io { action: "reading", path: p, source: e }),
        }
    }

    /// Read-modify-write of index.json under the store's exclusive lock.
    pub(crate) fn update_index<T>(
        &self,
        f: impl FnOnce(&mut Vec<Descriptor>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let lock_path = self.dir.join(".lock");
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err("opening lock file", &lock_path))?;
        fs4::fs_std::FileExt::lock_exclusive(&lock).map_err(io_err("locking", &lock_path))?;
        let mut index = self.read_index()?;
        let out = f(&mut index.manifests)?;
        if !index.rest.contains_key("mediaType") {
            index.rest.insert("mediaType".into(), crate::manifest::OCI_INDEX.into());
        }
        let bytes = serde_json::to_vec(&index).expect("index.json serialises");
        write_atomic(&self.dir, &self.index_path(), &bytes)?;
        // Closing the file releases the flock.
        drop(lock);
        Ok(out)
    }

    /// Names `root` (an image manifest or index already in the store) as `name`, replacing
    /// whatever had that name before.
    pub fn tag(&self, name: &Reference, root: Descriptor) -> Result<(), StoreError> {
        let name = name.to_string();
        let mut root = root;
        let mut ann = root.annotations().clone().unwrap_or_default();
        ann.insert(REF_NAME.to_string(), name.clone());
        root.set_annotations(Some(ann));
        // Platform fields describe index children, not roots.
        root.set_platform(None);
        self.update_index(|manifests| {
            manifests.retain(|d| name_of(d) != Some(name.as_str()));
            manifests.push(root);
            Ok(())
        })
    }

    /// `(name, root descriptor)` for every named entry of index.json, sorted by name.
    pub fn list(&self) -> Result<Vec<(String, Descriptor)>, StoreError> {
        let mut out: Vec<(String, Descriptor)> = self
            .index()?
            .into_iter()
            .filter_map(|d| name_of(&d).map(|n| (n.to_string(), d.clone())))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Removes the entry named `r`. Returns whether there was one. Blobs stay until `gc`.
    pub fn remove(&self, r: &Reference) -> Result<bool, StoreError> {
        let name = r.to_string();
        self.update_index(|manifests| {
            let before = manifests.len();
            manifests.retain(|d| name_of(d) != Some(name.as_str()));
            Ok(manifests.len() != before)
        })
    }

    /// The root descriptor for `r`: the entry with its name, else (for a reference with a digest)
    /// the stored manifest or index with that digest, whatever name it was stored under.
    pub fn lookup(&self, r: &Reference) -> Result<Option<Descriptor>, StoreError> {
        let name = r.to_string();
        let index = self.index()?;
        if let Some(d) = index.iter().find(|d| name_of(d) == Some(name.as_str())) {
            return Ok(Some(d.clone()));
        }
        let Some(digest) = &r.digest else { return Ok(None) };
        if let Some(d) = index.iter().find(|d| d.digest().to_string() == digest.to_string()) {
            return Ok(Some(d.clone()));
        }
        if !self.has_blob(digest) {
            return Ok(None);
        }
        let bytes = self.read_blob(digest, MAX_MANIFEST_BYTES)?;
        let m = Manifest::parse(&bytes, digest, None)
            .map_err(|source| StoreError::Manifest { reference: name, source: Box::new(source) })?;
        Ok(Some(Descriptor::new(media_type_of(&m, &bytes), bytes.len() as u64, digest.to_oci())))
    }
}

/// The cached name of an index.json entry: `org.opencontainers.image.ref.name`, or containerd's
/// annotation for entries that only carry that.
pub fn name_of(d: &Descriptor) -> Option<&str> {
    let ann: &HashMap<String, String> = d.annotations().as_ref()?;
    ann.get(REF_NAME).or_else(|| ann.get(CONTAINERD_NAME)).map(String::as_str)
}

/// Our digest type for a descriptor's digest (validated when the manifest was parsed).
pub(crate) fn digest_of(d: &Descriptor) -> Result<Digest, StoreError> {
    Digest::from_oci(d.digest()).map_err(|_| StoreError::BadDescriptor {
        reference: "(index)".into(),
        digest: Digest::sha256_of(b""),
        bad: d.digest().to_string(),
    })
}
