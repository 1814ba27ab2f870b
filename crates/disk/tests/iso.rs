//! The ISO 9660 + Rock Ridge writer against readers it shares no code with: `bsdtar`
//! (libarchive) extracts the image and every path, type, mode, owner, link target, device number
//! and byte is compared with the tree that went in; `isoinfo` and `isovfy` (cdrkit) and `xorriso`
//! (libisofs) check the descriptors, the Rock Ridge names and the El Torito catalog.

use baleen_disk::{BiosBoot, IsoOptions, IsoTree, IsoWriteError};
use baleen_tree::{Entry, EntryKind, EntrySink, Mtime};
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

fn file(path: &str, data: &[u8], mode: u32) -> (Entry, Vec<u8>) {
    (Entry::new(path, EntryKind::File { size: data.len() as u64 }, mode), data.to_vec())
}

fn dir(path: &str, mode: u32) -> (Entry, Vec<u8>) {
    (Entry::new(path, EntryKind::Dir, mode), vec![])
}

fn symlink(path: &str, target: &str) -> (Entry, Vec<u8>) {
    (Entry::new(path, EntryKind::Symlink { target: target.into() }, 0o777), vec![])
}

fn owned(mut e: (Entry, Vec<u8>), uid: u64, gid: u64, mtime: i64) -> (Entry, Vec<u8>) {
    e.0.uid = uid;
    e.0.gid = gid;
    e.0.mtime = Mtime::secs(mtime);
    e
}

/// A tree with the awkward cases: long and colliding names, a 300-entry directory, 12 levels
/// of directories, symlinks (relative, absolute, long), a hard link, devices, a fifo, empty
/// files, owners, setuid, a re-emitted directory and a replaced file.
fn hostile_tree() -> Vec<(Entry, Vec<u8>)> {
    let mut t = vec![
        dir("etc", 0o755),
        file("etc/hosts", b"127.0.0.1 localhost\n", 0o644),
        file("etc/passwd", b"old", 0o644),
        owned(dir("home/user", 0o700), 1000, 1000, 1_600_000_000),
        owned(file("home/user/.profile", b"export A=1\n", 0o600), 1000, 100, 1_600_000_001),
        file("bin/busybox", &vec![0x7f; 70_000], 0o4755),
        symlink("bin/sh", "busybox"),
        (
            Entry::new("bin/ash", EntryKind::HardLink { target: "bin/busybox".into() }, 0o4755),
            vec![],
        ),
        symlink("lib/abs", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
        symlink("lib/up", "../etc/./hosts"),
        symlink("lib/long", &format!("/{}/{}", "t".repeat(200), "u".repeat(150))),
        file("empty", b"", 0o644),
        file("also-empty", b"", 0o600),
        file("Foo.txt", b"1", 0o644),
        file("foo.txt", b"2", 0o644),
        file("FOO.TXT", b"3", 0o644),
        file("caf\u{e9}.conf", b"unicode", 0o644),
        file(&format!("{}.tar.gz", "n".repeat(240)), b"a long name", 0o644),
        (Entry::new("dev/null", EntryKind::Char { major: 1, minor: 3 }, 0o666), vec![]),
        (Entry::new("dev/sda", EntryKind::Block { major: 8, minor: 0 }, 0o660), vec![]),
        (Entry::new("dev/initctl", EntryKind::Fifo, 0o600), vec![]),
    ];
    let deep: Vec<String> = (0..12).map(|i| format!("level{i}")).collect();
    t.push(file(&format!("{}/bottom", deep.join("/")), b"deep", 0o644));
    for i in 0..300 {
        t.push(file(
            &format!("many/entry-with-a-longish-name-{i:03}"),
            format!("{i}").as_bytes(),
            0o644,
        ));
    }
    // Later entries win: etc's mode changes, its children stay; passwd is replaced.
    t.push(dir("etc", 0o750));
    t.push(file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644));
    t
}

fn write_iso(
    entries: &[(Entry, Vec<u8>)],
    opts: &IsoOptions<'_>,
) -> Result<Vec<u8>, IsoWriteError> {
    let mut tree = IsoTree::new(tempfile::tempfile().unwrap());
    for (e, data) in entries {
        tree.add(e, &mut &data[..]).unwrap();
    }
    let mut out = Vec::new();
    let n = tree.write(opts, &mut out)?;
    assert_eq!(n, out.len() as u64);
    Ok(out)
}

