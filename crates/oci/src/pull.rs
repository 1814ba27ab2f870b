//! Pulling: reference → root manifest (→ platform manifest) → config → layers, each blob
//! verified into the store, layers in parallel; the name is written to index.json last, so an
//! interrupted pull leaves no name pointing at missing content, and a re-run fetches only what
//! is not yet stored.

use crate::digest::Digest;
use crate::manifest::{media_type_of, Manifest, ManifestError};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::{Client, RegistryError, RegistryOptions};
use crate::store::{Image, Store, StoreError};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use oci_spec::image::Descriptor;

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Ask the registry even when the store has the image (tags move).
    pub always: bool,
    pub registry: RegistryOptions,
    /// How layer downloads report on stderr (default: silent).
    pub progress: crate::Progress,
    /// Blobs of one image downloaded at once.
    pub parallel: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            always: false,
            registry: RegistryOptions::default(),
            progress: crate::Progress::Silent,
            parallel: 6,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("pulling {reference}")]
    Registry { reference: String, source: Box<RegistryError> },
    #[error("pulling {reference}")]
    Store { reference: String, source: Box<StoreError> },
    #[error("pulling {reference}")]
    Manifest { reference: String, source: Box<ManifestError> },
    #[error("pulling {reference}: the registry sent manifest {actual} when asked for {expected}; nothing was stored")]
    ManifestDigest { reference: String, expected: Digest, actual: Digest },
    #[error("pulling {reference}: starting the async runtime: {detail}")]
    Runtime { reference: String, detail: String },
}

/// Pulls `r` for platform `p` into `store` and returns the image. When the store already has
/// it (and `opts.always` is false) no request is made.
pub async fn pull(
    store: &Store,
    r: &Reference,
    p: &Platform,
    opts: &PullOptions,
) -> Result<Image, PullError> {
    let client = Client::new(&opts.registry).map_err(|source| PullError::Registry {
        reference: r.to_string(),
        source: Box::new(source),
    })?;
    pull_with(&client, store, r, p, opts).await
}

