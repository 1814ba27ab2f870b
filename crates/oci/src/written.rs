//! Manifests and indexes as baleen writes them: `oci-spec`'s `ImageManifest`/`Descriptor` keep
//! annotations in a `HashMap`, whose order changes from run to run, so a writer that must give
//! the same bytes for the same inputs serialises these instead. Serde keeps the field order
//! (OCI's own: `schemaVersion`, `mediaType`, `artifactType`, `config`, `layers`, `annotations`;
//! a descriptor's `mediaType`, `digest`, `size`, `annotations`, `platform`), absent fields are
//! left out, and `BTreeMap` sorts annotations. Used by `artifact` and by `baleen-pkg`'s images.

use serde::Serialize;
use std::collections::BTreeMap;

/// An image manifest.
#[derive(Debug, Clone, Serialize)]
pub struct WrittenManifest<'a> {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType")]
    pub media_type: &'a str,
    #[serde(rename = "artifactType", skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<&'a str>,
    pub config: WrittenDescriptor<'a>,
    pub layers: Vec<WrittenDescriptor<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<&'a str, &'a str>,
}

/// An image index.
#[derive(Debug, Clone, Serialize)]
pub struct WrittenIndex<'a> {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType")]
    pub media_type: &'a str,
    pub manifests: Vec<WrittenDescriptor<'a>>,
}

/// A content descriptor.
#[derive(Debug, Clone, Serialize)]
pub struct WrittenDescriptor<'a> {
    #[serde(rename = "mediaType")]
    pub media_type: &'a str,
    pub digest: &'a str,
    pub size: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<WrittenPlatform<'a>>,
}

impl<'a> WrittenDescriptor<'a> {
    /// A descriptor with no annotations and no platform.
    pub fn new(media_type: &'a str, digest: &'a str, size: u64) -> Self {
        WrittenDescriptor { media_type, digest, size, annotations: BTreeMap::new(), platform: None }
    }
}

/// The platform of an index entry.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WrittenPlatform<'a> {
    pub architecture: &'a str,
    pub os: &'a str,
}
