//! Hostile layers (issue 21): what they may expand to, hard links that cannot be made, and paths
//! the kernel cannot create. Each error names the image, the layer and the entry.

use baleen_testkit::layers::*;
use baleen_tree::*;
use std::io::Cursor;

fn image(layers: Vec<Vec<u8>>) -> Image {
    Image {
        reference: "docker.io/evil/bomb:1".into(),
        layers: layers
            .into_iter()
            .enumerate()
            .map(|(i, b)| Layer::new(format!("sha256:layer{i}"), "", Cursor::new(b)))
            .collect(),
    }
}

/// The init section of `image` through a tree writer within `limits`.
fn init(limits: Limits, image: Image) -> Result<Collect, TreeError> {
    let mut c = Collect::default();
    let mut w = TreeWriter::with_limits(&mut c, limits);
    w.init(0, image)?;
    Ok(c)
}

/// 4 MiB of zeros, gzipped to a few KiB: a bomb under a 1 MiB floor.
fn zeros_layer() -> Vec<u8> {
    gzip(&tar_layer(&[file("zeros", &vec![0u8; 4 << 20])]))
}

const SMALL_FLOOR: Expansion = Expansion { ratio: 100, floor: 1 << 20 };

#[test]
fn a_layer_expanding_past_the_ratio_is_refused_naming_image_layer_and_limit() {
    let limits = Limits { max_tree_bytes: None, expansion: Some(SMALL_FLOOR) };
    let err = init(limits, image(vec![tar_layer(&[file("a", b"a")]), zeros_layer()])).unwrap_err();
    assert!(matches!(err.limit(), Some(LimitError::Expands { ratio: 100, .. })), "{err:?}");
    let text = baleen_testkit::boot::chain(&err);
    for want in ["init[0]", "docker.io/evil/bomb:1", "sha256:layer1", "more than 100 times"] {
        assert!(text.contains(want), "{want:?} missing from: {text}");
    }
}

#[test]
fn the_expansion_check_can_be_turned_off_and_spares_ordinary_layers() {
    let off = Limits { max_tree_bytes: None, expansion: None };
    let c = init(off, image(vec![zeros_layer()])).unwrap();
    assert_eq!(c.get("zeros").unwrap().1.len(), 4 << 20);
    // Incompressible data expands by about 1×, whatever its size.
    let noise = gzip(&tar_layer(&[file("noise", &baleen_testkit::noise(3 << 20, 7))]));
    let on = Limits { max_tree_bytes: None, expansion: Some(SMALL_FLOOR) };
    assert!(init(on, image(vec![noise])).is_ok());
}

#[test]
fn a_tree_past_max_size_is_refused_before_the_entry_is_written() {
    let layer = tar_layer(&[file("one", &[1u8; 600 << 10]), file("two", &[2u8; 600 << 10])]);
    let limits = Limits { max_tree_bytes: Some(1 << 20), expansion: None };
    let mut c = Collect::default();
    let mut w = TreeWriter::with_limits(&mut c, limits);
    let err = w.init(0, image(vec![layer])).unwrap_err();
    assert!(matches!(err.limit(), Some(LimitError::TreeTooLarge { limit: 1048576, .. })));
    let text = baleen_testkit::boot::chain(&err);
    for want in ["docker.io/evil/bomb:1", "sha256:layer0", "\"two\"", "limit of 1 MiB"] {
        assert!(text.contains(want), "{want:?} missing from: {text}");
    }
    drop(w);
    assert_eq!(c.paths(), ["one"], "nothing of the entry over the limit reached the sink");
}

