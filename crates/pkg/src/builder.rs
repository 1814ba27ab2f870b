//! `pkg lock` and `pkg build`: build.yml → packages.lock → verified `.deb`s → one layer per
//! platform → an OCI image tagged `<org>/<image>:<tag>`.

use crate::deb::archive::{self, Archive};
use crate::deb::sources;
use crate::image::{self, PlatformImage, Sink};
use crate::layer::{self, LayerBuilder};
use crate::lock::{self, Lock, Locked};
use crate::prebuilt::{self, Prebuilt};
use crate::rust_inputs;
use crate::sbom::{self, DebPackage};
use crate::spec::{BuildSpec, RustBinary};
use crate::{kmod, tag};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The suite used when build.yml names none.
pub const DEFAULT_SUITE: &str = "bookworm";

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error(transparent)]
    Spec(crate::spec::SpecError),
    #[error(transparent)]
    Tag(tag::TagError),
    #[error(transparent)]
    Lock(lock::LockError),
    #[error("package {dir}")]
    Archive { dir: PathBuf, source: Box<archive::ArchiveError> },
    #[error("package {dir}")]
    Resolve { dir: PathBuf, source: crate::deb::resolve::ResolveError },
    #[error("package {dir}")]
    Layer { dir: PathBuf, source: layer::LayerError },
    #[error("package {dir}")]
    Kmod { dir: PathBuf, source: kmod::KmodError },
    #[error("package {dir}")]
    Image { dir: PathBuf, source: image::ImageError },
    #[error("{path} is stale: build.yml's debian section changed since it was written; run `baleen pkg lock {dir}`")]
    StaleLock { path: PathBuf, dir: PathBuf },
    #[error("{path} has no {arch} packages; run `baleen pkg lock --platforms` with every platform you build, e.g. linux/amd64,linux/{arch}, on {dir}")]
    LockMissingArch { path: PathBuf, arch: String, dir: PathBuf },
    #[error("package {dir}: files[{index}]: reading {path}")]
    Source { dir: PathBuf, index: usize, path: PathBuf, source: std::io::Error },
    #[error("package {dir}: debian.keyring {path}: {message}")]
    Keyring { dir: PathBuf, path: PathBuf, message: String },
    #[error("package {dir}: debian: no package for {arch} (packages is empty and arch-packages has no {arch} entry)")]
    NoPackagesForArch { dir: PathBuf, arch: String },
    #[error("package {dir}: kernel: no boot/vmlinuz-* in the Debian packages")]
    NoKernel { dir: PathBuf },
    #[error("package {dir}: kernel.dtbs: no /{path} in the Debian packages")]
    NoDtb { dir: PathBuf, path: String },
    #[error("package {dir}: rust {package}: {message}")]
    Cargo { dir: PathBuf, package: String, message: String },
    #[error("package {dir}: {what}")]
    Io { dir: PathBuf, what: String, source: std::io::Error },
}

impl From<crate::spec::SpecError> for PackageError {
    fn from(e: crate::spec::SpecError) -> Self {
        PackageError::Spec(e)
    }
}

impl From<tag::TagError> for PackageError {
    fn from(e: tag::TagError) -> Self {
        PackageError::Tag(e)
    }
}

impl From<lock::LockError> for PackageError {
    fn from(e: lock::LockError) -> Self {
        PackageError::Lock(e)
    }
}

/// How to reach the archive and where to cache.
#[derive(Debug, Clone)]
pub struct Options {
    /// Archive root overriding build.yml and the host's apt sources.
    pub mirror: Option<String>,
    /// Download cache, e.g. `~/.baleen/cache/debian`.
    pub cache: PathBuf,
    /// Root of the host whose apt sources name the archive (normally `/`).
    pub host_root: PathBuf,
    /// Debian architectures overriding build.yml's `arches`.
    pub arches: Option<Vec<String>>,
    /// How downloads (indexes, `.deb`s) report on stderr; default silent.
    pub progress: baleen_oci::Progress,
}

