//! The BIOS disk formats (`raw-bios`, `qcow2-bios`) and the BIOS half of the hybrid cloud disks:
//! finding SYSLINUX and its MBR codes, and handing the build's kernel, initrd and command line
//! to crates/disk.
//!
//! The loader comes from the `baleen/isolinux` component when the store has one (the
//! newest-named tag), else from the host's Debian `syslinux` and `syslinux-common` packages at
//! the same paths. `/usr/bin/syslinux` is read as data and never run.
//!
//! Key items: [`find_loader`], [`write()`], [`BiosDisk`]. The seed of the raw-bios disk signature
//! and FAT serial is the BLAKE3 hash of kernel, initrd and command line.

use crate::disk::{Boot, DiskError};
use crate::format::Target;
use crate::pipeline::Request;
use baleen_disk::{write_bios_disk, write_qcow2, BiosLoader, BootFiles, HashingWriter, Syslinux};
use baleen_oci::{Platform, Store};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

/// The component holding the BIOS loaders (pkg/isolinux).
const COMPONENT: &str = "docker.io/baleen/isolinux:";
/// Debian's SYSLINUX installer, which embeds the boot sector, ldlinux.sys and ldlinux.c32.
pub const SYSLINUX_BIN: &str = "usr/bin/syslinux";
pub const MBR_BIN: &str = "usr/lib/syslinux/mbr/mbr.bin";
pub const GPTMBR_BIN: &str = "usr/lib/syslinux/mbr/gptmbr.bin";

/// The formats written here (`crate::format::Family::Bios`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BiosDisk {
    /// `raw-bios`.
    Raw,
    /// `qcow2-bios`.
    Qcow2,
}

fn loader_err(image: &str) -> impl Fn(String) -> DiskError + '_ {
    move |message| DiskError::BiosLoader { image: image.to_string(), message }
}

/// Where the loader files came from, and their bytes (SYSLINUX_BIN, MBR_BIN, GPTMBR_BIN).
type Found = (String, Vec<Vec<u8>>);

/// Reads the loader files from the newest `baleen/isolinux` image of the store: `None` when
/// the store has none.
fn from_component(store: &Store, platform: &Platform) -> Result<Option<Found>, DiskError> {
    let Some((image, img)) = crate::images::component(store, COMPONENT, platform)
        .map_err(|(image, message)| loader_err(&image)(message))?
    else {
        return Ok(None);
    };
    let err = loader_err(&image);
    let mut found = Vec::new();
    for path in [SYSLINUX_BIN, MBR_BIN, GPTMBR_BIN] {
        // Top layer first: the last layer that has the file wins.
        let bytes = crate::images::read_file(store, &img, "the BIOS loader", path)
            .map_err(|e| err(baleen_spec::chain(&e)))?;
        found.push(bytes.ok_or_else(|| err(format!("no /{path} in the image")))?);
    }
    Ok(Some((image.clone(), found)))
}

/// SYSLINUX and its MBR codes from the component or the host; `None` when neither has them.
pub fn find_loader(store: &Store, platform: &Platform) -> Result<Option<BiosLoader>, DiskError> {
    let (origin, files) = match from_component(store, platform)? {
        Some(found) => found,
        None => {
            let mut files = Vec::new();
            for path in [SYSLINUX_BIN, MBR_BIN, GPTMBR_BIN] {
                let host = Path::new("/").join(path);
                match std::fs::read(&host) {
                    Ok(bytes) => files.push(bytes),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => {
                        return Err(loader_err("the host")(format!("{}: {e}", host.display())))
                    }
                }
            }
            ("the host".to_string(), files)
        }
    };
    let err = loader_err(&origin);
    let [syslinux, mbr, gptmbr]: [Vec<u8>; 3] = files.try_into().expect("three paths");
    let syslinux =
        Syslinux::from_installer(&syslinux).map_err(|e| err(format!("/{SYSLINUX_BIN}: {e}")))?;
    BiosLoader::new(syslinux, mbr, gptmbr).map_err(|e| err(baleen_spec::chain(&e))).map(Some)
}

/// The loader, or the error saying how to get one.
pub fn require_loader(store: &Store, platform: &Platform) -> Result<BiosLoader, DiskError> {
    find_loader(store, platform)?.ok_or(DiskError::NoBiosLoader)
}

fn io_err(what: &str) -> impl FnOnce(io::Error) -> DiskError + '_ {
    move |source| DiskError::Io { what: what.to_string(), source }
}

/// The BLAKE3 hash of the kernel, initrd and command line: the raw-bios disk's seed.
fn seed(boot: &mut Boot) -> Result<[u8; 32], DiskError> {
    let mut h = HashingWriter::new(io::sink());
    boot.hash_into(&mut h).map_err(io_err("hashing the kernel, initrd and command line"))?;
    Ok(h.finish().1)
}

