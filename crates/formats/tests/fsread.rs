//! The squashfs and erofs readers of `baleen verify` on the writers' own images: every path of
//! the edge tree is listed with its kind, mode, owner and data hash (the two filesystems, written
//! and read by independent code, agree entry for entry); one byte changed inside a file's data
//! names that file; a damaged superblock or a directory that loops is an error, not a hang.

use baleen_formats::compare::{first_difference, Kind, Member, What};
use baleen_formats::{erofs_members, squashfs_members, ErofsWriter, SquashfsWriter};
use baleen_tree::EntryKind;
use sha2::{Digest as _, Sha256};
use std::io::{Cursor, Read as _};

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

fn file(path: &str, data: Vec<u8>) -> (baleen_tree::Entry, Vec<u8>) {
    let kind = EntryKind::File { size: data.len() as u64 };
    (baleen_tree::Entry::new(path, kind, 0o644), data)
}

fn dir(path: &str) -> (baleen_tree::Entry, Vec<u8>) {
    (baleen_tree::Entry::new(path, EntryKind::Dir, 0o755), vec![])
}

/// Both readers on one image; the errors they give, as text.
fn both_errors(tree: &[(baleen_tree::Entry, Vec<u8>)]) -> [String; 2] {
    let s = squashfs(tree);
    let e = erofs(tree);
    [
        squashfs_members(&mut Cursor::new(&s)).unwrap_err().to_string(),
        erofs_members(&mut Cursor::new(&e)).unwrap_err().to_string(),
    ]
}

#[test]
fn a_path_longer_than_path_max_is_refused() {
    // 21 levels of 200-byte names: 4220 bytes, each name fine, the path past PATH_MAX.
    let name = "d".repeat(200);
    let mut path = String::new();
    let mut tree = Vec::new();
    for _ in 0..21 {
        path = if path.is_empty() { name.clone() } else { format!("{path}/{name}") };
        tree.push(dir(&path));
    }
    for err in both_errors(&tree) {
        assert!(err.contains("a path of 4220 bytes"), "{err}");
    }
}

#[test]
fn a_name_longer_than_name_max_is_refused() {
    // Letters that do not compress: squashfs refuses a listing longer than the whole image.
    let name: String = noise(256, 9).iter().map(|b| char::from(b'a' + b % 26)).collect();
    let tree = vec![file(&name, b"x".to_vec())];
    for err in both_errors(&tree) {
        assert!(err.contains("a name of 256 bytes"), "{err}");
    }
}

/// erofs: the metadata area's start, the root directory's dirents (nid, name) in order.
fn erofs_root_dirents(img: &[u8], names: &[u8], count: usize) -> (usize, Vec<usize>) {
    let sb = 1024;
    let block = 1usize << img[sb + 12];
    let meta = u32::from_le_bytes(img[sb + 40..sb + 44].try_into().unwrap()) as usize * block;
    let first = find(img, names) - count * 12;
    (meta, (0..count).map(|i| first + i * 12).collect())
}

fn nid_at(img: &[u8], dirent: usize) -> usize {
    u64::from_le_bytes(img[dirent..dirent + 8].try_into().unwrap()) as usize
}

#[test]
fn erofs_entries_naming_one_file_hash_it_once() {
    // Every `bN` entry made to name `a`'s inode: the listing holds `a`'s hash nine times
    // (the file is hashed once: 9 × 256 KiB would be past 4 × the image's length).
    let mut tree = vec![file("a", noise(256 << 10, 1))];
    tree.extend((0..8).map(|i| file(&format!("b{i}"), noise(4096, 2 + i))));
    let mut img = erofs(&tree);
    let (_, dirents) = erofs_root_dirents(&img, b"...ab0b1b2", 11);
    let a = img[dirents[2]..dirents[2] + 8].to_vec();
    for d in &dirents[3..] {
        img[*d..*d + 8].copy_from_slice(&a);
    }
    let list = erofs_list(&img);
    let want = <[u8; 32]>::from(Sha256::digest(noise(256 << 10, 1)));
    assert_eq!(list.len(), 9);
    assert!(list.iter().all(|m| m.sha256 == want && m.size == 256 << 10));
}