impl Options {
    /// Defaults: host apt sources, downloads cached in `debian/` of the store directory
    /// (`$BALEEN_CACHE`, else `~/.baleen/cache`).
    pub fn new() -> Options {
        Options {
            mirror: None,
            // Next to the image store, so `BALEEN_CACHE` moves both.
            cache: baleen_oci::Store::default_dir().join("debian"),
            host_root: PathBuf::from("/"),
            arches: None,
            progress: baleen_oci::Progress::Silent,
        }
    }

    fn arches(&self, spec: &BuildSpec) -> Vec<String> {
        self.arches.clone().unwrap_or_else(|| spec.arches.clone())
    }

    fn archive(&self, dir: &Path, spec: &BuildSpec) -> Result<Archive, PackageError> {
        let suite = suite_of(spec);
        let mirror = self
            .mirror
            .clone()
            .or_else(|| spec.debian.as_ref().and_then(|d| d.mirror.clone()))
            .unwrap_or_else(|| {
                sources::mirror_for(&sources::host_sources(&self.host_root), &suite)
            });
        let check = spec.debian.as_ref().is_none_or(|d| d.check_valid_until);
        let components = spec.debian.as_ref().map(|d| &d.components[..]).unwrap_or_default();
        let archive_err = |e| PackageError::Archive { dir: dir.to_owned(), source: Box::new(e) };
        let archive = Archive::new(&mirror, &suite, &self.cache)
            .and_then(|a| a.with_components(components))
            .map_err(archive_err)?
            .check_valid_until(check)
            .with_progress(self.progress.clone());
        Ok(match keyring(dir, spec)? {
            Some((keys, whose)) => archive.with_keyring(keys, &whose),
            None => archive,
        })
    }

    /// The `<suite>-security` archive when build.yml asks for it. `--mirror` does not move it:
    /// Debian serves security updates from their own archive.
    fn security_archive(
        &self,
        dir: &Path,
        spec: &BuildSpec,
    ) -> Result<Option<Archive>, PackageError> {
        match spec.debian.as_ref().filter(|d| d.security) {
            Some(_) => self.security_archive_always(dir, spec).map(Some),
            None => Ok(None),
        }
    }

    /// The `<suite>-security` archive of build.yml's suite, used or not (the audit checks it
    /// either way). `debian.keyring` is trusted for it too when `security-mirror` names a
    /// private one; Debian's own security archive is signed by Debian's keys.
    fn security_archive_always(
        &self,
        dir: &Path,
        spec: &BuildSpec,
    ) -> Result<Archive, PackageError> {
        let debian = spec.debian.as_ref();
        let suite = format!("{}-security", suite_of(spec));
        let mirror = self.security_mirror(spec);
        let check = debian.is_none_or(|d| d.check_valid_until);
        let archive = Archive::new(&mirror, &suite, &self.cache)
            .map_err(|e| PackageError::Archive { dir: dir.to_owned(), source: Box::new(e) })?
            .check_valid_until(check)
            .with_progress(self.progress.clone());
        let private = debian.is_some_and(|d| d.security_mirror.is_some());
        Ok(match keyring(dir, spec)?.filter(|_| private) {
            Some((keys, whose)) => archive.with_keyring(keys, &whose),
            None => archive,
        })
    }

    fn security_mirror(&self, spec: &BuildSpec) -> String {
        let suite = format!("{}-security", suite_of(spec));
        spec.debian.as_ref().and_then(|d| d.security_mirror.clone()).unwrap_or_else(|| {
            let found = sources::mirror_for(&sources::host_sources(&self.host_root), &suite);
            if found == sources::DEFAULT_MIRROR {
                DEFAULT_SECURITY_MIRROR.to_owned()
            } else {
                found
            }
        })
    }

