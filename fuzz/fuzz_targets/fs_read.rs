//! Any bytes as a root image to `baleen verify`: `squashfs_members` and `erofs_members` list
//! it or say why not, never panic or hang, and stay within their documented budget (members in
//! proportion to the image's length, paths within PATH_MAX).
#![no_main]

use baleen_formats::compare::first_difference;
use baleen_formats::{erofs_members, squashfs_members};
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

/// Linux's PATH_MAX, the readers' bound on a path.
const MAX_PATH: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    for list in [squashfs_members(&mut Cursor::new(data)), erofs_members(&mut Cursor::new(data))] {
        match list {
            Ok(members) => {
                assert!(members.len() as u64 <= len * 2 + 1024, "{} members", members.len());
                for m in &members {
                    assert!(m.path.len() <= MAX_PATH, "{}", m.path);
                }
                assert!(first_difference(&members, &members).is_none());
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
