//! Tests of package building: kernel layout, device trees, locks.

use super::*;
use baleen_testkit::Chain;

/// The kernel layout from Debian's real cloud kernel (unpacked and cached by testkit):
/// modules chosen with their dependencies, depmod's files generated.
#[test]
fn kernel_layout_of_the_debian_cloud_kernel() {
    let Some(k) = baleen_testkit::kernel::debian_cloud_kernel() else { return };
    let mut debs = LayerBuilder::new(&[]).unwrap();
    let vmlinuz = format!("boot/vmlinuz-{}", k.release);
    debs.add_file(&vmlinuz, 0o644, std::fs::File::open(&k.vmlinuz).unwrap()).unwrap();
    let mut stack = vec![k.modules.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(&k.root).unwrap().to_string_lossy().into_owned();
                debs.add_file(&rel, 0o644, std::fs::File::open(&p).unwrap()).unwrap();
            }
        }
    }
    let wanted = ["virtio-net".to_owned(), "overlay".to_owned(), "ext4".to_owned()];
    let mut out = kernel_layout(Path::new("pkg/kernel"), debs, &wanted, &[]).unwrap();
    let kernel = out.read("kernel").unwrap();
    assert_eq!(kernel, std::fs::read(&k.vmlinuz).unwrap());
    let kt = out.read("kernel.tar").unwrap();
    let mut files = std::collections::BTreeMap::new();
    for e in tar::Archive::new(&kt[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut s).unwrap();
        files.insert(p, s);
    }
    let m = format!("lib/modules/{}/", k.release);
    let dep = String::from_utf8(files[&format!("{m}modules.dep")].clone()).unwrap();
    assert!(dep.contains("kernel/drivers/net/virtio_net.ko: "), "{dep}");
    assert!(dep.contains("kernel/net/core/failover.ko"), "{dep}");
    let alias = String::from_utf8(files[&format!("{m}modules.alias")].clone()).unwrap();
    assert!(alias.contains("alias virtio:d00000001v* virtio_net"), "{alias}");
    assert!(files.contains_key(&format!("{m}kernel/fs/overlayfs/overlay.ko")));
    assert!(files.contains_key(&format!("{m}modules.builtin")));
    // Only what was asked for and its dependencies.
    let kos = files.keys().filter(|p| p.ends_with(".ko")).count();
    assert!(kos < 10, "{kos} modules: {:?}", files.keys().collect::<Vec<_>>());

    let debs = LayerBuilder::new(&[]).unwrap();
    let err = kernel_layout(Path::new("pkg/kernel"), debs, &wanted, &[]).unwrap_err().chain();
    assert!(err.contains("no boot/vmlinuz-*"), "{err}");
}

/// `kernel.dtbs`: the named device trees, from Debian's per-release directory, under
/// `dtbs/` of the image (where the rpi4 format reads the Pi's); a missing one is named.
#[test]
fn kernel_dtbs_are_copied_under_dtbs_and_a_missing_one_is_named() {
    let release = "6.1.0-50-arm64";
    let debs = || {
        let mut debs = LayerBuilder::new(&[]).unwrap();
        debs.add_file(&format!("boot/vmlinuz-{release}"), 0o644, &b"Image"[..]).unwrap();
        let dtb = format!("usr/lib/linux-image-{release}/broadcom/bcm2711-rpi-4-b.dtb");
        debs.add_file(&dtb, 0o644, &b"\xd0\x0d\xfe\xed"[..]).unwrap();
        debs
    };
    let dtbs = ["broadcom/bcm2711-rpi-4-b.dtb".to_owned()];
    let mut out = kernel_layout(Path::new("pkg/kernel-rpi"), debs(), &[], &dtbs).unwrap();
    assert_eq!(out.read("dtbs/broadcom/bcm2711-rpi-4-b.dtb").unwrap(), b"\xd0\x0d\xfe\xed");
    assert_eq!(out.read("kernel").unwrap(), b"Image");
    let missing = ["broadcom/bcm2712-rpi-5-b.dtb".to_owned()];
    let err = kernel_layout(Path::new("pkg/kernel-rpi"), debs(), &[], &missing).unwrap_err();
    let err = err.to_string();
    assert!(err.contains("/usr/lib/linux-image-6.1.0-50-arm64/broadcom/bcm2712-rpi-5-b.dtb"));
}
