//! Results the build derived from stored content (the initrd's segments), cached in the store
//! and found again by a key: a SHA-256 the caller computes from everything that determines the
//! result.
//!
//! ```text
//! <dir>/derived/<key>    the digest of the entry's record, one line
//! blobs/sha256/<hex>     the record (JSON: key, inputs, blobs, the caller's metadata) and the
//!                        result's own blobs, written and verified like any blob
//! ```
//!
//! The record is read back verified and must name the key it was found under, so a damaged or
//! swapped pointer is a miss, never another entry's result; the caller verifies the result's
//! blobs as it reads them. `gc` keeps an entry while every blob it was derived from (`inputs`)
//! is reachable from index.json, and drops it otherwise, and always when it names no input
//! (it was made from no stored image: cheap to make again).

use super::{io_err, Blob, Store, StoreError};
use crate::digest::Digest;
use std::collections::HashSet;
use std::path::PathBuf;

/// The most bytes a record may have (a segment's record lists its directories).
const MAX_RECORD_BYTES: u64 = 64 << 20;

const DIR: &str = "derived";

/// One cached result.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    /// 64 lowercase hex digits.
    pub key: String,
    /// The stored blobs it was made from: `gc` keeps the entry while all are reachable.
    pub inputs: Vec<Digest>,
    /// The result's own blobs.
    pub blobs: Vec<Blob>,
    /// What else the caller needs to use the result.
    pub meta: serde_json::Value,
}

fn valid_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Derived {
    fn to_json(&self) -> Vec<u8> {
        let blobs: Vec<_> = self
            .blobs
            .iter()
            .map(|b| serde_json::json!({"digest": b.digest.to_string(), "size": b.size}))
            .collect();
        let inputs: Vec<_> = self.inputs.iter().map(Digest::to_string).collect();
        serde_json::to_vec(&serde_json::json!({
            "key": self.key,
            "inputs": inputs,
            "blobs": blobs,
            "meta": self.meta,
        }))
        .unwrap_or_default()
    }

    fn from_json(bytes: &[u8]) -> Option<Derived> {
        let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        let digest = |s: &serde_json::Value| s.as_str().and_then(|s| Digest::parse(s).ok());
        let inputs = v["inputs"].as_array()?.iter().map(digest).collect::<Option<Vec<_>>>()?;
        let blobs = v["blobs"]
            .as_array()?
            .iter()
            .map(|b| Some(Blob { digest: digest(&b["digest"])?, size: b["size"].as_u64()? }))
            .collect::<Option<Vec<_>>>()?;
        Some(Derived {
            key: v["key"].as_str()?.to_string(),
            inputs,
            blobs,
            meta: v["meta"].clone(),
        })
    }
}

impl Store {
    fn derived_path(&self, key: &str) -> PathBuf {
        self.dir.join(DIR).join(key)
    }

    /// Records `entry` under its key (replacing an older entry there). Its blobs must be stored.
    pub fn put_derived(&self, entry: &Derived) -> Result<(), StoreError> {
        if !valid_key(&entry.key) {
            return Err(StoreError::BadDerivedKey(entry.key.clone()));
        }
        for b in &entry.blobs {
            if !self.has_blob(&b.digest) {
                return Err(StoreError::BlobMissing {
                    digest: b.digest.clone(),
                    store: self.dir.clone(),
                });
            }
        }
        let record = self.write_blob(&entry.to_json()[..], None)?;
        let dir = self.dir.join(DIR);
        std::fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        let line = format!("{}\n", record.digest);
        super::write_atomic(&dir, &self.derived_path(&entry.key), line.as_bytes())
    }

