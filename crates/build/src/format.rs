//! Output formats: LinuxKit's names, which of them baleen writes today, and the files each one
//! produces (`linuxkit-compat.md` §6).

use std::fmt;

/// An output format, named as `linuxkit build -f` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    Tar,
    Docker,
    KernelInitrd,
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
    Vhd,
    DynamicVhd,
    Vmdk,
    Gcp,
    Aws,
    Uki,
    /// baleen's: an SD card for the Raspberry Pi 4 (arm64 only).
    Rpi4,
}

/// Every format, in LinuxKit's documentation order.
pub const ALL: &[Format] = &[
    Format::Tar,
    Format::Docker,
    Format::KernelInitrd,
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
    Format::Vhd,
    Format::DynamicVhd,
    Format::Vmdk,
    Format::Gcp,
    Format::Aws,
    Format::Uki,
    Format::Rpi4,
];

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Tar => "tar",
            Format::Docker => "docker",
            Format::KernelInitrd => "kernel+initrd",
            Format::TarKernelInitrd => "tar-kernel-initrd",
            Format::KernelSquashfs => "kernel+squashfs",
            Format::KernelErofs => "kernel+erofs",
            Format::KernelIso => "kernel+iso",
            Format::IsoBios => "iso-bios",
            Format::IsoEfi => "iso-efi",
            Format::IsoEfiInitrd => "iso-efi-initrd",
            Format::RawBios => "raw-bios",
            Format::RawEfi => "raw-efi",
            Format::Qcow2Bios => "qcow2-bios",
            Format::Qcow2Efi => "qcow2-efi",
            Format::Vhd => "vhd",
            Format::DynamicVhd => "dynamic-vhd",
            Format::Vmdk => "vmdk",
            Format::Gcp => "gcp",
            Format::Aws => "aws",
            Format::Uki => "uki",
            Format::Rpi4 => "rpi4",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        ALL.iter().copied().find(|f| f.name() == s)
    }

    /// Formats baleen writes today. The others are accepted by validation (LinuxKit files name
    /// them) and refused by `build` with a message saying so.
    pub fn supported(self) -> bool {
        matches!(
            self,
            Format::Tar
                | Format::Docker
                | Format::KernelInitrd
                | Format::TarKernelInitrd
                | Format::KernelSquashfs
                | Format::KernelErofs
        ) || crate::disk::writes(self)
            || crate::bios::writes(self)
            || crate::iso::writes(self)
            || crate::rpi::writes(self)
    }

    /// The formats that boot through a PC BIOS (SYSLINUX, ISOLINUX): x86 only.
    pub fn needs_bios(self) -> bool {
        matches!(self, Format::RawBios | Format::Qcow2Bios | Format::IsoBios)
    }

    /// `tar` and `docker` are single streams that may go to `--o` / stdout; LinuxKit requires
    /// them to be the only format of a build.
    pub fn streamable(self) -> bool {
        matches!(self, Format::Tar | Format::Docker)
    }

    /// The files written for base name `B` (`<dir>/<name>`), as suffixes of `B`.
    pub fn outputs(self) -> &'static [&'static str] {
        match self {
            Format::Tar => &[".tar"],
            Format::Docker => &[".docker"],
            Format::KernelInitrd => &["-kernel", "-initrd.img", "-cmdline"],
            Format::TarKernelInitrd => &["-initrd.tar"],
            // baleen adds the stage-1 initrd that mounts the root (crate::rootfs).
            Format::KernelSquashfs => &["-kernel", "-cmdline", "-squashfs.img", "-root-initrd.img"],
            Format::KernelErofs => &["-kernel", "-cmdline", "-erofs.img", "-root-initrd.img"],
            Format::KernelIso => &["-kernel", "-cmdline", ".iso", "-root-initrd.img"],
            Format::IsoBios => &[".iso"],
            Format::IsoEfi => &["-efi.iso"],
            Format::IsoEfiInitrd => &["-efi-initrd.iso"],
            Format::RawBios => &["-bios.img"],
            Format::RawEfi => &["-efi.img"],
            Format::Qcow2Bios => &[".qcow2"],
            Format::Qcow2Efi => &["-efi.qcow2"],
            Format::Vhd | Format::DynamicVhd => &[".vhd"],
            Format::Vmdk => &[".vmdk"],
            Format::Gcp => &[".img.tar.gz"],
            Format::Aws => &[".raw"],
            Format::Uki => &[".efi"],
            Format::Rpi4 => &["-rpi4.img"],
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The names of the formats baleen writes, comma-separated, for errors.
pub fn supported_names() -> String {
    ALL.iter().filter(|f| f.supported()).map(|f| f.name()).collect::<Vec<_>>().join(", ")
}

/// The names of every format, comma-separated, for help texts and errors.
pub fn all_names() -> String {
    ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in ALL {
            assert_eq!(Format::parse(f.name()), Some(*f));
        }
        assert_eq!(Format::parse("kernel-initrd"), None);
    }

    #[test]
    fn only_tar_and_docker_stream() {
        let streamable: Vec<_> = ALL.iter().filter(|f| f.streamable()).collect();
        assert_eq!(streamable, [&Format::Tar, &Format::Docker]);
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
    if arch != "arm64" && formats.contains(&Format::Rpi4) {
        return Err(ArchError::Rpi { arch: arch.to_owned() });
    }
    if arch == "amd64" {
        return Ok(());
    }
    if let Some(&format) = formats.iter().find(|f| f.needs_bios()) {
        return Err(ArchError::Bios { format, arch: arch.to_owned() });
    }
    if root {
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