#[test]
fn max_size_counts_every_section_and_none_lifts_it() {
    let files = |n: usize| {
        vec![FileItem {
            index: 3,
            path: "etc/big".into(),
            kind: FileKind::Contents(FileData::Bytes(vec![0; n])),
            mode: None,
            uid: 0,
            gid: 0,
        }]
    };
    let limits = Limits { max_tree_bytes: Some(1000), expansion: None };
    let mut w = TreeWriter::with_limits(Collect::default(), limits);
    let err = w.files(files(1001)).unwrap_err();
    assert!(matches!(err.limit(), Some(LimitError::TreeTooLarge { .. })), "{err}");
    assert!(baleen_testkit::boot::chain(&err).contains("files[3]"), "{err}");
    let mut w = TreeWriter::with_limits(Collect::default(), Limits::NONE);
    w.files(files(1001)).unwrap();
}

fn flat(layers: Vec<Vec<u8>>) -> Result<Collect, TreeError> {
    init(Limits::NONE, image(layers))
}

/// The image's own paths in a collected init section (the touch list left out).
fn own_paths(c: &Collect) -> Vec<&str> {
    let touched = ["dev", "dev/pts", "dev/shm", "etc", "etc/hosts", "etc/mtab", "etc/resolv.conf"];
    c.paths().into_iter().filter(|p| !touched.contains(p) && *p != "proc" && *p != "sys").collect()
}

#[test]
fn hard_link_to_a_directory_is_refused_naming_layer_and_entry() {
    let err = flat(vec![tar_layer(&[dir("etc"), hardlink("bin/etc", "etc")])]).unwrap_err();
    let text = baleen_testkit::boot::chain(&err);
    for want in ["docker.io/evil/bomb:1", "sha256:layer0", "\"bin/etc\"", "is a directory"] {
        assert!(text.contains(want), "{want:?} missing from: {text}");
    }
    // A directory from a lower layer, or one only implied by the paths below it.
    let lower = tar_layer(&[dir("usr"), file("usr/lib/x", b"x")]);
    let err = flat(vec![lower.clone(), tar_layer(&[hardlink("a", "usr")])]).unwrap_err();
    assert!(baleen_testkit::boot::chain(&err).contains("is a directory"), "{err}");
    let err = flat(vec![lower, tar_layer(&[hardlink("a", "usr/lib")])]).unwrap_err();
    assert!(baleen_testkit::boot::chain(&err).contains("is a directory"), "{err}");
}

#[test]
fn hard_link_to_itself_is_refused() {
    let err = flat(vec![tar_layer(&[hardlink("bin/sh", "./bin/sh")])]).unwrap_err();
    let text = baleen_testkit::boot::chain(&err);
    assert!(text.contains("sha256:layer0") && text.contains("\"bin/sh\""), "{text}");
    assert!(text.contains("links to itself"), "{text}");
}

#[test]
fn hard_link_to_a_missing_or_whited_out_target_is_refused() {
    let err = flat(vec![tar_layer(&[hardlink("bin/sh", "bin/busybox")])]).unwrap_err();
    let text = baleen_testkit::boot::chain(&err);
    for want in ["sha256:layer0", "\"bin/sh\"", "\"bin/busybox\"", "no such file"] {
        assert!(text.contains(want), "{want:?} missing from: {text}");
    }
    // The target exists below, but an upper layer removed it.
    let lower = tar_layer(&[file("bin/busybox", b"bb")]);
    let upper = tar_layer(&[whiteout("bin/busybox")]);
    let top = tar_layer(&[hardlink("bin/sh", "bin/busybox")]);
    let err = flat(vec![lower, upper, top]).unwrap_err();
    assert!(baleen_testkit::boot::chain(&err).contains("sha256:layer2"), "{err}");
}

#[test]
fn hard_links_to_files_of_the_same_or_a_lower_layer_are_kept() {
    let lower = tar_layer(&[file("bin/busybox", b"bb")]);
    let upper = tar_layer(&[
        hardlink("bin/sh", "bin/busybox"),
        file("usr/bin/env", b"env"),
        hardlink("usr/bin/env2", "usr/bin/env"),
        hardlink("bin/ash", "bin/sh"),
    ]);
    let c = flat(vec![lower, upper]).unwrap();
    assert_eq!(own_paths(&c), ["bin/sh", "usr/bin/env", "usr/bin/env2", "bin/ash", "bin/busybox"]);
}

