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
  OUTPUT         a built output's SBOM: sbom.spdx.json itself, or read from inside any output
                 that holds the system's tree: tar, tar-kernel-initrd, the -initrd.img of
                 kernel+initrd, the -squashfs.img/-erofs.img of kernel+squashfs/erofs, a UKI
                 (.efi), ISOs, raw/qcow2/VHD/VMDK/gcp/aws disks (their ESP or --root partition)

Keys: an SBOM does not say which keys sign the archive its packages came from; Debian's archive
keys are assumed. --keyring FILE trusts a private archive's keys too, for YAML and OUTPUT inputs
(a package directory uses its build.yml's keyring).

Exit status: 0 nothing superseded, 1 a package has a newer version in the suite or its
-security suite, 2 something could not be checked (an archive unreachable with no cached index,
an image not in the store or without an SBOM, an output with no SBOM or that cannot be read).")]
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
    // The store holds the YAML's images, and its debian/ the index cache.
    #[command(flatten)]
    store: super::store::StoreArgs,
    /// Architecture of the YAML's images to audit.
    #[arg(long, default_value = "amd64", value_name = "ARCH")]
    arch: String,
    /// A binary OpenPGP keyring (`gpg --export`) whose keys are trusted beside Debian's for the
    /// archives of YAML and OUTPUT inputs (repeatable).
    #[arg(long, value_name = "FILE")]
    keyring: Vec<PathBuf>,
    /// As for build: the SBOM's path in the image of an OUTPUT.
    #[arg(long, value_name = "PATH")]
    sbom_output: Option<String>,
}

/// The largest keyring file read.
const MAX_KEYRING: u64 = 16 << 20;

/// Runs the audit; an input that cannot be read is exit 2 (could not check), with its reason.
pub fn run(a: AuditArgs, quiet: bool) -> anyhow::Result<i32> {
    let store_dir = a.store.dir();
    let mut pkg_opts = baleen_pkg::Options::new();
    pkg_opts.cache = store_dir.join("debian");
    let gathered = keyring(&a.keyring).and_then(|keys| {
        let mut components = Vec::new();
        for input in &a.inputs {
            let mut of = components_of(input, &a, &store_dir, &pkg_opts)
                .with_context(|| format!("auditing {}", input.display()))?;
            if let (Some(keys), false) = (&keys, input.join("build.yml").is_file()) {
                for spec in of.iter_mut().filter_map(|c| c.archive.as_mut()) {
                    spec.keyring.get_or_insert_with(|| keys.clone());
                }
            }
            components.extend(of);
        }
        Ok(components)
    });
    let components = match gathered {
        Ok(c) => c,
        Err(e) => {
            crate::exit::eprint_error(&format!(
                "error: could not check: {}",
                crate::exit::message(&e)
            ));
            return Ok(2);
        }
    };
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
    let doc = spdx_of_output(input, a.sbom_output.as_deref())?;
    Ok(audit::components_of_spdx(&doc, &input.display().to_string()))
}

/// The SBOM of a built output: the file itself when it is an SPDX document, else the tree's
/// `sbom.spdx.json` (or `--sbom-output`) read from inside it.
fn spdx_of_output(output: &Path, sbom_path: Option<&str>) -> anyhow::Result<serde_json::Value> {
    use std::io::Read;
    let read = || format!("reading {}", output.display());
    let mut head = Vec::new();
    std::fs::File::open(output)
        .with_context(read)?
        .take(audit::MAX_SBOM)
        .read_to_end(&mut head)
        .with_context(read)?;
    if let Some(doc) = audit::spdx_document(&head) {
        return Ok(doc);
    }
    drop(head);
    let path = sbom_path.unwrap_or(baleen_build::sbom::DEFAULT_PATH).trim_start_matches('/');
    let want = baleen_formats::compare::Wanted { path, max: audit::MAX_SBOM };
    let bytes = baleen_build::tree_file::find(output, want)?;
    audit::spdx_document(&bytes).ok_or_else(|| {
        anyhow::anyhow!("{}: its {path} is not an SPDX JSON document", output.display())
    })
}

/// `--keyring`'s files and Debian's keys as one keyring, and whose keys they are; `None` when
/// none is given (Debian's keys alone, the archive's default).
fn keyring(files: &[PathBuf]) -> anyhow::Result<Option<(Vec<u8>, String)>> {
    use std::io::Read;
    if files.is_empty() {
        return Ok(None);
    }
    let mut keys = baleen_pkg::deb::archive::debian_keyring().to_vec();
    for f in files {
        let mut bytes = Vec::new();
        std::fs::File::open(f)
            .and_then(|file| file.take(MAX_KEYRING + 1).read_to_end(&mut bytes))
            .with_context(|| format!("--keyring {}: reading it", f.display()))?;
        if bytes.len() as u64 > MAX_KEYRING {
            anyhow::bail!("--keyring {}: larger than {MAX_KEYRING} bytes", f.display());
        }
        if baleen_pkg::deb::archive::keyring_keys(&bytes) == 0 {
            anyhow::bail!(
                "--keyring {}: no OpenPGP public key in it; it must be a binary keyring \
                 (gpg --export KEY > FILE)",
                f.display()
            );
        }
        keys.extend_from_slice(&bytes);
    }
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    Ok(Some((keys, format!("a Debian archive key or a key of {}", names.join(", ")))))
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
