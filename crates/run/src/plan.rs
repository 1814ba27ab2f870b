//! The validated description of one VM ([`QemuPlan`]) and the qemu argv it becomes.
//!
//! [`QemuPlan::argv`] is a pure function: every random or host-dependent value (UUID, MAC, the
//! accelerator verdict, the firmware files) was settled when the plan was prepared, so the same
//! plan always yields the same command line. The order of the arguments follows LinuxKit's
//! `run_qemu.go` (spec §8.1) so that a user comparing `ps` output sees the same shape; baleen adds
//! `isa-debug-exit` and `-no-reboot` at the end for the init↔run exit-status protocol and a QMP
//! socket for the power button. One deliberate difference: `--disk` disks and the metadata CD-ROM
//! sit on a virtio-scsi controller, not q35's AHCI (Debian's cloud kernel has no AHCI driver).

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// The guest architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The architecture this binary runs on, when qemu can emulate it.
    pub fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }

    /// `qemu-system-<arch>`.
    pub fn qemu_binary(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Aarch64 => "qemu-system-aarch64",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The accelerator qemu is started with, after probing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// What the VM boots from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootSource {
    /// `-kernel`/`-initrd`/`-append` (LinuxKit's `PREFIX-kernel`, `PREFIX-initrd.img`,
    /// `PREFIX-cmdline`).
    KernelInitrd { kernel: PathBuf, initrd: PathBuf, cmdline: String },
    /// A kernel with the root filesystem as a disk (`kernel+squashfs`, `kernel+erofs`:
    /// `root=/dev/sda` is appended) or, with `cdrom`, a CD-ROM (`kernel+iso`: `root=/dev/sr0`).
    /// With baleen's stage-1 initrd (`PREFIX-root-initrd.img`) the root sits on virtio-scsi,
    /// which Debian's cloud kernel drives; without one, on disk 0 as LinuxKit puts it.
    Squashfs {
        kernel: PathBuf,
        squashfs: PathBuf,
        cmdline: String,
        initrd: Option<PathBuf>,
        cdrom: bool,
    },
    /// A bootable ISO as the first CD-ROM, `-boot d`.
    Iso(PathBuf),
    /// A bootable disk image, attached as disk 0.
    Disk { path: PathBuf, format: String },
    /// A unified kernel image: an EFI application that OVMF starts through `-kernel`.
    Uki(PathBuf),
    /// Nothing local: the NIC's iPXE ROM boots the file at `url` (as the guest reaches it),
    /// which qemu's user network hands out as the DHCP boot file (`-boot n`).
    Network { url: String },
}

/// The firmware the VM starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Firmware {
    /// qemu's own SeaBIOS.
    Bios,
    /// OVMF: the code image read-only, and (when the firmware comes as code + vars) this VM's own
    /// copy of the variable store, so that one VM's boot entries never leak into another's.
    Uefi { code: PathBuf, vars: Option<PathBuf> },
    /// OVMF's Secure Boot build (`--secure-boot`): SMM on, the flash's variable store writable
    /// only from SMM, and this VM's own variable store, whose keys decide what starts.
    SecureBoot { code: PathBuf, vars: PathBuf },
}

/// One extra disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub path: PathBuf,
    /// qemu's format name (`raw`, `qcow2`, `vpc`, `vmdk`); `None` lets qemu probe.
    pub format: Option<String>,
    /// Size in MiB when the file is to be created.
    pub size_mb: Option<u64>,
}

/// How the guest's network is wired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Networking {
    /// qemu's user-mode network (slirp), with `--publish` port forwards.
    User,
    /// No network device at all.
    None,
    /// An existing tap interface.
    Tap(String),
    /// A bridge through qemu-bridge-helper.
    Bridge(String),
}

/// The transport of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// A host port forwarded to a guest port (`--publish host:guest[/proto]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    pub host: u16,
    pub guest: u16,
    pub proto: Proto,
}

