//! `baleen verify OUTPUT... -- FILE...`: rebuild the outputs from the YAML in a temporary
//! directory (the images pinned by `--lock`) and say, per output, `identical` or where it first
//! differs. The work is crates/build's `verify` (which format, what to compare) and the
//! formats' own comparisons; this is flags and printing.

use super::build::{
    Arch, BuildArgs, BuildPlan, Compress, InitrdLayoutArg, PrivilegePolicy, RootFs,
};
use super::config_input;
use anyhow::Context;
use baleen_build::lock::{Lock, LockOptions, MAX_LOCK_BYTES};
use baleen_build::verify::{self, Verdict};
use baleen_disk::compare::Signature;
use clap::{Args, ValueEnum};
use std::io::Read;
use std::path::PathBuf;

/// Exit codes.
const IDENTICAL: i32 = 0;
const DIFFERENT: i32 = 1;
const NOT_REBUILT: i32 = 2;

const AFTER_HELP: &str = "\
What is compared:
  Each OUTPUT is recognised by its name as `baleen build` writes it (NAME.tar, NAME-kernel,
  NAME-initrd.img, NAME.efi, NAME-efi.img…) and rebuilt with the other OUTPUTs of the same NAME.
  A difference is told where the format has a structure:
    tar, docker, tar-kernel-initrd, initrds (cpio, decompressed), squashfs/erofs root images
                the path in the tree and what differs: content, mode, owner, link target,
                modification time, presence, order
    uki         the PE section (.linux, .initrd, .cmdline…), the headers or the signature
    disks (raw-efi, raw-bios, aws; qcow2, VHD, VMDK and gcp read back to their raw disk)
                the partition, and in it the file: of a FAT volume by its path (an EFI
                binary by PE section), of a --root squashfs/erofs partition by its path
    ISOs        the file (Rock Ridge path), and inside a boot image the file as for disks
  and as a byte offset, said to be one, for the kernel and cmdline.

Images:
  --lock FILE (written by `baleen build --lock FILE`) pins every image to the platform manifest
  the original build used: the rebuild takes it from the cache, or pulls it by digest, whatever
  the tag points at now. Without --lock, images are resolved by their tags as they are now,
  which is said on stderr: a moved tag then shows up as a difference.

Flags:
  Give the flags the output was built with that change its bytes: --arch, --compress,
  --initrd-layout, --decompress-kernel, --no-sbom, --sbom-output, --size, --root, --verity,
  and --sign-key/--sign-cert.
  A signed UKI can only be rebuilt with its key; without --sign-key, a UKI is compared with
  its signature left out (the certificate table, its directory entry and the checksum) and
  reported as `identical once unsigned`. The signature also changes what an EFI disk derives
  from the UKI (GUIDs, FAT serial): verify signed disks with the key.

Exit status: 0 every OUTPUT identical, 1 one differs, 2 could not rebuild (the reason on
stderr: an invalid YAML, an image missing, a file that is not an output). See docs/verify.md.";

/// Rebuild outputs from the same YAML and images and compare them with the given files.
#[derive(Debug, Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct VerifyArgs {
    /// Output files of `baleen build` to check (NAME.tar, NAME-kernel, NAME-initrd.img…).
    #[arg(required = true, value_name = "OUTPUT")]
    pub outputs: Vec<PathBuf>,
    /// The LinuxKit YAML files the outputs were built from, after `--`, in the same order.
    #[arg(last = true, required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// The lock file the build wrote with `--lock`: every image pinned to its digest.
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
    #[command(flatten)]
    pub store: super::store::StoreArgs,
    /// Architecture the outputs were built for [default: the lock's, else the host's].
    #[arg(long, value_enum)]
    pub arch: Option<Arch>,
    /// As for build: the kernel was written uncompressed.
    #[arg(long)]
    pub decompress_kernel: bool,
    /// As for build: how the initrd was compressed.
    #[arg(long, value_enum, default_value = "gzip", value_name = "ALGO")]
    pub compress: Compress,
    /// As for build: how the initrd was laid out.
    #[arg(long, value_enum, default_value = "segmented", value_name = "LAYOUT")]
    pub initrd_layout: InitrdLayoutArg,
    /// As for build: the outputs have no SBOM.
    #[arg(long)]
    pub no_sbom: bool,
    /// As for build: the SBOM's path in the image.
    #[arg(long, value_name = "PATH")]
    pub sbom_output: Option<PathBuf>,
    /// As for build: the disk size of qcow2-bios and aws.
    #[arg(long, value_name = "SIZE")]
    pub size: Option<String>,
    /// As for build: the root image carries a dm-verity hash tree.
    #[arg(long)]
    pub verity: bool,
    /// As for build: the EFI disks hold the system in a root partition of this filesystem.
    #[arg(long, value_enum, value_name = "FS")]
    pub root: Option<RootFs>,
    /// The key the UKI was signed with: the rebuild is signed too and compared whole.
    #[arg(long, env = "BALEEN_SIGN_KEY", value_name = "KEY.pem")]
    pub sign_key: Option<PathBuf>,
    /// The certificate of --sign-key.
    #[arg(long, env = "BALEEN_SIGN_CERT", value_name = "CERT.pem")]
    pub sign_cert: Option<PathBuf>,
    /// Keep the rebuilt files in this directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

