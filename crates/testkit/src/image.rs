//! OCI images made in memory for tests: gzip'd tar layers from [`crate::layers`] entries, a
//! config, a manifest, and optionally an index over several platforms. Written as an OCI
//! layout (the format of baleen's store and LinuxKit's cache), so a test can open the
//! directory as a `baleen_oci::Store` and push from it with baleen's own push.
//!
//! ```no_run
//! use baleen_testkit::{image::ImageBuilder, layers::file};
//! let img = ImageBuilder::new()
//!     .layer(&[file("etc/hello", b"hi\n")])
//!     .config(serde_json::json!({"Cmd": ["/bin/sh"]}))
//!     .build();
//! img.write_layout(std::path::Path::new("/tmp/store"), "127.0.0.1:5000/test/hello:v1");
//! ```
//!
//! No dependency on `baleen-oci`: the bytes are made here independently, so the tests cross-check
//! baleen's reading of them rather than baleen reading its own output.

use crate::layers::{gzip, tar_layer, TestEntry};
use sha2::Digest as _;
use std::path::Path;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    let h = sha2::Sha256::digest(data);
    let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Builds one single-platform image.
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    layers: Vec<(Vec<u8>, Vec<u8>, String)>,
    os: String,
    arch: String,
    variant: Option<String>,
    config: serde_json::Value,
}

impl Default for ImageBuilder {
    fn default() -> Self {
        ImageBuilder::new()
    }
}

impl ImageBuilder {
    /// An image for linux/amd64 with no layers and an empty config.
    pub fn new() -> ImageBuilder {
        ImageBuilder {
            layers: Vec::new(),
            os: "linux".into(),
            arch: "amd64".into(),
            variant: None,
            config: serde_json::json!({}),
        }
    }

    /// Adds a gzip'd tar layer with these entries.
    pub fn layer(self, entries: &[TestEntry]) -> ImageBuilder {
        let tar = tar_layer(entries);
        self.raw_layer(gzip(&tar), tar, OCI_LAYER_GZIP)
    }

    /// Adds a layer from its blob bytes, the uncompressed tar (for the diff_id), and media type.
    pub fn raw_layer(
        mut self,
        blob: Vec<u8>,
        uncompressed: Vec<u8>,
        media_type: &str,
    ) -> ImageBuilder {
        self.layers.push((blob, uncompressed, media_type.to_string()));
        self
    }

    /// Sets `os/arch[/variant]`.
    pub fn platform(mut self, os: &str, arch: &str, variant: Option<&str>) -> ImageBuilder {
        self.os = os.into();
        self.arch = arch.into();
        self.variant = variant.map(str::to_string);
        self
    }

    /// Sets the config's `config` object (Cmd, Env, Labels…).
    pub fn config(mut self, config: serde_json::Value) -> ImageBuilder {
        self.config = config;
        self
    }

    pub fn build(&self) -> BuiltImage {
        let mut cfg = serde_json::json!({
            "architecture": self.arch,
            "os": self.os,
            "config": self.config,
            "rootfs": {"type": "layers", "diff_ids": self.layers.iter().map(|(_, t, _)| sha256(t)).collect::<Vec<_>>()},
        });
        if let Some(v) = &self.variant {
            cfg["variant"] = v.clone().into();
        }
        let config = serde_json::to_vec(&cfg).expect("serialises");
        let layers: Vec<Blob> = self
            .layers
            .iter()
            .map(|(b, _, mt)| Blob { digest: sha256(b), media_type: mt.clone(), data: b.clone() })
            .collect();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(&config), "size": config.len()},
            "layers": layers.iter().map(|l| serde_json::json!({"mediaType": l.media_type, "digest": l.digest, "size": l.data.len()})).collect::<Vec<_>>(),
        });
        let manifest = serde_json::to_vec(&manifest).expect("serialises");
        BuiltImage {
            manifest: Blob {
                digest: sha256(&manifest),
                media_type: OCI_MANIFEST.into(),
                data: manifest,
            },
            config: Blob { digest: sha256(&config), media_type: OCI_CONFIG.into(), data: config },
            layers,
            os: self.os.clone(),
            arch: self.arch.clone(),
            variant: self.variant.clone(),
        }
    }
}

/// One blob: digest, media type, bytes.
#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: String,
    pub media_type: String,
    pub data: Vec<u8>,
}

/// A built image: its manifest, config and layer blobs.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub manifest: Blob,
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl BuiltImage {
    /// All blobs, manifest first.
    pub fn blobs(&self) -> Vec<&Blob> {
        let mut v = vec![&self.manifest, &self.config];
        v.extend(&self.layers);
        v
    }

    /// Writes the blobs into an OCI layout at `dir` and names the manifest `name` in
    /// index.json (annotation `org.opencontainers.image.ref.name`), creating the layout when
    /// missing.
    pub fn write_layout(&self, dir: &Path, name: &str) {
        write_blobs(dir, &self.blobs());
        add_to_index(dir, &self.manifest, name);
    }
}

/// A multi-platform index over built images.
#[derive(Debug, Clone)]
pub struct BuiltIndex {
    pub index: Blob,
    pub images: Vec<BuiltImage>,
}

/// Builds an OCI index over `images` (each entry carrying its platform).
pub fn index_of(images: &[BuiltImage]) -> BuiltIndex {
    let manifests: Vec<serde_json::Value> = images
        .iter()
        .map(|i| {
            let mut platform = serde_json::json!({"architecture": i.arch, "os": i.os});
            if let Some(v) = &i.variant {
                platform["variant"] = v.clone().into();
            }
            serde_json::json!({"mediaType": OCI_MANIFEST, "digest": i.manifest.digest, "size": i.manifest.data.len(), "platform": platform})
        })
        .collect();
    let index = serde_json::to_vec(
        &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}),
    )
    .expect("serialises");
    BuiltIndex {
        index: Blob { digest: sha256(&index), media_type: OCI_INDEX.into(), data: index },
        images: images.to_vec(),
    }
}

impl BuiltIndex {
    /// Writes the index and every image's blobs into an OCI layout, naming the index `name`.
    pub fn write_layout(&self, dir: &Path, name: &str) {
        write_blobs(dir, &[&self.index]);
        for i in &self.images {
            write_blobs(dir, &i.blobs());
        }
        add_to_index(dir, &self.index, name);
    }
}

fn write_blobs(dir: &Path, blobs: &[&Blob]) {
    let b = dir.join("blobs/sha256");
    std::fs::create_dir_all(&b).expect("creating blobs dir");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("writing oci-layout");
    for blob in blobs {
        let hex = blob.digest.strip_prefix("sha256:").expect("sha256");
        std::fs::write(b.join(hex), &blob.data).expect("writing blob");
    }
}

fn add_to_index(dir: &Path, root: &Blob, name: &str) {
    let path = dir.join("index.json");
    let mut index: serde_json::Value = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| serde_json::json!({"schemaVersion": 2, "manifests": []}));
    let manifests = index["manifests"].as_array_mut().expect("manifests array");
    manifests.retain(|m| m["annotations"]["org.opencontainers.image.ref.name"] != name);
    manifests.push(serde_json::json!({
        "mediaType": root.media_type, "digest": root.digest, "size": root.data.len(),
        "annotations": {"org.opencontainers.image.ref.name": name},
    }));
    std::fs::write(&path, serde_json::to_vec(&index).expect("serialises"))
        .expect("writing index.json");
}
