//! Time and peak memory of each disk and ISO writer for a payload of N MiB, against a plain copy
//! of the same bytes: the formats' own cost, without making the kernel and initrd.
//! `cargo run --release -p baleen-disk --example disk_bench -- 1024` (needs Debian's
//! systemd-boot-efi for the stub; the BIOS writers also syslinux and syslinux-common, and are
//! left out without them). The payload is incompressible: the worst case for vmdk and gcp,
//! which compress. `cargo xtask bench` runs it and tabulates the rows.

use baleen_disk::*;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::time::Instant;

fn peak_rss_mib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// Resets the peak-RSS counter so that each step is measured on its own.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Debian's SYSLINUX (syslinux, syslinux-common), as the BIOS tests read it.
fn bios_loader() -> Option<BiosLoader> {
    let installer = std::fs::read("/usr/bin/syslinux").ok()?;
    let mbr = std::fs::read("/usr/lib/syslinux/mbr/mbr.bin").ok()?;
    let gptmbr = std::fs::read("/usr/lib/syslinux/mbr/gptmbr.bin").ok()?;
    BiosLoader::new(Syslinux::from_installer(&installer).ok()?, mbr, gptmbr).ok()
}

/// Writes every dirty page back (sync(1)).
fn settle() {
    let _ = std::process::Command::new("sync").status();
}

fn boot<'a>(
    kernel: &'a mut dyn std::io::Read,
    kernel_len: u64,
    initrd: &'a mut dyn std::io::Read,
) -> BootFiles<'a> {
    BootFiles { kernel, kernel_len, initrd, initrd_len: 0, cmdline: b"console=ttyS0" }
}

