//! The initrd's segment cache: a section of the image tree that did not change since a build
//! that used the same store is copied into the initrd as the compressed bytes that build wrote,
//! instead of being read from its layers and compressed again (issue 27).
//!
//! A segment is keyed ([`SectionKey`]) by a SHA-256 of everything its bytes depend on: this
//! format's version, the section's name, the compression and its level, the tree's limits, each
//! image's reference, manifest and layer digests, a container's rendered config.json and
//! runtime.json and where its root is. Its bytes also depend on which directories earlier
//! segments wrote (it writes only the parents they did not): the store keeps, with the segment,
//! the directories it relied on and the ones it synthesized, and it is spliced only where those
//! are the same ([`baleen_formats::SegmentDirs::fits`]), so the output is byte for byte the one a
//! build without the cache writes. The segment's blob is verified whole before it is used (a
//! damaged one is moved aside and the section built again), and again as it is copied.
//!
//! Cached: the kernel's section (its modules' segment, with the kernel binary, command line and
//! microcode that go beside it), the init images (one segment), volumes from an image,
//! containers. Not cached: `format: oci` volumes, `files` and the SBOM (small, and they change
//! most): those are written every time. An `--input-tar` build uses no cache.

use crate::pipeline::BuildError;
use baleen_formats::{InitrdWriter, SegmentDirs};
use baleen_oci::{Derived, Digest, Hasher, Ingest, Store};
use baleen_tree::{EntrySink, TreeWriter};
use std::collections::BTreeSet;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};
use tracing::{info, warn};

/// Changes whenever a segment's bytes for the same inputs would change (the cpio or initrd
/// writer, what goes into a section): old entries then simply stop matching.
const SEGMENT_FORMAT: &str = "baleen initrd segment 1";

/// Which sections a build took from the cache and which it wrote (and cached).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentStats {
    pub reused: Vec<String>,
    pub written: Vec<String>,
}

/// What one section is made from, hashed as it is told.
pub(crate) struct SectionKey {
    name: String,
    hasher: Hasher,
    inputs: Vec<Digest>,
}

impl SectionKey {
    pub fn new(name: &str, compression: baleen_formats::InitrdCompression, limits: &str) -> Self {
        let mut key =
            SectionKey { name: name.to_string(), hasher: Hasher::sha256(), inputs: vec![] };
        key.bytes("format", SEGMENT_FORMAT.as_bytes());
        key.bytes("section", name.as_bytes());
        key.bytes("compression", compression.with_level().as_bytes());
        key.bytes("limits", limits.as_bytes());
        key
    }

    /// One named field, length-prefixed so that no two field lists hash alike.
    pub fn bytes(&mut self, label: &str, data: &[u8]) {
        for part in [label.as_bytes(), data] {
            self.hasher.update(&(part.len() as u64).to_le_bytes());
            self.hasher.update(part);
        }
    }

    /// An image: its reference, manifest and layers (the layers also keep the entry alive
    /// through `cache gc`).
    pub fn image(&mut self, image: &baleen_oci::Image) {
        self.bytes("image", image.reference.to_string().as_bytes());
        self.bytes("manifest", image.manifest_digest.to_string().as_bytes());
        self.inputs.push(image.manifest_digest.clone());
        for layer in image.layer_digests() {
            self.bytes("layer", layer.to_string().as_bytes());
            self.inputs.push(layer);
        }
    }

    fn hex(&self) -> String {
        self.hasher.clone().finish().hex().to_string()
    }
}

/// What the pipeline asks of a segment cache around each cacheable section.
pub(crate) trait SegmentCache<S: EntrySink> {
    /// Copies the section's cached segment into the tree's sink when there is one that fits
    /// here; true when it did (the section must not be built).
    fn reuse(&mut self, tw: &mut TreeWriter<S>, key: &SectionKey) -> Result<bool, BuildError>;
    /// The section is about to be built: keep a copy of its segment.
    fn begin(&mut self, tw: &mut TreeWriter<S>, key: SectionKey) -> Result<(), BuildError>;
    /// The section was built: store its segment.
    fn end(&mut self, tw: &mut TreeWriter<S>) -> Result<(), BuildError>;
}

/// Every format but the initrd, and builds that use no cache.
pub(crate) struct NoCache;

