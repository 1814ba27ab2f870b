//! Image archives: export to an OCI image-layout tar, import from one or from a `docker save`
//! tar (both the legacy `manifest.json` + `<id>/layer.tar` form and Docker 25's OCI form).
//!
//! Import streams the tar once: every blob is written to the store as it passes (verified
//! against its name when it has one), small metadata files are kept in memory, and names are
//! written to index.json at the end, each only after everything it needs was found in the
//! store, within limits and of the sizes its descriptors say (and, for `docker save`, each
//! layer is the one the config's `diff_ids` names). A hostile archive can therefore leave
//! unnamed blobs, which `gc` removes, but never a named image with wrong or missing content.
//! Those checks (`check.rs`) look at each blob once however often it is named and unpack each
//! layer once under [`ImportLimits`]. Export is deterministic: entries sorted, mtimes 0, owner
//! root.

use crate::digest::Digest;
use crate::manifest::{Manifest, MAX_MANIFEST_BYTES, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::store::index::{name_of, CONTAINERD_NAME, REF_NAME};
use crate::store::{Blob, Store, StoreError};
use oci_spec::image::{Descriptor, MediaType};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read, Write};

mod check;
use check::Checker;
pub use check::{
    Expansion, ImportLimits, ImportWork, DEFAULT_MAX_EXPANSION, DEFAULT_MAX_UNPACKED_BYTES,
    EXPANSION_FLOOR,
};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("exporting {reference}: no image of that name in the store")]
    NotFound { reference: String },
    #[error("{what}")]
    Store { what: String, source: Box<StoreError> },
    #[error("{what}")]
    Io { what: String, source: io::Error },
    #[error("importing: archive entry {}", crate::printable(entry))]
    Entry { entry: String, source: Box<StoreError> },
    #[error("importing: {} is larger than {limit} bytes", crate::printable(file))]
    TooLarge { file: String, limit: u64 },
    #[error("importing: parsing {}", crate::printable(file))]
    Json { file: String, source: serde_json::Error },
    #[error("importing: {}", crate::printable(.0))]
    Invalid(String),
    #[error(
        "importing {}: {role} {} is in neither the archive nor the store",
        crate::printable(name),
        crate::printable(digest)
    )]
    MissingBlob { name: String, role: &'static str, digest: String },
    #[error(
        "importing {}: {role} {} holds {actual} bytes, its descriptor says {expected}",
        crate::printable(name),
        crate::printable(digest)
    )]
    WrongSize { name: String, role: &'static str, digest: String, expected: u64, actual: u64 },
    #[error(
        "importing {}: {role} {} is {size} bytes, past the {limit}-byte limit for a {role}",
        crate::printable(name),
        crate::printable(digest)
    )]
    OverLimit { name: String, role: &'static str, digest: String, size: u64, limit: u64 },
    #[error(
        "importing {}: the index names no platform manifest that the archive holds",
        crate::printable(name)
    )]
    NoPlatform { name: String },
    #[error(
        "importing {}: the config lists {diff_ids} rootfs.diff_ids for {layers} layers",
        crate::printable(name)
    )]
    LayerCount { name: String, diff_ids: usize, layers: usize },
    #[error("importing {}: layer {index} ({}) unpacks to {actual}, but rootfs.diff_ids[{index}] in the config says {}", crate::printable(name), crate::printable(digest), crate::printable(expected))]
    DiffId { name: String, index: usize, digest: String, expected: String, actual: String },
    #[error("importing {}: layer {} unpacked to {expanded} bytes from {compressed} compressed, more than {ratio} times its compressed size (past {floor} bytes): refused as a decompression bomb (`cache import --max-expansion` sets the ratio)", crate::printable(name), crate::printable(digest))]
    Expands { name: String, digest: String, expanded: u64, compressed: u64, ratio: u64, floor: u64 },
    #[error("importing {}: the archive's layers unpack to more than the limit of {limit} bytes (reached at {total} bytes, in layer {}; `cache import --max-size` sets the limit)", crate::printable(name), crate::printable(digest))]
    UnpacksTooMuch { name: String, digest: String, total: u64, limit: u64 },
    #[error(
        "importing {}: reading layer {} to check its diff_id",
        crate::printable(name),
        crate::printable(digest)
    )]
    LayerRead { name: String, digest: String, source: io::Error },
    /// No cause attached: the tar reader's message quotes the header's bytes, which for a file
    /// that is no tar (`cache import /etc/passwd`) are the file's content.
    #[error("importing: tar header {number} (at byte {offset}) is not a valid tar header: the input is not a tar archive, or is damaged there")]
    NotTar { number: u64, offset: u64 },
    #[error("importing: manifest.json names {}, but that archive entry is a symlink to {}, which points outside the archive", crate::printable(path), crate::printable(target))]
    EscapingLink { path: String, target: String },
    #[error("importing: manifest.json names {}, but that archive entry is a chain of more than {MAX_LINKS} symlinks", crate::printable(path))]
    LinkChain { path: String },
}

