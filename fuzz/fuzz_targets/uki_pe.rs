//! Any bytes as a UKI (or any PE file) to `baleen verify`: `PeLayout::read` parses the headers
//! and sections or says why not, `digest` hashes what Authenticode covers, and `compare_pe`
//! names the section where the file and a copy with one byte flipped (chosen by the first four
//! bytes) differ. Nothing panics or hangs; a file compared with itself has no difference.
#![no_main]

use baleen_disk::compare::{compare_pe, Signature};
use baleen_sign::PeLayout;
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let (at, file) = data.split_at(4);
    let Ok(layout) = PeLayout::read(&mut Cursor::new(file)) else { return };
    let _ = layout.digest(&mut Cursor::new(file));
    if let Ok(place) =
        compare_pe(&mut Cursor::new(file), &mut Cursor::new(file), Signature::Compare)
    {
        assert!(place.is_none(), "a PE file differs from itself: {}", place.unwrap());
    }
    let flip = u32::from_le_bytes([at[0], at[1], at[2], at[3]]) as usize % file.len();
    let mut other = file.to_vec();
    other[flip] ^= 0x01;
    for sig in [Signature::Compare, Signature::Strip] {
        if let Ok(Some(place)) =
            compare_pe(&mut Cursor::new(file), &mut Cursor::new(&other[..]), sig)
        {
            let _ = place.to_string();
        }
    }
});