/// Everything needed to start one VM; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuPlan {
    pub arch: Arch,
    pub cpus: u32,
    pub mem_mb: u64,
    pub boot: BootSource,
    pub firmware: Firmware,
    pub disks: Vec<Disk>,
    /// The metadata CD-ROM (`--data`/`--data-file`), already written.
    pub data_iso: Option<PathBuf>,
    pub networking: Networking,
    pub publish: Vec<Publish>,
    /// Locally administered unicast MAC, persisted in the state dir.
    pub mac: String,
    pub uuid: String,
    pub accel: Accel,
    pub state_dir: PathBuf,
    /// Show a graphical window instead of putting the console on stdio.
    pub gui: bool,
    /// Extra raw `-device` values.
    pub devices: Vec<String>,
    /// Attach a TPM 2.0 (swtpm, its state in the state dir: [`crate::tpm`]).
    pub tpm: bool,
    /// A virtio-serial port named `org.qemu.guest_agent.0` on [`QemuPlan::guest_agent_socket`].
    pub guest_agent: bool,
}

/// The virtio-serial port name the QEMU guest agent looks for (and pkg/qemu-guest-agent finds).
pub const GUEST_AGENT_PORT: &str = "org.qemu.guest_agent.0";

/// The I/O port of the `isa-debug-exit` device through which init reports a non-zero status.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

