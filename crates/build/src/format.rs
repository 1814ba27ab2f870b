//! Output formats: the one list of them, and what each is, in one table ([`Format::spec`]): its
//! LinuxKit name, the writer that makes it ([`Family`]), the files it writes, the machines it
//! exists for and its `--help` line (docs/formats.md; differences in docs/compat.md, "Formats").
//!
//! Adding a format: a variant here, its row in [`Format::spec`] and [`Format::ALL`], and its
//! arm in the writer module its family names (a new variant of that module's kind enum). The
//! CLI's `--format` values, `--help` and `build --list-formats` come from [`Format::ALL`].

use std::fmt;
use std::path::{Path, PathBuf};

/// An output format, named as `linuxkit build -f` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    KernelInitrd,
    Tar,
    Docker,
    TarKernelInitrd,
    KernelSquashfs,
    KernelErofs,
    KernelIso,
    IsoBios,
    IsoEfi,
    IsoEfiInitrd,
    RawBios,
    RawEfi,
    Qcow2Bios,
    Qcow2Efi,
    Aws,
    Gcp,
    Vhd,
    DynamicVhd,
    Vmdk,
    Uki,
    /// baleen's: an SD card for the Raspberry Pi 4 (arm64 only).
    Rpi4,
}

/// Which writer makes a format's files; the payload is that writer's own kind enum, so that
/// each writer matches its formats exhaustively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// One tar stream, to a file or stdout (`crate::pipeline`); `docker` adds a Dockerfile entry.
    Stream { dockerfile: bool },
    /// Kernel, initrd and command line as files (`crate::pipeline`).
    KernelInitrd,
    /// Kernel, initrd and command line in one tar (`crate::pipeline`).
    TarKernelInitrd,
    /// Kernel, command line, a root filesystem image and its stage-1 initrd (`crate::rootfs`).
    RootImage(crate::root_partition::RootFs),
    /// An ISO 9660 image of the tree (`crate::iso`).
    Iso(crate::iso::IsoKind),
    /// A disk booting through SYSLINUX (`crate::bios`).
    Bios(crate::bios::BiosDisk),
    /// The build's UKI, alone or on a disk or ISO (`crate::disk`).
    Efi(crate::disk::EfiOutput),
    /// A Raspberry Pi SD card from the boot files the disks share (`crate::rpi`).
    Rpi,
}

/// The machines (OCI architectures) a format exists for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arches {
    Any,
    Only(&'static [&'static str]),
}

impl Arches {
    pub fn allows(self, arch: &str) -> bool {
        match self {
            Arches::Any => true,
            Arches::Only(list) => list.contains(&arch),
        }
    }
}

/// What a format is: one row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// LinuxKit's name (`-f NAME`).
    pub name: &'static str,
    pub family: Family,
    /// The files written for base name `B` (`<dir>/<name>`), as suffixes of `B`.
    pub outputs: &'static [&'static str],
    pub arches: Arches,
    /// The line `baleen build --help` shows for it.
    pub help: &'static str,
}

/// A PC BIOS (SYSLINUX, ISOLINUX) exists on x86 only.
const X86: Arches = Arches::Only(&["amd64"]);

