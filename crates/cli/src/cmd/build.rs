//! `baleen build FILE...`: LinuxKit's build flags (spec §3.4) parsed into a validated
//! [`BuildPlan`]. `--dry-run` prints the merged config and what would be built; otherwise
//! `build_run` hands the plan to the pipeline in crates/build.

use super::config_input::{self, OutFormat};
use crate::exit::UsageError;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

pub use baleen_build::Format;

/// `--format`'s values: [`Format::ALL`], each with its `--help` line.
fn format_parser() -> impl TypedValueParser<Value = Format> {
    let values = Format::ALL.iter().map(|f| PossibleValue::new(f.name()).help(f.help()));
    PossibleValuesParser::new(values)
        .try_map(|name| Format::parse(&name).ok_or_else(|| format!("unknown format `{name}`")))
}

/// Target architectures LinuxKit builds for.
/// Initrd compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compress {
    Gzip,
    Zstd,
}

/// `--initrd-layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitrdLayoutArg {
    /// One compressed cpio per section, taken from the cache when the section did not change.
    Segmented,
    /// One compressed cpio for the whole image, as LinuxKit writes it.
    Single,
}

/// `--root`: the root filesystem of the EFI disks' root partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RootFs {
    Squashfs,
    Erofs,
}

/// `--privileges`: what a host-level grant asked for only by an image label does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrivilegePolicy {
    /// LinuxKit's behaviour: the label's grants apply (and are listed).
    Allow,
    /// A grant only the label asks for is an error; granting it in the YAML accepts it.
    DenyLabel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Arch {
    Amd64,
    Arm64,
    Riscv64,
}

impl Arch {
    /// The OCI architecture name.
    pub fn oci(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
            Arch::Riscv64 => "riscv64",
        }
    }

    fn host() -> Self {
        match std::env::consts::ARCH {
            "aarch64" => Arch::Arm64,
            "riscv64" => Arch::Riscv64,
            _ => Arch::Amd64,
        }
    }
}

/// What `baleen build --help` ends with.
const AFTER_HELP: &str = "\
Environment:
  BALEEN_CACHE  the image cache (as --cache)
  TMPDIR        where large intermediates go (kernel, initrd, UKI, raw disks before conversion,
                the ISO spool: about the size of the outputs), unnamed and gone when the build
                ends. Default /var/tmp, not /tmp, which is often a RAM-backed tmpfs
  BALEEN_SIGN_KEY, BALEEN_SIGN_CERT
                the files --sign-key and --sign-cert name, so that a CI job sets them once

Secure Boot:
  --sign-key KEY.pem --sign-cert CERT.pem signs the UKI with an Authenticode signature, as
  `sbsign` does, so that UEFI firmware with CERT in its db boots it: the `uki` file itself and
  the UKI that every EFI disk and ISO boots. The same key and inputs give the same bytes. How to
  make a key pair and enroll it: docs/security.md