impl QemuPlan {
    /// The qemu binary for this plan's architecture.
    pub fn qemu_binary(&self) -> &'static str {
        self.arch.qemu_binary()
    }

    /// Where qemu writes its pid.
    pub fn pidfile(&self) -> PathBuf {
        self.state_dir.join("qemu.pid")
    }

    /// The host end of the guest agent's port (`--guest-agent`): a Unix socket qemu listens on.
    pub fn guest_agent_socket(&self) -> PathBuf {
        self.state_dir.join("qga.sock")
    }

    /// qemu's QMP control socket, through which baleen presses the ACPI power button. `None`
    /// when the state dir's path is too long for a unix socket address (108 bytes on Linux).
    pub fn qmp_socket(&self) -> Option<PathBuf> {
        let p = self.state_dir.join("qmp.sock");
        (p.as_os_str().len() < 100).then_some(p)
    }

    /// The boot disk when it sits on virtio-scsi rather than q35's AHCI: an x86-64 disk under
    /// UEFI, Secure Boot or not. OVMF boots from either, but a disk whose root is a partition of its own
    /// (`baleen build --root`) is read by the guest kernel too, and Debian's cloud kernel, baleen's
    /// default, has no AHCI driver. It is the first SCSI disk (`/dev/sda`).
    fn scsi_boot_disk(&self) -> Option<(&PathBuf, &str)> {
        match (&self.boot, &self.firmware, self.arch) {
            (
                BootSource::Disk { path, format },
                Firmware::Uefi { .. } | Firmware::SecureBoot { .. },
                Arch::X86_64,
            ) => Some((path, format)),
            _ => None,
        }
    }

    /// The qemu arguments (without the program name), in LinuxKit's order.
    pub fn argv(&self) -> Vec<OsString> {
        let mut a = Argv::default();
        a.push("-smp").push(self.cpus.to_string());
        a.push("-m").push(self.mem_mb.to_string());
        a.push("-uuid").push(&self.uuid);
        a.push("-pidfile").push(self.pidfile());

        let emulated = self.arch != Arch::host();
        let secure_boot = matches!(self.firmware, Firmware::SecureBoot { .. });
        match self.arch {
            Arch::X86_64 => {
                // OVMF's Secure Boot build keeps its variables in SMM, out of the OS's reach.
                let smm = if secure_boot { ",smm=on" } else { "" };
                a.push("-machine").push(format!("q35{smm},accel={}", self.accel.as_str()));
            }
            Arch::Aarch64 => {
                if self.accel == Accel::Kvm && !emulated {
                    a.push("-cpu").push("host");
                    a.push("-machine").push("virt,gic_version=host,accel=kvm");
                } else {
                    // Every feature TCG emulates, pointer authentication with qemu's cheap
                    // implementation-defined algorithm instead of QARMA (measured: the
                    // minimal example reaches its services in 6.8 s of guest time either way
                    // with one vCPU, as with cortex-a57).
                    a.push("-cpu").push("max,pauth-impdef=on");
                    a.push("-machine").push("virt,accel=tcg");
                }
            }
        }
        a.push("-object").push("rng-random,id=rng0,filename=/dev/urandom");
        a.push("-device").push("virtio-rng-pci,rng=rng0");

        // What the firmware boots from sits where LinuxKit puts it: disk 0 or the CD-ROM on
        // q35's AHCI controller.
        let scsi_disk = self.scsi_boot_disk();
        match &self.boot {
            BootSource::Disk { .. } if scsi_disk.is_some() => {}
            BootSource::Disk { path, format } => {
                a.push("-drive").push(drive(path, Some(format), ",index=0,media=disk"));
            }
            BootSource::Squashfs { squashfs, initrd: None, .. } => {
                a.push("-drive").push(drive(squashfs, Some("raw"), ",index=0,media=disk"));
            }
            BootSource::Iso(iso) => {
                a.push("-boot").push("d");
                a.push("-cdrom").push(iso);
            }
            BootSource::Network { .. } => {
                a.push("-boot").push("n");
            }
            BootSource::KernelInitrd { .. } | BootSource::Uki(_) | BootSource::Squashfs { .. } => {}
        }
        // What only the guest kernel reads (--disk, the metadata CD-ROM) sits on virtio-scsi
        // instead, unlike LinuxKit: Debian's cloud kernel, baleen's default, has no AHCI driver
        // at all, while LinuxKit's kernels have virtio-scsi too. Guest names stay /dev/sdX and
        // /dev/sr0.
        let scsi_root = match &self.boot {
            BootSource::Squashfs { squashfs, initrd: Some(_), cdrom, .. } => {
                Some((squashfs, cdrom))
            }
            _ => None,
        };
        if !self.disks.is_empty()
            || self.data_iso.is_some()
            || scsi_root.is_some()
            || scsi_disk.is_some()
        {
            a.push("-device").push("virtio-scsi-pci,id=scsi0");
        }
        if let Some((path, format)) = scsi_disk {
            a.push("-drive").push(drive(path, Some(format), ",if=none,id=boot"));
            a.push("-device").push("scsi-hd,drive=boot,bus=scsi0.0,bootindex=0");
        }
        // The root first, so that it is /dev/sda (or /dev/sr0) whatever --disk adds.
        if let Some((image, cdrom)) = scsi_root {
            let media = if *cdrom { ",media=cdrom" } else { "" };
            let rest = format!(",if=none,id=root{media},readonly=on");
            a.push("-drive").push(drive(image, Some("raw"), &rest));
            let dev = if *cdrom { "scsi-cd" } else { "scsi-hd" };
            a.push("-device").push(format!("{dev},drive=root,bus=scsi0.0"));
        }
        for (i, d) in self.disks.iter().enumerate() {
            a.push("-drive").push(drive(
                &d.path,
                d.format.as_deref(),
                &format!(",if=none,id=disk{i}"),
            ));
            a.push("-device").push(format!("scsi-hd,drive=disk{i},bus=scsi0.0"));
        }
        if let Some(iso) = &self.data_iso {
            a.push("-drive").push(drive(
                iso,
                Some("raw"),
                ",if=none,id=data,media=cdrom,readonly=on",
            ));
            a.push("-device").push("scsi-cd,drive=data,bus=scsi0.0");
        }

        let (code, vars) = match &self.firmware {
            Firmware::Bios => (None, None),
            Firmware::Uefi { code, vars } => (Some(code), vars.as_ref()),
            Firmware::SecureBoot { code, vars } => {
                a.push("-global").push("driver=cfi.pflash01,property=secure,value=on");
                (Some(code), Some(vars))
            }
        };
        if let Some(code) = code {
            let mut v = OsString::from("if=pflash,format=raw,unit=0,readonly=on,file=");
            v.push(escape_comma(code));
            a.push("-drive").push(v);
        }
        if let Some(vars) = vars {
            let mut v = OsString::from("if=pflash,format=raw,unit=1,file=");
            v.push(escape_comma(vars));
            a.push("-drive").push(v);
        }

        match &self.boot {
            BootSource::KernelInitrd { kernel, initrd, cmdline } => {
                a.push("-kernel").push(kernel);
                a.push("-initrd").push(initrd);
                a.push("-append").push(cmdline);
            }
            BootSource::Squashfs { kernel, cmdline, initrd, cdrom, .. } => {
                a.push("-kernel").push(kernel);
                if let Some(initrd) = initrd {
                    a.push("-initrd").push(initrd);
                }
                let root = if *cdrom { "root=/dev/sr0" } else { "root=/dev/sda" };
                let cmdline =
                    if cmdline.is_empty() { root.to_owned() } else { format!("{cmdline} {root}") };
                a.push("-append").push(cmdline);
            }
            BootSource::Uki(uki) => {
                a.push("-kernel").push(uki);
            }
            BootSource::Iso(_) | BootSource::Disk { .. } | BootSource::Network { .. } => {}
        }

        match &self.networking {
            Networking::None => {
                a.push("-net").push("none");
            }
            net => {
                a.push("-device").push(format!("virtio-net-pci,netdev=t0,mac={}", self.mac));
                let netdev = match net {
                    Networking::User => {
                        let mut v = "user,id=t0".to_owned();
                        for p in &self.publish {
                            let proto = match p.proto {
                                Proto::Tcp => "tcp",
                                Proto::Udp => "udp",
                            };
                            v.push_str(&format!(",hostfwd={proto}::{}-:{}", p.host, p.guest));
                        }
                        if let BootSource::Network { url } = &self.boot {
                            // The DHCP boot file; a comma in it is doubled for qemu's parser.
                            v.push_str(&format!(",bootfile={}", url.replace(',', ",,")));
                        }
                        v
                    }
                    Networking::Tap(ifname) => {
                        format!("tap,id=t0,ifname={ifname},script=no,downscript=no")
                    }
                    Networking::Bridge(br) => format!("bridge,id=t0,br={br}"),
                    Networking::None => unreachable!("handled above"),
                };
                a.push("-netdev").push(netdev);
            }
        }

        if !self.gui {
            a.push("-nographic");
            // -qmp below counts as a monitor, so -nographic alone would give a plain stdio
            // serial port: no Ctrl-A escapes, and Ctrl-C (signal=on) killing qemu. Spelled
            // out, as -nographic means without -qmp: serial and monitor muxed on stdio, and
            // Ctrl-C a byte for the guest (signal=off).
            a.push("-chardev").push("stdio,id=con0,mux=on,signal=off");
            a.push("-serial").push("chardev:con0");
            a.push("-mon").push("chardev=con0,mode=readline");
        }
        for d in &self.devices {
            a.push("-device").push(d);
        }
        if self.guest_agent {
            let mut v = OsString::from("socket,id=qga0,server=on,wait=off,path=");
            v.push(escape_comma(&self.guest_agent_socket()));
            a.push("-chardev").push(v);
            a.push("-device").push("virtio-serial");
            a.push("-device").push(format!("virtserialport,chardev=qga0,name={GUEST_AGENT_PORT}"));
        }
        if self.tpm {
            for arg in crate::tpm::qemu_args(&crate::tpm::socket(&self.state_dir), self.arch) {
                a.push(arg);
            }
        }
        if let Some(qmp) = self.qmp_socket() {
            let mut v = OsString::from("unix:");
            v.push(escape_comma(&qmp));
            v.push(",server=on,wait=off");
            a.push("-qmp").push(v);
        }
        // The init↔run protocol: init writes a non-zero status to this port and qemu exits with
        // (status << 1) | 1. There is no ISA bus on aarch64's virt machine.
        if self.arch == Arch::X86_64 {
            a.push("-device")
                .push(format!("isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize=0x04"));
        }
        // A guest that reboots (or panics with panic=-1) ends the run instead of looping.
        a.push("-no-reboot");
        a.0
    }
}

/// A `-drive` value: `file=PATH[,format=F]` and the rest.
fn drive(path: &Path, format: Option<&str>, rest: &str) -> OsString {
    let mut v = OsString::from("file=");
    v.push(escape_comma(path));
    if let Some(f) = format {
        v.push(format!(",format={f}"));
    }
    v.push(rest);
    v
}

/// qemu's option parser splits on commas; a literal comma in a path is written twice.
fn escape_comma(p: &Path) -> OsString {
    let s = p.as_os_str();
    match s.to_str() {
        Some(text) if text.contains(',') => text.replace(',', ",,").into(),
        _ => s.to_owned(),
    }
}

#[derive(Default)]
struct Argv(Vec<OsString>);

impl Argv {
    fn push(&mut self, v: impl AsRef<std::ffi::OsStr>) -> &mut Self {
        self.0.push(v.as_ref().to_owned());
        self
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
