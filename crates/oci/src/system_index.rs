//! Several systems under one reference: an OCI image index whose entries are baleen system
//! artifacts ([`crate::artifact`]), one per architecture, each with its `platform`
//! (`linux/<arch>`) and the system's format as an annotation. [`store_index`] writes one
//! (entries sorted, so the same systems give the same digest in any order); [`choose`] checks an
//! index a registry sent and picks the entry for a platform.
//!
//! An index comes from a registry, which may be hostile: more than [`MAX_SYSTEMS`] entries, an
//! entry that is not an image manifest (another index nested in it, anything else), or one
//! larger than the manifest limit is refused before anything else is fetched.
//!
//! Non-goals: two systems of one architecture in one index (an entry is chosen by platform
//! alone), platform variants.

use crate::artifact::{ArtifactError, FORMAT_ANNOTATION};
use crate::digest::Digest;
use crate::manifest::{DOCKER_LIST, OCI_INDEX, OCI_MANIFEST};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::store::Store;
use crate::written::{WrittenDescriptor, WrittenIndex, WrittenPlatform};
use oci_spec::image::{Descriptor, ImageIndex};
use std::collections::BTreeMap;

/// The most entries an index of systems may have (two architectures are in use; an index
/// listing thousands is a registry trying to make us work).
pub const MAX_SYSTEMS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("the index lists {count} manifests, more than the {limit} systems one may hold")]
    TooMany { count: usize, limit: usize },
    #[error(
        "entry {entry} is itself an index ({}); indexes of indexes are not read",
        crate::printable(media_type)
    )]
    NestedType { entry: String, media_type: String },
    #[error("entry {entry} is an index where an image manifest was listed")]
    Nested { entry: Digest },
    #[error("entry {entry} has media type {media_type:?}, not an image manifest ({OCI_MANIFEST})")]
    MediaType { entry: String, media_type: String },
    #[error("entry {entry} claims {size} bytes, more than the {limit}-byte manifest limit")]
    TooLarge { entry: String, size: u64, limit: u64 },
    #[error("entry {entry} names an invalid digest")]
    BadDigest { entry: String, source: crate::digest::DigestError },
    #[error("entry {entry} has no platform")]
    NoPlatform { entry: String },
    #[error(
        "no system for {wanted} in the index; it has: {} (choose one with --arch)",
        crate::printable(available)
    )]
    NoMatch { wanted: Platform, available: String },
    #[error("{first} and {second} are both for {platform}: an index holds one system per architecture (pull and run choose by architecture alone)")]
    SamePlatform { platform: Platform, first: String, second: String },
}

/// One system to list in an index: its stored manifest, architecture (OCI's name) and format.
#[derive(Debug, Clone)]
pub struct IndexEntry {
    pub digest: Digest,
    pub size: u64,
    pub architecture: String,
    pub format: String,
    /// What the user called it (its PATH), for errors.
    pub label: String,
}

/// Writes an index over `entries` (their manifests already in the store) and names it `name`
/// in the store. Entries are sorted by architecture, so the same systems give the same digest
/// whatever order they came in; two of one architecture are refused.
pub fn store_index(
    store: &Store,
    name: &Reference,
    entries: &[IndexEntry],
) -> Result<Digest, ArtifactError> {
    let reference = name.to_string();
    let mut sorted: Vec<(Platform, &IndexEntry)> =
        entries.iter().map(|e| (Platform::new("linux", &e.architecture, None), e)).collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.digest.to_string().cmp(&b.1.digest.to_string())));
    if let Some(w) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
        let (first, second) = (w[0].1, w[1].1);
        let source = Box::new(IndexError::SamePlatform {
            platform: w[0].0.clone(),
            first: format!("{} ({})", first.label, first.format),
            second: format!("{} ({})", second.label, second.format),
        });
        return Err(ArtifactError::Index { reference, source });
    }
    let digests: Vec<String> = sorted.iter().map(|(_, e)| e.digest.to_string()).collect();
    let manifests = sorted
        .iter()
        .zip(&digests)
        .map(|((p, e), digest)| WrittenDescriptor {
            annotations: BTreeMap::from([(FORMAT_ANNOTATION, e.format.as_str())]),
            platform: Some(WrittenPlatform { architecture: &p.architecture, os: &p.os }),
            ..WrittenDescriptor::new(OCI_MANIFEST, digest, e.size)
        })
        .collect();
    let index = WrittenIndex { schema_version: 2, media_type: OCI_INDEX, manifests };
    let bytes = serde_json::to_vec(&index)
        .map_err(|source| ArtifactError::Serialise { reference: reference.clone(), source })?;
    let store_err =
        |source| ArtifactError::Store { reference: reference.clone(), source: Box::new(source) };
    let blob = store.write_blob(&bytes[..], None).map_err(store_err)?;
    let desc = Descriptor::new(OCI_INDEX.into(), blob.size, blob.digest.to_oci());
    store.tag(name, desc).map_err(store_err)?;
    Ok(blob.digest)
}

