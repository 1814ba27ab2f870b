//! The architecture an output was built for, read from its bytes, so that `baleen run` boots an
//! arm64 build under qemu-system-aarch64 without `--arch`.
//!
//! What is read: a kernel's header (the arm64 Image's `ARMd` magic at 0x38, x86's bzImage `HdrS`
//! at 0x202, an ELF `e_machine`); a UKI's PE machine type; in a raw disk or an ISO, the UEFI
//! removable-media file name (`BOOTAA64.EFI`, `BOOTX64.EFI`) as a FAT directory entry in the
//! first [`SCAN`] bytes, where baleen's ESP puts it.
//!
//! A qcow2 disk is read through its cluster tables ([`qcow2_head`]): the same first [`SCAN`]
//! bytes of the guest's disk, as qemu would show them.
//!
//! Non-goals: gzip-compressed kernels, compressed qcow2 clusters, VHD/VMDK containers: those
//! boot as the host's architecture unless `--arch` says otherwise.

use crate::plan::{Arch, BootSource};
use std::io::Read;
use std::path::Path;

/// How far into a disk or ISO the ESP's directory entry is looked for: baleen's ESP starts at
/// 1 MiB (disks) or sector 24 (ISOs), and its root and `EFI/BOOT` directories sit right after
/// the FATs (about 260 KiB each for a 33 MiB FAT32).
const SCAN: u64 = 8 << 20;

/// The guest architecture `boot` was built for, when its bytes say so.
pub fn of_boot(boot: &BootSource) -> Option<Arch> {
    match boot {
        BootSource::KernelInitrd { kernel, .. } | BootSource::Squashfs { kernel, .. } => {
            of_kernel(&head(kernel, 4096)?)
        }
        BootSource::Uki(path) => of_pe(&head(path, 4096)?),
        BootSource::Iso(path) => of_esp(&head(path, SCAN)?),
        BootSource::Disk { path, format } if format == "raw" => of_esp(&head(path, SCAN)?),
        BootSource::Disk { path, format } if format == "qcow2" => of_esp(&qcow2_head(path, SCAN)?),
        // Nothing local to read: the network's system is the host's unless --arch says.
        BootSource::Disk { .. } | BootSource::Network { .. } => None,
    }
}

fn head(path: &Path, len: u64) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    std::fs::File::open(path).ok()?.take(len).read_to_end(&mut buf).ok()?;
    Some(buf)
}

/// The first `len` bytes of the guest disk held in the qcow2 file at `path` (versions 2 and 3),
/// unallocated clusters reading as zeros. `None` when it is not a qcow2 file, a table points
/// outside it, or a cluster it needs is compressed.
fn qcow2_head(path: &Path, len: u64) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    const OFFSET: u64 = 0x00ff_ffff_ffff_fe00;
    const COMPRESSED: u64 = 1 << 62;
    let f = std::fs::File::open(path).ok()?;
    let u64_at = |off: u64| -> Option<u64> {
        let mut b = [0u8; 8];
        f.read_exact_at(&mut b, off).ok()?;
        Some(u64::from_be_bytes(b))
    };
    let mut h = [0u8; 48];
    f.read_exact_at(&mut h, 0).ok()?;
    let be32 = |o: usize| Some(u32::from_be_bytes(h.get(o..o + 4)?.try_into().ok()?));
    if !at(&h, 0, b"QFI\xfb") {
        return None;
    }
    let bits = be32(20)?;
    if !(9..=21).contains(&bits) {
        return None;
    }
    let cluster = 1u64 << bits;
    let (l1_size, l1_at) = (u64::from(be32(36)?), u64_at(40)?);
    let mut out = vec![0u8; usize::try_from(len).ok()?];
    for (i, chunk) in out.chunks_mut(usize::try_from(cluster).ok()?).enumerate() {
        let (l1_index, l2_index) = (i as u64 / (cluster / 8), i as u64 % (cluster / 8));
        if l1_index >= l1_size {
            break;
        }
        let l2_at = u64_at(l1_at.checked_add(8 * l1_index)?)? & OFFSET;
        if l2_at == 0 {
            continue;
        }
        let entry = u64_at(l2_at.checked_add(8 * l2_index)?)?;
        if entry & COMPRESSED != 0 {
            return None;
        }
        let data_at = entry & OFFSET;
        if data_at != 0 {
            f.read_exact_at(chunk, data_at).ok()?;
        }
    }
    Some(out)
}

fn at(head: &[u8], off: usize, magic: &[u8]) -> bool {
    head.get(off..off + magic.len()) == Some(magic)
}