/// Issue 21: an opaque marker at the image root (`.wh..wh..opq` at top level) was ignored; as
/// the OCI spec says, it hides everything the lower layers have.
#[test]
fn an_opaque_marker_at_the_root_hides_every_lower_layer() {
    let lower = tar_layer(&[dir("usr"), file("usr/old", b"o"), file("top", b"t")]);
    let upper = tar_layer(&[file(".wh..wh..opq", b""), file("new", b"n"), dir("usr")]);
    let c = flat(vec![lower, upper]).unwrap();
    assert_eq!(own_paths(&c), ["new", "usr"]);
}

/// A path of `len` bytes: 100-byte components (`aaa…/bbb…/…`), the last one cut to fit.
fn long_path(len: usize) -> String {
    let mut p = String::new();
    let mut c = b'a';
    while p.len() < len {
        if !p.is_empty() {
            p.push('/');
        }
        let n = (len - p.len()).min(100);
        p.extend(std::iter::repeat_n(c as char, n));
        c = if c == b'z' { b'a' } else { c + 1 };
    }
    p
}

fn one_file(path: &str) -> Image {
    image(vec![tar_layer(&[file(path, b"x")])])
}

/// Issue 21: paths longer than PATH_MAX went into an initrd without a word, and the kernel
/// cannot create them. 4095 bytes (and the NUL) is the most Linux takes.
#[test]
fn a_path_longer_than_path_max_is_refused_naming_layer_and_shortened_path() {
    assert!(init(Limits::NONE, one_file(&long_path(4095))).is_ok());
    let err = init(Limits::NONE, one_file(&long_path(4096))).unwrap_err();
    let text = baleen_testkit::boot::chain(&err);
    for want in ["init[0]", "docker.io/evil/bomb:1", "sha256:layer0", "4096 bytes", "PATH_MAX"] {
        assert!(text.contains(want), "{want:?} missing from: {text}");
    }
    assert!(text.len() < 600, "the path is shortened for display: {text}");
    // Under a bundle's prefix, the same layer goes over.
    let mut c = Collect::default();
    let mut w = TreeWriter::with_limits(&mut c, Limits::NONE);
    let mut rt = |_: &str| Vec::new();
    let err = w
        .bundle(Bundle {
            section: Section::Services,
            index: 0,
            name: "svc",
            image: one_file(&long_path(4090)),
            readonly: true,
            config_json: b"{}",
            runtime_json: &mut rt,
        })
        .unwrap_err();
    assert!(baleen_testkit::boot::chain(&err).contains("PATH_MAX"), "{err}");
}

#[test]
fn a_name_longer_than_name_max_or_a_symlink_target_past_path_max_is_refused() {
    let name = |n: usize| format!("etc/{}", "n".repeat(n));
    assert!(init(Limits::NONE, one_file(&name(255))).is_ok());
    let err = baleen_testkit::boot::chain(&init(Limits::NONE, one_file(&name(256))).unwrap_err());
    assert!(err.contains("sha256:layer0") && err.contains("NAME_MAX"), "{err}");
    assert!(err.contains("256 bytes"), "{err}");
    // Test layers keep link names in the 100-byte header field: the files section makes the
    // long symlink.
    let mut w = TreeWriter::with_limits(Collect::default(), Limits::NONE);
    let items = |n: usize| {
        vec![FileItem {
            index: 0,
            path: "etc/l".into(),
            kind: FileKind::Symlink("t".repeat(n)),
            mode: None,
            uid: 0,
            gid: 0,
        }]
    };
    w.files(items(4095)).unwrap();
    let err = baleen_testkit::boot::chain(&w.files(items(4096)).unwrap_err());
    assert!(err.contains("files[0]") && err.contains("symlink target"), "{err}");
}

/// A tar whose one symlink has a target that is not UTF-8 (raw bytes in the header).
fn bad_symlink_target() -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    h.as_old_mut().name[..5].copy_from_slice(b"etc/l");
    h.as_old_mut().linkname[..4].copy_from_slice(b"t\xff\xfe/");
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &[][..]).unwrap();
    b.into_inner().unwrap()
}