#[test]
fn erofs_inodes_sharing_one_file_data_are_refused() {
    // Each `bN` inode made a copy of `a`'s: distinct inodes, one 256 KiB run of data each,
    // 17 × 256 KiB to hash from a ~330 KiB image.
    let mut tree = vec![file("a", noise(256 << 10, 1))];
    tree.extend((0..16).map(|i| file(&format!("b{i:02}"), noise(4096, 2 + i))));
    let mut img = erofs(&tree);
    let (meta, dirents) = erofs_root_dirents(&img, b"...ab00b01", 19);
    let inode = |img: &[u8], d: usize| meta + nid_at(img, d) * 32;
    let a = inode(&img, dirents[2]);
    let len = if img[a] & 1 != 0 { 64 } else { 32 };
    let a_inode = img[a..a + len].to_vec();
    for d in &dirents[3..] {
        let b = inode(&img, *d);
        assert_eq!(img[b] & 1, a_inode[0] & 1, "b's inode the size of a's");
        img[b..b + len].copy_from_slice(&a_inode);
    }
    let err = erofs_members(&mut Cursor::new(&img)).unwrap_err().to_string();
    assert!(err.contains("more file data than 4 × the image's length"), "{err}");
}

#[test]
fn erofs_an_inode_at_the_end_of_the_address_space_is_refused() {
    let mut img = erofs(&[file("a", b"x".to_vec())]);
    let (meta, dirents) = erofs_root_dirents(&img, b"...a", 3);
    // meta + nid × 32 is the last 32 bytes below 2^64: reading 32 bytes from there overflows.
    let nid = (u64::MAX - 31 - meta as u64) / 32;
    img[dirents[2]..dirents[2] + 8].copy_from_slice(&nid.to_le_bytes());
    let err = erofs_members(&mut Cursor::new(&img)).unwrap_err().to_string();
    assert!(err.contains("past the end"), "{err}");
}

#[test]
fn squashfs_tables_at_the_end_of_the_address_space_are_refused() {
    let img = squashfs(&[file("a", b"x".to_vec())]);
    // More than 2048 ids: the second id block's pointer is 8 bytes past a table at 2^64 - 4.
    let mut ids = img.clone();
    ids[26..28].copy_from_slice(&4096u16.to_le_bytes());
    ids[48..56].copy_from_slice(&(u64::MAX - 4).to_le_bytes());
    let err = squashfs_members(&mut Cursor::new(&ids)).unwrap_err().to_string();
    assert!(err.contains("squashfs image"), "{err}");
    // The root inode one block past an inode table at 2^64 - 1.
    let mut inodes = img.clone();
    inodes[32..40].copy_from_slice(&(1u64 << 16).to_le_bytes());
    inodes[64..72].copy_from_slice(&u64::MAX.to_le_bytes());
    let err = squashfs_members(&mut Cursor::new(&inodes)).unwrap_err().to_string();
    assert!(err.contains("inode reference 0x10000 past the end"), "{err}");
}

#[test]
fn a_file_compressing_far_below_the_image_is_listed() {
    // 8 MiB of zeros squashes to a few KiB: the hashing budget counts the bytes read, not
    // the bytes they inflate to, so an honest compressible file is no hostile image.
    let zeros = vec![0u8; 8 << 20];
    let tree = vec![file("zeros", zeros.clone())];
    let want = <[u8; 32]>::from(Sha256::digest(&zeros));
    let img = squashfs(&tree);
    assert!(img.len() < (1 << 20), "{} bytes", img.len());
    for list in [squashfs_list(&img), erofs_list(&erofs(&tree))] {
        assert_eq!(list.len(), 1);
        assert_eq!((list[0].size, list[0].sha256), (8 << 20, want));
    }
}

#[test]
fn many_empty_files_in_deep_directories_are_listed() {
    // Metadata that compresses well: the member cap and the listing bound leave an honest
    // image room.
    let mut tree: Vec<_> =
        ["usr", "usr/share", "usr/share/doc", "usr/share/doc/pkg"].into_iter().map(dir).collect();
    tree.extend((0..20_000).map(|i| file(&format!("usr/share/doc/pkg/file-{i:05}"), vec![])));
    let s = squashfs(&tree);
    // ~48 KiB used for 20,004 members: 2.4 bytes of image each, a 361 KB root listing.
    assert_eq!(squashfs_list(&s).len(), tree.len());
    assert_eq!(erofs_list(&erofs(&tree)).len(), tree.len());
}

