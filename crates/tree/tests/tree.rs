//! The image tree against in-memory images: flattening, LinuxKit's filter, sections, and hostile
//! layers.

use baleen_testkit::layers::*;
use baleen_tree::*;
use std::io::Cursor;

fn layer(i: usize, bytes: Vec<u8>) -> Layer {
    Layer::new(
        format!("sha256:layer{i}"),
        "application/vnd.oci.image.layer.v1.tar+gzip",
        Cursor::new(bytes),
    )
}

fn image(reference: &str, layers: Vec<Vec<u8>>) -> Image {
    Image {
        reference: reference.into(),
        layers: layers.into_iter().enumerate().map(|(i, b)| layer(i, b)).collect(),
    }
}

fn flat(layers: Vec<Vec<u8>>) -> Result<Collect, LayerError> {
    let mut c = Collect::default();
    flatten(
        layers.into_iter().enumerate().map(|(i, b)| layer(i, b)).collect(),
        None,
        |_: &str, e: Entry, d: &mut dyn std::io::Read| {
            c.add(&e, d).map_err(|source| LayerError::Read { layer: "sink".into(), source })
        },
    )?;
    Ok(c)
}

#[test]
fn flatten_topmost_first_whiteouts_and_opaque_dirs() {
    let bottom = tar_layer(&[
        dir("etc"),
        file("etc/a", b"old a"),
        file("etc/b", b"b"),
        dir("var"),
        file("var/x", b"x"),
        dir("opt"),
        file("opt/gone", b"g"),
        file("bin", b"a file that becomes a dir"),
    ]);
    let top = tar_layer(&[
        file("etc/a", b"new a"),
        whiteout("etc/b"),
        whiteout("nothing/here"),
        dir("opt"),
        opaque("opt"),
        file("opt/kept", b"k"),
        whiteout("var"),
    ]);
    let c = flat(vec![gzip(&bottom), zstd(&top)]).unwrap();
    assert_eq!(c.paths(), vec!["etc/a", "opt", "opt/kept", "etc", "bin"]);
    assert_eq!(c.get("etc/a").unwrap().1, b"new a");
}

/// flatten starts each lookup at the directory of the entry before: an opaque marker of an upper
/// layer, on a directory that layer never named, still hides the lower layer's contents even
/// right after the lower layer named that directory.
#[test]
fn flatten_opaque_marker_without_its_directory_entry() {
    let bottom =
        tar_layer(&[dir("opt"), file("opt/gone", b"g"), dir("opt/sub"), file("opt/sub/x", b"x")]);
    let top = tar_layer(&[opaque("opt"), file("keep", b"k")]);
    let c = flat(vec![bottom, top]).unwrap();
    assert_eq!(c.paths(), vec!["keep", "opt"]);
}

#[test]
fn flatten_duplicates_in_one_layer_keep_the_first_like_linuxkit() {
    let l = tar_layer(&[file("a", b"first"), file("a", b"second"), file("./b", b"b")]);
    let c = flat(vec![l]).unwrap();
    assert_eq!(c.paths(), vec!["a", "b"]);
    assert_eq!(c.get("a").unwrap().1, b"first");
}

#[test]
fn hostile_dotdot_path_names_layer_and_entry() {
    let l = tar_layer(&[file("ok", b"1"), file("../../etc/shadow", b"x")]);
    let err = baleen_testkit::boot::chain(&flat(vec![gzip(&l)]).unwrap_err());
    assert!(
        err.contains("sha256:layer0")
            && err.contains("../../etc/shadow")
            && err.contains("leaves the image root"),
        "{err}"
    );
}

#[test]
fn hostile_absolute_path_is_made_relative() {
    let l = tar_layer(&[file("/etc/abs", b"1")]);
    assert_eq!(flat(vec![l]).unwrap().paths(), vec!["etc/abs"]);
}

