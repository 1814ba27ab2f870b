//! The writers against trees made from in-memory images, read back by our own parsers, the
//! `tar` crate, and the reference tools when installed (`tar`, `cpio`, `gzip`, `zstd`).

use baleen_formats::*;
use baleen_testkit::layers::*;
use baleen_testkit::require_tool;
use baleen_testkit::Chain;
use baleen_tree::*;
use std::io::{Cursor, Read, Write};
use std::process::{Command, Stdio};

fn image(reference: &str, entries: &[TestEntry]) -> Image {
    Image {
        reference: reference.into(),
        layers: vec![Layer::new(
            "sha256:test",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            Cursor::new(gzip(&tar_layer(entries))),
        )],
    }
}

/// A small system: kernel with modules and microcode, one init image, one service, files.
fn build_tree<S: EntrySink>(sink: S) -> S {
    let long = format!("usr/share/{}/{}", "d".repeat(80), "file-with-a-long-name.txt");
    let mods =
        tar_layer(&[dir("lib"), dir("lib/modules"), file("lib/modules/6.1/modules.dep", b"dep")]);
    let kernel = image(
        "docker.io/linuxkit/kernel:6.1",
        &[
            file("intel-ucode.cpio", b"UCODE-CPIO"),
            file("kernel", b"KERNEL-BYTES"),
            file("kernel.tar", &mods),
        ],
    );
    let init = image(
        "docker.io/linuxkit/init:1",
        &[
            dir("bin"),
            file_mode("bin/busybox", &[0x7f; 3000], 0o755),
            hardlink("bin/sh", "bin/busybox"),
            symlink("usr/bin/env", "/bin/busybox"),
            file(&long, b"long"),
            TestEntry::Char { path: "dev/null".into(), major: 1, minor: 3 },
        ],
    );
    let svc = image("docker.io/library/nginx:1", &[file("usr/sbin/nginx", b"nginx")]);
    let mut w = TreeWriter::new(sink);
    let opts = KernelOptions {
        cmdline: "console=ttyS0".into(),
        ucode: Some("intel-ucode.cpio".into()),
        ..Default::default()
    };
    w.kernel(kernel, &opts).unwrap();
    w.init(0, init).unwrap();
    w.finish_init().unwrap();
    let mut rt = |_: &str| b"{\"mounts\":[]}".to_vec();
    w.bundle(Bundle {
        section: Section::Services,
        index: 0,
        name: "nginx",
        image: svc,
        readonly: true,
        config_json: b"{}",
        runtime_json: &mut rt,
    })
    .unwrap();
    w.files(vec![FileItem {
        index: 0,
        path: "etc/config".into(),
        kind: FileKind::Contents(FileData::Bytes(b"cfg".to_vec())),
        mode: None,
        uid: 0,
        gid: 0,
    }])
    .unwrap();
    w.into_sink()
}

fn tar_bytes() -> Vec<u8> {
    build_tree(TarWriter::new(Vec::new())).finish().unwrap()
}

