//! The disk crate against readers it does not share code with: the `object` crate for UKIs,
//! and, when installed, the reference tools (`sgdisk`, `fsck.vfat`, `mtools`, `qemu-img`,
//! `xorriso`, `isoinfo`).

mod uki {
    use baleen_disk::{write_uki, UkiParts};
    use object::read::pe::PeFile64;
    use object::{Object, ObjectSection};
    use std::io::Cursor;

    pub const STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

    /// Debian's stub, or None (skipped) when systemd-boot-efi is not installed.
    pub fn stub() -> Option<Vec<u8>> {
        match std::fs::read(STUB) {
            Ok(b) => Some(b),
            Err(_) => {
                assert!(
                    !baleen_testkit::tools_required(),
                    "{STUB} missing: install systemd-boot-efi"
                );
                eprintln!("skipping: {STUB} is not installed");
                None
            }
        }
    }

    pub fn build(stub: &[u8], kernel: &[u8], initrd: &[u8], cmdline: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let parts = UkiParts {
            kernel: &mut Cursor::new(kernel.to_vec()),
            initrd: &mut Cursor::new(initrd.to_vec()),
            cmdline,
            osrel: b"ID=baleen\n",
            pcrpkey: b"",
            pcrsig: b"",
        };
        let n = write_uki(stub, parts, &mut out).unwrap();
        assert_eq!(n, out.len() as u64);
        out
    }

    /// The PE checksum as the spec defines it, over the whole file, written independently.
    fn pe_checksum(file: &[u8], checksum_at: usize) -> u32 {
        let mut sum: u64 = 0;
        let mut i = 0;
        while i < file.len() {
            let lo = if (checksum_at..checksum_at + 4).contains(&i) { 0 } else { file[i] };
            let hi = if i + 1 >= file.len() || (checksum_at..checksum_at + 4).contains(&(i + 1)) {
                0
            } else {
                file[i + 1]
            };
            sum += u64::from(u16::from_le_bytes([lo, hi]));
            sum = (sum & 0xffff) + (sum >> 16);
            i += 2;
        }
        (sum + file.len() as u64) as u32
    }

    /// Zeros of a stated length, never held: a kernel too large to allocate.
    struct Zeros {
        len: u64,
        at: u64,
    }