Root partition:
  --root squashfs|erofs (raw-efi, aws, qcow2-efi, vhd, dynamic-vhd, vmdk, gcp) puts the system in
  a read-only root partition after the ESP (GPT type 4f68bce3-e8cd-4db1-96e7-fbcaf984b709, the
  Discoverable Partitions Specification's x86-64 root) instead of in the UKI's initrd; the UKI
  carries the kernel, the small stage-1 initrd (as NAME-root-initrd.img of kernel+squashfs) and
  root=PARTUUID=UUID. The system runs on a tmpfs overlay over that root, as with kernel+squashfs.

dm-verity:
  --verity (kernel+squashfs, kernel+erofs) appends a dm-verity hash tree to NAME-squashfs.img /
  NAME-erofs.img, right after the filesystem (hash offset = its size, a multiple of 4096;
  veritysetup's format, salt = SHA-256 of the filesystem), and puts roothash=HEX
  baleen.verity_data_blocks=N baleen.verity_salt=HEX on NAME-cmdline. Stage 1 maps the root
  through the kernel's verity target and stops the boot (`verity: ...` on the console) when a
  block does not match. Check it offline with
  `veritysetup verify IMG IMG ROOTHASH --hash-offset=N*4096`.
  With --root, the hash tree goes in a root-verity partition after the root partition (type
  2c7357ed-ebd2-46d9-aec3-23d7f4a0e1e5), the partitions' UUIDs are the first and last 128 bits
  of the root hash, and the words (with baleen.verity_hash=PARTUUID=UUID) go on the UKI's
  .cmdline, which --sign-key signs. See docs/security.md

Host-level privileges:
  Before writing anything, build lists on stderr the containers that get host-level power, one
  row each with the grants and whether they come from the YAML or the image's
  org.mobyproject.config label: a bind (or rbind) of /, /dev, /proc or /sys; all capabilities or
  CAP_SYS_ADMIN; all devices (devices: path all, or a device rule without major/minor); the host
  pid namespace (pid: host); runtime mkdir or mounts at absolute, host paths. Containers without
  any are not listed (nor with -q). --dry-run lists what the YAML grants (it reads no image).
  --privileges=deny-label refuses a grant only a label asks for.";

/// Build a bootable system image from LinuxKit YAML files.
#[derive(Debug, Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct BuildArgs {
    /// LinuxKit YAML files, merged left to right (a later kernel overrides; init, onboot,
    /// onshutdown, services, files and volumes are concatenated). `-` reads stdin.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Output formats, repeatable or comma-separated. Default: kernel+initrd, or tar with `--o`.
    #[arg(
        short = 'f',
        long = "format",
        value_parser = format_parser(),
        value_delimiter = ',',
        value_name = "FORMAT"
    )]
    pub formats: Vec<Format>,
    /// Write the single streamable output (tar, docker) to this file; `-` is stdout. Excludes
    /// `--name` and `--dir`.
    #[arg(long = "o", short = 'o', value_name = "FILE")]
    pub output: Option<String>,
    /// Directory for the outputs [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Base name of the outputs [default: the first file's name without extension; `moby` for
    /// stdin].
    #[arg(long)]
    pub name: Option<String>,
    /// Architecture to build for [default: the host's].
    #[arg(long, value_enum)]
    pub arch: Option<Arch>,
    /// Pull images even when they are cached.
    #[arg(long)]
    pub pull: bool,
    /// Write the kernel uncompressed (gunzip it, or the gzip payload of a bzImage).
    #[arg(long)]
    pub decompress_kernel: bool,
    /// How the initrd's cpio is compressed: gzip (LinuxKit's, on all cores) or zstd (smaller and
    /// faster to unpack at boot; Debian's kernels and most others accept it).
    #[arg(long, value_enum, default_value = "gzip", value_name = "ALGO")]
    pub compress: Compress,
    /// How the initrd is laid out: `segmented`, one compressed cpio per section of the image
    /// (kernel modules, init, each container, files, SBOM), back to back, so that a rebuild
    /// takes the sections that did not change from the cache instead of compressing them again;
    /// or `single`, one compressed cpio (LinuxKit's bytes). Linux unpacks both to the same files.
    #[arg(long, value_enum, default_value = "segmented", value_name = "LAYOUT")]
    pub initrd_layout: InitrdLayoutArg,
    /// A previous build's tar: unchanged parts are reused from it. The YAML needs a `files` entry
    /// with `metadata: yaml` (or `json`): the previous config is read from it, as LinuxKit does.
    #[arg(long, value_name = "TAR")]
    pub input_tar: Option<PathBuf>,
    #[command(flatten)]
    pub store: super::store::StoreArgs,
    /// Do not add an SBOM of the images to the output.
    #[arg(long)]
    pub no_sbom: bool,
    /// Path of the merged SBOM inside the image [default: sbom.spdx.json].
    #[arg(long, value_name = "PATH")]
    pub sbom_output: Option<PathBuf>,
    /// Use the current time in the SBOM instead of a fixed one (not reproducible).
    #[arg(long)]
    pub sbom_current_time: bool,
    /// Disk size for formats with a fixed-size disk (qcow2-bios, aws): a number with an optional
    /// K, M, G or T suffix (MiB when none). A system that needs more is an error. [default:
    /// 1024M as LinuxKit, grown to a whole number of GiB for a system that needs more]
    #[arg(long, value_name = "SIZE")]
    pub size: Option<String>,
    /// What a host-level grant (see "Host-level privileges" below) that only an image label asks
    /// for does: `allow`,
    /// LinuxKit's behaviour, or `deny-label`, an error naming the container, grant and image.
    #[arg(long, value_enum, default_value = "allow", value_name = "POLICY")]
    pub privileges: PrivilegePolicy,
    /// The most file data the image tree may hold, as for --size (K, M, G or T; MiB when no
    /// suffix). A layer whose entries take the tree past it is an error naming the image and the
    /// layer. `none` (or 0) lifts the limit. [default: 64G]
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Refuse a layer that decompresses to more than RATIO times its compressed size once past
    /// 1 GiB (a decompression bomb: 20 MB of gzip can hold 20 GiB of zeros). `none` (or 0) turns
    /// the check off. [default: 100]
    #[arg(long, value_name = "RATIO")]
    pub max_expansion: Option<String>,
    /// Sign the UKI for UEFI Secure Boot with this PEM private key: RSA (2048 to 4096 bits) or
    /// ECDSA P-256, unencrypted PKCS#8, PKCS#1 or SEC1. Needs --sign-cert; applies to the
    /// formats that carry a UKI (uki and the EFI disks and ISOs).
    #[arg(long, env = "BALEEN_SIGN_KEY", value_name = "KEY.pem")]
    pub sign_key: Option<PathBuf>,
    /// The PEM X.509 certificate of --sign-key's public key, embedded in the signature; the
    /// firmware must have it (or its issuer) in db.
    #[arg(long, env = "BALEEN_SIGN_CERT", value_name = "CERT.pem")]
    pub sign_cert: Option<PathBuf>,
    /// Give the EFI disk formats (raw-efi, aws, qcow2-efi, vhd, dynamic-vhd, vmdk, gcp) a
    /// read-only root partition of this filesystem; the UKI then boots it through a small
    /// stage-1 initrd. Every format of the build must be one of these.
    #[arg(long, value_enum, value_name = "FS")]
    pub root: Option<RootFs>,
    /// Protect the root filesystem with dm-verity: kernel+squashfs and kernel+erofs get a hash
    /// tree after the filesystem in the same image and `roothash=` on NAME-cmdline; the EFI
    /// disks with --root a root-verity partition and `roothash=` on the UKI's command line.
    /// Stage 1 refuses to boot a root that does not match.
    #[arg(long)]
    pub verity: bool,
    /// Fail the build, writing nothing, when a size exceeds its budget: KEY=SIZE[,KEY=SIZE...]
    /// with keys `kernel` and `initrd` (as written, also inside a UKI, ISO or disk), `image`
    /// (the uncompressed tree's file data) and `output` (each file written); sizes with K, M or
    /// G (powers of 1024). A key the formats do not produce fails too. Repeatable. Example:
    /// --budget initrd=64M,kernel=16M,image=200M
    #[arg(long, value_name = "KEY=SIZE,...")]
    pub budget: Vec<String>,
    /// Also write the digest of every image the build used (the platform manifest each image
    /// string resolved to) to this JSON file, with the outputs, so that `baleen verify --lock
    /// FILE` rebuilds from exactly those images. See docs/verify.md.
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
    /// Once the build succeeded, push its output to an OCI registry as `baleen push oci` does
    /// (e.g. registry.example/sys/minimal:1): one bootable format, written with --dir/--name.
    /// A failed build pushes nothing.
    #[arg(long, value_name = "REF")]
    pub push: Option<String>,
    #[command(flatten)]
    pub(crate) registry: super::cache::RegistryFlags,
    /// Check and print the merged config (YAML on stdout) and what would be written, then stop.
    #[arg(long)]
    pub dry_run: bool,
    /// With `--dry-run`: print the config as JSON.
    #[arg(long, requires = "dry_run")]
    pub json: bool,
    /// Print the name of every format `--format` takes, one a line, and stop.
    #[arg(long, exclusive = true)]
    pub list_formats: bool,
}