    /// How `baleen audit` reaches the archives of the package in `dir`: its main suite and
    /// `<suite>-security`, with build.yml's keyring.
    pub fn audit_archive(
        &self,
        dir: &Path,
        spec: &BuildSpec,
    ) -> Result<crate::audit::ArchiveSpec, PackageError> {
        let main = self.archive(dir, spec)?;
        Ok(crate::audit::ArchiveSpec {
            mirror: main.mirror.clone(),
            suite: main.suite.clone(),
            security_mirror: self.security_mirror(spec),
            keyring: keyring(dir, spec)?,
        })
    }
}

/// build.yml's `debian.keyring`: its keys and whose they are (`a key of pkg/x/archive.gpg`).
fn keyring(dir: &Path, spec: &BuildSpec) -> Result<Option<(Vec<u8>, String)>, PackageError> {
    let Some(k) = spec.debian.as_ref().and_then(|d| d.keyring.as_deref()) else { return Ok(None) };
    let path = dir.join(k);
    let err = |message: String| PackageError::Keyring {
        dir: dir.to_owned(),
        path: path.clone(),
        message,
    };
    let keys = std::fs::read(&path).map_err(|e| err(e.to_string()))?;
    if archive::keyring_keys(&keys) == 0 {
        return Err(err(format!(
            "no OpenPGP public key in it; it must be a binary keyring (gpg --export KEY > {k})"
        )));
    }
    Ok(Some((keys, format!("a key of {}", path.display()))))
}

/// Debian's security archive, used when the host's apt sources name none.
pub const DEFAULT_SECURITY_MIRROR: &str = "http://deb.debian.org/debian-security";

impl Default for Options {
    fn default() -> Self {
        Self::new()
    }
}

fn suite_of(spec: &BuildSpec) -> String {
    spec.debian.as_ref().and_then(|d| d.suite.clone()).unwrap_or_else(|| DEFAULT_SUITE.to_owned())
}

/// Resolves build.yml's Debian packages for every architecture against the archive's signed
/// index and writes `packages.lock`. Returns the lock (empty when there are no packages).
pub fn lock(dir: &Path, opts: &Options) -> Result<Lock, PackageError> {
    let spec = BuildSpec::load(dir)?;
    let arches = opts.arches(&spec);
    let suite = suite_of(&spec);
    let Some(debian) = &spec.debian else {
        return Ok(Lock { request: String::new(), suite, packages: Vec::new() });
    };
    let archive = opts.archive(dir, &spec)?;
    let security = opts.security_archive(dir, &spec)?;
    let aerr = |source| PackageError::Archive { dir: dir.to_owned(), source: Box::new(source) };
    let mut packages = Vec::new();
    for arch in &arches {
        let wanted = debian.for_arch(arch);
        if wanted.is_empty() {
            return Err(PackageError::NoPackagesForArch {
                dir: dir.to_owned(),
                arch: arch.clone(),
            });
        }
        let mut index = archive.index(arch).map_err(aerr)?;
        if let Some(sec) = &security {
            let updates = sec.index(arch).map_err(aerr)?;
            index = std::sync::Arc::new(index.overlay(&updates, &sec.suite));
        }
        let closure = index
            .resolve(&wanted, &debian.exclude)
            .map_err(|source| PackageError::Resolve { dir: dir.to_owned(), source })?;
        packages.extend(closure.into_iter().map(|p| Locked {
            arch: arch.clone(),
            deb: archive::DebRef {
                name: p.name,
                version: p.version,
                filename: p.filename,
                sha256: p.sha256,
                size: p.size,
                suite: p.suite,
            },
        }));
    }
    let lock = Lock { request: lock::request_hash(debian, &suite, &arches), suite, packages };
    lock.write(dir)?;
    Ok(lock)
}

