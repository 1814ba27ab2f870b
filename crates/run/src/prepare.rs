//! From what the user asked ([`RunOptions`]) to a [`QemuPlan`]: detecting what PATH is, choosing
//! firmware, creating missing disks, writing the metadata CD-ROM, persisting the MAC address and
//! resolving the accelerator.
//!
//! Everything with a side effect on the host happens here, inside the VM's state directory
//! (`<prefix>-state` by default, as LinuxKit), so that [`QemuPlan::argv`] can stay pure.

use crate::accel::{self, AccelError};
use crate::flags::{AccelChoice, DiskSpec};
use crate::iso;
use crate::netboot::{self, NetbootError};
use crate::plan::{Arch, BootSource, Disk, Firmware, Networking, Publish, QemuPlan};
use crate::secure_boot::{self, SecureBoot, SecureBootError};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Forces a boot type instead of guessing it from PATH (`--kernel`, `--iso`, `--squashfs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootKind {
    Kernel,
    Squashfs,
    Iso,
    Disk,
    Uki,
}

/// Metadata handed to the guest on a CD-ROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    Inline(String),
    File(PathBuf),
}

/// The user's request, flags already parsed.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub path: PathBuf,
    /// The guest architecture; `None`: the output's own when its bytes say it
    /// ([`crate::guest_arch`]), else the host's.
    pub arch: Option<Arch>,
    pub cpus: u32,
    pub mem_mb: u64,
    pub disks: Vec<DiskSpec>,
    pub data: Option<DataSource>,
    pub networking: Networking,
    pub publish: Vec<Publish>,
    pub accel: AccelChoice,
    pub state_dir: Option<PathBuf>,
    pub boot_kind: Option<BootKind>,
    pub uefi: bool,
    pub fw: Option<PathBuf>,
    /// Boot under OVMF's Secure Boot build with these keys (`--secure-boot`, `--enroll`);
    /// `fw` and `uefi` are then not used.
    pub secure_boot: Option<SecureBoot>,
    pub gui: bool,
    pub devices: Vec<String>,
    /// Attach a software TPM 2.0 (`--tpm`).
    pub tpm: bool,
    /// A virtio-serial port for the QEMU guest agent, its socket in the state dir
    /// (`--guest-agent`).
    pub guest_agent: bool,
    /// Where the accelerator probe keeps its verdict; default `$XDG_CACHE_HOME/baleen`.
    pub cache_dir: Option<PathBuf>,
    /// `--netboot URL`: boot an empty VM from the network instead of `path`.
    pub netboot: Option<String>,
}

impl RunOptions {
    /// LinuxKit's defaults: 1 CPU, 1024 MiB, user networking, accel auto.
    pub fn new(path: impl Into<PathBuf>) -> RunOptions {
        RunOptions {
            path: path.into(),
            arch: None,
            cpus: 1,
            mem_mb: 1024,
            disks: Vec::new(),
            data: None,
            networking: Networking::User,
            publish: Vec::new(),
            accel: AccelChoice::Auto,
            state_dir: None,
            boot_kind: None,
            uefi: false,
            fw: None,
            secure_boot: None,
            gui: false,
            devices: Vec::new(),
            tpm: false,
            guest_agent: false,
            cache_dir: None,
            netboot: None,
        }
    }
}

/// Preparing a VM failed.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(
        "{path}: no such file, and no {path}-kernel either (PATH is a kernel+initrd prefix, an \
         ISO, a disk image or a UKI)"
    )]
    NotFound { path: PathBuf },
    #[error(
        "{path} is a directory: baleen run takes what `baleen build` wrote in one — a prefix such \
         as out/minimal (for out/minimal-kernel and out/minimal-initrd.img), an ISO, a disk \
         image or a UKI"
    )]
    IsDirectory { path: PathBuf },
    #[error("reading {path} to see what it is")]
    Sniff { path: PathBuf, source: std::io::Error },
    #[error(
        "{path} is not something qemu can boot: not an ISO 9660 image, a disk image (MBR or GPT, \
         qcow2, VHD, VMDK) or a UKI, nor a kernel+initrd prefix ({what}){hint}"
    )]
    NotBootable { path: PathBuf, what: String, hint: &'static str },
    #[error("{kernel} exists but {missing} does not (a kernel+initrd boot needs both)")]
    MissingPart { kernel: PathBuf, missing: PathBuf },
    #[error("reading the kernel command line {path}")]
    Cmdline { path: PathBuf, source: std::io::Error },
    #[error("creating the state directory {path}")]
    StateDir { path: PathBuf, source: std::io::Error },
    #[error(
        "no UEFI firmware found (looked for {searched}); install Debian's `ovmf` or pass --fw"
    )]
    NoFirmware { searched: String },
    #[error("copying the UEFI variable store {from} to {to}")]
    CopyVars { from: PathBuf, to: PathBuf, source: std::io::Error },
    #[error("--disk {path}: the file does not exist and no size= was given to create it")]
    DiskMissing { path: PathBuf },
    #[error("creating disk {path} with qemu-img: {detail}")]
    CreateDisk { path: PathBuf, detail: String },
    #[error("reading --data-file {path}")]
    DataFile { path: PathBuf, source: std::io::Error },
    #[error("writing the metadata CD-ROM {path}")]
    DataIso { path: PathBuf, source: std::io::Error },
    #[error("keeping the MAC address in {path}")]
    Mac { path: PathBuf, source: std::io::Error },
    #[error("reading random bytes from /dev/urandom")]
    Random(#[source] std::io::Error),
    #[error("--publish needs user networking (got --networking {networking})")]
    PublishNeedsUser { networking: String },
    #[error("choosing the accelerator")]
    Accel(#[source] AccelError),
    #[error("--secure-boot")]
    SecureBoot(#[source] SecureBootError),
    #[error("preparing the network boot")]
    Netboot(#[source] NetbootError),
}

/// The plan, and a notice for the user (e.g. the TCG fallback) when there is one.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub plan: QemuPlan,
    /// To print.
    pub notices: Vec<String>,
    /// Said before (a cached KVM verdict's fallback): for `-v` only.
    pub quiet_notices: Vec<String>,
}

/// What PATH names, before any file is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub boot: BootSource,
    /// True when the boot source needs UEFI firmware (UKI, `-efi` images).
    pub needs_uefi: bool,
    /// PATH without its format suffix; the default state dir is `<prefix>-state`.
    pub prefix: PathBuf,
}

/// Works out what PATH is, as LinuxKit does: a prefix with `PATH-kernel` (+ `-initrd.img`,
/// `-cmdline`, or `-squashfs.img`), `*.iso`, `*.efi` (a UKI), else a disk image.
pub fn detect(path: &Path, kind: Option<BootKind>) -> Result<Detected, PrepareError> {
    let text = path.to_string_lossy();
    // Accept the kernel (or initrd, or cmdline) file itself as well as the prefix.
    let prefix_text =
        ["-kernel", "-initrd.img", "-cmdline", "-squashfs.img", "-erofs.img", "-root-initrd.img"]
            .iter()
            .find_map(|s| text.strip_suffix(s))
            .unwrap_or(&text);
    let prefix = PathBuf::from(prefix_text);
    let with = |suffix: &str| PathBuf::from(format!("{prefix_text}{suffix}"));
    let kernel = with("-kernel");
    let kernel_boot = match kind {
        Some(BootKind::Kernel | BootKind::Squashfs) => true,
        Some(_) => false,
        None => kernel.is_file() && (!path.is_file() || prefix != path),
    };
    if kernel_boot {
        if !kernel.is_file() {
            return Err(PrepareError::NotFound { path: path.to_owned() });
        }
        let cmdline_path = with("-cmdline");
        let cmdline = match std::fs::read_to_string(&cmdline_path) {
            Ok(s) => s.trim().to_owned(),
            // LinuxKit requires the file; a serial console is the useful default without it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "console=ttyS0".to_owned(),
            Err(source) => return Err(PrepareError::Cmdline { path: cmdline_path, source }),
        };
        // kernel+squashfs, kernel+erofs, then (after kernel+initrd) kernel+iso; baleen's
        // stage-1 initrd rides along when the build wrote one.
        let stage1 = Some(with("-root-initrd.img")).filter(|p| p.is_file());
        let root = |squashfs: PathBuf, cdrom: bool, cmdline: String| BootSource::Squashfs {
            kernel: kernel.clone(),
            squashfs,
            cmdline,
            initrd: stage1.clone(),
            cdrom,
        };
        let squashfs = with("-squashfs.img");
        let erofs = with("-erofs.img");
        let image = if squashfs.is_file() || kind == Some(BootKind::Squashfs) {
            Some(squashfs)
        } else {
            Some(erofs).filter(|e| e.is_file() && kind.is_none())
        };
        if let Some(image) = image.filter(|_| kind != Some(BootKind::Kernel)) {
            if !image.is_file() {
                return Err(PrepareError::MissingPart { kernel, missing: image });
            }
            return Ok(Detected { boot: root(image, false, cmdline), needs_uefi: false, prefix });
        }
        let initrd = with("-initrd.img");
        let iso = with(".iso");
        if !initrd.is_file() && kind.is_none() && stage1.is_some() && iso.is_file() {
            return Ok(Detected { boot: root(iso, true, cmdline), needs_uefi: false, prefix });
        }
        if !initrd.is_file() {
            return Err(PrepareError::MissingPart { kernel, missing: initrd });
        }
        return Ok(Detected {
            boot: BootSource::KernelInitrd { kernel, initrd, cmdline },
            needs_uefi: false,
            prefix,
        });
    }
    if path.is_dir() {
        return Err(PrepareError::IsDirectory { path: path.to_owned() });
    }
    if !path.is_file() {
        return Err(PrepareError::NotFound { path: path.to_owned() });
    }
    // What the bytes say: an explicit --iso/--uefi-style kind is the user's word, otherwise a
    // file that is no bootable image (a YAML file, a log) is refused before qemu sits at
    // "No bootable device".
    let content = match kind {
        Some(_) => None,
        None => Some(sniff(path)?),
    };
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
    let stem = path.with_extension("");
    // LinuxKit's EFI names: `B-efi.img`, `B-efi.qcow2`, `B-efi.iso`, `B-efi-initrd.iso`.
    let stem_text = stem.to_string_lossy();
    let named_efi = stem_text.ends_with("-efi") || stem_text.ends_with("-efi-initrd");
    let kind = kind.unwrap_or(match (ext.as_deref(), content) {
        (_, Some(Content::Iso)) | (Some("iso"), _) => BootKind::Iso,
        (_, Some(Content::Uki)) | (Some("efi"), _) => BootKind::Uki,
        _ => BootKind::Disk,
    });
    let (boot, needs_uefi) = match kind {
        BootKind::Iso => (BootSource::Iso(path.to_owned()), named_efi),
        BootKind::Uki => (BootSource::Uki(path.to_owned()), true),
        _ => {
            // The name, never the bytes, picks an image format that can name other files
            // (a qcow2 backing or data file, a VMDK extent): a hostile `disk.img` must not make
            // qemu open host files. The content only decides whether PATH boots at all.
            let format = match ext.as_deref() {
                Some("qcow2") => "qcow2",
                Some("vhd") => "vpc",
                Some("vmdk") => "vmdk",
                _ => "raw",
            };
            (BootSource::Disk { path: path.to_owned(), format: format.into() }, named_efi)
        }
    };
    Ok(Detected { boot, needs_uefi, prefix: stem })
}

/// The accelerator's notice goes to the user once, when the probe ran; a cached verdict's is
/// for `-v` (it printed on every run).
fn split_notices(resolved: accel::Resolved) -> (Vec<String>, Vec<String>) {
    match (resolved.notice, resolved.cached) {
        (Some(n), false) => (vec![n], Vec::new()),
        (Some(n), true) => (Vec::new(), vec![n]),
        (None, _) => (Vec::new(), Vec::new()),
    }
}

/// What the first bytes of an image file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    Iso,
    Uki,
    Qcow2,
    Vhd,
    Vmdk,
    /// An MBR boot signature (raw disks, GPT's protective MBR).
    RawDisk,
}

/// Reads the magic numbers of `path`: ISO 9660's `CD001` at 32769 (before the MBR signature a
/// hybrid ISO also has), qcow2's `QFI\xfb`, VMDK's `KDMV` or descriptor, VHD's `conectix`
/// (first sector for dynamic, last for fixed), a PE (`MZ` … `PE\0\0`: a UKI), an MBR's
/// `55 AA`. A kernel alone (ELF, bzImage's `HdrS`) and anything else are refused, saying what
/// the file looks like.
fn sniff(path: &Path) -> Result<Content, PrepareError> {
    use std::io::{Seek, SeekFrom};
    let err = |source| PrepareError::Sniff { path: path.to_owned(), source };
    let mut f = std::fs::File::open(path).map_err(err)?;
    let len = f.metadata().map_err(err)?.len();
    let mut head = Vec::with_capacity(34 * 1024);
    (&mut f).take(34 * 1024).read_to_end(&mut head).map_err(err)?;
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    let le32 =
        |off: usize| head.get(off..off + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let content = if at(32769, b"CD001") {
        Some(Content::Iso)
    } else if at(0, b"QFI\xfb") {
        Some(Content::Qcow2)
    } else if at(0, b"KDMV") || at(0, b"# Disk DescriptorFile") {
        Some(Content::Vmdk)
    } else if at(0, b"conectix") {
        Some(Content::Vhd)
    } else if at(0, b"MZ")
        && le32(0x3c).and_then(|o| usize::try_from(o).ok()).is_some_and(|o| at(o, b"PE\0\0"))
    {
        Some(Content::Uki)
    } else if at(0, b"\x7fELF") || at(0x202, b"HdrS") {
        let what = "it is a kernel by itself".to_owned();
        let hint = "; boot the prefix `baleen build` wrote beside it: PREFIX for \
                    PREFIX-kernel, PREFIX-initrd.img and PREFIX-cmdline";
        return Err(PrepareError::NotBootable { path: path.to_owned(), what, hint });
    } else if at(510, &[0x55, 0xaa]) {
        Some(Content::RawDisk)
    } else {
        None
    };
    if let Some(c) = content {
        return Ok(c);
    }
    if len >= 512 {
        let mut footer = [0u8; 8];
        f.seek(SeekFrom::Start(len - 512)).map_err(err)?;
        f.read_exact(&mut footer).map_err(err)?;
        if &footer == b"conectix" {
            return Ok(Content::Vhd);
        }
    }
    let shown: String =
        head.iter().take(16).flat_map(|b| std::ascii::escape_default(*b)).map(char::from).collect();
    let what = if head.is_empty() {
        "it is empty".to_owned()
    } else {
        format!("it starts with \"{shown}\"")
    };
    let text = !head.is_empty() && head.iter().take(4096).all(|b| b.is_ascii() && *b != 0);
    let hint = if text {
        "; a YAML file is built first: `baleen build FILE.yml`, then `baleen run NAME`"
    } else {
        ""
    };
    Err(PrepareError::NotBootable { path: path.to_owned(), what, hint })
}

/// Prepares the state directory and everything in it, and returns the plan.
pub fn prepare(opts: &RunOptions) -> Result<Prepared, PrepareError> {
    let mut url_notice = None;
    let detected = match &opts.netboot {
        Some(url) => {
            let (detected, notice) = netboot_source(opts, url).map_err(PrepareError::Netboot)?;
            url_notice = notice;
            detected
        }
        None => detect(&opts.path, opts.boot_kind)?,
    };
    let arch =
        opts.arch.or_else(|| crate::guest_arch::of_boot(&detected.boot)).unwrap_or_else(Arch::host);
    if !opts.publish.is_empty() && opts.networking != Networking::User {
        let networking = match &opts.networking {
            Networking::User => "user".to_owned(),
            Networking::None => "none".to_owned(),
            Networking::Tap(i) => format!("tap,{i}"),
            Networking::Bridge(b) => format!("bridge,{b}"),
        };
        return Err(PrepareError::PublishNeedsUser { networking });
    }
    if opts.secure_boot.is_some() {
        secure_boot::check_efi(&opts.path, &detected, arch).map_err(PrepareError::SecureBoot)?;
    }
    let state_dir = opts
        .state_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}-state", detected.prefix.to_string_lossy())));
    std::fs::create_dir_all(&state_dir)
        .map_err(|source| PrepareError::StateDir { path: state_dir.clone(), source })?;

    let firmware = if let Some(keys) = &opts.secure_boot {
        secure_boot::firmware(keys, Path::new(secure_boot::OVMF_DIR), &state_dir)
            .map_err(PrepareError::SecureBoot)?
    } else if opts.uefi || detected.needs_uefi || opts.fw.is_some() {
        uefi_firmware(arch, opts.fw.as_deref(), &state_dir)?
    } else {
        Firmware::Bios
    };
    let disks = prepare_disks(&opts.disks, &state_dir)?;
    let data_iso = match &opts.data {
        None => None,
        Some(src) => {
            let bytes = match src {
                DataSource::Inline(s) => s.clone().into_bytes(),
                DataSource::File(p) => std::fs::read(p)
                    .map_err(|source| PrepareError::DataFile { path: p.clone(), source })?,
            };
            let path = state_dir.join("data.iso");
            let file = std::fs::File::create(&path)
                .map_err(|source| PrepareError::DataIso { path: path.clone(), source })?;
            iso::write_data_iso(&bytes, std::io::BufWriter::new(file))
                .map_err(|source| PrepareError::DataIso { path: path.clone(), source })?;
            Some(path)
        }
    };
    let mac = persistent_mac(&state_dir)?;
    let uuid = random_uuid()?;
    let cache_dir = opts.cache_dir.clone().unwrap_or_else(|| default_cache_dir(&state_dir));
    let resolved = accel::resolve(opts.accel, arch, &cache_dir).map_err(PrepareError::Accel)?;
    let plan = QemuPlan {
        arch,
        cpus: opts.cpus,
        mem_mb: opts.mem_mb,
        boot: detected.boot,
        firmware,
        disks,
        data_iso,
        networking: opts.networking.clone(),
        publish: opts.publish.clone(),
        mac,
        uuid,
        accel: resolved.accel,
        state_dir,
        gui: opts.gui,
        devices: opts.devices.clone(),
        tpm: opts.tpm,
        guest_agent: opts.guest_agent,
    };
    let (mut notices, quiet_notices) = split_notices(resolved);
    notices.extend(url_notice);
    Ok(Prepared { plan, notices, quiet_notices })
}

/// `--netboot URL`: the network boot source, its default state directory (under the cache
/// directory, one per URL, so the MAC persists), and a notice when the URL was rewritten.
fn netboot_source(
    opts: &RunOptions,
    url: &str,
) -> Result<(Detected, Option<String>), NetbootError> {
    if opts.networking != Networking::User {
        let networking = match &opts.networking {
            Networking::User | Networking::None => "none".to_owned(),
            Networking::Tap(i) => format!("tap,{i}"),
            Networking::Bridge(b) => format!("bridge,{b}"),
        };
        return Err(NetbootError::NeedsUserNetworking { networking });
    }
    netboot::find_rom()?;
    let guest = netboot::guest_url(url)?;
    let notice = (guest != url).then(|| {
        format!("--netboot: the guest fetches {guest} (the host's loopback on qemu's user network)")
    });
    use sha2::Digest;
    let hash = sha2::Sha256::digest(url.as_bytes());
    let short: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let base = opts.cache_dir.clone().unwrap_or_else(|| default_cache_dir(&std::env::temp_dir()));
    let prefix = base.join(format!("netboot-{short}"));
    let boot = BootSource::Network { url: guest };
    Ok((Detected { boot, needs_uefi: false, prefix }, notice))
}

/// `$XDG_CACHE_HOME/baleen`, `~/.cache/baleen`, or `fallback` when neither is known: where
/// the KVM verdict, network boots' state and `run oci://` systems live.
pub fn default_cache_dir(fallback: &Path) -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("baleen"))
        .unwrap_or_else(|| fallback.to_owned())
}