impl Format {
    /// Every format, in the order `baleen build --help` lists them (the default first).
    pub const ALL: &'static [Format] = &[
        Format::KernelInitrd,
        Format::Tar,
        Format::Docker,
        Format::TarKernelInitrd,
        Format::KernelSquashfs,
        Format::KernelErofs,
        Format::KernelIso,
        Format::IsoBios,
        Format::IsoEfi,
        Format::IsoEfiInitrd,
        Format::RawBios,
        Format::RawEfi,
        Format::Qcow2Bios,
        Format::Qcow2Efi,
        Format::Aws,
        Format::Gcp,
        Format::Vhd,
        Format::DynamicVhd,
        Format::Vmdk,
        Format::Uki,
        Format::Rpi4,
    ];

    /// The table.
    pub fn spec(self) -> Spec {
        use crate::bios::BiosDisk;
        use crate::disk::EfiOutput;
        use crate::iso::IsoKind;
        use crate::root_partition::RootFs;
        use Arches::Any;
        match self {
            Format::KernelInitrd => Spec {
                name: "kernel+initrd",
                family: Family::KernelInitrd,
                outputs: &["-kernel", "-initrd.img", "-cmdline"],
                arches: Any,
                help: "`NAME-kernel`, `NAME-initrd.img`, `NAME-cmdline` (the default)",
            },
            Format::Tar => Spec {
                name: "tar",
                family: Family::Stream { dockerfile: false },
                outputs: &[".tar"],
                arches: Any,
                help: "The whole filesystem as one tar (`NAME.tar`, or `--o`)",
            },
            Format::Docker => Spec {
                name: "docker",
                family: Family::Stream { dockerfile: true },
                outputs: &[".docker"],
                arches: Any,
                help: "The tar plus a Dockerfile entry, for `docker import` (`NAME.docker`, \
                       or `--o`)",
            },
            Format::TarKernelInitrd => Spec {
                name: "tar-kernel-initrd",
                family: Family::TarKernelInitrd,
                outputs: &["-initrd.tar"],
                arches: Any,
                help: "`NAME-initrd.tar` holding kernel, initrd.img and cmdline",
            },
            // baleen adds the stage-1 initrd that mounts the root (crate::rootfs).
            Format::KernelSquashfs => Spec {
                name: "kernel+squashfs",
                family: Family::RootImage(RootFs::Squashfs),
                outputs: &["-kernel", "-cmdline", "-squashfs.img", "-root-initrd.img"],
                arches: Any,
                help: "`NAME-kernel`, `NAME-cmdline`, `NAME-squashfs.img`, and \
                       `NAME-root-initrd.img` (stage 1)",
            },
            Format::KernelErofs => Spec {
                name: "kernel+erofs",
                family: Family::RootImage(RootFs::Erofs),
                outputs: &["-kernel", "-cmdline", "-erofs.img", "-root-initrd.img"],
                arches: Any,
                help: "`NAME-kernel`, `NAME-cmdline`, `NAME-erofs.img`, and \
                       `NAME-root-initrd.img` (stage 1)",
            },
            Format::KernelIso => Spec {
                name: "kernel+iso",
                family: Family::Iso(IsoKind::KernelIso),
                outputs: &["-kernel", "-cmdline", ".iso", "-root-initrd.img"],
                arches: Any,
                help: "`NAME-kernel`, `NAME-cmdline`, `NAME.iso`, and `NAME-root-initrd.img` \
                       (stage 1)",
            },
            Format::IsoBios => Spec {
                name: "iso-bios",
                family: Family::Iso(IsoKind::Bios),
                outputs: &[".iso"],
                arches: X86,
                help: "Bootable BIOS ISO, `NAME.iso`",
            },
            Format::IsoEfi => Spec {
                name: "iso-efi",
                family: Family::Efi(EfiOutput::Iso),
                outputs: &["-efi.iso"],
                arches: Any,
                help: "Bootable EFI ISO, `NAME-efi.iso`",
            },
            Format::IsoEfiInitrd => Spec {
                name: "iso-efi-initrd",
                family: Family::Efi(EfiOutput::Iso),
                outputs: &["-efi-initrd.iso"],
                arches: Any,
                help: "EFI ISO booting kernel+initrd, `NAME-efi-initrd.iso`",
            },
            Format::RawBios => Spec {
                name: "raw-bios",
                family: Family::Bios(BiosDisk::Raw),
                outputs: &["-bios.img"],
                arches: X86,
                help: "BIOS disk image, `NAME-bios.img`",
            },
            Format::RawEfi => Spec {
                name: "raw-efi",
                family: Family::Efi(EfiOutput::Raw),
                outputs: &["-efi.img"],
                arches: Any,
                help: "EFI disk image, `NAME-efi.img`",
            },
            Format::Qcow2Bios => Spec {
                name: "qcow2-bios",
                family: Family::Bios(BiosDisk::Qcow2),
                outputs: &[".qcow2"],
                arches: X86,
                help: "BIOS qcow2 disk, `NAME.qcow2` (sized by `--size`)",
            },
            Format::Qcow2Efi => Spec {
                name: "qcow2-efi",
                family: Family::Efi(EfiOutput::Qcow2),
                outputs: &["-efi.qcow2"],
                arches: Any,
                help: "EFI qcow2 disk, `NAME-efi.qcow2`",
            },
            Format::Aws => Spec {
                name: "aws",
                family: Family::Efi(EfiOutput::Aws),
                outputs: &[".raw"],
                arches: Any,
                help: "Raw disk for AWS, `NAME.raw` (sized by `--size`)",
            },
            Format::Gcp => Spec {
                name: "gcp",
                family: Family::Efi(EfiOutput::Gcp),
                outputs: &[".img.tar.gz"],
                arches: Any,
                help: "Google Cloud image, `NAME.img.tar.gz`",
            },
            Format::Vhd => Spec {
                name: "vhd",
                family: Family::Efi(EfiOutput::Vhd),
                outputs: &[".vhd"],
                arches: Any,
                help: "Fixed-size VHD, `NAME.vhd`",
            },
            Format::DynamicVhd => Spec {
                name: "dynamic-vhd",
                family: Family::Efi(EfiOutput::DynamicVhd),
                outputs: &[".vhd"],
                arches: Any,
                help: "Dynamic VHD, `NAME.vhd`",
            },
            Format::Vmdk => Spec {
                name: "vmdk",
                family: Family::Efi(EfiOutput::Vmdk),
                outputs: &[".vmdk"],
                arches: Any,
                help: "VMware disk, `NAME.vmdk`",
            },
            Format::Uki => Spec {
                name: "uki",
                family: Family::Efi(EfiOutput::Uki),
                outputs: &[".efi"],
                arches: Any,
                help: "Unified kernel image: one EFI binary with kernel, initrd and cmdline, \
                 `NAME.efi` (baleen's addition)",
            },
            Format::Rpi4 => Spec {
                name: "rpi4",
                family: Family::Rpi,
                outputs: &["-rpi4.img"],
                arches: Arches::Only(&["arm64"]),
                help: "SD-card image for the Raspberry Pi 4, `NAME-rpi4.img` (arm64 only; \
                       baleen's addition)",
            },
        }
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn family(self) -> Family {
        self.spec().family
    }

    /// The files written for base name `B` (`<dir>/<name>`), as suffixes of `B`.
    pub fn outputs(self) -> &'static [&'static str] {
        self.spec().outputs
    }

    pub fn arches(self) -> Arches {
        self.spec().arches
    }

    /// The line `baleen build --help` shows for it.
    pub fn help(self) -> &'static str {
        self.spec().help
    }

    pub fn parse(s: &str) -> Option<Format> {
        Self::ALL.iter().copied().find(|f| f.name() == s)
    }

    /// `tar` and `docker` are single streams that may go to `--o` / stdout; LinuxKit requires
    /// them to be the only format of a build.
    pub fn streamable(self) -> bool {
        matches!(self.family(), Family::Stream { .. })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where one format's files go: `<dir>/<name>` plus the format's suffixes, each created through
/// the build's [`Outputs`](crate::Outputs) (so that it appears whole or not at all). Every writer
/// takes one.
pub struct Target<'a> {
    pub format: Format,
    pub dir: &'a Path,
    pub name: &'a str,
    pub outputs: &'a mut crate::Outputs,
}

