//! The ISO 9660 formats written from the image tree: `kernel+iso` (`B-kernel`, `B-cmdline` and
//! `B.iso`, the tree minus `boot/`, as LinuxKit's `genisoimage -R` makes it, plus baleen's
//! `B-root-initrd.img` that mounts it, see `crate::rootfs`) and `iso-bios`
//! (`B.iso`: the whole tree, plus `boot/initrd.img` and ISOLINUX, bootable from a CD and,
//! hybrid, from a disk).
//!
//! One tree pass each. File data is spooled to an anonymous temporary file in the output
//! directory (ISO directories come before the data, see `baleen_disk::iso`); for `iso-bios` the
//! same pass also writes the initrd, reading each file back from the spool rather than the
//! images twice.
//!
//! `iso-bios` boots `/boot/kernel` with `initrd=/boot/initrd.img`, the initrd `kernel+initrd`
//! writes, where LinuxKit boots with `root=/dev/sr0` and the ISO as root filesystem: Debian's
//! cloud kernel has ISO 9660 and the CD-ROM driver as modules (docs/compat.md). ISOLINUX comes
//! from the `baleen/isolinux` component in the store, else from the host's Debian `isolinux` and
//! `syslinux-common`.

use crate::format::{Format, Target};
use crate::pipeline::Request;
use crate::BuildError;
use baleen_disk::{BiosBoot, IsoOptions, IsoTree, IsoWriteError};
use baleen_formats::{InitrdOptions, InitrdWriter};
use baleen_oci::{Platform, Store};
use baleen_tree::{Entry, EntryKind, EntrySink};
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Where Debian puts the ISOLINUX files, in the component image and on hosts.
pub const ISOLINUX_BIN: &str = "usr/lib/ISOLINUX/isolinux.bin";
pub const ISOHDPFX_BIN: &str = "usr/lib/ISOLINUX/isohdpfx.bin";
pub const LDLINUX_C32: &str = "usr/lib/syslinux/modules/bios/ldlinux.c32";
const COMPONENT: &str = "docker.io/baleen/isolinux:";
/// LinuxKit's volume id (`genisoimage -V LinuxKit`).
const VOLUME_ID: &str = "LinuxKit";

#[derive(Debug, thiserror::Error)]
pub enum IsoBuildError {
    #[error(
        "no ISOLINUX: the store has no baleen/isolinux image and /{ISOLINUX_BIN} is missing; \
         install Debian's isolinux and syslinux-common or build pkg/isolinux \
         (`baleen pkg build pkg/isolinux`)"
    )]
    NoIsolinux,
    #[error("reading ISOLINUX from {image}: {message}")]
    Component { image: String, message: String },
    #[error("reading {path}")]
    Host { path: PathBuf, source: io::Error },
    #[error("the image tree has no boot/kernel: {0} needs a kernel section")]
    NoKernel(Format),
    #[error(transparent)]
    Iso(IsoWriteError),
    #[error("{what}")]
    Io { what: String, source: io::Error },
}

fn io_err(what: &str) -> impl FnOnce(io::Error) -> IsoBuildError + '_ {
    move |source| IsoBuildError::Io { what: what.to_string(), source }
}

/// The formats written here (`crate::format::Family::Iso`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsoKind {
    /// `kernel+iso`: the tree minus `boot/`, with the kernel and stage 1 beside it.
    KernelIso,
    /// `iso-bios`: the whole tree, the initrd and ISOLINUX.
    Bios,
}

/// Writes `kind`'s files to `target`; `assemble` runs the one tree pass into the sink it is
/// given.
pub fn write(
    kind: IsoKind,
    target: &mut Target<'_>,
    req: &Request<'_>,
    assemble: impl FnOnce(&mut dyn EntrySink) -> Result<(), BuildError>,
) -> Result<(), BuildError> {
    let format = target.format;
    let fail = |source| BuildError::Iso { format, source };
    // The spool is as big as the ISO: a scratch file, not on /tmp (see crate::scratch).
    let spool = crate::scratch::file().map_err(|e| fail(io_err("creating the ISO spool")(e)))?;
    let mut tree = IsoTree::new(spool);
    let opts;
    let isolinux;
    let mut gathered = None;
    match kind {
        IsoKind::KernelIso => {
            // B's root-filesystem split: boot/ aside, the rest to the ISO, and what the
            // stage-1 initrd needs (init, the root modules) copied on the way.
            let mut g = crate::rootfs::Gather::new(&mut tree)
                .map_err(|e| fail(io_err("creating temporary files")(e)))?;
            assemble(&mut g)?;
            gathered = Some(g.finish());
            opts = IsoOptions { volume_id: VOLUME_ID, joliet: true, bios: None };
        }
        IsoKind::Bios => {
            // Found first: a missing boot loader should not cost a whole tree pass.
            isolinux = find_isolinux(req.store, &req.platform).map_err(fail)?;
            let initrd_file =
                crate::scratch::file().map_err(|e| fail(io_err("creating the initrd")(e)))?;
            let initrd_opts = InitrdOptions {
                compression: req.compression,
                threads: 0,
                prepend_ucode: true,
                layout: req.initrd_layout,
            };
            let initrd = InitrdWriter::new(io::sink(), BufWriter::new(initrd_file), initrd_opts);
            let mut both = Both { iso: &mut tree, initrd };
            assemble(&mut both)?;
            let out = both.initrd.finish().map_err(|e| fail(io_err("writing the initrd")(e)))?;
            if out.kernel_len == 0 {
                return Err(fail(IsoBuildError::NoKernel(format)));
            }
            let mut initrd = out
                .initrd
                .into_inner()
                .map_err(|e| fail(io_err("writing the initrd")(e.into_error())))?;
            initrd.rewind().map_err(|e| fail(io_err("rewinding the initrd")(e)))?;
            add_file(&mut tree, "boot/initrd.img", 0o644, out.initrd_len, &mut initrd)
                .map_err(fail)?;
            let cfg = isolinux_cfg(&out.cmdline);
            add_file(
                &mut tree,
                "isolinux/isolinux.bin",
                0o444,
                isolinux.bin.len() as u64,
                &mut &isolinux.bin[..],
            )
            .map_err(fail)?;
            add_file(
                &mut tree,
                "isolinux/ldlinux.c32",
                0o444,
                isolinux.ldlinux.len() as u64,
                &mut &isolinux.ldlinux[..],
            )
            .map_err(fail)?;
            add_file(
                &mut tree,
                "isolinux/isolinux.cfg",
                0o444,
                cfg.len() as u64,
                &mut cfg.as_bytes(),
            )
            .map_err(fail)?;
            opts = IsoOptions {
                volume_id: VOLUME_ID,
                joliet: true,
                bios: Some(BiosBoot {
                    image: "isolinux/isolinux.bin",
                    catalog: "isolinux/boot.cat",
                    load_sectors: 4,
                    hybrid_mbr: Some(&isolinux.hdpfx),
                }),
            };
        }
    }
    let out = target.create(".iso").map_err(|e| fail(io_err("creating B.iso")(e)))?;
    let mut out = BufWriter::with_capacity(1 << 20, out);
    tree.write(&opts, &mut out).map_err(|e| fail(IsoBuildError::Iso(e)))?;
    out.flush().map_err(|e| fail(io_err("writing B.iso")(e)))?;
    match gathered {
        // B-kernel, B-cmdline and B-root-initrd.img, as kernel+squashfs writes them.
        Some(g) => crate::rootfs::finish_boot_files(target, g),
        None => Ok(()),
    }
}

