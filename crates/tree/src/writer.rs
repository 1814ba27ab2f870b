//! [`TreeWriter`]: the sections of a LinuxKit build, in LinuxKit's order, pushed into one sink.
//!
//! The caller (the build crate) calls, in order: [`TreeWriter::kernel`], [`TreeWriter::init`] for
//! each init image then [`TreeWriter::finish_init`], [`TreeWriter::volume`] for each volume,
//! [`TreeWriter::bundle`] for each onboot, onshutdown and service container,
//! [`TreeWriter::files`], and [`TreeWriter::dockerfile`] for the `docker` format. Each method
//! streams; nothing is kept but a map of extracted image references and the apk databases.

use crate::entry::{Entry, EntryKind, EntrySink, Mtime, PAX_LOCATION, PAX_SOURCE};
use crate::files::{emit_files, FileItem};
use crate::image::{emit_prefix, image_tar, Image, ImageError, RESOLVCONF_SYMLINK};
use crate::kernel::{kernel_section, KernelOptions};
use crate::layer::LayerError;
use crate::limits::{limit_of, Bounded, LimitError, Limits};
use std::collections::HashMap;
use std::io::{self, Read};

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("{location} {image}")]
    Layer { location: String, image: String, source: Box<LayerError> },
    #[error(
        "{location} {image}: {}writing entry {}",
        crate::image::in_layer(layer),
        crate::limits::shown(path)
    )]
    Sink { location: String, image: String, layer: Option<String>, path: String, source: io::Error },
    #[error("{location} {image}: {message}")]
    Image { location: String, image: String, message: String },
    #[error("{location} {image}: {what}")]
    Limit { location: String, image: String, what: String, source: LimitError },
    #[error("{location}: {message}")]
    Files { location: String, message: String },
    #[error("{location}: writing {}", crate::limits::shown(path))]
    FilesSink { location: String, path: String, source: io::Error },
    #[error("ending the section before {name}")]
    Section { name: String, source: io::Error },
    #[error("{name}: counting the bytes of the section taken from the cache")]
    Account { name: String, source: io::Error },
}

impl TreeError {
    fn from_image(location: &str, image: &str, e: ImageError) -> Self {
        let (location, image) = (location.to_string(), image.to_string());
        match e {
            ImageError::Layer(source) => {
                TreeError::Layer { location, image, source: Box::new(source) }
            }
            ImageError::Sink { layer, path, source } => {
                TreeError::Sink { location, image, layer, path, source }
            }
            ImageError::Other(message) => TreeError::Image { location, image, message },
            ImageError::Limit { what, source } => {
                TreeError::Limit { location, image, what, source }
            }
        }
    }

