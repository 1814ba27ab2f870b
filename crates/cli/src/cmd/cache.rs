//! `baleen cache …`: the local image store (an OCI image layout that LinuxKit's cache can share).

use anyhow::{bail, Context};
use baleen_oci::{archive, Platform, PullOptions, PushOptions, Reference, RegistryOptions, Store};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct CacheArgs {
    // Only pull and import create the store; other commands refuse a directory that is not
    // one (the default one not made yet is empty for ls and gc).
    #[command(flatten)]
    store: super::store::StoreArgs,
    #[command(subcommand)]
    command: CacheCommand,
}

/// How to reach registries (pull and push).
#[derive(Debug, Args, Clone, Default, PartialEq, Eq)]
pub(crate) struct RegistryFlags {
    /// Allow plain HTTP and unverified TLS for this registry host[:port] (repeatable).
    /// Loopback registries may always use plain HTTP.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure: Vec<String>,
    /// Also trust the CA certificates in this PEM file (repeatable).
    #[arg(long = "cert-file", value_name = "PEM")]
    cert_files: Vec<PathBuf>,
    /// Directory holding Docker's config.json with credentials [default: $DOCKER_CONFIG or
    /// ~/.docker].
    #[arg(long, value_name = "DIR")]
    docker_config: Option<PathBuf>,
}

impl RegistryFlags {
    pub(crate) fn options(&self) -> RegistryOptions {
        RegistryOptions {
            insecure: self.insecure.clone(),
            ca_certs: self.cert_files.clone(),
            docker_config: self.docker_config.clone(),
            ..RegistryOptions::default()
        }
    }
}

#[derive(Debug, Subcommand)]
enum CacheCommand {
    /// List the images in the store: name and root digest.
    Ls,
    /// Remove images from the store by name (their blobs go at the next `gc`).
    Rm {
        #[arg(required = true, value_name = "REF")]
        refs: Vec<String>,
        /// Only those whose registry serves exactly the stored image (safe to fetch again).
        #[arg(long)]
        published_only: bool,
        #[command(flatten)]
        registry: RegistryFlags,
    },
    /// Remove every image from the store, and their blobs.
    Clean {
        /// Only images whose registry serves exactly the stored image.
        #[arg(long)]
        published_only: bool,
        #[command(flatten)]
        registry: RegistryFlags,
    },
    /// Delete blobs that no image in the store uses, and leftovers of interrupted pulls.
    Gc,
    /// Check the store: hash every blob against its digest, and check that every image's
    /// manifests, config and layers are present with the sizes their descriptors say.
    ///
    /// Prints one line per problem; exits 1 when anything is wrong. With --repair, damaged
    /// blobs are moved to <store>/quarantine/ and the names that need missing or damaged blobs
    /// are removed, so the next build or pull fetches them again; it then exits 0.
    Verify {
        /// Move damaged blobs aside and remove the names that reach them.
        #[arg(long)]
        repair: bool,
    },
    /// Pull images into the store (only what is not there yet, unless --always).
    Pull {
        #[arg(required = true, value_name = "REF")]
        refs: Vec<String>,
        /// Platform to pull, os/arch[/variant] or an architecture [default: this machine's].
        #[arg(long, visible_alias = "arch", value_name = "PLATFORM")]
        platform: Option<String>,
        /// Ask the registry even when the store has the image (tags can move).
        #[arg(long)]
        always: bool,
        #[command(flatten)]
        registry: RegistryFlags,
    },
    /// Push an image from the store to a registry.
    Push {
        #[arg(value_name = "REF")]
        reference: String,
        /// Push under another name [default: the same name].
        #[arg(long, visible_alias = "remote-name", value_name = "REF")]
        to: Option<String>,
        /// Also tag each platform's manifest <tag>-<arch>, e.g. v1-amd64.
        #[arg(long)]
        with_arch_tags: bool,
        #[command(flatten)]
        registry: RegistryFlags,
    },
    /// Write an image as an OCI image-layout tar, with a manifest.json for `docker load` (of
    /// the --platform image, or this machine's, for a multi-platform image). Mode 0644; a
    /// device or FIFO is written in place.
    Export {
        #[arg(value_name = "REF")]
        reference: String,
        /// Output file, `-` for stdout.
        #[arg(short, long, visible_alias = "outfile", value_name = "FILE")]
        output: PathBuf,
        /// Export only this platform's image [default: all platforms the store holds].
        #[arg(long, value_name = "PLATFORM")]
        platform: Option<String>,
        /// Name the image this inside the archive [default: its name in the store].
        #[arg(long, value_name = "REF")]
        name: Option<String>,
    },
    /// Read an OCI image-layout tar or a `docker save` tar into the store.
    Import {
        /// Archive file, `-` for stdin.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Name for an image the archive leaves unnamed (or to rename its only image).
        #[arg(long, value_name = "REF")]
        name: Option<String>,
        /// The most bytes the archive's compressed `docker save` layers may unpack to, all
        /// together, while their diff_ids are checked (K, M, G or T; MiB when no suffix).
        /// `none` (or 0) lifts the limit. [default: 64G]
        #[arg(long, value_name = "SIZE")]
        max_size: Option<String>,
        /// Refuse a layer that unpacks to more than RATIO times its compressed size once past
        /// 1 GiB (a decompression bomb), as `build --max-expansion`. `none` (or 0) turns the
        /// check off. [default: 100]
        #[arg(long, value_name = "RATIO")]
        max_expansion: Option<String>,
    },
}

