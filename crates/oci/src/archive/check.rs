//! What `cache import` checks before it writes a name, with work bounded by what the archive
//! holds rather than by how often it refers to it: each blob is looked at (stat, read, parse)
//! once per import however many descriptors name it, and each compressed `docker save` layer is
//! unpacked once, under [`ImportLimits`]. An index naming one 4 MiB manifest 28,000 times, whose
//! manifest lists 28,000 layers, used to mean 28,000 reads of that manifest and 10⁹ stats; a
//! gzip bomb listed N times was unpacked N times.
//!
//! [`Checker`] carries that memory across every name of one archive; [`ImportWork`] counts what
//! it did, so tests can show the work is bounded without timing it.

use super::ArchiveError;
use crate::digest::Digest;
use crate::manifest::{Manifest, MAX_MANIFEST_BYTES};
use crate::store::{Store, StoreError, MAX_CONFIG_BYTES};
use oci_spec::image::Descriptor;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::rc::Rc;

/// What the layers of an archive may unpack to while their `diff_ids` are checked (the same
/// rules, and defaults, as `baleen build --max-size` and `--max-expansion`).
/// [`ImportLimits::default`] is baleen's default; [`ImportLimits::NONE`] bounds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportLimits {
    /// The most bytes all compressed layers of the archive may unpack to together (each
    /// distinct layer counted once). `None`: no bound.
    pub max_unpacked_bytes: Option<u64>,
    /// The decompression-bomb check. `None`: none.
    pub expansion: Option<Expansion>,
}

/// A layer is refused once it has unpacked past `floor` bytes and to more than `ratio` times
/// the compressed bytes read so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expansion {
    pub ratio: u64,
    pub floor: u64,
}

/// 64 GiB, as `baleen build --max-size`.
pub const DEFAULT_MAX_UNPACKED_BYTES: u64 = 64 << 30;
/// As `baleen build --max-expansion`: gzip's best case on zeros is about 1,000×; real layers
/// stay under 10×.
pub const DEFAULT_MAX_EXPANSION: u64 = 100;
/// Below 1 GiB no layer is a bomb, whatever its ratio.
pub const EXPANSION_FLOOR: u64 = 1 << 30;

impl ImportLimits {
    pub const NONE: ImportLimits = ImportLimits { max_unpacked_bytes: None, expansion: None };
}

impl Default for ImportLimits {
    fn default() -> Self {
        ImportLimits {
            max_unpacked_bytes: Some(DEFAULT_MAX_UNPACKED_BYTES),
            expansion: Some(Expansion { ratio: DEFAULT_MAX_EXPANSION, floor: EXPANSION_FLOOR }),
        }
    }
}

/// What the checks of one import did: the measure of its work, for tests and logs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportWork {
    /// Blobs whose presence and size were looked up in the store.
    pub stats: u64,
    /// Manifests and configs read (and parsed) from the store.
    pub reads: u64,
    /// Compressed layers unpacked to hash their diff_id.
    pub decompressions: u64,
    /// Bytes those layers unpacked to.
    pub unpacked_bytes: u64,
}

/// One descriptor as [`Checker::complete`] judges it: the same digest under another role, size
/// or media type is judged again (it may be wrong there).
#[derive(PartialEq, Eq, Hash)]
struct Seen {
    digest: Digest,
    role: &'static str,
    size: u64,
    media_type: String,
}

/// The checks of one import, remembering what it already judged.
pub(super) struct Checker<'s> {
    store: &'s Store,
    limits: ImportLimits,
    /// Descriptors found present, within limits and of the right size (their children queued
    /// when they were); those found absent (only optional ones get here).
    present: HashSet<Seen>,
    absent: HashSet<Seen>,
    /// The diff_id each compressed layer unpacked to.
    diff_ids: HashMap<Digest, Digest>,
    media_types: HashMap<Digest, &'static str>,
    pub(super) work: ImportWork,
}

