//! `baleen run [qemu] PATH`: boot an output locally, LinuxKit's flags.

use super::cache::RegistryFlags;
use anyhow::{Context, Result};
use baleen_run::flags::{parse_accel, parse_networking, parse_publish, parse_timeout};
use baleen_run::{
    AccelChoice, Arch, BootKind, DataSource, DiskSpec, Networking, PrepareError, Publish,
    RunConfig, RunOptions, SecureBoot, SecureBootError, StdinMode, Vm,
};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

const AFTER_HELP: &str = "\
PATH is what `baleen build` (or `linuxkit build`) wrote:
  out/name            a kernel+initrd prefix: out/name-kernel, out/name-initrd.img and
                      out/name-cmdline (out/name-kernel itself works too); with
                      out/name-squashfs.img instead of the initrd, a squashfs root
  name.iso            an ISO, booted from the CD-ROM (name-efi.iso: under UEFI)
  name.efi            a unified kernel image, started by OVMF (UEFI)
  name.raw/.img/.qcow2/.vhd/.vmdk
                      a disk image, as disk 0 (a name ending in -efi, or --uefi: UEFI)
  oci://REF           a system `baleen push oci` stored in a registry: pulled as `baleen pull`
                      does (verified, through the image store) into
                      ~/.cache/baleen/systems/<digest>/, then booted from there

Network boot: `--netboot URL` (no PATH) starts an empty VM whose NIC's iPXE ROM (Debian's
ipxe-qemu) gets URL as its DHCP boot file from qemu's user network and fetches it (http:// or
tftp://; an iPXE script as `baleen serve` writes, or a kernel). A URL on 127.0.0.1 or
localhost is rewritten to 10.0.2.2, the host as the guest sees it. The state directory is
~/.cache/baleen/netboot-<hash of URL>-state.