    impl std::io::Read for Zeros {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(usize::try_from(self.len - self.at).unwrap_or(usize::MAX));
            buf[..n].fill(0);
            self.at += n as u64;
            Ok(n)
        }
    }

    impl std::io::Seek for Zeros {
        fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
            self.at = match to {
                std::io::SeekFrom::Start(n) => n,
                std::io::SeekFrom::End(d) => self.len.checked_add_signed(d).unwrap(),
                std::io::SeekFrom::Current(d) => self.at.checked_add_signed(d).unwrap(),
            };
            Ok(self.at)
        }
    }

    /// Issue 23: SizeOfImage took `va as u32` after the last section's end was rounded up to
    /// the section alignment, so a kernel ending just under 4 GiB in memory gave a UKI whose
    /// SizeOfImage wrapped to 0 (the section checks passed: they test the unrounded end).
    #[test]
    fn a_size_of_image_of_4_gib_is_refused_not_wrapped() {
        let Some(stub) = stub() else { return };
        // .linux comes last, at a VA that does not depend on its length.
        let uki = build(&stub, b"k", b"i", b"");
        let pe = PeFile64::parse(&*uki).unwrap();
        let va = pe.section_by_name(".linux").unwrap().address() - pe.relative_address_base();
        let len = u64::from(u32::MAX) - va; // ends at 2^32 - 1, rounds up to 2^32
        let parts = UkiParts {
            kernel: &mut Zeros { len, at: 0 },
            initrd: &mut Cursor::new(b"i".to_vec()),
            cmdline: b"",
            osrel: b"ID=baleen\n",
            pcrpkey: b"",
            pcrsig: b"",
        };
        let err = write_uki(&stub, parts, std::io::sink()).unwrap_err();
        assert!(
            matches!(err, baleen_disk::UkiError::ImageTooLarge { size } if size == 1 << 32),
            "{err}"
        );
    }

    #[test]
    fn uki_sections_parse_back_with_their_contents() {
        let Some(stub) = stub() else { return };
        let kernel: Vec<u8> = (0..100_001u32).map(|i| (i * 7 % 251) as u8).collect();
        let initrd: Vec<u8> = (0..5_555u32).map(|i| (i % 13) as u8).collect();
        let uki = build(&stub, &kernel, &initrd, b"console=ttyS0");
        let pe = PeFile64::parse(&*uki).expect("the UKI parses as PE32+");
        let names: Vec<_> = pe.sections().map(|s| s.name().unwrap().to_string()).collect();
        assert_eq!(&names[names.len() - 4..], [".osrel", ".cmdline", ".initrd", ".linux"]);
        assert!(names.contains(&".sdmagic".to_string()), "the stub's sections are kept: {names:?}");
        let data = |n: &str| pe.section_by_name(n).unwrap().data().unwrap().to_vec();
        assert_eq!(&data(".linux")[..kernel.len()], &kernel[..]);
        assert_eq!(&data(".initrd")[..initrd.len()], &initrd[..]);
        assert_eq!(&data(".cmdline")[..13], b"console=ttyS0");
        assert_eq!(&data(".osrel")[..10], b"ID=baleen\n");
        let opt = pe.nt_headers().optional_header;
        let align = u64::from(opt.section_alignment.get(object::LittleEndian));
        let mut prev_end = 0;
        for s in pe.sections() {
            let (va, size) = (s.address(), s.size());
            assert!(va >= prev_end, "sections overlap at {va:#x}");
            prev_end = va + size;
            if names[names.len() - 4..].contains(&s.name().unwrap().to_string()) {
                assert_eq!(va % align, 0, "{} aligned", s.name().unwrap());
            }
        }
        let size_of_image = u64::from(opt.size_of_image.get(object::LittleEndian));
        assert!(size_of_image >= prev_end && size_of_image % align == 0);
        assert_eq!(
            pe.nt_headers().file_header.pointer_to_symbol_table.get(object::LittleEndian),
            0
        );
        let e_lfanew = u32::from_le_bytes(uki[0x3c..0x40].try_into().unwrap()) as usize;
        let checksum_at = e_lfanew + 24 + 64;
        let stored = u32::from_le_bytes(uki[checksum_at..checksum_at + 4].try_into().unwrap());
        assert_eq!(stored, pe_checksum(&uki, checksum_at));
    }

    #[test]
    fn uki_is_deterministic_and_skips_empty_sections() {
        let Some(stub) = stub() else { return };
        let a = build(&stub, b"kernel", b"", b"");
        assert_eq!(a, build(&stub, b"kernel", b"", b""));
        let pe = PeFile64::parse(&*a).unwrap();
        assert!(pe.section_by_name(".initrd").is_none());
        assert!(pe.section_by_name(".cmdline").is_none());
        assert_ne!(a, build(&stub, b"kernel", b"x", b""));
    }
}

mod efi_disk {
    use baleen_disk::{write_efi_disk, EfiArch, EfiDiskLayout};
    use std::io::{Read, Seek, SeekFrom};
    use std::process::Command;

    fn run(cmd: &mut Command) -> String {
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{cmd:?} failed:\n{text}");
        text
    }

    /// A disk image with a fake "UKI" of `len` patterned bytes.
    fn disk(len: usize, seed: &[u8]) -> (Vec<u8>, Vec<u8>, EfiDiskLayout) {
        let uki: Vec<u8> = (0..len).map(|i| (i * 31 % 253) as u8).collect();
        let mut out = Vec::new();
        let layout =
            write_efi_disk(EfiArch::X64, &mut &uki[..], uki.len() as u64, seed, &mut out).unwrap();
        assert_eq!(out.len() as u64, layout.disk_size);
        assert_eq!(layout.disk_size % (1 << 20), 0);
        (out, uki, layout)
    }

    /// The patterned bytes `disk` uses, `len` of them, without holding them.
    struct Pattern {
        at: usize,
        len: usize,
    }

