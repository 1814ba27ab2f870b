//! `baleen audit INPUT…`: every component of a system, where it came from, and which of its
//! Debian packages the archive's security or point-release updates supersede.
//!
//! The inputs are turned into `baleen_pkg::audit::Component`s here (a package directory's lock,
//! a YAML's images and the SBOMs attested for them in the store, a built output's SBOM); the
//! check itself is `baleen_pkg::audit::audit`.

use anyhow::Context;
use baleen_pkg::audit::{self, Component};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
#[command(after_help = "\
Inputs:
  DIR            a package directory (build.yml + packages.lock): its locked .debs
  FILE.yml       a system: each image in the content store, with the SBOM attested for it
                 (`baleen pkg build` attaches one; so do BuildKit and LinuxKit)
  OUTPUT         a built output's SBOM: sbom.spdx.json, or a tar output holding it

Exit status: 0 nothing superseded, 1 a package has a newer version in the suite or its
-security suite, 2 something could not be checked (an archive unreachable with no cached index,
an image not in the store or without an SBOM).")]
pub struct AuditArgs {
    /// Package directories, system YAML files, or built outputs (see below).
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// Print the report as JSON (for CI) instead of text.
    #[arg(long)]
    json: bool,
    /// Do not ask the archives: use the cached indexes only (their age is printed).
    #[arg(long)]
    offline: bool,
    /// Content store the YAML's images are looked up in, and whose debian/ holds the index
    /// cache (default $BALEEN_CACHE, else ~/.baleen/cache).
    #[arg(long, visible_alias = "store", value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Architecture of the YAML's images to audit.
    #[arg(long, default_value = "amd64", value_name = "ARCH")]
    arch: String,
}

pub fn run(a: AuditArgs, quiet: bool) -> anyhow::Result<i32> {
    let store_dir = a.cache.clone().unwrap_or_else(baleen_oci::Store::default_dir);
    let mut pkg_opts = baleen_pkg::Options::new();
    pkg_opts.cache = store_dir.join("debian");
    let mut components = Vec::new();
    for input in &a.inputs {
        components.extend(
            components_of(input, &a, &store_dir, &pkg_opts)
                .with_context(|| format!("auditing {}", input.display()))?,
        );
    }
    let opts = audit::Options {
        cache: pkg_opts.cache.clone(),
        offline: a.offline,
        progress: baleen_oci::Progress::stderr(quiet),
    };
    let report = audit::audit(components, &opts);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        print!("{}", report.text());
    }
    Ok(report.exit_code())
}

fn components_of(
    input: &Path,
    a: &AuditArgs,
    store_dir: &Path,
    pkg_opts: &baleen_pkg::Options,
) -> anyhow::Result<Vec<Component>> {
    if input.join("build.yml").is_file() {
        return package_dir(input, pkg_opts).map(|c| vec![c]);
    }
    if input.is_dir() {
        return Err(crate::exit::UsageError(format!(
            "{}: a directory without build.yml is not a package",
            input.display()
        ))
        .into());
    }
    let yaml = input.extension().is_some_and(|e| e == "yml" || e == "yaml");
    if yaml {
        return system(input, a, store_dir);
    }
    let doc = audit::spdx_of_output(input)?;
    Ok(audit::components_of_spdx(&doc, &input.display().to_string()))
}

/// A package directory: its packages.lock, checked against the archives build.yml names.
fn package_dir(dir: &Path, opts: &baleen_pkg::Options) -> anyhow::Result<Component> {
    let spec = baleen_pkg::BuildSpec::load(dir)?;
    let lock = match baleen_pkg::lock::Lock::load(dir)? {
        Some(l) => l,
        None if spec.debian.is_none() => baleen_pkg::lock::Lock {
            request: String::new(),
            suite: String::new(),
            packages: Vec::new(),
        },
        None => anyhow::bail!(
            "{} has no packages.lock; run `baleen pkg lock {}` first",
            dir.display(),
            dir.display()
        ),
    };
    let archive = match spec.debian {
        Some(_) => Some(opts.audit_archive(dir, &spec)?),
        None => None,
    };
    Ok(Component::of_lock(dir, &lock, archive))
}

/// A system YAML: each image, by reference and stored digest, with the SBOM attested for it.
fn system(file: &Path, a: &AuditArgs, store_dir: &Path) -> anyhow::Result<Vec<Component>> {
    let inputs = super::config_input::read_inputs(&[file.display().to_string()])?;
    let config = match super::config_input::load(&inputs) {
        Ok(c) => c.with_expanded_refs(),
        Err(diags) => {
            super::config_input::report(&diags);
            anyhow::bail!("{} is not a valid configuration", file.display());
        }
    };
    let store = baleen_oci::Store::open(store_dir)
        .with_context(|| format!("opening the store {}", store_dir.display()))?;
    let platform = baleen_oci::Platform::new("linux", &a.arch, None);
    let mut refs: Vec<String> = Vec::new();
    refs.extend(config.kernel.as_ref().and_then(|k| k.image.clone()));
    refs.extend(config.init.iter().cloned());
    for list in [&config.onboot, &config.services, &config.onshutdown] {
        refs.extend(list.iter().map(|i| i.image.clone()));
    }
    let mut seen = std::collections::BTreeSet::new();
    refs.retain(|r| seen.insert(r.clone()));
    let mut out = Vec::new();
    for reference in refs {
        out.extend(image(&store, &reference, &platform, file)?);
    }
    Ok(out)
}

fn image(
    store: &baleen_oci::Store,
    reference: &str,
    platform: &baleen_oci::Platform,
    file: &Path,
) -> anyhow::Result<Vec<Component>> {
    let unknown = |origin: String, why: String| Component {
        name: reference.to_owned(),
        origin,
        archive: None,
        debs: Vec::new(),
        others: Vec::new(),
        unknown: Some(why),
    };
    let r = baleen_oci::Reference::parse(reference)
        .with_context(|| format!("{}: image {reference}", file.display()))?;
    let (Some(root), Some(img)) = (store.lookup(&r)?, store.resolve(&r, platform)?) else {
        return Ok(vec![unknown(
            "not in the store".into(),
            format!("not in the store for {platform}: run `baleen build` (or `baleen cache pull`) first"),
        )]);
    };
    let origin = format!("{reference}@{}", root.digest());
    let location = file.display().to_string();
    let docs = baleen_build::sbom::find(store, &img, &location)?;
    if docs.is_empty() {
        return Ok(vec![unknown(origin, "the image has no SBOM attestation".into())]);
    }
    let mut out = Vec::new();
    for (_, doc) in docs {
        for mut c in audit::components_of_spdx(&doc, &origin) {
            c.name = reference.to_owned();
            out.push(c);
        }
    }
    Ok(out)
}