/// Runs verify; every failure to rebuild or to read is exit 2, with its reason.
pub fn run(args: VerifyArgs, quiet: bool) -> anyhow::Result<i32> {
    match verify(&args, quiet) {
        Ok(code) => Ok(code),
        Err(e) => {
            crate::exit::eprint_error(&format!(
                "error: could not rebuild: {}",
                crate::exit::message(&e)
            ));
            Ok(NOT_REBUILT)
        }
    }
}

fn verify(args: &VerifyArgs, quiet: bool) -> anyhow::Result<i32> {
    let groups = verify::plan(&args.outputs)?;
    let pins = match &args.lock {
        Some(path) => Some(read_lock(path)?),
        None => {
            if !quiet {
                eprintln!(
                    "warning: no --lock: images are resolved by their tags as they are now, \
                     not pinned to the original build's"
                );
            }
            None
        }
    };
    let arch = match (args.arch, &pins) {
        (Some(a), _) => Some(a),
        (None, Some(lock)) => Some(arch_of(&lock.platform)?),
        (None, None) => None,
    };
    let inputs = config_input::read_inputs(&args.files)?;
    let cfg = match config_input::load(&inputs) {
        Ok(cfg) => cfg,
        Err(diags) => {
            config_input::report(&diags);
            anyhow::bail!("the configuration is invalid");
        }
    };
    let signature = if args.sign_key.is_some() { Signature::Compare } else { Signature::Strip };
    let _cleanup = super::build_run::CleanupOnSignal::install()?;
    let mut code = IDENTICAL;
    for group in groups {
        let scratch = match &args.keep {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating --keep {}", dir.display()))?;
                Scratch::Kept(dir.clone())
            }
            None => Scratch::Temp(tempdir()?),
        };
        let dir = scratch.path();
        let plan = plan(args, &group, arch, dir)?;
        let lock = LockOptions { pins: pins.clone(), write: None };
        super::build_run::build(&plan, &cfg, true, lock)
            .with_context(|| format!("rebuilding {}", group.name))?;
        for target in &group.targets {
            let rebuilt = group.rebuilt(dir, target);
            let verdict = verify::compare(target, &rebuilt, signature)?;
            let shown =
                crate::exit::escape_controls(&target.path.display().to_string()).into_owned();
            match verdict {
                Verdict::Identical => println!("{shown}: identical"),
                Verdict::IdenticalUnsigned => println!(
                    "{shown}: identical once unsigned (its signature was left out: give \
                     --sign-key/--sign-cert to compare it too)"
                ),
                Verdict::Differs(place) => {
                    println!("{shown}: differs: {}", crate::exit::escape_controls(&place));
                    code = DIFFERENT;
                }
            }
        }
    }
    Ok(code)
}

fn read_lock(path: &std::path::Path) -> anyhow::Result<Lock> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_LOCK_BYTES)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading the lock file {}", path.display()))?;
    Lock::parse(&bytes).with_context(|| format!("the lock file {}", path.display()))
}

/// The `--arch` of a lock's `os/arch` platform.
fn arch_of(platform: &str) -> anyhow::Result<Arch> {
    let arch = platform.split('/').nth(1).unwrap_or_default();
    Arch::from_str(arch, false).map_err(|_| {
        anyhow::anyhow!("the lock's platform {platform:?} is not one baleen builds for")
    })
}

/// The rebuild's directory: temporary (removed when done) or `--keep`'s.
enum Scratch {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl Scratch {
    fn path(&self) -> &std::path::Path {
        match self {
            Scratch::Temp(t) => t.path(),
            Scratch::Kept(p) => p,
        }
    }
}

/// In `$TMPDIR`, else /var/tmp, as the build's own intermediates (outputs can be gigabytes).
fn tempdir() -> anyhow::Result<tempfile::TempDir> {
    let base = std::env::var_os("TMPDIR").map_or_else(|| PathBuf::from("/var/tmp"), PathBuf::from);
    tempfile::Builder::new()
        .prefix("baleen-verify-")
        .tempdir_in(&base)
        .with_context(|| format!("creating a temporary directory in {}", base.display()))
}

/// The build plan of one group: its formats, into `dir` under its name, with the flags given.
fn plan(
    args: &VerifyArgs,
    group: &verify::Group,
    arch: Option<Arch>,
    dir: &std::path::Path,
) -> anyhow::Result<BuildPlan> {
    let build = BuildArgs {
        files: args.files.clone(),
        formats: group.formats.clone(),
        output: None,
        dir: Some(dir.to_path_buf()),
        name: Some(group.name.clone()),
        arch,
        pull: false,
        decompress_kernel: args.decompress_kernel,
        compress: args.compress,
        initrd_layout: args.initrd_layout,
        input_tar: None,
        store: args.store.clone(),
        no_sbom: args.no_sbom,
        sbom_output: args.sbom_output.clone(),
        sbom_current_time: false,
        // A rebuild to compare is never pushed.
        push: None,
        registry: Default::default(),
        size: args.size.clone(),
        privileges: PrivilegePolicy::Allow,
        max_size: Some("none".into()),
        max_expansion: Some("none".into()),
        sign_key: args.sign_key.clone(),
        sign_cert: args.sign_cert.clone(),
        verity: args.verity,
        lock: None,
        budget: Vec::new(),
        root: args.root,
        dry_run: false,
        json: false,
        list_formats: false,
    };
    let mut plan = BuildPlan::from_args(&build)?;
    // The rebuild is made from the images alone: segments cached in the store are neither read
    // nor written, so a tampered cache entry cannot make an output look identical.
    plan.segment_cache = false;
    Ok(plan)
}
