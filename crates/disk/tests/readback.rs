//! Containers read back to their raw disk, and disks compared file by file: an EFI disk wrapped
//! as qcow2, fixed and dynamic VHD, VMDK and gcp comes back byte for byte (holes and all), and
//! one byte changed inside the file of its ESP is named as that file of that partition in
//! every container, rather than as an offset.

use baleen_disk::compare::{compare_disk, Place, Signature};
use baleen_disk::readback::{read_back, Container};
use baleen_disk::{
    write_efi_disk, write_gcp_tar, write_qcow2, write_vhd, write_vmdk, EfiArch, VhdKind,
};
use std::io::{Cursor, Seek, SeekFrom};

/// Not a PE file: the ESP file is then compared by its bytes.
fn payload() -> Vec<u8> {
    baleen_testkit::noise(300_000, 7)
}

fn disk(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_efi_disk(EfiArch::X64, &mut &payload[..], payload.len() as u64, b"seed", &mut out)
        .unwrap();
    out
}

fn wrap(c: Container, raw: &[u8]) -> Vec<u8> {
    let size = raw.len() as u64;
    let mut out = Vec::new();
    match c {
        Container::Qcow2 => {
            write_qcow2(&mut Cursor::new(raw), size, &mut out).unwrap();
        }
        Container::Vhd => {
            write_vhd(&mut Cursor::new(raw), size, VhdKind::Fixed, b"s", &mut out).unwrap()
        }
        Container::Vmdk => write_vmdk(&mut &raw[..], size, "d.vmdk", b"s", &mut out).unwrap(),
        Container::Gcp => write_gcp_tar(&mut &raw[..], size, &mut out).unwrap(),
    }
    out
}

fn dynamic_vhd(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_vhd(&mut Cursor::new(raw), raw.len() as u64, VhdKind::Dynamic, b"s", &mut out).unwrap();
    out
}

fn unwrap(c: Container, file: &[u8]) -> Vec<u8> {
    let mut raw = Cursor::new(Vec::new());
    let size = read_back(c, &mut Cursor::new(file), &mut raw).unwrap();
    let mut raw = raw.into_inner();
    // The caller's set_len: holes at the end were never written.
    raw.resize(usize::try_from(size).unwrap(), 0);
    raw
}

const ALL: [Container; 4] = [Container::Qcow2, Container::Vhd, Container::Vmdk, Container::Gcp];

#[test]
fn every_container_reads_back_to_its_raw_disk() {
    let raw = disk(&payload());
    for c in ALL {
        assert!(unwrap(c, &wrap(c, &raw)) == raw, "{c:?}");
    }
    assert!(unwrap(Container::Vhd, &dynamic_vhd(&raw)) == raw, "dynamic VHD");
}

#[test]
fn a_changed_byte_in_the_esp_is_named_as_its_file_in_every_container() {
    let data = payload();
    let raw = disk(&data);
    let mut changed = data.clone();
    changed[200_000] ^= 1;
    let tampered = disk(&changed);
    let want = "partition 1 (\"ESP\"): file EFI/BOOT/BOOTX64.EFI: content differs (from byte \
                200000 of the file)";
    let check = |what: &str, a: Vec<u8>, b: Vec<u8>| {
        let place = compare_disk(&mut Cursor::new(a), &mut Cursor::new(b), Signature::Compare)
            .unwrap()
            .unwrap_or_else(|| panic!("{what}: no difference found"));
        assert_eq!(place.to_string(), want, "{what}");
    };
    check("raw", tampered.clone(), raw.clone());
    for c in ALL {
        check(&format!("{c:?}"), unwrap(c, &wrap(c, &tampered)), unwrap(c, &wrap(c, &raw)));
    }
    check(
        "dynamic VHD",
        unwrap(Container::Vhd, &dynamic_vhd(&tampered)),
        unwrap(Container::Vhd, &dynamic_vhd(&raw)),
    );
    let same = compare_disk(&mut Cursor::new(&raw), &mut Cursor::new(&raw), Signature::Compare);
    assert_eq!(same.unwrap(), None);
}