/// `pkg lock --update`: resolves build.yml's packages afresh against the newest indexes of its
/// suites, writes packages.lock and returns it with the lines that changed.
pub fn update(dir: &Path, opts: &Options) -> Result<(Lock, Vec<lock::Change>), PackageError> {
    let before = Lock::load(dir)?;
    let after = lock(dir, opts)?;
    let changes = lock::changes(before.as_ref(), &after);
    Ok((after, changes))
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct Built {
    pub tag: tag::Tag,
    /// The image index digest, `sha256:…`.
    pub digest: String,
    /// False when the tag was already in the sink and nothing was built.
    pub built: bool,
}

/// Builds the package in `dir` into `sink`. Writes `packages.lock` first when there is none.
/// Skips the build when `sink` already has the tag, unless `force`.
pub fn build(
    dir: &Path,
    opts: &Options,
    sink: &mut dyn Sink,
    force: bool,
) -> Result<Built, PackageError> {
    let spec = BuildSpec::load(dir)?;
    let arches = opts.arches(&spec);
    let locked = match &spec.debian {
        None => None,
        Some(debian) => {
            let path = dir.join(lock::LOCK_FILE);
            let l = match Lock::load(dir)? {
                Some(l) => l,
                None => {
                    tracing::info!("{}: no packages.lock yet; resolving", dir.display());
                    lock(dir, opts)?
                }
            };
            for a in &arches {
                if l.for_arch(a).next().is_none() {
                    return Err(PackageError::LockMissingArch {
                        path: path.clone(),
                        arch: a.clone(),
                        dir: dir.to_owned(),
                    });
                }
            }
            // Checked after the architectures: a missing one is the more useful message.
            if l.request != lock::request_hash(debian, &suite_of(&spec), &l_arches(&l, &arches)) {
                return Err(PackageError::StaleLock { path, dir: dir.to_owned() });
            }
            Some(l)
        }
    };
    // The tag is computed after locking: the lock is one of its inputs.
    let tag = tag::tag(dir)?;
    let name = tag.to_string();
    if !force {
        if let Some(d) = sink.lookup(&name) {
            let have = sink.architectures(&d);
            let covered = have.as_ref().is_none_or(|have| {
                arches.iter().all(|a| have.iter().any(|h| h == image::oci_arch(a)))
            });
            if covered {
                return Ok(Built { tag, digest: d.digest, built: false });
            }
            tracing::info!(
                "{name} is stored for {} only: building it for {}",
                have.unwrap_or_default().join(", "),
                arches.join(", ")
            );
        }
    }
    let archives =
        Archives { main: opts.archive(dir, &spec)?, security: opts.security_archive(dir, &spec)? };
    let mut platforms = Vec::new();
    for arch in &arches {
        let (layer, contents) = build_layer(dir, &spec, arch, locked.as_ref(), &archives)?;
        let mut labels = Vec::new();
        if let Some(l) = spec.label_json() {
            labels.push(("org.mobyproject.config".to_owned(), l));
        }
        labels.extend(spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        platforms.push(PlatformImage {
            arch: arch.clone(),
            layer_tar: layer,
            config: spec.config.clone(),
            labels,
            sbom: Some(sbom::document(
                &name,
                image::oci_arch(arch),
                &contents.debs,
                &contents.rust,
            )),
        });
    }
    let root = image::write_image(sink, &name, platforms)
        .map_err(|source| PackageError::Image { dir: dir.to_owned(), source })?;
    Ok(Built { tag, digest: root.digest, built: true })
}

/// The lock was written for the arches it lists; a `--platforms` subset is still fresh.
fn l_arches(l: &Lock, wanted: &[String]) -> Vec<String> {
    let mut have: Vec<String> = Vec::new();
    for p in &l.packages {
        if !have.contains(&p.arch) {
            have.push(p.arch.clone());
        }
    }
    if wanted.iter().all(|a| have.contains(a)) {
        have
    } else {
        wanted.to_vec()
    }
}

/// The archives a build fetches from: the main suite, and its security suite when asked for.
struct Archives {
    main: Archive,
    security: Option<Archive>,
}

impl Archives {
    /// The archive serving a locked package's suite.
    fn for_deb(&self, deb: &archive::DebRef) -> Result<&Archive, archive::ArchiveError> {
        match &deb.suite {
            None => Ok(&self.main),
            Some(s) => self.security.as_ref().filter(|a| &a.suite == s).ok_or_else(|| {
                archive::ArchiveError::UnknownSuite {
                    package: format!("{} {}", deb.name, deb.version),
                    suite: s.clone(),
                }
            }),
        }
    }
}

/// What a platform's layer holds, for its SBOM.
#[derive(Debug, Default)]
struct Contents {
    debs: Vec<DebPackage>,
    rust: Vec<sbom::RustBinary>,
}

/// Where the SBOM says a locked `.deb` is: the archive build.yml names for its suite, else
/// Debian's (`--mirror` and the host's apt sources are not inputs of the image).
fn download_location(spec: &BuildSpec, deb: &archive::DebRef) -> String {
    let debian = spec.debian.as_ref();
    let root = match &deb.suite {
        None => debian
            .and_then(|d| d.mirror.clone())
            .unwrap_or_else(|| sources::DEFAULT_MIRROR.to_owned()),
        Some(_) => debian
            .and_then(|d| d.security_mirror.clone())
            .unwrap_or_else(|| DEFAULT_SECURITY_MIRROR.to_owned()),
    };
    format!("{}/{}", root.trim_end_matches('/'), deb.filename)
}

fn build_layer(
    dir: &Path,
    spec: &BuildSpec,
    arch: &str,
    locked: Option<&Lock>,
    archives: &Archives,
) -> Result<(std::fs::File, Contents), PackageError> {
    let mut contents = Contents::default();
    let lerr = |source| PackageError::Layer { dir: dir.to_owned(), source };
    // A kernel component keeps lib/modules whole until the modules are chosen.
    let drop = if spec.kernel.is_some() { Vec::new() } else { spec.drop_globs() };
    let mut l = LayerBuilder::new(&drop).map_err(lerr)?;
    if let Some(lock) = locked {
        for deb in lock.for_arch(arch) {
            let path = archives
                .for_deb(deb)
                .map_err(|e| PackageError::Archive { dir: dir.to_owned(), source: Box::new(e) })?
                .fetch_deb(deb)
                .map_err(|source| PackageError::Archive {
                    dir: dir.to_owned(),
                    source: Box::new(source),
                })?;
            let meta = l
                .add_deb(&path, &format!("{} {} ({})", deb.name, deb.version, deb.filename))
                .map_err(lerr)?;
            contents.debs.push(DebPackage {
                name: deb.name.clone(),
                version: deb.version.clone(),
                arch: if meta.architecture.is_empty() {
                    arch.to_owned()
                } else {
                    meta.architecture.clone()
                },
                source: meta.source_package(),
                suite: deb.suite.clone().unwrap_or_else(|| lock.suite.clone()),
                download: download_location(spec, deb),
                sha256: deb.sha256.clone(),
                licenses: meta.copyright.as_deref().and_then(sbom::dep5_licenses),
            });
        }
    }
    if let Some(k) = &spec.kernel {
        l = kernel_layout(dir, l, &k.modules, &k.dtbs)?;
    }
    for (i, f) in spec.files.iter().enumerate() {
        let mode = f.mode.map(|m| m.0);
        if let Some(src) = &f.source {
            let p = dir.join(src);
            let file = std::fs::File::open(&p).map_err(|source| PackageError::Source {
                dir: dir.to_owned(),
                index: i,
                path: p.clone(),
                source,
            })?;
            use std::os::unix::fs::PermissionsExt;
            let exec =
                file.metadata().map(|m| m.permissions().mode() & 0o111 != 0).unwrap_or(false);
            l.add_file(&f.path, mode.unwrap_or(if exec { 0o755 } else { 0o644 }), file)
                .map_err(lerr)?;
        } else if let Some(c) = &f.contents {
            l.add_file(&f.path, mode.unwrap_or(0o644), c.as_bytes()).map_err(lerr)?;
        } else if f.directory {
            l.add_dir(&f.path, mode.unwrap_or(0o755)).map_err(lerr)?;
        } else if let Some(t) = &f.symlink {
            l.add_symlink(&f.path, t).map_err(lerr)?;
        }
    }
    for s in &spec.symlinks {
        for p in &s.paths {
            l.add_symlink(p, &s.target).map_err(lerr)?;
        }
    }
    for r in &spec.rust {
        // The binary first: when it cannot be had, that is the error to report.
        let binary = rust_binary(dir, r, arch)?;
        contents.rust.push(rust_sbom(dir, r, arch)?);
        match binary {
            RustBin::Built(bin) => {
                let f = std::fs::File::open(&bin).map_err(|source| PackageError::Io {
                    dir: dir.to_owned(),
                    what: format!("opening {}", bin.display()),
                    source,
                })?;
                l.add_file(&r.path, 0o755, f).map_err(lerr)?;
            }
            RustBin::Prebuilt(p) => l.add_file(&r.path, 0o755, p.bytes).map_err(lerr)?,
        }
    }
    let out = tempfile::tempfile().map_err(|source| PackageError::Io {
        dir: dir.to_owned(),
        what: "creating a temp file".into(),
        source,
    })?;
    let mut out = l.write_tar(std::io::BufWriter::new(out)).map_err(lerr)?;
    out.flush().map_err(|source| PackageError::Io {
        dir: dir.to_owned(),
        what: "writing the layer".into(),
        source,
    })?;
    let layer = out.into_inner().map_err(|e| PackageError::Io {
        dir: dir.to_owned(),
        what: "writing the layer".into(),
        source: e.into_error(),
    })?;
    Ok((layer, contents))
}

/// A `rust:` binary as the SBOM lists it: its crate's version and Cargo.lock's crates, from the
/// workspace above `dir`, else as recorded with the binary embedded in the program (the same
/// text: an image built either way has the same SBOM).
fn rust_sbom(dir: &Path, r: &RustBinary, arch: &str) -> Result<sbom::RustBinary, PackageError> {
    let err = |message: String| PackageError::Cargo {
        dir: dir.to_owned(),
        package: r.package.clone(),
        message,
    };
    let text = match tag::workspace_root(dir) {
        Some(root) => rust_inputs::locked_crates_text(&root, &r.package).map_err(|e| {
            let e = crate::chain(&e);
            err(format!("reading the crates of {} in {}: {e}", r.package, root.display()))
        })?,
        None => {
            let bin = r.bin.clone().unwrap_or_else(|| r.package.clone());
            match prebuilt::find(&r.package, &bin, arch) {
                Some(p) => p.crates.to_owned(),
                // rust_binary says why there is no binary at all.
                None => String::new(),
            }
        }
    };
    let (version, crates) = rust_inputs::parse_locked_crates(&text);
    Ok(sbom::RustBinary { package: r.package.clone(), version, path: r.path.clone(), crates })
}

/// Turns an unpacked Debian kernel into LinuxKit's kernel image layout: `kernel` (the bzImage)
/// and `kernel.tar` (the chosen modules with generated modules.dep/alias/softdep).
fn kernel_layout(
    dir: &Path,
    mut debs: LayerBuilder,
    wanted: &[String],
    dtbs: &[String],
) -> Result<LayerBuilder, PackageError> {
    let lerr = |source| PackageError::Layer { dir: dir.to_owned(), source };
    let kerr = |source| PackageError::Kmod { dir: dir.to_owned(), source };
    let vmlinuz = debs
        .nodes()
        .keys()
        .find(|p| p.starts_with("boot/vmlinuz-"))
        .cloned()
        .ok_or_else(|| PackageError::NoKernel { dir: dir.to_owned() })?;
    let release = vmlinuz.trim_start_matches("boot/vmlinuz-").to_owned();
    let moddir = format!("lib/modules/{release}/");
    let mut mods = kmod::Modules { release: release.clone(), ..Default::default() };
    let paths: Vec<String> =
        debs.nodes().keys().filter(|p| p.starts_with(&moddir)).cloned().collect();
    for p in &paths {
        let rel = &p[moddir.len()..];
        if let Some(name) = kmod::module_name(rel) {
            let bytes = debs.read(p).unwrap_or_default();
            let elf = kmod::decompress(p, bytes).map_err(kerr)?;
            let info = kmod::modinfo(p, &elf).map_err(kerr)?;
            mods.modules.insert(name, (rel.to_owned(), info));
        }
    }
    if let Some(b) = debs.read(&format!("{moddir}modules.builtin")) {
        mods.set_builtin(&String::from_utf8_lossy(&b));
    }
    let selected = mods.select(wanted).map_err(kerr)?;

    let mut tar = LayerBuilder::new(&[]).map_err(lerr)?;
    for name in &selected {
        let rel = &mods.modules[name].0;
        let bytes = debs.read(&format!("{moddir}{rel}")).unwrap_or_default();
        tar.add_file(&format!("{moddir}{rel}"), 0o644, &bytes[..]).map_err(lerr)?;
    }
    for keep in ["modules.builtin", "modules.builtin.modinfo", "modules.order"] {
        if let Some(b) = debs.read(&format!("{moddir}{keep}")) {
            tar.add_file(&format!("{moddir}{keep}"), 0o644, &b[..]).map_err(lerr)?;
        }
    }
    for (file, text) in [
        ("modules.dep", mods.modules_dep(&selected)),
        ("modules.alias", mods.modules_alias(&selected)),
        ("modules.softdep", mods.modules_softdep(&selected)),
    ] {
        tar.add_file(&format!("{moddir}{file}"), 0o644, text.as_bytes()).map_err(lerr)?;
    }
    let kt = tar.write_tar(Vec::new()).map_err(lerr)?;

    let mut out = LayerBuilder::new(&[]).map_err(lerr)?;
    let kernel = debs.read(&vmlinuz).unwrap_or_default();
    out.add_file("kernel", 0o644, &kernel[..]).map_err(lerr)?;
    out.add_file("kernel.tar", 0o644, &kt[..]).map_err(lerr)?;
    for dtb in dtbs {
        let path = format!("usr/lib/linux-image-{release}/{dtb}");
        let bytes =
            debs.read(&path).ok_or_else(|| PackageError::NoDtb { dir: dir.to_owned(), path })?;
        let mut parent = "dtbs".to_owned();
        out.add_dir(&parent, 0o755).map_err(lerr)?;
        for part in dtb.split('/').take(dtb.split('/').count() - 1) {
            parent = format!("{parent}/{part}");
            out.add_dir(&parent, 0o755).map_err(lerr)?;
        }
        out.add_file(&format!("dtbs/{dtb}"), 0o644, &bytes[..]).map_err(lerr)?;
    }
    Ok(out)
}

/// The Rust target triple of a Debian architecture, for static (musl) binaries.
pub fn musl_target(arch: &str) -> &'static str {
    match arch {
        "arm64" => "aarch64-unknown-linux-musl",
        "riscv64" => "riscv64gc-unknown-linux-musl",
        _ => "x86_64-unknown-linux-musl",
    }
}

/// Where a `rust:` binary's bytes come from.
enum RustBin {
    /// Built here by cargo, at this path.
    Built(PathBuf),
    /// Embedded in the program ([`prebuilt`]), built from the same sources.
    Prebuilt(&'static Prebuilt),
}

/// The binary `r` names, for `arch`: built with cargo in the workspace above `dir`; the
/// program's prebuilt one when there is no workspace (the tag then already names its sources),
/// or when cargo is not installed and the prebuilt one was built from this workspace's sources.
fn rust_binary(dir: &Path, r: &RustBinary, arch: &str) -> Result<RustBin, PackageError> {
    let err = |message: String| PackageError::Cargo {
        dir: dir.to_owned(),
        package: r.package.clone(),
        message,
    };
    let bin = r.bin.clone().unwrap_or_else(|| r.package.clone());
    let prebuilt = r.static_.then(|| prebuilt::find(&r.package, &bin, arch)).flatten();
    let Some(root) = tag::workspace_root(dir) else {
        return prebuilt.map(RustBin::Prebuilt).ok_or_else(|| {
            err(format!(
                "{} is not inside a Cargo workspace, so {bin} cannot be built here, and this \
                 baleen embeds no {bin} for {arch}{}; run `baleen pkg build` on the package \
                 inside a baleen source checkout (with cargo and `rustup target add {}`)",
                dir.display(),
                missing_note(),
                musl_target(arch),
            ))
        });
    };
    match cargo_build(&root, dir, r, &bin, arch)? {
        Some(path) => Ok(RustBin::Built(path)),
        None => {
            let no_cargo =
                "cargo is not installed (not on PATH; install Rust from https://rustup.rs)";
            let Some(p) = prebuilt else {
                return Err(err(format!(
                    "{no_cargo}, and this baleen embeds no {bin} for {arch}{}",
                    missing_note()
                )));
            };
            let here = rust_inputs::digest(&root, &[r.package.as_str()]).map_err(|e| {
                let e = crate::chain(&e);
                err(format!("hashing the sources of {} in {}: {e}", r.package, root.display()))
            })?;
            if here != p.inputs {
                return Err(err(format!(
                    "{no_cargo}, and the {bin} embedded in this baleen was built from other \
                     sources than those in {} (it was built from sources hashing to {}, these \
                     hash to {here}); install cargo, or build a copy of the package outside \
                     the checkout to use the embedded one",
                    root.display(),
                    p.inputs
                )));
            }
            tracing::info!("cargo is not installed: using the {bin} embedded in baleen");
            Ok(RustBin::Prebuilt(p))
        }
    }
}

/// Why the program embeds no binary for an architecture, as a clause, or nothing.
fn missing_note() -> String {
    match prebuilt::provided() {
        None => String::new(),
        Some(p) if p.missing.is_empty() => String::new(),
        Some(p) => format!(" ({})", p.missing),
    }
}

/// Builds a workspace binary with cargo and returns its path, or `None` when cargo is not
/// installed. Static binaries use the musl target and the `release-init` profile
/// (size-optimised, abort on panic, stripped). `crates/cli/build.rs` builds the `baleen-init`
/// it embeds with this same command: keep them in step.
fn cargo_build(
    root: &Path,
    dir: &Path,
    r: &RustBinary,
    bin: &str,
    arch: &str,
) -> Result<Option<PathBuf>, PackageError> {
    let err = |message: String| PackageError::Cargo {
        dir: dir.to_owned(),
        package: r.package.clone(),
        message,
    };
    let target_dir = root.join("target/init-build");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    // cargo's progress bar would be drawn into baleen's own output; its warnings and errors
    // still print.
    cmd.current_dir(root)
        .env("CARGO_TERM_PROGRESS_WHEN", "never")
        .args(["build", "--locked", "-p", &r.package, "--bin", bin, "--target-dir"])
        .arg(&target_dir);
    let out = if r.static_ {
        let triple = musl_target(arch);
        cmd.args(["--target", triple, "--profile", "release-init"]);
        // Another architecture's static musl binary links with the toolchain's own lld (the
        // musl target ships its crt and libc), so no cross gcc is needed; a linker the user
        // chose for that target wins.
        let linker = format!("CARGO_TARGET_{}_LINKER", triple.to_uppercase().replace('-', "_"));
        if !triple.starts_with(std::env::consts::ARCH) && std::env::var_os(&linker).is_none() {
            cmd.env(linker, "rust-lld");
        }
        target_dir.join(triple).join("release-init").join(bin)
    } else {
        cmd.arg("--release");
        target_dir.join("release").join(bin)
    };
    tracing::info!("building {} ({bin}) for {arch}", r.package);
    let status = match cmd.status() {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(format!("running cargo: {e}"))),
    };
    if !status.success() {
        return Err(err(format!("cargo build failed ({status}); with static: true the target needs `rustup target add {}`", musl_target(arch))));
    }
    Ok(Some(out))
}

#[cfg(test)]
#[path = "builder_tests.rs"]
mod tests;