/// [`pull`] with a caller-owned client, so many pulls share connections and tokens.
pub async fn pull_with(
    client: &Client,
    store: &Store,
    r: &Reference,
    p: &Platform,
    opts: &PullOptions,
) -> Result<Image, PullError> {
    let reference = r.to_string();
    let store_err =
        |source| PullError::Store { reference: reference.clone(), source: Box::new(source) };
    let reg_err =
        |source| PullError::Registry { reference: reference.clone(), source: Box::new(source) };
    if !opts.always {
        match store.resolve(r, p) {
            Ok(Some(img)) => {
                tracing::debug!(%reference, "already in the store");
                return Ok(img);
            }
            Ok(None) => {}
            // Moved aside already: fetching it again is the repair.
            Err(e @ StoreError::Damaged { .. }) => tracing::warn!("{reference}: {e}"),
            Err(e) => return Err(store_err(e)),
        }
    }
    tracing::info!(%reference, platform = %p, "pulling");
    let (root_desc, root) =
        fetch_manifest(client, store, r, &r.manifest_key(), r.digest.as_ref()).await?;
    let mut attestation = None;
    let manifest = match root {
        Manifest::Image(m) => m,
        Manifest::Index(i) => {
            let child = Manifest::select(&i, &reference, p).map_err(|source| {
                PullError::Manifest { reference: reference.clone(), source: Box::new(source) }
            })?;
            let d = Digest::from_oci(child.digest()).map_err(|e| PullError::Manifest {
                reference: reference.clone(),
                source: Box::new(ManifestError::BadDigest {
                    digest: Digest::sha256_of(b""),
                    source: e,
                }),
            })?;
            attestation = attestation_for(&i, &d);
            match fetch_manifest(client, store, r, &d.to_string(), Some(&d)).await?.1 {
                Manifest::Image(m) => m,
                Manifest::Index(_) => {
                    return Err(PullError::Manifest {
                        reference,
                        source: Box::new(ManifestError::UnknownKind {
                            digest: d,
                            media_type: "an index nested in an index".into(),
                        }),
                    })
                }
            }
        }
    };
    // The config first: it is small, and a re-run after a failure then has it already.
    let config = manifest.config();
    let config_digest = Digest::from_oci(config.digest()).map_err(|e| bad_digest(&reference, e))?;
    // A stored config is small enough to check here; a damaged one is moved aside and fetched.
    let sound = store.has_blob(&config_digest)
        && match store.verify_blob(&config_digest, Some(config.size())) {
            Ok(()) => true,
            Err(e @ StoreError::Damaged { .. }) => {
                tracing::warn!("{reference}: {e}");
                false
            }
            Err(e) => return Err(store_err(e)),
        };
    if !sound {
        client.fetch_blob(r, config, store, None).await.map_err(reg_err)?;
    }
    let mut missing = Vec::new();
    for l in manifest.layers() {
        let d = Digest::from_oci(l.digest()).map_err(|e| bad_digest(&reference, e))?;
        if !store.has_blob(&d) && !missing.iter().any(|m: &Descriptor| m.digest() == l.digest()) {
            missing.push(l.clone());
        }
    }
    stream::iter(missing.iter())
        .map(|l| async move {
            let t = opts.progress.transfer("pulled", layer_what(r, l), l.size());
            let out = client.fetch_blob(r, l, store, t.bar()).await;
            if out.is_ok() {
                t.finish(l.size());
            } else if let Some(b) = t.bar() {
                b.finish_and_clear();
            }
            out
        })
        .buffer_unordered(opts.parallel.max(1))
        .try_collect::<Vec<_>>()
        .await
        .map_err(reg_err)?;
    if let Some(att) = attestation {
        // SBOMs are advisory: an image whose attestation cannot be fetched still builds.
        if let Err(e) = fetch_spdx_attestation(client, store, r, &att).await {
            let e = crate::chain(&e);
            tracing::warn!(%reference, "not using its SBOM attestation: {e}");
        }
    }
    store.tag(r, root_desc.clone()).map_err(store_err)?;
    let img = store.image_from_root(r, &root_desc, p).map_err(store_err)?.ok_or_else(|| {
        store_err(StoreError::NotFound(format!(
            "{reference} (its blobs vanished during the pull; is a gc running?)"
        )))
    })?;
    let have = Platform::new(
        &img.config.os().to_string(),
        &img.config.architecture().to_string(),
        img.config.variant().as_deref(),
    );
    if !p.matches(&have) {
        tracing::warn!(%reference, "image is for {have}, not the requested {p}");
    }
    Ok(img)
}

/// buildkit's attestation manifest for platform manifest `d` in index `i` (annotated
/// `vnd.docker.reference.type: attestation-manifest`, `vnd.docker.reference.digest: d`).
fn attestation_for(i: &oci_spec::image::ImageIndex, d: &Digest) -> Option<Digest> {
    let want = d.to_string();
    i.manifests().iter().find_map(|m| {
        let ann = m.annotations().as_ref()?;
        let is_att = ann.get(ATTESTATION_TYPE_KEY).map(String::as_str) == Some(ATTESTATION_TYPE)
            && ann.get(ATTESTATION_DIGEST_KEY) == Some(&want);
        is_att.then(|| Digest::from_oci(m.digest()).ok()).flatten()
    })
}

use crate::attestation::{
    ATTESTATION_MANIFEST as ATTESTATION_TYPE, PREDICATE_TYPE as PREDICATE_TYPE_KEY,
    REFERENCE_DIGEST as ATTESTATION_DIGEST_KEY, REFERENCE_TYPE as ATTESTATION_TYPE_KEY,
    SPDX_PREDICATE,
};

