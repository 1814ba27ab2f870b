//! Tests of the FAT writer.

use super::*;

/// Issue 23: a file of 4 GiB or more got `len as u32` as its directory entry's size, so a
/// big initrd on a big enough volume would be written with a wrapped size and no error.
#[test]
fn a_file_past_4_gib_is_refused_not_wrapped() {
    let big = (1u64 << 32) + 1;
    let err = file_sectors(&[("INITRD", big)], 16 << 30).unwrap_err();
    assert!(matches!(err, FatError::FileTooLarge { len, .. } if len == big), "{err}");
    assert!(err.to_string().contains("\"INITRD\""), "{err}");
    let just_fits = file_sectors(&[("INITRD", u64::from(u32::MAX))], 16 << 30);
    assert!(just_fits.is_ok(), "{just_fits:?}");
}

/// Issue 23: the boot sector's total-sectors field got `sectors as u32`, so a volume of
/// 2 TiB or more was written with a wrapped size (a 2 TiB volume claimed 0 sectors).
#[test]
fn a_volume_past_2_tib_is_refused_not_wrapped() {
    let size = (1u64 << 32) * SECTOR;
    let err = fat_type(size).unwrap_err();
    assert!(matches!(err, FatError::VolumeTooLarge { size: s } if s == size), "{err}");
    assert!(fat_type(size - SECTOR).is_ok());
}

#[test]
fn type_follows_the_cluster_count() {
    assert_eq!(Geometry::new(16 << 20).unwrap().kind, FatType::Fat16);
    assert_eq!(Geometry::new(32 << 20).unwrap().kind, FatType::Fat16);
    let g = Geometry::new(33 << 20).unwrap();
    assert_eq!(g.kind, FatType::Fat32);
    assert!(g.clusters > FAT16_MAX_CLUSTERS);
    for size in [33u64 << 20, 42 << 20, 300 << 20, 5 << 30] {
        let g = Geometry::new(size).unwrap();
        assert!((g.clusters + 2) * 4 <= g.fat_sectors * SECTOR, "{size}: table covers");
        assert!((g.clusters + 2 + 128) * 4 > g.fat_sectors * SECTOR, "{size}: table tight");
    }
    assert!(Geometry::new(2 << 20).is_err());
    assert!(Geometry::new(4 << 20).unwrap().clusters >= 4085, "not FAT12");
}

/// Every volume from 32 to 33 MiB, sector by sector: FAT16 within its cluster limit, or
/// FAT32 clear of it by the specification's margin; never a FAT32 with a FAT16 count.
#[test]
fn no_volume_size_gets_a_cluster_count_of_the_other_type() {
    for sectors in (32u64 << 11)..=(33 << 11) {
        let g = Geometry::new(sectors * SECTOR).unwrap();
        match g.kind {
            FatType::Fat16 => assert!((4085..=FAT16_MAX_CLUSTERS).contains(&g.clusters)),
            FatType::Fat32 => assert!(g.clusters > FAT16_MAX_CLUSTERS + 16, "{sectors}"),
        }
        let entry = if g.kind == FatType::Fat16 { 2 } else { 4 };
        assert!((g.clusters + 2) * entry <= g.fat_sectors * SECTOR, "{sectors}: covered");
        assert!(g.data_start() + g.clusters * g.spc <= g.sectors, "{sectors}: fits");
    }
    let gap = Geometry::new(66_300 * SECTOR).unwrap();
    assert_eq!((gap.kind, gap.spc), (FatType::Fat16, 2), "32.4 MiB");
}

