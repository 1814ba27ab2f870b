//! Writing a component as an OCI image: one gzip layer per platform, a config, a manifest, and an
//! image index naming every platform, all byte-deterministic (fixed gzip header, no timestamps,
//! JSON keys in a fixed order).
//!
//! Blobs go to a [`Sink`]: the content store of `baleen-oci`, or a plain OCI image-layout
//! directory ([`LayoutDir`]).

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// BuildKit's attestation layout, as `baleen build` reads it: `baleen-oci`'s names.
pub use baleen_oci::attestation::{
    ATTESTATION_MANIFEST, IN_TOTO_MEDIA_TYPE as MT_IN_TOTO, PREDICATE_TYPE, REFERENCE_DIGEST,
    REFERENCE_TYPE, SPDX_PREDICATE,
};
/// OCI's media types: `baleen-oci`'s names.
pub use baleen_oci::manifest::{
    OCI_CONFIG as MT_CONFIG, OCI_INDEX as MT_INDEX, OCI_LAYER_GZIP as MT_LAYER_GZIP,
    OCI_MANIFEST as MT_MANIFEST,
};
use baleen_oci::written::{WrittenDescriptor, WrittenIndex, WrittenManifest, WrittenPlatform};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{action} {path}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("compressing the {arch} layer")]
    Compress { arch: String, source: std::io::Error },
    #[error("storing {what}: {message}")]
    Store { what: String, message: String },
}

/// A stored blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desc {
    pub media_type: String,
    /// `sha256:<hex>`
    pub digest: String,
    pub size: u64,
}

impl Desc {
    fn written(&self) -> WrittenDescriptor<'_> {
        WrittenDescriptor::new(&self.media_type, &self.digest, self.size)
    }
}

/// A manifest of one config and one layer, as every image and attestation here has.
fn manifest<'a>(config: &'a Desc, layer: WrittenDescriptor<'a>) -> WrittenManifest<'a> {
    WrittenManifest {
        schema_version: 2,
        media_type: MT_MANIFEST,
        artifact_type: None,
        config: config.written(),
        layers: vec![layer],
        annotations: BTreeMap::new(),
    }
}

/// An index entry: a manifest, what it attests (for an attestation manifest) and its platform.
struct Entry {
    manifest: Desc,
    attests: Option<String>,
    architecture: String,
    os: &'static str,
}

/// The architectures an OCI index (JSON bytes) names.
pub fn index_architectures(index: &[u8]) -> Option<Vec<String>> {
    let index: Value = serde_json::from_slice(index).ok()?;
    let manifests = index["manifests"].as_array()?;
    Some(
        manifests
            .iter()
            .filter_map(|m| m["platform"]["architecture"].as_str().map(str::to_owned))
            // Attestation manifests are `unknown/unknown`: not a platform.
            .filter(|a| a != "unknown")
            .collect(),
    )
}

/// Where the image's blobs and name go.
pub trait Sink {
    /// Stores `size` bytes with digest `digest` read from `r`.
    fn put_blob(&mut self, digest: &str, size: u64, r: &mut dyn Read) -> Result<(), ImageError>;
    /// Names the root (an index) `name` (`org/image:tag`).
    fn tag(&mut self, name: &str, root: &Desc) -> Result<(), ImageError>;
    /// The root named `name`, when the sink has it (a build with that tag is then skipped).
    fn lookup(&self, name: &str) -> Option<Desc>;
    /// The OCI architectures the index `root` names, when the sink can read it back. A tag
    /// names the package's inputs, not the platforms asked for: a build for more platforms
    /// than the stored image holds is not skipped.
    fn architectures(&self, _root: &Desc) -> Option<Vec<String>> {
        None
    }
}

/// One platform's content: an uncompressed layer tar and the image config.
#[derive(Debug)]
pub struct PlatformImage {
    /// Debian architecture (amd64, arm64, riscv64).
    pub arch: String,
    pub layer_tar: std::fs::File,
    pub config: crate::spec::ImageConfig,
    /// Image labels, e.g. `org.mobyproject.config`.
    pub labels: Vec<(String, String)>,
    /// The SPDX document attested for this platform's image ([`crate::sbom::document`]).
    pub sbom: Option<Value>,
}