/// Where the outputs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// `--o -`.
    Stdout,
    /// `--o FILE`.
    File(PathBuf),
    /// `DIR/NAME…` per format.
    Dir { dir: PathBuf, name: String },
}

/// The validated build request, independent of clap: what the pipeline consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    pub files: Vec<String>,
    pub formats: Vec<Format>,
    pub output: Output,
    pub arch: Arch,
    pub pull: bool,
    pub decompress_kernel: bool,
    pub compress: Compress,
    pub initrd_layout: InitrdLayoutArg,
    /// Off for `baleen verify`'s rebuild (see `Request::segment_cache`).
    pub segment_cache: bool,
    pub input_tar: Option<PathBuf>,
    pub cache: PathBuf,
    pub sbom: bool,
    pub sbom_output: Option<PathBuf>,
    pub sbom_current_time: bool,
    /// `--size`, MiB; `None`: the formats' default (1 GiB, or whole GiB when more is needed).
    pub size_mib: Option<u64>,
    pub privileges: PrivilegePolicy,
    /// `--max-size` and `--max-expansion`.
    pub limits: baleen_build::limits::Limits,
    /// `--sign-key` and `--sign-cert`.
    pub sign: Option<baleen_build::Signing>,
    /// `--verity`.
    pub verity: bool,
    /// `--root`.
    pub root: Option<RootFs>,
    /// `--budget`.
    pub budget: baleen_build::Budget,
    /// `--lock`: where to record the images' digests.
    pub lock: Option<PathBuf>,
    /// `--push`: where to push the output once built, and the registry flags for it.
    pub push: Option<String>,
    pub(crate) registry: super::cache::RegistryFlags,
}

