//! The images a config names: collected once each, and opened as layer streams for the tree
//! (resolving and pulling them is the pipeline's `fetch`).

use baleen_oci::{Image, Reference, Store};
use std::collections::BTreeMap;

/// The `org.mobyproject.config` label: LinuxKit's runtime defaults carried by an image.
pub const LABEL: &str = "org.mobyproject.config";

#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    #[error("{location}: image reference {reference:?}: {message}")]
    Reference { location: String, reference: String, message: String },
    #[error("{location}: image {reference}: opening layer {digest}: {message}")]
    Layer { location: String, reference: String, digest: String, message: String },
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
        message: e.to_string(),
    })
}

/// The image as the tree reads it: its canonical name and its layers as streams, bottom first.
pub fn open_for_tree(
    store: &Store,
    image: &Image,
    location: &str,
) -> Result<baleen_tree::Image, ImagesError> {
    let mut layers = Vec::with_capacity(image.layers.len());
    for desc in &image.layers {
        let digest = desc.digest().to_string();
        let parsed = baleen_oci::Digest::parse(&digest).map_err(|e| ImagesError::Layer {
            location: location.to_string(),
            reference: image.reference.to_string(),
            digest: digest.clone(),
            message: e.to_string(),
        })?;
        let file = store.open_blob(&parsed).map_err(|e| ImagesError::Layer {
            location: location.to_string(),
            reference: image.reference.to_string(),
            digest: digest.clone(),
            message: e.to_string(),
        })?;
        let reader = std::io::BufReader::with_capacity(1 << 20, file);
        layers.push(baleen_tree::Layer::new(digest, desc.media_type().to_string(), reader));
    }
    Ok(baleen_tree::Image { reference: image.reference.to_string(), layers })
}

/// The image's `org.mobyproject.config` label text, if it has one.
pub fn label(image: &Image) -> Option<&str> {
    image.config.config().as_ref()?.labels().as_ref()?.get(LABEL).map(String::as_str)
}