/// The OCI architecture of a Debian one.
pub fn oci_arch(debian: &str) -> &str {
    match debian {
        "amd64" => "amd64",
        "arm64" => "arm64",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// Writes every platform and an index naming them; tags the index `name` and returns it.
/// A platform's SBOM becomes an attestation manifest after the platform manifests, as BuildKit
/// lays them out.
pub fn write_image(
    sink: &mut dyn Sink,
    name: &str,
    platforms: Vec<PlatformImage>,
) -> Result<Desc, ImageError> {
    let mut manifests = Vec::new();
    let mut attestations = Vec::new();
    for p in platforms {
        let arch = p.arch.clone();
        let (layer, diff_id, mut gz) = compress(p.layer_tar, &arch)?;
        gz.seek(SeekFrom::Start(0))
            .map_err(|source| ImageError::Compress { arch: arch.clone(), source })?;
        sink.put_blob(&layer.digest, layer.size, &mut gz)?;

        let mut cfg = serde_json::Map::new();
        if let Some(e) = &p.config.entrypoint {
            cfg.insert("Entrypoint".into(), json!(e));
        }
        if let Some(c) = &p.config.cmd {
            cfg.insert("Cmd".into(), json!(c));
        }
        if !p.config.env.is_empty() {
            cfg.insert("Env".into(), json!(p.config.env));
        }
        if let Some(w) = &p.config.workdir {
            cfg.insert("WorkingDir".into(), json!(w));
        }
        if !p.labels.is_empty() {
            let labels: serde_json::Map<String, Value> =
                p.labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            cfg.insert("Labels".into(), Value::Object(labels));
        }
        let config = json!({
            "architecture": oci_arch(&arch),
            "os": "linux",
            "config": Value::Object(cfg),
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": "baleen pkg build", "comment": "Debian packages, files and binaries from build.yml"}],
        });
        let config = put_json(sink, MT_CONFIG, &config)?;
        let m = put_json(sink, MT_MANIFEST, &manifest(&config, layer.written()))?;
        if let Some(doc) = p.sbom {
            attestations.push(attest(sink, name, &arch, &m, doc)?);
        }
        let architecture = oci_arch(&arch).to_string();
        manifests.push(Entry { manifest: m, attests: None, architecture, os: "linux" });
    }
    manifests.extend(attestations);
    let index = WrittenIndex {
        schema_version: 2,
        media_type: MT_INDEX,
        manifests: manifests
            .iter()
            .map(|e| WrittenDescriptor {
                annotations: match &e.attests {
                    Some(digest) => BTreeMap::from([
                        (REFERENCE_DIGEST, digest.as_str()),
                        (REFERENCE_TYPE, ATTESTATION_MANIFEST),
                    ]),
                    None => BTreeMap::new(),
                },
                platform: Some(WrittenPlatform { architecture: &e.architecture, os: e.os }),
                ..e.manifest.written()
            })
            .collect(),
    };
    let root = put_json(sink, MT_INDEX, &index)?;
    sink.tag(name, &root)?;
    Ok(root)
}

/// Stores an in-toto statement of `document` about the manifest `image` and the attestation manifest
/// holding it; returns the attestation's index entry.
fn attest(
    sink: &mut dyn Sink,
    name: &str,
    arch: &str,
    image: &Desc,
    document: Value,
) -> Result<Entry, ImageError> {
    // BuildKit's subject: the image as a purl, `pkg:docker/baleen/init@<tag>?platform=…`.
    let (repo, tag) = name.rsplit_once(':').unwrap_or((name, "latest"));
    let subject = format!("pkg:docker/{repo}@{tag}?platform=linux%2F{}", oci_arch(arch));
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": SPDX_PREDICATE,
        "subject": [{"name": subject, "digest": {"sha256": image.digest.trim_start_matches("sha256:")}}],
        "predicate": document,
    });
    let layer = put_json(sink, MT_IN_TOTO, &statement)?;
    let config = json!({
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
    });
    let config = put_json(sink, MT_CONFIG, &config)?;
    let layer_entry = WrittenDescriptor {
        annotations: BTreeMap::from([(PREDICATE_TYPE, SPDX_PREDICATE)]),
        ..layer.written()
    };
    let att = put_json(sink, MT_MANIFEST, &manifest(&config, layer_entry))?;
    Ok(Entry {
        manifest: att,
        attests: Some(image.digest.clone()),
        architecture: "unknown".to_string(),
        os: "unknown",
    })
}