/// Checks every entry of `index` (count, media type, size, digest, platform), then returns the
/// digest of the entry for `wanted`, or an error listing the platforms it has.
pub fn choose(index: &ImageIndex, wanted: &Platform, max_bytes: u64) -> Result<Digest, IndexError> {
    let entries = index.manifests();
    if entries.len() > MAX_SYSTEMS {
        return Err(IndexError::TooMany { count: entries.len(), limit: MAX_SYSTEMS });
    }
    let mut candidates = Vec::with_capacity(entries.len());
    for e in entries {
        let entry = e.digest().to_string();
        let media_type = e.media_type().to_string();
        if media_type == OCI_INDEX || media_type == DOCKER_LIST {
            return Err(IndexError::NestedType { entry, media_type });
        }
        if media_type != OCI_MANIFEST {
            return Err(IndexError::MediaType { entry, media_type });
        }
        if e.size() > max_bytes {
            return Err(IndexError::TooLarge { entry, size: e.size(), limit: max_bytes });
        }
        let digest = Digest::from_oci(e.digest())
            .map_err(|source| IndexError::BadDigest { entry: entry.clone(), source })?;
        let platform = e.platform().as_ref().ok_or(IndexError::NoPlatform { entry })?;
        let format = e.annotations().as_ref().and_then(|a| a.get(FORMAT_ANNOTATION)).cloned();
        candidates.push((Platform::from_oci(platform), (digest, format)));
    }
    match wanted.select(&candidates) {
        Some((digest, _)) => Ok(digest.clone()),
        None => {
            let mut names: Vec<String> = candidates
                .iter()
                .map(|(p, (_, format))| match format {
                    Some(f) => format!("{p} ({f})"),
                    None => p.to_string(),
                })
                .collect();
            names.sort();
            let available = if names.is_empty() { "no systems".into() } else { names.join(", ") };
            Err(IndexError::NoMatch { wanted: wanted.clone(), available })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(arch: &str, byte: u8) -> IndexEntry {
        IndexEntry {
            digest: Digest::sha256_of(&[byte]),
            size: 100,
            architecture: arch.into(),
            format: "kernel+initrd".into(),
            label: format!("{arch}/sys"),
        }
    }

    #[test]
    fn the_same_systems_in_any_order_give_the_same_index_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let name = Reference::parse("127.0.0.1:5000/sys:1").unwrap();
        let (amd, arm) = (entry("amd64", 1), entry("aarch64", 2));
        let one = store_index(&store, &name, &[amd.clone(), arm.clone()]).unwrap();
        let two = store_index(&store, &name, &[arm, amd.clone()]).unwrap();
        assert_eq!(one, two);
        let text = String::from_utf8(store.read_blob(&one, 1 << 20).unwrap()).unwrap();
        let want = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":100,"annotations":{{"org.baleen.system.format":"kernel+initrd"}},"platform":{{"architecture":"amd64","os":"linux"}}}},{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":100,"annotations":{{"org.baleen.system.format":"kernel+initrd"}},"platform":{{"architecture":"arm64","os":"linux"}}}}]}}"#,
            amd.digest,
            Digest::sha256_of(&[2]),
        );
        assert_eq!(text, want);
    }

    #[test]
    fn two_systems_of_one_architecture_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let name = Reference::parse("127.0.0.1:5000/sys:1").unwrap();
        let err = store_index(&store, &name, &[entry("amd64", 1), entry("x86_64", 2)]).unwrap_err();
        let ArtifactError::Index { source, .. } = &err else { panic!("{err}") };
        assert!(matches!(**source, IndexError::SamePlatform { .. }), "{source}");
        assert!(store.list().unwrap().is_empty(), "nothing named in the store");
    }
}
