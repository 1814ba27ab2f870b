//! The `rpi4` format: an SD-card image for the Raspberry Pi 4 (crates/disk's
//! [`baleen_disk::write_rpi_disk`]) from the build's kernel, initrd and command line.
//!
//! Its other inputs: the GPU firmware (`start4.elf`, `fixup4.dat` of Debian's `raspi-firmware`)
//! from the `baleen/rpi-firmware` component when the store has one (pkg/rpi-firmware), else from
//! the host's `/usr/lib/raspi-firmware/`; and the board's device tree from the build's kernel
//! image, at [`DTB_PATH`] (pkg/kernel-rpi puts it there; Debian's cloud kernel, pkg/kernel, has
//! neither the Pi's device trees nor its drivers). arm64 only (`format::check_arch`).
//!
//! The disk signature and FAT serial are seeded by the BLAKE3 hash of kernel, initrd, command
//! line, firmware and device tree: the same inputs give the same bytes.

use crate::disk::Boot;
use crate::format::{Format, Target};
use baleen_disk::{write_rpi_disk, HashingWriter, RpiBoot};
use baleen_oci::{Image, Platform, Store};
use std::io::{self, BufReader, Seek, Write};
use std::path::Path;

/// The component holding Debian's `raspi-firmware` (pkg/rpi-firmware).
const COMPONENT: &str = "docker.io/baleen/rpi-firmware:";
/// Where Debian's `raspi-firmware` puts the firmware, in the component and on hosts.
pub const FIRMWARE_DIR: &str = "usr/lib/raspi-firmware";
/// The Pi 4's firmware: the GPU's boot loader and its memory map.
pub const FIRMWARE: &[&str] = &["start4.elf", "fixup4.dat"];
/// The Pi 4 B's device tree in a kernel image.
pub const DTB_PATH: &str = "dtbs/broadcom/bcm2711-rpi-4-b.dtb";

#[derive(Debug, thiserror::Error)]
pub enum RpiBuildError {
    #[error(
        "no Raspberry Pi firmware: the store has no baleen/rpi-firmware image and \
         /{FIRMWARE_DIR}/start4.elf is missing; build pkg/rpi-firmware (`baleen pkg build \
         --platforms linux/arm64 pkg/rpi-firmware`) or install Debian's raspi-firmware"
    )]
    NoFirmware,
    #[error("reading the Raspberry Pi firmware from {origin}: {message}")]
    Firmware { origin: String, message: String },
    #[error(
        "the kernel image {image} has no /{DTB_PATH}: rpi4 needs a kernel built with the Pi's \
         device trees and drivers (pkg/kernel-rpi, Debian's linux-image-arm64); Debian's cloud \
         kernel (pkg/kernel) has neither"
    )]
    NoDtb { image: String },
    #[error("the build has no kernel image: rpi4 boots a kernel and its device tree")]
    NoKernel,
    #[error("reading the device tree from the kernel image {image}: {message}")]
    Dtb { image: String, message: String },
    #[error("writing the SD card image")]
    Disk(#[source] baleen_disk::RpiError),
    #[error("{what}")]
    Io { what: &'static str, source: io::Error },
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> RpiBuildError {
    move |source| RpiBuildError::Io { what, source }
}

/// Writes `NAME-rpi4.img` from `boot`, the firmware found for `store`/`platform` and the device
/// tree of `kernel_image`.
pub fn write(
    target: &mut Target<'_>,
    boot: &mut Boot,
    store: &Store,
    platform: &Platform,
    kernel_image: Option<&Image>,
) -> Result<(), RpiBuildError> {
    let firmware = find_firmware(store, platform)?;
    let image = kernel_image.ok_or(RpiBuildError::NoKernel)?;
    let reference = image.reference.to_string();
    let dtb_err = |message: String| RpiBuildError::Dtb { image: reference.clone(), message };
    let dtb = crate::images::read_file(store, image, "the device tree", DTB_PATH)
        .map_err(|e| dtb_err(baleen_spec::chain(&e)))?
        .ok_or_else(|| RpiBuildError::NoDtb { image: reference.clone() })?;
    let seed = seed(boot, &firmware, &dtb)?;
    let Boot { kernel, initrd, cmdline } = boot;
    let kernel_len = kernel.metadata().map_err(io_err("reading the kernel"))?.len();
    let initrd_len = initrd.metadata().map_err(io_err("reading the initrd"))?.len();
    kernel.rewind().map_err(io_err("rewinding the kernel"))?;
    initrd.rewind().map_err(io_err("rewinding the initrd"))?;
    let (mut k, mut i) = (BufReader::new(&mut *kernel), BufReader::new(&mut *initrd));
    let card = RpiBoot {
        firmware,
        dtb: &dtb,
        kernel: &mut k,
        kernel_len,
        initrd: &mut i,
        initrd_len,
        cmdline,
    };
    let mut out =
        target.create(Format::Rpi4.outputs()[0]).map_err(io_err("creating the output"))?;
    write_rpi_disk(card, &seed, &mut out).map_err(RpiBuildError::Disk)?;
    out.flush().map_err(io_err("writing the output"))
}

/// The BLAKE3 hash of every input of the card.
fn seed(
    boot: &mut Boot,
    firmware: &[(String, Vec<u8>)],
    dtb: &[u8],
) -> Result<[u8; 32], RpiBuildError> {
    let mut h = HashingWriter::new(io::sink());
    boot.hash_into(&mut h).map_err(io_err("hashing the kernel, initrd and command line"))?;
    for (name, bytes) in firmware {
        h.write_all(name.as_bytes()).map_err(io_err("hashing the firmware"))?;
        h.write_all(bytes).map_err(io_err("hashing the firmware"))?;
    }
    h.write_all(dtb).map_err(io_err("hashing the device tree"))?;
    Ok(h.finish().1)
}

/// [`FIRMWARE`] by name, from the newest `baleen/rpi-firmware` image of the store, else from the
/// host.
fn find_firmware(
    store: &Store,
    platform: &Platform,
) -> Result<Vec<(String, Vec<u8>)>, RpiBuildError> {
    let component = crate::images::component(store, COMPONENT, platform)
        .map_err(|(origin, message)| RpiBuildError::Firmware { origin, message })?;
    let mut found = Vec::new();
    if let Some((image, img)) = component {
        let err = |message: String| RpiBuildError::Firmware { origin: image.clone(), message };
        for name in FIRMWARE {
            let path = format!("{FIRMWARE_DIR}/{name}");
            let bytes = crate::images::read_file(store, &img, "the Raspberry Pi firmware", &path)
                .map_err(|e| err(baleen_spec::chain(&e)))?
                .ok_or_else(|| err(format!("no /{path} in the image")))?;
            found.push((name.to_string(), bytes));
        }
        return Ok(found);
    }
    for name in FIRMWARE {
        let host = Path::new("/").join(FIRMWARE_DIR).join(name);
        match std::fs::read(&host) {
            Ok(bytes) => found.push((name.to_string(), bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(RpiBuildError::NoFirmware),
            Err(e) => {
                let origin = "the host".to_string();
                return Err(RpiBuildError::Firmware {
                    origin,
                    message: format!("{}: {e}", host.display()),
                });
            }
        }
    }
    Ok(found)
}
