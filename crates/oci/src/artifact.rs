//! Files as an OCI artifact (OCI image spec 1.1): an image manifest with an `artifactType`, the
//! empty config (`application/vnd.oci.empty.v1+json`, the two bytes `{}`) and one layer per
//! file, titled by `org.opencontainers.image.title`. [`store_artifact`] writes one into the
//! store (then [`crate::push`] sends it like any stored image); [`pull_artifact`] fetches one
//! through the store, verified like every pull, and [`write_files`] copies its files out.
//!
//! The manifest is deterministic: fields in a fixed order, annotations sorted, no timestamp,
//! so the same files give the same digest. Titles come from a registry, which may be hostile:
//! each must be one plain path component (no `/`, no `..`, no control characters).
//!
//! What baleen stores this way is a built system: [`SYSTEM_ARTIFACT_TYPE`] and [`SystemFile`]
//! name its media types (docs/push.md). Several systems, one per architecture, go under one
//! image index ([`crate::system_index`]); [`pull_artifact`] picks the entry for its platform.
//! Non-goals: artifacts with a real config, the referrers API.

use crate::digest::Digest;
use crate::manifest::{Manifest, ManifestError, OCI_MANIFEST};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::{Client, RegistryError, RegistryOptions};
use crate::store::{Store, StoreError};
use crate::written::{WrittenDescriptor, WrittenManifest};
use oci_spec::image::Descriptor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The `artifactType` of a system pushed by `baleen push oci`.
pub const SYSTEM_ARTIFACT_TYPE: &str = "application/vnd.baleen.system.v1";
/// The manifest annotation naming the system's architecture (OCI names: `amd64`, `arm64`).
pub const ARCH_ANNOTATION: &str = "org.baleen.system.architecture";
/// The manifest annotation naming what the files boot as (`kernel+initrd`, `iso`, `uki`, …).
pub const FORMAT_ANNOTATION: &str = "org.baleen.system.format";
/// The layer annotation holding the file's name.
pub const TITLE: &str = "org.opencontainers.image.title";
/// The config media type of an artifact without a config.
pub const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
/// The empty config's bytes.
pub const EMPTY_JSON: &[u8] = b"{}";
/// The longest title accepted (a file name on Linux).
const MAX_TITLE: usize = 255;

/// The kinds of file a system is made of, each with its layer media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemFile {
    Kernel,
    /// An initramfs: the system's (`-initrd.img`) or baleen's stage-1 (`-root-initrd.img`).
    Initrd,
    /// The kernel command line (`-cmdline`), text.
    Cmdline,
    /// A unified kernel image (`.efi`).
    Uki,
    Iso,
    /// A disk image in qemu's format `raw`, `qcow2`, `vpc` (VHD) or `vmdk`.
    Disk(DiskFormat),
    SquashfsRoot,
    ErofsRoot,
    /// An SPDX document.
    Sbom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    Raw,
    Qcow2,
    Vhd,
    Vmdk,
}