    impl std::io::Read for Pattern {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.len - self.at);
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = ((self.at + i) * 31 % 253) as u8;
            }
            self.at += n;
            Ok(n)
        }
    }

    /// An EFI disk holding `len` patterned bytes as its UKI, written to a file and checked by
    /// sgdisk, fsck.vfat (on the ESP alone) and mtools (reading the UKI back). Returns the
    /// ESP's sectors per cluster.
    fn check_with_tools(len: usize) -> u8 {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("disk-efi.img");
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let layout = write_efi_disk(
            EfiArch::X64,
            &mut Pattern { at: 0, len },
            len as u64,
            b"seed",
            &mut file,
        )
        .unwrap();
        drop(file);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), layout.disk_size);
        assert!(layout.esp_size >= 33 << 20, "FAT32 needs 65,525 clusters");
        let mut boot = [0u8; 512];
        let mut disk = std::fs::File::open(&path).unwrap();
        disk.seek(SeekFrom::Start(layout.esp_start)).unwrap();
        disk.read_exact(&mut boot).unwrap();
        assert_eq!(&boot[82..90], b"FAT32   ");
        if let Some(sgdisk) = baleen_testkit::require_tool("sgdisk") {
            let text = run(Command::new(&sgdisk).arg("-v").arg(&path));
            assert!(text.contains("No problems found"), "{text}");
            let info = run(Command::new(&sgdisk).args(["-i", "1"]).arg(&path));
            assert!(info.contains("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"), "{info}");
            assert!(info.contains("First sector: 2048"), "{info}");
        }
        if let Some(fsck) = baleen_testkit::require_tool("fsck.vfat") {
            let esp = tmp.path().join("esp.img");
            disk.seek(SeekFrom::Start(layout.esp_start)).unwrap();
            let mut out = std::fs::File::create(&esp).unwrap();
            std::io::copy(&mut (&mut disk).take(layout.esp_size), &mut out).unwrap();
            let text = run(Command::new(fsck).arg("-n").arg("-v").arg(&esp));
            assert!(text.contains("4 files,"), "two directories, their dots, one file: {text}");
            for bad in ["Fixing", "wrong", "correct", "Invalid", "Free cluster"] {
                assert!(!text.contains(bad), "fsck.vfat found problems:\n{text}");
            }
            let spc = format!("{:>10} bytes per cluster", u32::from(boot[13]) * 512);
            assert!(text.contains(&spc), "fsck.vfat reads the cluster size: {text}");
        }
        if let Some(mcopy) = baleen_testkit::require_tool("mcopy") {
            let back = tmp.path().join("back.efi");
            let spec = format!("{}@@{}", path.display(), layout.esp_start);
            run(Command::new(mcopy)
                .arg("-n")
                .arg("-i")
                .arg(&spec)
                .arg("::/EFI/BOOT/BOOTX64.EFI")
                .arg(&back));
            let mut got = std::io::BufReader::new(std::fs::File::open(&back).unwrap());
            let mut want = Pattern { at: 0, len };
            let (mut a, mut b) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
            let mut read = 0;
            loop {
                let n = want.read(&mut b).unwrap();
                got.read_exact(&mut a[..n]).unwrap();
                assert!(a[..n] == b[..n], "the UKI reads back through mtools, at {read}");
                read += n;
                if n == 0 {
                    break;
                }
            }
            assert_eq!(got.read(&mut a).unwrap(), 0, "no more than the UKI");
            let dir = run(Command::new("mdir").arg("-i").arg(&spec).arg("::/EFI/BOOT"));
            assert!(dir.contains("2017-04-18") && dir.contains("16:30"), "epoch timestamps: {dir}");
        }
        boot[13]
    }

    #[test]
    fn small_esp_is_the_33_mib_fat32_minimum_and_passes_sgdisk_fsck_and_mtools() {
        assert_eq!(check_with_tools(3_000_001), 1);
    }

    #[test]
    fn large_esp_passes_sgdisk_fsck_and_mtools() {
        assert_eq!(check_with_tools(40 << 20), 1);
    }

    /// Over 260 MiB FAT32 takes 4 KiB clusters (the FAT specification's table).
    #[test]
    fn esp_over_260_mib_has_4_kib_clusters_and_passes_sgdisk_fsck_and_mtools() {
        assert_eq!(check_with_tools((270 << 20) + 12_345), 8);
    }

    /// An arm64 UKI goes where AAVMF looks on removable media, `EFI/BOOT/BOOTAA64.EFI`, and a
    /// disk sized past its content (`aws`, `gcp`) keeps a valid GPT, its backup at the end.
    #[test]
    fn an_arm64_uki_is_bootaa64_efi_and_a_sized_disk_passes_sgdisk() {
        use baleen_disk::write_efi_disk_on;
        let len = 123_457;
        let layout = EfiDiskLayout::for_uki(EfiArch::Aa64, len as u64).sized(Some(64 << 20));
        let layout = layout.unwrap();
        assert_eq!(layout.disk_size, 64 << 20);
        let small = EfiDiskLayout::for_uki(EfiArch::Aa64, len as u64).sized(Some(1 << 20));
        assert!(small.unwrap_err().to_string().contains("more than the 1048576 bytes asked for"));
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("disk-efi.img");
        let mut file = std::fs::File::create(&path).unwrap();
        let mut uki = Pattern { at: 0, len };
        write_efi_disk_on(EfiArch::Aa64, layout, &mut uki, len as u64, b"seed", &mut file).unwrap();
        drop(file);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 64 << 20);
        if let Some(sgdisk) = baleen_testkit::require_tool("sgdisk") {
            let text = run(Command::new(&sgdisk).arg("-v").arg(&path));
            assert!(text.contains("No problems found"), "{text}");
        }
        if baleen_testkit::require_tool("mdir").is_some() {
            let spec = format!("{}@@{}", path.display(), layout.esp_start);
            let dir = run(Command::new("mdir").arg("-i").arg(&spec).arg("::/EFI/BOOT"));
            assert!(dir.contains("BOOTAA64 EFI") && !dir.contains("BOOTX64"), "{dir}");
            assert!(dir.contains(&len.to_string()), "{dir}");
        }
    }

    #[test]
    fn efi_disk_is_deterministic_and_ids_follow_the_seed() {
        let (a, _, _) = disk(100_000, b"one");
        assert_eq!(a, disk(100_000, b"one").0);
        let (b, _, _) = disk(100_000, b"two");
        // Only the derived identifiers differ: disk GUID, partition GUID, CRCs, FAT serial.
        let differing = a.iter().zip(&b).filter(|(x, y)| x != y).count();
        assert!(differing > 0 && differing < 200, "{differing} bytes differ");
    }
}

