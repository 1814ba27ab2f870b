//! The ISO formats end to end on the spine system: `iso-bios` built twice (byte-identical), its
//! El Torito entry and hybrid MBR checked by xorriso and syslinux's `isohybrid` (same bytes), then booted under SeaBIOS (TCG) from the
//! CD-ROM and, the same file, as a raw disk (the isohybrid MBR) to the spine's markers — two
//! boots; and `kernel+iso`, whose ISO holds the tree minus `boot/` (compared entry by entry with
//! the tar of the same build through bsdtar).

use baleen_build::Format;
use baleen_oci::Store;
use baleen_testkit::boot::BootTest;
use common::{boots_to_services, build_into, spine_config, spine_store};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::common;

/// The spine system's store, or None (skipped) when the kernel, busybox or ISOLINUX are missing.
fn setup(tmp: &Path) -> Option<(baleen_spec::Config, Store)> {
    baleen_testkit::require_tool("busybox")?;
    baleen_testkit::require_tool("xorriso")?;
    if !Path::new("/usr/lib/ISOLINUX/isolinux.bin").is_file() {
        assert!(!baleen_testkit::tools_required(), "install isolinux and syslinux-common");
        eprintln!("skipping: /usr/lib/ISOLINUX/isolinux.bin is not installed");
        return None;
    }
    let kernel = baleen_testkit::kernel::debian_cloud_kernel()?;
    let store = spine_store(&tmp.join("store"), &kernel);
    Some((spine_config(), store))
}

/// The iso-bios of the spine, built once for every test of this binary (and checked to be
/// byte-identical across two builds on the way).
fn spine_iso() -> Option<&'static Path> {
    static ISO: OnceLock<Option<(tempfile::TempDir, PathBuf)>> = OnceLock::new();
    ISO.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let (cfg, store) = setup(tmp.path())?;
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        build_into(&cfg, &store, &[Format::IsoBios], &a);
        build_into(&cfg, &store, &[Format::IsoBios], &b);
        let iso = a.join("spine.iso");
        let (x, y) = (std::fs::read(&iso).unwrap(), std::fs::read(b.join("spine.iso")).unwrap());
        assert!(x == y, "two builds of iso-bios are byte-identical");
        Some((tmp, iso))
    })
    .as_ref()
    .map(|(_, p)| p.as_path())
}