impl SystemFile {
    pub fn media_type(self) -> &'static str {
        match self {
            SystemFile::Kernel => "application/vnd.baleen.system.kernel.v1",
            SystemFile::Initrd => "application/vnd.baleen.system.initrd.v1",
            SystemFile::Cmdline => "application/vnd.baleen.system.cmdline.v1+text",
            SystemFile::Uki => "application/vnd.baleen.system.uki.v1",
            SystemFile::Iso => "application/vnd.baleen.system.iso.v1",
            SystemFile::Disk(DiskFormat::Raw) => "application/vnd.baleen.system.disk.raw.v1",
            SystemFile::Disk(DiskFormat::Qcow2) => "application/vnd.baleen.system.disk.qcow2.v1",
            SystemFile::Disk(DiskFormat::Vhd) => "application/vnd.baleen.system.disk.vhd.v1",
            SystemFile::Disk(DiskFormat::Vmdk) => "application/vnd.baleen.system.disk.vmdk.v1",
            SystemFile::SquashfsRoot => "application/vnd.baleen.system.rootfs.squashfs.v1",
            SystemFile::ErofsRoot => "application/vnd.baleen.system.rootfs.erofs.v1",
            SystemFile::Sbom => "application/spdx+json",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{action} {path}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{reference}: the image store")]
    Store { reference: String, source: Box<StoreError> },
    #[error("pulling {reference}")]
    Registry { reference: String, source: Box<RegistryError> },
    #[error("pulling {reference}")]
    Manifest { reference: String, source: Box<ManifestError> },
    #[error("pulling {reference}: the registry sent manifest {actual} when asked for {expected}; nothing was stored")]
    ManifestDigest { reference: String, expected: Digest, actual: Digest },
    #[error("{reference} is {found}, not a baleen system (artifactType {wanted}); `baleen pull` fetches what `baleen push oci` pushed, `baleen cache pull` fetches container images")]
    NotArtifact { reference: String, found: String, wanted: String },
    #[error(
        "{reference}: layer {digest} has title {title:?}, which {reason}; refusing to write it"
    )]
    BadTitle { reference: String, digest: String, title: String, reason: &'static str },
    #[error("{reference}: layer {digest} has no {TITLE} annotation naming its file")]
    NoTitle { reference: String, digest: String },
    #[error("{path}: its name {title:?} {reason}, so a pull could not write it back")]
    BadFileName { path: PathBuf, title: String, reason: &'static str },
    #[error("{reference}: writing the manifest")]
    Serialise { reference: String, source: serde_json::Error },
    #[error("{reference}: two files are titled {title:?}")]
    DuplicateTitle { reference: String, title: String },
    #[error("{reference}")]
    Index { reference: String, source: Box<crate::system_index::IndexError> },
    #[error("pulling {reference}: starting the async runtime")]
    Runtime { reference: String, source: std::io::Error },
}

/// One file to store: where it is, its title, its layer media type.
#[derive(Debug, Clone)]
pub struct ArtifactFile {
    pub path: PathBuf,
    pub title: String,
    pub media_type: String,
}

/// Checks a title names one plain file: `None` when it does, else why not.
pub fn title_problem(title: &str) -> Option<&'static str> {
    if title.is_empty() {
        Some("is empty")
    } else if title == "." || title == ".." {
        Some("names a directory, not a file")
    } else if title.contains('/') || title.contains('\\') {
        Some("has more than one path component")
    } else if title.chars().any(char::is_control) {
        Some("has control characters")
    } else if title.len() > MAX_TITLE {
        Some("is longer than a file name may be")
    } else {
        None
    }
}

/// Streams each file into the store, writes the empty config and the manifest, and names the
/// manifest `name` in the store. Returns the manifest's digest. Titles are checked as a pull
/// checks them, so nothing is pushed that `pull` would refuse.
pub fn store_artifact(
    store: &Store,
    name: &Reference,
    artifact_type: &str,
    files: &[ArtifactFile],
    annotations: &BTreeMap<String, String>,
) -> Result<Digest, ArtifactError> {
    let blob = write_artifact(store, name, artifact_type, files, annotations)?;
    let desc = Descriptor::new(OCI_MANIFEST.into(), blob.size, blob.digest.to_oci());
    store.tag(name, desc).map_err(|source| ArtifactError::Store {
        reference: name.to_string(),
        source: Box::new(source),
    })?;
    Ok(blob.digest)
}

