//! `format: oci` volumes (spec §1.4): the volume's image as an OCI image layout under
//! `containers/volumes/<name>/lower/`, with every platform of its index or the `platforms`
//! listed, pulled into the store first when missing.
//!
//! Key types: [`OciVolume`] (the blobs to write, in order, and `index.json`), [`prepare`].
//! Layout: `oci-layout`; `blobs/sha256/<hex>` for each selected platform's config, layers and
//! manifest (in index order, each blob once), then the index blob; `index.json` with one entry,
//! the index (or the single manifest of a non-index image), named by the canonical reference in
//! `org.opencontainers.image.ref.name` — the same naming as baleen's and LinuxKit's caches.
//! The index blob is the stored one when every child is written, else a copy listing only the
//! written children, so every descriptor in the layout resolves. Attestation manifests
//! (`unknown/unknown`) are not written.
//!
//! Non-goals: converting media types, re-compressing layers, nested indexes.

use baleen_oci::{Digest, Platform, PullOptions, Reference, Store};
use serde_json::{json, Value};
use std::io::{self, Read};

use baleen_oci::manifest::{MAX_MANIFEST_BYTES, OCI_INDEX};

#[derive(Debug, thiserror::Error)]
pub enum OciVolumeError {
    #[error("volumes[{index}] {name:?}: image {reference}: {message}")]
    Image { index: usize, name: String, reference: String, message: String },
}

/// What the tree writes for one volume.
#[derive(Debug, Clone)]
pub struct OciVolume {
    pub reference: String,
    /// `sha256:…` digests and sizes, in write order.
    pub blobs: Vec<(String, u64)>,
    /// A rewritten index that is not in the store (digest, bytes).
    pub own_index: Option<(String, Vec<u8>)>,
    pub index_json: Vec<u8>,
}

impl OciVolume {
    /// Opens a blob: the rewritten index from memory, the rest from the store.
    pub fn open(&self, store: &Store, digest: &str) -> io::Result<Box<dyn Read>> {
        if let Some((d, bytes)) = &self.own_index {
            if d == digest {
                return Ok(Box::new(io::Cursor::new(bytes.clone())));
            }
        }
        let d = Digest::parse(digest).map_err(|e| io::Error::other(e.to_string()))?;
        let size = self.blobs.iter().find(|(b, _)| b == digest).map(|(_, s)| *s);
        // Checked as read: the tree reads each blob to its size, which completes the check.
        let f = store.open_verified(&d, size).map_err(io::Error::other)?;
        Ok(Box::new(io::BufReader::with_capacity(1 << 20, f)))
    }
}

/// Resolves volume `index`'s image in the store (pulling the platforms it lacks) into the list
/// of blobs to write.
pub fn prepare(
    store: &Store,
    pull: &PullOptions,
    index: usize,
    name: &str,
    reference: &Reference,
    platforms: &[String],
) -> Result<OciVolume, OciVolumeError> {
    let err = |message: String| OciVolumeError::Image {
        index,
        name: name.to_string(),
        reference: reference.to_string(),
        message,
    };
    let wanted: Vec<Platform> = platforms
        .iter()
        .map(|p| Platform::parse(p).map_err(|e| err(format!("platforms: {e}"))))
        .collect::<Result<_, _>>()?;
    let root = store
        .lookup(reference)
        .map_err(|e| err(baleen_spec::chain(&e)))?
        .ok_or_else(|| err("not in the image cache".into()))?;
    let root_digest = root.digest().to_string();
    let root_bytes = read(store, &root_digest).map_err(&err)?;
    let root_json: Value = serde_json::from_slice(&root_bytes)
        .map_err(|e| err(format!("reading manifest {root_digest}: {e}")))?;
    let mut blobs: Vec<(String, u64)> = Vec::new();
    let mut own_index = None;
    let Some(children) = root_json["manifests"].as_array() else {
        // A single-platform image: its manifest is the layout's only entry.
        push_image(&mut blobs, &root_json, &root_digest, root_bytes.len() as u64).map_err(&err)?;
        return Ok(finish(
            reference,
            blobs,
            own_index,
            root.media_type().to_string(),
            &root_digest,
            root_bytes.len() as u64,
        ));
    };
    let platform_of = |m: &Value| -> Platform {
        let p = &m["platform"];
        Platform::new(
            p["os"].as_str().unwrap_or_default(),
            p["architecture"].as_str().unwrap_or_default(),
            p["variant"].as_str(),
        )
    };
    let selected: Vec<&Value> = children
        .iter()
        .filter(|m| {
            let p = platform_of(m);
            p.os != "unknown" && (wanted.is_empty() || wanted.iter().any(|w| w.matches(&p)))
        })
        .collect();
    if selected.is_empty() {
        let have: Vec<String> = children.iter().map(|m| platform_of(m).to_string()).collect();
        return Err(err(format!(
            "no manifest for platforms {}; the index has: {}",
            platforms.join(", "),
            have.join(", ")
        )));
    }
    // Pull the platforms whose blobs the store lacks (a build pulls only its own platform).
    let missing: Vec<(Reference, Platform)> = selected
        .iter()
        .filter(|m| !complete(store, m["digest"].as_str().unwrap_or_default()))
        .map(|m| (reference.clone(), platform_of(m)))
        .collect();
    if !missing.is_empty() {
        let opts = PullOptions { always: false, ..pull.clone() };
        for result in baleen_oci::pull_all_blocking(store, &missing, &opts) {
            result.map_err(|e| err(e.to_string()))?;
        }
    }
    for m in &selected {
        let digest = m["digest"].as_str().unwrap_or_default();
        let bytes = read(store, digest).map_err(&err)?;
        let manifest: Value = serde_json::from_slice(&bytes)
            .map_err(|e| err(format!("reading manifest {digest}: {e}")))?;
        push_image(&mut blobs, &manifest, digest, bytes.len() as u64).map_err(&err)?;
    }
    let (index_digest, index_size) = if selected.len() == children.len() {
        (root_digest.clone(), root_bytes.len() as u64)
    } else {
        let mut copy = root_json.clone();
        copy["manifests"] = Value::Array(selected.into_iter().cloned().collect());
        let bytes = serde_json::to_vec(&copy).expect("JSON values serialize");
        let d = Digest::sha256_of(&bytes).to_string();
        let size = bytes.len() as u64;
        own_index = Some((d.clone(), bytes));
        (d, size)
    };
    push_unique(&mut blobs, &index_digest, index_size);
    let media_type = root.media_type().to_string();
    Ok(finish(reference, blobs, own_index, media_type, &index_digest, index_size))
}