impl Target<'_> {
    /// `<dir>/<name><suffix>`.
    pub fn path(&self, suffix: &str) -> PathBuf {
        self.dir.join(format!("{}{suffix}", self.name))
    }

    /// Creates `<dir>/<name><suffix>`.
    pub fn create(&mut self, suffix: &str) -> std::io::Result<crate::output::OutputWriter> {
        let path = self.path(suffix);
        self.outputs.create(&path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Format::ALL {
            assert_eq!(Format::parse(f.name()), Some(*f));
        }
        assert_eq!(Format::parse("kernel-initrd"), None);
    }

    /// `ALL` follows the declaration order, so that a variant declared between two others and
    /// left out of `ALL` (and so out of `--format`) fails here.
    #[test]
    fn all_lists_the_variants_in_declaration_order() {
        for (i, f) in Format::ALL.iter().enumerate() {
            assert_eq!(*f as usize, i, "{f}");
        }
    }

    #[test]
    fn only_tar_and_docker_stream() {
        let streamable: Vec<_> = Format::ALL.iter().filter(|f| f.streamable()).collect();
        assert_eq!(streamable, [&Format::Tar, &Format::Docker]);
    }

    /// `build --help` names every file each format writes (it once left out the stage-1
    /// `NAME-root-initrd.img` of kernel+squashfs/erofs/iso).
    #[test]
    fn help_names_every_output_file() {
        for f in Format::ALL {
            for suffix in f.outputs() {
                let help = f.help();
                assert!(
                    help.contains(&format!("NAME{suffix}")),
                    "{f}: {help:?} lacks NAME{suffix}"
                );
            }
        }
    }
}