    /// The entry recorded under `key`, its record verified (a damaged one is moved aside as any
    /// blob is) and naming `key`; `None` when there is none, or none that can be used.
    pub fn derived(&self, key: &str) -> Result<Option<Derived>, StoreError> {
        if !valid_key(key) {
            return Err(StoreError::BadDerivedKey(key.to_string()));
        }
        let path = self.derived_path(key);
        let line = match std::fs::read_to_string(&path) {
            Ok(line) => line,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Io { action: "reading", path, source }),
        };
        let Ok(record) = Digest::parse(line.trim()) else { return Ok(None) };
        let bytes = match self.read_blob(&record, MAX_RECORD_BYTES) {
            Ok(bytes) => bytes,
            Err(StoreError::BlobMissing { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Derived::from_json(&bytes).filter(|d| d.key == key))
    }

    /// Drops the entry under `key` (its blobs go at the next `gc`).
    pub fn forget_derived(&self, key: &str) -> Result<(), StoreError> {
        if !valid_key(key) {
            return Err(StoreError::BadDerivedKey(key.to_string()));
        }
        let path = self.derived_path(key);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(StoreError::Io { action: "removing", path, source: e })
            }
            _ => Ok(()),
        }
    }

    /// For `gc`: adds to `keep` the records and blobs of the entries whose inputs are all in
    /// `keep`, and removes the other entries; returns (entries kept, entries removed).
    pub(crate) fn gc_derived(
        &self,
        keep: &mut HashSet<Digest>,
    ) -> Result<(usize, usize), StoreError> {
        let dir = self.dir.join(DIR);
        let Ok(list) = std::fs::read_dir(&dir) else { return Ok((0, 0)) };
        let (mut kept, mut removed) = (0, 0);
        for entry in list {
            let entry = entry.map_err(io_err("listing", &dir))?;
            let key = entry.file_name().to_string_lossy().into_owned();
            let found = if valid_key(&key) { self.derived(&key).ok().flatten() } else { None };
            let live = found
                .as_ref()
                .filter(|d| !d.inputs.is_empty() && d.inputs.iter().all(|i| keep.contains(i)));
            match live {
                Some(d) => {
                    let line = std::fs::read_to_string(entry.path()).unwrap_or_default();
                    if let Ok(record) = Digest::parse(line.trim()) {
                        keep.insert(record);
                    }
                    keep.extend(d.blobs.iter().map(|b| b.digest.clone()));
                    kept += 1;
                }
                None => {
                    std::fs::remove_file(entry.path())
                        .map_err(io_err("removing", &entry.path()))?;
                    removed += 1;
                }
            }
        }
        Ok((kept, removed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(store: &Store, inputs: Vec<Digest>) -> Derived {
        let blob = store.write_blob(&b"segment bytes"[..], None).unwrap();
        Derived {
            key: "ab".repeat(32),
            inputs,
            blobs: vec![blob],
            meta: serde_json::json!({"tree_bytes": 3}),
        }
    }

    #[test]
    fn an_entry_reads_back_and_a_swapped_pointer_is_a_miss() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let e = entry(&store, vec![]);
        store.put_derived(&e).unwrap();
        assert_eq!(store.derived(&e.key).unwrap(), Some(e.clone()));
        // Another key's pointer copied over: the record names its own key.
        let other = "cd".repeat(32);
        std::fs::copy(store.derived_path(&e.key), store.derived_path(&other)).unwrap();
        assert_eq!(store.derived(&other).unwrap(), None);
        assert_eq!(store.derived(&"ef".repeat(32)).unwrap(), None);
        assert!(store.derived("../x").is_err());
    }

    #[test]
    fn gc_keeps_entries_whose_inputs_are_reachable_only() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let input = store.write_blob(&b"a layer"[..], None).unwrap().digest;
        let e = entry(&store, vec![input.clone()]);
        store.put_derived(&e).unwrap();
        let mut keep: HashSet<Digest> = [input].into();
        assert_eq!(store.gc_derived(&mut keep).unwrap(), (1, 0));
        assert!(keep.contains(&e.blobs[0].digest));
        let mut none = HashSet::new();
        assert_eq!(store.gc_derived(&mut none).unwrap(), (0, 1));
        assert_eq!(store.derived(&e.key).unwrap(), None);
    }
}