/// Firmware pairs (code, vars) in order of preference, then single-file images.
const OVMF_PAIRS: &[(&str, &str)] = &[
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
    ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"),
];
const OVMF_SINGLE: &[&str] = &["/usr/share/ovmf/OVMF.fd", "/usr/share/qemu/OVMF.fd"];
const AAVMF_PAIRS: &[(&str, &str)] =
    &[("/usr/share/AAVMF/AAVMF_CODE.fd", "/usr/share/AAVMF/AAVMF_VARS.fd")];

fn uefi_firmware(arch: Arch, fw: Option<&Path>, state: &Path) -> Result<Firmware, PrepareError> {
    let vars_copy = |vars: &Path| -> Result<PathBuf, PrepareError> {
        let name = vars.file_name().map(PathBuf::from).unwrap_or_else(|| "OVMF_VARS.fd".into());
        let to = state.join(name);
        // Kept across runs of the same VM (boot entries persist), fresh for a new state dir.
        if !to.exists() {
            std::fs::copy(vars, &to).map_err(|source| PrepareError::CopyVars {
                from: vars.to_owned(),
                to: to.clone(),
                source,
            })?;
        }
        Ok(to)
    };
    if let Some(fw) = fw {
        // A CODE image is paired with its VARS sibling when there is one.
        let name = fw.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.contains("CODE") {
            let vars = fw.with_file_name(name.replace("CODE", "VARS"));
            if vars.is_file() {
                return Ok(Firmware::Uefi { code: fw.to_owned(), vars: Some(vars_copy(&vars)?) });
            }
        }
        return Ok(Firmware::Uefi { code: fw.to_owned(), vars: None });
    }
    let (pairs, singles) = match arch {
        Arch::X86_64 => (OVMF_PAIRS, OVMF_SINGLE),
        Arch::Aarch64 => (AAVMF_PAIRS, &[][..]),
    };
    for (code, vars) in pairs {
        if Path::new(code).is_file() && Path::new(vars).is_file() {
            return Ok(Firmware::Uefi {
                code: code.into(),
                vars: Some(vars_copy(Path::new(vars))?),
            });
        }
    }
    for single in singles {
        if Path::new(single).is_file() {
            return Ok(Firmware::Uefi { code: single.into(), vars: None });
        }
    }
    let searched = pairs.iter().map(|(c, _)| *c).chain(singles.iter().copied()).collect::<Vec<_>>();
    Err(PrepareError::NoFirmware { searched: searched.join(", ") })
}

