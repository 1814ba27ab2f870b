//! `baleen pull REF --dir DIR`: a system pushed by `baleen push oci`, back into files.

use super::cache::{parse_ref, RegistryFlags};
use anyhow::Context;
use baleen_oci::artifact::{self, FORMAT_ANNOTATION, SYSTEM_ARTIFACT_TYPE};
use baleen_oci::Store;
use clap::Args;
use std::path::PathBuf;

/// Fetches REF's manifest, refuses it unless it is a baleen system (artifactType
/// application/vnd.baleen.system.v1) whose file titles are plain file names, fetches its files
/// into the image store (each checked against its digest; ones the store has are not fetched
/// again), then writes them into DIR under their titles, each to a temporary file renamed into
/// place. Prints each path written on stdout.
///
/// Container images are pulled with `baleen cache pull`, not here.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
    baleen pull registry.example/sys/minimal:1 --dir sys && baleen run sys/minimal\n\n\
    Media types and annotations: docs/push.md.")]
pub struct PullArgs {
    /// The system to fetch, by tag or digest (registry.example/sys/minimal@sha256:…).
    #[arg(value_name = "REF")]
    reference: String,
    /// Where to write its files (created when missing). Files of the same names are replaced.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The image store the files pass through [default: $BALEEN_CACHE or ~/.baleen/cache].
    #[arg(long, env = "BALEEN_CACHE", value_name = "DIR")]
    cache: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryFlags,
}

pub fn run(args: PullArgs, quiet: bool) -> anyhow::Result<i32> {
    let r = parse_ref(&args.reference)?;
    let dir = args.cache.clone().unwrap_or_else(Store::default_dir);
    let store =
        Store::open(&dir).with_context(|| format!("opening the image store {}", dir.display()))?;
    let pulled = artifact::pull_artifact_blocking(
        &store,
        &r,
        SYSTEM_ARTIFACT_TYPE,
        &args.registry.options(),
    )?;
    let written = artifact::write_files(&store, &pulled, &args.dir)?;
    for p in &written {
        println!("{}", p.display());
    }
    if !quiet {
        let format = pulled.annotations.get(FORMAT_ANNOTATION).map_or("?", String::as_str);
        eprintln!(
            "pulled {r} ({}, {format}): {} files into {}",
            pulled.digest,
            written.len(),
            args.dir.display()
        );
    }
    Ok(0)
}

/// A system fetched for `baleen run oci://REF`.
pub(crate) struct Fetched {
    /// What `baleen run` boots: the kernel file of a kernel boot, else the one image.
    pub path: PathBuf,
    /// The architecture the pusher recorded (OCI's name), when it did.
    pub arch: Option<String>,
}

/// `baleen run oci://REF`: pulls REF as `baleen pull` does (verified, through the store at
/// `cache`) into `<systems>/<digest>/`, a directory per manifest digest under baleen's cache
/// directory, so the same system lands in the same place (and keeps its `-state` directory,
/// hence its MAC address) from one run to the next.
pub(crate) fn fetch_for_run(
    reference: &str,
    cache: Option<PathBuf>,
    registry: &RegistryFlags,
    quiet: bool,
) -> anyhow::Result<Fetched> {
    use baleen_oci::artifact::{SystemFile, ARCH_ANNOTATION};
    let r = parse_ref(reference)?;
    let dir = cache.unwrap_or_else(Store::default_dir);
    let store =
        Store::open(&dir).with_context(|| format!("opening the image store {}", dir.display()))?;
    let pulled =
        artifact::pull_artifact_blocking(&store, &r, SYSTEM_ARTIFACT_TYPE, &registry.options())?;
    let dest = systems_dir().join(pulled.digest.to_string().replace(':', "-"));
    artifact::write_files(&store, &pulled, &dest)?;
    let kernel = SystemFile::Kernel.media_type();
    let boot = pulled.files.iter().find(|f| f.media_type == kernel).or_else(|| {
        let images = [SystemFile::Uki.media_type(), SystemFile::Iso.media_type()];
        pulled.files.iter().find(|f| {
            images.contains(&f.media_type.as_str())
                || f.media_type.starts_with("application/vnd.baleen.system.disk.")
        })
    });
    let Some(boot) = boot else {
        anyhow::bail!("{r} ({}) holds no kernel, UKI, ISO or disk image to boot", pulled.digest);
    };
    if !quiet {
        let format = pulled.annotations.get(FORMAT_ANNOTATION).map_or("?", String::as_str);
        eprintln!("pulled {r} ({}, {format}) into {}", pulled.digest, dest.display());
    }
    Ok(Fetched {
        path: dest.join(&boot.title),
        arch: pulled.annotations.get(ARCH_ANNOTATION).cloned(),
    })
}

/// `$XDG_CACHE_HOME/baleen/systems`, else `~/.cache/baleen/systems` (beside the KVM verdict
/// `baleen run` keeps), else under the temporary directory.
fn systems_dir() -> PathBuf {
    baleen_run::prepare::default_cache_dir(&std::env::temp_dir().join("baleen")).join("systems")
}