#[test]
fn fat32_clusters_grow_with_the_volume_and_the_data_starts_on_one() {
    let table = [
        (32u64 << 20, 1),
        (33 << 20, 1),
        (260 << 20, 1),
        ((260 << 20) + 512, 8),
        (1 << 30, 8),
        (8 << 30, 8),
        ((8 << 30) + 512, 16),
        (20 << 30, 32),
        (40 << 30, 64),
    ];
    for (size, spc) in table {
        let g = Geometry::new(size).unwrap();
        assert_eq!(g.spc, spc, "{size}");
        assert_eq!(g.data_start() % spc, 0, "{size}: data on a cluster boundary");
        assert!(g.kind == FatType::Fat16 || g.clusters > FAT16_MAX_CLUSTERS + 16, "{size}");
        let entry = if g.kind == FatType::Fat16 { 2 } else { 4 };
        assert!((g.clusters + 2) * entry <= g.fat_sectors * SECTOR, "{size}: table covers");
        assert!(g.data_start() + g.clusters * spc <= g.sectors, "{size}: clusters fit");
    }
}

#[test]
fn min_volume_size_holds_the_files_at_the_cluster_it_gets() {
    let small: Vec<String> = (0..40).map(|i| format!("D{}/F{i}.BIN", i % 8)).collect();
    for len in [0u64, 1, 200 << 20, (255 << 20) + 1, 258 << 20, 3 << 30] {
        let mut files = vec![("A.BIN", len), ("D/B.BIN", 1), ("D/E/C.BIN", 4097)];
        files.extend(small.iter().map(|p| (p.as_str(), 10)));
        let size = min_volume_size(&files);
        for extra in [0, 1 << 20, 2 << 20] {
            let size = (size + extra).next_multiple_of(1 << 20);
            Plan::new(&files, size).unwrap_or_else(|e| panic!("{len} in {size}: {e}"));
        }
    }
}

/// The first `keep` bytes written, and how many there were in all.
struct Head {
    keep: usize,
    bytes: Vec<u8>,
    total: u64,
}