/// Stores the attestation manifest `att` and its SPDX statement layers (the SBOMs a build
/// merges), verified like any blob; other attestations (provenance) are not fetched.
async fn fetch_spdx_attestation(
    client: &Client,
    store: &Store,
    r: &Reference,
    att: &Digest,
) -> Result<(), PullError> {
    let Manifest::Image(m) = fetch_manifest(client, store, r, &att.to_string(), Some(att)).await?.1
    else {
        return Ok(());
    };
    for l in m.layers() {
        let spdx = l.annotations().as_ref().and_then(|a| a.get(PREDICATE_TYPE_KEY))
            == Some(&SPDX_PREDICATE.to_string());
        let d = Digest::from_oci(l.digest()).map_err(|e| bad_digest(&r.to_string(), e))?;
        if spdx && !store.has_blob(&d) {
            client.fetch_blob(r, l, store, None).await.map_err(|source| PullError::Registry {
                reference: r.to_string(),
                source: Box::new(source),
            })?;
        }
    }
    Ok(())
}

fn bad_digest(reference: &str, e: crate::digest::DigestError) -> PullError {
    PullError::Manifest {
        reference: reference.to_string(),
        source: Box::new(ManifestError::BadDigest { digest: Digest::sha256_of(b""), source: e }),
    }
}

/// What a layer transfer moves: "docker.io/library/alpine layer 1a2b3c4d5e6f".
fn layer_what(r: &Reference, l: &Descriptor) -> String {
    let hex = l.digest().to_string();
    let short = hex.split(':').nth(1).unwrap_or(&hex).chars().take(12).collect::<String>();
    format!("{}/{} layer {short}", r.registry, r.repository)
}

/// Gets a manifest by `key` (tag or digest), from the store when `expected` is stored already,
/// else from the registry; verifies it against `expected` and stores it.
async fn fetch_manifest(
    client: &Client,
    store: &Store,
    r: &Reference,
    key: &str,
    expected: Option<&Digest>,
) -> Result<(Descriptor, Manifest), PullError> {
    let reference = r.to_string();
    let stored = match expected.filter(|d| store.has_blob(d)) {
        Some(d) => match store.read_blob(d, client.options().max_manifest_bytes) {
            Ok(b) => Some(b),
            // Moved aside already: fetching it again is the repair.
            Err(e @ StoreError::Damaged { .. }) => {
                tracing::warn!("{reference}: {e}");
                None
            }
            Err(source) => {
                return Err(PullError::Store {
                    reference: reference.clone(),
                    source: Box::new(source),
                })
            }
        },
        None => None,
    };
    let (bytes, hint) = match stored {
        Some(b) => (b, None),
        None => client.get_manifest(r, key).await.map_err(|source| PullError::Registry {
            reference: reference.clone(),
            source: Box::new(source),
        })?,
    };
    let digest = match expected {
        Some(e) => {
            let mut h = e.hasher();
            h.update(&bytes);
            let actual = h.finish();
            if actual != *e {
                return Err(PullError::ManifestDigest { reference, expected: e.clone(), actual });
            }
            actual
        }
        None => Digest::sha256_of(&bytes),
    };
    let m = Manifest::parse(&bytes, &digest, hint.as_deref()).map_err(|source| {
        PullError::Manifest { reference: reference.clone(), source: Box::new(source) }
    })?;
    if !store.has_blob(&digest) {
        store.write_blob(&bytes[..], Some(&digest)).map_err(|source| PullError::Store {
            reference: reference.clone(),
            source: Box::new(source),
        })?;
    }
    let desc = Descriptor::new(media_type_of(&m, &bytes), bytes.len() as u64, digest.to_oci());
    Ok((desc, m))
}

