//! Writes seed inputs for the fuzz targets that read back what baleen writes (`fs_read`,
//! `verify_archives`, `disk_readback`, `disk_volumes`, `uki_pe`), made by baleen's own writers
//! from one small tree, so that short fuzz runs start past the first header checks:
//!
//!     cargo run -p baleen-disk --example fuzz_seeds -- fuzz/corpus
//!
//! (`python3 fuzz/seeds.py` runs it, and adds FAT12 volumes and GPT/MBR disks made with
//! dosfstools, mtools and sfdisk: baleen's FAT writer makes nothing under 4 MiB, past the
//! 1 MiB libFuzzer truncates inputs to.) Each seed is under ~200 KiB; nothing is committed.
//! `disk_readback`'s seeds start with the byte choosing their container, `disk_volumes`' and
//! `uki_pe`'s with the four bytes choosing the byte to flip.

use baleen_disk::iso::IsoOptions;
use baleen_disk::{
    write_gcp_tar, write_qcow2, write_uki, write_vhd, write_vmdk, IsoTree, UkiParts, VhdKind,
};
use baleen_formats::{CpioWriter, ErofsWriter, SquashfsWriter, TarWriter};
use baleen_tree::{Entry, EntryKind, EntrySink};
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

/// The stub the UKI seed is built on, when installed (Debian's systemd-boot-efi).
const STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

fn tree() -> Vec<(Entry, Vec<u8>)> {
    let f = |p: &str, data: Vec<u8>, mode| {
        (Entry::new(p, EntryKind::File { size: data.len() as u64 }, mode), data)
    };
    let e = |p: &str, kind, mode| (Entry::new(p, kind, mode), Vec::new());
    let mut v = vec![
        e("bin", EntryKind::Dir, 0o755),
        f("bin/busybox", baleen_testkit::noise(6000, 1), 0o755),
        e("bin/sh", EntryKind::Symlink { target: "busybox".into() }, 0o777),
        e("etc", EntryKind::Dir, 0o755),
        f("etc/motd", b"hello\n".to_vec(), 0o644),
        f("etc/empty", Vec::new(), 0o600),
        e("etc/motd-link", EntryKind::HardLink { target: "etc/motd".into() }, 0o644),
        e("dev", EntryKind::Dir, 0o755),
        e("dev/null", EntryKind::Char { major: 1, minor: 3 }, 0o666),
        e("run/fifo", EntryKind::Fifo, 0o600),
        e("many", EntryKind::Dir, 0o755),
    ];
    for i in 0..12 {
        v.push(f(&format!("many/entry-{i:02}"), format!("{i}").into_bytes(), 0o644));
    }
    v
}

fn feed<S: EntrySink>(sink: &mut S) {
    for (entry, data) in tree() {
        sink.add(&entry, &mut &data[..]).unwrap_or_else(|e| panic!("adding {}: {e}", entry.path));
    }
}

fn write(dir: &Path, target: &str, name: &str, parts: &[&[u8]]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).expect("creating the corpus directory");
    std::fs::write(d.join(name), parts.concat()).expect("writing a seed");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).expect("gzip to memory");
    gz.finish().expect("gzip to memory")
}

/// A PE file: Debian's stub made into a UKI, else a bare header (MZ, PE, no sections).
fn pe() -> Vec<u8> {
    let Ok(stub) = std::fs::read(STUB) else {
        let mut h = vec![0u8; 0x200];
        h[..2].copy_from_slice(b"MZ");
        h[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        h[0x80..0x84].copy_from_slice(b"PE\0\0");
        h[0x84..0x86].copy_from_slice(&0x8664u16.to_le_bytes());
        return h;
    };
    let parts = UkiParts {
        kernel: &mut Cursor::new(b"KERNEL".repeat(100)),
        initrd: &mut Cursor::new(b"INITRD".repeat(100)),
        cmdline: b"console=ttyS0",
        osrel: b"ID=baleen\n",
        pcrpkey: b"",
        pcrsig: b"",
    };
    let mut out = Vec::new();
    write_uki(&stub, parts, &mut out).expect("a UKI from Debian's stub");
    out
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus".into()));

    let mut sq = SquashfsWriter::new(Cursor::new(Vec::new())).expect("squashfs writer");
    feed(&mut sq);
    write(&dir, "fs_read", "squashfs", &[&sq.finish().expect("squashfs").into_inner()]);
    let mut ero = ErofsWriter::new(Cursor::new(Vec::new())).expect("erofs writer");
    feed(&mut ero);
    write(&dir, "fs_read", "erofs", &[&ero.finish().expect("erofs").into_inner()]);

    let mut cpio = CpioWriter::new(Vec::new());
    feed(&mut cpio);
    let cpio = cpio.finish().expect("cpio");
    let mut tar = TarWriter::new(Vec::new());
    feed(&mut tar);
    let tar = tar.finish().expect("tar");
    write(&dir, "verify_archives", "cpio", &[&cpio]);
    write(&dir, "verify_archives", "cpio_gzip", &[&gzip(&cpio)]);
    write(&dir, "verify_archives", "segments", &[&cpio, &[0; 512], &gzip(&cpio), &[0; 3]]);
    write(&dir, "verify_archives", "tar", &[&tar]);

    let pe = pe();
    write(&dir, "uki_pe", "uki", &[&[0x40, 0, 0, 0], &pe]);

    let mut iso = IsoTree::new(tempfile::tempfile().expect("a spool file"));
    feed(&mut iso);
    let opts = IsoOptions { volume_id: "LinuxKit", joliet: false, bios: None };
    let mut iso_bytes = Vec::new();
    iso.write(&opts, &mut iso_bytes).expect("an ISO");
    write(&dir, "disk_volumes", "iso", &[&[0; 4], &iso_bytes]);

    // A raw disk in each container (the first byte chooses the reader): the ISO, whose
    // system area is a run of zeros, made a multiple of 64 KiB.
    let mut disk = iso_bytes.clone();
    disk.resize(disk.len().next_multiple_of(64 << 10), 0);
    let size = disk.len() as u64;
    let mut qcow2 = Vec::new();
    write_qcow2(&mut Cursor::new(&disk), size, &mut qcow2).expect("qcow2");
    write(&dir, "disk_readback", "qcow2", &[&[0], &qcow2]);
    // (A dynamic VHD is at least one 2 MiB block: past the 1 MiB libFuzzer truncates inputs to.)
    let mut vhd = Vec::new();
    write_vhd(&mut Cursor::new(&disk), size, VhdKind::Fixed, b"s", &mut vhd).expect("VHD");
    write(&dir, "disk_readback", "vhd_fixed", &[&[1], &vhd]);
    let mut vmdk = Vec::new();
    write_vmdk(&mut &disk[..], size, "d.vmdk", b"s", &mut vmdk).expect("VMDK");
    write(&dir, "disk_readback", "vmdk", &[&[2], &vmdk]);
    let mut gcp = Vec::new();
    write_gcp_tar(&mut &disk[..], size, &mut gcp).expect("gcp tar");
    write(&dir, "disk_readback", "gcp", &[&[3], &gcp]);
    println!("seeds written under {}", dir.display());
}