/// Symlinks followed between docker-save entries before giving up.
const MAX_LINKS: usize = 8;

fn store_err(what: impl Into<String>) -> impl FnOnce(StoreError) -> ArchiveError {
    let what = what.into();
    move |source| ArchiveError::Store { what, source: Box::new(source) }
}

/// Writes `r` as an OCI image-layout tar. With `platform`, only that platform's manifest is
/// the root; without, the stored root when all its children are present, else the host
/// platform's manifest. Returns the root descriptor written.
pub fn export(
    store: &Store,
    r: &Reference,
    platform: Option<&Platform>,
    w: impl Write,
) -> Result<Descriptor, ArchiveError> {
    export_as(store, r, r, platform, w)
}

/// [`export`] naming the image `name` inside the archive (LinuxKit's `cache export --name`).
pub fn export_as(
    store: &Store,
    r: &Reference,
    name: &Reference,
    platform: Option<&Platform>,
    w: impl Write,
) -> Result<Descriptor, ArchiveError> {
    let what = format!("exporting {r}");
    let root = store
        .lookup(r)
        .map_err(store_err(&what))?
        .ok_or_else(|| ArchiveError::NotFound { reference: r.to_string() })?;
    let (_, m) = store
        .manifest(r, &root)
        .map_err(store_err(&what))?
        .ok_or_else(|| ArchiveError::NotFound { reference: r.to_string() })?;
    let complete = match &m {
        Manifest::Image(_) => true,
        Manifest::Index(i) => i
            .manifests()
            .iter()
            .all(|c| Digest::from_oci(c.digest()).is_ok_and(|d| store.has_blob(&d))),
    };
    let root = match (platform, complete) {
        (None, true) => root,
        (p, _) => {
            let host = Platform::host();
            let p = p.unwrap_or(&host);
            let (d, pm) = store
                .platform_manifest(r, &root, p)
                .map_err(store_err(&what))?
                .ok_or_else(|| ArchiveError::NotFound { reference: format!("{r} ({p})") })?;
            let bytes = store.read_blob(&d, MAX_MANIFEST_BYTES).map_err(store_err(&what))?;
            let mt = crate::manifest::media_type_of(&Manifest::Image(pm), &bytes);
            Descriptor::new(mt, bytes.len() as u64, d.to_oci())
        }
    };
    // Every blob the root reaches (all must be present).
    let mut blobs = BTreeMap::new();
    let mut todo = vec![root.clone()];
    let mut single_manifest = None;
    while let Some(d) = todo.pop() {
        let digest =
            Digest::from_oci(d.digest()).map_err(|e| ArchiveError::Invalid(e.to_string()))?;
        if blobs.insert(digest.clone(), d.size()).is_some() {
            continue;
        }
        if !store.has_blob(&digest) {
            return Err(store_err(&what)(StoreError::BlobMissing {
                digest,
                store: store.dir().to_path_buf(),
            }));
        }
        let mt = d.media_type().to_string();
        if mt.contains("manifest") || mt.contains("index") {
            if let Some((_, m)) = store.manifest(r, &d).map_err(store_err(&what))? {
                if let (Manifest::Image(im), true) = (&m, d == root) {
                    single_manifest = Some(im.clone());
                }
                todo.extend(m.children().into_iter().cloned());
            }
        }
    }
    // An index (what `pkg build` stores) still gets a manifest.json, naming the image `docker
    // load` would run here: the requested platform's, else this machine's. An index without
    // that platform gets none (OCI loaders still read the archive); a blob that cannot be read
    // fails below, where every blob is copied.
    if single_manifest.is_none() {
        let host = Platform::host();
        single_manifest = store
            .platform_manifest(r, &root, platform.unwrap_or(&host))
            .ok()
            .flatten()
            .map(|(_, m)| m);
    }
    let mut named = root.clone();
    named.set_annotations(None);
    named.set_platform(None);
    // Built as JSON rather than through the descriptor's HashMap, so the key order is fixed.
    let mut named = serde_json::to_value(&named).expect("serialises");
    named["annotations"] =
        serde_json::json!({CONTAINERD_NAME: name.to_string(), REF_NAME: name.to_string()});
    let index =
        serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [named]});
    let mut tar = tar::Builder::new(w);
    let io_err = |e| ArchiveError::Io { what: what.clone(), source: e };
    append(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io_err)?;
    append(&mut tar, "index.json", &serde_json::to_vec(&index).expect("serialises"))
        .map_err(io_err)?;
    // manifest.json lets `docker load` (before Docker 25) read the archive too.
    if let Some(im) = single_manifest {
        let path =
            |d: &oci_spec::image::Digest| format!("blobs/{}", d.to_string().replacen(':', "/", 1));
        let repo_tag = match &name.tag {
            Some(t) => vec![format!("{}:{t}", name.locator())],
            None => vec![],
        };
        let dm = serde_json::json!([{
            "Config": path(im.config().digest()),
            "RepoTags": repo_tag,
            "Layers": im.layers().iter().map(|l| path(l.digest())).collect::<Vec<_>>(),
        }]);
        append(&mut tar, "manifest.json", &serde_json::to_vec(&dm).expect("serialises"))
            .map_err(io_err)?;
    }
    let algorithms: BTreeSet<&str> = blobs.keys().map(|d| d.algorithm()).collect();
    append_dir(&mut tar, "blobs/").map_err(io_err)?;
    for alg in algorithms {
        append_dir(&mut tar, &format!("blobs/{alg}/")).map_err(io_err)?;
    }
    for (d, size) in &blobs {
        // Checked as read: a blob damaged on disk fails the export instead of going out.
        let f = store.open_verified(d, Some(*size)).map_err(store_err(&what))?;
        let mut h = header(tar::EntryType::Regular, *size, 0o644);
        tar.append_data(&mut h, format!("blobs/{}/{}", d.algorithm(), d.hex()), f)
            .map_err(|e| store_err(&what)(StoreError::from_read(e, store.blob_path(d))))?;
    }
    tar.into_inner().map_err(io_err)?.flush().map_err(io_err)?;
    Ok(root)
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn append<W: Write>(tar: &mut tar::Builder<W>, path: &str, data: &[u8]) -> io::Result<()> {
    let mut h = header(tar::EntryType::Regular, data.len() as u64, 0o644);
    tar.append_data(&mut h, path, data)
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> io::Result<()> {
    let mut h = header(tar::EntryType::Directory, 0, 0o755);
    tar.append_data(&mut h, path, io::empty())
}

/// Normalises a tar path: no leading `./` or `/`, no `.` components; `None` when it climbs out.
fn clean(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

fn read_small(entry: impl Read, file: &str) -> Result<Vec<u8>, ArchiveError> {
    let mut buf = Vec::new();
    entry
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ArchiveError::Io { what: format!("importing: reading {file}"), source: e })?;
    if buf.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(ArchiveError::TooLarge { file: file.to_string(), limit: MAX_MANIFEST_BYTES });
    }
    Ok(buf)
}

