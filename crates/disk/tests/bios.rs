//! BIOS disks without booting: SYSLINUX installed in-process matches what `syslinux --install`
//! writes, and the raw-bios and hybrid disks pass `sfdisk`, `sgdisk -v`, `fsck.vfat -n` and read
//! back through mtools. Boots are in crates/build/tests/bios_boot.rs.

use baleen_disk::bios::write_hybrid_disk_on;
use baleen_disk::{
    gpt, write_bios_disk, write_hybrid_disk, write_hybrid_disk_with, BiosError, BiosLoader,
    BootFiles, DataPartition, DiskLayout, Syslinux,
};
use std::path::Path;
use std::process::Command;

const SYSLINUX: &str = "/usr/bin/syslinux";
const MBR: &str = "/usr/lib/syslinux/mbr/mbr.bin";
const GPTMBR: &str = "/usr/lib/syslinux/mbr/gptmbr.bin";
const MIB: u64 = 1 << 20;

/// Debian's SYSLINUX, or None (skipped) when the syslinux packages are not installed.
fn loader() -> Option<BiosLoader> {
    baleen_testkit::require_tool("syslinux")?;
    if !Path::new(MBR).is_file() {
        assert!(!baleen_testkit::tools_required(), "{MBR} missing: install syslinux-common");
        return None;
    }
    let syslinux = Syslinux::from_installer(&std::fs::read(SYSLINUX).unwrap()).unwrap();
    Some(
        BiosLoader::new(syslinux, std::fs::read(MBR).unwrap(), std::fs::read(GPTMBR).unwrap())
            .unwrap(),
    )
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn u16_at(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// A FAT16 volume made by mkfs.vfat, with `syslinux --install` run on it; our install for the
/// same sector must give the same ldlinux.sys, boot code and ldlinux.c32.
#[test]
fn in_process_install_matches_syslinux_install() {
    let Some(loader) = loader() else { return };
    let Some(mkfs) = baleen_testkit::require_tool("mkfs.vfat") else { return };
    let Some(mcopy) = baleen_testkit::require_tool("mcopy") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("fat.img");
    std::fs::File::create(&img).unwrap().set_len(20 * MIB).unwrap();
    run(Command::new(mkfs).args(["-F", "16", "-s", "1", "-S", "512"]).arg(&img));
    run(Command::new(SYSLINUX).arg("--install").arg(&img));
    let vol = std::fs::read(&img).unwrap();
    // Where ldlinux.sys landed: the root directory entry's first cluster.
    let (spc, reserved, fats) = (u64::from(vol[13]), u16_at(&vol, 14), u64::from(vol[16]));
    let (root_entries, fat_sectors) = (u16_at(&vol, 17), u16_at(&vol, 22));
    let root = (reserved + fats * fat_sectors) * 512;
    let entry = (0..root_entries)
        .map(|i| (root + 32 * i) as usize)
        .find(|&e| &vol[e..e + 11] == b"LDLINUX SYS")
        .expect("ldlinux.sys in the root directory");
    let data = reserved + fats * fat_sectors + root_entries * 32 / 512;
    let first = data + (u16_at(&vol, entry + 26) - 2) * spc;

    let (sys, boot) = loader.syslinux.install(first).unwrap();
    let back = |name: &str| {
        let to = tmp.path().join(name);
        run(Command::new(&mcopy).arg("-n").arg("-i").arg(&img).arg(format!("::{name}")).arg(&to));
        std::fs::read(to).unwrap()
    };
    assert!(back("ldlinux.sys") == sys, "ldlinux.sys differs from syslinux --install's");
    assert!(back("ldlinux.c32") == loader.syslinux.ldlinux_c32(), "ldlinux.c32 differs");
    assert_eq!(&vol[..3], &boot[..3], "jump");
    assert!(vol[90..510] == boot[90..510], "boot code and sector pointer");
}

const KERNEL_LEN: usize = 3 * 1024 * 1024 + 123;
const INITRD_LEN: usize = 1024 * 1024 + 7;

fn payload() -> (Vec<u8>, Vec<u8>) {
    let kernel: Vec<u8> = (0..KERNEL_LEN).map(|i| (i * 7 % 251) as u8).collect();
    let initrd: Vec<u8> = (0..INITRD_LEN).map(|i| (i * 13 % 241) as u8).collect();
    (kernel, initrd)
}

fn bios_disk(loader: &BiosLoader, size: Option<u64>) -> Result<Vec<u8>, BiosError> {
    let (kernel, initrd) = payload();
    let mut out = Vec::new();
    let files = BootFiles {
        kernel: &mut &kernel[..],
        kernel_len: kernel.len() as u64,
        initrd: &mut &initrd[..],
        initrd_len: initrd.len() as u64,
        cmdline: b"console=ttyS0 quiet",
    };
    write_bios_disk(loader, files, b"seed", size, &mut out)?;
    Ok(out)
}

/// Reads `name` back from the FAT partition at 1 MiB of `disk`.
fn read_back(disk: &Path, name: &str, to: &Path) -> Option<Vec<u8>> {
    let mcopy = baleen_testkit::require_tool("mcopy")?;
    let spec = format!("{}@@1M", disk.display());
    run(Command::new(mcopy).arg("-n").arg("-i").arg(&spec).arg(format!("::{name}")).arg(to));
    Some(std::fs::read(to).unwrap())
}

fn fsck_partition(disk: &[u8], start: u64, size: u64, tmp: &Path) {
    let Some(fsck) = baleen_testkit::require_tool("fsck.vfat") else { return };
    let part = tmp.join("part.img");
    std::fs::write(&part, &disk[start as usize..(start + size) as usize]).unwrap();
    run(Command::new(fsck).arg("-n").arg(&part));
}

#[test]
fn raw_bios_disk_passes_sfdisk_fsck_and_reads_back() {
    let Some(loader) = loader() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let disk = bios_disk(&loader, None).unwrap();
    assert!(disk == bios_disk(&loader, None).unwrap(), "two writes give the same bytes");
    assert_eq!(disk.len() as u64 % MIB, 0);
    assert_eq!(&disk[..440], &loader.mbr[..], "mbr.bin's code");
    let path = tmp.path().join("bios.img");
    std::fs::write(&path, &disk).unwrap();
    // LinuxKit's sizes: the partition at 1 MiB, 4 MiB of disk besides it.
    let part_size = disk.len() as u64 - 4 * MIB;
    if let Some(sfdisk) = baleen_testkit::require_tool("sfdisk") {
        let text = run(Command::new(sfdisk).arg("-d").arg(&path));
        let line = text.lines().find(|l| l.contains("bios.img1 :")).expect("one partition");
        let fields: Vec<&str> = line.split(':').nth(1).unwrap().split(',').map(str::trim).collect();
        let size = format!("size={}", part_size / 512);
        let want = ["start=2048", size.as_str(), "type=e", "bootable"];
        let got: Vec<String> = fields.iter().map(|f| f.replace(' ', "")).collect();
        assert_eq!(got, want, "{text}");
    }
    fsck_partition(&disk, MIB, part_size, tmp.path());
    let (kernel, initrd) = payload();
    let Some(k) = read_back(&path, "KERNEL", &tmp.path().join("k")) else { return };
    assert!(k == kernel, "the kernel reads back");
    let i = read_back(&path, "INITRD.IMG", &tmp.path().join("i")).unwrap();
    assert!(i == initrd, "the initrd reads back");
    let cfg = read_back(&path, "SYSLINUX.CFG", &tmp.path().join("c")).unwrap();
    let cfg = String::from_utf8(cfg).unwrap();
    assert!(cfg.contains("APPEND console=ttyS0 quiet\n"), "{cfg}");
    let sys = read_back(&path, "LDLINUX.SYS", &tmp.path().join("s")).unwrap();
    assert_eq!(sys.len() as u64, loader.syslinux.ldlinux_sys_len());
}

#[test]
fn size_grows_the_disk_and_refuses_too_small() {
    let Some(loader) = loader() else { return };
    let natural = bios_disk(&loader, None).unwrap();
    let grown = bios_disk(&loader, Some(64 * MIB)).unwrap();
    assert_eq!(grown.len() as u64, 64 * MIB);
    assert!(grown[..natural.len()] == natural[..], "the same partition, more space after it");
    let err = bios_disk(&loader, Some(4 * MIB)).unwrap_err().to_string();
    assert!(err.contains(&format!("needs {} bytes", natural.len())), "{err}");
}

#[test]
fn hybrid_disk_passes_sgdisk_and_holds_both_loaders() {
    let Some(loader) = loader() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (kernel, initrd) = payload();
    let uki: Vec<u8> = (0..2 * MIB as usize + 5).map(|i| (i % 199) as u8).collect();
    let write = |size| {
        let mut out = Vec::new();
        let files = BootFiles {
            kernel: &mut &kernel[..],
            kernel_len: kernel.len() as u64,
            initrd: &mut &initrd[..],
            initrd_len: initrd.len() as u64,
            cmdline: b"console=ttyS0",
        };
        let layout = write_hybrid_disk(
            &loader,
            files,
            &mut &uki[..],
            uki.len() as u64,
            b"s",
            size,
            &mut out,
        )
        .unwrap();
        (out, layout)
    };
    let (disk, layout) = write(None);
    assert!(disk == write(None).0, "two writes give the same bytes");
    assert_eq!(&disk[..440], &loader.gptmbr[..], "gptmbr.bin in the protective MBR");
    assert_eq!(disk[450], 0xee, "still a protective MBR");
    let grown = write(Some(100 * MIB)).0;
    assert_eq!(grown.len() as u64, 100 * MIB);
    let path = tmp.path().join("hybrid.img");
    std::fs::write(&path, &disk).unwrap();
    let grown_path = tmp.path().join("grown.img");
    std::fs::write(&grown_path, &grown).unwrap();
    if let Some(sgdisk) = baleen_testkit::require_tool("sgdisk") {
        for p in [&path, &grown_path] {
            let text = run(Command::new(&sgdisk).arg("-v").arg(p));
            assert!(text.contains("No problems found"), "{text}");
        }
        let text = run(Command::new(&sgdisk).args(["-i", "1"]).arg(&path));
        assert!(
            text.contains("Attribute flags: 0000000000000004"),
            "legacy BIOS bootable:\n{text}"
        );
    }
    fsck_partition(&disk, layout.part_start, layout.part_size, tmp.path());
    let Some(back) = read_back(&path, "EFI/BOOT/BOOTX64.EFI", &tmp.path().join("u")) else {
        return;
    };
    assert!(back == uki, "the UKI reads back");
    let k = read_back(&path, "KERNEL", &tmp.path().join("k")).unwrap();
    assert!(k == kernel, "the kernel reads back");
}

/// Data partitions after the ESP (a root and its verity tree, as `--root` writes them): each
/// at a MiB boundary with its data then zeros, typed and named as given, the GPT valid for
/// sgdisk; a grown disk keeps them where they were and moves only the backup GPT.
#[test]
fn hybrid_disk_with_data_partitions_passes_sgdisk_and_holds_them() {
    let Some(loader) = loader() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (kernel, initrd) = payload();
    let root: Vec<u8> = (0..3 * MIB as usize + 100).map(|i| (i % 251) as u8).collect();
    let hash = vec![7u8; 8192];
    let root_guid = gpt::guid_from_uuid([0x11; 16]);
    let hash_guid = gpt::guid_from_uuid([0x22; 16]);
    let write = |size| {
        let files = BootFiles {
            kernel: &mut &kernel[..],
            kernel_len: kernel.len() as u64,
            initrd: &mut &initrd[..],
            initrd_len: initrd.len() as u64,
            cmdline: b"console=ttyS0",
        };
        let need = DiskLayout::hybrid(
            &loader.syslinux,
            kernel.len() as u64,
            initrd.len() as u64,
            b"console=ttyS0",
            5,
        );
        let layout = need.with_data(&[root.len() as u64, hash.len() as u64]).sized(size).unwrap();
        let mut data = [
            DataPartition {
                type_guid: gpt::ROOT_X86_64_TYPE,
                guid: root_guid,
                name: "root-x86-64",
                len: root.len() as u64,
                data: &mut &root[..],
            },
            DataPartition {
                type_guid: gpt::ROOT_VERITY_X86_64_TYPE,
                guid: hash_guid,
                name: "root-x86-64-verity",
                len: hash.len() as u64,
                data: &mut &hash[..],
            },
        ];
        let mut out = Vec::new();
        let l = write_hybrid_disk_with(
            &loader,
            files,
            &mut &[3u8; 5][..],
            5,
            b"s",
            layout,
            &mut data,
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len() as u64, l.disk_size);
        (out, l)
    };
    let (disk, layout) = write(None);
    assert_eq!(layout.data_size, 5 * MIB, "4 MiB of root, 1 MiB of hash tree");
    let root_at = (layout.part_start + layout.part_size) as usize;
    assert!(disk[root_at..root_at + root.len()] == root[..], "the root right after the ESP");
    assert!(disk[root_at + root.len()..root_at + 4 * MIB as usize].iter().all(|&b| b == 0));
    let hash_at = root_at + 4 * MIB as usize;
    assert!(disk[hash_at..hash_at + hash.len()] == hash[..], "then the hash tree");
    let grown = write(Some(200 * MIB)).0;
    assert!(grown[root_at..hash_at + hash.len()] == disk[root_at..hash_at + hash.len()]);
    let Some(sgdisk) = baleen_testkit::require_tool("sgdisk") else { return };
    for (name, bytes) in [("data.img", &disk), ("grown.img", &grown)] {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let text = run(Command::new(&sgdisk).arg("-v").arg(&path));
        assert!(text.contains("No problems found"), "{name}: {text}");
        let root_info = run(Command::new(&sgdisk).args(["-i", "2"]).arg(&path));
        assert!(root_info.contains("4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"), "{root_info}");
        assert!(root_info.contains("11111111-1111-1111-1111-111111111111"), "{root_info}");
        assert!(root_info.contains(&format!("First sector: {}", root_at / 512)), "{root_info}");
        assert!(root_info.contains("'root-x86-64'"), "{root_info}");
        let hash_info = run(Command::new(&sgdisk).args(["-i", "3"]).arg(&path));
        assert!(hash_info.contains("2C7357ED-EBD2-46D9-AEC3-23D7F4A0E1E5"), "{hash_info}");
        assert!(hash_info.contains("22222222-2222-2222-2222-222222222222"), "{hash_info}");
    }
}

/// A layout of the caller's may give the partition room to spare, never less than its files
/// need, nor move it, nor leave no room for the backup GPT.
#[test]
fn hybrid_layout_of_the_callers_must_hold_the_files() {
    let Some(loader) = loader() else { return };
    let need = DiskLayout::hybrid(&loader.syslinux, 5, 5, b"", 5);
    let write = |layout: DiskLayout| {
        let boot = BootFiles {
            kernel: &mut &[1u8; 5][..],
            kernel_len: 5,
            initrd: &mut &[2u8; 5][..],
            initrd_len: 5,
            cmdline: b"",
        };
        let mut out = Count(0);
        write_hybrid_disk_on(&loader, boot, &mut &[3u8; 5][..], 5, b"s", layout, &mut out)?;
        Ok::<u64, BiosError>(out.0)
    };
    assert_eq!(write(need).unwrap(), need.disk_size);
    let big = DiskLayout {
        part_size: need.part_size + 300 * MIB,
        disk_size: need.disk_size + 301 * MIB,
        ..need
    };
    assert_eq!(write(big).unwrap(), big.disk_size);
    for bad in [
        DiskLayout { part_size: need.part_size - MIB, ..need },
        DiskLayout { part_start: 2 * MIB, ..need },
        DiskLayout { disk_size: need.disk_size - MIB, ..need },
        DiskLayout { part_size: need.part_size + 1, disk_size: need.disk_size + MIB, ..need },
    ] {
        let e = write(bad).unwrap_err().to_string();
        assert!(e.contains(&format!("needs {} bytes", need.part_size)), "{bad:?}: {e}");
    }
}

/// Counts the bytes written to it.
struct Count(u64);

impl std::io::Write for Count {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
