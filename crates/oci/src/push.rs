//! Pushing a stored image (manifest or index with all its children) to a registry: blobs
//! first (skipped when the registry has them, cross-repository mounted when it can, else
//! uploaded monolithically or in chunks), then manifests, the root last under the tag.

use crate::digest::Digest;
use crate::manifest::{media_type_of, Manifest};
use crate::reference::Reference;
use crate::registry::{Client, RegistryError, RegistryOptions};
use crate::store::{Store, StoreError};
use oci_spec::image::Descriptor;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;
use std::io::Read;

#[derive(Debug, Clone)]
pub struct PushOptions {
    pub registry: RegistryOptions,
    /// Blobs larger than this are uploaded in chunks (PATCH), smaller ones in one PUT.
    pub chunk_threshold: u64,
    /// Size of each PATCH of a chunked upload. Bounds the memory a push uses.
    pub chunk_size: u64,
    /// Also tag each platform's manifest `<tag>-<arch>` (LinuxKit's `--with-arch-tags`).
    pub arch_tags: bool,
    /// How blob uploads report on stderr (default: silent).
    pub progress: crate::Progress,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            registry: RegistryOptions::default(),
            chunk_threshold: 32 << 20,
            arch_tags: false,
            chunk_size: 16 << 20,
            progress: crate::Progress::Silent,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("pushing {local}: no image of that name in the store")]
    NotFound { local: String },
    #[error("pushing {local} to {remote}")]
    Store { local: String, remote: String, source: Box<StoreError> },
    #[error("pushing {local} to {remote}")]
    Registry { local: String, remote: String, source: Box<RegistryError> },
    #[error("pushing {local}: the store has only some platforms of this index (missing manifests {missing}); pull them or push a single platform")]
    Incomplete { local: String, missing: String },
    #[error("pushing {local} to {remote}: starting the async runtime: {detail}")]
    Runtime { local: String, remote: String, detail: String },
}

struct Ctx<'a> {
    client: Client,
    store: &'a Store,
    local: &'a Reference,
    remote: &'a Reference,
    opts: &'a PushOptions,
}

impl Ctx<'_> {
    fn store_err(&self, source: StoreError) -> PushError {
        PushError::Store {
            local: self.local.to_string(),
            remote: self.remote.to_string(),
            source: Box::new(source),
        }
    }
    fn reg_err(&self, source: RegistryError) -> PushError {
        PushError::Registry {
            local: self.local.to_string(),
            remote: self.remote.to_string(),
            source: Box::new(source),
        }
    }
}

/// Pushes the stored image named `local` to `remote` and returns the digest of its root.
pub async fn push(
    store: &Store,
    local: &Reference,
    remote: &Reference,
    opts: &PushOptions,
) -> Result<Digest, PushError> {
    let root = store.lookup(local).map_err(|source| PushError::Store {
        local: local.to_string(),
        remote: remote.to_string(),
        source: Box::new(source),
    })?;
    let root = root.ok_or_else(|| PushError::NotFound { local: local.to_string() })?;
    let client = Client::new(&opts.registry).map_err(|source| PushError::Registry {
        local: local.to_string(),
        remote: remote.to_string(),
        source: Box::new(source),
    })?;
    let cx = Ctx { client, store, local, remote, opts };
    let (root_digest, m) =
        store.manifest(local, &root).map_err(|e| cx.store_err(e))?.ok_or_else(|| {
            cx.store_err(StoreError::BlobMissing {
                digest: Digest::sha256_of(b""),
                store: store.dir().to_path_buf(),
            })
        })?;
    if let Manifest::Index(i) = &m {
        let mut children = Vec::new();
        let mut missing = Vec::new();
        for c in i.manifests() {
            match store.manifest(local, c).map_err(|e| cx.store_err(e))? {
                Some((d, Manifest::Image(cm))) => children.push((c.clone(), d, cm)),
                _ => missing.push(c.digest().to_string()),
            }
        }
        if !missing.is_empty() {
            return Err(PushError::Incomplete {
                local: local.to_string(),
                missing: missing.join(", "),
            });
        }
        for (desc, d, cm) in children {
            push_blobs(&cx, std::iter::once(cm.config()).chain(cm.layers())).await?;
            put_manifest(&cx, &d, desc.media_type().as_ref(), &d.to_string()).await?;
            let arch = desc.platform().as_ref().map(|p| p.architecture().to_string());
            if let Some(tag) = arch_tag(&cx, arch) {
                put_manifest(&cx, &d, desc.media_type().as_ref(), &tag).await?;
            }
        }
    } else if let Manifest::Image(im) = &m {
        push_blobs(&cx, std::iter::once(im.config()).chain(im.layers())).await?;
        if cx.opts.arch_tags {
            let config: Option<oci_spec::image::ImageConfiguration> =
                Digest::from_oci(im.config().digest())
                    .ok()
                    .and_then(|d| store.read_blob(&d, crate::store::MAX_CONFIG_BYTES).ok())
                    .and_then(|b| serde_json::from_slice(&b).ok());
            let arch = config.map(|c| c.architecture().to_string());
            if let Some(tag) = arch_tag(&cx, arch) {
                let bytes = store
                    .read_blob(&root_digest, crate::manifest::MAX_MANIFEST_BYTES)
                    .map_err(|e| cx.store_err(e))?;
                let media_type = media_type_of(&m, &bytes).to_string();
                put_manifest(&cx, &root_digest, &media_type, &tag).await?;
            }
        }
    }
    let bytes = store
        .read_blob(&root_digest, crate::manifest::MAX_MANIFEST_BYTES)
        .map_err(|e| cx.store_err(e))?;
    let media_type = media_type_of(&m, &bytes).to_string();
    put_manifest(&cx, &root_digest, &media_type, &remote.manifest_key()).await?;
    Ok(root_digest)
}