#[test]
fn hostile_hard_link_outside_the_root_is_an_error() {
    let l = tar_layer(&[hardlink("bin/sh", "../../../etc/passwd")]);
    let err = baleen_testkit::boot::chain(&flat(vec![l]).unwrap_err());
    assert!(err.contains("bin/sh") && err.contains("hard link target"), "{err}");
}

#[test]
fn symlinks_escaping_the_root_and_device_nodes_are_kept_as_data() {
    let l = tar_layer(&[
        symlink("etc/evil", "../../../../etc/shadow"),
        TestEntry::Char { path: "dev/null".into(), major: 1, minor: 3 },
        TestEntry::Fifo { path: "run/fifo".into() },
    ]);
    let c = flat(vec![l]).unwrap();
    assert_eq!(
        c.get("etc/evil").unwrap().0.kind,
        EntryKind::Symlink { target: "../../../../etc/shadow".into() }
    );
    assert_eq!(c.get("dev/null").unwrap().0.kind, EntryKind::Char { major: 1, minor: 3 });
    assert_eq!(c.get("run/fifo").unwrap().0.kind, EntryKind::Fifo);
}

#[test]
fn truncated_gzip_names_the_layer() {
    let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let gz = gzip(&tar_layer(&[file("big", &big)]));
    let cut = gz[..gz.len() / 2].to_vec();
    let err = baleen_testkit::boot::chain(&flat(vec![cut]).unwrap_err());
    assert!(err.contains("sha256:layer0"), "{err}");
}

#[test]
fn a_header_claiming_more_bytes_than_the_stream_has_is_an_error() {
    let mut t = tar_layer(&[file("claims", &[7u8; 4096])]);
    t.truncate(512 + 1000);
    let err = flat(vec![t]).unwrap_err();
    assert!(matches!(err, LayerError::Truncated { size: 4096, .. }), "{err}");
    assert!(baleen_testkit::boot::chain(&err).contains("claims"));
}

fn run(
    f: impl FnOnce(&mut TreeWriter<&mut Collect>) -> Result<(), TreeError>,
) -> Result<Collect, TreeError> {
    let mut c = Collect::default();
    let mut w = TreeWriter::new(&mut c);
    f(&mut w)?;
    Ok(c)
}

#[test]
fn init_image_filter_drops_replaces_touches_and_tags() {
    let l = tar_layer(&[
        file(".dockerenv", b""),
        file("Dockerfile", b"FROM scratch"),
        dir("dev"),
        file("dev/console", b""),
        dir("dev/pts"),
        dir("dev/shm"),
        dir("etc"),
        file("etc/hostname", b"h"),
        file("etc/hosts", b"1.2.3.4 x"),
        file("etc/resolv.conf", b"nameserver 1.1.1.1"),
        file("bin/busybox", b"bb"),
        hardlink("bin/sh", "bin/busybox"),
    ]);
    let c = run(|w| w.init(0, image("docker.io/linuxkit/init:1", vec![l]))).unwrap();
    // Dropped: .dockerenv, Dockerfile, dev/console, dev/pts, dev/shm, etc/hostname. The touch
    // entries follow even where the image has the path (`dev`, `etc`: docs/compat.md).
    assert_eq!(
        c.paths(),
        vec![
            "dev",
            "etc",
            "etc/hosts",
            "etc/resolv.conf",
            "bin/busybox",
            "bin/sh", // image
            "dev",
            "dev/pts",
            "dev/shm",
            "etc",
            "etc/hosts",
            "etc/mtab",
            "etc/resolv.conf",
            "proc",
            "sys", // touch
        ]
    );
    let (hosts, data) = c.get("etc/hosts").unwrap();
    assert_eq!(hosts.mtime, Mtime::secs(DEFAULT_MTIME));
    assert_eq!(data.len(), 160);
    let resolv = &c.entries[3].0;
    assert_eq!(resolv.path, "etc/resolv.conf");
    assert_eq!(resolv.kind, EntryKind::Symlink { target: "/run/resolvconf/resolv.conf".into() });
    for (e, _) in &c.entries {
        assert_eq!(
            origin_of(e),
            (Some("docker.io/linuxkit/init:1"), Some("init[0]")),
            "{}",
            e.path
        );
    }
    assert_eq!(
        c.get("etc/mtab").unwrap().0.kind,
        EntryKind::Symlink { target: "/proc/mounts".into() }
    );
}