#[test]
fn tar_reads_back_with_every_entry_tagged() {
    let bytes = tar_bytes();
    assert_eq!(bytes, tar_bytes(), "two builds differ");
    let mut ar = tar::Archive::new(&bytes[..]);
    let mut names = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let pax: Vec<(String, String)> = e
            .pax_extensions()
            .unwrap()
            .map(|x| {
                x.map(|r| r.unwrap())
                    .map(|r| (r.key().unwrap().to_string(), r.value().unwrap().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        assert!(pax.iter().any(|(k, _)| k == "LINUXKIT.source"), "{name} lacks LINUXKIT.source");
        assert!(
            pax.iter().any(|(k, _)| k == "LINUXKIT.location"),
            "{name} lacks LINUXKIT.location"
        );
        if name == "bin/sh" {
            assert_eq!(e.header().entry_type(), tar::EntryType::Link);
        }
        if name == "bin/busybox" {
            let mut d = Vec::new();
            e.read_to_end(&mut d).unwrap();
            assert_eq!(d.len(), 3000);
        }
        names.push(name);
    }
    assert!(names
        .iter()
        .any(|n| n.starts_with("usr/share/ddd") && n.ends_with("file-with-a-long-name.txt")));
    assert_eq!(&names[..4], &["boot", "boot/ucode.cpio", "boot/cmdline", "boot/kernel"]);
    assert!(names.contains(&"containers/services/nginx/rootfs/usr/sbin/nginx".to_string()));
    assert_eq!(names.last().unwrap(), "etc/config");
    // Go writes no record padding: the archive ends right after its two zero blocks.
    assert_eq!(bytes.len() % 512, 0);
    assert!(bytes[bytes.len() - 1024..].iter().all(|&b| b == 0));
}

#[test]
fn tar_headers_are_go_archive_tar_pax() {
    let mut w = TarWriter::new(Vec::new());
    let e = Entry::new("etc", EntryKind::Dir, 0o755).with_origin("linuxkit.files", "files[0]");
    w.add(&e, &mut std::io::empty()).unwrap();
    let b = w.finish().unwrap();
    // The extended header Go writes: name <dir>/PaxHeaders.0/<base>, zero mode/ids/mtime.
    assert_eq!(&b[..16], b"PaxHeaders.0/etc");
    assert_eq!(&b[100..108], b"0000000\0");
    assert_eq!(b[156], b'x');
    assert_eq!(&b[257..265], b"ustar\x0000");
    let body = std::str::from_utf8(&b[512..512 + 64]).unwrap();
    assert!(
        body.starts_with("30 LINUXKIT.location=files[0]\n34 LINUXKIT.source=linuxkit.files\n"),
        "{body:?}"
    );
    let h = &b[1024..1536];
    assert_eq!(&h[..4], b"etc\0");
    assert_eq!(&h[100..108], b"0000755\0");
    assert_eq!(&h[136..148], b"13075437410\0"); // 1492533000
    assert_eq!(h[156], b'5');
    assert_eq!(&h[329..345], b"0000000\x000000000\0");
    assert_eq!(&h[154..156], b"\0 ");
}

#[test]
fn tar_is_listed_by_gnu_tar() {
    let Some(tar_bin) = require_tool("tar") else { return };
    let dir = tempdir();
    let path = dir.path().join("t.tar");
    std::fs::write(&path, tar_bytes()).unwrap();
    let out = Command::new(tar_bin).arg("-tvf").arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(listing.contains("bin/sh link to bin/busybox"), "{listing}");
    assert!(listing.contains("containers/services/nginx/runtime.json"), "{listing}");
    assert!(listing.contains("file-with-a-long-name.txt"), "{listing}");
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A minimal newc reader: (name, mode, nlink, data) per entry, trailer excluded.
fn read_newc(mut b: &[u8]) -> Vec<(String, u32, u32, Vec<u8>, u32)> {
    let total = b.len();
    let mut out = Vec::new();
    loop {
        let hex = |s: &[u8]| u32::from_str_radix(std::str::from_utf8(s).unwrap(), 16).unwrap();
        assert_eq!(&b[..6], b"070701");
        let ino = hex(&b[6..14]);
        let mode = hex(&b[14..22]);
        let nlink = hex(&b[38..46]);
        let size = hex(&b[54..62]) as usize;
        assert_eq!((hex(&b[62..70]), hex(&b[70..78])), (3, 1));
        let namesize = hex(&b[94..102]) as usize;
        let name = String::from_utf8(b[110..110 + namesize - 1].to_vec()).unwrap();
        let pos = total - b.len();
        let data_start = (pos + 110 + namesize).next_multiple_of(4) - pos;
        let data = b[data_start..data_start + size].to_vec();
        let next = (pos + data_start + size).next_multiple_of(4) - pos;
        b = &b[next..];
        if name == "TRAILER!!!" {
            assert_eq!(total % 512, 0);
            return out;
        }
        out.push((name, mode, nlink, data, ino));
    }
}

/// The initrd in LinuxKit's layout (one compressed stream), whose bytes these tests pin.
fn initrd(compression: InitrdCompression, threads: usize) -> InitrdOutput<Vec<u8>, Vec<u8>> {
    initrd_in(InitrdLayout::Single, compression, threads)
}

fn initrd_in(
    layout: InitrdLayout,
    compression: InitrdCompression,
    threads: usize,
) -> InitrdOutput<Vec<u8>, Vec<u8>> {
    let opts = InitrdOptions { compression, threads, prepend_ucode: true, layout };
    build_tree(InitrdWriter::new(Vec::new(), Vec::new(), opts)).finish().unwrap()
}

#[test]
fn a_segmented_initrd_unpacks_to_the_members_of_the_single_one() {
    for compression in [InitrdCompression::Gzip, InitrdCompression::Zstd] {
        let single = initrd_in(InitrdLayout::Single, compression, 2);
        let segmented = initrd_in(InitrdLayout::Segmented, compression, 2);
        assert_ne!(single.initrd, segmented.initrd);
        assert_eq!(segmented.initrd_len as usize, segmented.initrd.len());
        assert_eq!((segmented.initrd.len() - 10) % 4, 0, "padded after the microcode");
        // After the microcode (a stand-in here, not a cpio).
        let one = compare::initrd_members(&single.initrd[10..]).unwrap();
        let many = compare::initrd_members(&segmented.initrd[10..]).unwrap();
        assert_eq!(format!("{one:?}"), format!("{many:?}"), "{compression:?}");
        // kernel modules, init, the service, files: four compressed streams after the ucode.
        let trailers = |b: &[u8]| {
            // The zero padding at the end reads as a bad next header: what came before counts.
            let mut cpio = Vec::new();
            let _ = match compression {
                InitrdCompression::Gzip => {
                    flate2::read::MultiGzDecoder::new(&b[10..]).read_to_end(&mut cpio)
                }
                InitrdCompression::Zstd => {
                    zstd::stream::read::Decoder::new(&b[10..]).unwrap().read_to_end(&mut cpio)
                }
            };
            cpio.windows(10).filter(|w| w == b"TRAILER!!!").count()
        };
        assert_eq!(trailers(&segmented.initrd), 4, "{compression:?}");
        assert_eq!(trailers(&single.initrd), 1, "{compression:?}");
    }
}

#[test]
fn kernel_initrd_gzip_splits_boot_and_reads_back() {
    let out = initrd(InitrdCompression::Gzip, 2);
    assert_eq!(out.kernel, b"KERNEL-BYTES");
    assert_eq!(out.cmdline, b"console=ttyS0");
    assert!(out.initrd.starts_with(b"UCODE-CPIO"));
    assert_eq!(out.initrd_len as usize, out.initrd.len());
    let gz = &out.initrd[10..];
    assert_eq!(gz.len() % 4, 0);
    let mut cpio = Vec::new();
    flate2::read::GzDecoder::new(gz).read_to_end(&mut cpio).unwrap();
    let entries = read_newc(&cpio);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names[0], "boot", "the boot directory itself stays, as in LinuxKit");
    assert!(!names.iter().any(|n| n.starts_with("boot/")));
    assert_eq!(entries[0].4, 721);
    let sh = entries.iter().find(|e| e.0 == "bin/sh").unwrap();
    assert_eq!(
        (sh.1 & 0o170000, sh.3.as_slice()),
        (0o120000, &b"busybox"[..]),
        "hard link → relative symlink"
    );
    let etc = entries.iter().find(|e| e.0 == "etc").unwrap();
    assert_eq!((etc.1, etc.2), (0o040755, 2));
    let null = entries.iter().find(|e| e.0 == "dev/null").unwrap();
    assert_eq!(null.1 & 0o170000, 0o020000);
    assert_eq!(entries.iter().find(|e| e.0 == "bin/busybox").unwrap().3.len(), 3000);
    assert_eq!(out.initrd, initrd(InitrdCompression::Gzip, 1).initrd, "1 and 2 threads differ");
}

/// The zstd frame at the start of `z`, without the zero padding that rounds the initrd to 4
/// bytes (the kernel skips it; `zstd` reads it as a broken next frame).
fn zstd_frame(z: &[u8]) -> &[u8] {
    let n = zstd::zstd_safe::find_frame_compressed_size(z).expect("a zstd frame");
    assert!(z[n..].iter().all(|&b| b == 0) && z.len() - n < 4, "only padding follows the frame");
    &z[..n]
}

#[test]
fn kernel_initrd_zstd_is_thread_independent() {
    let a = initrd(InitrdCompression::Zstd, 1);
    let b = initrd(InitrdCompression::Zstd, 3);
    assert_eq!(a.initrd, b.initrd);
    let z = zstd_frame(&a.initrd[10..]);
    let cpio = zstd::decode_all(z).unwrap();
    assert!(read_newc(&cpio).iter().any(|e| e.0 == "etc/config"));
}

fn tool_accepts(tool: &str, args: &[&str], input: &[u8]) -> Option<String> {
    let bin = require_tool(tool)?;
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(out.status.success(), "{tool} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn reference_tools_accept_the_initrd() {
    let gz = initrd(InitrdCompression::Gzip, 2).initrd[10..].to_vec();
    let mut cpio = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut cpio).unwrap();
    // The initrd's zero padding after the member makes gzip warn: test the member itself.
    let mut member = ParallelGzip::new(Vec::new(), flate2::Compression::default(), 2);
    member.write_all(&cpio).unwrap();
    tool_accepts("gzip", &["-t"], &member.finish().unwrap());
    let zs = initrd(InitrdCompression::Zstd, 2).initrd[10..].to_vec();
    tool_accepts("zstd", &["-t"], zstd_frame(&zs));
    if let Some(listing) = tool_accepts("bsdtar", &["-tvf", "-"], &cpio) {
        assert!(listing.contains("bin/sh -> busybox"), "bsdtar: {listing}");
        assert!(
            listing.contains("containers/services/nginx/rootfs/usr/sbin/nginx"),
            "bsdtar: {listing}"
        );
    }
    if let Some(listing) = tool_accepts("bsdtar", &["-tf", "-"], &tar_bytes()) {
        assert!(
            listing.lines().any(|l| l.ends_with("file-with-a-long-name.txt")),
            "bsdtar: {listing}"
        );
    }
    if let Some(listing) = tool_accepts("cpio", &["-it", "--quiet"], &cpio) {
        for want in [
            "boot",
            "bin/sh",
            "etc/config",
            "containers/services/nginx/config.json",
            "lib/modules/6.1/modules.dep",
        ] {
            assert!(listing.lines().any(|l| l == want), "cpio -t lacks {want}: {listing}");
        }
    }
}

#[test]
fn tar_kernel_initrd_holds_the_four_files() {
    let opts = InitrdOptions { prepend_ucode: false, ..Default::default() };
    let out = build_tree(InitrdWriter::new(Vec::new(), Vec::new(), opts)).finish().unwrap();
    assert!(out.initrd.starts_with(&[0x1f, 0x8b]));
    assert_eq!(out.ucode, b"UCODE-CPIO");
    let tar = write_tar_kernel_initrd(
        Vec::new(),
        &mut &out.kernel[..],
        out.kernel_len,
        &mut &out.initrd[..],
        out.initrd_len,
        &out.cmdline,
        &out.ucode,
    )
    .unwrap();
    let mut ar = tar::Archive::new(&tar[..]);
    let got: Vec<(String, u32, u64)> = ar
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().display().to_string(),
                e.header().mode().unwrap(),
                e.header().mtime().unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(names, ["kernel", "initrd.img", "cmdline", "ucode.cpio"]);
    assert!(got.iter().all(|g| g.1 == 0o644 && g.2 == DEFAULT_MTIME as u64));
}

#[test]
fn ucode_after_initrd_content_is_a_clear_error() {
    let mut w = InitrdWriter::new(Vec::new(), Vec::new(), InitrdOptions::default());
    w.add(&Entry::new("etc", EntryKind::Dir, 0o755), &mut std::io::empty()).unwrap();
    w.add(&Entry::new("etc/motd", EntryKind::File { size: 2 }, 0o644), &mut &b"hi"[..]).unwrap();
    let err = w
        .add(&Entry::new("boot/ucode.cpio", EntryKind::File { size: 1 }, 0o644), &mut &b"u"[..])
        .unwrap_err();
    assert!(err.to_string().contains("microcode must come first"), "{err}");
}

#[test]
fn input_tar_copies_give_the_same_bytes() {
    let first = tar_bytes();
    let mut w = TreeWriter::new(TarWriter::new(Vec::new()));
    let copied =
        w.copy_from_tar(&mut &first[..], "docker.io/linuxkit/kernel:6.1", "kernel").unwrap();
    assert_eq!(copied, 7);
    w.copy_from_tar(&mut &first[..], "docker.io/linuxkit/init:1", "init[0]").unwrap();
    w.finish_init().unwrap();
    w.copy_from_tar(&mut &first[..], "docker.io/library/nginx:1", "services[0]").unwrap();
    w.files(vec![FileItem {
        index: 0,
        path: "etc/config".into(),
        kind: FileKind::Contents(FileData::Bytes(b"cfg".to_vec())),
        mode: None,
        uid: 0,
        gid: 0,
    }])
    .unwrap();
    let second = w.into_sink().finish().unwrap();
    assert!(first == second, "an incremental build differs from the full one");
    assert_eq!(
        read_tar_file(&mut &second[..], "/etc/config").unwrap().as_deref(),
        Some(&b"cfg"[..])
    );
}

/// The same entries as tests/golden/gen_tar.go, through our writer.
fn golden_entries() -> Vec<(Entry, Vec<u8>)> {
    let e = |path: &str, kind: EntryKind, mode: u32| Entry::new(path, kind, mode);
    let long = format!(
        "containers/onboot/000-dhcpcd/lower/usr/share/{}/a-file-with-a-long-name.conf",
        "d".repeat(70)
    );
    let mut busybox = e("bin/busybox", EntryKind::File { size: 5 }, 0o4755)
        .with_origin("docker.io/linuxkit/init:1", "init[0]");
    busybox.uname = "root".into();
    busybox.gname = "root".into();
    busybox.mtime = Mtime { secs: 1_600_000_000, nanos: 123_456_789 };
    busybox.set_pax("SCHILY.xattr.security.capability", "cap");
    let mut big_uid = e("var/big-uid", EntryKind::File { size: 1 }, 0o600)
        .with_origin("linuxkit.files", "files[1]");
    big_uid.uid = 3_000_000;
    big_uid.gid = 100;
    vec![
        (
            e("dev", EntryKind::Dir, 0o755).with_origin("docker.io/linuxkit/init:1", "init[0]"),
            vec![],
        ),
        (busybox, b"hello".to_vec()),
        (
            e(&long, EntryKind::File { size: 4 }, 0o644)
                .with_origin("docker.io/linuxkit/dhcpcd:1", "onboot[0]"),
            b"long".to_vec(),
        ),
        (
            e("etc/link", EntryKind::Symlink { target: format!("/{}", "t".repeat(120)) }, 0o777)
                .with_origin("linuxkit.files", "files[0]"),
            vec![],
        ),
        (
            e(
                "containers/services/x/lower/bin/sh",
                EntryKind::HardLink { target: "containers/services/x/lower/bin/busybox".into() },
                0o755,
            )
            .with_origin("x", "services[0]"),
            vec![],
        ),
        (
            e("dev/null", EntryKind::Char { major: 1, minor: 3 }, 0o666)
                .with_origin("x", "init[0]"),
            vec![],
        ),
        (big_uid, b"u".to_vec()),
        (
            e("etc/café", EntryKind::File { size: 1 }, 0o644)
                .with_origin("linuxkit.files", "files[2]"),
            b"c".to_vec(),
        ),
        (e("Dockerfile", EntryKind::File { size: 14 }, 0o644), b"\nFROM scratch\n".to_vec()),
        (
            e(
                &format!("{}/{}", "p".repeat(60), "n".repeat(60)),
                EntryKind::File { size: 5 },
                0o644,
            ),
            b"split".to_vec(),
        ),
    ]
}

#[test]
fn tar_matches_go_archive_tar_golden() {
    let golden =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/go-archive-tar.tar"))
            .unwrap();
    let mut w = TarWriter::new(Vec::new());
    for (entry, data) in golden_entries() {
        w.add(&entry, &mut &data[..]).unwrap();
    }
    let ours = w.finish().unwrap();
    if ours != golden {
        let at = ours
            .iter()
            .zip(&golden)
            .position(|(a, b)| a != b)
            .unwrap_or(ours.len().min(golden.len()));
        let block = at / 512 * 512;
        panic!(
            "differs from Go at byte {at} (block at {block}, field offset {}); lengths {} vs {}\nours: {:?}\ngo:   {:?}",
            at - block,
            ours.len(),
            golden.len(),
            String::from_utf8_lossy(&ours[block..(block + 512).min(ours.len())]),
            String::from_utf8_lossy(&golden[block..(block + 512).min(golden.len())])
        );
    }
}

#[test]
fn one_pass_into_tar_and_initrd_equals_two_passes() {
    let mut fan = Fanout::new();
    let tar = fan.spawn(TarWriter::new(Vec::new()));
    // Segmented: the fan-out passes the sections on, not only the entries.
    let opts = InitrdOptions {
        compression: InitrdCompression::Gzip,
        threads: 2,
        prepend_ucode: true,
        layout: InitrdLayout::Segmented,
    };
    let initrd = fan.spawn(InitrdWriter::new(Vec::new(), Vec::new(), opts));
    build_tree(fan).close();
    assert!(tar.join().unwrap().finish().unwrap() == tar_bytes());
    let one = initrd.join().unwrap().finish().unwrap();
    let two = initrd_in(InitrdLayout::Segmented, InitrdCompression::Gzip, 2);
    assert!(one.initrd == two.initrd && one.kernel == two.kernel && one.cmdline == two.cmdline);
}

#[test]
fn our_tar_reads_back_into_the_same_entries() {
    let entries = golden_entries();
    let mut w = TarWriter::new(Vec::new());
    for (entry, data) in &entries {
        w.add(entry, &mut &data[..]).unwrap();
    }
    let bytes = w.finish().unwrap();
    let mut back = Collect::default();
    // The hard link's target, which the golden entries leave out, from a layer below.
    let target = tar_layer(&[file("containers/services/x/lower/bin/busybox", b"bb")]);
    let layers = vec![
        Layer::new("below", "application/x-tar", Cursor::new(target)),
        Layer::new("ours", "application/x-tar", Cursor::new(bytes)),
    ];
    flatten(layers, None, |_: &str, e: Entry, d: &mut dyn Read| {
        back.add(&e, d).map_err(|source| LayerError::Read { layer: "collect".into(), source })
    })
    .unwrap();
    let below = back.entries.pop().unwrap();
    assert_eq!(below.0.path, "containers/services/x/lower/bin/busybox");
    // PAX records come back sorted, as written; their order carries no meaning.
    let sorted = |v: Vec<(Entry, Vec<u8>)>| -> Vec<(Entry, Vec<u8>)> {
        v.into_iter()
            .map(|(mut e, d)| {
                e.pax.sort();
                (e, d)
            })
            .collect()
    };
    assert_eq!(sorted(back.entries), sorted(entries));
}

#[test]
fn file_type_bits_in_layer_modes_are_kept_in_tar_and_masked_in_cpio() {
    // Docker's classic builder writes 0100755: LinuxKit's tar copies the field as it is.
    let img = image("old", &[file_mode("bin/tool", b"t", 0o100755)]);
    let mut w = TreeWriter::new(TarWriter::new(Vec::new()));
    w.init(0, img).unwrap();
    let tar = w.into_sink().finish().unwrap();
    let mut ar = tar::Archive::new(&tar[..]);
    let mode = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().to_str() == Some("bin/tool"))
        .unwrap()
        .header()
        .mode()
        .unwrap();
    assert_eq!(mode, 0o100755);
    let img = image("old", &[file_mode("bin/tool", b"t", 0o100755)]);
    let mut w =
        TreeWriter::new(InitrdWriter::new(Vec::new(), Vec::new(), InitrdOptions::default()));
    w.init(0, img).unwrap();
    let out = w.into_sink().finish().unwrap();
    let mut cpio = Vec::new();
    flate2::read::GzDecoder::new(&out.initrd[..]).read_to_end(&mut cpio).unwrap();
    assert_eq!(read_newc(&cpio).iter().find(|e| e.0 == "bin/tool").unwrap().1, 0o100755);
}

/// Runs this test binary again with another time zone and umask: the child writes its outputs,
/// the parent compares them with its own.
#[test]
fn outputs_do_not_depend_on_time_zone_or_umask() {
    if let Some(dir) = std::env::var_os("BALEEN_DETERMINISM_CHILD") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::write(dir.join("tar"), tar_bytes()).unwrap();
        std::fs::write(dir.join("initrd"), initrd(InitrdCompression::Gzip, 1).initrd).unwrap();
        return;
    }
    let tmp = tempdir();
    let dir = tmp.path();
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg("umask 077; exec \"$0\" --exact outputs_do_not_depend_on_time_zone_or_umask --test-threads 1")
        .arg(&exe)
        .env("TZ", "Pacific/Kiritimati")
        .env("LC_ALL", "C")
        .env("BALEEN_DETERMINISM_CHILD", dir)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        std::fs::read(dir.join("tar")).unwrap() == tar_bytes(),
        "the tar depends on TZ or umask"
    );
    assert!(
        std::fs::read(dir.join("initrd")).unwrap() == initrd(InitrdCompression::Gzip, 2).initrd,
        "the initrd depends on TZ, umask or threads"
    );
}