#[test]
fn squashfs_inodes_sharing_one_file_data_are_refused() {
    // `a` is 512 KiB of noise; each `bNN` 512 KiB of zeros (a few bytes stored). Every `bNN`
    // inode is made to point at `a`'s blocks: 17 × 512 KiB to read from a ~520 KiB image.
    let size = 512u32 << 10;
    let mut tree = vec![file("a", noise(size as usize, 1))];
    tree.extend((0..16).map(|i| file(&format!("b{i:02}"), vec![0; size as usize])));
    let mut img = squashfs(&tree);
    let le32 = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let le64 = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let (inodes, dirs) = (le64(&img, 64) as usize, le64(&img, 72) as usize);
    // The inode table, one zlib metadata block: inflated, patched, stored again at the end.
    let header = usize::from(u16::from_le_bytes([img[inodes], img[inodes + 1]]));
    assert_eq!(header & 0x8000, 0, "a compressed block");
    assert_eq!(inodes + 2 + header, dirs, "one metadata block");
    let mut table = Vec::new();
    flate2::read::ZlibDecoder::new(&img[inodes + 2..dirs]).read_to_end(&mut table).unwrap();
    let files: Vec<usize> = (0..table.len().saturating_sub(48))
        .filter(|&o| {
            u16::from_le_bytes([table[o], table[o + 1]]) == 2
                && le32(&table, o + 20) == u32::MAX
                && le32(&table, o + 28) == size
        })
        .collect();
    assert_eq!(files.len(), 17);
    let a = *files.iter().find(|&&o| le32(&table, o + 32) & 0xff_ffff > 100_000).unwrap();
    let a_data = table[a + 16..a + 20].to_vec();
    let a_blocks = table[a + 32..a + 48].to_vec();
    for &b in files.iter().filter(|&&o| o != a) {
        table[b + 16..b + 20].copy_from_slice(&a_data);
        table[b + 32..b + 48].copy_from_slice(&a_blocks);
    }
    let at = img.len() as u64;
    img.extend_from_slice(&(u16::try_from(table.len()).unwrap() | 0x8000).to_le_bytes());
    img.extend_from_slice(&table);
    let used = img.len() as u64;
    img[64..72].copy_from_slice(&at.to_le_bytes());
    img[40..48].copy_from_slice(&used.to_le_bytes());
    let err = squashfs_members(&mut Cursor::new(&img)).unwrap_err().to_string();
    assert!(err.contains("more file data than 4 × the image's length"), "{err}");
}

/// `squashfs_file` and `erofs_file` (what `baleen audit` reads an SBOM through): the file at
/// its path, with a large file of it (inline and in blocks); `None` for a path the image does
/// not hold or that is a directory; a file past `max` refused by name, not read.
#[test]
fn one_file_is_read_by_its_path_and_bounded() {
    use baleen_formats::compare::Wanted;
    use baleen_formats::{erofs_file, squashfs_file};
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let tree = [
        dir("etc"),
        file("etc/motd", b"hello\n".to_vec()),
        dir("var"),
        file("var/big", big.clone()),
        file("sbom.spdx.json", b"{\"spdxVersion\":\"SPDX-2.3\"}".to_vec()),
    ];
    let want = |path| Wanted { path, max: 1 << 20 };
    for (fs, img) in [("squashfs", squashfs(&tree)), ("erofs", erofs(&tree))] {
        let read = |w: Wanted<'_>| {
            let mut c = Cursor::new(&img[..]);
            if fs == "squashfs" {
                squashfs_file(&mut c, w)
            } else {
                erofs_file(&mut c, w)
            }
        };
        assert_eq!(read(want("etc/motd")).unwrap().as_deref(), Some(&b"hello\n"[..]), "{fs}");
        assert_eq!(read(want("var/big")).unwrap(), Some(big.clone()), "{fs}");
        assert_eq!(read(want("/sbom.spdx.json")).unwrap().map(|d| d.len()), Some(26), "{fs}");
        assert_eq!(read(want("etc/nothing")).unwrap(), None, "{fs}");
        assert_eq!(read(want("etc")).unwrap(), None, "{fs}: a directory is no file");
        let err = read(Wanted { path: "var/big", max: 1000 }).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("the {fs} image's var/big is 300000 bytes, more than the 1000 read"),
            "{fs}"
        );
    }
}