/// [`store_artifact`] without naming the manifest in the store: the manifest of one entry of an
/// index (`name` only says which push it is for, in errors). Returns the manifest's blob.
pub fn write_artifact(
    store: &Store,
    name: &Reference,
    artifact_type: &str,
    files: &[ArtifactFile],
    annotations: &BTreeMap<String, String>,
) -> Result<crate::Blob, ArtifactError> {
    let reference = name.to_string();
    let store_err =
        |source| ArtifactError::Store { reference: reference.clone(), source: Box::new(source) };
    let mut blobs = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        if let Some(reason) = title_problem(&f.title) {
            let (path, title) = (f.path.clone(), f.title.clone());
            return Err(ArtifactError::BadFileName { path, title, reason });
        }
        if files[..i].iter().any(|o| o.title == f.title) {
            return Err(ArtifactError::DuplicateTitle { reference, title: f.title.clone() });
        }
        let file = std::fs::File::open(&f.path).map_err(|source| ArtifactError::Io {
            action: "opening",
            path: f.path.clone(),
            source,
        })?;
        let blob = store.write_blob(file, None).map_err(store_err)?;
        blobs.push((blob.digest.to_string(), blob.size));
    }
    let layers = files
        .iter()
        .zip(&blobs)
        .map(|(f, (digest, size))| WrittenDescriptor {
            annotations: BTreeMap::from([(TITLE, f.title.as_str())]),
            ..WrittenDescriptor::new(&f.media_type, digest, *size)
        })
        .collect();
    let config = store.write_blob(EMPTY_JSON, None).map_err(store_err)?;
    let config_digest = config.digest.to_string();
    let manifest = WrittenManifest {
        schema_version: 2,
        media_type: OCI_MANIFEST,
        artifact_type: Some(artifact_type),
        config: WrittenDescriptor::new(EMPTY_CONFIG, &config_digest, config.size),
        layers,
        annotations: annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
    };
    let bytes = serde_json::to_vec(&manifest)
        .map_err(|source| ArtifactError::Serialise { reference: reference.clone(), source })?;
    store.write_blob(&bytes[..], None).map_err(store_err)
}

/// A fetched artifact: its manifest digest, annotations and files (all in the store).
#[derive(Debug, Clone)]
pub struct Pulled {
    pub digest: Digest,
    /// The index it was picked from, when the reference named one.
    pub index: Option<Digest>,
    pub annotations: BTreeMap<String, String>,
    pub files: Vec<PulledFile>,
}

