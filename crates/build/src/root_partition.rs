//! `--root squashfs|erofs`: the EFI disk formats with the system in a read-only root partition
//! of its own instead of in the UKI's initrd.
//!
//! One tree pass writes the root filesystem (crate::rootfs's writers and [`Gather`]) to a
//! scratch file and keeps what stage 1 needs; the UKI then carries the kernel, the stage-1
//! initrd (the same `B-root-initrd.img` that `kernel+squashfs` writes) and the command line
//! with `root=PARTUUID=U`. The disk (crates/disk's hybrid disk) gets, after the ESP, the root
//! partition (the Discoverable Partitions Specification's x86-64 root type) and, with
//! `--verity`, the root-verity partition holding the hash tree from its first byte. As the
//! specification asks, the root partition's UUID is then the first 128 bits of the root hash
//! and the verity partition's the last 128; `roothash=` and `baleen.verity_hash=PARTUUID=…`
//! go on the UKI's `.cmdline`, which `--sign-key` signs. Without `--verity` the root
//! partition's UUID is derived from a hash of the filesystem image.
//!
//! Non-goals: architectures other than x86-64 (the EFI disks boot `BOOTX64.EFI`), a writable
//! data partition, growing the root partition at boot.
//!
//! [`Gather`]: crate::rootfs::Gather

use crate::disk::Boot;
use crate::format::Format;
use crate::rootfs::{io_err, RootfsError};
use baleen_disk::{gpt, DataPartition, HashingWriter};
use baleen_tree::EntrySink;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek};

/// The root filesystem of `--root`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootFs {
    Squashfs,
    Erofs,
}

impl RootFs {
    pub fn name(self) -> &'static str {
        match self {
            RootFs::Squashfs => "squashfs",
            RootFs::Erofs => "erofs",
        }
    }

    pub fn parse(s: &str) -> Option<RootFs> {
        [RootFs::Squashfs, RootFs::Erofs].into_iter().find(|f| f.name() == s)
    }
}

/// The formats that can hold a root partition: the GPT disks beside whose ESP it goes.
pub const DISK_FORMATS: &[Format] = &[
    Format::RawEfi,
    Format::Aws,
    Format::Qcow2Efi,
    Format::Vhd,
    Format::DynamicVhd,
    Format::Vmdk,
    Format::Gcp,
];

/// Whether `--root` applies to `f`.
pub fn applies_to(f: Format) -> bool {
    DISK_FORMATS.contains(&f)
}

/// [`DISK_FORMATS`], comma-separated, for messages.
pub fn names() -> String {
    DISK_FORMATS.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
}

/// GPT partition names, as systemd-repart names these partitions.
const ROOT_NAME: &str = "root-x86-64";
const VERITY_NAME: &str = "root-x86-64-verity";

#[derive(Debug, thiserror::Error)]
pub enum RootFormatsError {
    #[error(
        "--root puts the root filesystem in a partition of its own beside the ESP, which only \
         the EFI disk formats have ({disks}); not {formats}",
        disks = names()
    )]
    Unsupported { formats: String },
}

/// An error naming the formats of the build that cannot hold a root partition (the UKI alone,
/// the ISOs, the formats without a UKI: every format of the build shares one UKI, whose initrd
/// is then only stage 1).
pub fn check_formats(formats: &[Format]) -> Result<(), RootFormatsError> {
    let other: Vec<&str> = formats.iter().filter(|f| !applies_to(**f)).map(|f| f.name()).collect();
    if other.is_empty() {
        return Ok(());
    }
    Err(RootFormatsError::Unsupported { formats: other.join(", ") })
}

/// What goes in a partition: `len` bytes of `file` from its start, and its GUID (on-disk
/// order).
#[derive(Debug)]
struct Part {
    file: File,
    len: u64,
    guid: [u8; 16],
}

/// The root partition and, with `--verity`, the root-verity partition, in scratch files.
#[derive(Debug)]
pub struct RootPartitions {
    root: Part,
    verity: Option<Part>,
}

impl RootPartitions {
    /// The partitions' data lengths, in disk order.
    pub fn lens(&self) -> Vec<u64> {
        std::iter::once(&self.root).chain(&self.verity).map(|p| p.len).collect()
    }