#[test]
fn iso_bios_has_a_bios_catalog_and_a_hybrid_mbr() {
    let Some(iso) = spine_iso() else { return };
    let out = Command::new("xorriso")
        .arg("-indev")
        .arg(iso)
        .args(["-report_el_torito", "plain", "-report_system_area", "plain"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let boot = text
        .lines()
        .find(|l| l.starts_with("El Torito boot img :   1"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(boot.contains("BIOS  y   none"), "{boot}");
    assert!(text.contains("El Torito img path :   1  /isolinux/isolinux.bin"), "{text}");
    assert!(text.contains("boot-info-table"), "{text}");
    assert!(text.contains("isohybrid"), "xorriso recognises the isohybrid MBR: {text}");
    let bytes = std::fs::read(iso).unwrap();
    assert_eq!(bytes.len() % (1 << 20), 0);
    let listing =
        Command::new("xorriso").arg("-indev").arg(iso).args(["-find", "/", "--"]).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    for p in ["/boot/kernel", "/boot/initrd.img", "/isolinux/ldlinux.c32", "/isolinux/isolinux.cfg"]
    {
        assert!(listing.contains(&format!("'{p}'")), "{p}: {listing}");
    }
}

/// syslinux's own `isohybrid`, run on a copy whose sector 0 is zeroed (with our disk id, which
/// it would otherwise draw at random), writes back exactly the same image.
#[test]
fn isohybrid_makes_the_same_mbr() {
    let Some(iso) = spine_iso() else { return };
    let Some(_) = baleen_testkit::require_tool("isohybrid") else { return };
    let ours = std::fs::read(iso).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("copy.iso");
    let mut zeroed = ours.clone();
    zeroed[..512].fill(0);
    std::fs::write(&copy, &zeroed).unwrap();
    let id = u32::from_le_bytes(ours[440..444].try_into().unwrap());
    let out =
        Command::new("isohybrid").arg("--id").arg(format!("{id:#x}")).arg(&copy).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let theirs = std::fs::read(&copy).unwrap();
    assert_eq!(theirs.len(), ours.len(), "same padding");
    assert_eq!(&theirs[..512], &ours[..512], "same MBR as isohybrid");
    assert!(theirs == ours, "isohybrid changes nothing else");
}

#[test]
fn iso_bios_boots_from_the_cdrom_under_seabios() {
    let Some(iso) = spine_iso() else { return };
    let Some(vm) = BootTest::path("iso-bios-cdrom", iso) else { return };
    boots_to_services(vm);
}

#[test]
fn iso_bios_boots_as_a_raw_disk_through_its_hybrid_mbr() {
    let Some(iso) = spine_iso() else { return };
    // Named as a disk image, `baleen run` attaches it as disk 0 (raw), not as a CD-ROM; a copy,
    // as qemu locks a writable disk against the CD-ROM test reading the same file.
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("spine-hybrid.img");
    std::fs::copy(iso, &disk).unwrap();
    let Some(vm) = BootTest::path("iso-bios-disk", &disk) else { return };
    boots_to_services(vm);
}

/// kernel+iso: the ISO holds exactly the tar's entries outside `boot/`, with the same modes,
/// owners, link targets and contents (both read by bsdtar).
#[test]
fn kernel_iso_holds_the_tree_minus_boot() {
    let Some(_) = baleen_testkit::require_tool("bsdtar") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let Some((cfg, store)) = setup(tmp.path()) else { return };
    let out = tmp.path().join("out");
    build_into(&cfg, &store, &[Format::KernelIso], &out);
    build_into(&cfg, &store, &[Format::Tar], &out);
    assert!(out.join("spine-kernel").is_file());
    assert!(out.join("spine-root-initrd.img").is_file(), "the stage-1 initrd that mounts the ISO");
    assert!(std::fs::read_to_string(out.join("spine-cmdline")).unwrap().contains("console=ttyS0"));
    let list = |archive: &Path| -> Vec<String> {
        let o = Command::new("bsdtar")
            .arg("-tvf")
            .arg(archive)
            .arg("--numeric-owner")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut v: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            // mode, links, uid, gid, size, (date), name: drop the link count and the date.
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let name = f[8..].join(" ");
                let name = name.trim_start_matches("./").trim_end_matches('/').to_string();
                format!(
                    "{} {} {} {} {}",
                    f[0],
                    f[2],
                    f[3],
                    if f[0].starts_with('d') { "-" } else { f[4] },
                    name
                )
            })
            .filter(|l| {
                let name = l.split(' ').nth(4).unwrap_or("");
                !(name == "boot" || name.starts_with("boot/") || name == "." || name.is_empty())
            })
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let from_iso = list(&out.join("spine.iso"));
    let mut from_tar = list(&out.join("spine.tar"));
    // The ISO has every parent directory; the tar may lack some (the spine's busybox image has no
    // `bin` entry): those appear as LinuxKit's extraction would make them, 0755 root.
    let names: std::collections::BTreeSet<String> =
        from_tar.iter().map(|l| l.splitn(5, ' ').nth(4).unwrap().to_string()).collect();
    for n in &names {
        let mut p = Path::new(n.split(" -> ").next().unwrap()).parent();
        while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
            let d = d.to_str().unwrap();
            if !names.contains(d) {
                from_tar.push(format!("drwxr-xr-x 0 0 - {d}"));
            }
            p = Path::new(d).parent();
        }
    }
    from_tar.sort();
    from_tar.dedup();
    assert!(from_tar.len() > 20, "{from_tar:?}");
    assert_eq!(from_iso, from_tar);
    // Contents: extract both and compare every regular file.
    let (x, y) = (tmp.path().join("x"), tmp.path().join("y"));
    for (archive, dir) in [(out.join("spine.iso"), &x), (out.join("spine.tar"), &y)] {
        std::fs::create_dir_all(dir).unwrap();
        let o =
            Command::new("bsdtar").arg("-xpf").arg(&archive).arg("-C").arg(dir).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let diff = Command::new("diff")
        .arg("-r")
        .arg("--no-dereference")
        .arg("-x")
        .arg("boot")
        .arg(&x)
        .arg(&y)
        .output()
        .unwrap();
    assert!(diff.status.success(), "{}", String::from_utf8_lossy(&diff.stdout));
}
