#[test]
fn debian_cloud_kernel_is_a_bzimage_with_modules() {
    let Some(k) = baleen_testkit::kernel::debian_cloud_kernel() else { return };
    let bytes = std::fs::read(&k.vmlinuz).unwrap();
    // bzImage: "HdrS" magic at offset 0x202 of the setup header.
    assert_eq!(&bytes[0x202..0x206], b"HdrS", "{} is not a bzImage", k.vmlinuz.display());
    // Debian ships no modules.dep (depmod runs in postinst): the kernel component generates it.
    assert!(k.modules.join("modules.order").is_file());
    assert!(k.modules.join("kernel/fs/overlayfs/overlay.ko").is_file(), "overlay is a module");
    assert!(k.release.ends_with("cloud-amd64"), "release {}", k.release);
}