    /// The [`Limits`] bound this error is about, if it is one (the caller tells how to raise it).
    pub fn limit(&self) -> Option<&LimitError> {
        match self {
            TreeError::Layer { source, .. } => match source.as_ref() {
                LayerError::Limit { source, .. } => Some(source),
                _ => None,
            },
            TreeError::Sink { source, .. }
            | TreeError::FilesSink { source, .. }
            | TreeError::Account { source, .. } => limit_of(source),
            TreeError::Limit { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The container sections, each a directory under `containers/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Onboot,
    Onshutdown,
    Services,
}

impl Section {
    pub fn name(self) -> &'static str {
        match self {
            Section::Onboot => "onboot",
            Section::Onshutdown => "onshutdown",
            Section::Services => "services",
        }
    }

    /// `containers/onboot/000-name`, `containers/services/name`.
    pub fn bundle_path(self, index: usize, name: &str) -> String {
        match self {
            Section::Services => format!("containers/services/{name}"),
            s => format!("containers/{}/{index:03}-{name}", s.name()),
        }
    }
}

/// One onboot/onshutdown/service container.
pub struct Bundle<'a> {
    pub section: Section,
    pub index: usize,
    pub name: &'a str,
    pub image: Image,
    /// The final `readonly` (YAML > label): rootfs extracted to `rootfs/`, else to `lower/` with
    /// an overlay at run time.
    pub readonly: bool,
    /// `config.json` bytes (from crates/spec).
    pub config_json: &'a [u8],
    /// Renders `runtime.json` given where the image's root was extracted (`containers/onboot/
    /// 000-a/lower`, or another bundle's copy when the image was extracted before). The rootfs
    /// mounts themselves are crates/spec's to write (`runtime::runtime_json`).
    pub runtime_json: &'a mut dyn FnMut(&str) -> Vec<u8>,
}

impl std::fmt::Debug for Bundle<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("section", &self.section)
            .field("index", &self.index)
            .field("name", &self.name)
            .finish()
    }
}

const APK_DB: &str = "lib/apk/db/installed";
const DOCKERFILE: &str = "\nFROM scratch\n\nCOPY . ./\n\nENTRYPOINT [\"/bin/rc.init\"]\n";

/// Writes the image tree section by section into a sink, within its [`Limits`].
#[derive(Debug)]
pub struct TreeWriter<S: EntrySink> {
    sink: Bounded<S>,
    limits: Limits,
    /// image reference → where its root was first extracted (de-duplication, §3.2).
    extracted: HashMap<String, String>,
    apk_dbs: Vec<Vec<u8>>,
    /// The section the entries go to now (see [`EntrySink::section`]); empty before the first.
    section: String,
}

fn sink_emit<S: EntrySink>(
    sink: &mut S,
) -> impl FnMut(&Entry, &mut dyn Read) -> Result<(), ImageError> + '_ {
    move |entry, data| {
        sink.add(entry, data).map_err(|source| ImageError::Sink {
            layer: None,
            path: entry.path.clone(),
            source,
        })
    }
}

impl<S: EntrySink> TreeWriter<S> {
    /// A writer within the default [`Limits`].
    pub fn new(sink: S) -> Self {
        Self::with_limits(sink, Limits::default())
    }

    pub fn with_limits(sink: S, limits: Limits) -> Self {
        TreeWriter {
            sink: Bounded { inner: sink, max: limits.max_tree_bytes, total: 0 },
            limits,
            extracted: HashMap::new(),
            apk_dbs: Vec::new(),
            section: String::new(),
        }
    }

    /// The entries that follow belong to section `name` (LinuxKit's sections: `kernel`, `init`
    /// for every init image, `volume[i]`, `onboot[i]`, `onshutdown[i]`, `services[i]`,
    /// `files`; the caller's own, such as `sbom`). The sink is told when the section changes;
    /// each section method calls this itself, so a caller needs it only before [`Self::raw`]
    /// entries of a section of its own.
    pub fn begin_section(&mut self, name: &str) -> Result<(), TreeError> {
        if self.section == name {
            return Ok(());
        }
        self.section = name.to_string();
        self.sink
            .inner
            .section(name)
            .map_err(|source| TreeError::Section { name: name.to_string(), source })
    }

    /// The section the entries go to now (empty before the first).
    pub fn current_section(&self) -> &str {
        &self.section
    }