impl BuildPlan {
    /// Checks flag combinations LinuxKit rejects, and fills in defaults.
    pub fn from_args(a: &BuildArgs) -> Result<BuildPlan, UsageError> {
        let mut formats: Vec<Format> = Vec::new();
        for f in &a.formats {
            if !formats.contains(f) {
                formats.push(*f);
            }
        }
        if formats.is_empty() {
            formats.push(if a.output.is_some() { Format::Tar } else { Format::KernelInitrd });
        }
        let stream: Vec<_> = formats.iter().filter(|f| f.streamable()).collect();
        if !stream.is_empty() && formats.len() > 1 {
            return Err(UsageError(format!(
                "format `{}` is a single stream and must be the only format",
                stream[0]
            )));
        }
        let output = match &a.output {
            Some(o) => {
                if a.name.is_some() || a.dir.is_some() {
                    return Err(UsageError("--o cannot be combined with --name or --dir".into()));
                }
                if !formats[0].streamable() {
                    return Err(UsageError(
                        "--o writes one stream: use it with -f tar or -f docker".into(),
                    ));
                }
                if o == "-" {
                    Output::Stdout
                } else {
                    Output::File(o.into())
                }
            }
            None => {
                let name = a.name.clone().unwrap_or_else(|| default_name(&a.files[0]));
                Output::Dir { dir: a.dir.clone().unwrap_or_else(|| ".".into()), name }
            }
        };
        let sign = signing(a, &formats)?;
        let arch = a.arch.unwrap_or_else(Arch::host);
        baleen_build::format::check_arch(arch.oci(), &formats, a.root.is_some())
            .map_err(|e| UsageError(e.to_string()))?;
        if a.root.is_some() {
            baleen_build::root_partition::check_formats(&formats)
                .map_err(|e| UsageError(e.to_string()))?;
        }
        if a.verity {
            baleen_build::verity::check_formats(&formats, a.root.is_some())
                .map_err(|e| UsageError(e.to_string()))?;
        }
        let push = push_target(a, &formats)?;
        Ok(BuildPlan {
            push,
            files: a.files.clone(),
            formats,
            output,
            arch,
            pull: a.pull,
            decompress_kernel: a.decompress_kernel,
            compress: a.compress,
            initrd_layout: a.initrd_layout,
            segment_cache: true,
            input_tar: a.input_tar.clone(),
            cache: a.store.dir(),
            sbom: !a.no_sbom,
            sbom_output: a.sbom_output.clone(),
            sbom_current_time: a.sbom_current_time,
            size_mib: a.size.as_deref().map(|s| parse_size_mib("--size", s)).transpose()?,
            privileges: a.privileges,
            limits: limits(a)?,
            sign,
            verity: a.verity,
            root: a.root,
            budget: budget(a)?,
            lock: a.lock.clone(),
            registry: a.registry.clone(),
        })
    }
}

