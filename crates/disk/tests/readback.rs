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