/// Applies LinuxKit's disk defaults and creates missing disk files with `qemu-img create`.
fn prepare_disks(specs: &[DiskSpec], state: &Path) -> Result<Vec<Disk>, PrepareError> {
    let mut disks = Vec::new();
    let mut unnamed = 0;
    for spec in specs {
        let path = match &spec.path {
            Some(p) => p.clone(),
            None => {
                let name =
                    if unnamed == 0 { "disk.img".into() } else { format!("disk{unnamed}.img") };
                unnamed += 1;
                state.join(name)
            }
        };
        let format = spec.format.clone().or_else(|| spec.size_mb.map(|_| "qcow2".to_owned()));
        if !path.exists() {
            let Some(size) = spec.size_mb else {
                return Err(PrepareError::DiskMissing { path });
            };
            let fmt = format.clone().unwrap_or_else(|| "qcow2".into());
            create_disk(&path, &fmt, size)?;
        }
        disks.push(Disk { path, format, size_mb: spec.size_mb });
    }
    Ok(disks)
}

fn create_disk(path: &Path, format: &str, size_mb: u64) -> Result<(), PrepareError> {
    let err = |detail: String| PrepareError::CreateDisk { path: path.to_owned(), detail };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| err(format!("creating {}: {e}", parent.display())))?;
    }
    let out = Command::new("qemu-img")
        .args(["create", "-q", "-f", format])
        .arg(path)
        .arg(format!("{size_mb}M"))
        .output()
        .map_err(|e| err(format!("starting qemu-img (Debian package qemu-utils): {e}")))?;
    if !out.status.success() {
        return Err(err(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
    }
    Ok(())
}

fn random_bytes<const N: usize>() -> Result<[u8; N], PrepareError> {
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(PrepareError::Random)?;
    Ok(b)
}

fn random_uuid() -> Result<String, PrepareError> {
    let mut b = random_bytes::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
}

/// The VM's MAC: read from `<state>/mac-addr`, or a new random locally administered unicast
/// address written there (mode 0640, as LinuxKit), so DHCP leases survive restarts.
fn persistent_mac(state: &Path) -> Result<String, PrepareError> {
    let path = state.join("mac-addr");
    let err = |source| PrepareError::Mac { path: path.clone(), source };
    match std::fs::read_to_string(&path) {
        Ok(s) if is_mac(s.trim()) => return Ok(s.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let mut b = random_bytes::<6>()?;
    b[0] = (b[0] & 0xfe) | 0x02;
    let mac = b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":");
    std::fs::write(&path, format!("{mac}\n")).map_err(err)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).map_err(err)?;
    Ok(mac)
}

fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && u8::from_str_radix(p, 16).is_ok())
}

#[cfg(test)]
#[path = "prepare_tests.rs"]
mod tests;
