//! In-process writers for the formats that LinuxKit makes with `docker run linuxkit/mkimage-*`:
//! the EFI family first.
//!
//! Key items: [`write_uki`] (systemd's EFI stub + `.osrel`, `.cmdline`, `.initrd`, `.linux`, laid
//! out as `ukify` does), [`fat::write_fat`] (FAT16/32 volumes, laid out up front and streamed),
//! [`gpt::Gpt`] (protective MBR + primary/backup GPT), [`write_efi_disk`] (`raw-efi`: GPT + ESP
//! with the UKI as `EFI/BOOT/BOOTX64.EFI`, or `BOOTAA64.EFI` by [`EfiArch`]), and the wrappers of a raw disk that store only its
//! non-zero parts: [`write_qcow2`] (v3), [`write_vhd`] (fixed and dynamic), [`write_vmdk`]
//! (stream-optimized); [`write_bios_disk`] (`raw-bios`: MBR + FAT with SYSLINUX installed by
//! [`syslinux::Syslinux`] without running it) and [`write_hybrid_disk`] (the EFI disk made
//! BIOS-bootable too: `gptmbr.bin`, SYSLINUX beside the UKI); [`write_efi_iso`] (ISO9660 + El
//! Torito EFI entry on a FAT image of the UKI), [`write_gcp_tar`] (`disk.raw` in a gzip'd tar, as Compute Engine imports it);
//! [`write_rpi_disk`] (`rpi4`: MBR + FAT32 with the Pi's firmware, config.txt, kernel, initrd);
//! [`compare`] says where two UKIs or EFI disks differ (PE section, partition, ESP file).
//!
//! Invariants: no host paths, no network, no clocks, no randomness — every byte depends only on
//! the inputs; identifiers (disk GUIDs, FAT serials) are derived from content hashes; file data
//! is streamed, never held whole.
//!
//! Non-goals: choosing output file names or creating files (crates/build does temp + rename),
//! finding the boot loader binaries (the caller passes their bytes), signing (crates/sign;
//! crates/build signs the UKI it makes).

#![deny(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]

pub mod bios;
pub mod compare;
pub mod efi;
pub mod fat;
pub mod fat_read;
pub mod gcp;
pub mod gpt;
mod hashing;
pub mod iso;
pub mod isolinux;
pub mod mbr;
mod num;
pub mod qcow2;
pub mod readback;
pub mod rpi;
pub mod runs;
mod sparse;
pub mod syslinux;
pub mod uki;
pub mod vhd;
pub mod vmdk;

pub use bios::{
    write_bios_disk, write_hybrid_disk, write_hybrid_disk_on, write_hybrid_disk_with, BiosError,
    BiosLoader, BootFiles, DataPartition, DiskLayout,
};
pub use efi::{write_efi_disk, write_efi_disk_on, write_esp, EfiArch, EfiDiskError, EfiDiskLayout};
pub use gcp::write_gcp_tar;
pub use hashing::HashingWriter;
pub use iso::{write_efi_iso, BiosBoot, IsoError, IsoOptions, IsoTree, IsoWriteError};
pub use qcow2::write_qcow2;
pub use rpi::{write_rpi_disk, RpiBoot, RpiError};
pub use sparse::SparseError;
pub use syslinux::{Syslinux, SyslinuxError};
pub use uki::{default_osrel, write_uki, UkiError, UkiParts};
pub use vhd::{write_vhd, VhdKind};
pub use vmdk::write_vmdk;
