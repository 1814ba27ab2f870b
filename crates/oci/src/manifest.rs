//! Telling image manifests from indexes (OCI and Docker schema 2 media types alike), and picking
//! the manifest of one platform out of an index.

use crate::digest::{Digest, DigestError};
use crate::platform::Platform;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

/// The largest manifest or index baleen reads (from a registry, the store or an archive). Real
/// manifests are a few KiB; the cap keeps a hostile registry from making us buffer gigabytes.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_SCHEMA1: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// What a registry is asked to send for a manifest request, in order of preference.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest {digest} is Docker schema 1 ({}), which baleen does not read; re-push the image with a current tool", crate::printable(media_type))]
    Schema1 { digest: Digest, media_type: String },
    #[error(
        "manifest {digest} is neither an image manifest nor an index (media type {media_type:?})"
    )]
    UnknownKind { digest: Digest, media_type: String },
    #[error("parsing manifest {digest}")]
    Parse { digest: Digest, source: serde_json::Error },
    #[error("manifest {digest} names an invalid digest")]
    BadDigest { digest: Digest, source: DigestError },
    #[error("image {reference} has no {wanted} variant; it has: {}", crate::printable(available))]
    NoPlatform { reference: String, wanted: Platform, available: String },
}

/// A parsed manifest: a single-platform image or an index of them.
// Manifests are parsed one at a time and never stored in bulk: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Manifest {
    Image(ImageManifest),
    Index(ImageIndex),
}

/// Just the fields that tell the kinds apart; parsing them first gives better errors than
/// trying each full type.
#[derive(serde::Deserialize)]
struct Probe {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u32>,
    manifests: Option<serde::de::IgnoredAny>,
    layers: Option<serde::de::IgnoredAny>,
}

impl Manifest {
    /// Parses manifest bytes. `hint` is the Content-Type or descriptor media type, used when the
    /// document itself carries none (OCI makes `mediaType` optional).
    pub fn parse(
        bytes: &[u8],
        digest: &Digest,
        hint: Option<&str>,
    ) -> Result<Manifest, ManifestError> {
        let parse_err = |source| ManifestError::Parse { digest: digest.clone(), source };
        let probe: Probe = serde_json::from_slice(bytes).map_err(parse_err)?;
        let media_type = probe.media_type.as_deref().or(hint).unwrap_or("").to_string();
        if DOCKER_SCHEMA1.contains(&media_type.as_str()) || probe.schema_version == Some(1) {
            return Err(ManifestError::Schema1 { digest: digest.clone(), media_type });
        }
        let is_index = match media_type.as_str() {
            OCI_INDEX | DOCKER_LIST => true,
            OCI_MANIFEST | DOCKER_MANIFEST => false,
            _ if probe.manifests.is_some() => true,
            _ if probe.layers.is_some() => false,
            _ => return Err(ManifestError::UnknownKind { digest: digest.clone(), media_type }),
        };
        let m = if is_index {
            Manifest::Index(serde_json::from_slice(bytes).map_err(parse_err)?)
        } else {
            Manifest::Image(serde_json::from_slice(bytes).map_err(parse_err)?)
        };
        // Every digest we might later turn into a path must be valid.
        for d in m.children() {
            Digest::from_oci(d.digest())
                .map_err(|source| ManifestError::BadDigest { digest: digest.clone(), source })?;
        }
        Ok(m)
    }

    /// The descriptors this manifest points at: config and layers, or the index's manifests.
    pub fn children(&self) -> Vec<&Descriptor> {
        match self {
            Manifest::Image(m) => std::iter::once(m.config()).chain(m.layers()).collect(),
            Manifest::Index(i) => i.manifests().iter().collect(),
        }
    }

    /// The index's entry for `wanted`, or an error listing the platforms it has.
    pub fn select(
        index: &ImageIndex,
        reference: &str,
        wanted: &Platform,
    ) -> Result<Descriptor, ManifestError> {
        let candidates: Vec<(Platform, &Descriptor)> = index
            .manifests()
            .iter()
            .filter_map(|d| d.platform().as_ref().map(|p| (Platform::from_oci(p), d)))
            // Attestation manifests (buildkit's `unknown/unknown`) are not images.
            .filter(|(p, _)| p.os != "unknown")
            .collect();
        match wanted.select(&candidates) {
            Some(d) => Ok((*d).clone()),
            None => {
                let mut names: Vec<String> =
                    candidates.iter().map(|(p, _)| p.to_string()).collect();
                names.sort();
                names.dedup();
                let available =
                    if names.is_empty() { "no platforms listed".into() } else { names.join(", ") };
                Err(ManifestError::NoPlatform {
                    reference: reference.to_string(),
                    wanted: wanted.clone(),
                    available,
                })
            }
        }
    }
}

/// The media type to record for a manifest whose bytes we have: its own `mediaType`, or the
/// OCI default for its kind.
pub fn media_type_of(m: &Manifest, bytes: &[u8]) -> MediaType {
    let own = serde_json::from_slice::<Probe>(bytes).ok().and_then(|p| p.media_type);
    match (own, m) {
        (Some(t), _) => MediaType::from(t.as_str()),
        (None, Manifest::Index(_)) => MediaType::ImageIndex,
        (None, Manifest::Image(_)) => MediaType::ImageManifest,
    }
}