    /// The partitions as crates/disk writes them, each read from its start.
    pub fn partitions(&mut self) -> io::Result<Vec<DataPartition<'_>>> {
        let mut out = Vec::new();
        let RootPartitions { root, verity } = self;
        let parts = [
            Some((root, gpt::ROOT_X86_64_TYPE, ROOT_NAME)),
            verity.as_mut().map(|v| (v, gpt::ROOT_VERITY_X86_64_TYPE, VERITY_NAME)),
        ];
        for (p, type_guid, name) in parts.into_iter().flatten() {
            p.file.rewind()?;
            out.push(DataPartition {
                type_guid,
                guid: p.guid,
                name,
                len: p.len,
                data: &mut p.file,
            });
        }
        Ok(out)
    }
}

/// One tree pass (`assemble`) into the `fs` root filesystem for `format`: the boot files the
/// UKI is made of (kernel, stage-1 initrd, command line with `root=PARTUUID=` and, with
/// `verity`, the verity words) and the partitions.
pub fn make(
    fs: RootFs,
    verity: bool,
    format: Format,
    assemble: impl FnOnce(&mut dyn EntrySink) -> Result<(), crate::BuildError>,
) -> Result<(Boot, RootPartitions), crate::BuildError> {
    let fail = |source| crate::BuildError::Rootfs { format, source };
    let scratch = || crate::scratch::file().map_err(|e| fail(io_err("a temporary file")(e)));
    let out = BufWriter::with_capacity(1 << 20, scratch()?);
    let (mut g, mut out) = crate::rootfs::write_filesystem(format, fs, out, assemble)?;
    let len = out.stream_position().map_err(|e| fail(io_err("writing the root filesystem")(e)))?;
    let file = out
        .into_inner()
        .map_err(|e| fail(io_err("writing the root filesystem")(e.into_error())))?;
    let mut words = Vec::new();
    let (root_guid, verity) = if verity {
        let hash = scratch()?;
        let tree = crate::verity::write_separate(&file, len, &hash)
            .map_err(|e| fail(RootfsError::Verity(e)))?;
        let (first, last) = tree.root_hash.split_at(16);
        let uuid = |b: &[u8]| {
            let mut u = [0u8; 16];
            u.copy_from_slice(b);
            gpt::guid_from_uuid(u)
        };
        let verity = Part { file: hash, len: tree.layout.hash_len(), guid: uuid(last) };
        words.push(crate::verity::cmdline_words(&tree));
        let hash_dev = gpt::guid_string(&verity.guid);
        words.push(format!("{}=PARTUUID={hash_dev}", crate::verity::HASH_DEVICE));
        (uuid(first), Some(verity))
    } else {
        let mut h = HashingWriter::new(io::sink());
        (&file).rewind().map_err(|e| fail(io_err("hashing the root filesystem")(e)))?;
        io::copy(&mut (&file).take(len), &mut h)
            .map_err(|e| fail(io_err("hashing the root filesystem")(e)))?;
        (gpt::derived_guid(&h.finish().1, "gpt-root"), None)
    };
    words.insert(0, format!("root=PARTUUID={}", gpt::guid_string(&root_guid)));
    crate::rootfs::append_words(&mut g.cmdline, &words.join(" "));
    if g.kernel_len == 0 {
        return Err(fail(RootfsError::NoKernel(format)));
    }
    let initrd = BufWriter::new(scratch()?);
    let initrd = crate::rootfs::stage1_initrd(format, g.init.as_deref(), &mut g.modules, initrd)
        .map_err(fail)?;
    let initrd = initrd
        .into_inner()
        .map_err(|e| fail(io_err("writing the stage-1 initrd")(e.into_error())))?;
    let boot = Boot { kernel: g.kernel, initrd, cmdline: g.cmdline };
    Ok((boot, RootPartitions { root: Part { file, len, guid: root_guid }, verity }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_efi_disks_take_a_root_partition_and_the_error_names_the_others() {
        assert!(check_formats(DISK_FORMATS).is_ok());
        let e = check_formats(&[Format::RawEfi, Format::Uki, Format::KernelSquashfs])
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("not uki, kernel+squashfs"), "{e}");
        assert!(e.contains("(raw-efi, aws, qcow2-efi, vhd, dynamic-vhd, vmdk, gcp)"), "{e}");
        assert_eq!(RootFs::parse("erofs"), Some(RootFs::Erofs));
        assert_eq!(RootFs::parse("ext4"), None);
    }
}