/// `<tag>-<arch>` when arch tags are wanted and the remote reference has a tag.
fn arch_tag(cx: &Ctx<'_>, arch: Option<String>) -> Option<String> {
    match (cx.opts.arch_tags, &cx.remote.tag, arch) {
        (true, Some(tag), Some(arch)) if !arch.is_empty() => Some(format!("{tag}-{arch}")),
        _ => None,
    }
}

/// [`push`] for callers without an async runtime.
pub fn push_blocking(
    store: &Store,
    local: &Reference,
    remote: &Reference,
    opts: &PushOptions,
) -> Result<Digest, PushError> {
    let rt = crate::pull::runtime().map_err(|e| PushError::Runtime {
        local: local.to_string(),
        remote: remote.to_string(),
        detail: e.to_string(),
    })?;
    rt.block_on(push(store, local, remote, opts))
}

async fn push_blobs<'d>(
    cx: &Ctx<'_>,
    blobs: impl Iterator<Item = &'d Descriptor>,
) -> Result<(), PushError> {
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    let mut todo = Vec::new();
    for desc in blobs {
        let d = Digest::from_oci(desc.digest()).map_err(|e| {
            cx.reg_err(RegistryError::Protocol {
                what: "reading the manifest".into(),
                detail: e.to_string(),
            })
        })?;
        if !todo.iter().any(|(t, _)| *t == d) {
            todo.push((d, desc.size()));
        }
    }
    // Layers go up in parallel; each holds at most one chunk in memory.
    stream::iter(todo.iter())
        .map(|(d, size)| push_blob(cx, d, *size))
        .buffer_unordered(PARALLEL_UPLOADS)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Blob uploads of one push at once.
const PARALLEL_UPLOADS: usize = 4;

/// A Location header made absolute, with `extra` query pairs added.
fn location(
    base: &str,
    resp: &reqwest::Response,
    extra: &[(&str, &str)],
) -> Result<String, RegistryError> {
    let loc = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).ok_or_else(|| {
        RegistryError::Protocol {
            what: "starting a blob upload".into(),
            detail: format!("answer {} has no Location header", resp.status()),
        }
    })?;
    let base = reqwest::Url::parse(&format!("{base}/")).map_err(|e| RegistryError::Protocol {
        what: "starting a blob upload".into(),
        detail: e.to_string(),
    })?;
    let mut url = base.join(loc).map_err(|e| RegistryError::Protocol {
        what: "starting a blob upload".into(),
        detail: format!("bad Location {loc:?}: {e}"),
    })?;
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    Ok(url.to_string())
}

/// Makes the absolute URL from a `send` closure's base: Locations may be absolute or relative.
fn at(base: &str, url: &str) -> String {
    if url.starts_with("http://") || url.starts_with("https://") {
        url.to_string()
    } else {
        format!("{base}{url}")
    }
}