/// What a build for a machine other than x86-64 cannot write.
#[derive(Debug, thiserror::Error)]
pub enum ArchError {
    #[error(
        "format `{format}` boots through a PC BIOS (SYSLINUX), which {arch} machines do not \
         have; build an EFI format for {arch} instead (raw-efi, qcow2-efi, iso-efi, uki, …)"
    )]
    Bios { format: Format, arch: String },
    #[error(
        "format `rpi4` is an SD card for the Raspberry Pi 4, an arm64 machine; build it with \
         --arch arm64 (this build is for {arch})"
    )]
    Rpi { arch: String },
    #[error(
        "--root is written for x86-64 only (the root partition's type is the Discoverable \
         Partitions Specification's x86-64 root); not for {arch}"
    )]
    Root { arch: String },
}

/// Refuses, before anything is pulled, the formats (and `--root`) that do not exist for `arch`
/// (an OCI architecture: `amd64`, `arm64`): the BIOS formats are x86 only, `rpi4` arm64 only.
pub fn check_arch(arch: &str, formats: &[Format], root: bool) -> Result<(), ArchError> {
    // The formats limited to some machines (`Format::arches`): the BIOS ones, and rpi4.
    if let Some(&format) = formats.iter().find(|f| !f.arches().allows(arch)) {
        return Err(match format.family() {
            Family::Rpi => ArchError::Rpi { arch: arch.to_owned() },
            _ => ArchError::Bios { format, arch: arch.to_owned() },
        });
    }
    if root && arch != "amd64" {
        return Err(ArchError::Root { arch: arch.to_owned() });
    }
    Ok(())
}

#[cfg(test)]
mod arch_tests {
    use super::*;

    #[test]
    fn bios_formats_and_root_are_refused_for_arm64_only() {
        let err = check_arch("arm64", &[Format::RawEfi, Format::RawBios], false).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("`raw-bios` boots through a PC BIOS") && msg.contains("arm64"),
            "{msg}"
        );
        for f in [Format::IsoBios, Format::Qcow2Bios] {
            assert!(check_arch("arm64", &[f], false).is_err(), "{f}");
            assert!(check_arch("amd64", &[f], true).is_ok(), "{f}");
        }
        let root = check_arch("arm64", &[Format::RawEfi], true).unwrap_err().to_string();
        assert!(root.contains("--root") && root.contains("arm64"), "{root}");
        assert!(check_arch("arm64", &[Format::RawEfi, Format::Uki, Format::IsoEfi], false).is_ok());
    }

    #[test]
    fn rpi4_is_refused_for_any_arch_but_arm64() {
        let msg = check_arch("amd64", &[Format::KernelInitrd, Format::Rpi4], false).unwrap_err();
        let msg = msg.to_string();
        assert!(msg.contains("`rpi4`") && msg.contains("--arch arm64") && msg.contains("amd64"));
        assert!(check_arch("arm64", &[Format::Rpi4, Format::RawEfi], false).is_ok());
    }
}