mod wrappers {
    use baleen_disk::{write_efi_disk, write_qcow2, write_vhd, write_vmdk, EfiArch, VhdKind};
    use std::path::Path;
    use std::process::Command;

    fn qemu_img(args: &[&str], paths: &[&Path]) -> String {
        let bin = baleen_testkit::require_tool("qemu-img").unwrap();
        let out = Command::new(bin).args(args).args(paths).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "qemu-img {args:?} {paths:?}:\n{text}");
        text
    }

    /// Every wrapper of one raw EFI disk (with a 5 MiB hole in the middle of the UKI, so that
    /// sparse runs occur inside the data too, and incompressible bytes, which vmdk stores)
    /// reads back as the same disk in qemu-img.
    #[test]
    fn qcow2_vhd_and_vmdk_read_back_as_the_raw_disk() {
        if baleen_testkit::require_tool("qemu-img").is_none() {
            return;
        }
        let mut uki: Vec<u8> = (0..9_000_000usize).map(|i| (i * 7 % 251) as u8).collect();
        uki[2_000_000..7_000_000].fill(0);
        // And 1.5 MB no deflate shrinks (as a kernel or gzip'd initrd): stored vmdk grains.
        uki[7_200_000..8_700_000].copy_from_slice(&baleen_testkit::noise(1_500_000, 0x9e37));
        let mut raw = Vec::new();
        let layout =
            write_efi_disk(EfiArch::X64, &mut &uki[..], uki.len() as u64, b"seed", &mut raw)
                .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let raw_path = tmp.path().join("d.raw");
        std::fs::write(&raw_path, &raw).unwrap();
        let size = layout.disk_size;
        let cur = std::io::Cursor::new(raw.clone());
        let write = |name: &str, f: &mut dyn FnMut(&mut Vec<u8>)| {
            let mut a = Vec::new();
            f(&mut a);
            let mut b = Vec::new();
            f(&mut b);
            assert!(a == b, "{name} is deterministic");
            let p = tmp.path().join(name);
            std::fs::write(&p, &a).unwrap();
            (p, a.len())
        };
        let (qcow2, qlen) = write("d.qcow2", &mut |o| {
            write_qcow2(&mut cur.clone(), size, o).unwrap();
        });
        assert!((qlen as u64) < size - 4_000_000, "zero clusters are not stored ({qlen} bytes)");
        let (vhd, _) = write("d.vhd", &mut |o| {
            write_vhd(&mut cur.clone(), size, VhdKind::Fixed, b"seed", o).unwrap();
        });
        let (dvhd, dlen) = write("dyn.vhd", &mut |o| {
            write_vhd(&mut cur.clone(), size, VhdKind::Dynamic, b"seed", o).unwrap();
        });
        assert!((dlen as u64) < size, "dynamic VHD is sparse");
        let (vmdk, vlen) = write("d.vmdk", &mut |o| {
            write_vmdk(&mut cur.clone(), size, "d.vmdk", b"seed", o).unwrap();
        });
        assert!((vlen as u64) < size / 2, "grains are compressed");

        let text = qemu_img(&["check"], &[&qcow2]);
        assert!(text.contains("No errors were found"), "{text}");
        let text = qemu_img(&["check"], &[&vmdk]);
        assert!(text.contains("No errors were found"), "{text}");
        for (p, fmt) in [(&qcow2, "qcow2"), (&vhd, "vpc"), (&dvhd, "vpc"), (&vmdk, "vmdk")] {
            let info = qemu_img(&["info", "--output=json", "-f", fmt], &[p]);
            assert!(info.contains(&format!("\"virtual-size\": {size}")), "{}: {info}", p.display());
            qemu_img(&["compare", "-f", fmt, "-F", "raw"], &[p, &raw_path]);
        }
        let info = qemu_img(&["info", "-f", "vmdk"], &[&vmdk]);
        assert!(info.contains("streamOptimized"), "{info}");
        // The descriptor LinuxKit's `qemu-img convert -o compat6` writes: hardware version 6.
        let bytes = std::fs::read(&vmdk).unwrap();
        let hw = b"ddb.virtualHWVersion = \"6\"";
        assert!(bytes.windows(hw.len()).any(|w| w == hw), "the descriptor says hardware 6");
    }
}