/// `--push REF`, checked before anything is built: one format that `baleen run` boots, as files
/// in a directory.
fn push_target(a: &BuildArgs, formats: &[Format]) -> Result<Option<String>, UsageError> {
    let Some(r) = &a.push else { return Ok(None) };
    if a.output.is_some() {
        return Err(UsageError("--push pushes files written with --dir, not --o".into()));
    }
    match formats {
        [Format::Tar | Format::Docker | Format::TarKernelInitrd] => Err(UsageError(format!(
            "--push stores a system `baleen run` boots; format `{}` is not one",
            formats[0]
        ))),
        [_] => Ok(Some(r.clone())),
        _ => Err(UsageError(
            "--push stores one system: give one format (push the others with `baleen push oci`)"
                .into(),
        )),
    }
}

/// Every `--budget` value, later keys replacing earlier ones.
fn budget(a: &BuildArgs) -> Result<baleen_build::Budget, UsageError> {
    let mut b = baleen_build::Budget::default();
    for v in &a.budget {
        b.parse_into(v).map_err(|e| UsageError(e.to_string()))?;
    }
    Ok(b)
}

/// `--max-size` and `--max-expansion` over the defaults; `none` or 0 lifts either.
fn limits(a: &BuildArgs) -> Result<baleen_build::limits::Limits, UsageError> {
    let mut limits = baleen_build::limits::Limits::default();
    if let Some(s) = a.max_size.as_deref() {
        limits.max_tree_bytes = parse_max_size(s)?;
    }
    if let Some(s) = a.max_expansion.as_deref() {
        limits.expansion = parse_max_expansion(s)?.map(|ratio| baleen_build::limits::Expansion {
            ratio,
            floor: baleen_build::limits::EXPANSION_FLOOR,
        });
    }
    Ok(limits)
}

/// A `--max-size` value (of `build` or `cache import`): bytes, or `None` for `none` or 0.
pub(crate) fn parse_max_size(s: &str) -> Result<Option<u64>, UsageError> {
    if s == "none" || s == "0" {
        return Ok(None);
    }
    parse_size_bytes("--max-size", s).map(Some)
}

/// A `--max-expansion` value (of `build` or `cache import`): the ratio, or `None` for `none`
/// or 0.
pub(crate) fn parse_max_expansion(s: &str) -> Result<Option<u64>, UsageError> {
    if s == "none" || s == "0" {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|_| {
        UsageError(format!("--max-expansion `{s}`: expected a whole number or `none`"))
    })
}

/// `--sign-key` and `--sign-cert`, both or neither, with a format that has a UKI to sign.
fn signing(a: &BuildArgs, formats: &[Format]) -> Result<Option<baleen_build::Signing>, UsageError> {
    let (key, cert) = match (&a.sign_key, &a.sign_cert) {
        (None, None) => return Ok(None),
        (Some(key), Some(cert)) => (key.clone(), cert.clone()),
        (Some(_), None) => {
            return Err(UsageError("--sign-key needs --sign-cert (or BALEEN_SIGN_CERT)".into()))
        }
        (None, Some(_)) => {
            return Err(UsageError("--sign-cert needs --sign-key (or BALEEN_SIGN_KEY)".into()))
        }
    };
    baleen_build::sign::check_formats(formats).map_err(|e| UsageError(e.to_string()))?;
    Ok(Some(baleen_build::Signing { key, cert }))
}

/// `path/to/sshd.yml` → `sshd`; stdin → `moby` (LinuxKit's default).
fn default_name(file: &str) -> String {
    if file == "-" {
        return "moby".into();
    }
    let base = file.rsplit('/').next().unwrap_or(file);
    match base.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem.to_string(),
        _ => base.to_string(),
    }
}

/// [`parse_size_mib`] in bytes.
fn parse_size_bytes(flag: &str, s: &str) -> Result<u64, UsageError> {
    parse_size_mib(flag, s)?
        .checked_mul(1 << 20)
        .ok_or_else(|| UsageError(format!("{flag} `{s}`: too large")))
}