    /// The sink, for what a caller does between sections (splicing a cached section).
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink.inner
    }

    /// Counts `bytes` of file data a caller put into the sink for section `name` without
    /// entries (a section spliced whole from a cache), within [`Limits::max_tree_bytes`].
    pub fn account(&mut self, name: &str, bytes: u64) -> Result<(), TreeError> {
        self.sink
            .account(bytes)
            .map_err(|source| TreeError::Account { name: name.to_string(), source })
    }

    /// The root a bundle of `reference` extracted first, if any did (later bundles of the
    /// image share it, §3.2).
    pub fn extracted_root(&self, reference: &str) -> Option<&str> {
        self.extracted.get(reference).map(String::as_str)
    }

    pub fn into_sink(self) -> S {
        self.sink.inner
    }

    /// The bytes of file data written so far (what [`Limits::max_tree_bytes`] bounds).
    pub fn tree_bytes(&self) -> u64 {
        self.sink.total
    }

    /// The kernel section: `boot`, `boot/cmdline`, `boot/kernel`, the kernel tar's entries,
    /// `boot/ucode.cpio`, in the order the image holds them.
    pub fn kernel(&mut self, image: Image, opts: &KernelOptions) -> Result<(), TreeError> {
        self.begin_section("kernel")?;
        let reference = image.reference.clone();
        let mut emit = sink_emit(&mut self.sink);
        kernel_section(image, opts, self.limits, &mut emit)
            .map_err(|e| TreeError::from_image("kernel", &reference, e))
    }

    /// Init image `index`, flattened into `/` with `etc/resolv.conf` as a symlink.
    pub fn init(&mut self, index: usize, image: Image) -> Result<(), TreeError> {
        self.begin_section("init")?;
        let location = format!("init[{index}]");
        let reference = image.reference.clone();
        let sink = &mut self.sink;
        let dbs = &mut self.apk_dbs;
        let mut emit = |entry: &Entry, data: &mut dyn Read| -> Result<(), ImageError> {
            let res = if entry.path == APK_DB {
                // Keep a copy of each apk database (small text) to consolidate them afterwards.
                let mut tee = Tee { inner: data, copy: Vec::new() };
                let r = sink
                    .add(entry, &mut tee)
                    .and_then(|()| io::copy(&mut tee, &mut io::sink()).map(|_| ()));
                dbs.push(tee.copy);
                r
            } else {
                sink.add(entry, data)
            };
            res.map_err(|source| ImageError::Sink { layer: None, path: entry.path.clone(), source })
        };
        let expansion = self.limits.expansion;
        image_tar(&location, Some(image), "", Some(RESOLVCONF_SYMLINK), expansion, &mut emit)
            .map_err(|e| TreeError::from_image(&location, &reference, e))
    }

    /// After the init images: when more than one carried an apk database, appends their
    /// concatenation (each followed by two newlines) so `apk` sees every package.
    pub fn finish_init(&mut self) -> Result<(), TreeError> {
        let dbs = std::mem::take(&mut self.apk_dbs);
        if dbs.len() < 2 {
            return Ok(());
        }
        self.begin_section("init")?;
        let mut data = Vec::new();
        for db in &dbs {
            data.extend_from_slice(db);
            data.extend_from_slice(b"\n\n");
        }
        let mut entry = Entry::new(APK_DB, EntryKind::File { size: data.len() as u64 }, 0o644)
            .with_origin("LINUXKIT.apkinit", "init");
        entry.mtime = Mtime::secs(0);
        self.sink.add(&entry, &mut &data[..]).map_err(|source| TreeError::Sink {
            location: "init".into(),
            image: "LINUXKIT.apkinit".into(),
            layer: None,
            path: APK_DB.into(),
            source,
        })
    }

    /// Volume `index`: `containers/volumes/<name>/lower` (the image's root, or empty), then the
    /// `tmp` and `merged` directories (always, even for read-only volumes, as LinuxKit does).
    pub fn volume(
        &mut self,
        index: usize,
        name: &str,
        image: Option<Image>,
    ) -> Result<(), TreeError> {
        let location = format!("volume[{index}]");
        self.begin_section(&location)?;
        let reference = image.as_ref().map_or("empty".to_string(), |i| i.reference.clone());
        let base = format!("containers/volumes/{name}");
        let expansion = self.limits.expansion;
        let mut emit = sink_emit(&mut self.sink);
        let res = (|| {
            image_tar(
                &location,
                image,
                &format!("{base}/lower/"),
                Some(RESOLVCONF_SYMLINK),
                expansion,
                &mut emit,
            )?;
            emit_volume_dirs(&base, &location, &mut emit)
        })();
        res.map_err(|e| TreeError::from_image(&location, &reference, e))
    }

    /// Volume `index` with `format: oci`: `containers/volumes/<name>/lower/` holds the image as
    /// an OCI image layout (see [`crate::OciLayout`]), then the `tmp` and `merged` directories
    /// as for any volume.
    pub fn oci_volume(
        &mut self,
        index: usize,
        name: &str,
        layout: crate::OciLayout<'_>,
    ) -> Result<(), TreeError> {
        let location = format!("volume[{index}]");
        self.begin_section(&location)?;
        let reference = layout.reference.clone();
        let base = format!("containers/volumes/{name}");
        let mut emit = sink_emit(&mut self.sink);
        let res = (|| {
            crate::oci_layout::emit_layout(
                &format!("{base}/lower/"),
                &location,
                layout,
                &mut emit,
            )?;
            emit_volume_dirs(&base, &location, &mut emit)
        })();
        res.map_err(|e| TreeError::from_image(&location, &reference, e))
    }

    /// `--input-tar`: the `tmp` and `merged` directories of volume `index`, after its `lower`
    /// was copied from the previous build (they are tagged `linuxkit.volumes`, not with the
    /// image, so the copy by image and location does not carry them).
    pub fn volume_dirs(&mut self, index: usize, name: &str) -> Result<(), TreeError> {
        let location = format!("volume[{index}]");
        self.begin_section(&location)?;
        let mut emit = sink_emit(&mut self.sink);
        emit_volume_dirs(&format!("containers/volumes/{name}"), &location, &mut emit)
            .map_err(|e| TreeError::from_image(&location, "linuxkit.volumes", e))
    }

    /// One container bundle (LinuxKit's `ImageBundle`).
    pub fn bundle(&mut self, b: Bundle<'_>) -> Result<(), TreeError> {
        let location = format!("{}[{}]", b.section.name(), b.index);
        self.begin_section(&location)?;
        let reference = b.image.reference.clone();
        let prefix = b.section.bundle_path(b.index, b.name);
        let root_dir = if b.readonly { "rootfs" } else { "lower" };
        let previous = self.extracted.get(&reference).cloned();
        let expansion = self.limits.expansion;
        let mut emit = sink_emit(&mut self.sink);
        let origin = |e: Entry| e.with_origin(&reference, &location);
        let res = (|| -> Result<String, ImageError> {
            let root = match &previous {
                None => {
                    let root = format!("{prefix}/{root_dir}");
                    let root_slash = format!("{root}/");
                    image_tar(&location, Some(b.image), &root_slash, None, expansion, &mut emit)?;
                    root
                }
                Some(root) => {
                    emit_prefix(&format!("{prefix}/"), &reference, &location, &mut emit)?;
                    root.clone()
                }
            };
            let cfg = origin(Entry::new(
                format!("{prefix}/config.json"),
                EntryKind::File { size: b.config_json.len() as u64 },
                0o644,
            ));
            emit(&cfg, &mut &b.config_json[..])?;
            if !b.readonly {
                let tmp = format!("{prefix}/tmp");
                emit(&origin(Entry::new(tmp, EntryKind::Dir, 0o755)), &mut io::empty())?;
                emit(
                    &origin(Entry::new(format!("{prefix}/rootfs"), EntryKind::Dir, 0o755)),
                    &mut io::empty(),
                )?;
            } else if previous.is_some() {
                emit(
                    &origin(Entry::new(format!("{prefix}/rootfs"), EntryKind::Dir, 0o755)),
                    &mut io::empty(),
                )?;
            }
            let runtime = (b.runtime_json)(&root);
            let rt = origin(Entry::new(
                format!("{prefix}/runtime.json"),
                EntryKind::File { size: runtime.len() as u64 },
                0o644,
            ));
            emit(&rt, &mut &runtime[..])?;
            Ok(root)
        })();
        let root = res.map_err(|e| TreeError::from_image(&location, &reference, e))?;
        self.extracted.entry(reference).or_insert(root);
        Ok(())
    }

    /// The `files` section (§1.3). Items carry their YAML index; skipped optional files are
    /// simply absent.
    pub fn files(&mut self, items: Vec<FileItem>) -> Result<(), TreeError> {
        self.begin_section("files")?;
        emit_files(items, &mut self.sink)
    }

    /// The `Dockerfile` entry the `docker` format appends (mode 0644, no PAX records).
    pub fn dockerfile(&mut self) -> Result<(), TreeError> {
        self.begin_section("dockerfile")?;
        let e = Entry::new("Dockerfile", EntryKind::File { size: DOCKERFILE.len() as u64 }, 0o644);
        self.sink.add(&e, &mut DOCKERFILE.as_bytes()).map_err(|source| TreeError::Sink {
            location: "docker".into(),
            image: "Dockerfile".into(),
            layer: None,
            path: "Dockerfile".into(),
            source,
        })
    }

    /// Copies entries through unchanged.
    pub fn raw(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        self.sink.add(entry, data)
    }

    /// `--input-tar`: a bundle copied from a previous build holds `reference`'s root at `root`
    /// (unless an earlier bundle already did), so later bundles of the same image reuse it exactly
    /// as they would in a full build.
    pub fn note_copied_bundle(&mut self, reference: &str, root: String) {
        self.extracted.entry(reference.to_string()).or_insert(root);
    }

    /// `--input-tar`: copies the section `location` of image `source` from a previous build's tar
    /// instead of extracting the image again (init sections still feed the apk consolidation).
    /// Returns how many entries were copied.
    pub fn copy_from_tar(
        &mut self,
        tar: &mut dyn Read,
        source: &str,
        location: &str,
    ) -> Result<u64, TreeError> {
        let mut n = 0u64;
        let is_init = location.starts_with("init[");
        self.begin_section(if is_init { "init" } else { location })?;
        let sink = &mut self.sink;
        let dbs = &mut self.apk_dbs;
        crate::input::for_each_section_entry(
            tar,
            source,
            location,
            |entry: &Entry, data: &mut dyn Read| -> Result<(), ImageError> {
                n += 1;
                let res = if is_init && entry.path == APK_DB {
                    let mut tee = Tee { inner: data, copy: Vec::new() };
                    let r = sink
                        .add(entry, &mut tee)
                        .and_then(|()| io::copy(&mut tee, &mut io::sink()).map(|_| ()));
                    dbs.push(tee.copy);
                    r
                } else {
                    sink.add(entry, data)
                };
                res.map_err(|source| ImageError::Sink {
                    layer: None,
                    path: entry.path.clone(),
                    source,
                })
            },
        )
        .map_err(|e| TreeError::from_image(location, source, e))?;
        Ok(n)
    }
}

/// A volume's `tmp` and `merged` directories (always, even for read-only volumes, as LinuxKit).
fn emit_volume_dirs(
    base: &str,
    location: &str,
    emit: &mut crate::image::Emit<'_>,
) -> Result<(), ImageError> {
    for dir in ["tmp", "merged"] {
        let e = Entry::new(format!("{base}/{dir}"), EntryKind::Dir, 0o755)
            .with_origin("linuxkit.volumes", location);
        emit(&e, &mut io::empty())?;
    }
    Ok(())
}

/// Passes data through while keeping a copy.
struct Tee<'a> {
    inner: &'a mut dyn Read,
    copy: Vec<u8>,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

/// Reads the `LINUXKIT.source`/`LINUXKIT.location` pair of an entry.
pub fn origin_of(entry: &Entry) -> (Option<&str>, Option<&str>) {
    (entry.pax(PAX_SOURCE), entry.pax(PAX_LOCATION))
}