/// Issue 21: a symlink whose target is not UTF-8 was reported as "the name is not UTF-8",
/// though the name was fine.
#[test]
fn a_symlink_target_that_is_not_utf8_is_blamed_not_the_name() {
    let err = baleen_testkit::boot::chain(&flat(vec![bad_symlink_target()]).unwrap_err());
    assert!(err.contains("\"etc/l\"") && err.contains("link target"), "{err}");
    assert!(err.contains("not UTF-8") && !err.contains("the name is"), "{err}");
}

/// Issue 21: a layer gzipped twice failed with "failed to read entire block"; a layer that is
/// not a tar at all gave some header complaint. Each now says what the layer is.
#[test]
fn a_layer_compressed_twice_or_not_a_tar_says_so() {
    let tar = tar_layer(&[file("a", b"a")]);
    let err = baleen_testkit::boot::chain(&flat(vec![gzip(&gzip(&tar))]).unwrap_err());
    assert!(err.contains("sha256:layer0") && err.contains("compressed twice"), "{err}");
    assert!(err.contains("gzip inside gzip"), "{err}");
    let err = baleen_testkit::boot::chain(&flat(vec![zstd(&gzip(&tar))]).unwrap_err());
    assert!(err.contains("gzip inside zstd"), "{err}");
    let err = baleen_testkit::boot::chain(&flat(vec![baleen_testkit::noise(4096, 3)]).unwrap_err());
    assert!(err.contains("sha256:layer0") && err.contains("not a tar archive"), "{err}");
    let err =
        baleen_testkit::boot::chain(&flat(vec![b"{\"not\": \"a tar\"}".to_vec()]).unwrap_err());
    assert!(err.contains("not a tar archive"), "{err}");
    let mut xz = b"\xfd7zXZ\0".to_vec();
    xz.extend_from_slice(&[0u8; 600]);
    let err = baleen_testkit::boot::chain(&flat(vec![xz.clone()]).unwrap_err());
    assert!(err.contains("compressed with xz"), "{err}");
    let err = baleen_testkit::boot::chain(&flat(vec![gzip(&xz)]).unwrap_err());
    assert!(err.contains("xz inside gzip"), "{err}");
    // An empty layer is an empty tar, as before.
    assert!(flat(vec![Vec::new(), tar]).is_ok());
}

/// The kernel section of `image` through a tree writer within `limits`, gunzipping the kernel.
fn decompressed_kernel(limits: Limits, image: Image) -> Result<Collect, TreeError> {
    let opts = KernelOptions { decompress: true, tar: Some("none".into()), ..Default::default() };
    let mut c = Collect::default();
    TreeWriter::with_limits(&mut c, limits).kernel(image, &opts)?;
    Ok(c)
}

/// Issue 21: `--decompress-kernel` gunzipped the kernel into memory with no bound, so a small
/// gzip bomb as the kernel expanded without limit. It is held to the layers' bounds.
#[test]
fn decompress_kernel_gzip_bomb_is_refused_naming_image_and_limit() {
    let bomb = || image(vec![tar_layer(&[file("kernel", &gzip(&vec![0u8; 4 << 20]))])]);
    let limits = Limits { max_tree_bytes: None, expansion: Some(SMALL_FLOOR) };
    let err = decompressed_kernel(limits, bomb()).unwrap_err();
    assert!(matches!(err.limit(), Some(LimitError::Expands { ratio: 100, .. })), "{err:?}");
    let text = baleen_testkit::boot::chain(&err);
    for want in ["kernel docker.io/evil/bomb:1", "kernel \"kernel\"", "more than 100 times"] {
        assert!(text.contains(want), "{want:?} missing from: {text}");
    }
    let limits = Limits { max_tree_bytes: Some(1 << 20), expansion: None };
    let err = decompressed_kernel(limits, bomb()).unwrap_err();
    assert!(matches!(err.limit(), Some(LimitError::TreeTooLarge { limit: 1048576, .. })));
    assert!(baleen_testkit::boot::chain(&err).contains("limit of 1 MiB"), "{err}");
    // Lifted, the same kernel gunzips whole.
    let c = decompressed_kernel(Limits::NONE, bomb()).unwrap();
    assert_eq!(c.get("boot/kernel").unwrap().1.len(), 4 << 20);
}

