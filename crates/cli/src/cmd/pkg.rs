//! `baleen pkg build|show-tag|lock [--update]`: component images from `build.yml` directories, no Docker.

use anyhow::Context;
use clap::{Args, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct PkgArgs {
    #[command(subcommand)]
    command: PkgCommand,
}

#[derive(Debug, Subcommand)]
enum PkgCommand {
    /// Build packages into the content store as `<org>/<image>:<tag>`; the tag is a hash of the
    /// package's inputs, so an unchanged package is not rebuilt (see --force).
    Build(BuildArgs),
    /// Print a package's tag (`<org>/<image>:<hash>`) without building: no network, no git.
    ShowTag(ShowTagArgs),
    /// Resolve build.yml's Debian packages against the archive's signed index and write
    /// packages.lock (name, version, pool path, SHA-256, size for each architecture). Each run
    /// resolves afresh, to the newest versions in the suites build.yml names; --update also
    /// prints which lines moved (what `baleen audit` found superseded).
    Lock(LockArgs),
}

#[derive(Debug, Args)]
struct ArchiveArgs {
    /// Debian archive root, overriding build.yml and the host's apt sources
    /// (default http://deb.debian.org/debian).
    #[arg(long, value_name = "URL")]
    mirror: Option<String>,
    /// Platforms to build, overriding build.yml's arches, e.g. linux/amd64,linux/arm64.
    #[arg(long, value_delimiter = ',', value_name = "PLATFORMS")]
    platforms: Vec<String>,
}

#[derive(Debug, Args)]
struct BuildArgs {
    /// Package directories (each holding build.yml).
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    #[command(flatten)]
    archive: ArchiveArgs,
    /// Build even when the store already has the tag.
    #[arg(long)]
    force: bool,
    /// Content store directory (default $BALEEN_CACHE, else ~/.baleen/cache). `--cache` works
    /// too, as for `baleen build` and `baleen cache`.
    // Not StoreArgs: BALEEN_CACHE must not count as a `--store` that `--output` conflicts with.
    #[arg(long, visible_alias = "cache", value_name = "DIR")]
    store: Option<String>,
    /// Write an OCI image layout directory instead of using the content store.
    #[arg(long, value_name = "DIR", conflicts_with = "store")]
    output: Option<PathBuf>,
    /// Push each image after building it.
    #[arg(long, conflicts_with = "output")]
    push: bool,
    /// Registry host to push to (e.g. 127.0.0.1:5000) instead of the one the tag implies.
    #[arg(long, value_name = "HOST", requires = "push")]
    registry: Option<String>,
    /// Registry hosts that may be reached over plain HTTP or with unverified TLS.
    #[arg(long, value_name = "HOST")]
    insecure_registry: Vec<String>,
}

#[derive(Debug, Args)]
struct ShowTagArgs {
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Print the canonical form, docker.io/<org>/<image>:<tag>.
    #[arg(long)]
    canonical: bool,
}

#[derive(Debug, Args)]
struct LockArgs {
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Print each package whose version (or suite) changed, `arch name: old -> new`, or that
    /// nothing did: refreshing a component `baleen audit` reports as superseded.
    #[arg(long)]
    update: bool,
    #[command(flatten)]
    archive: ArchiveArgs,
}

pub fn run(args: PkgArgs, quiet: bool) -> anyhow::Result<i32> {
    match args.command {
        PkgCommand::Build(a) => build(a, quiet),
        PkgCommand::ShowTag(a) => {
            let tag = baleen_pkg::tag::tag(&a.dir)?;
            println!("{}", if a.canonical { tag.canonical() } else { tag.to_string() });
            Ok(crate::exit::OK)
        }
        PkgCommand::Lock(a) => {
            let opts = options(&a.archive, baleen_oci::Progress::stderr(quiet))?;
            for dir in package_dirs(&a.dirs) {
                if a.update {
                    let (_, changes) = baleen_pkg::builder::update(dir, &opts)
                        .with_context(|| format!("updating {}", dir.display()))?;
                    if changes.is_empty() {
                        println!("{}: no changes", dir.display());
                    }
                    for c in changes {
                        println!("{}: {c}", dir.display());
                    }
                    continue;
                }
                let lock = baleen_pkg::lock(dir, &opts)
                    .with_context(|| format!("locking {}", dir.display()))?;
                eprintln!(
                    "{}: {} packages locked",
                    dir.join("packages.lock").display(),
                    lock.packages.len()
                );
            }
            Ok(crate::exit::OK)
        }
    }
}

/// The arguments that are directories: `pkg build pkg/*` also matches `pkg/README.md`, which is
/// skipped with a note rather than failing the whole run.
fn package_dirs(args: &[PathBuf]) -> Vec<&PathBuf> {
    args.iter()
        .filter(|p| {
            let file = p.is_file();
            if file {
                eprintln!("skipping {}: not a package directory", p.display());
            }
            !file
        })
        .collect()
}

fn options(a: &ArchiveArgs, progress: baleen_oci::Progress) -> anyhow::Result<baleen_pkg::Options> {
    let mut opts = baleen_pkg::Options::new();
    opts.progress = progress;
    opts.mirror = a.mirror.clone();
    if !a.platforms.is_empty() {
        let arches = a
            .platforms
            .iter()
            .map(|p| match p.trim().strip_prefix("linux/") {
                Some(arch @ ("amd64" | "arm64" | "riscv64")) => Ok(arch.to_owned()),
                _ => Err(crate::exit::UsageError(format!(
                    "--platforms: {p:?} is not one of linux/amd64, linux/arm64, linux/riscv64"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        opts.arches = Some(arches);
    }
    Ok(opts)
}

fn build(a: BuildArgs, quiet: bool) -> anyhow::Result<i32> {
    let opts = options(&a.archive, baleen_oci::Progress::stderr(quiet))?;
    // Once: each skipped file is noted once.
    let dirs = package_dirs(&a.dirs);
    // Every build.yml is read before anything is created: a typo leaves no empty layout behind.
    for dir in &dirs {
        baleen_pkg::show_tag(dir).with_context(|| format!("building {}", dir.display()))?;
    }
    let mut layout;
    let mut store;
    let sink: &mut dyn baleen_pkg::image::Sink = match &a.output {
        Some(dir) => {
            layout = baleen_pkg::image::LayoutDir::create(dir)?;
            &mut layout
        }
        None => {
            store = baleen_pkg::open_store(Some(&super::store::resolve(a.store.as_deref())))?;
            &mut store
        }
    };
    let mut built = Vec::new();
    for dir in dirs {
        let b = baleen_pkg::build(dir, &opts, sink, a.force)
            .with_context(|| format!("building {}", dir.display()))?;
        let verb = if b.built { "built" } else { "up to date" };
        // The tag is the data, on stdout; when that is the terminal too, the note on stderr does
        // not repeat it.
        if std::io::stdout().is_terminal() {
            eprintln!("{}: {verb} {}", dir.display(), b.digest);
        } else {
            eprintln!("{}: {verb} {} {}", dir.display(), b.tag, b.digest);
        }
        println!("{}", b.tag);
        built.push(b);
    }
    if a.push {
        let store = baleen_pkg::open_store(Some(&super::store::resolve(a.store.as_deref())))?;
        for b in &built {
            let remote = baleen_pkg::push(
                &store,
                &b.tag.to_string(),
                a.registry.as_deref(),
                &a.insecure_registry,
                baleen_oci::Progress::stderr(quiet),
            )?;
            eprintln!("pushed {remote}");
        }
    }
    Ok(crate::exit::OK)
}