const PLAIN: IsoOptions<'static> = IsoOptions { volume_id: "LinuxKit", joliet: true, bios: None };

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What extraction should give: later entries win, hard links resolved to their target's data.
fn expected(entries: &[(Entry, Vec<u8>)]) -> BTreeMap<String, (Entry, Vec<u8>)> {
    let mut m: BTreeMap<String, (Entry, Vec<u8>)> = BTreeMap::new();
    for (e, d) in entries {
        let mut e = e.clone();
        let mut d = d.clone();
        if let EntryKind::HardLink { target } = &e.kind {
            let (t, td) = m[target].clone();
            e.kind = t.kind;
            d = td;
        }
        let mut parent = Path::new(&e.path).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            let p = p.to_str().unwrap().to_string();
            m.entry(p.clone()).or_insert_with(|| (Entry::new(p, EntryKind::Dir, 0o755), vec![]));
            parent = Path::new(parent.unwrap()).parent();
        }
        match m.get_mut(&e.path) {
            Some(old) if old.0.kind == EntryKind::Dir && e.kind == EntryKind::Dir => old.0 = e,
            _ => {
                m.insert(e.path.clone(), (e, d));
            }
        }
    }
    m
}

/// Extracts `iso` with bsdtar and compares everything against `entries`.
fn compare_extracted(iso: &Path, entries: &[(Entry, Vec<u8>)]) {
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("bsdtar")
        .arg("-xpf")
        .arg(iso)
        .arg("--numeric-owner")
        .arg("-C")
        .arg(dir.path()));
    let want = expected(entries);
    let mut seen = Vec::new();
    for walk in walk(dir.path()) {
        let rel = walk.strip_prefix(dir.path()).unwrap().to_str().unwrap().to_string();
        seen.push(rel.clone());
        let (e, data) =
            want.get(&rel).unwrap_or_else(|| panic!("{rel} is extracted but was not in the tree"));
        let md = std::fs::symlink_metadata(&walk).unwrap();
        let ft = md.file_type();
        match &e.kind {
            EntryKind::File { .. } => {
                assert!(ft.is_file(), "{rel}: a file");
                assert_eq!(&std::fs::read(&walk).unwrap(), data, "{rel}: contents");
            }
            EntryKind::Dir => assert!(ft.is_dir(), "{rel}: a directory"),
            EntryKind::Symlink { target } => {
                assert!(ft.is_symlink(), "{rel}: a symlink");
                let got = std::fs::read_link(&walk).unwrap();
                // SL has no empty or `.` components to keep: compare normalised.
                let norm = |s: &str| {
                    s.split('/')
                        .filter(|c| !c.is_empty() && *c != ".")
                        .collect::<Vec<_>>()
                        .join("/")
                };
                assert_eq!(norm(got.to_str().unwrap()), norm(target), "{rel}: target");
                assert_eq!(
                    got.to_str().unwrap().starts_with('/'),
                    target.starts_with('/'),
                    "{rel}"
                );
            }
            EntryKind::Char { major, minor } | EntryKind::Block { major, minor } => {
                let is_char = matches!(e.kind, EntryKind::Char { .. });
                assert!(if is_char { ft.is_char_device() } else { ft.is_block_device() }, "{rel}");
                let rdev = md.rdev();
                assert_eq!((libc_major(rdev), libc_minor(rdev)), (*major, *minor), "{rel}: device");
            }
            EntryKind::Fifo => assert!(ft.is_fifo(), "{rel}: a fifo"),
            EntryKind::HardLink { .. } => unreachable!("resolved"),
        }
        if !ft.is_symlink() {
            assert_eq!(md.mode() & 0o7777, e.perm(), "{rel}: mode");
        }
        assert_eq!((u64::from(md.uid()), u64::from(md.gid())), (e.uid, e.gid), "{rel}: owner");
        if !ft.is_dir() && !ft.is_symlink() {
            assert_eq!(md.mtime(), e.mtime.secs, "{rel}: mtime");
        }
    }
    let want_paths: Vec<&String> = want.keys().collect();
    seen.sort();
    assert_eq!(seen.iter().collect::<Vec<_>>(), want_paths, "every path of the tree is extracted");
}

fn libc_major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff)) as u32
}

fn libc_minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0xff)) as u32
}

fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

#[test]
fn the_hostile_tree_reads_back_exactly_with_bsdtar() {
    let Some(_) = baleen_testkit::require_tool("bsdtar") else { return };
    let entries = hostile_tree();
    let iso = write_iso(&entries, &PLAIN).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("t.iso");
    std::fs::write(&path, &iso).unwrap();
    compare_extracted(&path, &entries);
}