/// The boot files rewound, with their lengths, as crates/disk takes them; the readers live in
/// the caller's `slots`.
pub fn boot_files<'a>(
    boot: &'a mut Boot,
    slots: &'a mut (Option<BufReader<&'a mut File>>, Option<BufReader<&'a mut File>>),
) -> Result<BootFiles<'a>, DiskError> {
    let Boot { kernel, initrd, cmdline } = boot;
    let kernel_len = kernel.metadata().map_err(io_err("reading the kernel"))?.len();
    let initrd_len = initrd.metadata().map_err(io_err("reading the initrd"))?.len();
    kernel.rewind().map_err(io_err("rewinding the kernel"))?;
    initrd.rewind().map_err(io_err("rewinding the initrd"))?;
    let (ks, is) = slots;
    let k: &'a mut dyn Read = ks.insert(BufReader::with_capacity(1 << 20, kernel));
    let i: &'a mut dyn Read = is.insert(BufReader::with_capacity(1 << 20, initrd));
    Ok(BootFiles { kernel: k, kernel_len, initrd: i, initrd_len, cmdline })
}

/// Writes the `disk` to `target`; `req.size` (`--size`, bytes) fixes qcow2-bios's virtual size
/// (default: [`crate::disk::default_disk_size`]).
pub fn write(
    disk: BiosDisk,
    target: &mut Target<'_>,
    boot: &mut Boot,
    req: &Request<'_>,
) -> Result<(), DiskError> {
    let loader = require_loader(req.store, &req.platform)?;
    let seed = seed(boot)?;
    let mut out =
        target.create(target.format.outputs()[0]).map_err(io_err("creating the output"))?;
    let mut slots = (None, None);
    match disk {
        BiosDisk::Raw => {
            let files = boot_files(boot, &mut slots)?;
            let sparse = crate::output::is_regular(&out);
            let mut holes = crate::disk::Holes::with_sparse(&mut out, sparse);
            write_bios_disk(&loader, files, &seed, None, &mut holes).map_err(DiskError::Bios)?;
            holes.finish().map_err(io_err("writing the raw disk"))?;
        }
        BiosDisk::Qcow2 => {
            let tmp = crate::scratch::file().map_err(io_err("creating a temporary raw disk"))?;
            let mut w = BufWriter::with_capacity(1 << 20, tmp);
            let files = boot_files(boot, &mut slots)?;
            let mut holes = crate::disk::Holes::new(&mut w);
            // The disk at its natural size; `--size` only adds zeros after it (an MBR disk has
            // nothing at its end), which the qcow2 writer reads from memory, not from a file.
            let natural = write_bios_disk(&loader, files, &seed, None, &mut holes)
                .map_err(DiskError::Bios)?;
            let size =
                req.size.unwrap_or_else(|| crate::disk::default_disk_size(natural.disk_size));
            let layout = natural.sized(Some(size)).map_err(DiskError::Bios)?;
            holes.finish().map_err(io_err("writing the raw disk"))?;
            let raw = w.into_inner().map_err(|e| io_err("writing the raw disk")(e.into_error()))?;
            let mut raw = ZeroExtended { inner: raw, len: natural.disk_size, pos: 0 };
            write_qcow2(&mut raw, layout.disk_size, &mut out).map(drop).map_err(DiskError::Wrap)?;
        }
    }
    out.flush().map_err(io_err("writing the output"))
}

/// `len` bytes of `inner`, then zeros for as long as the reader asks.
struct ZeroExtended<R> {
    inner: R,
    len: u64,
    pos: u64,
}

impl<R: Read + Seek> Read for ZeroExtended<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.len {
            let want = buf.len().min((self.len - self.pos) as usize);
            let n = self.inner.read(&mut buf[..want])?;
            self.pos += n as u64;
            return Ok(n);
        }
        buf.fill(0);
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
}

impl<R: Read + Seek> Seek for ZeroExtended<R> {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let pos = match to {
            io::SeekFrom::Start(p) => Some(p),
            io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            io::SeekFrom::End(_) => None,
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek outside the disk"))?;
        self.inner.seek(io::SeekFrom::Start(pos.min(self.len)))?;
        self.pos = pos;
        Ok(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_extended_reads_the_file_then_zeros() {
        let mut r = ZeroExtended { inner: io::Cursor::new(b"abc".to_vec()), len: 3, pos: 0 };
        let mut buf = [9u8; 5];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"abc\0\0");
        r.seek(io::SeekFrom::Start(1)).unwrap();
        let mut two = [0u8; 2];
        r.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"bc");
        r.seek(io::SeekFrom::Start(100)).unwrap();
        r.read_exact(&mut two).unwrap();
        assert_eq!(two, [0, 0]);
    }
}
