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

/// The outputs later steps read (the UKI, the raw EFI disk): always made, always kept.
const INPUTS: [&str; 2] = ["uki.efi", "disk-efi.img"];

/// Runs per step; the fastest is reported.
const RUNS: usize = 3;

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
    println!(
        "payload {mib} MiB; each row: seconds (best of {RUNS}), MiB/s of output, peak RSS MiB"
    );
    let keep = std::env::var_os("BENCH_KEEP").is_some();
    // Runs `f` (which writes `file`) RUNS times and prints the fastest: the first run also
    // brings its inputs into the page cache, which this machine's may have let go. Before each
    // run the previous outputs are deleted or synced, so no run pays for another's write-back.
    // BENCH_ONLY=vmdk,gcp runs those writers alone (after uki and raw-efi, which make their
    // input), to profile one of them.
    let only = std::env::var("BENCH_ONLY").ok();
    let step = |name: &str, file: &str, f: &mut dyn FnMut(BufWriter<File>)| {
        let wanted = only.as_deref().is_none_or(|o| o.split(',').any(|w| w == name));
        if !wanted && !INPUTS.contains(&file) {
            return;
        }
        let mut best = f64::MAX;
        let mut rss = 0;
        for _ in 0..RUNS {
            let _ = std::fs::remove_file(p(file));
            settle();
            reset_peak();
            let t = Instant::now();
            f(BufWriter::with_capacity(1 << 20, File::create(p(file)).unwrap()));
            best = best.min(t.elapsed().as_secs_f64());
            rss = rss.max(peak_rss_mib());
        }
        let len = std::fs::metadata(p(file)).unwrap().len();
        println!(
            "{name:<12} {best:>7.2} s {:>8.0} MiB/s {rss:>5} MiB RSS  ({} MiB out)",
            len as f64 / best / 1048576.0,
            len >> 20
        );
        // Outputs no later step reads go (their dirty pages dropped), unless BENCH_KEEP.
        if !keep && !INPUTS.contains(&file) {
            let _ = std::fs::remove_file(p(file));
        }
    };
    let input = |n: &str| BufReader::with_capacity(1 << 20, File::open(p(n)).unwrap());

    let mut uki = (Vec::new(), 0);
    step("uki", "uki.efi", &mut |o| {
        let mut w = HashingWriter::new(o);
        let parts = UkiParts {
            kernel: &mut input("kernel"),
            initrd: &mut input("initrd"),
            cmdline: b"console=ttyS0",
            osrel: b"ID=baleen\n",
            pcrpkey: b"",
            pcrsig: b"",
        };
        write_uki(&stub, parts, &mut w).unwrap();
        let (mut bw, seed, len) = w.finish();
        bw.flush().unwrap();
        uki = (seed.to_vec(), len);
    });
    let (seed, uki_len) = uki;
    let mut size = 0;
    step("raw-efi", "disk-efi.img", &mut |mut o| {
        size = write_efi_disk(EfiArch::X64, &mut input("uki.efi"), uki_len, &seed, &mut o)
            .unwrap()
            .disk_size;
        o.flush().unwrap();
    });
    step("cp (ref)", "copy.img", &mut |o| {
        drop(o);
        std::fs::copy(p("disk-efi.img"), p("copy.img")).unwrap();
    });
    step("read+write", "copy2.img", &mut |mut o| {
        std::io::copy(&mut input("disk-efi.img"), &mut o).unwrap();
        o.flush().unwrap();
    });

    let raw = || File::open(p("disk-efi.img")).unwrap();
    let seed = &seed[..];
    type Convert<'a> = Box<dyn Fn(&mut File, &mut BufWriter<File>) + 'a>;
    let steps: Vec<(&str, &str, Convert)> = vec![
        (
            "qcow2-efi",
            "disk.qcow2",
            Box::new(|r, o| {
                write_qcow2(r, size, o).unwrap();
            }),
        ),
        ("vhd", "disk.vhd", Box::new(|r, o| write_vhd(r, size, VhdKind::Fixed, seed, o).unwrap())),
        (
            "dynamic-vhd",
            "dyn.vhd",
            Box::new(|r, o| write_vhd(r, size, VhdKind::Dynamic, seed, o).unwrap()),
        ),
        ("vmdk", "disk.vmdk", Box::new(|r, o| write_vmdk(r, size, "disk.vmdk", seed, o).unwrap())),
        ("gcp", "disk.img.tar.gz", Box::new(|r, o| write_gcp_tar(r, size, o).unwrap())),
    ];
    for (name, file, f) in steps {
        step(name, file, &mut |mut o| {
            f(&mut raw(), &mut o);
            o.flush().unwrap();
        });
    }
    if let Some(loader) = bios_loader() {
        let kernel_len = std::fs::metadata(p("kernel")).unwrap().len();
        step("raw-bios", "disk-bios.img", &mut |mut o| {
            let (mut k, mut i) = (input("kernel"), &b""[..]);
            write_bios_disk(&loader, boot(&mut k, kernel_len, &mut i), seed, None, &mut o).unwrap();
            o.flush().unwrap();
        });
        // The BIOS+EFI disk of qcow2-bios, aws and gcp: SYSLINUX and the UKI on one ESP.
        step("hybrid", "disk-hybrid.img", &mut |mut o| {
            let (mut k, mut i) = (input("kernel"), &b""[..]);
            let files = boot(&mut k, kernel_len, &mut i);
            write_hybrid_disk(&loader, files, &mut input("uki.efi"), uki_len, seed, None, &mut o)
                .unwrap();
            o.flush().unwrap();
        });
    } else {
        eprintln!("note: no /usr/bin/syslinux or /usr/lib/syslinux/mbr: BIOS writers left out");
    }
    step("iso-efi", "efi.iso", &mut |mut o| {
        write_efi_iso(EfiArch::X64, &mut input("uki.efi"), uki_len, seed, &mut o).unwrap();
        o.flush().unwrap();
    });
}