impl<S: EntrySink> SegmentCache<S> for NoCache {
    fn reuse(&mut self, _: &mut TreeWriter<S>, _: &SectionKey) -> Result<bool, BuildError> {
        Ok(false)
    }
    fn begin(&mut self, _: &mut TreeWriter<S>, _: SectionKey) -> Result<(), BuildError> {
        Ok(())
    }
    fn end(&mut self, _: &mut TreeWriter<S>) -> Result<(), BuildError> {
        Ok(())
    }
}

/// The tap a segment's bytes are copied through into the store; a failure to cache is noted,
/// never an error of the build (the output does not depend on it).
#[derive(Clone)]
struct Tap(Arc<Mutex<Option<Ingest>>>);

impl Write for Tap {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut ingest = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = ingest.as_mut() {
            if let Err(e) = i.write(buf) {
                warn!("caching an initrd segment: {e}");
                *ingest = None;
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The cache of a segmented initrd's writer.
pub(crate) struct InitrdCache<'a> {
    pub store: &'a Store,
    pub stats: &'a mut SegmentStats,
    /// The section being built: its key, its tap, the kernel's tap (the kernel section), the
    /// tree's bytes before it.
    open: Option<(SectionKey, Tap, Option<Tap>, u64)>,
}

impl<'a> InitrdCache<'a> {
    pub fn new(store: &'a Store, stats: &'a mut SegmentStats) -> Self {
        InitrdCache { store, stats, open: None }
    }
}

fn new_tap(store: &Store, name: &str) -> Tap {
    let ingest = match store.ingest(None, None) {
        Ok(i) => Some(i),
        Err(e) => {
            warn!("{name}: not caching the initrd segment: {}", baleen_spec::chain(&e));
            None
        }
    };
    Tap(Arc::new(Mutex::new(ingest)))
}

fn take(tap: &Tap) -> Option<Ingest> {
    tap.0.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// The kernel section's files beside its segment, as the kernel section emits them.
const BOOT_FILES: [&str; 3] = ["boot/cmdline", "boot/kernel", "boot/ucode.cpio"];

fn io_error(format: crate::format::Format) -> impl Fn(io::Error) -> BuildError {
    move |source| BuildError::Io { format, source }
}

fn dirs_to_json(d: &SegmentDirs, tree_bytes: u64) -> serde_json::Value {
    serde_json::json!({
        "tree_bytes": tree_bytes,
        "relied": d.relied,
        "synthesized": d.synthesized,
        "defined": d.defined,
    })
}

fn dirs_from_json(v: &serde_json::Value) -> Option<(SegmentDirs, u64)> {
    let set = |name: &str| -> Option<BTreeSet<String>> {
        v[name].as_array()?.iter().map(|s| s.as_str().map(String::from)).collect()
    };
    let dirs = SegmentDirs {
        relied: set("relied")?,
        synthesized: set("synthesized")?,
        defined: set("defined")?,
    };
    Some((dirs, v["tree_bytes"].as_u64()?))
}

impl<K: Write, I: Write> SegmentCache<InitrdWriter<K, I>> for InitrdCache<'_> {
    fn reuse(
        &mut self,
        tw: &mut TreeWriter<InitrdWriter<K, I>>,
        key: &SectionKey,
    ) -> Result<bool, BuildError> {
        let format = crate::format::Format::KernelInitrd;
        let hex = key.hex();
        let entry = match self.store.derived(&hex) {
            Ok(Some(entry)) => entry,
            Ok(None) => return Ok(false),
            Err(e) => {
                warn!(
                    "{}: the cached initrd segment cannot be read, writing it again: {e}",
                    key.name
                );
                return Ok(false);
            }
        };
        let Some((dirs, tree_bytes)) = dirs_from_json(&entry.meta) else { return Ok(false) };
        let boot = key.name == "kernel";
        let (blob, beside) = match (&entry.blobs[..], boot) {
            ([blob], false) => (blob, &[][..]),
            ([blob, beside @ ..], true) if beside.len() == BOOT_FILES.len() => (blob, beside),
            _ => return Ok(false),
        };
        tw.begin_section(&key.name).map_err(|source| BuildError::Tree { format, source })?;
        if !dirs.fits(tw.sink_mut().known_dirs()) {
            info!("{}: the cached initrd segment follows other directories: writing it", key.name);
            return Ok(false);
        }
        // Whole first: a damaged segment is moved aside and the section built, never used.
        for b in std::iter::once(blob).chain(beside) {
            if let Err(e) = self.store.verify_blob(&b.digest, Some(b.size)) {
                warn!("{}: {}; writing the section again", key.name, baleen_spec::chain(&e));
                return Ok(false);
            }
        }
        // The kernel's files first, as the kernel section gives them (the microcode before any
        // segment).
        let mut replayed = 0;
        for (path, b) in BOOT_FILES.iter().zip(beside).filter(|(_, b)| b.size > 0) {
            let mut data = self
                .store
                .open_verified(&b.digest, Some(b.size))
                .map_err(|e| BuildError::Io { format, source: io::Error::other(e) })?;
            let check = data.check();
            let entry = baleen_tree::Entry::new(
                *path,
                baleen_tree::EntryKind::File { size: b.size },
                0o644,
            );
            tw.raw(&entry, &mut data).map_err(io_error(format))?;
            check.finish().map_err(|e| BuildError::Io { format, source: io::Error::other(e) })?;
            replayed += b.size;
        }
        let mut data = self
            .store
            .open_verified(&blob.digest, Some(blob.size))
            .map_err(|e| BuildError::Io { format, source: io::Error::other(e) })?;
        let check = data.check();
        tw.sink_mut().splice_segment(&mut data, &dirs).map_err(io_error(format))?;
        // Changed since it was verified: the initrd holds it already, so the build fails.
        check.finish().map_err(|e| BuildError::Io { format, source: io::Error::other(e) })?;
        tw.account(&key.name, tree_bytes.saturating_sub(replayed))
            .map_err(|source| BuildError::Tree { format, source })?;
        info!(section = %key.name, bytes = blob.size, "initrd segment taken from the cache");
        self.stats.reused.push(key.name.clone());
        Ok(true)
    }

    fn begin(
        &mut self,
        tw: &mut TreeWriter<InitrdWriter<K, I>>,
        key: SectionKey,
    ) -> Result<(), BuildError> {
        let format = crate::format::Format::KernelInitrd;
        tw.begin_section(&key.name).map_err(|source| BuildError::Tree { format, source })?;
        let tap = new_tap(self.store, &key.name);
        tw.sink_mut().set_tap(Some(Box::new(tap.clone()))).map_err(io_error(format))?;
        let kernel = (key.name == "kernel").then(|| new_tap(self.store, &key.name));
        if let Some(k) = &kernel {
            tw.sink_mut().set_kernel_tap(Some(Box::new(k.clone())));
        }
        self.open = Some((key, tap, kernel, tw.tree_bytes()));
        Ok(())
    }

    fn end(&mut self, tw: &mut TreeWriter<InitrdWriter<K, I>>) -> Result<(), BuildError> {
        let format = crate::format::Format::KernelInitrd;
        let Some((key, tap, kernel, before)) = self.open.take() else { return Ok(()) };
        let dirs = tw.sink_mut().end_segment().map_err(io_error(format))?;
        tw.sink_mut().set_tap(None).map_err(io_error(format))?;
        tw.sink_mut().set_kernel_tap(None);
        self.stats.written.push(key.name.clone());
        let Some(ingest) = take(&tap) else { return Ok(()) };
        let mut blobs = vec![ingest.commit(None, None)];
        if let Some(kernel) = &kernel {
            let Some(kernel) = take(kernel) else { return Ok(()) };
            let (cmdline, ucode) = tw.sink_mut().boot_files();
            blobs.push(self.store.write_blob(cmdline, None));
            blobs.push(kernel.commit(None, None));
            blobs.push(self.store.write_blob(ucode, None));
        }
        let stored = blobs.into_iter().collect::<Result<Vec<_>, _>>().and_then(|blobs| {
            self.store.put_derived(&Derived {
                key: key.hex(),
                inputs: key.inputs.clone(),
                blobs,
                meta: dirs_to_json(&dirs, tw.tree_bytes() - before),
            })
        });
        if let Err(e) = stored {
            warn!("{}: not caching the initrd segment: {}", key.name, baleen_spec::chain(&e));
        }
        Ok(())
    }
}