#[test]
fn apk_databases_of_several_init_images_are_consolidated() {
    let a = tar_layer(&[file("lib/apk/db/installed", b"P:a")]);
    let b = tar_layer(&[file("lib/apk/db/installed", b"P:b")]);
    let c = run(|w| {
        w.init(0, image("a", vec![a]))?;
        w.init(1, image("b", vec![b]))?;
        w.finish_init()
    })
    .unwrap();
    let (e, data) = c.entries.last().unwrap();
    assert_eq!(e.path, "lib/apk/db/installed");
    assert_eq!(data, b"P:a\n\nP:b\n\n");
    assert_eq!(origin_of(e), (Some("LINUXKIT.apkinit"), Some("init")));
}

fn kernel_image(with_tar: bool, dup_kernel: bool) -> Image {
    let mods =
        tar_layer(&[dir("lib"), dir("lib/modules"), file("lib/modules/6.1/modules.dep", b"")]);
    let mut entries = vec![
        file("intel-ucode.cpio", b"UCODE"),
        file_mode("kernel", b"bzImage", 0o644),
        file("System.map", b"map"),
    ];
    if with_tar {
        entries.push(file("kernel.tar", &mods));
    }
    if dup_kernel {
        entries.push(file("kernel", b"second"));
    }
    image("docker.io/linuxkit/kernel:6.1", vec![tar_layer(&entries)])
}

#[test]
fn kernel_section_boot_files_and_expanded_tar() {
    let opts = KernelOptions {
        cmdline: "console=ttyS0".into(),
        ucode: Some("intel-ucode.cpio".into()),
        ..Default::default()
    };
    let c = run(|w| w.kernel(kernel_image(true, false), &opts)).unwrap();
    assert_eq!(
        c.paths(),
        vec![
            "boot",
            "boot/ucode.cpio",
            "boot/cmdline",
            "boot/kernel",
            "lib",
            "lib/modules",
            "lib/modules/6.1/modules.dep"
        ]
    );
    assert_eq!(c.get("boot/cmdline").unwrap().1, b"console=ttyS0");
    assert_eq!(c.get("boot/kernel").unwrap().1, b"bzImage");
    assert_eq!(c.get("boot/ucode.cpio").unwrap().1, b"UCODE");
    assert_eq!(
        origin_of(&c.get("lib/modules").unwrap().0),
        (Some("docker.io/linuxkit/kernel:6.1"), Some("kernel"))
    );
}