#[test]
fn isoinfo_sees_the_volume_and_rock_ridge() {
    let Some(_) = baleen_testkit::require_tool("isoinfo") else { return };
    let entries = hostile_tree();
    let iso = write_iso(&entries, &PLAIN).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("t.iso");
    std::fs::write(&path, &iso).unwrap();
    // cdrkit's verifier walks every directory and path table entry.
    let v = run(Command::new("isovfy").arg(&path));
    assert!(v.contains("No errors found"), "{v}");
    let d = run(Command::new("isoinfo").arg("-d").arg("-i").arg(&path));
    assert!(d.contains("Volume id: LinuxKit"), "{d}");
    assert!(d.contains("Rock Ridge signatures version 1 found"), "{d}");
    assert!(d.contains("Joliet with UCS level 3 found"), "{d}");
    // The Joliet tree: long and non-ASCII names, files only where Rock Ridge has links too.
    let j = run(Command::new("isoinfo").arg("-J").arg("-l").arg("-i").arg(&path));
    assert!(j.contains("Directory listing of /level0/level1/level2/level3/level4/level5/level6/level7/level8/level9/level10/level11/"), "{j}");
    assert_eq!(j.matches("entry-with-a-longish-name-").count(), 300, "{j}");
    // isoinfo prints Joliet names in Latin-1.
    assert!(j.contains("caf\u{fffd}.conf;1"), "{j}");
    assert!(j.contains(&"n".repeat(103)) && !j.contains(&"n".repeat(104)), "names cut at 103: {j}");
    assert!(j.contains(" Foo.txt") && j.contains(" foo.txt") && j.contains(" FOO.TXT"), "{j}");
    assert!(!j.contains(" sh "), "no symlinks in Joliet: {j}");
    assert!(d.contains(&format!("Volume size is: {}", iso.len() / 2048)), "{d}");
    let l = run(Command::new("isoinfo").arg("-R").arg("-l").arg("-i").arg(&path));
    assert!(l.contains("Directory listing of /many/"), "{l}");
    assert_eq!(l.matches("entry-with-a-longish-name-").count(), 300, "{l}");
    assert!(l.contains("Directory listing of /level0/level1/level2/level3/level4/level5/level6/level7/level8/level9/level10/level11/"));
    // isoinfo does not print setuid bits (bsdtar checks them); it shows the hard link.
    let extent_of = |name: &str| {
        let line = l.lines().find(|x| x.trim_end().ends_with(&format!("  {name}"))).unwrap();
        assert!(line.starts_with("-rwxr-xr-x   2 "), "two links: {line}");
        line[line.find('[').unwrap()..].split(']').next().unwrap().to_string()
    };
    assert_eq!(extent_of("ash"), extent_of("busybox"), "hard links share an extent");
    assert!(l.contains(&"n".repeat(240)), "the long name: {l}");
    assert!(l.contains("sh -> busybox"), "{l}");
    // isoinfo prints owners in octal: 1000 and 100.
    assert!(l.contains(" 1750  144 "), "uid/gid of .profile: {l}");
}

#[test]
fn xorriso_finds_every_path() {
    let Some(_) = baleen_testkit::require_tool("xorriso") else { return };
    let entries = hostile_tree();
    let iso = write_iso(&entries, &PLAIN).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("t.iso");
    std::fs::write(&path, &iso).unwrap();
    let out = run(Command::new("xorriso").arg("-indev").arg(&path).args(["-find", "/", "--"]));
    let mut got: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix('\'').and_then(|l| l.strip_suffix('\'')))
        .map(|l| l.trim_start_matches('/').to_string())
        .filter(|l| !l.is_empty())
        .collect();
    got.sort();
    let want: Vec<String> = expected(&entries).into_keys().collect();
    assert_eq!(got, want);
}

#[test]
fn two_writes_are_byte_identical_and_a_change_shows() {
    let entries = hostile_tree();
    let a = write_iso(&entries, &PLAIN).unwrap();
    let b = write_iso(&entries, &PLAIN).unwrap();
    assert!(a == b, "same tree, same bytes");
    let mut changed = entries.clone();
    changed.push(file("etc/hostname", b"x\n", 0o644));
    assert!(write_iso(&changed, &PLAIN).unwrap() != a);
}

#[test]
fn a_dangling_hard_link_is_refused_with_its_path() {
    let mut tree = IsoTree::new(tempfile::tempfile().unwrap());
    let e = Entry::new("bin/ash", EntryKind::HardLink { target: "bin/nope".into() }, 0o755);
    let err = tree.add(&e, &mut std::io::empty()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("bin/ash") && msg.contains("bin/nope"), "{msg}");
}