mod iso {
    use baleen_disk::{write_efi_iso, EfiArch};
    use std::process::Command;

    fn tool(name: &str, args: &[&str], path: &std::path::Path) -> Option<String> {
        tool_then(name, args, path, &[])
    }

    fn tool_then(
        name: &str,
        args: &[&str],
        path: &std::path::Path,
        then: &[&str],
    ) -> Option<String> {
        let bin = baleen_testkit::require_tool(name)?;
        let out = Command::new(bin).args(args).arg(path).args(then).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{name} {args:?}:\n{text}");
        Some(text)
    }

    #[test]
    fn efi_iso_passes_xorriso_and_isoinfo_and_holds_the_uki() {
        let uki: Vec<u8> = (0..3_000_000usize).map(|i| (i * 13 % 241) as u8).collect();
        let mut img = Vec::new();
        let n = write_efi_iso(EfiArch::X64, &mut &uki[..], uki.len() as u64, b"seed", &mut img)
            .unwrap();
        assert_eq!(n, img.len() as u64);
        let mut again = Vec::new();
        write_efi_iso(EfiArch::X64, &mut &uki[..], uki.len() as u64, b"seed", &mut again).unwrap();
        assert!(img == again, "deterministic");
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x-efi.iso");
        std::fs::write(&path, &img).unwrap();
        if let Some(text) =
            tool_then("xorriso", &["-indev"], &path, &["-report_el_torito", "plain"])
        {
            assert!(text.contains("El Torito boot img :   1  UEFI  y   none"), "{text}");
        }
        if let Some(text) = tool("isoinfo", &["-d", "-i"], &path) {
            assert!(text.contains("Volume id: BALEEN"), "{text}");
            assert!(text.contains("Eltorito validation header"), "{text}");
            assert!(text.contains("Arch 239") && text.contains("No Emulation"), "{text}");
        }
        if let Some(text) = tool("isoinfo", &["-l", "-i"], &path) {
            assert!(text.contains("EFIBOOT.IMG;1"), "{text}");
            assert!(text.contains("Apr 18 2017"), "epoch dates: {text}");
        }
        // The boot image, taken out of the ISO by name, is a FAT volume with the UKI.
        if let (Some(_), Some(mcopy)) =
            (baleen_testkit::require_tool("isoinfo"), baleen_testkit::require_tool("mcopy"))
        {
            let out = Command::new("isoinfo")
                .args(["-x", "/BOOT/EFIBOOT.IMG;1", "-i"])
                .arg(&path)
                .output()
                .unwrap();
            let esp = tmp.path().join("esp.img");
            std::fs::write(&esp, &out.stdout).unwrap();
            let text = tool("fsck.vfat", &["-n", "-v"], &esp).unwrap();
            assert!(text.contains("16 bit entries"), "a small boot image is FAT16: {text}");
            let back = tmp.path().join("back.efi");
            let st = Command::new(mcopy)
                .arg("-i")
                .arg(&esp)
                .arg("::/EFI/BOOT/BOOTX64.EFI")
                .arg(&back)
                .status()
                .unwrap();
            assert!(st.success());
            assert!(std::fs::read(&back).unwrap() == uki);
        }
    }
}

