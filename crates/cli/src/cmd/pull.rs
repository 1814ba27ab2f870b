//! `baleen pull REF --dir DIR`: a system pushed by `baleen push oci`, back into files.

use super::cache::{parse_ref, RegistryFlags};
use anyhow::Context;
use baleen_oci::artifact::{self, ARCH_ANNOTATION, FORMAT_ANNOTATION, SYSTEM_ARTIFACT_TYPE};
use baleen_oci::{Platform, Store};
use clap::Args;
use std::path::{Path, PathBuf};

/// Fetches REF's manifest, refuses it unless it is a baleen system (artifactType
/// application/vnd.baleen.system.v1) whose file titles are plain file names, fetches its files
/// into the image store (each checked against its digest; ones the store has are not fetched
/// again), then writes them into DIR under their titles, each to a temporary file renamed into
/// place. Prints each path written on stdout.
///
/// When REF is an image index (`baleen push oci` of several systems), the entry for --arch is
/// fetched; none for it is an error naming the platforms the index has.
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
    /// When REF is an index of several systems: the architecture of the one to fetch
    /// [default: this machine's].
    #[arg(long, value_name = "ARCH", value_parser = ["amd64", "arm64", "riscv64"])]
    arch: Option<String>,
    #[command(flatten)]
    store: super::store::StoreArgs,
    #[command(flatten)]
    registry: RegistryFlags,
}

pub fn run(args: PullArgs, quiet: bool) -> anyhow::Result<i32> {
    let r = parse_ref(&args.reference)?;
    let dir = args.store.dir();
    let store =
        Store::open(&dir).with_context(|| format!("opening the image store {}", dir.display()))?;
    let platform = match &args.arch {
        Some(a) => Platform::new("linux", a, None),
        None => Platform::host(),
    };
    let pulled = artifact::pull_artifact_blocking(
        &store,
        &r,
        SYSTEM_ARTIFACT_TYPE,
        &platform,
        &args.registry.options(),
    )?;
    let written = artifact::write_files(&store, &pulled, &args.dir)?;
    for p in &written {
        println!("{}", p.display());
    }
    if !quiet {
        eprintln!(
            "pulled {r} ({}): {} files into {}",
            describe(&pulled),
            written.len(),
            args.dir.display()
        );
    }
    Ok(0)
}

/// `DIGEST, FORMAT`, and the architecture and index when it came from one.
fn describe(pulled: &artifact::Pulled) -> String {
    let format = pulled.annotations.get(FORMAT_ANNOTATION).map_or("?", String::as_str);
    match &pulled.index {
        Some(index) => {
            let arch = pulled.annotations.get(ARCH_ANNOTATION).map_or("?", String::as_str);
            format!("{}, {format}, linux/{arch} of index {index}", pulled.digest)
        }
        None => format!("{}, {format}", pulled.digest),
    }
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
/// hence its MAC address) from one run to the next. An index's entry for `platform` is taken.
pub(crate) fn fetch_for_run(
    reference: &str,
    platform: &Platform,
    dir: PathBuf,
    registry: &RegistryFlags,
    quiet: bool,
) -> anyhow::Result<Fetched> {
    use baleen_oci::artifact::SystemFile;
    let r = parse_ref(reference)?;
    let store =
        Store::open(&dir).with_context(|| format!("opening the image store {}", dir.display()))?;
    let pulled = artifact::pull_artifact_blocking(
        &store,
        &r,
        SYSTEM_ARTIFACT_TYPE,
        platform,
        &registry.options(),
    )?;
    let systems = systems_dir();
    private_dir(&systems)?;
    let dest = systems.join(pulled.digest.to_string().replace(':', "-"));
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
        eprintln!("pulled {r} ({}) into {}", describe(&pulled), dest.display());
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

/// Creates `systems` (and its parent) 0700 if missing, then refuses it, or its parent, unless
/// each is a directory of this user that nobody else may write. `run oci://` boots what lands
/// there, and without HOME the directory is under the shared temporary directory, where another
/// local user could create it first and plant or swap the files it boots.
fn private_dir(systems: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(systems)
        .with_context(|| format!("creating {}", systems.display()))?;
    // The owner of /proc/self is this process's effective user.
    let me = std::fs::metadata("/proc/self").context("reading /proc/self")?.uid();
    for dir in [systems.parent(), Some(systems)].into_iter().flatten() {
        let link =
            std::fs::symlink_metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
        let meta = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
        let foreign = (link.file_type().is_symlink() && link.uid() != me) || meta.uid() != me;
        if foreign || !meta.is_dir() || meta.mode() & 0o022 != 0 {
            anyhow::bail!(
                "{} is not a private directory of this user (owner {}, mode {:o}): systems pulled \
                 by `run oci://` are booted from there, so it must belong to you and be writable \
                 by nobody else; remove it or set XDG_CACHE_HOME",
                dir.display(),
                meta.uid(),
                meta.mode() & 0o7777
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod private_dir_tests {
    use super::private_dir;
    use std::os::unix::fs::PermissionsExt;

    /// From a security review: with neither HOME nor XDG_CACHE_HOME, `run oci://` wrote into
    /// `/tmp/baleen/systems/<digest>/` as found, so a directory another user made there first
    /// (mode 0777) would hold the files it boots. Such a directory is refused; a new one is 0700.
    #[test]
    fn a_systems_directory_others_may_write_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let fresh = tmp.path().join("mine/systems");
        private_dir(&fresh).unwrap();
        for d in [fresh.as_path(), fresh.parent().unwrap()] {
            assert_eq!(std::fs::metadata(d).unwrap().permissions().mode() & 0o777, 0o700);
        }
        let shared = tmp.path().join("shared/systems");
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = private_dir(&shared).unwrap_err().to_string();
        assert!(err.contains("not a private directory") && err.contains("777"), "{err}");
        // The parent counts too: whoever may write it may swap `systems` itself.
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o700)).unwrap();
        let parent = shared.parent().unwrap();
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(private_dir(&shared).is_err());
    }
}