impl Write for Head {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.keep.saturating_sub(self.bytes.len()).min(buf.len());
        self.bytes.extend_from_slice(&buf[..room]);
        self.total += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn four_kib_clusters_chain_and_place_files_as_file_sectors_says() {
    let size = 300u64 << 20;
    let (a, b) = (vec![1u8; 9000], vec![2u8; 4096]);
    let names = [("B.BIN", b.len() as u64), ("A.BIN", a.len() as u64)];
    let at = file_sectors(&names, size).unwrap();
    let (mut ra, mut rb) = (&a[..], &b[..]);
    let mut files = [
        FatFile { path: "B.BIN".into(), len: b.len() as u64, data: &mut rb },
        FatFile { path: "A.BIN".into(), len: a.len() as u64, data: &mut ra },
    ];
    let opts =
        FatOptions { size, serial: 1, label: "T".into(), hidden_sectors: 0, boot_code: None };
    let mut head = Head { keep: 4 << 20, bytes: Vec::new(), total: 0 };
    assert_eq!(write_fat(&mut files, &opts, &mut head).unwrap(), FatType::Fat32);
    assert_eq!(head.total, size);
    let vol = head.bytes;
    assert_eq!(vol[13], 8, "4 KiB clusters");
    let sector = |i: usize| usize_of(at[i] * SECTOR);
    assert_eq!(&vol[sector(0)..sector(0) + b.len()], &b[..], "B.BIN");
    assert_eq!(&vol[sector(1)..sector(1) + a.len()], &a[..], "A.BIN");
    assert_eq!(sector(0) - sector(1), 3 * 4096, "A.BIN's 9000 bytes take three clusters");
    // The FAT: root (cluster 2) alone, A.BIN 3 → 4 → 5 → end, B.BIN 6 → end.
    let reserved = u64::from(u16::from_le_bytes([vol[14], vol[15]])) * SECTOR;
    let fat = |c: usize| {
        let at = usize_of(reserved) + 4 * c;
        u32::from_le_bytes(vol[at..at + 4].try_into().unwrap())
    };
    let chain: Vec<u32> = (2..8).map(fat).collect();
    assert_eq!(chain, [0x0fff_ffff, 4, 5, 0x0fff_ffff, 0x0fff_ffff, 0]);
}

#[test]
fn file_sectors_say_where_write_fat_puts_each_file() {
    let (a, b) = (vec![1u8; 70_000], vec![2u8; 513]);
    let names = [("Z/B.BIN", b.len() as u64), ("A.BIN", a.len() as u64), ("E", 0)];
    for size in [8u64 << 20, 66_300 * SECTOR, 40 << 20] {
        let at = file_sectors(&names, size).unwrap();
        let (mut ra, mut rb, mut re) = (&a[..], &b[..], &[][..]);
        let mut files = [
            FatFile { path: "Z/B.BIN".into(), len: b.len() as u64, data: &mut rb },
            FatFile { path: "A.BIN".into(), len: a.len() as u64, data: &mut ra },
            FatFile { path: "E".into(), len: 0, data: &mut re },
        ];
        let opts =
            FatOptions { size, serial: 1, label: "T".into(), hidden_sectors: 0, boot_code: None };
        let mut vol = Vec::new();
        write_fat(&mut files, &opts, &mut vol).unwrap();
        let sector = |i: usize| usize_of(at[i] * SECTOR);
        assert_eq!(&vol[sector(0)..sector(0) + b.len()], &b[..], "{size}: Z/B.BIN");
        assert_eq!(&vol[sector(1)..sector(1) + a.len()], &a[..], "{size}: A.BIN");
        assert_eq!(at[2], 0, "an empty file has no sectors");
    }
}

#[test]
fn boot_code_replaces_jump_and_code_but_not_the_bpb() {
    let mut code = Box::new([0xccu8; 512]);
    code[..3].copy_from_slice(&[0xeb, 0x58, 0x90]);
    let geo = Geometry::new(40 << 20).unwrap();
    let opts = FatOptions {
        size: 40 << 20,
        serial: 7,
        label: "T".into(),
        hidden_sectors: 2048,
        boot_code: Some(code),
    };
    let b = boot_sector(&geo, &opts);
    assert_eq!(&b[..3], &[0xeb, 0x58, 0x90]);
    assert_eq!(&b[3..11], b"BALEEN  ", "our OEM name and BPB stay");
    assert_eq!(u32::from_le_bytes(b[28..32].try_into().unwrap()), 2048);
    assert_eq!(u32::from_le_bytes(b[67..71].try_into().unwrap()), 7, "FAT32 serial kept");
    assert!(b[90..510].iter().all(|x| *x == 0xcc));
    assert_eq!(&b[510..], &[0x55, 0xaa]);
}

#[test]
fn names_must_be_8_3_each_part_in_one_case() {
    assert_eq!(check_name("BOOTX64.EFI", "x").unwrap(), (*b"BOOTX64 EFI", 0));
    assert!(check_name("LONGERTHAN8.EFI", "x").is_err());
    assert!(check_name("Config.txt", "x").is_err());
    assert!(check_name("bcm2711-rpi-4-b.dtb", "x").is_err());
    assert_eq!(&check_name("EFI", "x").unwrap().0, b"EFI        ");
}

#[test]
fn a_lower_case_name_is_its_short_name_with_the_nt_case_flags() {
    assert_eq!(check_name("config.txt", "x").unwrap(), (*b"CONFIG  TXT", 0x18));
    assert_eq!(check_name("start4.ELF", "x").unwrap(), (*b"START4  ELF", 0x08));
    assert_eq!(check_name("kernel8", "x").unwrap(), (*b"KERNEL8    ", 0x08));
    let mut a: &[u8] = b"a";
    let mut b: &[u8] = b"b";
    let mut files = [
        FatFile { path: "CONFIG.TXT".into(), len: 1, data: &mut a },
        FatFile { path: "config.txt".into(), len: 1, data: &mut b },
    ];
    let opts = FatOptions {
        size: 8 << 20,
        serial: 1,
        label: "BOOT".into(),
        hidden_sectors: 0,
        boot_code: None,
    };
    let err = write_fat(&mut files, &opts, std::io::sink()).unwrap_err();
    assert!(matches!(err, FatError::Clash { .. }), "{err}");
}
