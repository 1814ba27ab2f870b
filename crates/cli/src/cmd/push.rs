//! `baleen push oci PATH… REF`: built systems into an OCI registry, as artifacts (several: one
//! per architecture, under an image index).
//!
//! PATH is read as `baleen run` reads it (`baleen_run::prepare::detect`), so whatever boots
//! with `run` can be pushed, and the files pushed are the ones `run` would use.

use super::cache::{parse_ref, RegistryFlags};
use anyhow::Context;
use baleen_oci::artifact::{
    self, ArtifactFile, DiskFormat, SystemFile, ARCH_ANNOTATION, FORMAT_ANNOTATION,
    SYSTEM_ARTIFACT_TYPE,
};
use baleen_oci::system_index::{self, IndexEntry};
use baleen_oci::{Platform, PushOptions, Store};
use baleen_run::BootSource;
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct PushArgs {
    #[command(subcommand)]
    target: PushTarget,
}

#[derive(Debug, Subcommand)]
enum PushTarget {
    /// Store a built system in an OCI registry as an artifact (artifactType
    /// application/vnd.baleen.system.v1): one layer per file, each titled with its file name,
    /// so `baleen pull REF --dir DIR` writes the same files back. Same files, same digest.
    ///
    /// Several PATHs (one system per architecture, as `docker buildx imagetools create` makes
    /// a multi-platform image) push one artifact each and an OCI image index over them, each
    /// entry with its platform (linux/ARCH, ARCH read from the system's kernel, UKI or ESP as
    /// `baleen run` reads it); `baleen pull` and `baleen run oci://` pick the entry for their
    /// --arch. Two systems of one architecture are refused. Same systems, same index digest.
    ///
    /// The files go through the image store first (named REF there), then up as any image
    /// push: blobs the registry has are skipped, large ones go in chunks, credentials come
    /// from Docker's config.json. Prints `REF  DIGEST` on stdout.
    #[command(after_help = "Examples:\n  \
        baleen build --dir out minimal.yml && baleen push oci out/minimal registry.example/sys/minimal:1\n  \
        baleen push oci out/minimal.efi registry.example/sys/minimal:uki\n  \
        baleen push oci amd64/minimal arm64/minimal registry.example/sys/minimal:1   # one index\n\n\
        Media types and annotations: docs/push.md.")]
    Oci {
        /// What `baleen run` boots: a kernel+initrd prefix (out/minimal for out/minimal-kernel,
        /// -initrd.img, -cmdline), a kernel+squashfs/erofs/iso prefix, an ISO, a UKI (.efi), or
        /// a raw/qcow2/vhd/vmdk disk image. Several: one per architecture, under an index.
        #[arg(value_name = "PATH", required = true, num_args = 1..)]
        paths: Vec<PathBuf>,
        /// Where to push it, e.g. registry.example/sys/minimal:1.
        #[arg(value_name = "REF")]
        reference: String,
        /// The architecture the system is for, recorded in the manifest
        /// (org.baleen.system.architecture) [default: read from its kernel, UKI or ESP as
        /// `baleen run` does, else this machine's]. One PATH only.
        #[arg(long, value_name = "ARCH", value_parser = ["amd64", "arm64"])]
        arch: Option<String>,
        #[command(flatten)]
        store: super::store::StoreArgs,
        #[command(flatten)]
        registry: RegistryFlags,
    },
}

pub fn run(args: PushArgs, quiet: bool) -> anyhow::Result<i32> {
    let PushTarget::Oci { paths, reference, arch, store, registry } = args.target;
    match paths.as_slice() {
        [path] => push_system(path, &reference, arch, store.dir(), &registry, quiet)?,
        _ if arch.is_some() => {
            return Err(crate::exit::UsageError(
                "--arch names the architecture of one PATH; with several, each system's is read \
                 from its kernel, UKI or ESP"
                    .into(),
            )
            .into())
        }
        _ => push_index(&paths, &reference, store.dir(), &registry, quiet)?,
    };
    Ok(0)
}

/// Pushes the system at `path` (as `baleen run` reads it) to `reference` through the store at
/// `dir`; prints `REF  DIGEST` on stdout. `baleen build --push`
/// calls it too, once the build succeeded.
pub(crate) fn push_system(
    path: &Path,
    reference: &str,
    arch: Option<String>,
    dir: PathBuf,
    registry: &RegistryFlags,
    quiet: bool,
) -> anyhow::Result<baleen_oci::Digest> {
    let remote = parse_ref(reference)?;
    let system = system_files(path)?;
    let arch = arch.or(system.arch).unwrap_or_else(|| Platform::host().architecture);
    let store = open_store(dir)?;
    let digest = artifact::store_artifact(
        &store,
        &remote,
        SYSTEM_ARTIFACT_TYPE,
        &system.files,
        &annotations(&arch, system.format),
    )?;
    if !quiet {
        for f in &system.files {
            eprintln!("{}  {}", f.title, f.media_type);
        }
    }
    let opts = PushOptions { registry: registry.options(), ..PushOptions::default() };
    let pushed = baleen_oci::push_blocking(&store, &remote, &remote, &opts)?;
    debug_assert_eq!(pushed, digest);
    println!("{remote}  {pushed}");
    Ok(pushed)
}

