//! Resolving a name in the store to one platform's image: root → (index →) manifest → config.

use super::index::digest_of;
use super::{Store, StoreError};
use crate::digest::Digest;
use crate::manifest::{Manifest, ManifestError, MAX_MANIFEST_BYTES};
use crate::platform::Platform;
use crate::reference::Reference;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest};

/// Image configs carry history and labels; a few MiB is generous, the cap is against hostile
/// input.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// One platform's image, all of whose blobs are in the store.
#[derive(Debug, Clone)]
pub struct Image {
    pub reference: Reference,
    /// The digest of the platform manifest (not of the index, when the root is one).
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    /// The layers in order, bottom first (the same as `manifest.layers()`).
    pub layers: Vec<Descriptor>,
}

impl Image {
    /// Digests of the layers, in order.
    pub fn layer_digests(&self) -> Vec<Digest> {
        // Validated when the manifest was parsed.
        self.layers.iter().filter_map(|d| Digest::from_oci(d.digest()).ok()).collect()
    }
}

impl Store {
    /// The image `r` names for platform `p`, when it and all its blobs are in the store; `None`
    /// when anything is missing (a pull fills it in). Never touches the network.
    pub fn resolve(&self, r: &Reference, p: &Platform) -> Result<Option<Image>, StoreError> {
        match self.lookup(r)? {
            Some(root) => self.image_from_root(r, &root, p),
            None => Ok(None),
        }
    }

    /// Reads and parses a stored manifest or index.
    pub(crate) fn manifest(
        &self,
        r: &Reference,
        d: &Descriptor,
    ) -> Result<Option<(Digest, Manifest)>, StoreError> {
        let digest = digest_of(d)?;
        if !self.has_blob(&digest) {
            return Ok(None);
        }
        let bytes = self.read_blob(&digest, MAX_MANIFEST_BYTES)?;
        let m =
            Manifest::parse(&bytes, &digest, Some(d.media_type().as_ref())).map_err(|source| {
                StoreError::Manifest { reference: r.to_string(), source: Box::new(source) }
            })?;
        Ok(Some((digest, m)))
    }

    /// The platform manifest under `root` (itself, or `p`'s entry when `root` is an index).
    pub(crate) fn platform_manifest(
        &self,
        r: &Reference,
        root: &Descriptor,
        p: &Platform,
    ) -> Result<Option<(Digest, ImageManifest)>, StoreError> {
        let manifest_err =
            |source| StoreError::Manifest { reference: r.to_string(), source: Box::new(source) };
        match self.manifest(r, root)? {
            None => Ok(None),
            Some((d, Manifest::Image(m))) => Ok(Some((d, m))),
            Some((_, Manifest::Index(i))) => {
                let child = Manifest::select(&i, &r.to_string(), p).map_err(manifest_err)?;
                match self.manifest(r, &child)? {
                    None => Ok(None),
                    Some((d, Manifest::Image(m))) => Ok(Some((d, m))),
                    Some((d, Manifest::Index(_))) => {
                        Err(manifest_err(ManifestError::UnknownKind {
                            digest: d,
                            media_type: "an index nested in an index".into(),
                        }))
                    }
                }
            }
        }
    }

    pub(crate) fn image_from_root(
        &self,
        r: &Reference,
        root: &Descriptor,
        p: &Platform,
    ) -> Result<Option<Image>, StoreError> {
        let Some((manifest_digest, manifest)) = self.platform_manifest(r, root, p)? else {
            return Ok(None);
        };
        let config_digest = digest_of(manifest.config())?;
        if !self.has_blob(&config_digest) {
            return Ok(None);
        }
        let bytes = self.read_blob(&config_digest, MAX_CONFIG_BYTES)?;
        let config: ImageConfiguration = serde_json::from_slice(&bytes).map_err(|source| {
            StoreError::Config { reference: r.to_string(), digest: config_digest.clone(), source }
        })?;
        for l in manifest.layers() {
            if !self.has_blob(&digest_of(l)?) {
                return Ok(None);
            }
        }
        let layers = manifest.layers().clone();
        Ok(Some(Image { reference: r.clone(), manifest_digest, manifest, config, layers }))
    }
}
