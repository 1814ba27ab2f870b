//! ISO 9660 images.
//!
//! [`IsoTree`] is the general writer (`kernel+iso`, `iso-bios`): an
//! [`EntrySink`](baleen_tree::EntrySink) that takes the image tree in one pass, keeping its
//! metadata in memory and spooling file data to a file the caller gives it, then
//! [`IsoTree::write`] streams the volume: ISO 9660 level 2 identifiers, Rock Ridge (RRIP 1.10:
//! names, modes, owners, devices, symlinks, times; hard links share an extent), and with
//! [`BiosBoot`] an El Torito no-emulation entry with ISOLINUX's boot info table and, optionally,
//! an `isohybrid` MBR. Deterministic: dates are LinuxKit's epoch or the entries' mtimes, order
//! is sorted, the hybrid disk id is taken from a hash of the tree.
//!
//! [`write_efi_iso`] is the fixed-layout EFI ISO of `iso-efi`/`iso-efi-initrd` (module `efi`),
//! a [`PlainIso`]: a handful of files under given identifiers ([`write_plain`], which run's
//! metadata CD-ROM uses too). Every volume is laid out first (pure arithmetic, module
//! `volume`'s `Layout`) and then emitted by one function, which shares the descriptors,
//! records and path tables between the two kinds.
//!
//! Why not `hadris-iso` (3.0 is a release candidate): its writer builds from an in-memory or
//! on-disk input tree and writes through `Read + Write + Seek`, where ours must take the tree's
//! entry stream with file data spooled once and write to a plain `Write`.
//!
//! With [`IsoOptions::joliet`], a Joliet tree as `genisoimage -J -joliet-long` adds (module
//! `joliet`).
//!
//! Non-goals: multi-extent files (a file of 4 GiB or more is refused with its path),
//! `RR_MOVED` relocation of deep directories, zisofs.

mod efi;
mod joliet;
mod plain;
pub mod read;
mod rock;
mod tree;
mod volume;
mod write;

/// Where `iso-efi` keeps its EFI boot image (a FAT ESP holding the UKI), as the ISO reader
/// names it.
pub const EFI_IMAGE: &str = "/BOOT/EFIBOOT.IMG";

pub use efi::{esp_image_size, write_efi_iso, IsoError};
pub use plain::{write_plain, PlainBoot, PlainDir, PlainEntry, PlainIso};
pub use tree::IsoTree;
pub(crate) use volume::catalog;
pub use volume::{PLATFORM_EFI, PLATFORM_X86};
pub use write::{BiosBoot, IsoOptions};

use std::io;

/// Errors of the ISO 9660 writer.
#[derive(Debug, thiserror::Error)]
pub enum IsoWriteError {
    #[error("adding {path:?} to the ISO: a path with `..` components")]
    BadPath { path: String },
    #[error("adding {path:?} to the ISO: the entry promised {want} bytes of data, the source gave {got}")]
    ShortData { path: String, want: u64, got: u64 },
    #[error("adding {path:?} to the ISO: hard link to {target:?}, which is not an earlier file")]
    HardLink { path: String, target: String },
    #[error(
        "writing {path:?} to the ISO: {size} bytes is over ISO 9660's 4 GiB single-extent limit \
         (multi-extent files are not written)"
    )]
    FileTooLarge { path: String, size: u64 },
    #[error("adding {path:?} to the ISO: owner id {id} does not fit Rock Ridge's 32-bit uid/gid")]
    BigId { path: String, id: u64 },
    #[error("adding {path:?} to the ISO: over 2^32 files and directories")]
    TooManyEntries { path: String },
    #[error("writing {path:?} to the ISO: its name and symlink target overflow a Rock Ridge continuation area (2 KiB)")]
    TooLong { path: String },
    #[error("writing the ISO: {count} directories, over the path table's 65535")]
    TooManyDirectories { count: usize },
    #[error("writing the ISO: {bytes} bytes is over ISO 9660's 2^32 sectors")]
    VolumeTooLarge { bytes: u64 },
    #[error("writing the ISO: the El Torito boot file {path:?} is not a regular file of the tree")]
    NoBootImage { path: String },
    #[error("writing the ISO's BIOS boot")]
    Boot(#[source] crate::isolinux::IsolinuxError),
    #[error("reading the ISO's spooled file data")]
    Spool(#[source] io::Error),
    #[error("writing the ISO")]
    Write(#[source] io::Error),
}

/// For callers of [`write_plain`] that speak `io::Error` (run's data CD-ROM): a write error
/// stays itself, any other is wrapped whole.
impl From<IsoWriteError> for io::Error {
    fn from(e: IsoWriteError) -> io::Error {
        match e {
            IsoWriteError::Write(e) => e,
            e => io::Error::other(e),
        }
    }
}
