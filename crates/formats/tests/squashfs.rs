//! The squashfs writer against `unsquashfs` (the listing with numeric owners, and extraction
//! compared with the tree) and itself (two builds, same bytes).

use baleen_formats::SquashfsWriter;
use baleen_testkit::require_tool;
use baleen_tree::EntryKind;
use std::io::Cursor;
use std::process::Command;

mod fs_common;
use fs_common::*;

fn image(tree: &[(baleen_tree::Entry, Vec<u8>)]) -> Vec<u8> {
    let mut w = SquashfsWriter::new(Cursor::new(Vec::new())).unwrap();
    feed(&mut w, tree);
    w.finish().unwrap().into_inner()
}

#[test]
fn two_builds_are_identical() {
    let tree = edge_tree();
    let (a, b) = (image(&tree), image(&tree));
    assert!(a == b, "two builds of the same tree differ");
    assert_eq!(&a[..4], b"hsqs");
    assert_eq!(a.len() % 4096, 0, "padded to 4 KiB as mksquashfs does");
}

/// `unsquashfs -lln` prints `mode uid/gid size date time path[ -> target]`; this is what it
/// should print for the tree.
fn want_listing(tree: &[(baleen_tree::Entry, Vec<u8>)]) -> Vec<String> {
    let want = expected(tree);
    let mut paths: Vec<String> = want.keys().cloned().collect();
    for p in want.keys() {
        let parts: Vec<&str> = p.split('/').collect();
        paths.extend((1..parts.len()).map(|i| parts[..i].join("/")));
    }
    paths.sort();
    paths.dedup();
    let mut lines = vec!["drwxr-xr-x 0/0 r".to_owned()];
    for p in paths {
        let line = match want.get(&p) {
            None => "drwxr-xr-x 0/0".to_owned(),
            Some((e, data)) => {
                let (t, size) = match &e.kind {
                    EntryKind::File { .. } | EntryKind::HardLink { .. } => {
                        ('-', data.len().to_string())
                    }
                    EntryKind::Dir => ('d', String::new()),
                    EntryKind::Symlink { target } => ('l', target.len().to_string()),
                    EntryKind::Char { major, minor } => ('c', format!("{major}, {minor}")),
                    EntryKind::Block { major, minor } => ('b', format!("{major}, {minor}")),
                    EntryKind::Fifo => ('p', "0".to_owned()),
                };
                let perm =
                    if matches!(e.kind, EntryKind::Symlink { .. }) { 0o777 } else { e.perm() };
                let mut s = format!("{t}{} {}/{}", rwx(perm), e.uid, e.gid);
                if !size.is_empty() {
                    s.push_str(&format!(" {size}"));
                }
                s
            }
        };
        let mut line = format!("{line} r/{p}");
        if let Some((baleen_tree::Entry { kind: EntryKind::Symlink { target }, .. }, _)) =
            want.get(&p)
        {
            line.push_str(&format!(" -> {target}"));
        }
        lines.push(line);
    }
    lines
}

fn rwx(perm: u32) -> String {
    let mut s = String::new();
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        let bit = 0o400 >> i;
        let special = match i {
            2 => perm & 0o4000 != 0,
            5 => perm & 0o2000 != 0,
            8 => perm & 0o1000 != 0,
            _ => false,
        };
        let x = perm & bit != 0;
        s.push(match (special, x, i) {
            (true, true, 8) => 't',
            (true, false, 8) => 'T',
            (true, true, _) => 's',
            (true, false, _) => 'S',
            (false, true, _) => c,
            (false, false, _) => '-',
        });
    }
    s
}

#[test]
fn unsquashfs_lists_and_extracts_the_tree() {
    let Some(_) = require_tool("unsquashfs") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("root.squashfs");
    let tree = extractable_tree();
    std::fs::write(&img, image(&tree)).unwrap();
    let out = Command::new("unsquashfs").args(["-lln", "-d", "r"]).arg(&img).output().unwrap();
    assert!(out.status.success(), "unsquashfs -lln: {}", String::from_utf8_lossy(&out.stderr));
    // Drop the date and time columns (local time) and directories' sizes (listing bytes), and
    // collapse the padding.
    let got: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let dated = 2 + cols[2..]
                .iter()
                .position(|c| c.len() == 10 && c.as_bytes()[4] == b'-')
                .expect("a date column");
            let keep = if l.starts_with('d') { 2 } else { dated };
            [&cols[..keep], &cols[dated + 2..]].concat().join(" ")
        })
        .collect();
    let want = want_listing(&tree);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "unsquashfs -lln, first difference");
    }
    assert_eq!(got.len(), want.len(), "unsquashfs -lln lines");
    let dir = tmp.path().join("x");
    let out = Command::new("unsquashfs").arg("-d").arg(&dir).arg(&img).output().unwrap();
    assert!(out.status.success(), "unsquashfs: {}", String::from_utf8_lossy(&out.stderr));
    compare_dir(&dir, &tree, is_root());
}
