//! The tree both filesystem writers are checked with, and the comparison of an extracted
//! directory against it.

#![allow(dead_code)] // each test binary uses its own part

use baleen_tree::{Entry, EntryKind, EntrySink, Mtime};
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// Deterministic pseudo-random bytes (xorshift), so that compression cannot hide a wrong offset.
pub use baleen_testkit::noise;

fn e(path: &str, kind: EntryKind, mode: u32) -> Entry {
    Entry::new(path, kind, mode)
}

fn f(path: &str, data: &[u8], mode: u32) -> (Entry, Vec<u8>) {
    (e(path, EntryKind::File { size: data.len() as u64 }, mode), data.to_vec())
}

/// The edge cases: a 1000-entry directory spanning blocks, a long symlink, an empty file, a
/// file of exactly one 4 KiB block, a 3 MiB file, a file re-emitted (the later one wins), a
/// hard link, devices, a fifo, owners and modes, a missing parent, an mtime other than the epoch.
pub fn edge_tree() -> Vec<(Entry, Vec<u8>)> {
    let mut v = vec![
        (e("bin", EntryKind::Dir, 0o755), vec![]),
        f("bin/busybox", &noise(70_000, 1), 0o755),
        (e("bin/sh", EntryKind::Symlink { target: "busybox".into() }, 0o777), vec![]),
        (e("etc", EntryKind::Dir, 0o755), vec![]),
        f("etc/empty", b"", 0o644),
        f("etc/one-block", &noise(4096, 2), 0o600),
        f("etc/motd", b"first\n", 0o644),
        f("etc/motd", b"second, longer\n", 0o644),
        f("var/lib/big", &noise(3 << 20, 3), 0o640),
        (e("etc/motd-link", EntryKind::HardLink { target: "etc/motd".into() }, 0o644), vec![]),
        (e("dev", EntryKind::Dir, 0o755), vec![]),
        (e("dev/null", EntryKind::Char { major: 1, minor: 3 }, 0o666), vec![]),
        (e("dev/sda", EntryKind::Block { major: 8, minor: 16 }, 0o660), vec![]),
        (e("run/fifo", EntryKind::Fifo, 0o600), vec![]),
        (e("tmp", EntryKind::Dir, 0o1777), vec![]),
        (
            e("long", EntryKind::Symlink { target: format!("/{}", "x/".repeat(1500)) }, 0o777),
            vec![],
        ),
    ];
    let mut owned = f("home/user/notes", b"mine", 0o600);
    owned.0.uid = 1000;
    owned.0.gid = 100_000;
    owned.0.mtime = Mtime { secs: 1_700_000_000, nanos: 0 };
    v.push(owned);
    v.push((e("many", EntryKind::Dir, 0o755), vec![]));
    for i in 0..1000 {
        v.push(f(
            &format!("many/entry-with-a-longish-name-{i:04}"),
            format!("{i}").as_bytes(),
            0o644,
        ));
    }
    v
}

/// Whether this process can make device nodes and set owners (extraction tests compare both only
/// then; an ordinary user's tree leaves devices out).
pub fn is_root() -> bool {
    tempfile::tempfile().ok().and_then(|f| f.metadata().ok()).is_some_and(|m| m.uid() == 0)
}

/// [`edge_tree`] without device nodes when not root.
pub fn extractable_tree() -> Vec<(Entry, Vec<u8>)> {
    let root = is_root();
    edge_tree()
        .into_iter()
        .filter(|(e, _)| {
            root || !matches!(e.kind, EntryKind::Char { .. } | EntryKind::Block { .. })
        })
        .collect()
}

/// Feeds entries to a sink.
pub fn feed<S: EntrySink>(sink: &mut S, tree: &[(Entry, Vec<u8>)]) {
    for (entry, data) in tree {
        sink.add(entry, &mut &data[..]).unwrap_or_else(|e| panic!("adding {}: {e}", entry.path));
    }
}

/// What each path should be after extraction: the last entry at each path, hard links resolved.
pub fn expected(tree: &[(Entry, Vec<u8>)]) -> BTreeMap<String, (Entry, Vec<u8>)> {
    let mut m: BTreeMap<String, (Entry, Vec<u8>)> = BTreeMap::new();
    for (entry, data) in tree {
        let v = match &entry.kind {
            EntryKind::HardLink { target } => m[target].clone(),
            _ => (entry.clone(), data.clone()),
        };
        m.insert(entry.path.clone(), v);
    }
    m
}

/// Walks `root` and compares every path with the expected tree: type, permissions, owner,
/// contents, link targets, device numbers; and that nothing is missing or extra.
pub fn compare_dir(root: &Path, tree: &[(Entry, Vec<u8>)], owners: bool) {
    let want = expected(tree);
    let mut seen = Vec::new();
    walk(root, root, &mut seen);
    let mut implied: Vec<String> = want
        .keys()
        .flat_map(|p| {
            let parts: Vec<&str> = p.split('/').collect();
            (1..parts.len()).map(move |i| parts[..i].join("/"))
        })
        .collect();
    implied.extend(want.keys().cloned());
    implied.sort();
    implied.dedup();
    assert_eq!(seen, implied, "the extracted paths");
    for (path, (entry, data)) in &want {
        let p = root.join(path);
        let md = std::fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        match &entry.kind {
            EntryKind::File { .. } | EntryKind::HardLink { .. } => {
                assert!(ft.is_file(), "{path} is a file");
                assert!(std::fs::read(&p).unwrap() == *data, "{path}: contents differ");
            }
            EntryKind::Dir => assert!(ft.is_dir(), "{path} is a directory"),
            EntryKind::Symlink { target } => {
                assert!(ft.is_symlink(), "{path} is a symlink");
                assert_eq!(std::fs::read_link(&p).unwrap().to_str().unwrap(), target, "{path}");
            }
            EntryKind::Char { major, minor } | EntryKind::Block { major, minor } => {
                assert!(ft.is_char_device() || ft.is_block_device(), "{path} is a device");
                let rdev = md.rdev();
                assert_eq!((libc_major(rdev), libc_minor(rdev)), (*major, *minor), "{path}");
            }
            EntryKind::Fifo => assert!(ft.is_fifo(), "{path} is a fifo"),
        }
        if !ft.is_symlink() {
            assert_eq!(md.mode() & 0o7777, entry.perm(), "{path}: mode");
        }
        if owners {
            assert_eq!((md.uid() as u64, md.gid() as u64), (entry.uid, entry.gid), "{path}: owner");
        }
    }
}

fn libc_major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff)) as u32
}
fn libc_minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0xff)) as u32
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let mut rd: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    rd.sort();
    for p in rd {
        out.push(p.strip_prefix(root).unwrap().to_str().unwrap().to_owned());
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            walk(root, &p, out);
        }
    }
    out.sort();
}