#[test]
fn kernel_errors_missing_kernel_missing_tar() {
    let err = run(|w| w.kernel(kernel_image(false, false), &KernelOptions::default()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("kernel.tar") && err.contains("docker.io/linuxkit/kernel:6.1"), "{err}");
    let opts = KernelOptions { binary: "vmlinuz".into(), ..Default::default() };
    let err = baleen_testkit::boot::chain(
        &run(|w| w.kernel(kernel_image(true, false), &opts)).unwrap_err(),
    );
    assert!(err.contains("did not find kernel \"vmlinuz\""), "{err}");
    // Two `kernel` entries in one layer: the first wins, as LinuxKit's flattening does.
    let c = run(|w| w.kernel(kernel_image(true, true), &KernelOptions::default())).unwrap();
    assert_eq!(c.get("boot/kernel").unwrap().1, b"bzImage");
}

#[test]
fn kernel_decompression_gunzips() {
    let img = image("k", vec![tar_layer(&[file("kernel", &gzip(b"plain kernel"))])]);
    let opts = KernelOptions { tar: Some("none".into()), decompress: true, ..Default::default() };
    let c = run(|w| w.kernel(img, &opts)).unwrap();
    assert_eq!(c.get("boot/kernel").unwrap().1, b"plain kernel");
}

#[test]
fn bundles_rootfs_lower_and_deduplication() {
    let l = || tar_layer(&[file("bin/sh", b"sh"), hardlink("bin/ash", "bin/sh")]);
    let mut seen: Vec<String> = Vec::new();
    let c = run(|w| {
        let mut rt = |root: &str| {
            seen.push(root.to_string());
            b"{}".to_vec()
        };
        w.bundle(Bundle {
            section: Section::Onboot,
            index: 0,
            name: "a",
            image: image("img", vec![l()]),
            readonly: false,
            config_json: b"{1}",
            runtime_json: &mut rt,
        })?;
        w.bundle(Bundle {
            section: Section::Services,
            index: 0,
            name: "b",
            image: image("img", vec![l()]),
            readonly: true,
            config_json: b"{2}",
            runtime_json: &mut rt,
        })?;
        w.bundle(Bundle {
            section: Section::Services,
            index: 1,
            name: "c",
            image: image("other", vec![l()]),
            readonly: true,
            config_json: b"{3}",
            runtime_json: &mut rt,
        })
    })
    .unwrap();
    let paths = c.paths();
    assert_eq!(
        &paths[..6],
        &[
            "containers",
            "containers/onboot",
            "containers/onboot/000-a",
            "containers/onboot/000-a/lower",
            "containers/onboot/000-a/lower/bin/sh",
            "containers/onboot/000-a/lower/bin/ash"
        ]
    );
    let ash = &c.get("containers/onboot/000-a/lower/bin/ash").unwrap().0;
    assert_eq!(
        ash.kind,
        EntryKind::HardLink { target: "containers/onboot/000-a/lower/bin/sh".into() }
    );
    // b reuses a's extraction: prefix dirs, config.json, a rootfs mount point, runtime.json.
    let b: Vec<&str> =
        paths.iter().copied().filter(|p| p.starts_with("containers/services/b")).collect();
    assert_eq!(
        b,
        vec![
            "containers/services/b",
            "containers/services/b/config.json",
            "containers/services/b/rootfs",
            "containers/services/b/runtime.json"
        ]
    );
    assert!(paths.contains(&"containers/services/c/rootfs/bin/sh"));
    // Where each bundle's root is: its own extraction, or the first one of the same image.
    assert_eq!(
        seen,
        [
            "containers/onboot/000-a/lower",
            "containers/onboot/000-a/lower",
            "containers/services/c/rootfs"
        ]
    );
    let cfg = c.get("containers/onboot/000-a/config.json").unwrap();
    assert_eq!((cfg.0.mode, cfg.1.as_slice()), (0o644, &b"{1}"[..]));
}

#[test]
fn volumes_blank_and_image() {
    let c = run(|w| {
        w.volume(0, "vola", None)?;
        w.volume(1, "volb", Some(image("vimg", vec![tar_layer(&[file("data", b"d")])])))
    })
    .unwrap();
    let paths = c.paths();
    assert_eq!(
        &paths[..6],
        &[
            "containers",
            "containers/volumes",
            "containers/volumes/vola",
            "containers/volumes/vola/lower",
            "containers/volumes/vola/tmp",
            "containers/volumes/vola/merged"
        ]
    );
    assert_eq!(origin_of(&c.entries[3].0), (Some("empty"), Some("volume[0]")));
    assert!(paths.contains(&"containers/volumes/volb/lower/data"));
    let resolv = &c.get("containers/volumes/volb/lower/etc/resolv.conf").unwrap().0;
    assert!(matches!(resolv.kind, EntryKind::Symlink { .. }));
}

#[test]
fn files_parent_dirs_modes_and_owners() {
    let items = vec![
        FileItem {
            index: 0,
            path: "/etc/wireguard/wg0.conf".into(),
            kind: FileKind::Contents(FileData::Bytes(b"x".to_vec())),
            mode: None,
            uid: 0,
            gid: 0,
        },
        FileItem {
            index: 1,
            path: "etc/wireguard/wg1.conf".into(),
            kind: FileKind::Contents(FileData::Bytes(b"y".to_vec())),
            mode: Some(0o644),
            uid: 100,
            gid: 100,
        },
        FileItem {
            index: 3,
            path: "var/lib/d".into(),
            kind: FileKind::Directory,
            mode: None,
            uid: 0,
            gid: 0,
        },
        FileItem {
            index: 4,
            path: "usr/bin/l".into(),
            kind: FileKind::Symlink("/bin/x".into()),
            mode: None,
            uid: 0,
            gid: 0,
        },
    ];
    let c = run(|w| w.files(items)).unwrap();
    let got: Vec<(String, u32, u64)> =
        c.entries.iter().map(|(e, _)| (e.path.clone(), e.mode, e.uid)).collect();
    let want = [
        ("etc", 0o700, 0),
        ("etc/wireguard", 0o700, 0),
        ("etc/wireguard/wg0.conf", 0o600, 0),
        ("etc/wireguard/wg1.conf", 0o644, 100),
        ("var", 0o700, 0),
        ("var/lib", 0o700, 0),
        ("var/lib/d", 0o700, 0),
        ("usr", 0o700, 0),
        ("usr/bin", 0o700, 0),
        ("usr/bin/l", 0o600, 0),
    ];
    assert_eq!(got, want.iter().map(|(p, m, u)| (p.to_string(), *m, *u)).collect::<Vec<_>>());
    assert_eq!(origin_of(&c.entries[3].0), (Some("linuxkit.files"), Some("files[1]")));
    let err = run(|w| {
        w.files(vec![FileItem {
            index: 2,
            path: String::new(),
            kind: FileKind::Directory,
            mode: None,
            uid: 0,
            gid: 0,
        }])
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "files[2]: did not specify path for file");
}

#[test]
fn same_inputs_give_the_same_stream() {
    let build = || {
        run(|w| {
            w.kernel(kernel_image(true, false), &KernelOptions::default())?;
            w.init(0, image("i", vec![gzip(&tar_layer(&[file("init", b"x")]))]))?;
            w.finish_init()?;
            w.files(vec![FileItem {
                index: 0,
                path: "etc/f".into(),
                kind: FileKind::Contents(FileData::Bytes(b"f".to_vec())),
                mode: None,
                uid: 0,
                gid: 0,
            }])?;
            w.dockerfile()
        })
        .unwrap()
        .entries
    };
    assert_eq!(build(), build());
}

#[test]
fn listing_lines_for_golden_files() {
    let mut out = Vec::new();
    {
        let mut w = TreeWriter::new(Listing::new(&mut out));
        w.files(vec![
            FileItem {
                index: 0,
                path: "etc/motd".into(),
                kind: FileKind::Contents(FileData::Bytes(b"hi".to_vec())),
                mode: Some(0o644),
                uid: 0,
                gid: 0,
            },
            FileItem {
                index: 1,
                path: "bin/sh".into(),
                kind: FileKind::Symlink("busybox".into()),
                mode: Some(0o777),
                uid: 0,
                gid: 0,
            },
        ])
        .unwrap();
    }
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "d 0755 0:0 1492533000 etc  <linuxkit.files files[0]>\n\
         f 0644 0:0 1492533000 etc/motd size=2 fnv=08ba5f07b55ec3da  <linuxkit.files files[0]>\n\
         d 0777 0:0 1492533000 bin  <linuxkit.files files[1]>\n\
         l 0777 0:0 1492533000 bin/sh -> busybox  <linuxkit.files files[1]>\n"
    );
}

#[test]
fn a_kernel_that_is_a_symlink_says_what_to_name() {
    let img =
        image("k", vec![tar_layer(&[symlink("kernel", "vmlinuz-6.1"), file("vmlinuz-6.1", b"k")])]);
    let opts = KernelOptions { tar: Some("none".into()), ..Default::default() };
    let err = baleen_testkit::boot::chain(&run(|w| w.kernel(img, &opts)).unwrap_err());
    assert!(err.contains("vmlinuz-6.1") && err.contains("kernel.binary"), "{err}");
}

/// Reads only the first byte of each file, then fails on the path it is told to.
#[derive(Debug)]
struct Picky {
    fail_on: &'static str,
    seen: Vec<(String, Vec<u8>)>,
}

impl EntrySink for Picky {
    fn add(&mut self, entry: &Entry, data: &mut dyn std::io::Read) -> std::io::Result<()> {
        if entry.path == self.fail_on {
            return Err(std::io::Error::other("picky"));
        }
        let mut first = [0u8; 1];
        let n = if entry.size() > 0 { data.read(&mut first)? } else { 0 };
        self.seen.push((entry.path.clone(), first[..n].to_vec()));
        Ok(())
    }
}

#[test]
fn fanout_feeds_every_branch_the_same_stream() {
    let big: Vec<u8> = (0..700_000u32).map(|i| (i % 253) as u8).collect();
    let layers = || vec![tar_layer(&[file("big", &big), file("small", b"s"), dir("d")])];
    let mut fan = Fanout::new();
    let a = fan.spawn(Collect::default());
    let b = fan.spawn(Picky { fail_on: "none", seen: vec![] });
    let mut w = TreeWriter::new(fan);
    w.init(0, image("img", layers())).unwrap();
    w.into_sink().close();
    let direct = run(|w| w.init(0, image("img", layers()))).unwrap();
    let a = a.join().unwrap();
    assert_eq!(a.entries, direct.entries);
    let b = b.join().unwrap();
    assert_eq!(b.seen.len(), direct.entries.len());
    assert_eq!(b.seen[0], ("big".to_string(), vec![0u8]));
}

#[test]
fn fanout_a_failing_branch_fails_the_build_with_its_entry() {
    let layers = vec![tar_layer(&[
        file("big", &[1u8; 300_000]),
        file("small", b"s"),
        dir("d"),
        dir("e"),
        dir("f"),
    ])];
    let mut fan = Fanout::new();
    let ok = fan.spawn(Collect::default());
    let bad = fan.spawn(Picky { fail_on: "small", seen: vec![] });
    let mut w = TreeWriter::new(fan);
    // Whether the producer notices before the end depends on timing; the branch always knows.
    let _ = w.init(0, image("img", layers));
    w.into_sink().close();
    let err = bad.join().unwrap_err().to_string();
    assert!(err.contains("small") && err.contains("picky"), "{err}");
    assert!(ok.join().is_ok());
}

#[test]
fn fanout_reports_a_failing_source_to_the_caller_and_the_branches() {
    let mut t = tar_layer(&[file("claims", &[7u8; 600_000])]);
    t.truncate(512 + 300_000);
    let mut fan = Fanout::new();
    let a = fan.spawn(Collect::default());
    let mut w = TreeWriter::new(fan);
    let err = baleen_testkit::boot::chain(&w.init(0, image("img", vec![t])).unwrap_err());
    assert!(err.contains("claims"), "{err}");
    w.into_sink().close();
    assert!(a.join().is_err());
}

#[test]
fn mutated_layers_give_errors_never_panics() {
    let base = tar_layer(&[
        dir("etc"),
        file("etc/a", b"aaaa"),
        hardlink("etc/b", "etc/a"),
        symlink("etc/c", "a"),
        TestEntry::Char { path: "dev/x".into(), major: 1, minor: 1 },
        whiteout("etc/d"),
        opaque("var"),
    ]);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..400 {
        let mut t = base.clone();
        for _ in 0..(1 + round % 8) {
            let at = (next() % t.len() as u64) as usize;
            t[at] = next() as u8;
        }
        if round % 5 == 0 {
            t.truncate((next() % t.len() as u64) as usize);
        }
        let layers = if round % 3 == 0 { vec![gzip(&t)] } else { vec![t] };
        let _ = run(|w| w.init(0, image("fuzz", layers)));
    }
}