fn finish(
    reference: &Reference,
    blobs: Vec<(String, u64)>,
    own_index: Option<(String, Vec<u8>)>,
    media_type: String,
    digest: &str,
    size: u64,
) -> OciVolume {
    let media_type = if media_type.is_empty() { OCI_INDEX.to_string() } else { media_type };
    let index_json = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": media_type,
            "digest": digest,
            "size": size,
            "annotations": {"org.opencontainers.image.ref.name": reference.to_string()},
        }],
    });
    OciVolume {
        reference: reference.to_string(),
        blobs,
        own_index,
        index_json: baleen_spec::oci::to_go_json(&index_json).into_bytes(),
    }
}

/// Config, layers, then the manifest itself (LinuxKit's order), each blob once.
fn push_image(
    blobs: &mut Vec<(String, u64)>,
    manifest: &Value,
    digest: &str,
    size: u64,
) -> Result<(), String> {
    let desc = |d: &Value| -> Result<(String, u64), String> {
        match (d["digest"].as_str(), d["size"].as_u64()) {
            (Some(digest), Some(size)) => Ok((digest.to_string(), size)),
            _ => Err(format!("manifest {digest}: a descriptor without digest or size")),
        }
    };
    let (c, cs) = desc(&manifest["config"])?;
    push_unique(blobs, &c, cs);
    for l in manifest["layers"].as_array().into_iter().flatten() {
        let (l, ls) = desc(l)?;
        push_unique(blobs, &l, ls);
    }
    push_unique(blobs, digest, size);
    Ok(())
}

fn push_unique(blobs: &mut Vec<(String, u64)>, digest: &str, size: u64) {
    if !blobs.iter().any(|(d, _)| d == digest) {
        blobs.push((digest.to_string(), size));
    }
}

fn read(store: &Store, digest: &str) -> Result<Vec<u8>, String> {
    let d = Digest::parse(digest).map_err(|e| format!("manifest digest {digest:?}: {e}"))?;
    store
        .read_blob(&d, MAX_MANIFEST_BYTES)
        .map_err(|e| format!("reading manifest {digest}: {}", baleen_spec::chain(&e)))
}

/// Whether the manifest `digest` and all its blobs are in the store.
fn complete(store: &Store, digest: &str) -> bool {
    let Ok(bytes) = read(store, digest) else { return false };
    let Ok(m) = serde_json::from_slice::<Value>(&bytes) else { return false };
    let has = |d: &Value| {
        d["digest"].as_str().and_then(|s| Digest::parse(s).ok()).is_some_and(|d| store.has_blob(&d))
    };
    has(&m["config"]) && m["layers"].as_array().into_iter().flatten().all(has)
}