impl<'s> Checker<'s> {
    pub(super) fn store(&self) -> &'s Store {
        self.store
    }

    pub(super) fn new(store: &'s Store, limits: ImportLimits) -> Checker<'s> {
        Checker {
            store,
            limits,
            present: HashSet::new(),
            absent: HashSet::new(),
            diff_ids: HashMap::new(),
            media_types: HashMap::new(),
            work: ImportWork::default(),
        }
    }

    /// Checks that everything the name `name` would need is in the store, within limits, with
    /// the sizes its descriptors say: the root, (for an index) the platform manifests the
    /// archive holds — at least one — and their configs and layers. Run before a name is
    /// written. What an earlier call (or an earlier descriptor of this one) judged is not
    /// looked at again.
    pub(super) fn complete(
        &mut self,
        name: &impl std::fmt::Display,
        root: &Descriptor,
    ) -> Result<(), ArchiveError> {
        let name = name.to_string();
        let mut todo = vec![(root.clone(), "manifest", true)];
        let mut platforms = None;
        while let Some((d, role, required)) = todo.pop() {
            let digest = Digest::from_oci(d.digest())
                .map_err(|e| ArchiveError::Invalid(format!("{name}: {role}: {e}")))?;
            let seen = Seen {
                digest: digest.clone(),
                role,
                size: d.size(),
                media_type: d.media_type().to_string(),
            };
            if self.absent.contains(&seen) {
                continue;
            }
            if self.present.contains(&seen) {
                if role == "platform manifest" {
                    platforms = Some(platforms.unwrap_or(0) + 1);
                }
                continue;
            }
            let limit = match role {
                "layer" => None,
                "config" => Some(MAX_CONFIG_BYTES),
                _ => Some(MAX_MANIFEST_BYTES),
            };
            let shown = digest.to_string();
            if let Some(limit) = limit.filter(|&l| d.size() > l) {
                let (name, digest, size) = (name.clone(), shown, d.size());
                return Err(ArchiveError::OverLimit { name, role, digest, size, limit });
            }
            self.work.stats += 1;
            let Ok(meta) = std::fs::metadata(self.store.blob_path(&digest)) else {
                if required {
                    return Err(ArchiveError::MissingBlob { name, role, digest: shown });
                }
                self.absent.insert(seen);
                continue;
            };
            if meta.len() != d.size() {
                let (expected, actual) = (d.size(), meta.len());
                return Err(ArchiveError::WrongSize {
                    name,
                    role,
                    digest: shown,
                    expected,
                    actual,
                });
            }
            if role == "platform manifest" {
                platforms = Some(platforms.unwrap_or(0) + 1);
            }
            let Some(limit) = limit.filter(|_| role != "config") else {
                self.present.insert(seen);
                continue;
            };
            let what = format!("importing {name}");
            self.work.reads += 1;
            let bytes = self.store.read_blob(&digest, limit).map_err(store_err(&what))?;
            let m =
                Manifest::parse(&bytes, &digest, Some(d.media_type().as_ref())).map_err(|e| {
                    let reference = name.clone();
                    store_err(&what)(StoreError::Manifest { reference, source: Box::new(e) })
                })?;
            match m {
                Manifest::Index(i) if role == "manifest" => {
                    platforms = Some(0);
                    let children = i.manifests().iter().rev();
                    todo.extend(children.map(|c| (c.clone(), "platform manifest", false)));
                }
                Manifest::Index(_) => {
                    return Err(ArchiveError::Invalid(format!(
                        "{name}: platform manifest {digest} is itself an index"
                    )))
                }
                Manifest::Image(m) => {
                    // A stack: the config is checked first, then the layers bottom up.
                    todo.extend(m.layers().iter().rev().map(|l| (l.clone(), "layer", true)));
                    todo.push((m.config().clone(), "config", true));
                }
            }
            // Its children are queued: a failure among them ends the import, so the next
            // descriptor naming it has nothing left to learn.
            self.present.insert(seen);
        }
        if platforms == Some(0) {
            return Err(ArchiveError::NoPlatform { name });
        }
        Ok(())
    }

    /// Docker saves layers uncompressed, but some tools gzip or zstd them: look at the magic.
    pub(super) fn layer_media_type(&mut self, d: &Digest) -> Result<&'static str, ArchiveError> {
        if let Some(mt) = self.media_types.get(d) {
            return Ok(mt);
        }
        let mut magic = [0u8; 4];
        let mut f = self.store.open_blob(d).map_err(store_err("importing: reading a layer"))?;
        let n = f.read(&mut magic).map_err(|e| ArchiveError::Io {
            what: "importing: reading a layer".into(),
            source: e,
        })?;
        let mt = match &magic[..n] {
            [0x1f, 0x8b, ..] => crate::manifest::OCI_LAYER_GZIP,
            [0x28, 0xb5, 0x2f, 0xfd] => crate::manifest::OCI_LAYER_ZSTD,
            _ => crate::manifest::OCI_LAYER,
        };
        self.media_types.insert(d.clone(), mt);
        Ok(mt)
    }

    /// `docker save` configs name each layer by the digest of its uncompressed tar
    /// (`rootfs.diff_ids`); a layer that is not the one the config describes is refused.
    pub(super) fn diff_ids(
        &mut self,
        name: &str,
        config: &Digest,
        layers: &[(Digest, &str)],
    ) -> Result<(), ArchiveError> {
        #[derive(serde::Deserialize)]
        struct RootFs {
            #[serde(default)]
            diff_ids: Vec<String>,
        }
        #[derive(serde::Deserialize)]
        struct Config {
            rootfs: Option<RootFs>,
        }
        let what = format!("importing {name}");
        self.work.reads += 1;
        let bytes = self.store.read_blob(config, MAX_CONFIG_BYTES).map_err(store_err(&what))?;
        let parsed: Config = serde_json::from_slice(&bytes)
            .map_err(|source| ArchiveError::Json { file: format!("config {config}"), source })?;
        let diff_ids = parsed.rootfs.map(|r| r.diff_ids).unwrap_or_default();
        if diff_ids.len() != layers.len() {
            let (name, diff_ids, layers) = (name.to_string(), diff_ids.len(), layers.len());
            return Err(ArchiveError::LayerCount { name, diff_ids, layers });
        }
        for (index, ((digest, media_type), expected)) in layers.iter().zip(&diff_ids).enumerate() {
            let actual = if media_type.ends_with("tar") {
                digest.clone()
            } else if let Some(known) = self.diff_ids.get(digest) {
                known.clone()
            } else {
                let actual = self.unpacked_digest(name, digest, media_type)?;
                self.diff_ids.insert(digest.clone(), actual.clone());
                actual
            };
            if actual.to_string() != *expected {
                return Err(ArchiveError::DiffId {
                    name: name.to_string(),
                    index,
                    digest: digest.to_string(),
                    expected: expected.clone(),
                    actual: actual.to_string(),
                });
            }
        }
        Ok(())
    }

    /// The digest of a compressed layer's content, unpacked under [`ImportLimits`].
    fn unpacked_digest(
        &mut self,
        name: &str,
        digest: &Digest,
        media_type: &str,
    ) -> Result<Digest, ArchiveError> {
        let read_err = |source| ArchiveError::LayerRead {
            name: name.to_string(),
            digest: digest.to_string(),
            source,
        };
        let what = format!("importing {name}");
        let blob = self.store.open_verified(digest, None).map_err(store_err(&what))?;
        let compressed = Rc::new(Cell::new(0u64));
        let blob = Counting { inner: blob, count: compressed.clone() };
        self.work.decompressions += 1;
        let mut h = crate::digest::Hasher::sha256();
        let mut buf = vec![0u8; 256 << 10];
        let mut expanded = 0u64;
        let bomb = |expanded, compressed, e: Expansion| ArchiveError::Expands {
            name: name.to_string(),
            digest: digest.to_string(),
            expanded,
            compressed,
            ratio: e.ratio,
            floor: e.floor,
        };
        let mut tar: Box<dyn Read> = {
            let blob = io::BufReader::new(blob);
            if media_type.ends_with("gzip") {
                Box::new(flate2::read::MultiGzDecoder::new(blob))
            } else {
                Box::new(zstd::stream::read::Decoder::with_buffer(blob).map_err(read_err)?)
            }
        };
        loop {
            let n = match tar.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_err(e)),
            };
            let n64 = u64::try_from(n).unwrap_or(u64::MAX);
            expanded = expanded.saturating_add(n64);
            self.work.unpacked_bytes = self.work.unpacked_bytes.saturating_add(n64);
            if let Some(e) = self.limits.expansion {
                let read = compressed.get();
                if expanded > e.floor && expanded > read.saturating_mul(e.ratio) {
                    return Err(bomb(expanded, read, e));
                }
            }
            if let Some(limit) = self.limits.max_unpacked_bytes {
                let total = self.work.unpacked_bytes;
                if total > limit {
                    let (name, digest) = (name.to_string(), digest.to_string());
                    return Err(ArchiveError::UnpacksTooMuch { name, digest, total, limit });
                }
            }
            h.update(&buf[..n]);
        }
        Ok(h.finish())
    }
}

fn store_err(what: impl Into<String>) -> impl FnOnce(StoreError) -> ArchiveError {
    super::store_err(what)
}

/// Counts the bytes read through it into a shared cell: the compressed side of a layer, read
/// while the decoder above it holds the reader.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let n64 = u64::try_from(n).unwrap_or(u64::MAX);
        self.count.set(self.count.get().saturating_add(n64));
        Ok(n)
    }
}
