//! `baleen push oci PATH REF`: a built system into an OCI registry, as an artifact.
//!
//! PATH is read as `baleen run` reads it (`baleen_run::prepare::detect`), so whatever boots
//! with `run` can be pushed, and the files pushed are the ones `run` would use.

use super::cache::{parse_ref, RegistryFlags};
use anyhow::Context;
use baleen_oci::artifact::{
    self, ArtifactFile, DiskFormat, SystemFile, ARCH_ANNOTATION, FORMAT_ANNOTATION,
    SYSTEM_ARTIFACT_TYPE,
};
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
    /// The files go through the image store first (named REF there), then up as any image
    /// push: blobs the registry has are skipped, large ones go in chunks, credentials come
    /// from Docker's config.json. Prints `REF  DIGEST` on stdout.
    #[command(after_help = "Examples:\n  \
        baleen build --dir out minimal.yml && baleen push oci out/minimal registry.example/sys/minimal:1\n  \
        baleen push oci out/minimal.efi registry.example/sys/minimal:uki\n\n\
        Media types and annotations: docs/push.md.")]
    Oci {
        /// What `baleen run` boots: a kernel+initrd prefix (out/minimal for out/minimal-kernel,
        /// -initrd.img, -cmdline), a kernel+squashfs/erofs/iso prefix, an ISO, a UKI (.efi), or
        /// a raw/qcow2/vhd/vmdk disk image.
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// Where to push it, e.g. registry.example/sys/minimal:1.
        #[arg(value_name = "REF")]
        reference: String,
        /// The architecture the system is for, recorded in the manifest
        /// (org.baleen.system.architecture) [default: this machine's].
        #[arg(long, value_name = "ARCH", value_parser = ["amd64", "arm64"])]
        arch: Option<String>,
        #[command(flatten)]
        store: super::store::StoreArgs,
        #[command(flatten)]
        registry: RegistryFlags,
    },
}

pub fn run(args: PushArgs, quiet: bool) -> anyhow::Result<i32> {
    let PushTarget::Oci { path, reference, arch, store, registry } = args.target;
    push_system(&path, &reference, arch, store.dir(), &registry, quiet)?;
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
    let (format, files) = system_files(path)?;
    let arch = arch.unwrap_or_else(|| Platform::host().architecture);
    let annotations = BTreeMap::from([
        (ARCH_ANNOTATION.to_string(), arch),
        (FORMAT_ANNOTATION.to_string(), format.to_string()),
    ]);
    let store =
        Store::open(&dir).with_context(|| format!("opening the image store {}", dir.display()))?;
    let digest =
        artifact::store_artifact(&store, &remote, SYSTEM_ARTIFACT_TYPE, &files, &annotations)?;
    if !quiet {
        for f in &files {
            eprintln!("{}  {}", f.title, f.media_type);
        }
    }
    let opts = PushOptions { registry: registry.options(), ..PushOptions::default() };
    let pushed = baleen_oci::push_blocking(&store, &remote, &remote, &opts)?;
    debug_assert_eq!(pushed, digest);
    println!("{remote}  {pushed}");
    Ok(pushed)
}

/// The format annotation and the files of the system at `path`, as `baleen run` finds them.
pub(crate) fn system_files(path: &Path) -> anyhow::Result<(&'static str, Vec<ArtifactFile>)> {
    let detected = baleen_run::prepare::detect(path, None)
        .with_context(|| format!("reading {} as `baleen run` would", path.display()))?;
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
    Ok((format, files))
}