/// `cache import --max-size` and `--max-expansion` over the defaults.
fn import_limits(
    max_size: Option<&str>,
    max_expansion: Option<&str>,
) -> Result<archive::ImportLimits, crate::exit::UsageError> {
    use super::build::{parse_max_expansion, parse_max_size};
    let mut limits = archive::ImportLimits::default();
    if let Some(s) = max_size {
        limits.max_unpacked_bytes = parse_max_size(s)?;
    }
    if let Some(s) = max_expansion {
        limits.expansion = parse_max_expansion(s)?
            .map(|ratio| archive::Expansion { ratio, floor: archive::EXPANSION_FLOOR });
    }
    Ok(limits)
}

/// Whether `r` may be dropped under --published-only; says so on stderr when it is kept.
fn published(store: &Store, r: &Reference, flags: &RegistryFlags) -> anyhow::Result<bool> {
    let yes = baleen_oci::is_published_blocking(store, r, &flags.options())?;
    if !yes {
        eprintln!("keeping {r}: the registry does not serve this exact image");
    }
    Ok(yes)
}

pub(crate) fn parse_ref(s: &str) -> anyhow::Result<Reference> {
    Reference::parse(s).map_err(|e| crate::exit::UsageError(crate::exit::chain(&e)).into())
}

fn parse_platform(s: Option<&str>) -> anyhow::Result<Platform> {
    match s {
        Some(p) => {
            Platform::parse(p).map_err(|e| crate::exit::UsageError(crate::exit::chain(&e)).into())
        }
        None => Ok(Platform::host()),
    }
}

/// What a command did, on stderr unless `-q` (data, such as `ls`, goes to stdout).
struct Notes {
    quiet: bool,
}

impl Notes {
    fn say(&self, text: std::fmt::Arguments) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }
}

