//! The erofs writer against `fsck.erofs` (structure, and `--extract` compared with the tree) and
//! itself (two builds, same bytes).

use baleen_formats::ErofsWriter;
use baleen_testkit::require_tool;
use std::io::Cursor;
use std::process::Command;

mod fs_common;
use fs_common::*;

fn image(tree: &[(baleen_tree::Entry, Vec<u8>)]) -> Vec<u8> {
    let mut w = ErofsWriter::new(Cursor::new(Vec::new())).unwrap();
    feed(&mut w, tree);
    w.finish().unwrap().into_inner()
}

#[test]
fn two_builds_are_identical_and_block_aligned() {
    let tree = edge_tree();
    let (a, b) = (image(&tree), image(&tree));
    assert!(a == b, "two builds of the same tree differ");
    assert_eq!(a.len() % 4096, 0);
    assert_eq!(&a[1024..1028], &0xE0F5_E1E2u32.to_le_bytes(), "the magic at 1024");
}

#[test]
fn fsck_erofs_passes_and_extracts_the_tree() {
    let Some(_) = require_tool("fsck.erofs") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("root.erofs");
    let tree = extractable_tree();
    std::fs::write(&img, image(&tree)).unwrap();
    let out = Command::new("fsck.erofs").arg(&img).output().unwrap();
    assert!(out.status.success(), "fsck.erofs: {}", String::from_utf8_lossy(&out.stderr));
    let dir = tmp.path().join("x");
    let out = Command::new("fsck.erofs")
        .arg(format!("--extract={}", dir.display()))
        .arg(&img)
        .output()
        .unwrap();
    assert!(out.status.success(), "fsck.erofs --extract: {}", String::from_utf8_lossy(&out.stderr));
    compare_dir(&dir, &tree, is_root());
}

#[test]
fn a_file_cut_short_is_an_error() {
    let mut w = ErofsWriter::new(Cursor::new(Vec::new())).unwrap();
    let e = baleen_tree::Entry::new("f", baleen_tree::EntryKind::File { size: 10 }, 0o644);
    let err = baleen_tree::EntrySink::add(&mut w, &e, &mut &b"abc"[..]).unwrap_err();
    assert!(err.to_string().contains("10 bytes announced, 3 supplied"), "{err}");
}