#[derive(Debug, Clone)]
pub struct PulledFile {
    pub title: String,
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

/// Fetches the artifact `r` names, refusing anything whose `artifactType` is not
/// `artifact_type` and any title that is not one plain file name, before a layer is fetched.
/// When `r` names an image index, its entry for `platform` is fetched instead (the index is
/// checked first, [`crate::system_index::choose`]). Every blob goes through the store
/// (verified); blobs it has already are not fetched again.
pub async fn pull_artifact(
    store: &Store,
    r: &Reference,
    artifact_type: &str,
    platform: &Platform,
    opts: &RegistryOptions,
) -> Result<Pulled, ArtifactError> {
    let reference = r.to_string();
    let reg_err =
        |source| ArtifactError::Registry { reference: reference.clone(), source: Box::new(source) };
    let store_err =
        |source| ArtifactError::Store { reference: reference.clone(), source: Box::new(source) };
    let client = Client::new(opts).map_err(reg_err)?;
    let (mut bytes, mut digest, manifest) =
        fetch_manifest(&client, r, &r.manifest_key(), r.digest.as_ref()).await?;
    let mut index = None;
    let m = match manifest {
        Manifest::Image(m) => m,
        Manifest::Index(i) => {
            let entry =
                crate::system_index::choose(&i, platform, opts.max_manifest_bytes).map_err(
                    |e| ArtifactError::Index { reference: reference.clone(), source: Box::new(e) },
                )?;
            let (child_bytes, child, m) =
                fetch_manifest(&client, r, &entry.to_string(), Some(&entry)).await?;
            index = Some(std::mem::replace(&mut digest, child));
            bytes = child_bytes;
            match m {
                Manifest::Image(m) => m,
                Manifest::Index(_) => {
                    let source = Box::new(crate::system_index::IndexError::Nested { entry });
                    return Err(ArtifactError::Index { reference, source });
                }
            }
        }
    };
    let found = m.artifact_type().as_ref().map(|t| t.to_string());
    if found.as_deref() != Some(artifact_type) {
        let found = match found {
            Some(t) => format!("an artifact of type {t}"),
            None => {
                format!("a container image (config {}, no artifactType)", m.config().media_type())
            }
        };
        return Err(ArtifactError::NotArtifact { reference, found, wanted: artifact_type.into() });
    }
    let mut files: Vec<PulledFile> = Vec::with_capacity(m.layers().len());
    for l in m.layers() {
        let d = Digest::from_oci(l.digest()).map_err(|source| ArtifactError::Manifest {
            reference: reference.clone(),
            source: Box::new(ManifestError::BadDigest { digest: digest.clone(), source }),
        })?;
        let title = l.annotations().as_ref().and_then(|a| a.get(TITLE)).ok_or_else(|| {
            ArtifactError::NoTitle { reference: reference.clone(), digest: d.to_string() }
        })?;
        if let Some(reason) = title_problem(title) {
            let (digest, title) = (d.to_string(), title.clone());
            return Err(ArtifactError::BadTitle { reference, digest, title, reason });
        }
        if files.iter().any(|f| f.title == *title) {
            return Err(ArtifactError::DuplicateTitle { reference, title: title.clone() });
        }
        files.push(PulledFile {
            title: title.clone(),
            media_type: l.media_type().to_string(),
            digest: d,
            size: l.size(),
        });
    }
    for (f, l) in files.iter().zip(m.layers()) {
        if !store.has_blob(&f.digest) {
            client.fetch_blob(r, l, store, None).await.map_err(reg_err)?;
        }
    }
    // The manifest too, named in the store, so `cache ls` shows what was pulled and gc keeps it.
    if !store.has_blob(&digest) {
        store.write_blob(&bytes[..], Some(&digest)).map_err(store_err)?;
    }
    // At most `max_manifest_bytes` (get_manifest's cap), so it fits.
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    let desc = Descriptor::new(OCI_MANIFEST.into(), size, digest.to_oci());
    store.tag(r, desc).map_err(store_err)?;
    let annotations = m.annotations().clone().unwrap_or_default().into_iter().collect();
    Ok(Pulled { digest, index, annotations, files })
}

/// Fetches and parses the manifest `key` (a tag or digest) of `r`'s repository, checked against
/// `expected` when there is one: its bytes, digest and parsed form.
async fn fetch_manifest(
    client: &Client,
    r: &Reference,
    key: &str,
    expected: Option<&Digest>,
) -> Result<(Vec<u8>, Digest, Manifest), ArtifactError> {
    let reference = r.to_string();
    let (bytes, hint) = client.get_manifest(r, key).await.map_err(|source| {
        ArtifactError::Registry { reference: reference.clone(), source: Box::new(source) }
    })?;
    let digest = match expected {
        Some(expected) => {
            let mut h = expected.hasher();
            h.update(&bytes);
            let actual = h.finish();
            if actual != *expected {
                return Err(ArtifactError::ManifestDigest {
                    reference,
                    expected: expected.clone(),
                    actual,
                });
            }
            actual
        }
        None => Digest::sha256_of(&bytes),
    };
    let manifest = Manifest::parse(&bytes, &digest, hint.as_deref())
        .map_err(|source| ArtifactError::Manifest { reference, source: Box::new(source) })?;
    Ok((bytes, digest, manifest))
}

/// [`pull_artifact`] for callers without an async runtime.
pub fn pull_artifact_blocking(
    store: &Store,
    r: &Reference,
    artifact_type: &str,
    platform: &Platform,
    opts: &RegistryOptions,
) -> Result<Pulled, ArtifactError> {
    let rt = crate::pull::runtime()
        .map_err(|source| ArtifactError::Runtime { reference: r.to_string(), source })?;
    rt.block_on(pull_artifact(store, r, artifact_type, platform, opts))
}

/// Copies the pulled files out of the store into `dir` (created when missing), each checked
/// against its digest as it is read, written to a temporary file there and renamed to its
/// title, so a reader of `dir` never sees half a file. Returns the paths written, in order.
pub fn write_files(
    store: &Store,
    pulled: &Pulled,
    dir: &Path,
) -> Result<Vec<PathBuf>, ArtifactError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| ArtifactError::Io { action, path, source }
    };
    std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    let mut written = Vec::with_capacity(pulled.files.len());
    for f in &pulled.files {
        // Checked again here: this is the one place that turns a title into a path.
        if let Some(reason) = title_problem(&f.title) {
            return Err(ArtifactError::BadTitle {
                reference: pulled.digest.to_string(),
                digest: f.digest.to_string(),
                title: f.title.clone(),
                reason,
            });
        }
        let dest = dir.join(&f.title);
        let mut blob = store.open_verified(&f.digest, Some(f.size)).map_err(|source| {
            ArtifactError::Store { reference: pulled.digest.to_string(), source: Box::new(source) }
        })?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".baleen-pull-")
            .tempfile_in(dir)
            .map_err(io("creating a temporary file in", dir))?;
        std::io::copy(&mut blob, tmp.as_file_mut()).map_err(|e| {
            match e.get_ref().is_some_and(|i| i.is::<StoreError>()) {
                true => ArtifactError::Store {
                    reference: pulled.digest.to_string(),
                    source: Box::new(StoreError::from_read(e, store.blob_path(&f.digest))),
                },
                false => ArtifactError::Io { action: "writing", path: dest.clone(), source: e },
            }
        })?;
        let file = tmp.as_file();
        file.set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io("setting permissions of", &dest))?;
        file.sync_all().map_err(io("syncing", &dest))?;
        tmp.persist(&dest).map_err(|e| ArtifactError::Io {
            action: "renaming into",
            path: dest.clone(),
            source: e.error,
        })?;
        written.push(dest);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_that_leave_the_directory_are_refused() {
        for bad in ["", ".", "..", "../x", "a/b", "/etc/passwd", "x\ny", "x\u{1b}[2J", "a\\b"] {
            assert!(title_problem(bad).is_some(), "{bad:?} accepted");
        }
        assert!(title_problem(&"x".repeat(256)).is_some());
        for good in ["minimal-kernel", "minimal-initrd.img", "os.efi", "..hidden", "a b"] {
            assert_eq!(title_problem(good), None, "{good:?} refused");
        }
    }

    #[test]
    fn a_file_name_pull_would_refuse_is_not_stored() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("k");
        std::fs::write(&path, b"k").unwrap();
        let files = [ArtifactFile { path, title: "a\nb".into(), media_type: "x".into() }];
        let store = Store::open(&tmp.path().join("s")).unwrap();
        let name = Reference::parse("127.0.0.1:5000/sys:1").unwrap();
        let err = store_artifact(&store, &name, SYSTEM_ARTIFACT_TYPE, &files, &BTreeMap::new())
            .unwrap_err();
        assert!(matches!(err, ArtifactError::BadFileName { .. }), "{err}");
        assert!(baleen_testkit::boot::chain(&err).contains("control characters"), "{err}");
        assert!(store.list().unwrap().is_empty(), "nothing named in the store");
    }

    #[test]
    fn same_files_give_the_same_manifest_digest() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        std::fs::write(&a, b"kernel bytes").unwrap();
        let files = [ArtifactFile {
            path: a,
            title: "sys-kernel".into(),
            media_type: SystemFile::Kernel.media_type().into(),
        }];
        let ann = BTreeMap::from([
            (FORMAT_ANNOTATION.to_string(), "kernel+initrd".to_string()),
            (ARCH_ANNOTATION.to_string(), "amd64".to_string()),
        ]);
        let name = Reference::parse("127.0.0.1:5000/sys:1").unwrap();
        let one = Store::open(&tmp.path().join("s1")).unwrap();
        let two = Store::open(&tmp.path().join("s2")).unwrap();
        let d1 = store_artifact(&one, &name, SYSTEM_ARTIFACT_TYPE, &files, &ann).unwrap();
        let d2 = store_artifact(&two, &name, SYSTEM_ARTIFACT_TYPE, &files, &ann).unwrap();
        assert_eq!(d1, d2);
        let bytes = one.read_blob(&d1, 1 << 20).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.baleen.system.v1","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}"#), "{text}");
        assert!(text.contains(r#""annotations":{"org.baleen.system.architecture":"amd64","org.baleen.system.format":"kernel+initrd"}"#), "{text}");
    }
}
