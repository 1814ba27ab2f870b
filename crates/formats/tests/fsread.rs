//! The squashfs and erofs readers of `baleen verify` on the writers' own images: every path of
//! the edge tree is listed with its kind, mode, owner and data hash (the two filesystems, written
//! and read by independent code, agree entry for entry); one byte changed inside a file's data
//! names that file; a damaged superblock or a directory that loops is an error, not a hang.

use baleen_formats::compare::{first_difference, Kind, Member, What};
use baleen_formats::{erofs_members, squashfs_members, ErofsWriter, SquashfsWriter};
use baleen_tree::EntryKind;
use sha2::{Digest as _, Sha256};
use std::io::Cursor;

mod fs_common;
use fs_common::*;

fn squashfs(tree: &[(baleen_tree::Entry, Vec<u8>)]) -> Vec<u8> {
    let mut w = SquashfsWriter::new(Cursor::new(Vec::new())).unwrap();
    feed(&mut w, tree);
    w.finish().unwrap().into_inner()
}

fn erofs(tree: &[(baleen_tree::Entry, Vec<u8>)]) -> Vec<u8> {
    let mut w = ErofsWriter::new(Cursor::new(Vec::new())).unwrap();
    feed(&mut w, tree);
    w.finish().unwrap().into_inner()
}

fn squashfs_list(img: &[u8]) -> Vec<Member> {
    squashfs_members(&mut Cursor::new(img)).unwrap()
}

fn erofs_list(img: &[u8]) -> Vec<Member> {
    erofs_members(&mut Cursor::new(img)).unwrap()
}

/// Each listed member against what the tree says the path holds.
fn check_against_tree(list: &[Member], fs: &str) {
    let tree = edge_tree();
    let want = expected(&tree);
    for (path, (entry, data)) in &want {
        let m = list.iter().find(|m| &m.path == path).unwrap_or_else(|| panic!("{fs}: {path}"));
        match &entry.kind {
            EntryKind::File { .. } => {
                assert_eq!(m.kind, Kind::File, "{fs}: {path}");
                assert_eq!(m.size, data.len() as u64, "{fs}: {path}");
                assert_eq!(m.sha256, <[u8; 32]>::from(Sha256::digest(data)), "{fs}: {path}");
            }
            EntryKind::Dir => assert_eq!(m.kind, Kind::Dir, "{fs}: {path}"),
            EntryKind::Symlink { target } => {
                assert_eq!(m.kind, Kind::Symlink(target.clone()), "{fs}: {path}")
            }
            EntryKind::Char { .. } | EntryKind::Block { .. } | EntryKind::Fifo => {
                assert!(matches!(m.kind, Kind::Other(_)), "{fs}: {path}: {:?}", m.kind)
            }
            EntryKind::HardLink { .. } => unreachable!("resolved by expected()"),
        }
        if !matches!(entry.kind, EntryKind::Symlink { .. }) {
            assert_eq!(m.mode, entry.perm(), "{fs}: {path}");
        }
        assert_eq!((m.uid, m.gid), (entry.uid, entry.gid), "{fs}: {path}");
    }
    let dev = list.iter().find(|m| m.path == "dev/sda").unwrap();
    assert_eq!(dev.extra, "dev 8,16", "{fs}");
    // Missing parents are made by the writers: listed too, nothing else.
    let extra: Vec<_> = list.iter().filter(|m| !want.contains_key(&m.path)).collect();
    for m in extra {
        assert_eq!(m.kind, Kind::Dir, "{fs}: {} is not in the tree", m.path);
    }
}

#[test]
fn both_readers_list_the_tree_the_writers_were_given() {
    let tree = edge_tree();
    let (s, e) = (squashfs_list(&squashfs(&tree)), erofs_list(&erofs(&tree)));
    check_against_tree(&s, "squashfs");
    check_against_tree(&e, "erofs");
    assert_eq!(first_difference(&s, &e), None, "squashfs and erofs of one tree list alike");
    let owned = s.iter().find(|m| m.path == "home/user/notes").unwrap();
    assert_eq!(owned.mtime, 1_700_000_000);
}

/// The offset of `needle` in `img` (a file's data is stored whole: uncompressed in erofs,
/// uncompressible noise stored as is in squashfs).
fn find(img: &[u8], needle: &[u8]) -> usize {
    img.windows(needle.len()).position(|w| w == needle).expect("the file's bytes are in the image")
}

#[test]
fn one_changed_byte_in_a_file_is_named() {
    let tree = edge_tree();
    let data = &tree.iter().find(|(e, _)| e.path == "etc/one-block").unwrap().1;
    for (fs, img, list) in [
        ("squashfs", squashfs(&tree), squashfs_list as fn(&[u8]) -> Vec<Member>),
        ("erofs", erofs(&tree), erofs_list),
    ] {
        let mut tampered = img.clone();
        let at = find(&img, &data[..64]) + 100;
        tampered[at] ^= 1;
        let d = first_difference(&list(&tampered), &list(&img)).expect(fs);
        assert_eq!(d.path, "etc/one-block", "{fs}");
        assert_eq!(d.what, What::Content { output_size: 4096, rebuilt_size: 4096 }, "{fs}");
        assert_eq!(d.to_string(), "etc/one-block: content differs (both 4096 bytes)");
    }
}

#[test]
fn a_damaged_image_is_an_error_not_a_listing() {
    let tree = edge_tree();
    let mut s = squashfs(&tree);
    s[0] = b'x';
    let err = squashfs_members(&mut Cursor::new(&s)).unwrap_err().to_string();
    assert!(err.contains("no squashfs magic"), "{err}");
    let mut e = erofs(&tree);
    e[1024] ^= 0xff;
    let err = erofs_members(&mut Cursor::new(&e)).unwrap_err().to_string();
    assert!(err.contains("no erofs magic"), "{err}");
    // Truncated: the tables are gone.
    let s = squashfs(&tree);
    assert!(squashfs_members(&mut Cursor::new(&s[..s.len() / 2])).is_err());
    let e = erofs(&tree);
    assert!(erofs_members(&mut Cursor::new(&e[..8192])).is_err());
}

#[test]
fn an_erofs_directory_that_contains_itself_is_refused() {
    // `sub`'s dirent for `loop` points back at the root (nid 0): a cycle.
    let tree = vec![
        (baleen_tree::Entry::new("sub", EntryKind::Dir, 0o755), vec![]),
        (baleen_tree::Entry::new("sub/loop", EntryKind::Dir, 0o755), vec![]),
    ];
    let img = erofs(&tree);
    let list = erofs_list(&img);
    assert_eq!(list.iter().map(|m| m.path.as_str()).collect::<Vec<_>>(), ["sub", "sub/loop"]);
    let loop_nid = {
        // `sub`'s inline block: three 12-byte dirents (`.`, `..`, `loop`: 8-byte nid,
        // nameoff, type), then their names.
        let at = find(&img, b"...loop") - 3 * 12;
        let nid = u64::from_le_bytes(img[at + 24..at + 32].try_into().unwrap());
        assert_ne!(nid, 0);
        at + 24
    };
    let mut bad = img.clone();
    bad[loop_nid..loop_nid + 8].copy_from_slice(&0u64.to_le_bytes());
    let err = erofs_members(&mut Cursor::new(&bad)).unwrap_err().to_string();
    assert!(err.contains("reached twice"), "{err}");
}