#[test]
fn a_short_data_stream_is_an_error_naming_the_file() {
    let mut tree = IsoTree::new(tempfile::tempfile().unwrap());
    let e = Entry::new("big", EntryKind::File { size: 10 }, 0o644);
    let msg = tree.add(&e, &mut &b"abc"[..]).unwrap_err().to_string();
    assert!(msg.contains("\"big\"") && msg.contains("10") && msg.contains('3'), "{msg}");
}

/// A stand-in boot file: 4 KiB with a recognisable pattern.
fn fake_isolinux() -> Vec<u8> {
    (0..4096u32).map(|i| (i % 251) as u8).collect()
}

fn boot_tree() -> Vec<(Entry, Vec<u8>)> {
    let mut t = hostile_tree();
    t.push(file("isolinux/isolinux.bin", &fake_isolinux(), 0o444));
    t.push(file("isolinux/isolinux.cfg", b"default linux\n", 0o444));
    t
}

fn boot_opts(mbr: Option<&[u8]>) -> IsoOptions<'_> {
    IsoOptions {
        volume_id: "LinuxKit",
        joliet: true,
        bios: Some(BiosBoot {
            image: "isolinux/isolinux.bin",
            catalog: "isolinux/boot.cat",
            load_sectors: 4,
            hybrid_mbr: mbr,
        }),
    }
}

#[test]
fn el_torito_entry_and_boot_info_table() {
    let template = vec![0x33u8; 512];
    let iso = write_iso(&boot_tree(), &boot_opts(Some(&template))).unwrap();
    assert_eq!(iso.len() % (1 << 20), 0, "hybrid images are padded to a MiB");
    // The boot record points at the catalog, whose entry points at the patched file.
    assert_eq!(&iso[17 * 2048 + 1..17 * 2048 + 30], b"CD001\x01EL TORITO SPECIFICATION");
    let cat = u32::from_le_bytes(iso[17 * 2048 + 71..17 * 2048 + 75].try_into().unwrap()) as usize;
    let entry = &iso[cat * 2048 + 32..cat * 2048 + 64];
    assert_eq!((entry[0], entry[1], entry[6]), (0x88, 0, 4));
    let lba = u32::from_le_bytes(entry[8..12].try_into().unwrap()) as usize;
    let file = &iso[lba * 2048..lba * 2048 + 4096];
    let orig = fake_isolinux();
    assert_eq!(u32::from_le_bytes(file[8..12].try_into().unwrap()), 16, "PVD LBA");
    assert_eq!(u32::from_le_bytes(file[12..16].try_into().unwrap()) as usize, lba);
    assert_eq!(u32::from_le_bytes(file[16..20].try_into().unwrap()), 4096);
    let sum = orig[64..]
        .chunks(4)
        .fold(0u32, |s, w| s.wrapping_add(u32::from_le_bytes(w.try_into().unwrap())));
    assert_eq!(u32::from_le_bytes(file[20..24].try_into().unwrap()), sum);
    assert_eq!(&file[64..], &orig[64..], "the rest of the boot file is untouched");
    // The hybrid MBR.
    assert_eq!(&iso[..432], &template[..432]);
    assert_eq!(u32::from_le_bytes(iso[432..436].try_into().unwrap()) as usize, lba * 4);
    assert_eq!(&iso[510..512], &[0x55, 0xaa]);
    assert_eq!(u32::from_le_bytes(iso[458..462].try_into().unwrap()) as usize, iso.len() / 512);
}