/// `1024M`, `1G`, `512` (MiB) → MiB; `flag` names the flag in the error.
fn parse_size_mib(flag: &str, s: &str) -> Result<u64, UsageError> {
    let bad =
        || UsageError(format!("{flag} `{s}`: expected a number with optional K, M, G or T suffix"));
    let (num, mult_kib) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&s[..s.len() - 1], 1u64),
        Some('M') => (&s[..s.len() - 1], 1 << 10),
        Some('G') => (&s[..s.len() - 1], 1 << 20),
        Some('T') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1 << 10),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    let kib = n.checked_mul(mult_kib).ok_or_else(bad)?;
    Ok(kib.div_ceil(1024))
}

/// `quiet` (`-q`) drops the table of privileged containers (errors are still printed).
pub fn run(args: BuildArgs, quiet: bool) -> anyhow::Result<i32> {
    if args.list_formats {
        for f in Format::ALL {
            println!("{f}");
        }
        return Ok(crate::exit::OK);
    }
    let plan = BuildPlan::from_args(&args)?;
    let inputs = config_input::read_inputs(&plan.files)?;
    let cfg = match config_input::load(&inputs) {
        Ok(cfg) => cfg,
        Err(diags) => {
            config_input::report(&diags);
            return Ok(crate::exit::FAILURE);
        }
    };
    if !args.dry_run {
        return super::build_run::execute(&plan, &cfg, quiet);
    }
    if args.json {
        config_input::print_config(&cfg, OutFormat::Json)?;
    } else {
        print!("{}", dry_run_yaml(&cfg)?);
    }
    let formats: Vec<&str> = plan.formats.iter().map(|f| f.name()).collect();
    let dest = match &plan.output {
        Output::Stdout => "stdout".to_string(),
        Output::File(p) => p.display().to_string(),
        Output::Dir { dir, name } => dir.join(name).display().to_string(),
    };
    let arch = plan.arch.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
    eprintln!("dry run: would build {} for {arch} into {dest}", formats.join(","));
    let privileged = baleen_build::privileges::yaml_grants(&cfg);
    if !privileged.is_empty() && !quiet {
        eprint!("{}", privilege_table(&privileged));
        eprintln!("(image labels may grant more: build reads them, --dry-run does not)");
    }
    Ok(crate::exit::OK)
}

/// The containers with host-level power, one row each (a second row when some grants come from
/// the YAML and others from the label), aligned, control characters escaped.
pub fn privilege_table(list: &[baleen_build::Privileged]) -> String {
    use baleen_spec::privileges::Origin;
    let mut rows: Vec<[String; 3]> = Vec::new();
    for p in list {
        let esc = |s: &str| crate::exit::escape_controls(s).into_owned();
        let mut name = esc(&format!("{}/{}", p.section, p.name));
        for origin in [Origin::Yaml, Origin::Label] {
            let grants: Vec<String> = p
                .grants
                .iter()
                .filter(|g| g.origin == origin)
                .map(|g| g.grant.to_string())
                .collect();
            if !grants.is_empty() {
                rows.push([std::mem::take(&mut name), origin.to_string(), esc(&grants.join(", "))]);
            }
        }
    }
    let width = rows.iter().map(|r| r[0].chars().count()).max().unwrap_or(0).max(9);
    let mut out = String::from("containers with host-level privileges:\n");
    out.push_str(&format!("  {:width$}  {:6} GRANTS\n", "CONTAINER", "SOURCE"));
    for [name, origin, grants] in rows {
        out.push_str(&format!("  {name:width$}  {origin:6} {grants}\n"));
    }
    out
}

