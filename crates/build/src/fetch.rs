//! Resolving the images of a config: from the store, pulled when missing (or always with
//! `--pull`), or pinned to a lock file's manifests.

use crate::images::{self, ImagesError};
use crate::pipeline::{BuildError, Request};
use baleen_oci::{Platform, Reference};
use std::collections::HashMap;
use tracing::info;

/// Every image of the config, pulled in parallel when missing (or always, with `--pull`).
pub(crate) fn fetch(req: &Request<'_>) -> Result<HashMap<String, baleen_oci::Image>, BuildError> {
    let named = images::collect(req.config);
    let mut refs = Vec::with_capacity(named.len());
    let mut errors = Vec::new();
    for (text, location) in &named {
        match images::parse_reference(text, location) {
            Ok(r) => refs.push((r, req.platform.clone())),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(BuildError::Images(errors));
    }
    // With a lock, each image is its pinned manifest: looked up and pulled by digest, then
    // named as the YAML names it, so that the tree (which records the name) is the same.
    let mut named_as = HashMap::new();
    if let Some(lock) = &req.lock.pins {
        for ((text, location), (r, _)) in named.iter().zip(refs.iter_mut()) {
            let Some(pin) = lock.images.get(text) else {
                errors.push(ImagesError::Reference {
                    location: location.clone(),
                    reference: text.clone(),
                    message: "not in the lock file (was the YAML changed since?)".into(),
                });
                continue;
            };
            named_as.insert(text.clone(), r.clone());
            *r = r.with_digest(pin.manifest.clone());
        }
        if !errors.is_empty() {
            return Err(BuildError::Images(errors));
        }
    }
    // Images already in the store are used as they are unless --pull; the rest are pulled.
    let mut found = HashMap::new();
    let mut to_pull: Vec<(Reference, Platform)> = Vec::new();
    let mut to_pull_names = Vec::new();
    for ((text, location), (r, p)) in named.iter().zip(&refs) {
        let local = if req.pull.always { None } else { req.store.resolve(r, p).ok().flatten() };
        match local {
            Some(img) => {
                found.insert(text.clone(), img);
            }
            None => {
                to_pull.push((r.clone(), p.clone()));
                to_pull_names.push((text.clone(), location.clone()));
            }
        }
    }
    if !to_pull.is_empty() {
        info!(count = to_pull.len(), "pulling images");
        let results = baleen_oci::pull_all_blocking(req.store, &to_pull, &req.pull);
        let mut errors = Vec::new();
        for ((text, location), ((r, _), result)) in
            to_pull_names.into_iter().zip(to_pull.iter().zip(results))
        {
            match result {
                Ok(img) => {
                    found.insert(text, img);
                }
                Err(e) => {
                    errors.push(format!("{location}: {}{}", baleen_spec::chain(&e), pull_hint(r)))
                }
            }
        }
        if !errors.is_empty() {
            return Err(BuildError::Pull(errors));
        }
    }
    for (text, name) in named_as {
        if let Some(img) = found.get_mut(&text) {
            img.reference = name;
        }
    }
    Ok(found)
}

fn pull_hint(r: &Reference) -> String {
    match r.repository.strip_prefix("baleen/") {
        Some(name) => format!(
            "\n  hint: baleen's own components are built locally: `baleen pkg build pkg/{name}`"
        ),
        None => String::new(),
    }
}