#[test]
fn a_changed_fat_table_is_fat_metadata_and_a_garbled_container_an_error() {
    let raw = disk(&payload());
    // The ESP's second FAT copy: files read through the first compare equal.
    let first_lba = u64::from_le_bytes(raw[1024 + 32..1024 + 40].try_into().unwrap());
    let esp_at = usize::try_from(first_lba * 512).unwrap();
    let mut bad = raw.clone();
    let le16 = |at: usize| usize::from(u16::from_le_bytes([raw[at], raw[at + 1]]));
    let le32 = |at: usize| u32::from_le_bytes(raw[at..at + 4].try_into().unwrap()) as usize;
    // FAT16 keeps its FAT's size at 22, FAT32 at 36.
    let fat_sectors = match le16(esp_at + 22) {
        0 => le32(esp_at + 36),
        n => n,
    };
    let reserved = le16(esp_at + 14);
    let second_fat = esp_at + (reserved + fat_sectors) * 512;
    bad[second_fat + 100] ^= 0xff;
    let place = compare_disk(&mut Cursor::new(&bad), &mut Cursor::new(&raw), Signature::Compare)
        .unwrap()
        .unwrap();
    let Place::Partition { inner, .. } = place else { panic!("{place:?}") };
    assert!(matches!(*inner, Place::FatMetadata { .. }), "{inner:?}");

    let mut q = wrap(Container::Qcow2, &raw);
    q[0] = b'X';
    let err = read_back(Container::Qcow2, &mut Cursor::new(q), &mut Cursor::new(Vec::new()));
    assert!(err.unwrap_err().to_string().contains("no qcow2 magic"));
    let mut v = wrap(Container::Vmdk, &raw);
    let len = v.len();
    v.truncate(len / 2);
    let mut out = Cursor::new(Vec::new());
    assert!(read_back(Container::Vmdk, &mut Cursor::new(v), &mut out).is_err(), "truncated");
    out.seek(SeekFrom::Start(0)).unwrap();
}

fn malformed(c: Container, file: &[u8]) -> String {
    let mut raw = Cursor::new(Vec::new());
    match read_back(c, &mut Cursor::new(file), &mut raw) {
        Err(e @ baleen_disk::readback::ReadBackError::Malformed { .. }) => e.to_string(),
        other => panic!("expected a malformed {c:?}, got {:?}", other.map_err(|e| e.to_string())),
    }
}

/// A qcow2 of 512-byte clusters whose L2 tables all map one non-zero data cluster: read back,
/// it would write that cluster at every guest offset (terabytes for a 16 TiB disk).
#[test]
fn a_qcow2_data_cluster_mapped_twice_is_malformed() {
    let (cluster, size) = (512u64, 1u64 << 20);
    let l2_tables = size / cluster / (cluster / 8);
    let data_at = (2 + l2_tables) * cluster;
    let mut f = vec![0u8; usize::try_from(data_at + cluster).unwrap()];
    f[..4].copy_from_slice(b"QFI\xfb");
    f[4..8].copy_from_slice(&3u32.to_be_bytes());
    f[20..24].copy_from_slice(&9u32.to_be_bytes());
    f[24..32].copy_from_slice(&size.to_be_bytes());
    f[36..40].copy_from_slice(&u32::try_from(l2_tables).unwrap().to_be_bytes());
    f[40..48].copy_from_slice(&cluster.to_be_bytes());
    for t in 0..l2_tables {
        let l2_at = (2 + t) * cluster;
        let e = usize::try_from(cluster + 8 * t).unwrap();
        f[e..e + 8].copy_from_slice(&l2_at.to_be_bytes());
        for i in 0..cluster / 8 {
            let e = usize::try_from(l2_at + 8 * i).unwrap();
            f[e..e + 8].copy_from_slice(&data_at.to_be_bytes());
        }
    }
    let d = usize::try_from(data_at).unwrap();
    f[d..].fill(0xa5);
    let msg = malformed(Container::Qcow2, &f);
    assert!(msg.contains("mapped twice"), "{msg}");
}

/// A dynamic VHD of 512-byte blocks and a 16 TiB disk, whose block table would take 16 GiB,
/// in a 1.5 KiB file: refused before the table is allocated.
#[test]
fn a_vhd_block_table_larger_than_its_file_is_malformed() {
    let mut f = vec![0u8; 1536];
    f[..8].copy_from_slice(b"cxsparse");
    f[16..24].copy_from_slice(&1024u64.to_be_bytes());
    f[28..32].copy_from_slice(&u32::MAX.to_be_bytes());
    f[32..36].copy_from_slice(&512u32.to_be_bytes());
    let footer = &mut f[1024..];
    footer[..8].copy_from_slice(b"conectix");
    footer[16..24].copy_from_slice(&0u64.to_be_bytes());
    footer[48..56].copy_from_slice(&(16u64 << 40).to_be_bytes());
    footer[60..64].copy_from_slice(&3u32.to_be_bytes());
    let msg = malformed(Container::Vhd, &f);
    assert!(msg.contains("past the end"), "{msg}");
}