/// Pulls many images at once on one runtime and one client (what a build does); results are
/// in the order of `refs`.
pub async fn pull_all(
    store: &Store,
    refs: &[(Reference, Platform)],
    opts: &PullOptions,
) -> Vec<Result<Image, PullError>> {
    let client = match Client::new(&opts.registry) {
        Ok(c) => c,
        Err(e) => {
            let msg = e.to_string();
            return refs
                .iter()
                .map(|(r, _)| {
                    Err(PullError::Registry {
                        reference: r.to_string(),
                        source: Box::new(RegistryError::Client(msg.clone())),
                    })
                })
                .collect();
        }
    };
    let client = &client;
    // A build often names one image several times: pull each distinct one once, in parallel,
    // then answer the repeats from the store (no network; a failed one is simply tried again).
    let mut first: Vec<usize> = Vec::new();
    for (i, item) in refs.iter().enumerate() {
        if !first.iter().any(|&j| refs[j] == *item) {
            first.push(i);
        }
    }
    let distinct = futures_util::future::join_all(
        first.iter().map(|&i| pull_with(client, store, &refs[i].0, &refs[i].1, opts)),
    )
    .await;
    let mut out: Vec<Option<Result<Image, PullError>>> = refs.iter().map(|_| None).collect();
    for (&i, result) in first.iter().zip(distinct) {
        out[i] = Some(result);
    }
    let repeat = PullOptions { always: false, ..opts.clone() };
    for (i, (r, p)) in refs.iter().enumerate() {
        if out[i].is_none() {
            out[i] = Some(pull_with(client, store, r, p, &repeat).await);
        }
    }
    out.into_iter().map(|o| o.expect("every slot filled")).collect()
}

/// A runtime for the blocking wrappers: two workers are plenty for I/O-bound pulls.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()
}

/// [`pull`] for callers without an async runtime. Must not be called from inside one.
pub fn pull_blocking(
    store: &Store,
    r: &Reference,
    p: &Platform,
    opts: &PullOptions,
) -> Result<Image, PullError> {
    let rt = runtime()
        .map_err(|e| PullError::Runtime { reference: r.to_string(), detail: e.to_string() })?;
    rt.block_on(pull(store, r, p, opts))
}

/// [`pull_all`] for callers without an async runtime: every image of a build in parallel.
pub fn pull_all_blocking(
    store: &Store,
    refs: &[(Reference, Platform)],
    opts: &PullOptions,
) -> Vec<Result<Image, PullError>> {
    match runtime() {
        Ok(rt) => rt.block_on(pull_all(store, refs, opts)),
        Err(e) => refs
            .iter()
            .map(|(r, _)| {
                Err(PullError::Runtime { reference: r.to_string(), detail: e.to_string() })
            })
            .collect(),
    }
}

/// Whether the registry serves, under `r`'s name, exactly the root the store holds for it (what
/// LinuxKit's `cache rm/clean --published-only` asks before dropping a cached image).
pub async fn is_published(
    store: &Store,
    r: &Reference,
    opts: &RegistryOptions,
) -> Result<bool, PullError> {
    let reference = r.to_string();
    let Some(root) = store.lookup(r).map_err(|source| PullError::Store {
        reference: reference.clone(),
        source: Box::new(source),
    })?
    else {
        return Ok(false);
    };
    let client = Client::new(opts).map_err(|source| PullError::Registry {
        reference: reference.clone(),
        source: Box::new(source),
    })?;
    match client.get_manifest(r, &r.manifest_key()).await {
        Ok((bytes, _)) => {
            let local = root.digest().to_string();
            let mut h =
                Digest::parse(&local).map_or_else(|_| crate::Hasher::sha256(), |d| d.hasher());
            h.update(&bytes);
            Ok(h.finish().to_string() == local)
        }
        Err(RegistryError::ManifestUnknown { .. }) => Ok(false),
        Err(source) => Err(PullError::Registry { reference, source: Box::new(source) }),
    }
}

/// [`is_published`] for callers without an async runtime.
pub fn is_published_blocking(
    store: &Store,
    r: &Reference,
    opts: &RegistryOptions,
) -> Result<bool, PullError> {
    let rt = runtime()
        .map_err(|e| PullError::Runtime { reference: r.to_string(), detail: e.to_string() })?;
    rt.block_on(is_published(store, r, opts))
}