/// Imports an OCI image-layout tar or a `docker save` tar into the store. `name` names an
/// image the archive leaves unnamed (or renames the only one). Returns the names written.
/// Layers unpack under the default [`ImportLimits`].
pub fn import(
    store: &Store,
    r: impl Read,
    name: Option<&Reference>,
) -> Result<Vec<Reference>, ArchiveError> {
    import_with(store, r, name, ImportLimits::default()).map(|i| i.names)
}

/// What [`import_with`] did: the names written, and the work its checks took.
#[derive(Debug, Clone)]
pub struct Imported {
    pub names: Vec<Reference>,
    pub work: ImportWork,
}

/// [`import`] with the layers' unpacking bounded by `limits` (`cache import --max-size`,
/// `--max-expansion`).
pub fn import_with(
    store: &Store,
    r: impl Read,
    name: Option<&Reference>,
    limits: ImportLimits,
) -> Result<Imported, ArchiveError> {
    let mut archive = tar::Archive::new(r);
    let mut index_json = None;
    let mut docker_manifest = None;
    // Files of a legacy docker save, by path, and symlinks between them.
    let mut files: HashMap<String, Blob> = HashMap::new();
    let mut links: HashMap<String, Link> = HashMap::new();
    let io_err = |e| ArchiveError::Io { what: "importing: reading the archive".into(), source: e };
    let mut offset = 0u64;
    for (number, entry) in (1u64..).zip(archive.entries().map_err(io_err)?) {
        let mut entry = entry.map_err(|e| match e.kind() {
            // The tar crate's header errors (bad checksum, a non-numeric field) are `Other`;
            // truncation is `UnexpectedEof` and keeps its cause.
            io::ErrorKind::Other => ArchiveError::NotTar { number, offset },
            _ => io_err(e),
        })?;
        // Where the next header starts: after this entry's data, padded to 512 bytes.
        offset = entry
            .raw_file_position()
            .saturating_add(entry.size())
            .div_ceil(512)
            .saturating_mul(512);
        let raw = entry.path().map_err(io_err)?.to_string_lossy().into_owned();
        let Some(path) = clean(&raw) else { continue };
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            if let Some(target) = entry.link_name().map_err(io_err)? {
                let target = target.to_string_lossy().into_owned();
                let joined = if kind.is_symlink() {
                    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                    format!("{dir}/{target}")
                } else {
                    target.clone()
                };
                // An escaping target is kept as the raw text, marked, to say so if it is used.
                let t = clean(&joined).map_or_else(|| Link::Escapes(target), Link::To);
                links.insert(path, t);
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        match path.as_str() {
            "index.json" => index_json = Some(read_small(&mut entry, "index.json")?),
            "manifest.json" => docker_manifest = Some(read_small(&mut entry, "manifest.json")?),
            "oci-layout" | "repositories" => {}
            p if p.starts_with("blobs/") => {
                let digest = p["blobs/".len()..].replacen('/', ":", 1);
                let d = Digest::parse(&digest)
                    .map_err(|e| ArchiveError::Invalid(format!("entry {p}: {e}")))?;
                let blob = store.write_blob(&mut entry, Some(&d)).map_err(|source| {
                    ArchiveError::Entry { entry: p.to_string(), source: Box::new(source) }
                })?;
                files.insert(path, blob);
            }
            p if p.ends_with(".tar") || p.ends_with(".json") => {
                let blob = store.write_blob(&mut entry, None).map_err(|source| {
                    ArchiveError::Entry { entry: p.to_string(), source: Box::new(source) }
                })?;
                files.insert(path, blob);
            }
            _ => {}
        }
    }
    let mut checker = Checker::new(store, limits);
    let names = match (index_json, docker_manifest) {
        (Some(ij), _) if has_names(&ij, name.is_some())? => import_oci(&mut checker, &ij, name),
        (_, Some(dm)) => import_docker(&mut checker, &dm, &files, &links, name),
        (Some(ij), None) => import_oci(&mut checker, &ij, name),
        (None, None) => Err(ArchiveError::Invalid(
            "the archive has neither index.json (OCI layout) nor manifest.json (docker save)"
                .into(),
        )),
    }?;
    Ok(Imported { names, work: checker.work })
}

/// Where a link entry of the archive points.
#[derive(Debug)]
enum Link {
    To(String),
    Escapes(String),
}

#[derive(serde::Deserialize)]
struct LayoutIndex {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

fn full_name(d: &Descriptor) -> Option<Reference> {
    let n = name_of(d)?;
    // OCI layouts often carry just a tag ("latest") in ref.name; only full names count.
    let ann = d.annotations().as_ref()?;
    let n = ann.get(CONTAINERD_NAME).map(String::as_str).unwrap_or(n);
    if n.contains('/') || n.contains('.') {
        Reference::parse(n).ok()
    } else {
        None
    }
}

fn has_names(ij: &[u8], have_override: bool) -> Result<bool, ArchiveError> {
    let idx: LayoutIndex = serde_json::from_slice(ij)
        .map_err(|source| ArchiveError::Json { file: "index.json".into(), source })?;
    Ok(have_override || idx.manifests.iter().any(|d| full_name(d).is_some()))
}

fn import_oci(
    checker: &mut Checker<'_>,
    ij: &[u8],
    name: Option<&Reference>,
) -> Result<Vec<Reference>, ArchiveError> {
    let idx: LayoutIndex = serde_json::from_slice(ij)
        .map_err(|source| ArchiveError::Json { file: "index.json".into(), source })?;
    let mut out = Vec::new();
    for d in &idx.manifests {
        let target = match (name, full_name(d)) {
            (Some(n), _) if idx.manifests.len() == 1 => n.clone(),
            (_, Some(n)) => n,
            (_, None) => {
                return Err(ArchiveError::Invalid(format!(
                    "image {} in index.json has no full name annotation ({CONTAINERD_NAME} or {REF_NAME}); pass a name to import it under",
                    d.digest()
                )))
            }
        };
        checker.complete(&target, d)?;
        let mut root = d.clone();
        root.set_annotations(None);
        checker.store().tag(&target, root).map_err(store_err(format!("importing {target}")))?;
        out.push(target);
    }
    Ok(out)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn import_docker(
    checker: &mut Checker<'_>,
    dm: &[u8],
    files: &HashMap<String, Blob>,
    links: &HashMap<String, Link>,
    name: Option<&Reference>,
) -> Result<Vec<Reference>, ArchiveError> {
    let entries: Vec<DockerEntry> = serde_json::from_slice(dm)
        .map_err(|source| ArchiveError::Json { file: "manifest.json".into(), source })?;
    let find = |named: &str| -> Result<&Blob, ArchiveError> {
        let mut p = clean(named).unwrap_or_default();
        let mut hops = 0;
        while let Some(link) = links.get(&p) {
            hops += 1;
            match link {
                _ if hops > MAX_LINKS => {
                    return Err(ArchiveError::LinkChain { path: named.to_string() })
                }
                Link::To(t) => p = t.clone(),
                Link::Escapes(target) => {
                    return Err(ArchiveError::EscapingLink {
                        path: p.clone(),
                        target: target.clone(),
                    })
                }
            }
        }
        files.get(&p).ok_or_else(|| {
            ArchiveError::Invalid(format!(
                "manifest.json names {p}, which the archive does not contain"
            ))
        })
    };
    let store = checker.store();
    let mut out = Vec::new();
    for e in &entries {
        let config = find(&e.config)?;
        let mut layers = Vec::new();
        let mut layer_blobs = Vec::new();
        for l in &e.layers {
            let b = find(l)?;
            let media_type = checker.layer_media_type(&b.digest)?;
            layers.push(serde_json::json!({"mediaType": media_type, "digest": b.digest.to_string(), "size": b.size}));
            layer_blobs.push((b.digest.clone(), media_type));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config.digest.to_string(), "size": config.size},
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&manifest).expect("serialises");
        let blob = store
            .write_blob(&bytes[..], None)
            .map_err(store_err("importing: writing the manifest"))?;
        let desc = Descriptor::new(MediaType::ImageManifest, blob.size, blob.digest.to_oci());
        let shown =
            e.repo_tags.iter().flatten().next().cloned().unwrap_or_else(|| e.config.clone());
        checker.complete(&shown, &desc)?;
        checker.diff_ids(&shown, &config.digest, &layer_blobs)?;
        let mut names: Vec<Reference> = Vec::new();
        match name {
            Some(n) if entries.len() == 1 => names.push(n.clone()),
            _ => {
                for t in e.repo_tags.iter().flatten() {
                    names.push(
                        Reference::parse(t).map_err(|err| {
                            ArchiveError::Invalid(format!("manifest.json: {err}"))
                        })?,
                    );
                }
            }
        }
        if names.is_empty() {
            return Err(ArchiveError::Invalid(format!(
                "image {} in manifest.json has no RepoTags; pass a name to import it under",
                e.config
            )));
        }
        for n in names {
            store.tag(&n, desc.clone()).map_err(store_err(format!("importing {n}")))?;
            out.push(n);
        }
    }
    Ok(out)
}