/// Issue 21: a layer of 10,000 nested directories took 120 s to write as a tar and 399 s as an
/// initrd, because each entry looked up every one of its ancestors by its whole path (the
/// flattener's whiteout check, the cpio's missing-parent check): cubic in the depth. 2,000
/// levels (paths of 4 KB, just under PATH_MAX) and 1,000 files at the bottom go through the
/// flattener, the tar writer and the initrd writer; the watchdog turns the old minutes into a
/// failure.
#[test]
fn deeply_nested_directories_are_not_cubic() {
    const DEPTH: usize = 2000;
    const FILES: usize = 1000;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut entries = Vec::new();
        let mut path = String::from("d");
        for _ in 0..DEPTH {
            entries.push(dir(&path));
            path.push_str("/d");
        }
        path.truncate(path.len() - 2);
        for i in 0..FILES {
            entries.push(file(&format!("{path}/f{i:04}"), b""));
        }
        let layer = gzip(&tar_layer(&entries));
        let one = || Image {
            reference: "deep".into(),
            layers: vec![Layer::new("sha256:deep", "", Cursor::new(layer.clone()))],
        };
        let started = std::time::Instant::now();
        let mut w = TreeWriter::new(TarWriter::new(Vec::new()));
        w.init(0, one()).unwrap();
        let tar = w.into_sink().finish().unwrap();
        let tar_time = started.elapsed();
        let mut w = TreeWriter::new(InitrdWriter::new(
            Vec::new(),
            Vec::new(),
            InitrdOptions { threads: 1, ..Default::default() },
        ));
        w.init(0, one()).unwrap();
        let out = w.into_sink().finish().unwrap();
        eprintln!("tar {tar_time:?}, both {:?}", started.elapsed());
        tx.send((tar, out.initrd)).unwrap();
    });
    let (tar, initrd) = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("2,000 nested directories written within a minute");
    let tar_names: Vec<String> = tar::Archive::new(&tar[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    let mut cpio = Vec::new();
    flate2::read::GzDecoder::new(&initrd[..]).read_to_end(&mut cpio).unwrap();
    let cpio_names: Vec<String> = read_newc(&cpio).into_iter().map(|e| e.0).collect();
    // Every directory is named by the layer: the cpio synthesizes none and the two agree.
    assert_eq!(tar_names.len(), DEPTH + FILES + 9, "the layer's entries and the touch list");
    assert_eq!(cpio_names, tar_names);
}

/// Issue 21's layer itself, 5,000 nested directories: paths pass PATH_MAX at level 2,048, so the
/// initrd writer never gets them (the kernel could not create them) and the build is refused
/// there, naming the layer, within the watchdog.
#[test]
fn directories_nested_past_path_max_are_refused_quickly() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut entries = Vec::new();
        let mut path = String::from("d");
        for _ in 0..5000 {
            entries.push(dir(&path));
            path.push_str("/d");
        }
        let layer = gzip(&tar_layer(&entries));
        let img = Image {
            reference: "deep".into(),
            layers: vec![Layer::new("sha256:deep", "", Cursor::new(layer))],
        };
        let mut w = TreeWriter::new(InitrdWriter::new(Vec::new(), Vec::new(), Default::default()));
        tx.send(w.init(0, img).map_err(|e| e.chain())).unwrap();
    });
    let result = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("5,000 nested directories refused within a minute");
    let err = result.unwrap_err();
    assert!(err.contains("sha256:deep") && err.contains("PATH_MAX"), "{err}");
    assert!(err.contains("(4097 bytes)"), "the entry at level 2,049: {err}");
}