mod gcp {
    use baleen_disk::write_gcp_tar;
    use std::process::Command;

    #[test]
    fn gcp_tar_holds_disk_raw_and_gnu_tar_agrees() {
        let raw: Vec<u8> = (0..3_000_000usize).map(|i| (i % 7) as u8).collect();
        let mut a = Vec::new();
        write_gcp_tar(&mut std::io::Cursor::new(&raw), raw.len() as u64, &mut a).unwrap();
        let mut b = Vec::new();
        write_gcp_tar(&mut std::io::Cursor::new(&raw), raw.len() as u64, &mut b).unwrap();
        assert!(a == b, "deterministic");
        let Some(tar) = baleen_testkit::require_tool("tar") else { return };
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("x.img.tar.gz");
        std::fs::write(&p, &a).unwrap();
        let out = Command::new(&tar).arg("-tvzf").arg(&p).output().unwrap();
        let list = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            list.contains("3000000 2017-04-18") && list.trim_end().ends_with("disk.raw"),
            "{list}"
        );
        let st = Command::new(&tar).arg("-xzf").arg(&p).arg("-C").arg(tmp.path()).status().unwrap();
        assert!(st.success());
        assert!(std::fs::read(tmp.path().join("disk.raw")).unwrap() == raw);
    }
}

mod gcp_large {
    use baleen_disk::write_gcp_tar;
    use std::io::{Read, Write};

    /// Counts what goes through it and keeps only the first bytes.
    struct Head {
        kept: Vec<u8>,
        len: u64,
    }
    impl Write for Head {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let room: usize = 64 << 10;
            let take = buf.len().min(room.saturating_sub(self.kept.len()));
            self.kept.extend_from_slice(&buf[..take]);
            self.len += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Zeros at memset speed (`io::repeat` fills byte by byte in a debug build).
    struct Zeros;
    impl Read for Zeros {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            buf.fill(0);
            Ok(buf.len())
        }
    }

    /// Issue 23: gcp's hand-made ustar header capped the disk at 8 GiB (its octal size field);
    /// a bigger disk failed the build. The member's size now goes in a PAX record.
    #[test]
    fn a_gcp_disk_over_8_gib_gets_its_size_in_a_pax_record() {
        let size: u64 = (9 << 30) + 512 * 3 + 17;
        let mut out = Head { kept: Vec::new(), len: 0 };
        write_gcp_tar(&mut Zeros.take(size), size, &mut out).unwrap();
        assert!(out.len < 64 << 20, "zeros compress: {} bytes", out.len);
        let mut head = Vec::new();
        let mut gz = flate2::read::GzDecoder::new(&out.kept[..]);
        let _ = gz.by_ref().take(4096).read_to_end(&mut head);
        assert!(head.len() >= 2048, "{} bytes decompressed", head.len());
        assert_eq!(head[156], b'x', "a PAX header first");
        let record = format!("size={size}\n");
        let body = String::from_utf8_lossy(&head[512..1024]);
        assert!(body.contains(&record), "{body:?}");
        assert_eq!(&head[1024..1032], b"disk.raw");
        assert_eq!(head[1024 + 156], b'0');
    }