/// Pushes the systems at `paths`, one artifact each, under an image index at `reference`:
/// each entry's platform is its system's architecture as read from its bytes (refused when
/// they do not say), two of one architecture are refused. Prints `REF  DIGEST` (the index's).
fn push_index(
    paths: &[PathBuf],
    reference: &str,
    dir: PathBuf,
    registry: &RegistryFlags,
    quiet: bool,
) -> anyhow::Result<baleen_oci::Digest> {
    let remote = parse_ref(reference)?;
    let systems = paths
        .iter()
        .map(|p| {
            let system = system_files(p)?;
            let Some(arch) = system.arch.clone() else {
                anyhow::bail!(
                    "cannot tell which architecture {} is for: its kernel, UKI or ESP does not \
                     say (a gzip kernel, a VHD or VMDK disk); push it alone with --arch",
                    p.display()
                );
            };
            Ok((p, arch, system))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let store = open_store(dir)?;
    let mut entries = Vec::with_capacity(systems.len());
    for (path, arch, system) in &systems {
        let ann = annotations(arch, system.format);
        let blob =
            artifact::write_artifact(&store, &remote, SYSTEM_ARTIFACT_TYPE, &system.files, &ann)?;
        if !quiet {
            eprintln!("linux/{arch}  {}  {}  {}", system.format, blob.digest, path.display());
        }
        entries.push(IndexEntry {
            digest: blob.digest,
            size: blob.size,
            architecture: arch.clone(),
            format: system.format.to_string(),
            label: path.display().to_string(),
        });
    }
    let digest = system_index::store_index(&store, &remote, &entries)?;
    let opts = PushOptions { registry: registry.options(), ..PushOptions::default() };
    let pushed = baleen_oci::push_blocking(&store, &remote, &remote, &opts)?;
    debug_assert_eq!(pushed, digest);
    println!("{remote}  {pushed}");
    Ok(pushed)
}

fn open_store(dir: PathBuf) -> anyhow::Result<Store> {
    Store::open(&dir).with_context(|| format!("opening the image store {}", dir.display()))
}

/// The manifest annotations of a system.
fn annotations(arch: &str, format: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (ARCH_ANNOTATION.to_string(), arch.to_string()),
        (FORMAT_ANNOTATION.to_string(), format.to_string()),
    ])
}

/// A system as `baleen run` finds it at a PATH.
pub(crate) struct System {
    /// What the files boot as (`kernel+initrd`, `uki`, …).
    pub format: &'static str,
    pub files: Vec<ArtifactFile>,
    /// The architecture its bytes say (OCI's name), as `baleen run` reads it.
    pub arch: Option<String>,
}

/// The format annotation, files and architecture of the system at `path`, as `baleen run`
/// finds them.
pub(crate) fn system_files(path: &Path) -> anyhow::Result<System> {
    let detected = baleen_run::prepare::detect(path, None)
        .with_context(|| format!("reading {} as `baleen run` would", path.display()))?;
    let arch = baleen_run::guest_arch::of_boot(&detected.boot).map(|a| match a {
        baleen_run::Arch::X86_64 => "amd64".to_string(),
        baleen_run::Arch::Aarch64 => "arm64".to_string(),
    });
    let mut files: Vec<(PathBuf, SystemFile)> = Vec::new();
    let format = match &detected.boot {
        BootSource::KernelInitrd { kernel, initrd, .. } => {
            files.push((kernel.clone(), SystemFile::Kernel));
            files.push((initrd.clone(), SystemFile::Initrd));
            "kernel+initrd"
        }
        BootSource::Squashfs { kernel, squashfs, initrd, cdrom, .. } => {
            files.push((kernel.clone(), SystemFile::Kernel));
            let name = squashfs.to_string_lossy();
            let (kind, format) = if *cdrom {
                (SystemFile::Iso, "kernel+iso")
            } else if name.ends_with("-erofs.img") {
                (SystemFile::ErofsRoot, "kernel+erofs")
            } else {
                (SystemFile::SquashfsRoot, "kernel+squashfs")
            };
            files.push((squashfs.clone(), kind));
            if let Some(stage1) = initrd {
                files.push((stage1.clone(), SystemFile::Initrd));
            }
            format
        }
        BootSource::Iso(p) => {
            files.push((p.clone(), SystemFile::Iso));
            "iso"
        }
        BootSource::Uki(p) => {
            files.push((p.clone(), SystemFile::Uki));
            "uki"
        }
        BootSource::Network { .. } => {
            anyhow::bail!("{} is a network boot, not files", path.display())
        }
        BootSource::Disk { path, format } => {
            let disk = match format.as_str() {
                "qcow2" => DiskFormat::Qcow2,
                "vpc" => DiskFormat::Vhd,
                "vmdk" => DiskFormat::Vmdk,
                _ => DiskFormat::Raw,
            };
            files.push((path.clone(), SystemFile::Disk(disk)));
            "disk"
        }
    };
    // The kernel command line rides along with every kernel boot that has one.
    if format.starts_with("kernel+") {
        let cmdline = PathBuf::from(format!("{}-cmdline", detected.prefix.display()));
        if cmdline.is_file() {
            files.push((cmdline, SystemFile::Cmdline));
        }
    }
    let files = files
        .into_iter()
        .map(|(path, kind)| {
            let title = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string());
            ArtifactFile { path, title, media_type: kind.media_type().to_string() }
        })
        .collect();
    Ok(System { format, files, arch })
}
