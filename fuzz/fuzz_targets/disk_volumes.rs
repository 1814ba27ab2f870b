//! Any bytes as a disk, a FAT volume or an ISO to `baleen verify`. The first four bytes
//! (little-endian) choose a byte of the rest to flip: the image and its flipped copy are then
//! compared as disks (GPT/MBR, each partition's FAT, squashfs, erofs or PE contents) and as
//! ISOs (ISO 9660 + Rock Ridge, a volume inside a file). The image itself is listed as a FAT
//! volume and as an ISO. Nothing panics or hangs; an image compared with itself has no
//! difference.
#![no_main]

use baleen_disk::compare::{compare_disk, compare_iso, Signature};
use baleen_disk::fat_read::fat_files;
use baleen_disk::iso::read::files;
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let (at, image) = data.split_at(4);
    let len = image.len() as u64;
    if let Ok(entries) = fat_files(&mut Cursor::new(image), 0, len) {
        for e in &entries {
            let covered: u64 = e.runs.iter().map(|r| r.1).sum();
            assert!(e.dir || covered >= e.size, "{}: runs cover {covered} of {}", e.path, e.size);
            assert!(e.runs.iter().all(|(o, n)| o.checked_add(*n).is_some_and(|end| end <= len)));
        }
    }
    let _ = files(&mut Cursor::new(image));
    let flip = u32::from_le_bytes([at[0], at[1], at[2], at[3]]) as usize % image.len();
    let mut other = image.to_vec();
    other[flip] ^= 0x01;
    let same = compare_disk(&mut Cursor::new(image), &mut Cursor::new(image), Signature::Compare);
    if let Ok(place) = same {
        assert!(place.is_none(), "a disk differs from itself: {}", place.unwrap());
    }
    for sig in [Signature::Compare, Signature::Strip] {
        if let Ok(Some(place)) =
            compare_disk(&mut Cursor::new(image), &mut Cursor::new(&other[..]), sig)
        {
            let _ = place.to_string();
        }
        if let Ok(Some(place)) =
            compare_iso(&mut Cursor::new(image), &mut Cursor::new(&other[..]), sig)
        {
            let _ = place.to_string();
        }
    }
});