    /// A raw disk shorter than announced is a read error at the offset where it ended.
    #[test]
    fn a_short_raw_disk_is_a_read_error_at_its_end() {
        let err = write_gcp_tar(&mut std::io::repeat(1).take(1000), 4096, std::io::sink());
        let text = baleen_testkit::boot::chain(&err.unwrap_err());
        assert!(text.contains("1000") && text.contains("too short"), "{text}");
    }
}

mod sizing {
    use baleen_disk::iso::esp_image_size;
    use baleen_disk::{write_esp, EfiArch, EfiDiskLayout};
    use std::io::Read;

    /// The sizes chosen for the ESP and the ISO's boot image always hold the UKI, on both sides
    /// of the FAT16/FAT32 boundary (32 MiB), of FAT32's step from 512-byte to 4 KiB clusters
    /// (260 MiB), and at MiB edges.
    #[test]
    fn chosen_fat_sizes_always_fit_the_uki() {
        let mut sizes: Vec<u64> = (0..6).map(|i| 1 + i * 3_456_789).collect();
        for mib in [3u64, 4, 31, 32, 33, 256, 257, 258, 259, 260] {
            sizes.extend([(mib << 20) - 1, (mib << 20) + 1]);
        }
        for len in sizes {
            for size in [
                EfiDiskLayout::for_uki(EfiArch::X64, len).esp_size,
                esp_image_size(EfiArch::X64, len),
            ] {
                let mut data = std::io::repeat(7).take(len);
                write_esp(EfiArch::X64, &mut data, len, size, 0, b"s", std::io::sink())
                    .unwrap_or_else(|e| panic!("{len} bytes in {size}: {e}"));
            }
        }
    }
}

mod hostile_stub {
    use baleen_disk::{write_uki, UkiParts};
    use std::io::Cursor;

    /// Every header byte of the stub set to 0xff or 0x00, and the stub cut short anywhere in
    /// its headers: write_uki returns an error or a UKI, never panics.
    #[test]
    fn mangled_stubs_give_errors_not_panics() {
        let Some(stub) = super::uki::stub() else { return };
        let try_one = |s: &[u8]| {
            let parts = UkiParts {
                kernel: &mut Cursor::new(vec![1u8; 64]),
                initrd: &mut Cursor::new(vec![2u8; 64]),
                cmdline: b"x",
                osrel: b"y",
                pcrpkey: b"",
                pcrsig: b"",
            };
            let _ = write_uki(s, parts, std::io::sink());
        };
        for i in 0..0x300 {
            for v in [0x00, 0xff] {
                let mut s = stub.clone();
                s[i] = v;
                try_one(&s);
            }
            try_one(&stub[..i]);
        }
    }
}