/// A VMDK marker whose sector count overflows the stream offset.
#[test]
fn a_vmdk_marker_skipping_past_u64_is_malformed() {
    let mut f = vec![0u8; 1024];
    f[..4].copy_from_slice(b"KDMV");
    f[8..12].copy_from_slice(&(3u32 << 16).to_le_bytes());
    f[12..20].copy_from_slice(&2048u64.to_le_bytes());
    f[20..28].copy_from_slice(&128u64.to_le_bytes());
    f[64..72].copy_from_slice(&1u64.to_le_bytes());
    // The marker at sector 1: a skip of 2^55 sectors, type 1 (not end of stream).
    f[512..520].copy_from_slice(&(1u64 << 55).to_le_bytes());
    f[524..528].copy_from_slice(&1u32.to_le_bytes());
    let msg = malformed(Container::Vmdk, &f);
    assert!(msg.contains("marker"), "{msg}");
}

#[test]
fn a_dynamic_vhd_block_mapped_twice_is_malformed() {
    let mut f = dynamic_vhd(&disk(&payload()));
    let be64 = |b: &[u8], at: usize| u64::from_be_bytes(b[at..at + 8].try_into().unwrap());
    let dyn_at = usize::try_from(be64(&f[f.len() - 512..], 16)).unwrap();
    let table = usize::try_from(be64(&f, dyn_at + 16)).unwrap();
    let entries = u32::from_be_bytes(f[dyn_at + 28..dyn_at + 32].try_into().unwrap());
    let used: Vec<usize> = (0..usize::try_from(entries).unwrap())
        .map(|b| table + 4 * b)
        .filter(|at| f[*at..*at + 4] != [0xff; 4])
        .collect();
    assert!(used.len() >= 2, "the disk has two allocated blocks");
    let first = f[used[0]..used[0] + 4].to_vec();
    f[used[1]..used[1] + 4].copy_from_slice(&first);
    let msg = malformed(Container::Vhd, &f);
    assert!(msg.contains("mapped twice"), "{msg}");
}

#[test]
fn a_disk_whose_partition_runs_past_its_end_does_not_differ_from_itself() {
    // An MBR naming sectors 2-101 of an 8-sector file: both sides end at the same byte, so
    // there is nothing to tell apart (a short read on one side only would be a difference).
    let mut raw = vec![0u8; 4096];
    raw[446 + 4] = 0x0c;
    raw[446 + 8..446 + 12].copy_from_slice(&2u32.to_le_bytes());
    raw[446 + 12..446 + 16].copy_from_slice(&100u32.to_le_bytes());
    raw[510..512].copy_from_slice(&[0x55, 0xaa]);
    raw[1024..1536].copy_from_slice(&baleen_testkit::noise(512, 3));
    let place = compare_disk(
        &mut Cursor::new(raw.clone()),
        &mut Cursor::new(raw.clone()),
        Signature::Compare,
    )
    .unwrap();
    assert!(place.is_none(), "{}", place.unwrap());
    // One byte changed inside the partition is still found.
    let mut changed = raw.clone();
    changed[2000] ^= 1;
    let place =
        compare_disk(&mut Cursor::new(raw), &mut Cursor::new(changed), Signature::Compare).unwrap();
    assert!(place.is_some_and(|p| p.to_string().contains("partition 1")));
}

#[test]
fn a_gpt_entry_ending_before_it_starts_is_no_partition_and_no_panic() {
    // A GPT (header at sector 1, one 128-byte entry at sector 2) whose entry runs from sector
    // 10 back to sector 5, or to the last u64 sector: the size computation underflowed or
    // overflowed before.
    for (first, last) in [(10u64, 5u64), (10, u64::MAX), (u64::MAX / 256, u64::MAX / 256)] {
        let mut raw = vec![0u8; 8192];
        raw[512..520].copy_from_slice(b"EFI PART");
        raw[512 + 72..512 + 80].copy_from_slice(&2u64.to_le_bytes());
        raw[512 + 80..512 + 84].copy_from_slice(&1u32.to_le_bytes());
        raw[512 + 84..512 + 88].copy_from_slice(&128u32.to_le_bytes());
        raw[1024] = 0xaa; // a type GUID that is not all zeros
        raw[1024 + 32..1024 + 40].copy_from_slice(&first.to_le_bytes());
        raw[1024 + 40..1024 + 48].copy_from_slice(&last.to_le_bytes());
        let mut changed = raw.clone();
        changed[6000] ^= 1;
        let same = compare_disk(
            &mut Cursor::new(raw.clone()),
            &mut Cursor::new(raw.clone()),
            Signature::Compare,
        )
        .unwrap();
        assert!(same.is_none(), "{first}-{last}: {}", same.unwrap());
        let place =
            compare_disk(&mut Cursor::new(raw), &mut Cursor::new(changed), Signature::Compare)
                .unwrap();
        assert!(place.is_some(), "{first}-{last}: the changed byte is not found");
    }
}