/// ISOLINUX's configuration: boot `/boot/kernel` with the initrd and the command line, at once.
pub fn isolinux_cfg(cmdline: &[u8]) -> String {
    let cmdline = String::from_utf8_lossy(cmdline);
    let append = format!("initrd=/boot/initrd.img {}", cmdline.trim());
    format!(
        "default linux\nprompt 0\ntimeout 0\nlabel linux\n  kernel /boot/kernel\n  append {}\n",
        append.trim_end()
    )
}

fn add_file(
    tree: &mut IsoTree<File>,
    path: &str,
    mode: u32,
    len: u64,
    data: &mut dyn Read,
) -> Result<(), IsoBuildError> {
    let e = Entry::new(path, EntryKind::File { size: len }, mode);
    tree.add(&e, data).map_err(io_err(&format!("adding /{path} to the ISO")))
}

/// `iso-bios`'s pass: every entry to the ISO, and each one again, read back from the ISO's
/// spool, to the initrd writer (which takes out `boot/` itself).
struct Both<'a> {
    iso: &'a mut IsoTree<File>,
    initrd: InitrdWriter<io::Sink, BufWriter<File>>,
}

impl EntrySink for Both<'_> {
    fn add(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        self.iso.add(entry, data)?;
        let mut again = self.iso.reread_last()?;
        self.initrd.add(entry, &mut again)
    }
    fn section(&mut self, name: &str) -> io::Result<()> {
        self.iso.section(name)?;
        self.initrd.section(name)
    }
}

/// The ISOLINUX files a BIOS ISO needs.
#[derive(Debug)]
pub struct Isolinux {
    pub bin: Vec<u8>,
    pub hdpfx: Vec<u8>,
    pub ldlinux: Vec<u8>,
}

/// ISOLINUX from the newest `baleen/isolinux` image in the store, else from the host.
pub fn find_isolinux(store: &Store, platform: &Platform) -> Result<Isolinux, IsoBuildError> {
    let paths = [ISOLINUX_BIN, ISOHDPFX_BIN, LDLINUX_C32];
    let component = crate::images::component(store, COMPONENT, platform)
        .map_err(|(image, message)| IsoBuildError::Component { image, message })?;
    let files = match component {
        Some((image, img)) => from_component(store, &image, &img, &paths)?,
        None => {
            let mut files = Vec::new();
            for p in paths {
                let host = Path::new("/").join(p);
                match std::fs::read(&host) {
                    Ok(b) => files.push(b),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(IsoBuildError::NoIsolinux)
                    }
                    Err(source) => return Err(IsoBuildError::Host { path: host, source }),
                }
            }
            files
        }
    };
    let [bin, hdpfx, ldlinux]: [Vec<u8>; 3] = files.try_into().expect("three paths");
    Ok(Isolinux { bin, hdpfx, ldlinux })
}

fn from_component(
    store: &Store,
    image: &str,
    img: &baleen_oci::Image,
    paths: &[&str],
) -> Result<Vec<Vec<u8>>, IsoBuildError> {
    let err = |message: String| IsoBuildError::Component { image: image.to_string(), message };
    let mut found = Vec::new();
    for path in paths {
        // Top layer first: the last layer that has the file wins.
        let bytes = crate::images::read_file(store, img, "the ISO loader", path)
            .map_err(|e| err(baleen_spec::chain(&e)))?;
        found.push(bytes.ok_or_else(|| err(format!("no /{path} in the image")))?);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolinux_cfg_boots_the_kernel_with_the_initrd_at_once() {
        let cfg = isolinux_cfg(b"console=ttyS0 panic=-1\n");
        assert_eq!(
            cfg,
            "default linux\nprompt 0\ntimeout 0\nlabel linux\n  kernel /boot/kernel\n  \
             append initrd=/boot/initrd.img console=ttyS0 panic=-1\n"
        );
        assert!(isolinux_cfg(b"").contains("append initrd=/boot/initrd.img\n"));
    }
}