fn main() {
    let mib: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(256);
    let stub = std::fs::read("/usr/lib/systemd/boot/efi/linuxx64.efi.stub")
        .expect("install systemd-boot-efi for the stub");
    // BENCH_KEEP=1 leaves the outputs, to look into.
    let dir = tempfile::Builder::new()
        .disable_cleanup(std::env::var_os("BENCH_KEEP").is_some())
        .tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()))
        .unwrap();
    let p = |n: &str| dir.path().join(n);
    // An incompressible "kernel" of N MiB.
    {
        let mut w = BufWriter::new(File::create(p("kernel")).unwrap());
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..mib {
            for c in buf.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                c.copy_from_slice(&x.to_le_bytes());
            }
            w.write_all(&buf).unwrap();
        }
        w.flush().unwrap();
    }
    std::fs::write(p("initrd"), b"").unwrap();
    println!("payload {mib} MiB; each row: seconds, MiB/s of output, peak RSS MiB");
    let report = |name: &str, t: Instant, out: &str| {
        let secs = t.elapsed().as_secs_f64();
        let len = std::fs::metadata(p(out)).unwrap().len();
        println!(
            "{name:<12} {secs:>7.2} s {:>8.0} MiB/s {:>5} MiB RSS  ({} MiB out)",
            len as f64 / secs / 1048576.0,
            peak_rss_mib(),
            len >> 20
        );
        // Each step starts with no write-back of the previous ones pending, so that none pays
        // for another's dirty pages: outputs no later step reads are deleted (their dirty
        // pages dropped, unless BENCH_KEEP), the rest synced.
        if !["uki.efi", "disk-efi.img"].contains(&out) && std::env::var_os("BENCH_KEEP").is_none() {
            let _ = std::fs::remove_file(p(out));
        }
        settle();
    };
    settle();
    let out = |n: &str| BufWriter::with_capacity(1 << 20, File::create(p(n)).unwrap());

    reset_peak();
    let t = Instant::now();
    let mut w = HashingWriter::new(out("uki.efi"));
    let parts = UkiParts {
        kernel: &mut BufReader::new(File::open(p("kernel")).unwrap()),
        initrd: &mut BufReader::new(File::open(p("initrd")).unwrap()),
        cmdline: b"console=ttyS0",
        osrel: b"ID=baleen\n",
    };
    write_uki(&stub, parts, &mut w).unwrap();
    let (mut bw, seed, uki_len) = w.finish();
    bw.flush().unwrap();
    report("uki", t, "uki.efi");

    reset_peak();
    let t = Instant::now();
    let mut o = out("disk-efi.img");
    let layout = write_efi_disk(
        &mut BufReader::new(File::open(p("uki.efi")).unwrap()),
        uki_len,
        &seed,
        &mut o,
    )
    .unwrap();
    o.flush().unwrap();
    drop(o);
    report("raw-efi", t, "disk-efi.img");

    reset_peak();
    let t = Instant::now();
    std::fs::copy(p("disk-efi.img"), p("copy.img")).unwrap();
    report("cp (ref)", t, "copy.img");
    let t = Instant::now();
    {
        let mut r = BufReader::with_capacity(1 << 20, File::open(p("disk-efi.img")).unwrap());
        let mut o = out("copy2.img");
        std::io::copy(&mut r, &mut o).unwrap();
        o.flush().unwrap();
    }
    report("read+write", t, "copy2.img");

    let size = layout.disk_size;
    let raw = || File::open(p("disk-efi.img")).unwrap();
    type Step = Box<dyn Fn(&mut File, &mut BufWriter<File>)>;
    let steps: Vec<(&str, &str, Step)> = vec![
        (
            "qcow2-efi",
            "disk.qcow2",
            Box::new(move |r, o| {
                write_qcow2(r, size, o).unwrap();
            }),
        ),
        (
            "vhd",
            "disk.vhd",
            Box::new(move |r, o| write_vhd(r, size, VhdKind::Fixed, &seed, o).unwrap()),
        ),
        (
            "dynamic-vhd",
            "dyn.vhd",
            Box::new(move |r, o| write_vhd(r, size, VhdKind::Dynamic, &seed, o).unwrap()),
        ),
        (
            "vmdk",
            "disk.vmdk",
            Box::new(move |r, o| write_vmdk(r, size, "disk.vmdk", &seed, o).unwrap()),
        ),
        ("gcp", "disk.img.tar.gz", Box::new(move |r, o| write_gcp_tar(r, size, o).unwrap())),
    ];
    for (name, file, f) in steps {
        reset_peak();
        let t = Instant::now();
        let mut o = out(file);
        f(&mut raw(), &mut o);
        o.flush().unwrap();
        drop(o);
        report(name, t, file);
    }
    if let Some(loader) = bios_loader() {
        let kernel_len = std::fs::metadata(p("kernel")).unwrap().len();
        reset_peak();
        let t = Instant::now();
        let mut o = out("disk-bios.img");
        let (mut k, mut i) = (BufReader::new(File::open(p("kernel")).unwrap()), &b""[..]);
        write_bios_disk(&loader, boot(&mut k, kernel_len, &mut i), &seed, None, &mut o).unwrap();
        o.flush().unwrap();
        drop(o);
        report("raw-bios", t, "disk-bios.img");

        // The BIOS+EFI disk of qcow2-bios, aws and gcp: SYSLINUX and the UKI on one ESP.
        reset_peak();
        let t = Instant::now();
        let mut o = out("disk-hybrid.img");
        let (mut k, mut i) = (BufReader::new(File::open(p("kernel")).unwrap()), &b""[..]);
        let mut uki = BufReader::new(File::open(p("uki.efi")).unwrap());
        write_hybrid_disk(
            &loader,
            boot(&mut k, kernel_len, &mut i),
            &mut uki,
            uki_len,
            &seed,
            None,
            &mut o,
        )
        .unwrap();
        o.flush().unwrap();
        drop(o);
        report("hybrid", t, "disk-hybrid.img");
    } else {
        eprintln!("note: no /usr/bin/syslinux or /usr/lib/syslinux/mbr: BIOS writers left out");
    }

    reset_peak();
    let t = Instant::now();
    let mut o = out("efi.iso");
    write_efi_iso(&mut BufReader::new(File::open(p("uki.efi")).unwrap()), uki_len, &seed, &mut o)
        .unwrap();
    o.flush().unwrap();
    drop(o);
    report("iso-efi", t, "efi.iso");
}