/// The merged config as LinuxKit's `--dry-run` prints it: yaml.v3's 4-space indent, sequences
/// indented under their key (`validate` keeps the 2-space style of most YAML tools). A list
/// nested in a list item's mapping (`command:` of an onboot entry) comes out two columns deeper
/// than yaml.v3 puts it: serde-saphyr's emitter, still valid YAML that parses the same.
fn dry_run_yaml(cfg: &baleen_spec::Config) -> anyhow::Result<String> {
    let mut opts = serde_saphyr::SerializerOptions::default();
    opts.indent_step = 4;
    opts.compact_list_indent = false;
    anyhow::Context::context(
        serde_saphyr::to_string_with_options(cfg, opts),
        "serializing the config as YAML",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use clap::Parser;

    #[test]
    fn dry_run_yaml_uses_four_spaces_like_linuxkit() {
        let yaml = "kernel:\n  image: linuxkit/kernel:6.6\n  cmdline: console=ttyS0\ninit:\n  - linuxkit/init:1\nonboot:\n  - name: dhcpcd\n    image: linuxkit/dhcpcd:1\n    command: [\"/sbin/dhcpcd\", \"-1\"]\n";
        let src = baleen_spec::Source { name: "t.yml", text: yaml, template_dir: None };
        let cfg = baleen_spec::load_all(&[src], None).unwrap();
        let out = dry_run_yaml(&cfg).unwrap();
        for line in [
            "kernel:\n    image: linuxkit/kernel:6.6\n    cmdline: console=ttyS0\n",
            "init:\n    - linuxkit/init:1\n",
            "onboot:\n    - name: dhcpcd\n      image: linuxkit/dhcpcd:1\n      command:\n",
        ] {
            assert!(out.contains(line), "lacks {line:?} in:\n{out}");
        }
        // Round-trips through baleen's own parser.
        let src = baleen_spec::Source { name: "dry.yml", text: &out, template_dir: None };
        assert_eq!(baleen_spec::load_all(&[src], None).unwrap().onboot[0].name, "dhcpcd");
    }

    #[test]
    fn the_privilege_table_has_one_row_per_container_and_origin() {
        use baleen_spec::privileges::{Grant, Granted, Origin};
        let g = |grant, origin| Granted { grant, origin };
        let list = [
            baleen_build::Privileged {
                section: "onboot",
                index: 0,
                name: "sysctl".into(),
                image: "linuxkit/sysctl:1".into(),
                grants: vec![g(Grant::SysAdmin, Origin::Yaml)],
            },
            baleen_build::Privileged {
                section: "services",
                index: 2,
                name: "evil\x1b[2J".into(),
                image: "baleen/evil:1".into(),
                grants: vec![
                    g(Grant::AllCapabilities, Origin::Label),
                    g(
                        Grant::HostBind { source: "/".into(), destination: "/hostroot".into() },
                        Origin::Label,
                    ),
                    g(Grant::HostPid, Origin::Yaml),
                ],
            },
        ];
        assert_eq!(
            privilege_table(&list),
            "containers with host-level privileges:
  CONTAINER             SOURCE GRANTS
  onboot/sysctl         yaml   CAP_SYS_ADMIN
  services/evil\\x1b[2J  yaml   host pid namespace
                        label  all capabilities, bind / at /hostroot
"
        );
    }

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        b: BuildArgs,
    }

    fn plan(args: &[&str]) -> Result<BuildPlan, UsageError> {
        let t = T::try_parse_from(std::iter::once("build").chain(args.iter().copied())).unwrap();
        BuildPlan::from_args(&t.b)
    }

    #[test]
    fn defaults() {
        let p = plan(&["dir/sshd.yml"]).unwrap();
        assert_eq!(p.formats, [Format::KernelInitrd]);
        assert_eq!(p.output, Output::Dir { dir: ".".into(), name: "sshd".into() });
        assert_eq!(p.size_mib, None);
        assert!(p.sbom);
        assert_eq!(plan(&["-", "--o", "-"]).unwrap().formats, [Format::Tar]);
        assert_eq!(
            plan(&["-"]).unwrap().output,
            Output::Dir { dir: ".".into(), name: "moby".into() }
        );
    }

    #[test]
    fn formats_repeat_and_split_on_commas() {
        let p = plan(&["a.yml", "-f", "iso-bios,raw-efi", "--format", "kernel+initrd"]).unwrap();
        assert_eq!(p.formats, [Format::IsoBios, Format::RawEfi, Format::KernelInitrd]);
    }

    #[test]
    fn rejected_combinations() {
        assert!(plan(&["a.yml", "-f", "tar,iso-bios"]).is_err());
        assert!(plan(&["a.yml", "--o", "x.tar", "--name", "n"]).is_err());
        assert!(plan(&["a.yml", "--o", "x", "-f", "iso-bios"]).is_err());
        assert!(plan(&["a.yml", "--size", "big"]).is_err());
        assert_eq!(plan(&["a.yml", "--size", "2G"]).unwrap().size_mib, Some(2048));
    }

    #[test]
    fn max_size_and_max_expansion_set_or_lift_the_limits() {
        use baleen_build::limits::{Expansion, Limits, EXPANSION_FLOOR};
        assert_eq!(plan(&["a.yml"]).unwrap().limits, Limits::default());
        let p = plan(&["a.yml", "--max-size", "2G", "--max-expansion", "500"]).unwrap();
        assert_eq!(p.limits.max_tree_bytes, Some(2 << 30));
        assert_eq!(p.limits.expansion, Some(Expansion { ratio: 500, floor: EXPANSION_FLOOR }));
        let p = plan(&["a.yml", "--max-size", "none", "--max-expansion", "0"]).unwrap();
        assert_eq!(p.limits, Limits::NONE);
        assert_eq!(plan(&["a.yml", "--max-size", "0"]).unwrap().limits.max_tree_bytes, None);
        let err = plan(&["a.yml", "--max-expansion", "lots"]).unwrap_err().to_string();
        assert!(err.contains("--max-expansion `lots`"), "{err}");
        let err = plan(&["a.yml", "--max-size", "1X"]).unwrap_err().to_string();
        assert!(err.contains("--max-size `1X`"), "{err}");
    }

    #[test]
    fn signing_needs_both_files_and_a_format_with_a_uki() {
        let err = plan(&["a.yml", "-f", "uki", "--sign-key", "k.pem"]).unwrap_err();
        assert!(err.0.contains("--sign-key needs --sign-cert"), "{}", err.0);
        let err = plan(&["a.yml", "-f", "uki", "--sign-cert", "c.pem"]).unwrap_err();
        assert!(err.0.contains("--sign-cert needs --sign-key"), "{}", err.0);
        let both = ["--sign-key", "k.pem", "--sign-cert", "c.pem"];
        let err =
            plan(&[&["a.yml", "-f", "kernel+initrd,raw-bios"][..], &both].concat()).unwrap_err();
        assert!(err.0.contains("none of the formats kernel+initrd, raw-bios"), "{}", err.0);
        assert!(err.0.contains("raw-efi") && err.0.contains("uki"), "{}", err.0);
        let p = plan(&[&["a.yml", "-f", "kernel+initrd,raw-efi"][..], &both].concat()).unwrap();
        let want = baleen_build::Signing { key: "k.pem".into(), cert: "c.pem".into() };
        assert_eq!(p.sign, Some(want));
        assert_eq!(plan(&["a.yml"]).unwrap().sign, None);
    }

    #[test]
    fn verity_only_with_root_image_formats() {
        let err = plan(&["a.yml", "-f", "kernel+squashfs,raw-efi", "--verity"]).unwrap_err();
        assert!(err.0.contains("given --root squashfs|erofs; not raw-efi"), "{}", err.0);
        let err = plan(&["a.yml", "--verity"]).unwrap_err();
        assert!(err.0.ends_with("not kernel+initrd"), "the default format: {}", err.0);
        let p = plan(&["a.yml", "-f", "kernel+erofs", "--verity"]).unwrap();
        assert!(p.verity);
        assert!(!plan(&["a.yml", "-f", "kernel+erofs"]).unwrap().verity);
        let p = plan(&["a.yml", "-f", "raw-efi,qcow2-efi", "--root", "erofs", "--verity"]).unwrap();
        assert_eq!((p.verity, p.root), (true, Some(RootFs::Erofs)));
    }

    #[test]
    fn root_only_with_the_efi_disk_formats() {
        let p = plan(&["a.yml", "-f", "raw-efi", "--root", "squashfs"]).unwrap();
        assert_eq!((p.root, p.verity), (Some(RootFs::Squashfs), false));
        let err = plan(&["a.yml", "-f", "raw-efi,uki", "--root", "squashfs"]).unwrap_err();
        assert!(err.0.contains("only the EFI disk formats have (raw-efi, aws,"), "{}", err.0);
        assert!(err.0.ends_with("not uki"), "{}", err.0);
        let err = plan(&["a.yml", "--root", "erofs"]).unwrap_err();
        assert!(err.0.ends_with("not kernel+initrd"), "the default format: {}", err.0);
        assert_eq!(plan(&["a.yml", "-f", "raw-efi"]).unwrap().root, None);
    }
}
