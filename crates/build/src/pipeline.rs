//! The pipeline: images pulled once, containers rendered once, then for each format one pass of
//! the image tree into that format's writer, and all outputs committed at the end (`output::Outputs::commit` says what that guarantees).

use crate::files::FilesError;
use crate::format::{Family, Format, Target};
use crate::images::{self, ImagesError};
use crate::incremental::{IncrementalError, Previous};
use crate::output::Outputs;
use crate::sbom::{SbomError, SbomOptions};
use crate::segments::{InitrdCache, NoCache, SegmentCache, SegmentStats};
use baleen_formats::{InitrdCompression, InitrdLayout, InitrdOptions, InitrdWriter, TarWriter};
use baleen_oci::{Platform, PullOptions, Store};
use baleen_spec::{Config, IdMap, ImageConfig};
use baleen_tree::{EntrySink, LimitError, Limits, Section, TreeError, TreeWriter};
use std::collections::HashMap;
use std::io::{self, Seek, Write};
use std::path::PathBuf;
use tracing::info;

/// Where the outputs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// `<dir>/<name>` plus each format's suffixes.
    Base { dir: PathBuf, name: String },
    /// One streamable format to this file (`--o FILE`).
    File(PathBuf),
    /// One streamable format to standard output (`--o -`).
    Stdout,
}

/// Everything a build needs, validated by the caller.
#[derive(Debug)]
pub struct Request<'a> {
    pub config: &'a Config,
    pub formats: Vec<Format>,
    pub output: Output,
    pub platform: Platform,
    pub store: &'a Store,
    pub pull: PullOptions,
    pub decompress_kernel: bool,
    pub compression: InitrdCompression,
    /// `--initrd-layout`: one compressed stream (LinuxKit's), or one per section of the tree.
    pub initrd_layout: InitrdLayout,
    /// Whether a segmented initrd reuses (and fills) the store's segment cache. `baleen verify`
    /// turns it off: a rebuild that read its segments from the store would reproduce a
    /// tampered or stale cache entry and call the output identical.
    pub segment_cache: bool,
    /// `--input-tar`: a previous build's tar to copy unchanged sections from.
    pub input_tar: Option<PathBuf>,
    /// `--no-sbom`, `--sbom-output`, `--sbom-current-time` (spec §3 step 9).
    pub sbom: SbomOptions,
    /// `--privileges` and who is shown the containers with host-level power.
    pub privileges: crate::privileges::Privileges<'a>,
    /// `--size` in bytes: the disk length of `qcow2-bios` (virtual) and `aws`, as LinuxKit's;
    /// `None`: LinuxKit's 1 GiB, or the content rounded up to whole GiB when it needs more
    /// ([`crate::disk::default_disk_size`]).
    pub size: Option<u64>,
    /// `--max-size`, `--max-expansion`: what the tree refuses to expand to.
    pub limits: Limits,
    /// `--sign-key`/`--sign-cert`: sign the UKI for Secure Boot.
    pub sign: Option<crate::sign::Signing>,
    /// `--verity`: a dm-verity hash tree after the root image (kernel+squashfs/erofs), or in a
    /// partition of its own beside the root partition (`root`).
    pub verity: bool,
    /// `--root`: the EFI disks' system in a root partition of this filesystem, the UKI booting
    /// it through stage 1.
    pub root: Option<crate::root_partition::RootFs>,
    /// `--budget`: sizes checked before the outputs are committed.
    pub budget: crate::budget::Budget,
    /// The images pinned by a lock file, and where to record this build's.
    pub lock: crate::lock::LockOptions,
}

