//! Installing what the demo and the tests need: Debian packages and Rust targets.

use anyhow::{bail, Context, Result};
use std::process::Command;

/// Debian packages the test suite uses, with what for. Tests are cross-checks and boots: baleen
/// itself never runs these at build time.
pub const TEST_PACKAGES: &[(&str, &str)] = &[
    ("qemu-system-x86", "boot tests"),
    ("ovmf", "UEFI firmware for EFI boot tests"),
    ("seabios", "BIOS firmware for boot tests"),
    ("qemu-system-arm", "qemu-system-aarch64: the arm64 boot tests"),
    ("qemu-efi-aarch64", "AAVMF, the UEFI firmware of the arm64 raw-efi boot test"),
    ("qemu-utils", "qemu-img check of disk formats"),
    ("docker-registry", "the real registry the OCI tests talk to"),
    ("apache2-utils", "htpasswd for the registry auth tests"),
    ("openssl", "the CA and certificate of the registry TLS tests"),
    ("skopeo", "cross-checking pushed images"),
    ("cpio", "cross-checking initrds"),
    ("libarchive-tools", "bsdtar, cross-checking initrd cpio and tar outputs"),
    ("xorriso", "cross-checking ISOs"),
    ("genisoimage", "isoinfo, cross-checking ISOs"),
    ("dosfstools", "fsck.vfat on FAT images"),
    ("mtools", "reading FAT images"),
    ("squashfs-tools", "unsquashfs on squashfs roots"),
    ("erofs-utils", "fsck.erofs on erofs roots"),
    ("gdisk", "sgdisk -v on GPT disks"),
    ("busybox-static", "a tiny userland for early boot tests"),
    ("xz-utils", "xz-compressed kernel modules for the init boot test"),
    ("openssh-client", "ssh-keygen and ssh: logging in to the sshd example with a key"),
    ("isolinux", "a BIOS-bootable ISO for the run ISO boot test"),
    ("syslinux-common", "ldlinux.c32 for that ISO"),
    ("syslinux", "the SYSLINUX installer the BIOS disks take ldlinux.sys from"),
    ("syslinux-utils", "isohybrid, cross-checking the iso-bios hybrid MBR"),
    ("fdisk", "sfdisk -d on MBR disks"),
    ("systemd-boot-efi", "the EFI stub of the UKI boot test"),
    ("binutils", "objcopy, assembling that UKI"),
    ("sbsigntool", "sbverify/sbsign, cross-checking Secure Boot signatures"),
    ("cryptsetup-bin", "veritysetup, cross-checking dm-verity hash trees"),
    ("python3-pip", "pip install virt-firmware: virt-fw-vars, cross-checking --enroll's store"),
    ("swtpm", "the TPM 2.0 of the PCR 11 boot test (baleen run --tpm)"),
    ("swtpm-tools", "swtpm_setup, for TPM state made by hand"),
    ("systemd", "systemd-measure, cross-checking PCR 11 predictions and .pcrsig"),
    ("libtss2-esys-3.0.2-0", "the TSS systemd-measure sign computes policies with"),
    ("libtss2-tcti-swtpm0", "systemd-measure sign talking to swtpm"),
    ("zsh", "loading baleen's zsh completions"),
    ("fish", "loading baleen's fish completions"),
    ("man-db", "man --warnings on the generated man pages"),
];

/// Packages the demo needs beyond a Rust toolchain.
pub const DEMO_PACKAGES: &[(&str, &str)] = &[
    ("qemu-system-x86", "booting the demo system"),
    ("seabios", "BIOS firmware for the demo boot"),
    ("swtpm", "baleen run --tpm"),
    ("swtpm-tools", "swtpm_setup, for TPM state made by hand"),
];

/// The musl target the static init is built for.
pub const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";
/// The arm64 one: the init component for two platforms, and the arm64 boot tests.
pub const ARM64_MUSL_TARGET: &str = "aarch64-unknown-linux-musl";

pub fn ensure_all() -> Result<()> {
    ensure_packages(TEST_PACKAGES)?;
    ensure_rust_target(MUSL_TARGET)?;
    ensure_rust_target(ARM64_MUSL_TARGET)?;
    ensure_rust_components(&["rustfmt", "clippy"])
}

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Installs the missing packages with apt-get (through sudo when not root). On a system without
/// apt-get, fails with the list of packages and what each is for.
pub fn ensure_packages(pkgs: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&(&str, &str)> = pkgs.iter().filter(|(p, _)| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|(p, _)| *p).collect();
    if which("apt-get").is_none() {
        let list: String = missing.iter().map(|(p, why)| format!("  {p:<18} {why}\n")).collect();
        bail!(
            "these Debian/Ubuntu packages are missing and this system has no apt-get;\n\
             install the equivalents with your package manager, then run again:\n{list}"
        );
    }
    eprintln!("xtask: installing {}", names.join(" "));
    let as_root = is_root();
    let apt = |args: &[&str]| -> Result<()> {
        let mut cmd = if as_root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        let status = cmd.status().context("running apt-get")?;
        if !status.success() {
            bail!("apt-get {} failed ({status})", args.join(" "));
        }
        Ok(())
    };
    let install = |names: &[&str]| -> Result<()> {
        let args: Vec<&str> =
            ["install", "-y", "--no-install-recommends"].iter().chain(names).copied().collect();
        // A fresh machine may have no package lists yet; an install without them finds nothing.
        if apt(&args).is_err() {
            apt(&["update", "-q"])?;
            apt(&args)?;
        }
        Ok(())
    };
    install(&names)?;
    // apt may resolve a conflict by removing a package that was already there: a machine with
    // qemu-utils from backports loses it when Debian's qemu-system-x86 comes in. Install again
    // whatever of the whole list is missing now; the second pass takes the matching versions.
    let removed: Vec<&str> = pkgs.iter().map(|(p, _)| *p).filter(|p| !installed(p)).collect();
    if !removed.is_empty() {
        eprintln!("xtask: apt removed or skipped {}; installing again", removed.join(" "));
        install(&removed)?;
        let still: Vec<&str> = removed.into_iter().filter(|p| !installed(p)).collect();
        if !still.is_empty() {
            bail!("apt-get did not install {}: see its output above", still.join(" "));
        }
    }
    Ok(())
}

pub fn ensure_rust_target(target: &str) -> Result<()> {
    let out = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match out {
        Ok(o) if String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == target) => Ok(()),
        Ok(_) => {
            eprintln!("xtask: rustup target add {target}");
            let status = Command::new("rustup").args(["target", "add", target]).status()?;
            if !status.success() {
                bail!("rustup target add {target} failed");
            }
            Ok(())
        }
        Err(_) => bail!("rustup not found: install the Rust target {target} for the static init"),
    }
}

fn ensure_rust_components(components: &[&str]) -> Result<()> {
    let Ok(out) = Command::new("rustup").args(["component", "list", "--installed"]).output() else {
        return Ok(()); // not a rustup toolchain: cargo fmt/clippy will say what is missing
    };
    let have = String::from_utf8_lossy(&out.stdout);
    for c in components {
        if !have.lines().any(|l| l.starts_with(c)) {
            let status = Command::new("rustup").args(["component", "add", c]).status()?;
            if !status.success() {
                bail!("rustup component add {c} failed");
            }
        }
    }
    Ok(())
}

pub fn which(prog: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(prog)).find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
