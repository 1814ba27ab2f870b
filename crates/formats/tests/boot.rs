//! The initrds boot: Debian's cloud kernel with a tree whose init image is Debian's static
//! busybox, written by `InitrdWriter` as gzip and as zstd, booted under qemu (TCG). The guest
//! checks a few entries of the tree (a hard link turned relative symlink, a bundle's
//! config.json, a `files` entry) and prints a marker. Four boots (one stream and one per
//! section, each compression), a few seconds each.

use baleen_formats::*;
use baleen_testkit::boot::BootTest;
use baleen_testkit::kernel::debian_cloud_kernel;
use baleen_testkit::layers::*;
use baleen_tree::*;
use std::io::Cursor;
use std::time::Duration;

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
if [ "$(readlink /usr/local/bin/bb)" = ../../../bin/busybox ] && [ -x /usr/local/bin/bb ] \
  && grep -q '"hello"' /containers/services/hello/config.json \
  && [ "$(cat /etc/config)" = cfg ] \
  && [ -d /containers/services/hello/rootfs ]; then
  echo "BALEEN-TREE-OK $(cat /proc/cmdline | tr ' ' '\n' | grep marker=)"
else
  echo "BALEEN-TREE-BAD"
  ls -lR /containers /usr/local
fi
poweroff -f
"#;

fn layer(entries: &[TestEntry]) -> Vec<Layer> {
    vec![Layer::new(
        "sha256:test",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        Cursor::new(gzip(&tar_layer(entries))),
    )]
}

fn boot_with(layout: InitrdLayout, compression: InitrdCompression, marker: &str) {
    let Some(kernel) = debian_cloud_kernel() else { return };
    let Ok(busybox) = std::fs::read("/bin/busybox") else {
        assert!(
            !baleen_testkit::tools_required(),
            "/bin/busybox (busybox-static) is not installed"
        );
        return;
    };
    let vmlinuz = std::fs::read(&kernel.vmlinuz).unwrap();
    let opts = InitrdOptions { compression, threads: 2, prepend_ucode: true, layout };
    let mut w = TreeWriter::new(InitrdWriter::new(Vec::new(), Vec::new(), opts));
    let kopts = KernelOptions {
        cmdline: format!("console=ttyS0 panic=-1 marker={marker}"),
        tar: Some("none".into()),
        ..Default::default()
    };
    w.kernel(
        Image {
            reference: "test/kernel".into(),
            layers: layer(&[file_mode("kernel", &vmlinuz, 0o644)]),
        },
        &kopts,
    )
    .unwrap();
    let init = layer(&[
        dir("bin"),
        file_mode("bin/busybox", &busybox, 0o755),
        file_mode("init", INIT.as_bytes(), 0o755),
        dir("usr"),
        dir("usr/local"),
        dir("usr/local/bin"),
        hardlink("usr/local/bin/bb", "bin/busybox"),
        dir("tmp"),
    ]);
    w.init(0, Image { reference: "test/init".into(), layers: init }).unwrap();
    w.finish_init().unwrap();
    let mut rt = |_: &str| b"{}".to_vec();
    let svc = Image { reference: "test/hello".into(), layers: layer(&[file("hello.txt", b"hi")]) };
    w.bundle(Bundle {
        section: Section::Services,
        index: 0,
        name: "hello",
        image: svc,
        readonly: true,
        config_json: b"{\"hostname\": \"hello\"}",
        runtime_json: &mut rt,
    })
    .unwrap();
    w.files(vec![FileItem {
        index: 0,
        path: "etc/config".into(),
        kind: FileKind::Contents(FileData::Bytes(b"cfg".to_vec())),
        mode: Some(0o644),
        uid: 0,
        gid: 0,
    }])
    .unwrap();
    let out = w.into_sink().finish().unwrap();
    assert_eq!(out.kernel, vmlinuz);

    let dir = BootTest::scratch_dir(marker);
    let (k, i) = (dir.join("kernel"), dir.join("initrd.img"));
    std::fs::write(&k, &out.kernel).unwrap();
    std::fs::write(&i, &out.initrd).unwrap();
    let cmdline = String::from_utf8(out.cmdline).unwrap();
    let Some(vm) = BootTest::kernel_initrd(marker, &k, &i, &cmdline) else { return };
    // `poweroff -f` comes after the verdict line, so the whole line is on the console by then.
    let console = vm.wait_for("reboot: Power down", Duration::from_secs(150));
    assert!(
        console.contains(&format!("BALEEN-TREE-OK marker={marker}")),
        "{}",
        baleen_testkit::boot::tail(&console, 40)
    );
    vm.stop();
}

#[test]
fn gzip_initrd_boots() {
    boot_with(InitrdLayout::Single, InitrdCompression::Gzip, "gzip");
}

#[test]
fn zstd_initrd_boots() {
    boot_with(InitrdLayout::Single, InitrdCompression::Zstd, "zstd");
}

/// One gzip member per section (kernel, init, the service, files) after the microcode: the
/// kernel unpacks them in turn, and the service's bundle and the `files` entry are there.
#[test]
fn segmented_gzip_initrd_boots() {
    boot_with(InitrdLayout::Segmented, InitrdCompression::Gzip, "seggzip");
}

#[test]
fn segmented_zstd_initrd_boots() {
    boot_with(InitrdLayout::Segmented, InitrdCompression::Zstd, "segzstd");
}