impl<'a> Request<'a> {
    /// A build of `formats` of `config` from `store` for `platform` into `output`, every other
    /// field at its default: no `--pull`, gzip, the segmented initrd with the segment cache, no
    /// SBOM (`SbomOptions::default`), LinuxKit's privilege policy with no report, the default
    /// limits, and no `--size`, `--sign-key`, `--verity`, `--root`, `--budget`, `--lock` or
    /// `--input-tar`. Set the others with struct update syntax:
    /// `Request { size: Some(n), ..Request::new(…) }`.
    pub fn new(
        config: &'a Config,
        store: &'a Store,
        formats: Vec<Format>,
        output: Output,
        platform: Platform,
    ) -> Self {
        Request {
            config,
            formats,
            output,
            platform,
            store,
            pull: PullOptions::default(),
            decompress_kernel: false,
            compression: InitrdCompression::Gzip,
            initrd_layout: InitrdLayout::default(),
            segment_cache: true,
            input_tar: None,
            sbom: SbomOptions::default(),
            privileges: crate::privileges::Privileges::default(),
            size: None,
            limits: Limits::default(),
            sign: None,
            verity: false,
            root: None,
            budget: crate::budget::Budget::default(),
            lock: crate::lock::LockOptions::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("format `{0}` is a single stream and must be the only format of the build")]
    NotAlone(Format),
    #[error("format `{0}` cannot be written to a single file or stdout; use --dir/--name")]
    NotStreamable(Format),
    #[error(
        "formats `{first}` and `{second}` both write NAME{suffix} (as in LinuxKit); build them \
         separately with different --name values"
    )]
    SameOutput { first: Format, second: Format, suffix: &'static str },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Images(Vec<ImagesError>),
    #[error("writing {format}: checking the layers read")]
    Damaged { format: Format, source: ImagesError },
    /// Every image that could not be pulled, one line each (`services[0] "svc": …`).
    #[error("{}", .0.join("\n"))]
    Pull(Vec<String>),
    #[error("{location}: image {reference}: {message}")]
    Label { location: String, reference: String, message: String },
    #[error("{location}: {message}")]
    Container { location: String, message: String },
    #[error("volumes[{index}] {name:?}: {message}")]
    Volume { index: usize, name: String, message: String },
    #[error(transparent)]
    LabelGrants(#[from] crate::privileges::LabelGrantsDenied),
    #[error(transparent)]
    Files(#[from] FilesError),
    #[error(transparent)]
    Incremental(#[from] IncrementalError),
    #[error(transparent)]
    Sbom(#[from] SbomError),
    #[error(transparent)]
    OciVolume(#[from] crate::oci_volume::OciVolumeError),
    #[error("--input-tar cannot be combined with --pull (the copied sections would not be pulled again)")]
    InputTarWithPull,
    #[error("--input-tar {0} is also an output of this build: give the new build another name")]
    InputTarIsOutput(PathBuf),
    #[error("writing {format}{}", limit_hint(source))]
    Tree { format: Format, source: TreeError },
    #[error("writing {format} output")]
    Io { format: Format, source: io::Error },
    #[error("writing {format}")]
    Disk { format: Format, source: crate::disk::DiskError },
    #[error("writing {format}")]
    Rpi { format: Format, source: crate::rpi::RpiBuildError },
    #[error("writing {format}")]
    Rootfs { format: Format, source: crate::rootfs::RootfsError },
    #[error("writing {format}")]
    Iso { format: Format, source: crate::iso::IsoBuildError },
    #[error(transparent)]
    Signing(#[from] crate::sign::SigningError),
    #[error(transparent)]
    Verity(#[from] crate::verity::VerityFormatsError),
    #[error(transparent)]
    Root(#[from] crate::root_partition::RootFormatsError),
    #[error(transparent)]
    Arch(#[from] crate::format::ArchError),
    #[error(transparent)]
    OverBudget(#[from] crate::budget::OverBudget),
    #[error("writing the lock file {path}")]
    WriteLock { path: PathBuf, source: io::Error },
}

/// One container, rendered.
pub(crate) struct Container {
    pub(crate) section: Section,
    pub(crate) index: usize,
    pub(crate) name: String,
    /// The image string as the YAML wrote it (the key of the images map).
    pub(crate) image: String,
    pub(crate) readonly: bool,
    pub(crate) config_json: Vec<u8>,
    pub(crate) runtime: baleen_spec::oci::RuntimeJson,
    /// Host-level grants, each from the YAML or the label.
    pub(crate) grants: Vec<baleen_spec::privileges::Granted>,
}

/// What every format pass reads, prepared once: the images, the rendered containers, the ids,
/// and the previous build (`--input-tar`).
pub(crate) struct Prepared {
    pub(crate) images: HashMap<String, baleen_oci::Image>,
    pub(crate) containers: Vec<Container>,
    pub(crate) ids: IdMap,
    pub(crate) previous: Option<Previous>,
    /// The merged SBOM's path in the tree and bytes, unless `--no-sbom`.
    pub(crate) sbom: Option<(String, Vec<u8>)>,
    /// Per volume, its OCI layout when it is `format: oci`.
    pub(crate) oci_volumes: Vec<Option<crate::oci_volume::OciVolume>>,
    /// The key pair the UKI is signed with.
    pub(crate) signer: Option<baleen_sign::KeyPair>,
    /// Sizes noted while writing, for `--budget`.
    pub(crate) measured: std::cell::RefCell<crate::budget::Measured>,
    /// The initrd's sections taken from the segment cache, and those written.
    pub(crate) segments: std::cell::RefCell<SegmentStats>,
}

/// What a build wrote and predicted.
#[derive(Debug)]
pub struct Built {
    /// The files written (empty for stdout).
    pub files: Vec<PathBuf>,
    /// PCR 11 of the signed UKI, when the build signed one.
    pub pcr11: Option<crate::tpm::Pcr11>,
    /// The initrd's sections taken from the segment cache, and those written (every initrd of
    /// the build, in order).
    pub segments: SegmentStats,
}

/// Runs the build; returns the files written (empty for stdout).
pub fn build(req: &Request<'_>) -> Result<Vec<PathBuf>, BuildError> {
    build_report(req).map(|b| b.files)
}

/// Runs the build; returns the files written and the PCR 11 value predicted.
pub fn build_report(req: &Request<'_>) -> Result<Built, BuildError> {
    crate::checks::formats(req)?;
    crate::format::check_arch(&req.platform.architecture, &req.formats, req.root.is_some())?;
    // Before any image is pulled or file written: a bad key fails fast.
    if req.root.is_some() {
        crate::root_partition::check_formats(&req.formats)?;
    }
    if req.verity {
        crate::verity::check_formats(&req.formats, req.root.is_some())?;
    }
    let signer = req.sign.as_ref().map(|s| s.load(&req.formats)).transpose()?;
    let previous = match &req.input_tar {
        Some(path) => {
            crate::checks::input_tar(req, path)?;
            Some(Previous::load(path, req.config)?)
        }
        None => None,
    };
    let images = crate::fetch::fetch(req)?;
    let ids = IdMap::new(req.config);
    let containers = render(req.config, &images, &ids)?;
    crate::privileges::enforce(&req.privileges, &privileged(&containers))?;
    let sbom = merged_sbom(req, &images, &containers)?;
    let oci_volumes = oci_volumes(req, &images)?;
    let (measured, segments) = Default::default();
    let prep = Prepared {
        images,
        containers,
        ids,
        previous,
        sbom,
        oci_volumes,
        signer,
        measured,
        segments,
    };
    let mut outputs = Outputs::default();
    if let Some(path) = &req.lock.write {
        let lock = crate::lock::Lock::of(&req.platform, &prep.images);
        write_lock(&mut outputs, path, &lock)?;
    }
    // The EFI formats share one UKI, made by the first of them.
    let mut uki = None;
    for &format in &req.formats {
        info!(format = %format, "writing");
        write_format(req, format, &prep, &mut outputs, &mut uki)?;
    }
    if !req.budget.is_empty() {
        let io_err = |source| BuildError::Io { format: req.formats[0], source };
        let mut measured = prep.measured.take();
        measured.outputs = outputs.sizes().map_err(io_err)?;
        crate::budget::check(&req.budget, &measured)?;
    }
    let pcr11 = uki.as_ref().and_then(crate::disk::Uki::pcr11);
    let files =
        outputs.commit().map_err(|source| BuildError::Io { format: req.formats[0], source })?;
    Ok(Built { files, pcr11, segments: prep.segments.take() })
}

fn write_lock(
    outputs: &mut Outputs,
    path: &std::path::Path,
    lock: &crate::lock::Lock,
) -> Result<(), BuildError> {
    let err = |source| BuildError::WriteLock { path: path.to_path_buf(), source };
    let mut w = outputs.create(path).map_err(err)?;
    w.write_all(&lock.to_json()).map_err(err)?;
    w.flush().map_err(err)
}

/// How to raise the limit a tree error is about (the flags of `baleen build`).
fn limit_hint(e: &TreeError) -> &'static str {
    match e.limit() {
        Some(LimitError::TreeTooLarge { .. }) => {
            "\n  hint: raise the limit with --max-size SIZE, or lift it with --max-size none"
        }
        Some(LimitError::Expands { .. }) | Some(LimitError::WouldExpand { .. }) => {
            "\n  hint: if the layer is meant to expand so much, allow it with --max-expansion \
             RATIO, or turn the check off with --max-expansion none"
        }
        // What the kernel cannot create: no flag would help.
        Some(LimitError::PathTooLong { .. })
        | Some(LimitError::NameTooLong { .. })
        | Some(LimitError::TargetTooLong { .. })
        | None => "",
    }
}

/// config.json and runtime.json of every container (YAML > label > image config).
fn render(
    cfg: &Config,
    images: &HashMap<String, baleen_oci::Image>,
    ids: &IdMap,
) -> Result<Vec<Container>, BuildError> {
    let mut out = Vec::new();
    let sections = [
        (Section::Onboot, &cfg.onboot),
        (Section::Onshutdown, &cfg.onshutdown),
        (Section::Services, &cfg.services),
    ];
    for (section, list) in sections {
        for (index, entry) in list.iter().enumerate() {
            let location = format!("{}[{index}] {:?}", section.name(), entry.name);
            let image = &images[&entry.image];
            let label = match images::label(image) {
                Some(text) => Some(parse_label(text, &location, image)?),
                None => None,
            };
            let defaults = image_defaults(image);
            let (spec, runtime, grants) = baleen_spec::runtime::config_to_oci(
                &entry.name,
                &entry.config,
                label.as_ref(),
                &defaults,
                ids,
            )
            .and_then(|(spec, runtime)| {
                let rendered = (&spec, &runtime);
                let grants = crate::privileges::attributed(
                    &entry.name,
                    &entry.config,
                    label.as_ref(),
                    rendered,
                    &defaults,
                    ids,
                )?;
                Ok((spec, runtime, grants))
            })
            .map_err(|e| BuildError::Container {
                location: location.clone(),
                message: baleen_spec::chain(&e),
            })?;
            let readonly = spec.root.as_ref().is_some_and(|r| r.readonly);
            out.push(Container {
                section,
                index,
                name: entry.name.clone(),
                image: entry.image.clone(),
                readonly,
                config_json: baleen_spec::oci::to_go_json(&spec).into_bytes(),
                runtime,
                grants,
            });
        }
    }
    Ok(out)
}

/// The rendered containers that get host-level power.
fn privileged(containers: &[Container]) -> Vec<crate::privileges::Privileged> {
    containers
        .iter()
        .filter(|c| !c.grants.is_empty())
        .map(|c| crate::privileges::Privileged {
            section: c.section.name(),
            index: c.index,
            name: c.name.clone(),
            image: c.image.clone(),
            grants: c.grants.clone(),
        })
        .collect()
}

fn parse_label(
    text: &str,
    location: &str,
    image: &baleen_oci::Image,
) -> Result<ImageConfig, BuildError> {
    baleen_spec::parse_label(&image.reference.to_string(), text).map_err(|d| BuildError::Label {
        location: location.to_string(),
        reference: image.reference.to_string(),
        message: d.to_string(),
    })
}

fn image_defaults(image: &baleen_oci::Image) -> baleen_spec::runtime::ImageDefaults {
    let c = image.config.config().as_ref();
    baleen_spec::runtime::ImageDefaults {
        entrypoint: c.and_then(|c| c.entrypoint().clone()).unwrap_or_default(),
        cmd: c.and_then(|c| c.cmd().clone()).unwrap_or_default(),
        env: c.and_then(|c| c.env().clone()),
        working_dir: c.and_then(|c| c.working_dir().clone()).unwrap_or_default(),
    }
}

/// Writes `format`'s files: the one dispatch from a format to its writer, by family.
fn write_format(
    req: &Request<'_>,
    format: Format,
    prep: &Prepared,
    outputs: &mut Outputs,
    uki: &mut Option<crate::disk::Uki>,
) -> Result<(), BuildError> {
    let Output::Base { dir, name } = &req.output else {
        // `--o FILE` or stdout: a stream, alone (`checks::formats`).
        return match format.family() {
            Family::Stream { dockerfile } => write_stream(req, format, dockerfile, prep, outputs),
            _ => Err(BuildError::NotStreamable(format)),
        };
    };
    let target = &mut Target { format, dir, name, outputs };
    let disk_err = |source| BuildError::Disk { format, source };
    let tree_pass = |sink: &mut dyn EntrySink| {
        assemble(req, prep, &mut TreeWriter::with_limits(sink, req.limits))
    };
    match format.family() {
        Family::Stream { dockerfile } => write_stream(req, format, dockerfile, prep, outputs),
        Family::KernelInitrd => write_kernel_initrd(req, target, prep),
        Family::TarKernelInitrd => write_tar_kernel_initrd(req, target, prep),
        Family::RootImage(fs) => crate::rootfs::write(fs, target, req.verity, tree_pass),
        Family::Iso(kind) => crate::iso::write(kind, target, req, tree_pass),
        Family::Bios(disk) => {
            // The disk formats share one tree pass: the first of them makes the boot files.
            let uki = match uki {
                Some(uki) => uki,
                None => {
                    let (kernel, initrd, cmdline, _ucode) = initrd_parts(req, prep, true, format)?;
                    let boot = crate::disk::Boot { kernel: kernel.0, initrd: initrd.0, cmdline };
                    uki.insert(crate::disk::Uki::from_boot(boot))
                }
            };
            crate::bios::write(disk, target, uki.boot_mut(), req).map_err(disk_err)
        }
        Family::Rpi => {
            // The boot files are the disk formats' shared ones.
            let uki = match uki {
                Some(uki) => uki,
                None => {
                    let (kernel, initrd, cmdline, _ucode) = initrd_parts(req, prep, true, format)?;
                    let boot = crate::disk::Boot { kernel: kernel.0, initrd: initrd.0, cmdline };
                    uki.insert(crate::disk::Uki::from_boot(boot))
                }
            };
            let kernel = req.config.kernel.as_ref().and_then(|k| k.image.as_deref());
            let image = kernel.and_then(|r| prep.images.get(r));
            crate::rpi::write(target, uki.boot_mut(), req.store, &req.platform, image)
                .map_err(|source| BuildError::Rpi { format, source })
        }
        Family::Efi(kind) => {
            let signer = prep.signer.as_ref();
            let uki = match uki {
                Some(uki) => uki,
                None => uki.insert(make_uki(req, prep, format, name)?),
            };
            uki.ensure(req.store, &req.platform, name, signer).map_err(disk_err)?;
            crate::disk::write(kind, target, uki, req.size).map_err(disk_err)
        }
    }
}

/// `tar` or `docker` (`dockerfile`): the tree as one tar, to `--o`, stdout or `B.tar`.
fn write_stream(
    req: &Request<'_>,
    format: Format,
    dockerfile: bool,
    prep: &Prepared,
    outputs: &mut Outputs,
) -> Result<(), BuildError> {
    let io_err = |source| BuildError::Io { format, source };
    let tree_err = |source| BuildError::Tree { format, source };
    let mut out: Box<dyn Write> = match &req.output {
        Output::Stdout => Box::new(io::BufWriter::new(io::stdout().lock())),
        Output::File(p) => Box::new(outputs.create(p).map_err(io_err)?),
        Output::Base { dir, name } => Box::new(
            outputs.create(&dir.join(format!("{name}{}", format.outputs()[0]))).map_err(io_err)?,
        ),
    };
    let mut tw = TreeWriter::with_limits(TarWriter::new(&mut out), req.limits);
    crate::sections::assemble_sections(req, prep, &mut tw, &mut NoCache).map_err(|e| match e {
        BuildError::Tree { source, .. } => tree_err(source),
        other => other,
    })?;
    if dockerfile {
        tw.dockerfile().map_err(tree_err)?;
    }
    // LinuxKit writes the SBOM last, after the Dockerfile.
    write_sbom(prep, &mut tw).map_err(tree_err)?;
    tw.into_sink().finish().map_err(io_err)?;
    out.flush().map_err(io_err)
}

/// `B-kernel`, `B-initrd.img`, `B-cmdline`: straight into the outputs, in one pass. LinuxKit
/// writes only the non-empty ones, which is known at the end: an empty one is given up then.
fn write_kernel_initrd(
    req: &Request<'_>,
    target: &mut Target<'_>,
    prep: &Prepared,
) -> Result<(), BuildError> {
    let format = target.format;
    let io_err = |source| BuildError::Io { format, source };
    let (kernel_path, initrd_path) = (target.path("-kernel"), target.path("-initrd.img"));
    let kernel = target.outputs.create(&kernel_path).map_err(io_err)?;
    let initrd = target.outputs.create(&initrd_path).map_err(io_err)?;
    let (kernel, initrd, cmdline, _ucode) = initrd_into(req, prep, true, format, kernel, initrd)?;
    for (path, (mut w, len)) in [(kernel_path, kernel), (initrd_path, initrd)] {
        w.flush().map_err(io_err)?;
        if len == 0 {
            drop(w);
            target.outputs.discard(&path);
        }
    }
    if !cmdline.is_empty() {
        let mut w = target.create("-cmdline").map_err(io_err)?;
        w.write_all(&cmdline).map_err(io_err)?;
        w.flush().map_err(io_err)?;
    }
    Ok(())
}

/// `B-initrd.tar`: kernel, initrd and command line, from one pass into temporary files.
fn write_tar_kernel_initrd(
    req: &Request<'_>,
    target: &mut Target<'_>,
    prep: &Prepared,
) -> Result<(), BuildError> {
    let format = target.format;
    let io_err = |source| BuildError::Io { format, source };
    let (mut kernel, mut initrd, cmdline, ucode) = initrd_parts(req, prep, false, format)?;
    kernel.0.rewind().map_err(io_err)?;
    initrd.0.rewind().map_err(io_err)?;
    let mut w = target.create("-initrd.tar").map_err(io_err)?;
    baleen_formats::write_tar_kernel_initrd(
        &mut w,
        &mut kernel.0,
        kernel.1,
        &mut initrd.0,
        initrd.1,
        &cmdline,
        &ucode,
    )
    .map_err(io_err)?;
    w.flush().map_err(io_err)
}

/// The UKI every EFI format of the build shares, made by the first of them (`format`): from the
/// kernel and initrd of one tree pass, or, with `--root`, from stage 1 beside a root partition.
fn make_uki(
    req: &Request<'_>,
    prep: &Prepared,
    format: Format,
    name: &str,
) -> Result<crate::disk::Uki, BuildError> {
    let (boot, root) = match req.root {
        Some(fs) => {
            let (boot, root) = crate::root_partition::make(fs, req.verity, format, |sink| {
                assemble(req, prep, &mut TreeWriter::with_limits(sink, req.limits))
            })?;
            (boot, Some(root))
        }
        None => {
            let (kernel, initrd, cmdline, _ucode) = initrd_parts(req, prep, true, format)?;
            (crate::disk::Boot { kernel: kernel.0, initrd: initrd.0, cmdline }, None)
        }
    };
    let signer = prep.signer.as_ref();
    let mut made = crate::disk::Uki::make(boot, req.store, &req.platform, name, signer)
        .map_err(|source| BuildError::Disk { format, source })?;
    if let Some(root) = root {
        made.set_root(root);
    }
    Ok(made)
}

type Part = (std::fs::File, u64);

/// One tree pass into an [`InitrdWriter`] over two anonymous temporary files, for the formats
/// that read the kernel and initrd back (disks, UKI, tar-kernel-initrd).
fn initrd_parts(
    req: &Request<'_>,
    prep: &Prepared,
    prepend_ucode: bool,
    format: Format,
) -> Result<(Part, Part, Vec<u8>, Vec<u8>), BuildError> {
    let io_err = |source| BuildError::Io { format, source };
    let kernel = io::BufWriter::new(crate::scratch::file().map_err(io_err)?);
    let initrd = io::BufWriter::new(crate::scratch::file().map_err(io_err)?);
    let ((kernel, klen), (initrd, ilen), cmdline, ucode) =
        initrd_into(req, prep, prepend_ucode, format, kernel, initrd)?;
    let kernel = kernel.into_inner().map_err(|e| io_err(e.into_error()))?;
    let initrd = initrd.into_inner().map_err(|e| io_err(e.into_error()))?;
    Ok(((kernel, klen), (initrd, ilen), cmdline, ucode))
}

/// One tree pass into an [`InitrdWriter`] over `kernel` and `initrd`: returns them with the
/// bytes written to each, the command line and the microcode.
#[allow(clippy::type_complexity)]
fn initrd_into<K: Write, I: Write>(
    req: &Request<'_>,
    prep: &Prepared,
    prepend_ucode: bool,
    format: Format,
    kernel: K,
    initrd: I,
) -> Result<((K, u64), (I, u64), Vec<u8>, Vec<u8>), BuildError> {
    let io_err = |source| BuildError::Io { format, source };
    let opts = InitrdOptions {
        compression: req.compression,
        threads: 0,
        prepend_ucode,
        layout: req.initrd_layout,
    };
    let mut tw = TreeWriter::with_limits(InitrdWriter::new(kernel, initrd, opts), req.limits);
    let mut stats = prep.segments.borrow_mut();
    // `--input-tar` copies sections from its tar, not from the cache.
    let cached = req.segment_cache
        && req.initrd_layout == InitrdLayout::Segmented
        && prep.previous.is_none();
    let mut cache = InitrdCache::new(req.store, &mut stats);
    let cache: &mut dyn SegmentCache<_> = if cached { &mut cache } else { &mut NoCache };
    assemble_with(req, prep, &mut tw, cache).map_err(|e| match e {
        BuildError::Tree { source, .. } => BuildError::Tree { format, source },
        other => other,
    })?;
    let out = tw.into_sink().finish().map_err(io_err)?;
    {
        let mut m = prep.measured.borrow_mut();
        crate::budget::Measured::note(&mut m.kernel, out.kernel_len);
        crate::budget::Measured::note(&mut m.initrd, out.initrd_len);
    }
    Ok(((out.kernel, out.kernel_len), (out.initrd, out.initrd_len), out.cmdline, out.ucode))
}

/// One pass of the image tree, in LinuxKit's section order, into `tw`, the SBOM last.
fn assemble<S: EntrySink>(
    req: &Request<'_>,
    prep: &Prepared,
    tw: &mut TreeWriter<S>,
) -> Result<(), BuildError> {
    assemble_with(req, prep, tw, &mut NoCache)
}

/// [`assemble`], the sections `cache` has taken from it instead of built.
fn assemble_with<S: EntrySink>(
    req: &Request<'_>,
    prep: &Prepared,
    tw: &mut TreeWriter<S>,
    cache: &mut dyn SegmentCache<S>,
) -> Result<(), BuildError> {
    crate::sections::assemble_sections(req, prep, tw, cache)?;
    write_sbom(prep, tw).map_err(|source| BuildError::Tree { format: req.formats[0], source })
}

/// The SBOM entry: mode 0644 at the fixed epoch, no `LINUXKIT.*` records (as LinuxKit's).
fn write_sbom<S: EntrySink>(prep: &Prepared, tw: &mut TreeWriter<S>) -> Result<(), TreeError> {
    // The SBOM is the last entry of every tree: with it, the tree's size is the image's.
    let sbom = prep.sbom.as_ref().map_or(0, |(_, b)| b.len() as u64);
    crate::budget::Measured::note(&mut prep.measured.borrow_mut().image, tw.tree_bytes() + sbom);
    let Some((path, bytes)) = &prep.sbom else { return Ok(()) };
    tw.begin_section("sbom")?;
    let entry = baleen_tree::Entry::new(
        path.clone(),
        baleen_tree::EntryKind::File { size: bytes.len() as u64 },
        0o644,
    );
    tw.raw(&entry, &mut &bytes[..]).map_err(|source| TreeError::Sink {
        location: "sbom".into(),
        image: "SBOM".into(),
        layer: None,
        path: path.clone(),
        source,
    })
}

/// Every SPDX document attested for the images the tree extracts, merged (spec §3 step 9):
/// kernel and init at `/`, volumes under their `lower/`, each container image once, under the
/// first bundle that extracts it (later bundles of the same image share that copy).
fn merged_sbom(
    req: &Request<'_>,
    images: &HashMap<String, baleen_oci::Image>,
    containers: &[Container],
) -> Result<Option<(String, Vec<u8>)>, BuildError> {
    let opts = &req.sbom;
    if !opts.enabled {
        return Ok(None);
    }
    let path = opts.tree_path();
    crate::sbom::check_path(&path)?;
    let cfg = req.config;
    let mut inputs = Vec::new();
    let mut add = |reference: &str, location: &str, prefix: &str| -> Result<(), BuildError> {
        let image = &images[reference];
        inputs.extend(crate::sbom::find_inputs(req.store, image, location, prefix)?);
        Ok(())
    };
    if let Some(image) = cfg.kernel.as_ref().and_then(|k| k.image.as_deref()) {
        if !image.is_empty() {
            add(image, "kernel", "")?;
        }
    }
    for (i, reference) in cfg.init.iter().enumerate() {
        add(reference, &format!("init[{i}]"), "")?;
    }
    for (i, v) in cfg.volumes.iter().enumerate() {
        if let Some(image) = v.image.as_deref().filter(|s| !s.is_empty()) {
            if v.format != Some(baleen_spec::VolumeFormat::Oci) {
                add(
                    image,
                    &format!("volumes[{i}]"),
                    &format!("containers/volumes/{}/lower/", v.name),
                )?;
            }
        }
    }
    let mut extracted = std::collections::HashSet::new();
    for c in containers {
        if extracted.insert(images[&c.image].reference.to_string()) {
            let root = if c.readonly { "rootfs" } else { "lower" };
            let prefix = format!("{}/{root}/", c.section.bundle_path(c.index, &c.name));
            add(&c.image, &format!("{}[{}]", c.section.name(), c.index), &prefix)?;
        }
    }
    let created = crate::sbom::created(opts.current_time);
    Ok(Some((path, crate::sbom::merge(&inputs, &created))))
}

/// The OCI layouts of `format: oci` volumes (their other platforms pulled when missing).
fn oci_volumes(
    req: &Request<'_>,
    images: &HashMap<String, baleen_oci::Image>,
) -> Result<Vec<Option<crate::oci_volume::OciVolume>>, BuildError> {
    let mut out = Vec::new();
    for (i, v) in req.config.volumes.iter().enumerate() {
        let image = v.image.as_deref().filter(|s| !s.is_empty());
        out.push(match image {
            Some(image) if v.format == Some(baleen_spec::VolumeFormat::Oci) => {
                Some(crate::oci_volume::prepare(
                    req.store,
                    &req.pull,
                    i,
                    &v.name,
                    &images[image].reference,
                    v.platforms.as_deref().unwrap_or_default(),
                )?)
            }
            _ => None,
        });
    }
    Ok(out)
}