#[test]
fn xorriso_reports_a_bios_no_emulation_entry() {
    let Some(_) = baleen_testkit::require_tool("xorriso") else { return };
    let iso = write_iso(&boot_tree(), &boot_opts(None)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("t.iso");
    std::fs::write(&path, &iso).unwrap();
    let out = Command::new("xorriso")
        .arg("-indev")
        .arg(&path)
        .args(["-report_el_torito", "plain"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("El Torito catalog  : "), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("El Torito boot img :   1"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("BIOS") && line.contains("y") && line.contains("none"), "{line}");
    assert!(line.contains("  4  "), "load size 4: {line}");
    assert!(text.contains("/isolinux/isolinux.bin"), "{text}");
    assert!(text.contains("El Torito cat path : /isolinux/boot.cat"), "{text}");
    assert!(text.contains("El Torito img opts :   1  boot-info-table"), "{text}");
}

#[test]
fn a_missing_boot_file_is_an_error() {
    let err = write_iso(&hostile_tree(), &boot_opts(None)).unwrap_err();
    assert!(err.to_string().contains("isolinux/isolinux.bin"), "{err}");
}

/// The writer's memory does not grow with file sizes: 64 MiB of data goes through the spool.
#[test]
fn large_files_stream_through_the_spool() {
    struct Pattern(u64);
    impl Read for Pattern {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0 as usize);
            buf[..n].fill(0x5a);
            self.0 -= n as u64;
            Ok(n)
        }
    }
    let size = 64 << 20;
    let mut tree = IsoTree::new(tempfile::tempfile().unwrap());
    tree.add(&Entry::new("big", EntryKind::File { size }, 0o644), &mut Pattern(size)).unwrap();
    let mut sink = std::io::sink();
    let n = tree.write(&PLAIN, &mut sink).unwrap();
    assert!(n > size && n < size + (1 << 20));
}

/// verify's ISO reader lists every file of the hostile tree by its Rock Ridge path (long
/// names, 12 levels, 300 entries), each extent holding the file's bytes, and names the one
/// file whose content changed.
#[test]
fn the_verify_reader_lists_rock_ridge_paths_and_names_a_changed_file() {
    use baleen_disk::compare::{compare_iso, Signature};
    let tree = hostile_tree();
    let iso = write_iso(&tree, &PLAIN).unwrap();
    let files = baleen_disk::iso::read::files(&mut std::io::Cursor::new(&iso)).unwrap();
    let want = expected(&tree);
    for (path, (e, data)) in &want {
        if !matches!(e.kind, EntryKind::File { .. }) {
            continue;
        }
        let f = files.iter().find(|f| f.path == format!("/{path}"));
        let f = f.unwrap_or_else(|| panic!("/{path} not listed"));
        let bytes = &iso[f.offset as usize..(f.offset + f.len) as usize];
        assert!(bytes == &data[..], "/{path}: extent does not hold its bytes");
    }
    let mut changed = tree.clone();
    let hosts = changed.iter_mut().find(|(e, _)| e.path == "etc/hosts").unwrap();
    hosts.1 = b"127.0.0.1 LOCALHOST\n".to_vec();
    let other = write_iso(&changed, &PLAIN).unwrap();
    let (mut a, mut b) = (std::io::Cursor::new(&other), std::io::Cursor::new(&iso));
    let place = compare_iso(&mut a, &mut b, Signature::Compare).unwrap().unwrap();
    assert_eq!(place.to_string(), "ISO file /etc/hosts: content differs");
    let (mut a, mut b) = (std::io::Cursor::new(&iso), std::io::Cursor::new(&iso));
    assert_eq!(compare_iso(&mut a, &mut b, Signature::Compare).unwrap(), None);
}

/// The bytes of every kind of ISO the writers make, pinned: a refactor of the writers must
/// leave each one identical (the digests were taken before the three ISO writers became one).
#[test]
fn iso_bytes_are_pinned() {
    use sha2::{Digest, Sha256};
    let hex = |b: &[u8]| format!("{:x}", Sha256::digest(b));
    let template = vec![0x33u8; 512];
    let plain_no_joliet = IsoOptions { volume_id: "CDROM", joliet: false, bios: None };
    let mut efi = Vec::new();
    let uki: Vec<u8> = (0..3_000_000usize).map(|i| (i * 13 % 241) as u8).collect();
    for arch in [baleen_disk::EfiArch::X64, baleen_disk::EfiArch::Aa64] {
        let mut img = Vec::new();
        baleen_disk::write_efi_iso(arch, &mut &uki[..], uki.len() as u64, b"seed", &mut img)
            .unwrap();
        efi.push(hex(&img));
    }
    let got = [
        hex(&write_iso(&hostile_tree(), &PLAIN).unwrap()),
        hex(&write_iso(&hostile_tree(), &plain_no_joliet).unwrap()),
        hex(&write_iso(&boot_tree(), &boot_opts(Some(&template))).unwrap()),
        hex(&write_iso(&boot_tree(), &boot_opts(None)).unwrap()),
        efi[0].clone(),
        efi[1].clone(),
    ];
    let want = [
        "a881b0a020c39e2f81615a36ba5cf26db0899c429d1cd71fff267440f78d2c7d",
        "2e2a901a98441602d1518591fa5c1d19f31ad88a9f17a82f19dcb2dd2d1cb2e1",
        "16e16dce9fb7985ac22477a15fb3d32dcd3cd0f4c83eccaf9d51a31b15d698a4",
        "b679b7919195de2ab9cd7e53e50137212d99f01fd1c852ed74a165a037b70dc0",
        "d685ba0397f71c4d9449e080ec37a6c92f242d688d59aea927a2ffa83e02e48a",
        "cd579d5488d79cf2ff78582f547030deffd4c1316ccdb79f8de9cd1822748a0b",
    ];
    assert_eq!(got, want);
}