/// A kernel image: arm64 `Image` (also when it is an EFI stub, `MZ` first), x86 bzImage, ELF.
fn of_kernel(head: &[u8]) -> Option<Arch> {
    if at(head, 0x38, b"ARMd") {
        return Some(Arch::Aarch64);
    }
    if at(head, 0x202, b"HdrS") {
        return Some(Arch::X86_64);
    }
    if at(head, 0, b"\x7fELF") {
        let machine = u16::from_le_bytes(head.get(18..20)?.try_into().ok()?);
        return match machine {
            62 => Some(Arch::X86_64),
            183 => Some(Arch::Aarch64),
            _ => None,
        };
    }
    of_pe(head)
}

/// A PE/COFF image's machine type (`IMAGE_FILE_MACHINE_AMD64`, `_ARM64`).
fn of_pe(head: &[u8]) -> Option<Arch> {
    let lfanew =
        usize::try_from(u32::from_le_bytes(head.get(0x3c..0x40)?.try_into().ok()?)).ok()?;
    if !at(head, 0, b"MZ") || !at(head, lfanew, b"PE\0\0") {
        return None;
    }
    let end = lfanew.checked_add(6)?;
    match u16::from_le_bytes(head.get(lfanew + 4..end)?.try_into().ok()?) {
        0x8664 => Some(Arch::X86_64),
        0xaa64 => Some(Arch::Aarch64),
        _ => None,
    }
}

/// The first FAT directory entry naming a removable-media boot file, on a 32-byte boundary.
fn of_esp(head: &[u8]) -> Option<Arch> {
    head.chunks_exact(32).find_map(|e| match &e[..11] {
        b"BOOTAA64EFI" => Some(Arch::Aarch64),
        b"BOOTX64 EFI" => Some(Arch::X86_64),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pe(machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 0x100];
        h[..2].copy_from_slice(b"MZ");
        h[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        h[0x40..0x44].copy_from_slice(b"PE\0\0");
        h[0x44..0x46].copy_from_slice(&machine.to_le_bytes());
        h
    }

    #[test]
    fn kernels_say_their_architecture() {
        // Debian's arm64 vmlinuz: an EFI-stub Image, `MZ` and `ARMd` both.
        let mut image = pe(0xaa64);
        image[0x38..0x3c].copy_from_slice(b"ARMd");
        assert_eq!(of_kernel(&image), Some(Arch::Aarch64));
        let mut bz = vec![0u8; 0x300];
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        assert_eq!(of_kernel(&bz), Some(Arch::X86_64));
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[18] = 183;
        assert_eq!(of_kernel(&elf), Some(Arch::Aarch64));
        elf[18] = 62;
        assert_eq!(of_kernel(&elf), Some(Arch::X86_64));
        assert_eq!(of_kernel(b"\x1f\x8b\x08\0gzip"), None, "a gzip kernel is not read");
    }

    #[test]
    fn a_uki_is_its_pe_machine() {
        assert_eq!(of_pe(&pe(0xaa64)), Some(Arch::Aarch64));
        assert_eq!(of_pe(&pe(0x8664)), Some(Arch::X86_64));
        assert_eq!(of_pe(&pe(0x14c)), None);
        assert_eq!(of_pe(&pe(0xaa64)[..0x44]), None, "cut short");
    }

    /// An arm64 qcow2-efi booted under qemu-system-x86_64: the architecture was read from raw
    /// disks only.
    #[test]
    fn a_qcow2_disk_is_the_boot_file_of_the_esp_inside_it() {
        let mut raw = vec![0u8; 4 << 20];
        let entry = (3 << 20) + 64;
        raw[entry..entry + 11].copy_from_slice(b"BOOTAA64EFI");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.qcow2");
        let mut out = std::fs::File::create(&path).unwrap();
        baleen_disk::write_qcow2(&mut std::io::Cursor::new(&raw), raw.len() as u64, &mut out)
            .unwrap();
        let boot = BootSource::Disk { path: path.clone(), format: "qcow2".into() };
        assert_eq!(of_boot(&boot), Some(Arch::Aarch64));
        assert_eq!(qcow2_head(&path, 4 << 20).unwrap(), raw, "the guest's bytes, read back");
        assert_eq!(qcow2_head(&dir.path().join("missing"), 512), None);
    }

    #[test]
    fn a_disk_is_the_boot_file_of_its_esp() {
        let mut disk = vec![0u8; 4 << 20];
        let entry = (3 << 20) + 64;
        disk[entry..entry + 11].copy_from_slice(b"BOOTAA64EFI");
        assert_eq!(of_esp(&disk), Some(Arch::Aarch64));
        disk[entry..entry + 11].copy_from_slice(b"BOOTX64 EFI");
        assert_eq!(of_esp(&disk), Some(Arch::X86_64));
        // Not on a directory entry's boundary: file data that happens to hold the name.
        disk[entry..entry + 11].fill(0);
        disk[entry + 5..entry + 16].copy_from_slice(b"BOOTAA64EFI");
        assert_eq!(of_esp(&disk), None);
    }
}
