//! Streaming, deterministic, path-free writers for the formats LinuxKit writes without Docker.
//!
//! Key types: [`TarWriter`] (PAX tar with Go's `archive/tar` headers: `tar`, and `docker` when
//! the tree appends its `Dockerfile`), [`CpioWriter`] (newc cpio with LinuxKit's header quirks),
//! [`ParallelGzip`] (one gzip member compressed on all cores, same bytes for any thread count),
//! [`InitrdWriter`] (`kernel+initrd`: kernel, cmdline, ucode + compressed cpio) and
//! [`write_tar_kernel_initrd`] (`tar-kernel-initrd`), [`SquashfsWriter`] and [`ErofsWriter`]
//! (the root images of `kernel+squashfs`/`kernel+erofs`, over `W: Write + Seek`: their
//! superblocks are written last), [`write_verity_tree`] (a dm-verity hash tree over such an
//! image, in veritysetup's format); [`compare`] tells where two archives of one tree differ,
//! as a path (`baleen verify`), and [`squashfs_members`]/[`erofs_members`] list a root image
//! as such members. Every writer is an [`baleen_tree::EntrySink`] or a plain
//! function over `W: Write`.
//!
//! Invariants: no host paths, no network, no clocks — output depends only on the entries; no
//! file data is buffered whole (except the small `cmdline` and microcode); the filesystem
//! writers hold metadata only (O(paths)).
//!
//! Non-goals: choosing file names or writing files (the build crate does temp + rename), the
//! Docker-based formats (ISO, disks: later crates or modules).

#![deny(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]

pub mod compare;
mod compressibility;
mod cpio;
mod erofs;
mod fsread;
mod fstree;
mod gzip;
mod initrd;
mod num;
mod squashfs;
mod tar;
mod verity;

pub use crate::compressibility::incompressible;
pub use crate::cpio::{relative_path, CpioWriter, SegmentDirs};
pub use crate::erofs::{ErofsError, ErofsWriter};
pub use crate::fsread::{erofs_file, erofs_members, squashfs_file, squashfs_members, FsReadError};
pub use crate::fstree::TreeError as FsTreeError;
pub use crate::gzip::{
    deflate_block, is_zero, stored_deflate, stored_deflate_into, ParallelGzip, BLOCK_SIZE,
    MAX_THREADS,
};
pub use crate::initrd::{
    write_tar_kernel_initrd, InitrdCompression, InitrdLayout, InitrdOptions, InitrdOutput,
    InitrdWriter,
};
pub use crate::squashfs::{SquashfsError, SquashfsWriter};
pub use crate::tar::{pax_record, pax_time, TarWriter};
pub use crate::verity::{
    content_salt, write_tree as write_verity_tree, VerityError, VerityLayout, VerityTree,
    VERITY_BLOCK,
};