/// verify's PE comparison on systemd's stub: a signed copy equals the unsigned one with the
/// signature left out (not when compared whole), and a changed byte is named by its section.
#[test]
fn compare_pe_strips_a_signature_and_names_a_changed_section() {
    use baleen_disk::compare::{compare_pe, Place, Signature};
    use std::io::Cursor;
    use std::path::Path;
    let stub = Path::new("/usr/lib/systemd/boot/efi/linuxx64.efi.stub");
    if !stub.is_file() {
        assert!(!baleen_testkit::tools_required(), "{} missing", stub.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let kind = baleen_testkit::signing::KeyKind::Rsa2048;
    let Some((key, cert)) = baleen_testkit::signing::key_pair(tmp.path(), "db", kind) else {
        return;
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    let pair = baleen_sign::KeyPair::from_pem(&read(&key), &read(&cert)).unwrap();
    let pe = std::fs::read(stub).unwrap();
    let signed = baleen_sign::sign_bytes(&pair, &pe).unwrap();
    let cmp =
        |a: &[u8], b: &[u8], s| compare_pe(&mut Cursor::new(a), &mut Cursor::new(b), s).unwrap();
    assert_eq!(cmp(&signed, &pe, Signature::Strip), None);
    assert!(cmp(&signed, &pe, Signature::Compare).is_some(), "a signature is a difference");
    assert_eq!(cmp(&signed, &signed, Signature::Compare), None);

    let layout = baleen_sign::PeLayout::read(&mut Cursor::new(&pe)).unwrap();
    let text = layout.named.iter().find(|s| s.name == ".text").expect("the stub has .text");
    let mut changed = signed.clone();
    changed[(text.offset + 100) as usize] ^= 0xff;
    match cmp(&changed, &pe, Signature::Strip) {
        Some(Place::Section { name, offset, .. }) => {
            assert_eq!((name.as_str(), offset), (".text", 100))
        }
        other => panic!("{other:?}"),
    }
}

/// verify names an arm64 disk's UKI by its own path: a byte changed in the PE written as
/// `EFI/BOOT/BOOTAA64.EFI` is reported inside that file, by section.
#[test]
fn compare_names_the_uki_of_an_arm64_esp_by_its_path() {
    use baleen_disk::compare::{compare_disk, Signature};
    use baleen_disk::{write_efi_disk, EfiArch};
    use std::io::Cursor;
    let Some(pe) = uki::stub() else { return };
    let disk = |uki: &[u8]| {
        let mut out = Vec::new();
        write_efi_disk(EfiArch::Aa64, &mut &uki[..], uki.len() as u64, b"s", &mut out).unwrap();
        out
    };
    let layout = baleen_sign::PeLayout::read(&mut Cursor::new(&pe)).unwrap();
    let text = layout.named.iter().find(|s| s.name == ".text").expect("the stub has .text");
    let mut changed = pe.clone();
    changed[(text.offset + 100) as usize] ^= 0xff;
    let (a, b) = (disk(&changed), disk(&pe));
    let place = compare_disk(&mut Cursor::new(a), &mut Cursor::new(b), Signature::Compare)
        .unwrap()
        .expect("the disks differ");
    let said = place.to_string();
    assert!(said.contains("file EFI/BOOT/BOOTAA64.EFI: PE section .text"), "{said}");
}

/// A PE32+ file with two sections named `.initrd` (0x200 bytes at 0x200, 0x400 at 0x400).
fn pe_with_a_repeated_section_name() -> Vec<u8> {
    let mut f = baleen_testkit::noise(0x800, 5);
    f[..0x200].fill(0);
    f[..2].copy_from_slice(b"MZ");
    f[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
    f[0x40..0x44].copy_from_slice(b"PE\0\0");
    f[0x46..0x48].copy_from_slice(&2u16.to_le_bytes()); // sections
    f[0x54..0x56].copy_from_slice(&240u16.to_le_bytes()); // SizeOfOptionalHeader
    f[0x58..0x5a].copy_from_slice(&0x20bu16.to_le_bytes()); // PE32+
    f[0x94..0x98].copy_from_slice(&0x200u32.to_le_bytes()); // SizeOfHeaders
    f[0xc4..0xc8].copy_from_slice(&16u32.to_le_bytes()); // data directories
    for (i, (ptr, len)) in [(0x200u32, 0x200u32), (0x400, 0x400)].into_iter().enumerate() {
        let at = 0x148 + 40 * i;
        f[at..at + 7].copy_from_slice(b".initrd");
        f[at + 16..at + 20].copy_from_slice(&len.to_le_bytes());
        f[at + 20..at + 24].copy_from_slice(&ptr.to_le_bytes());
    }
    f
}

#[test]
fn sections_of_one_name_are_compared_in_their_order_not_all_with_the_first() {
    use baleen_disk::compare::{compare_pe, Place, Signature};
    use std::io::Cursor;
    let pe = pe_with_a_repeated_section_name();
    let same = compare_pe(&mut Cursor::new(&pe), &mut Cursor::new(&pe), Signature::Compare);
    assert_eq!(same.unwrap(), None);
    let mut changed = pe.clone();
    changed[0x500] ^= 1;
    let place = compare_pe(&mut Cursor::new(&pe), &mut Cursor::new(&changed), Signature::Compare);
    assert_eq!(
        place.unwrap(),
        Some(Place::Section {
            name: ".initrd".into(),
            offset: 0x100,
            output_len: 0x400,
            rebuilt_len: 0x400
        })
    );
}