pub fn run(args: CacheArgs, quiet: bool) -> anyhow::Result<i32> {
    let dir = args.store.dir();
    // Only pull and import add images; every other command on a directory that is no store
    // (a mistyped --cache) would otherwise create an empty one there and report nothing.
    let adds = matches!(args.command, CacheCommand::Pull { .. } | CacheCommand::Import { .. });
    let reads_all = matches!(args.command, CacheCommand::Ls | CacheCommand::Gc);
    if !adds && reads_all && !args.store.given() && !dir.exists() {
        // A fresh machine: the default store is simply empty, not mistyped.
        if matches!(args.command, CacheCommand::Ls) {
            println!("IMAGE  DIGEST");
        }
        Notes { quiet }.say(format_args!(
            "no image store at {} yet: pull, import, build and pkg build create it",
            dir.display()
        ));
        return Ok(0);
    }
    if !adds && !dir.join("oci-layout").is_file() {
        bail!(
            "{} is not an image store (it has no oci-layout file): check --cache and \
             BALEEN_CACHE; `cache pull`, `cache import`, `build` and `pkg build` create one",
            dir.display()
        );
    }
    let store =
        Store::open(&dir).with_context(|| format!("opening the image store {}", dir.display()))?;
    let notes = Notes { quiet };
    match args.command {
        CacheCommand::Ls => {
            let list = store.list()?;
            let width = list.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max("IMAGE".len());
            println!("{:<width$}  DIGEST", "IMAGE");
            for (name, d) in list {
                println!("{name:<width$}  {}", d.digest());
            }
        }
        CacheCommand::Rm { refs, published_only, registry } => {
            let mut missing = Vec::new();
            for r in &refs {
                let r = parse_ref(r)?;
                if published_only && !published(&store, &r, &registry)? {
                    continue;
                }
                if store.remove(&r)? {
                    notes.say(format_args!("removed {r} (its blobs go at the next `cache gc`)"));
                } else {
                    missing.push(r.to_string());
                }
            }
            if !missing.is_empty() {
                bail!("no image named {} in {}", missing.join(", "), dir.display());
            }
        }
        CacheCommand::Clean { published_only, registry } => {
            for (name, _) in store.list()? {
                let r = parse_ref(&name)?;
                if !published_only || published(&store, &r, &registry)? {
                    store.remove(&r)?;
                }
            }
            let report = store.gc()?;
            say_quarantine_removed(&report);
            eprintln!("removed {} blobs, {} bytes", report.blobs_removed, report.bytes_freed);
        }
        CacheCommand::Gc => {
            let report = store.gc()?;
            say_quarantine_removed(&report);
            eprintln!(
                "removed {} blobs, {} bytes; {} blobs in use",
                report.blobs_removed, report.bytes_freed, report.blobs_kept
            );
            if report.derived_kept + report.derived_removed > 0 {
                eprintln!(
                    "initrd segments: {} kept (their images are cached), {} dropped",
                    report.derived_kept, report.derived_removed
                );
            }
        }
        CacheCommand::Verify { repair } => return verify(&store, repair),
        CacheCommand::Pull { refs, platform, always, registry } => {
            let p = parse_platform(platform.as_deref())?;
            let refs = refs
                .iter()
                .map(|r| Ok((parse_ref(r)?, p.clone())))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let opts = PullOptions {
                always,
                registry: registry.options(),
                progress: baleen_oci::Progress::stderr(quiet),
                ..PullOptions::default()
            };
            let mut failed = 0;
            for ((r, _), result) in
                refs.iter().zip(baleen_oci::pull_all_blocking(&store, &refs, &opts))
            {
                match result {
                    Ok(img) => println!("{r}  {}", img.manifest_digest),
                    Err(e) => {
                        crate::exit::eprint_error(&format!("error: {}", crate::exit::chain(&e)));
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} of {} images could not be pulled", refs.len());
            }
        }
        CacheCommand::Push { reference, to, with_arch_tags, registry } => {
            let local = parse_ref(&reference)?;
            let remote = match &to {
                Some(t) => parse_ref(t)?,
                None => local.clone(),
            };
            let opts = PushOptions {
                registry: registry.options(),
                arch_tags: with_arch_tags,
                progress: baleen_oci::Progress::stderr(quiet),
                ..PushOptions::default()
            };
            let digest = baleen_oci::push_blocking(&store, &local, &remote, &opts)?;
            println!("{remote}  {digest}");
        }
        CacheCommand::Export { reference, output, platform, name } => {
            let r = parse_ref(&reference)?;
            let name = match &name {
                Some(n) => parse_ref(n)?,
                None => r.clone(),
            };
            let p = platform.as_deref().map(|p| parse_platform(Some(p))).transpose()?;
            if output.as_os_str() == "-" {
                let out = std::io::stdout().lock();
                archive::export_as(&store, &r, &name, p.as_ref(), std::io::BufWriter::new(out))?;
            } else {
                // As build's outputs: mode 0644, written beside the target and renamed (a failed
                // export leaves no half file), but a device or FIFO is written in place.
                let writing = || format!("writing {}", output.display());
                let mut outputs = baleen_build::output::Outputs::default();
                let w = outputs.create(&output).with_context(writing)?;
                archive::export_as(&store, &r, &name, p.as_ref(), w)?;
                outputs.commit().with_context(writing)?;
            }
            let to = if output.as_os_str() == "-" {
                "stdout".to_string()
            } else {
                output.display().to_string()
            };
            notes.say(format_args!("exported {r} to {to}"));
        }
        CacheCommand::Import { file, name, max_size, max_expansion } => {
            let name = name.as_deref().map(parse_ref).transpose()?;
            let limits = import_limits(max_size.as_deref(), max_expansion.as_deref())?;
            let imported = if file.as_os_str() == "-" {
                archive::import_with(&store, std::io::stdin().lock(), name.as_ref(), limits)?
            } else {
                let f = std::fs::File::open(&file)
                    .with_context(|| format!("opening {}", file.display()))?;
                archive::import_with(&store, std::io::BufReader::new(f), name.as_ref(), limits)
                    .with_context(|| format!("{}", file.display()))?
            };
            let names = imported.names;
            for n in names {
                println!("{n}");
            }
        }
    }
    Ok(crate::exit::OK)
}

/// One line per damaged blob `gc` removed from quarantine: evidence is never dropped silently.
fn say_quarantine_removed(report: &baleen_oci::GcReport) {
    for path in &report.quarantine_removed {
        eprintln!("removed {} (a damaged blob kept for inspection)", path.display());
    }
}

/// `cache verify [--repair]`: problems on stdout, a summary on stderr.
fn verify(store: &Store, repair: bool) -> anyhow::Result<i32> {
    let report = store.verify(repair)?;
    for p in &report.problems {
        println!("{p}");
    }
    for path in &report.moved_aside {
        println!("moved aside to {}", path.display());
    }
    for path in &report.quarantine_pruned {
        println!(
            "removed {} (quarantine keeps at most {} files, {} GiB)",
            path.display(),
            baleen_oci::QUARANTINE_BOUND.files,
            baleen_oci::QUARANTINE_BOUND.bytes >> 30
        );
    }
    for name in &report.names_removed {
        println!("removed {name} (the next build or pull fetches it again)");
    }
    eprintln!(
        "checked {} blobs ({} bytes) and {} names: {} problems",
        report.blobs_checked,
        report.bytes_checked,
        report.names_checked,
        report.problems.len()
    );
    Ok(if report.problems.is_empty() || repair { crate::exit::OK } else { crate::exit::FAILURE })
}