fn put_json<T: serde::Serialize>(
    sink: &mut dyn Sink,
    media_type: &str,
    v: &T,
) -> Result<Desc, ImageError> {
    let bytes = serde_json::to_vec(v).expect("JSON values and manifests serialise");
    let d = Desc {
        media_type: media_type.to_owned(),
        digest: sha256_digest(&bytes),
        size: bytes.len() as u64,
    };
    sink.put_blob(&d.digest, d.size, &mut &bytes[..])?;
    Ok(d)
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A writer that hashes what passes through it.
struct HashWriter<W> {
    inner: W,
    hash: Sha256,
    n: u64,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.hash.update(&buf[..k]);
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Gzips the tar into a temp file: returns the layer descriptor, the diff ID, and the file.
fn compress(
    mut tar: std::fs::File,
    arch: &str,
) -> Result<(Desc, String, std::fs::File), ImageError> {
    let err = |source| ImageError::Compress { arch: arch.to_owned(), source };
    tar.seek(SeekFrom::Start(0)).map_err(err)?;
    let out = tempfile::tempfile().map_err(err)?;
    let compressed = HashWriter { inner: out, hash: Sha256::new(), n: 0 };
    // A fixed header: no file name, mtime 0, OS "unknown" — gzip bytes depend on content only.
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(compressed, flate2::Compression::default());
    let mut plain = HashWriter { inner: gz, hash: Sha256::new(), n: 0 };
    std::io::copy(&mut tar, &mut plain).map_err(err)?;
    let diff_id = format!("sha256:{}", hex::encode(plain.hash.finalize()));
    let compressed = plain.inner.finish().map_err(err)?;
    let desc = Desc {
        media_type: MT_LAYER_GZIP.to_owned(),
        digest: format!("sha256:{}", hex::encode(compressed.hash.finalize())),
        size: compressed.n,
    };
    Ok((desc, diff_id, compressed.inner))
}

/// A plain OCI image-layout directory (`oci-layout`, `index.json`, `blobs/sha256/`), for
/// `--output DIR` and tests.
#[derive(Debug)]
pub struct LayoutDir {
    pub dir: PathBuf,
}

impl LayoutDir {
    pub fn create(dir: &Path) -> Result<LayoutDir, ImageError> {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(|source| ImageError::Io {
            action: "creating",
            path: blobs,
            source,
        })?;
        let layout = dir.join("oci-layout");
        std::fs::write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)
            .map_err(|source| ImageError::Io { action: "writing", path: layout, source })?;
        Ok(LayoutDir { dir: dir.to_owned() })
    }
}

impl LayoutDir {
    fn index(&self) -> Option<Value> {
        std::fs::read(self.dir.join("index.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }
}

impl Sink for LayoutDir {
    fn architectures(&self, root: &Desc) -> Option<Vec<String>> {
        let hex = root.digest.trim_start_matches("sha256:");
        index_architectures(&std::fs::read(self.dir.join("blobs/sha256").join(hex)).ok()?)
    }

    fn lookup(&self, name: &str) -> Option<Desc> {
        let index = self.index()?;
        let d = index["manifests"]
            .as_array()?
            .iter()
            .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == name)?;
        Some(Desc {
            media_type: d["mediaType"].as_str()?.to_owned(),
            digest: d["digest"].as_str()?.to_owned(),
            size: d["size"].as_u64()?,
        })
    }

    fn put_blob(&mut self, digest: &str, _size: u64, r: &mut dyn Read) -> Result<(), ImageError> {
        let hex = digest.trim_start_matches("sha256:");
        let path = self.dir.join("blobs/sha256").join(hex);
        let mut f = std::fs::File::create(&path).map_err(|source| ImageError::Io {
            action: "creating",
            path: path.clone(),
            source,
        })?;
        std::io::copy(r, &mut f).map_err(|source| ImageError::Io {
            action: "writing",
            path,
            source,
        })?;
        Ok(())
    }

    fn tag(&mut self, name: &str, root: &Desc) -> Result<(), ImageError> {
        let path = self.dir.join("index.json");
        let mut index: Value = self
            .index()
            .unwrap_or_else(|| json!({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": []}));
        let entry = WrittenDescriptor {
            annotations: BTreeMap::from([("org.opencontainers.image.ref.name", name)]),
            ..root.written()
        };
        let entry = serde_json::to_value(entry).expect("descriptors serialise");
        let list = index["manifests"].as_array_mut().expect("index.json has a manifests list");
        list.retain(|d| d["annotations"]["org.opencontainers.image.ref.name"] != name);
        list.push(entry);
        let bytes = serde_json::to_vec(&index).expect("JSON values serialise");
        std::fs::write(&path, bytes).map_err(|source| ImageError::Io {
            action: "writing",
            path,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(content: &[u8]) -> std::fs::File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(content).unwrap();
        f
    }

    fn build(dir: &Path, content: &[u8]) -> Desc {
        let mut sink = LayoutDir::create(dir).unwrap();
        let p = PlatformImage {
            arch: "amd64".into(),
            layer_tar: layer(content),
            config: crate::spec::ImageConfig {
                cmd: Some(vec!["/bin/sh".into()]),
                ..Default::default()
            },
            labels: vec![("org.mobyproject.config".into(), r#"{"pid":"host"}"#.into())],
            sbom: None,
        };
        write_image(&mut sink, "baleen/x:1", vec![p]).unwrap()
    }

    /// The bytes of a two-platform image with an SBOM attestation, and of the layout's
    /// index.json, pinned (taken before the manifests were written through baleen-oci's types).
    #[test]
    fn image_and_index_bytes_are_pinned() {
        let t = tempfile::tempdir().unwrap();
        let mut sink = LayoutDir::create(t.path()).unwrap();
        let platform = |arch: &str, content: &[u8]| PlatformImage {
            arch: arch.into(),
            layer_tar: layer(content),
            config: crate::spec::ImageConfig {
                entrypoint: Some(vec!["/init".into()]),
                env: vec!["A=1".into()],
                workdir: Some("/".into()),
                ..Default::default()
            },
            labels: vec![("org.mobyproject.config".into(), r#"{"pid":"host"}"#.into())],
            sbom: Some(serde_json::json!({"spdxVersion": "SPDX-2.3", "name": arch})),
        };
        let root = write_image(
            &mut sink,
            "baleen/x:1",
            vec![platform("amd64", b"one"), platform("arm64", b"two")],
        )
        .unwrap();
        let index = std::fs::read(t.path().join("index.json")).unwrap();
        assert_eq!(
            (root.digest.as_str(), sha256_digest(&index).as_str()),
            (
                "sha256:19be572d100a8a2a1f709fd0ab5d762129a0b3f217f7f19411e5fde1f24ca234",
                "sha256:c0e8a078391648e5362dc3493365693c5cd67fd7d571edcb8cbc85d8c7179145"
            )
        );
    }

    #[test]
    fn same_input_same_digest_and_a_valid_layout() {
        let t = tempfile::tempdir().unwrap();
        let a = build(&t.path().join("a"), b"tar bytes");
        let b = build(&t.path().join("b"), b"tar bytes");
        assert_eq!(a, b);
        let c = build(&t.path().join("c"), b"tar byteZ");
        assert_ne!(a.digest, c.digest);

        let idx: Value =
            serde_json::from_slice(&std::fs::read(t.path().join("a/index.json")).unwrap()).unwrap();
        assert_eq!(
            idx["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
            "baleen/x:1"
        );
        // Every blob's name is its digest.
        for e in std::fs::read_dir(t.path().join("a/blobs/sha256")).unwrap() {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap();
            assert_eq!(
                sha256_digest(&bytes),
                format!("sha256:{}", e.file_name().to_string_lossy())
            );
        }
        let index_blob = std::fs::read(
            t.path().join("a/blobs/sha256").join(a.digest.trim_start_matches("sha256:")),
        )
        .unwrap();
        let index: Value = serde_json::from_slice(&index_blob).unwrap();
        assert_eq!(index["manifests"][0]["platform"]["architecture"], "amd64");
    }
}