The console is the VM's serial port, on this terminal and in <state>/console.log
(--console-file). Type into it directly, as with qemu -nographic: Ctrl-C goes to the guest
(it interrupts the guest's command), Ctrl-A X quits qemu, Ctrl-A C switches to qemu's
monitor and back, Ctrl-A H lists these keys. SIGINT or SIGTERM to baleen presses the VM's
ACPI power button first (onshutdown runs), then stops qemu after 15 s.
The state directory (default: PATH's prefix + \"-state\") keeps the MAC address, created
disks, the UEFI variable store, data.iso and qemu.pid between runs.

Acceleration: `--accel auto` uses KVM only when a probe guest really runs under it (the
verdict is cached in ~/.cache/baleen) and otherwise falls back to TCG with a one-line
notice; `--accel tcg` never touches /dev/kvm.

Exit status:
  0      the guest powered off cleanly (every onboot container exited 0)
  N      baleen-init reported `poweroff status N` (e.g. 1: an onboot container failed; its
         name is in the message), on the console or through isa-debug-exit (qemu's (N<<1)|1)
  1      qemu could not start, the guest kernel panicked, or the firmware found nothing
         to boot or refused it under --secure-boot (a PATH that is no image is refused
         before qemu starts)
  2      a usage error, e.g. --secure-boot for an output UEFI cannot start (kernel+initrd,
         raw-bios, qcow2-bios, iso-bios)
  124    --timeout expired; the VM was stopped
  130    interrupted (SIGINT or SIGTERM to baleen); the VM was stopped

Secure Boot: `--secure-boot` boots an EFI output under OVMF_CODE_4M.secboot.fd (SMM on) with
its own variable store in the state directory: a copy of OVMF_VARS_4M.ms.fd (Microsoft's
keys), or with `--enroll CERT.pem` one baleen writes with that certificate as PK, KEK and db.
An EFI binary the keys do not allow (unsigned, signed by another key, or changed since) is
refused by the firmware (\"Access Denied\"); baleen then stops the VM and exits 1.

Examples:
  baleen run out/minimal
  baleen run qemu --accel tcg --timeout 2m --measure out/minimal
  baleen run --mem 2048 --disk size=4G --publish 8080:80 out/webserver
  baleen run --detached --state /tmp/vm1 out/sshd.iso
  baleen run --secure-boot --enroll db.crt out/signed-efi.img
  baleen run oci://registry.example/sys/minimal:1
  baleen run --netboot http://127.0.0.1:8080/minimal.ipxe";

/// Boot a kernel+initrd, ISO, disk image or UKI in qemu, console on this terminal.
#[derive(Debug, Args)]
#[command(after_long_help = AFTER_HELP, override_usage = "baleen run [OPTIONS] [qemu] <PATH>\n       baleen run [OPTIONS] --netboot <URL>")]
pub struct RunArgs {
    /// An optional backend (only `qemu` for now) and the output to boot (or `oci://REF`, a
    /// system in a registry); see below.
    #[arg(value_name = "[qemu] PATH", num_args = 1..=2, required_unless_present = "netboot")]
    target: Vec<PathBuf>,
    /// Boot an empty VM from the network instead of PATH: its NIC's iPXE ROM fetches URL
    /// (http:// or tftp://, e.g. what `baleen serve` prints); 127.0.0.1 becomes 10.0.2.2.
    #[arg(long, value_name = "URL", conflicts_with_all = ["kernel", "iso", "squashfs", "secure_boot"])]
    netboot: Option<String>,
    #[command(flatten)]
    store: super::store::StoreArgs,
    #[command(flatten)]
    registry: RegistryFlags,
    /// Virtual CPUs.
    #[arg(long, default_value_t = 1)]
    cpus: u32,
    /// Memory in MiB.
    #[arg(long, default_value_t = 1024)]
    mem: u64,
    /// An extra disk, `[file=]PATH[,size=N[M|G]][,format=F]` (repeatable). Missing files are
    /// created with qemu-img (size in GiB unless M; qcow2 unless format=); without a path the
    /// disk is <state>/disk.img, disk1.img…
    #[arg(long, value_name = "SPEC", value_parser = DiskSpec::parse)]
    disk: Vec<DiskSpec>,
    /// Metadata for the guest, as a file `config` on a CD-ROM (read by pkg/metadata).
    #[arg(long, conflicts_with = "data_file")]
    data: Option<String>,
    /// Like --data, from a file.
    #[arg(long, value_name = "FILE")]
    data_file: Option<PathBuf>,
    /// Forward a host port to the guest, `HOST:GUEST[/tcp|/udp]` (repeatable; user networking).
    #[arg(long, value_name = "HOST:GUEST", value_parser = parse_publish)]
    publish: Vec<Publish>,
    /// `user` (qemu's built-in NAT, default), `none`, `tap,IFNAME` or `bridge,BRIDGE`.
    #[arg(long, default_value = "user", value_parser = parse_networking)]
    networking: Networking,
    /// `auto` (KVM when it really works, else TCG), `kvm` or `tcg`.
    #[arg(long, default_value = "auto", value_parser = parse_accel)]
    accel: AccelChoice,
    /// The VM's state directory [default: PATH's prefix + "-state"].
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Start the VM in the background, console to the console file, and return its pid.
    #[arg(long)]
    detached: bool,
    /// Also write the console here [default: <state>/console.log].
    #[arg(long, value_name = "FILE")]
    console_file: Option<PathBuf>,
    /// PATH is a kernel+initrd prefix, whatever its name.
    #[arg(long, conflicts_with_all = ["iso", "squashfs"])]
    kernel: bool,
    /// PATH is an ISO, whatever its name.
    #[arg(long, conflicts_with = "squashfs")]
    iso: bool,
    /// PATH is a kernel+squashfs prefix.
    #[arg(long)]
    squashfs: bool,
    /// Boot with UEFI firmware (OVMF) instead of BIOS.
    #[arg(long)]
    uefi: bool,
    /// UEFI firmware to use (implies --uefi) [default: Debian's OVMF_CODE_4M.fd with a copy of
    /// OVMF_VARS_4M.fd in the state dir].
    #[arg(long, value_name = "FILE")]
    fw: Option<PathBuf>,
    /// Boot under OVMF's Secure Boot build (SMM, Secure Boot enforcing), with Microsoft's keys
    /// enrolled (Debian's OVMF_VARS_4M.ms.fd) unless --enroll names a certificate. EFI outputs
    /// only (uki, raw-efi, qcow2-efi, iso-efi, iso-efi-initrd and the hybrid disks).
    #[arg(long, conflicts_with = "fw")]
    secure_boot: bool,
    /// With --secure-boot: enroll this PEM X.509 certificate as PK, KEK and db (and no other),
    /// so that only EFI binaries it signed start. The store is rewritten at every run.
    #[arg(long, value_name = "CERT.pem", requires = "secure_boot")]
    enroll: Option<PathBuf>,
    /// Guest architecture [default: the output's own, read from its kernel, UKI or ESP; else
    /// the host's]. aarch64 runs qemu-system-aarch64 (virt machine, AAVMF for EFI outputs).
    #[arg(long, value_enum)]
    arch: Option<ArchArg>,
    /// Open a graphical window; the console is then not on this terminal.
    #[arg(long)]
    gui: bool,
    /// An extra qemu `-device` value (repeatable).
    #[arg(long, value_name = "DEVICE")]
    device: Vec<String>,
    /// Attach a TPM 2.0 (swtpm, Debian package swtpm), its state kept in the state dir.
    #[arg(long)]
    tpm: bool,
    /// Give the guest a virtio-serial port for the QEMU guest agent (pkg/qemu-guest-agent);
    /// the host end is the Unix socket STATE/qga.sock.
    #[arg(long)]
    guest_agent: bool,
    /// Stop the VM after this long (`90`, `90s`, `5m`) and exit 124.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    timeout: Option<Duration>,
    /// Print the boot timeline from baleen-init's console lines (kernel→init, init→each
    /// service, total) on stderr once services started.
    #[arg(long)]
    measure: bool,
    /// Exit 1 when the boot misses a time budget: MILESTONE=TIME[,...] with milestones `init`
    /// (init started), `onboot` (every onboot container exited) and `services` (every service
    /// started), each from the kernel's start on the guest's clock (as --measure prints it);
    /// times like 2s, 1500ms, 1m. A milestone never reached misses. Repeatable. The VM runs
    /// as usual; the check is made when it ends. Example: --budget services=2s
    #[arg(long, value_name = "MILESTONE=TIME,...")]
    budget: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ArchArg {
    #[value(name = "x86_64", alias = "amd64")]
    X86_64,
    #[value(name = "aarch64", alias = "arm64")]
    Aarch64,
}

/// The flags as [`RunOptions`], plus what only the CLI uses.
struct Parsed {
    opts: RunOptions,
    /// PATH was `oci://REF`: REF, to fetch before preparing (opts.path is then set).
    oci: Option<String>,
    /// `--arch` was given (else an artifact's recorded architecture is used).
    arch_given: bool,
    cache: PathBuf,
    registry: RegistryFlags,
    detached: bool,
    console_file: Option<PathBuf>,
    timeout: Option<Duration>,
    measure: bool,
    budget: baleen_run::budget::TimeBudget,
}

fn parse(args: RunArgs) -> Result<Parsed> {
    let path = match (args.target.as_slice(), &args.netboot) {
        ([], Some(_)) => PathBuf::new(),
        ([backend], Some(_)) if backend.as_os_str() == "qemu" => PathBuf::new(),
        (_, Some(_)) => {
            return Err(crate::exit::UsageError(
                "--netboot boots from the network: give it no PATH".into(),
            )
            .into())
        }
        (target, None) => backend_and_path(target)?,
    };
    let oci = path.to_str().and_then(|p| p.strip_prefix("oci://")).map(str::to_owned);
    let mut opts = RunOptions::new(path.clone());
    opts.netboot = args.netboot;
    let arch_given = args.arch.is_some();
    opts.arch = args.arch.map(|a| match a {
        ArchArg::X86_64 => Arch::X86_64,
        ArchArg::Aarch64 => Arch::Aarch64,
    });
    opts.cpus = args.cpus;
    opts.mem_mb = args.mem;
    opts.disks = args.disk;
    opts.data = match (args.data, args.data_file) {
        (Some(s), _) => Some(DataSource::Inline(s)),
        (None, Some(f)) => Some(DataSource::File(f)),
        (None, None) => None,
    };
    opts.networking = args.networking;
    opts.publish = args.publish;
    opts.accel = args.accel;
    opts.state_dir = args.state;
    opts.boot_kind = if args.kernel {
        Some(BootKind::Kernel)
    } else if args.iso {
        Some(BootKind::Iso)
    } else if args.squashfs {
        Some(BootKind::Squashfs)
    } else {
        None
    };
    opts.uefi = args.uefi;
    opts.fw = args.fw;
    opts.secure_boot = match (args.secure_boot, args.enroll) {
        (false, _) => None,
        (true, None) => Some(SecureBoot::MicrosoftKeys),
        (true, Some(cert)) => Some(SecureBoot::Enroll(cert)),
    };
    opts.gui = args.gui;
    opts.devices = args.device;
    opts.tpm = args.tpm;
    opts.guest_agent = args.guest_agent;
    let mut budget = baleen_run::budget::TimeBudget::default();
    for v in &args.budget {
        budget.parse_into(v).map_err(|e| crate::exit::UsageError(e.to_string()))?;
    }
    if args.detached && !budget.is_empty() {
        return Err(crate::exit::UsageError(
            "--budget needs the console: it cannot be combined with --detached".into(),
        )
        .into());
    }
    Ok(Parsed {
        opts,
        oci,
        arch_given,
        cache: args.store.dir(),
        registry: args.registry,
        detached: args.detached,
        console_file: args.console_file,
        timeout: args.timeout,
        measure: args.measure,
        budget,
    })
}

/// `[qemu] PATH` as the user wrote it: the path.
fn backend_and_path(target: &[PathBuf]) -> Result<PathBuf> {
    match target {
        [path] => Ok(path.clone()),
        [backend, path] if backend.as_os_str() == "qemu" => Ok(path.clone()),
        [backend, _] => Err(crate::exit::UsageError(format!(
            "unknown run backend {:?}: only `qemu` is supported",
            backend.to_string_lossy()
        ))
        .into()),
        _ => unreachable!("clap takes one or two values"),
    }
}

pub fn run(args: RunArgs) -> Result<i32> {
    let Parsed {
        mut opts,
        oci,
        arch_given,
        cache,
        registry,
        detached,
        console_file,
        timeout,
        measure,
        budget,
    } = parse(args)?;
    if let Some(reference) = &oci {
        // An index's entry: for --arch, else the host's (what `run` boots without --arch when
        // no file says otherwise).
        let platform = match opts.arch {
            Some(Arch::Aarch64) => baleen_oci::Platform::new("linux", "arm64", None),
            Some(Arch::X86_64) => baleen_oci::Platform::new("linux", "amd64", None),
            None => baleen_oci::Platform::host(),
        };
        let fetched = super::pull::fetch_for_run(reference, &platform, cache, &registry, false)
            .with_context(|| format!("fetching oci://{reference}"))?;
        opts.path = fetched.path;
        match fetched.arch.as_deref() {
            Some("amd64") if !arch_given => opts.arch = Some(Arch::X86_64),
            Some("arm64") if !arch_given => opts.arch = Some(Arch::Aarch64),
            _ => {}
        }
    }
    let path = match &opts.netboot {
        Some(url) => PathBuf::from(url),
        None => opts.path.clone(),
    };
    let prepared = match baleen_run::prepare(&opts) {
        Ok(p) => p,
        // An output Secure Boot cannot start is a wrong command line, not a failed boot.
        Err(PrepareError::SecureBoot(e @ SecureBootError::NotEfi { .. })) => {
            return Err(crate::exit::UsageError(format!("--secure-boot: {e}")).into())
        }
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context(format!("preparing to boot {}", path.display()))
            )
        }
    };
    for notice in &prepared.notices {
        eprintln!("{notice}");
    }
    for notice in &prepared.quiet_notices {
        tracing::info!("{notice}");
    }
    let plan = prepared.plan;

    if detached {
        let pid = baleen_run::start_detached(&plan, console_file.as_deref())
            .with_context(|| format!("starting {}", path.display()))?;
        let console = console_file.unwrap_or_else(|| plan.state_dir.join("console.log"));
        println!("{pid}");
        eprintln!(
            "VM started in the background (pid {pid}); console in {}; stop it with `kill {pid}`",
            console.display()
        );
        return Ok(crate::exit::OK);
    }

    let config = RunConfig {
        echo: !plan.gui,
        console_file,
        stdin: StdinMode::Inherit,
        timeout,
        handle_signals: true,
        measure,
    };
    let mut vm = Vm::start(&plan, config).with_context(|| format!("booting {}", path.display()))?;
    let outcome = vm.wait().with_context(|| format!("running {}", path.display()))?;
    if let Some(msg) = &outcome.verdict.message {
        eprintln!("baleen run: {msg} (console: {})", outcome.console_file.display());
    }
    let missed = baleen_run::budget::check(&budget, outcome.watch.timeline().as_ref());
    if let Err(table) = &missed {
        eprintln!("baleen run: {table}");
    }
    Ok(exit_with_budget(outcome.verdict.code, missed.is_ok()))
}

/// A run that ended well but missed a time budget exits 1; any other failure keeps its own code.
fn exit_with_budget(code: i32, budget_met: bool) -> i32 {
    if code == crate::exit::OK && !budget_met {
        1
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn a_missed_budget_turns_only_success_into_1() {
        assert_eq!(exit_with_budget(0, false), 1);
        assert_eq!(exit_with_budget(0, true), 0);
        assert_eq!(exit_with_budget(124, false), 124);
        assert_eq!(exit_with_budget(3, false), 3);
    }

    fn parse_line(line: &str) -> Result<Parsed> {
        let cli = crate::cmd::Cli::try_parse_from(line.split_whitespace())?;
        match cli.command {
            crate::cmd::Command::Run(args) => parse(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn linuxkit_flags_map_to_options() {
        let p = parse_line(
            "baleen run qemu --cpus 2 --mem 2048 --disk size=1G --publish 8080:80 \
             --publish 53:53/udp --accel tcg --state /tmp/s --uefi --timeout 2m --measure out/m",
        )
        .unwrap();
        assert_eq!(p.opts.path, PathBuf::from("out/m"));
        assert_eq!((p.opts.cpus, p.opts.mem_mb), (2, 2048));
        assert_eq!(p.opts.disks, vec![DiskSpec { path: None, size_mb: Some(1024), format: None }]);
        assert_eq!(p.opts.publish.len(), 2);
        assert_eq!(p.opts.accel, AccelChoice::Tcg);
        assert_eq!(p.opts.state_dir, Some(PathBuf::from("/tmp/s")));
        assert!(p.opts.uefi && p.measure && !p.detached);
        assert_eq!(p.timeout, Some(Duration::from_secs(120)));
        assert_eq!(p.opts.networking, Networking::User);
    }

    #[test]
    fn netboot_takes_no_path_and_oci_refs_are_fetched_first() {
        let p = parse_line("baleen run --netboot http://127.0.0.1:8080/s.ipxe").unwrap();
        assert_eq!(p.opts.netboot.as_deref(), Some("http://127.0.0.1:8080/s.ipxe"));
        assert!(p.oci.is_none());
        assert!(parse_line("baleen run qemu --netboot http://h/s.ipxe").is_ok());
        let err = parse_line("baleen run --netboot http://h/s.ipxe out/m").err().unwrap();
        assert!(err.to_string().contains("give it no PATH"), "{err}");
        let err = parse_line("baleen run --netboot http://h/s.ipxe --iso").err().unwrap();
        assert!(err.to_string().contains("cannot be used with"), "{err}");
        assert!(parse_line("baleen run").is_err(), "PATH or --netboot");
        let p = parse_line("baleen run oci://127.0.0.1:5000/sys/m:1").unwrap();
        assert_eq!(p.oci.as_deref(), Some("127.0.0.1:5000/sys/m:1"));
        assert!(!p.arch_given);
        assert!(parse_line("baleen run --arch arm64 oci://r/s:1").unwrap().arch_given);
    }

    #[test]
    fn tpm_attaches_a_tpm() {
        assert!(parse_line("baleen run --tpm out/m-efi.img").unwrap().opts.tpm);
        assert!(!parse_line("baleen run out/m-efi.img").unwrap().opts.tpm);
    }

    #[test]
    fn the_backend_word_is_optional() {
        let p = parse_line("baleen run out/m.iso").unwrap();
        assert_eq!(p.opts.path, PathBuf::from("out/m.iso"));
        assert_eq!(p.opts.accel, AccelChoice::Auto);
        assert_eq!((p.opts.cpus, p.opts.mem_mb), (1, 1024));
        let err = parse_line("baleen run hyperkit out/m").err().unwrap();
        assert!(err.to_string().contains("only `qemu`"), "{err}");
        assert!(err.chain().any(|e| e.is::<crate::exit::UsageError>()));
    }

    #[test]
    fn bad_values_are_refused_by_clap_with_the_reason() {
        for (line, want) in [
            ("baleen run --disk d.img,bus=virtio out/m", "unknown key"),
            ("baleen run --publish 80 out/m", "HOST:GUEST"),
            ("baleen run --networking vde out/m", "tap,<ifname>"),
            ("baleen run --accel hvf out/m", "auto, kvm or tcg"),
            ("baleen run --timeout 5d out/m", "--timeout"),
            ("baleen run --data a --data-file b out/m", "cannot be used with"),
            ("baleen run --iso --kernel out/m", "cannot be used with"),
        ] {
            let err = parse_line(line).err().unwrap_or_else(|| panic!("{line} was accepted"));
            assert!(err.to_string().contains(want), "{line}: {err}");
        }
    }

    #[test]
    fn secure_boot_uses_microsofts_keys_unless_a_certificate_is_enrolled() {
        assert_eq!(parse_line("baleen run x.efi").unwrap().opts.secure_boot, None);
        assert_eq!(
            parse_line("baleen run --secure-boot x.efi").unwrap().opts.secure_boot,
            Some(SecureBoot::MicrosoftKeys)
        );
        assert_eq!(
            parse_line("baleen run --secure-boot --enroll db.crt x.efi").unwrap().opts.secure_boot,
            Some(SecureBoot::Enroll("db.crt".into()))
        );
    }

    #[test]
    fn boot_kind_overrides() {
        assert_eq!(
            parse_line("baleen run --kernel x").unwrap().opts.boot_kind,
            Some(BootKind::Kernel)
        );
        assert_eq!(parse_line("baleen run --iso x").unwrap().opts.boot_kind, Some(BootKind::Iso));
        assert_eq!(
            parse_line("baleen run --squashfs x").unwrap().opts.boot_kind,
            Some(BootKind::Squashfs)
        );
        assert_eq!(
            parse_line("baleen run --data-file cfg.json x").unwrap().opts.data,
            Some(DataSource::File("cfg.json".into()))
        );
    }
}