async fn push_blob(cx: &Ctx<'_>, d: &Digest, size: u64) -> Result<(), PushError> {
    let (reg, repo) = (&cx.remote.registry, &cx.remote.repository);
    let client = &cx.client;
    let what = format!("pushing blob {d} to {}", cx.remote.locator());
    let head_path = format!("/v2/{repo}/blobs/{d}");
    let resp = client
        .send(reg, repo, "pull,push", &what, &|c, base| c.head(format!("{base}{head_path}")))
        .await
        .map_err(|e| cx.reg_err(e))?;
    if resp.status().is_success() {
        tracing::debug!("{d} already in {}", cx.remote.locator());
        return Ok(());
    }
    // Same registry, another repository: ask it to link the blob instead of sending bytes.
    let mut start = None;
    if cx.local.registry == *reg && cx.local.repository != *repo {
        let mount = format!("/v2/{repo}/blobs/uploads/?mount={d}&from={}", cx.local.repository);
        if let Ok(resp) = client
            .send(reg, repo, "pull,push", &what, &|c, base| c.post(format!("{base}{mount}")))
            .await
        {
            if resp.status() == StatusCode::CREATED {
                tracing::debug!("{d} mounted from {}", cx.local.repository);
                return Ok(());
            }
            if resp.status() == StatusCode::ACCEPTED {
                start = Some(resp);
            }
        }
    }
    let start = match start {
        Some(r) => r,
        None => {
            let path = format!("/v2/{repo}/blobs/uploads/");
            client
                .send(reg, repo, "pull,push", &what, &|c, base| {
                    c.post(format!("{base}{path}")).header(CONTENT_LENGTH, "0")
                })
                .await
                .map_err(|e| cx.reg_err(e))?
        }
    };
    if start.status() != StatusCode::ACCEPTED {
        return Err(cx.reg_err(Client::unexpected(reg, &what, start).await));
    }
    let base = start.url().origin().ascii_serialization();
    let hex = d.to_string();
    let short: String = hex.split(':').nth(1).unwrap_or(&hex).chars().take(12).collect();
    let transfer =
        cx.opts.progress.transfer("pushed", format!("{} blob {short}", cx.remote.locator()), size);
    // Checked as read: a blob damaged on disk fails the push instead of being published.
    let mut file = cx.store.open_verified(d, Some(size)).map_err(|e| cx.store_err(e))?;
    let read_err =
        |e: std::io::Error| cx.store_err(StoreError::from_read(e, cx.store.blob_path(d)));
    let mut url = location(&base, &start, &[]).map_err(|e| cx.reg_err(e))?;
    let mut offset = 0u64;
    if size > cx.opts.chunk_threshold {
        let chunk = cx.opts.chunk_size.max(1);
        while offset < size {
            let n = chunk.min(size - offset);
            let mut buf = Vec::with_capacity(n as usize);
            (&mut file).take(n).read_to_end(&mut buf).map_err(read_err)?;
            if buf.len() as u64 != n {
                return Err(read_err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "blob shorter than its descriptor",
                )));
            }
            let body = bytes_of(buf);
            let range = format!("{offset}-{}", offset + n - 1);
            let u = url.clone();
            let resp = client
                .send(reg, repo, "pull,push", &what, &|c, b| {
                    c.patch(at(b, &u))
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header("Content-Range", range.as_str())
                        .header(CONTENT_LENGTH, n)
                        .body(body.clone())
                })
                .await
                .map_err(|e| cx.reg_err(e))?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(cx.reg_err(Client::unexpected(reg, &what, resp).await));
            }
            url = location(&base, &resp, &[]).map_err(|e| cx.reg_err(e))?;
            offset += n;
            transfer.inc(n);
        }
    }
    let mut rest = Vec::new();
    file.read_to_end(&mut rest).map_err(read_err)?;
    if offset + rest.len() as u64 != size {
        return Err(read_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "blob size differs from its descriptor",
        )));
    }
    let ds = d.to_string();
    let mut final_url = reqwest::Url::parse(&url).map_err(|e| {
        cx.reg_err(RegistryError::Protocol { what: what.clone(), detail: e.to_string() })
    })?;
    final_url.query_pairs_mut().append_pair("digest", &ds);
    let final_url = final_url.to_string();
    let body = bytes_of(rest);
    let len = body.len();
    let resp = client
        .send(reg, repo, "pull,push", &what, &|c, b| {
            c.put(at(b, &final_url))
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, len)
                .body(body.clone())
        })
        .await
        .map_err(|e| cx.reg_err(e))?;
    if resp.status() != StatusCode::CREATED {
        return Err(cx.reg_err(Client::unexpected(reg, &what, resp).await));
    }
    transfer.finish(size);
    Ok(())
}

/// A cheaply clonable body, so a retried request resends the same bytes.
fn bytes_of(v: Vec<u8>) -> bytes::Bytes {
    bytes::Bytes::from(v)
}

async fn put_manifest(
    cx: &Ctx<'_>,
    d: &Digest,
    media_type: &str,
    key: &str,
) -> Result<(), PushError> {
    let (reg, repo) = (&cx.remote.registry, &cx.remote.repository);
    let bytes = bytes_of(
        cx.store.read_blob(d, crate::manifest::MAX_MANIFEST_BYTES).map_err(|e| cx.store_err(e))?,
    );
    let what = format!("pushing manifest {d} as {}:{key}", cx.remote.locator());
    let path = format!("/v2/{repo}/manifests/{key}");
    let resp = cx
        .client
        .send(reg, repo, "pull,push", &what, &|c, base| {
            c.put(format!("{base}{path}")).header(CONTENT_TYPE, media_type).body(bytes.clone())
        })
        .await
        .map_err(|e| cx.reg_err(e))?;
    if resp.status() != StatusCode::CREATED {
        return Err(cx.reg_err(Client::unexpected(reg, &what, resp).await));
    }
    Ok(())
}
