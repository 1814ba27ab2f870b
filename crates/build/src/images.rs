//! The images a config names: collected once each, and opened as layer streams for the tree
//! (resolving and pulling them is the pipeline's `fetch`).

use baleen_oci::{Image, Platform, Reference, Store};
use std::collections::BTreeMap;

/// The `org.mobyproject.config` label: LinuxKit's runtime defaults carried by an image.
pub const LABEL: &str = "org.mobyproject.config";

#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    #[error("{location}: image reference {reference:?}: {message}")]
    Reference { location: String, reference: String, message: String },
    #[error("{location}: image {reference}: reading layer {digest}: {message}")]
    Layer { location: String, reference: String, digest: String, message: String },
    #[error("{location}: image {reference}")]
    Damaged { location: String, reference: String, source: Box<baleen_oci::StoreError> },
}

/// The digest checks of the layers handed to the tree: [`Checks::finish`] after the tree is
/// done with them, so a damaged layer fails the build even when the tree stopped reading early.
#[derive(Debug)]
pub struct Checks {
    location: String,
    reference: String,
    checks: Vec<baleen_oci::BlobCheck>,
}

impl Checks {
    /// `Err` naming the image and the first damaged layer (which is now moved aside).
    pub fn finish(&self) -> Result<(), ImagesError> {
        for c in &self.checks {
            c.finish().map_err(|source| ImagesError::Damaged {
                location: self.location.clone(),
                reference: self.reference.clone(),
                source: Box::new(source),
            })?;
        }
        Ok(())
    }
}

/// Every image reference of a config with the first place it is used (`kernel`, `init[0]`,
/// `services[2]`…), in config order, each once.
pub fn collect(cfg: &baleen_spec::Config) -> Vec<(String, String)> {
    let mut seen = BTreeMap::new();
    let mut out = Vec::new();
    let mut add = |reference: &str, location: String| {
        if !reference.is_empty() && seen.insert(reference.to_string(), ()).is_none() {
            out.push((reference.to_string(), location));
        }
    };
    if let Some(image) = cfg.kernel.as_ref().and_then(|k| k.image.as_deref()) {
        add(image, "kernel".into());
    }
    for (i, r) in cfg.init.iter().enumerate() {
        add(r, format!("init[{i}]"));
    }
    for (i, v) in cfg.volumes.iter().enumerate() {
        if let Some(image) = v.image.as_deref() {
            add(image, format!("volumes[{i}]"));
        }
    }
    for (section, list) in
        [("onboot", &cfg.onboot), ("onshutdown", &cfg.onshutdown), ("services", &cfg.services)]
    {
        for (i, img) in list.iter().enumerate() {
            add(&img.image, format!("{section}[{i}] {:?}", img.name));
        }
    }
    out
}

/// Parses a YAML image string into a full reference (`alpine` → `docker.io/library/alpine:latest`).
pub fn parse_reference(reference: &str, location: &str) -> Result<Reference, ImagesError> {
    Reference::parse(reference).map_err(|e| ImagesError::Reference {
        location: location.to_string(),
        reference: reference.to_string(),
        message: baleen_spec::chain(&e),
    })
}

/// The image as the tree reads it: its canonical name and its layers as streams, bottom first,
/// each checked against its digest as it is read (and by the returned [`Checks`]).
pub fn open_for_tree(
    store: &Store,
    image: &Image,
    location: &str,
) -> Result<(baleen_tree::Image, Checks), ImagesError> {
    let mut layers = Vec::with_capacity(image.layers.len());
    let mut checks = Vec::with_capacity(image.layers.len());
    for desc in &image.layers {
        let digest = desc.digest().to_string();
        let parsed = baleen_oci::Digest::parse(&digest).map_err(|e| ImagesError::Layer {
            location: location.to_string(),
            reference: image.reference.to_string(),
            digest: digest.clone(),
            message: baleen_spec::chain(&e),
        })?;
        let blob =
            store.open_verified(&parsed, Some(desc.size())).map_err(|e| ImagesError::Layer {
                location: location.to_string(),
                reference: image.reference.to_string(),
                digest: digest.clone(),
                message: baleen_spec::chain(&e),
            })?;
        checks.push(blob.check());
        let reader = std::io::BufReader::with_capacity(1 << 20, blob);
        let layer = baleen_tree::Layer::new(digest, desc.media_type().to_string(), reader);
        layers.push(layer.with_size(desc.size()));
    }
    let tree = baleen_tree::Image { reference: image.reference.to_string(), layers };
    let reference = image.reference.to_string();
    Ok((tree, Checks { location: location.to_string(), reference, checks }))
}

/// The image's `org.mobyproject.config` label text, if it has one.
pub fn label(image: &Image) -> Option<&str> {
    image.config.config().as_ref()?.labels().as_ref()?.get(LABEL).map(String::as_str)
}

/// The bytes of `path` in the topmost layer of `image` that has it (`None` when none does).
/// Each layer looked at is checked against its digest, also past the file, so a damaged
/// component (a boot loader, the EFI stub) fails the build instead of landing in it.
pub fn read_file(
    store: &Store,
    image: &Image,
    location: &str,
    path: &str,
) -> Result<Option<Vec<u8>>, ImagesError> {
    let reference = image.reference.to_string();
    for desc in image.layers.iter().rev() {
        let digest = desc.digest().to_string();
        let layer_err = |message: String| ImagesError::Layer {
            location: location.to_string(),
            reference: reference.clone(),
            digest: digest.clone(),
            message,
        };
        let parsed =
            baleen_oci::Digest::parse(&digest).map_err(|e| layer_err(baleen_spec::chain(&e)))?;
        let blob = store
            .open_verified(&parsed, Some(desc.size()))
            .map_err(|e| layer_err(baleen_spec::chain(&e)))?;
        let check = Checks {
            location: location.to_string(),
            reference: reference.clone(),
            checks: vec![blob.check()],
        };
        let found = baleen_tree::decompress(&digest, desc.media_type().as_ref(), Box::new(blob))
            .and_then(|mut tar| baleen_tree::read_tar_file(&mut tar, path));
        check.finish()?;
        if let Some(bytes) = found.map_err(|e| layer_err(baleen_spec::chain(&e)))? {
            return Ok(Some(bytes));
        }
    }
    Ok(None)
}

/// Where a component lookup failed: `"the store"` or the image's name, and what went wrong.
pub(crate) type ComponentError = (String, String);

/// The image of one of baleen's boot-file components (`prefix` is `docker.io/baleen/NAME:`)
/// in `store`, resolved for `platform`: the tag that sorts last, as isolinux, systemd-boot and
/// rpi-firmware have always been picked. `None` when the store holds no such tag.
pub(crate) fn component(
    store: &Store,
    prefix: &str,
    platform: &Platform,
) -> Result<Option<(String, Image)>, ComponentError> {
    let names = store.list().map_err(|e| ("the store".to_owned(), baleen_spec::chain(&e)))?;
    let Some((name, _)) = names.iter().rev().find(|(n, _)| n.starts_with(prefix)) else {
        return Ok(None);
    };
    let err = |message: String| (name.clone(), message);
    let reference = Reference::parse(name).map_err(|e| err(baleen_spec::chain(&e)))?;
    let image = store
        .resolve(&reference, platform)
        .map_err(|e| err(baleen_spec::chain(&e)))?
        .ok_or_else(|| err(format!("no image for {platform}")))?;
    Ok(Some((name.clone(), image)))
}
