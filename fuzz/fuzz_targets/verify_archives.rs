//! Any bytes as an initrd or a tar output to `baleen verify`: `initrd_members` (newc cpio
//! archives, plain, gzip or zstd, with zero padding) and `tar_members` list them or say why
//! not; nothing panics or hangs, and a listing compared with itself has no difference.
#![no_main]

use baleen_formats::compare::{first_difference, initrd_members, tar_members};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for list in [initrd_members(data), tar_members(data)] {
        match list {
            Ok(members) => assert!(first_difference(&members, &members).is_none()),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