/// Issue 21: a hard link to a file that comes later in the same layer was accepted; tar and
/// Docker extract in order, so `link(2)` finds no target. Refused, naming layer, link, target.
#[test]
fn hard_link_to_a_file_later_in_the_same_layer_is_refused() {
    let layer = tar_layer(&[hardlink("bin/sh", "bin/busybox"), file("bin/busybox", b"bb")]);
    let err = flat(vec![layer]).unwrap_err();
    let text = baleen_testkit::boot::chain(&err);
    for want in ["sha256:layer0", "\"bin/sh\"", "\"bin/busybox\"", "comes later in the layer"] {
        assert!(text.contains(want), "{want:?} missing from: {text}");
    }
    // With the target in a lower layer too, Docker links to the lower copy, which the flattened
    // image no longer holds: refused as well, rather than linking to the other file.
    let lower = tar_layer(&[file("bin/busybox", b"old")]);
    let upper = tar_layer(&[hardlink("bin/sh", "bin/busybox"), file("bin/busybox", b"bb")]);
    assert!(flat(vec![lower, upper]).is_err(), "the upper copy still comes after the link");
}

/// A tar whose first header declares `size` bytes for `zeros` while only 512 follow: what the
/// header says is all a size check needs.
fn declares(size: u64) -> Vec<u8> {
    let mut tar = tar_layer(&[file("zeros", &[0u8; 512])]);
    let field = format!("{size:011o}\0");
    tar[124..136].copy_from_slice(field.as_bytes());
    tar[148..156].copy_from_slice(b"        ");
    let sum: u32 = tar[..512].iter().map(|&b| u32::from(b)).sum();
    tar[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    tar.truncate(1024);
    gzip(&tar)
}

/// Issue 21: a 2 GiB bomb was refused only after 1 GiB of it had been decompressed and written
/// (41 s into an initrd). With the layer's verified size known, the header that declares the
/// bomb is refused before any of its data is read: here the data is not even there.
#[test]
fn a_bomb_is_refused_at_the_header_that_declares_it_when_the_layer_size_is_known() {
    let layer = declares(2 << 30);
    let size = layer.len() as u64;
    let sized = Image {
        reference: "docker.io/evil/bomb:1".into(),
        layers: vec![Layer::new("sha256:layer0", "", Cursor::new(layer.clone())).with_size(size)],
    };
    let err = init(Limits::default(), sized).unwrap_err();
    assert!(matches!(err.limit(), Some(LimitError::WouldExpand { ratio: 100, .. })), "{err:?}");
    let text = baleen_testkit::boot::chain(&err);
    for want in ["docker.io/evil/bomb:1", "sha256:layer0", "declare 2147484160 bytes", "bomb"] {
        assert!(text.contains(want), "{want:?} missing from: {text}");
    }
    // Without a size the layer is read as before: the missing data is what fails.
    let err = init(Limits::default(), image(vec![layer])).unwrap_err();
    assert!(err.limit().is_none(), "{err:?}");
    // Under the floor a declared size is no bomb, whatever the ratio: only the missing data fails.
    let honest = declares(2 << 20);
    let size = honest.len() as u64;
    let fine = Image {
        reference: "docker.io/ok/big:1".into(),
        layers: vec![Layer::new("sha256:layer0", "", Cursor::new(honest)).with_size(size)],
    };
    let err = init(Limits::default(), fine);
    assert!(err.as_ref().map_or_else(|e| e.limit().is_none(), |_| false), "{err:?}");
}
