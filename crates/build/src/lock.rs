//! The image lock: which platform manifest each image string of a config resolved to. `baleen
//! build --lock FILE` writes it beside the outputs; `baleen verify --lock FILE` reads it back so
//! that the rebuild uses exactly those images, whatever the tags point at now.
//!
//! Key type: [`Lock`]. The file is JSON, sorted by image string, with no time and no path in
//! it, so the same build writes the same bytes:
//!
//! ```json
//! {
//!     "baleenLock": 1,
//!     "platform": "linux/amd64",
//!     "images": [
//!         {"image": "alpine:3.19", "reference": "docker.io/library/alpine:3.19", "manifest": "sha256:…"}
//!     ]
//! }
//! ```
//!
//! `manifest` is the platform manifest's digest (not the index's): what the layers hang from.
//! Non-goals: locking `@pkg:` sources or the Debian packages of `baleen pkg` (packages.lock does).

use baleen_oci::Digest;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The version written in `baleenLock`.
const VERSION: u64 = 1;
/// A lock names each image of a config once; this bounds what a hostile file makes us parse.
pub const MAX_LOCK_BYTES: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("not a baleen lock file (JSON with \"baleenLock\": {VERSION})")]
    NotALock,
    #[error("the lock file is not JSON")]
    Json(#[source] serde_json::Error),
    #[error("images[{index}]: {message}")]
    Entry { index: usize, message: String },
}

/// What a build does with locks: use one's pins, record its own, both or neither.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockOptions {
    /// Resolve each image string to its pinned manifest instead of what its tag names now
    /// (`baleen verify`); an image the lock lacks is an error.
    pub pins: Option<Lock>,
    /// Write the lock of this build to this file, committed with the outputs (`--lock`).
    pub write: Option<std::path::PathBuf>,
}

/// One image string's resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The canonical reference the string expanded to (`docker.io/library/alpine:3.19`).
    pub reference: String,
    /// The platform manifest's digest.
    pub manifest: Digest,
}

/// Every image of a build, by the string the YAML wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lock {
    /// `os/arch[/variant]` the manifests were chosen for.
    pub platform: String,
    pub images: BTreeMap<String, Pin>,
}

impl Lock {
    /// The lock of the images a build resolved (image string → image).
    pub fn of(
        platform: &baleen_oci::Platform,
        images: &std::collections::HashMap<String, baleen_oci::Image>,
    ) -> Lock {
        let images = images
            .iter()
            .map(|(text, img)| {
                let pin = Pin {
                    reference: img.reference.to_string(),
                    manifest: img.manifest_digest.clone(),
                };
                (text.clone(), pin)
            })
            .collect();
        Lock { platform: platform.to_string(), images }
    }

    /// The file's bytes (Go-style 4-space JSON, a trailing newline).
    pub fn to_json(&self) -> Vec<u8> {
        let images: Vec<Value> = self
            .images
            .iter()
            .map(|(text, pin)| {
                let mut m = Map::new();
                m.insert("image".into(), text.clone().into());
                m.insert("reference".into(), pin.reference.clone().into());
                m.insert("manifest".into(), pin.manifest.to_string().into());
                Value::Object(m)
            })
            .collect();
        let mut doc = Map::new();
        doc.insert("baleenLock".into(), VERSION.into());
        doc.insert("platform".into(), self.platform.clone().into());
        doc.insert("images".into(), images.into());
        let mut text = baleen_spec::oci::to_go_json(&Value::Object(doc));
        text.push('\n');
        text.into_bytes()
    }

    /// Reads a lock file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Lock, LockError> {
        let doc: Value = serde_json::from_slice(bytes).map_err(LockError::Json)?;
        if doc["baleenLock"].as_u64() != Some(VERSION) {
            return Err(LockError::NotALock);
        }
        let platform = doc["platform"].as_str().ok_or(LockError::NotALock)?.to_string();
        let mut images = BTreeMap::new();
        for (index, e) in doc["images"].as_array().ok_or(LockError::NotALock)?.iter().enumerate() {
            let field = |key: &str| {
                e[key].as_str().map(str::to_string).ok_or_else(|| LockError::Entry {
                    index,
                    message: format!("no \"{key}\" string"),
                })
            };
            let (text, reference, manifest) =
                (field("image")?, field("reference")?, field("manifest")?);
            let manifest = Digest::parse(&manifest).map_err(|e| LockError::Entry {
                index,
                message: format!("manifest {manifest:?}: {}", baleen_spec::chain(&e)),
            })?;
            if images.insert(text.clone(), Pin { reference, manifest }).is_some() {
                return Err(LockError::Entry {
                    index,
                    message: format!("{text:?} is listed twice"),
                });
            }
        }
        Ok(Lock { platform, images })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_round_trips_and_is_sorted() {
        let mut lock = Lock { platform: "linux/amd64".into(), images: BTreeMap::new() };
        for name in ["zeta:1", "alpha:2"] {
            let pin = Pin {
                reference: format!("docker.io/library/{name}"),
                manifest: Digest::sha256_of(name.as_bytes()),
            };
            lock.images.insert(name.into(), pin);
        }
        let text = lock.to_json();
        let s = String::from_utf8(text.clone()).unwrap();
        assert!(s.find("alpha:2").unwrap() < s.find("zeta:1").unwrap(), "{s}");
        assert_eq!(Lock::parse(&text).unwrap(), lock);
    }

    #[test]
    fn other_json_is_not_a_lock() {
        assert!(matches!(Lock::parse(b"{\"images\": []}"), Err(LockError::NotALock)));
        assert!(matches!(Lock::parse(b"not json"), Err(LockError::Json(_))));
        let bad = br#"{"baleenLock": 1, "platform": "linux/amd64", "images": [{"image": "a", "reference": "r", "manifest": "md5:x"}]}"#;
        let err = Lock::parse(bad).unwrap_err().to_string();
        assert!(err.starts_with("images[0]: manifest \"md5:x\""), "{err}");
    }
}
