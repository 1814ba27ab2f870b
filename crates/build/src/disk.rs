//! The EFI formats (`uki`, `raw-efi`, `aws`, `qcow2-efi`, `vhd`, `dynamic-vhd`, `vmdk`, `gcp`,
//! `iso-efi`, `iso-efi-initrd`): the build's kernel, initrd and command line made into a UKI on
//! systemd's EFI stub, then placed on a disk or an ISO by crates/disk.
//!
//! Every one of them starts from the same UKI, written once to a temporary file while its
//! BLAKE3 hash is taken: that hash is the seed of every GUID and serial, so two builds of the
//! same system give the same bytes. With `--sign-key` the UKI is signed right after it is made
//! (`sign_uki`), before that hash is taken: every format then embeds the signed one. The stub
//! comes from the `baleen/systemd-boot` component when the store has one, else from Debian's
//! `systemd-boot-efi` on the host: `linuxx64.efi.stub` for amd64, `linuxaa64.efi.stub` for
//! arm64 ([`stub_path`]). The stub's PE machine type is the UKI's architecture
//! ([`baleen_disk::EfiArch`]): it decides the ESP's boot path, and whether the disks are the
//! BIOS-hybrid ones (x86-64) or plain EFI disks (arm64, which has no BIOS). A signed UKI also
//! carries `.pcrpkey` and `.pcrsig`, its PCR 11 policy signed by the same key ([`crate::tpm`]).

use crate::format::Target;
use baleen_disk::{
    write_efi_disk_on, write_efi_iso, write_gcp_tar, write_hybrid_disk_with, write_qcow2,
    write_uki, write_vhd, write_vmdk, DiskLayout, EfiArch, EfiDiskLayout, HashingWriter, UkiParts,
    VhdKind,
};
use baleen_oci::{Platform, Store};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

const COMPONENT: &str = "docker.io/baleen/systemd-boot:";

/// Where Debian's `systemd-boot-efi` of OCI architecture `arch` puts its stub, inside the
/// component image and on hosts: `linuxx64.efi.stub`, `linuxaa64.efi.stub`,
/// `linuxriscv64.efi.stub` (systemd's EFI architecture names).
pub fn stub_path(arch: &str) -> String {
    let efi = match arch {
        "amd64" => "x64",
        "arm64" => "aa64",
        "386" => "ia32",
        other => other,
    };
    format!("usr/lib/systemd/boot/efi/linux{efi}.efi.stub")
}

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error(
        "no systemd EFI stub: the store has no baleen/systemd-boot image and /{path} is \
         missing; install Debian's systemd-boot-efi or build pkg/systemd-boot \
         (`baleen pkg build pkg/systemd-boot`, with --platforms for another architecture)"
    )]
    NoStub { path: String },
    #[error("the EFI stub {origin} is not an x86-64 or arm64 PE/COFF image")]
    StubArch { origin: String },
    #[error("reading the EFI stub from {image}: {message}")]
    StubImage { image: String, message: String },
    #[error("reading the EFI stub {path}")]
    StubFile { path: PathBuf, source: io::Error },
    #[error("building the UKI")]
    Uki(#[source] baleen_disk::UkiError),
    #[error("signing the UKI")]
    Sign(#[source] baleen_sign::SignError),
    #[error("making the UKI's TPM2 PCR policy")]
    Tpm(#[from] crate::tpm::TpmError),
    #[error("writing the EFI disk")]
    Efi(#[source] baleen_disk::EfiDiskError),
    #[error("writing the EFI ISO")]
    Iso(#[source] baleen_disk::IsoError),
    #[error("converting the raw EFI disk")]
    Wrap(#[source] baleen_disk::SparseError),
    #[error(
        "no SYSLINUX for the BIOS boot of this disk: the store has no baleen/isolinux image and \
         /{sys} or /{mbr} is missing; install Debian's syslinux and syslinux-common or build \
         pkg/isolinux (`baleen pkg build pkg/isolinux`)",
        sys = crate::bios::SYSLINUX_BIN, mbr = crate::bios::GPTMBR_BIN
    )]
    NoBiosLoader,
    #[error("reading SYSLINUX from {image}: {message}")]
    BiosLoader { image: String, message: String },
    #[error("writing the BIOS-bootable disk")]
    Bios(#[source] baleen_disk::BiosError),
    #[error("{what}")]
    Io { what: String, source: io::Error },
}

fn io(what: &str) -> impl FnOnce(io::Error) -> DiskError + '_ {
    move |source| DiskError::Io { what: what.to_string(), source }
}

/// The formats written here (`crate::format::Family::Efi`), each from the build's UKI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EfiOutput {
    /// `uki`: the UKI itself.
    Uki,
    /// `raw-efi`.
    Raw,
    /// `aws`: the raw disk, sized by `--size`.
    Aws,
    /// `qcow2-efi`.
    Qcow2,
    /// `vhd`.
    Vhd,
    /// `dynamic-vhd`.
    DynamicVhd,
    /// `vmdk`.
    Vmdk,
    /// `gcp`.
    Gcp,
    /// `iso-efi`, `iso-efi-initrd`: the same ISO under two names.
    Iso,
}

/// What the kernel-booting part of the pipeline produced.
#[derive(Debug)]
pub struct Boot {
    pub kernel: File,
    pub initrd: File,
    pub cmdline: Vec<u8>,
}

impl Boot {
    /// Writes the kernel, the initrd and the command line into `h`, in that order: the part of
    /// a disk's seed (raw-bios, rpi4) that every boot disk shares.
    pub fn hash_into(&mut self, h: &mut impl Write) -> io::Result<()> {
        for f in [&mut self.kernel, &mut self.initrd] {
            f.rewind()?;
            io::copy(&mut BufReader::new(&mut *f), h)?;
        }
        h.write_all(&self.cmdline)
    }
}

/// The build's kernel, initrd and command line, shared by every disk format of a build (one
/// tree pass for all of them); the UKI made of them, once an EFI format asks for it, with the
/// hash of its bytes; and SYSLINUX when found, for the BIOS half of the hybrid disks.
#[derive(Debug)]
pub struct Uki {
    boot: Boot,
    made: Option<Made>,
    bios: Option<baleen_disk::BiosLoader>,
    /// What PCR 11 will hold after systemd-stub measured the signed UKI.
    pcr11: Option<crate::tpm::Pcr11>,
    /// `--root`: the partitions after the ESP (the boot files are then stage 1's).
    root: Option<crate::root_partition::RootPartitions>,
}

/// A UKI in a temporary file.
#[derive(Debug)]
struct Made {
    file: File,
    len: u64,
    seed: [u8; 32],
    /// The stub's architecture: where the UKI goes on an ESP, and whether the disks have a BIOS
    /// half.
    arch: EfiArch,
}

impl Uki {
    /// Builds the UKI of `boot` on the stub found for `store` / `platform`, signed by `signer`
    /// when given; `name` goes into its `.osrel`.
    pub fn make(
        boot: Boot,
        store: &Store,
        platform: &Platform,
        name: &str,
        signer: Option<&baleen_sign::KeyPair>,
    ) -> Result<Uki, DiskError> {
        let mut uki = Uki::from_boot(boot);
        uki.ensure(store, platform, name, signer)?;
        Ok(uki)
    }

    /// The boot files alone: the BIOS formats need no EFI stub.
    pub fn from_boot(boot: Boot) -> Uki {
        Uki { boot, made: None, bios: None, pcr11: None, root: None }
    }

    /// Puts `root` on every disk written from this UKI, after the ESP.
    pub fn set_root(&mut self, root: crate::root_partition::RootPartitions) {
        self.root = Some(root);
    }

    /// Makes the UKI, signed by `signer` when given (and looks for SYSLINUX), unless done
    /// already.
    pub fn ensure(
        &mut self,
        store: &Store,
        platform: &Platform,
        name: &str,
        signer: Option<&baleen_sign::KeyPair>,
    ) -> Result<(), DiskError> {
        if self.made.is_none() {
            let (stub, origin) = find_stub(store, platform)?;
            let arch = EfiArch::of_pe(&stub).ok_or(DiskError::StubArch { origin })?;
            let osrel = baleen_disk::default_osrel(name);
            let pcr = match signer {
                Some(pair) => {
                    let Boot { kernel, initrd, cmdline } = &mut self.boot;
                    Some(crate::tpm::pcr_sections(pair, kernel, initrd, cmdline, &osrel)?)
                }
                None => None,
            };
            let (mut file, mut len, mut seed) = make_uki(&stub, &mut self.boot, &osrel, &pcr)?;
            self.pcr11 = pcr.map(|p| p.pcr11);
            if let Some(pair) = signer {
                (file, len, seed) = sign_uki(pair, file)?;
            }
            // SYSLINUX is x86 code: an arm64 disk is EFI alone.
            if arch == EfiArch::X64 {
                self.bios = crate::bios::find_loader(store, platform)?;
            }
            self.made = Some(Made { file, len, seed, arch });
        }
        Ok(())
    }

    /// The PCR 11 value predicted for the signed UKI, once made.
    pub fn pcr11(&self) -> Option<crate::tpm::Pcr11> {
        self.pcr11
    }

    /// The kernel, initrd and command line.
    pub fn boot_mut(&mut self) -> &mut Boot {
        &mut self.boot
    }

    fn made(&mut self) -> &mut Made {
        self.made.as_mut().expect("Uki::ensure runs before an EFI format is written")
    }

    fn reader(&mut self) -> Result<BufReader<&mut File>, DiskError> {
        let file = &mut self.made().file;
        file.rewind().map_err(io("rewinding the UKI"))?;
        Ok(BufReader::with_capacity(1 << 20, file))
    }
}

/// Writes `kind`'s output to `target`; `size` (`--size`, bytes) fixes the length of the `aws`
/// disk as LinuxKit's does; the other formats keep their natural size.
pub fn write(
    kind: EfiOutput,
    target: &mut Target<'_>,
    uki: &mut Uki,
    size: Option<u64>,
) -> Result<(), DiskError> {
    let mut out = target.create(target.format.outputs()[0]).map_err(io("creating the output"))?;
    match kind {
        EfiOutput::Uki => {
            io::copy(&mut uki.reader()?, &mut out).map_err(io("copying the UKI"))?;
        }
        EfiOutput::Raw | EfiOutput::Aws => {
            let sparse = crate::output::is_regular(&out);
            let mut holes = Holes::with_sparse(&mut out, sparse);
            let size = match (kind, size) {
                (EfiOutput::Aws, Some(n)) => Size::Exact(n),
                // LinuxKit's 1 GiB, or whole GiB for a system that needs more.
                (EfiOutput::Aws, None) => Size::WholeGib,
                _ => Size::Natural,
            };
            write_hybrid(uki, size, &mut holes)?;
            holes.finish().map_err(io("writing the raw disk"))?;
        }
        EfiOutput::Vhd => {
            // A fixed VHD is the raw disk and a footer: written as raw-efi is, no read-back.
            let sparse = crate::output::is_regular(&out);
            let mut holes = Holes::with_sparse(&mut out, sparse);
            let size = write_hybrid(uki, Size::Natural, &mut holes)?;
            holes.finish().map_err(io("writing the raw disk"))?;
            let footer = baleen_disk::vhd::fixed_vhd_footer(size, &uki.made().seed);
            out.write_all(&footer).map_err(io("writing the VHD footer"))?;
        }
        EfiOutput::Iso => {
            let Made { len, seed, arch, .. } = *uki.made();
            write_efi_iso(arch, &mut uki.reader()?, len, &seed, &mut out)
                .map_err(DiskError::Iso)?;
        }
        EfiOutput::Vmdk | EfiOutput::Gcp => {
            // Both read the raw disk once, front to back: it is converted as it is written,
            // through a pipe, with no scratch copy.
            let seed = uki.made().seed;
            let vmdk_name = format!("{}.vmdk", target.name);
            // Compute Engine imports only disks of whole GiB (LinuxKit's are always 1 GiB):
            // gcp's is its natural size rounded up to one; the zeros cost little in the gzip.
            let sizing = if kind == EfiOutput::Gcp { Size::WholeGib } else { Size::Natural };
            let layout = hybrid_layout(uki, sizing)?;
            let size = layout.disk_size();
            let (mut raw_in, mut raw_out) = crate::pipe::pipe(4);
            let (made, wrapped) = std::thread::scope(|s| {
                let writer = s.spawn(move || -> Result<(), DiskError> {
                    write_hybrid_on(uki, layout, &mut raw_in)?;
                    raw_in.flush().map_err(io("writing the raw disk"))
                });
                let wrapped = if kind == EfiOutput::Gcp {
                    write_gcp_tar(&mut raw_out, size, &mut out)
                } else {
                    write_vmdk(&mut raw_out, size, &vmdk_name, &seed, &mut out)
                };
                drop(raw_out); // a writer still sending sees a broken pipe and stops
                (writer.join().expect("the raw disk writer panicked"), wrapped)
            });
            match (made, wrapped) {
                (Ok(()), Ok(())) => {}
                // The converter's own failure (writing the output, a field too small for the
                // disk) made the writer stop.
                (_, Err(e)) if !matches!(e, baleen_disk::SparseError::Read { .. }) => {
                    return Err(DiskError::Wrap(e))
                }
                // A short raw disk: the writer's error says why.
                (Err(e), _) => return Err(e),
                (Ok(()), Err(e)) => return Err(DiskError::Wrap(e)),
            }
        }
        EfiOutput::Qcow2 | EfiOutput::DynamicVhd => {
            // The wrappers read the raw disk twice (which clusters hold data, then the data):
            // it goes to a temporary file first.
            let tmp = crate::scratch::file().map_err(io("creating a temporary raw disk"))?;
            let mut w = BufWriter::with_capacity(1 << 20, tmp);
            let seed = uki.made().seed;
            let mut holes = Holes::new(&mut w);
            let size = write_hybrid(uki, Size::Natural, &mut holes)?;
            holes.finish().map_err(io("writing the raw disk"))?;
            let raw = w.into_inner().map_err(|e| io("writing the raw disk")(e.into_error()))?;
            let mut raw =
                crate::sparse_file::SparseFile::new(raw).map_err(io("reading the raw disk"))?;
            let wrap = DiskError::Wrap;
            match kind {
                EfiOutput::Qcow2 => {
                    write_qcow2(&mut raw, size, &mut out).map(drop).map_err(wrap)?
                }
                _ => write_vhd(&mut raw, size, VhdKind::Dynamic, &seed, &mut out).map_err(wrap)?,
            }
        }
    }
    out.flush().map_err(io("writing the output"))
}

const GIB: u64 = 1 << 30;

/// The length of a fixed-size disk (`aws`, `qcow2-bios`) without `--size`: LinuxKit's 1 GiB,
/// or, for a system that needs more (where LinuxKit's build fails), its natural size rounded up
/// to whole GiB.
pub fn default_disk_size(natural: u64) -> u64 {
    natural.next_multiple_of(GIB).max(GIB)
}

/// How long a hybrid disk is.
#[derive(Debug, Clone, Copy)]
enum Size {
    /// What its content needs.
    Natural,
    /// `--size` (aws).
    Exact(u64),
    /// [`default_disk_size`]: at least 1 GiB, whole GiB (gcp always; aws without `--size`).
    WholeGib,
}

/// The disk of `uki` (on x86-64 the hybrid one: BIOS through SYSLINUX, UEFI through the UKI;
/// elsewhere the EFI disk alone) to `out`, sized `size`; its length.
fn write_hybrid<W: Write>(uki: &mut Uki, size: Size, out: W) -> Result<u64, DiskError> {
    let layout = hybrid_layout(uki, size)?;
    write_hybrid_on(uki, layout, out)?;
    Ok(layout.disk_size())
}

/// Where a disk puts its partitions: the hybrid one's, or the EFI-only one's (arm64).
#[derive(Debug, Clone, Copy)]
enum Layout {
    Hybrid(DiskLayout),
    Efi(EfiDiskLayout),
}

impl Layout {
    fn disk_size(&self) -> u64 {
        match self {
            Layout::Hybrid(l) => l.disk_size,
            Layout::Efi(l) => l.disk_size,
        }
    }
}

/// The disk of `uki` on `layout` (from [`hybrid_layout`]) to `out`.
fn write_hybrid_on<W: Write>(uki: &mut Uki, layout: Layout, out: W) -> Result<(), DiskError> {
    let Uki { boot, made, bios, root, .. } = uki;
    let Made { file, len, seed, arch } = made.as_mut().expect("Uki::ensure runs first");
    file.rewind().map_err(io("rewinding the UKI"))?;
    let mut uki_reader = BufReader::with_capacity(1 << 20, file);
    let layout = match layout {
        Layout::Hybrid(l) => l,
        Layout::Efi(l) => {
            return write_efi_disk_on(*arch, l, &mut uki_reader, *len, &seed[..], out)
                .map(drop)
                .map_err(DiskError::Efi);
        }
    };
    let loader = bios.as_ref().ok_or(DiskError::NoBiosLoader)?;
    let mut slots = (None, None);
    let files = crate::bios::boot_files(boot, &mut slots)?;
    let mut data = match root {
        Some(r) => r.partitions().map_err(io("rewinding the root partition"))?,
        None => Vec::new(),
    };
    write_hybrid_disk_with(loader, files, &mut uki_reader, *len, &seed[..], layout, &mut data, out)
        .map(drop)
        .map_err(DiskError::Bios)
}

/// Where the disk of `uki` puts its partitions and how long it is, for `size`.
fn hybrid_layout(uki: &Uki, size: Size) -> Result<Layout, DiskError> {
    let Uki { boot, made, bios, root, .. } = uki;
    let made = made.as_ref().expect("Uki::ensure runs first");
    let uki_len = made.len;
    if made.arch != EfiArch::X64 {
        // `--root` is refused for other architectures before the build (format::check_arch).
        let natural = EfiDiskLayout::for_uki(made.arch, uki_len);
        let size = match size {
            Size::Natural => None,
            Size::Exact(n) => Some(n),
            Size::WholeGib => Some(default_disk_size(natural.disk_size)),
        };
        return natural.sized(size).map(Layout::Efi).map_err(DiskError::Efi);
    }
    let loader = bios.as_ref().ok_or(DiskError::NoBiosLoader)?;
    let len_of = |f: &File| f.metadata().map(|m| m.len()).map_err(io("reading the boot files"));
    let (k, i) = (len_of(&boot.kernel)?, len_of(&boot.initrd)?);
    let lens = root.as_ref().map(|r| r.lens()).unwrap_or_default();
    let natural =
        DiskLayout::hybrid(&loader.syslinux, k, i, &boot.cmdline, uki_len).with_data(&lens);
    let size = match size {
        Size::Natural => None,
        Size::Exact(n) => Some(n),
        Size::WholeGib => Some(default_disk_size(natural.disk_size)),
    };
    natural.sized(size).map(Layout::Hybrid).map_err(DiskError::Bios)
}

/// Turns large all-zero writes into holes in the file (a seek past them), so that raw disks take
/// the space of their content. Same bytes when read; [`Holes::finish`] writes the last byte so
/// that a trailing hole still counts in the length.
pub(crate) struct Holes<W: Write + Seek> {
    inner: W,
    skipped: u64,
    /// False for a device written in place: every zero is written.
    sparse: bool,
}

impl<W: Write + Seek> Holes<W> {
    /// Zero runs shorter than this are written: seeking for every small gap costs more.
    const MIN_HOLE: usize = 4096;

    pub(crate) fn new(inner: W) -> Self {
        Holes { inner, skipped: 0, sparse: true }
    }

    /// Holes only when `sparse` ([`crate::output::is_regular`] for an output).
    pub(crate) fn with_sparse(inner: W, sparse: bool) -> Self {
        Holes { inner, skipped: 0, sparse }
    }

    pub(crate) fn finish(mut self) -> io::Result<()> {
        if self.skipped > 0 {
            self.inner.seek(io::SeekFrom::Current(self.skipped as i64 - 1))?;
            self.inner.write_all(&[0])?;
        }
        self.inner.flush()
    }
}

impl<W: Write + Seek> Write for Holes<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.sparse && buf.len() >= Self::MIN_HOLE && baleen_formats::is_zero(buf) {
            self.skipped += buf.len() as u64;
            return Ok(buf.len());
        }
        if self.skipped > 0 {
            self.inner.seek(io::SeekFrom::Current(self.skipped as i64))?;
            self.skipped = 0;
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn make_uki(
    stub: &[u8],
    boot: &mut Boot,
    osrel: &[u8],
    pcr: &Option<crate::tpm::PcrSections>,
) -> Result<(File, u64, [u8; 32]), DiskError> {
    let tmp = crate::scratch::file().map_err(io("creating a temporary file for the UKI"))?;
    let mut w = HashingWriter::new(BufWriter::with_capacity(1 << 20, tmp));
    boot.kernel.rewind().map_err(io("rewinding the kernel"))?;
    boot.initrd.rewind().map_err(io("rewinding the initrd"))?;
    let parts = UkiParts {
        kernel: &mut BufReader::new(&mut boot.kernel),
        initrd: &mut BufReader::new(&mut boot.initrd),
        cmdline: &boot.cmdline,
        osrel,
        pcrpkey: pcr.as_ref().map_or(&[][..], |p| &p.pcrpkey),
        pcrsig: pcr.as_ref().map_or(&[][..], |p| &p.pcrsig),
    };
    write_uki(stub, parts, &mut w).map_err(DiskError::Uki)?;
    let (buf, seed, len) = w.finish();
    let file = buf.into_inner().map_err(|e| io("writing the UKI")(e.into_error()))?;
    Ok((file, len, seed))
}

/// The UKI in `unsigned` with an Authenticode signature by `pair`, in a new temporary file; its
/// length and hash, which seed the disks' GUIDs (so a signed build's disks differ from an
/// unsigned one's, and two signed builds with one key are identical).
fn sign_uki(
    pair: &baleen_sign::KeyPair,
    mut unsigned: File,
) -> Result<(File, u64, [u8; 32]), DiskError> {
    unsigned.rewind().map_err(io("rewinding the UKI"))?;
    let tmp = crate::scratch::file().map_err(io("creating a temporary file for the signed UKI"))?;
    let mut w = HashingWriter::new(BufWriter::with_capacity(1 << 20, tmp));
    let mut input = BufReader::with_capacity(1 << 20, unsigned);
    baleen_sign::sign(pair, &mut input, &mut w).map_err(DiskError::Sign)?;
    let (buf, seed, len) = w.finish();
    let file = buf.into_inner().map_err(|e| io("writing the signed UKI")(e.into_error()))?;
    Ok((file, len, seed))
}

/// The stub for `platform` from the newest-named `baleen/systemd-boot` image in the store, else
/// the host's; with where it came from.
fn find_stub(store: &Store, platform: &Platform) -> Result<(Vec<u8>, String), DiskError> {
    let stub_path = stub_path(&platform.architecture);
    let component = crate::images::component(store, COMPONENT, platform)
        .map_err(|(image, message)| DiskError::StubImage { image, message })?;
    if let Some((image, img)) = component {
        let err = |message: String| DiskError::StubImage { image: image.clone(), message };
        // Top layer first: the last layer that has the file wins.
        if let Some(bytes) = crate::images::read_file(store, &img, "the EFI stub", &stub_path)
            .map_err(|e| err(baleen_spec::chain(&e)))?
        {
            return Ok((bytes, format!("/{stub_path} of {image}")));
        }
        return Err(err(format!("no /{stub_path} in the image")));
    }
    let host = Path::new("/").join(&stub_path);
    match std::fs::read(&host) {
        Ok(bytes) => Ok((bytes, host.display().to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(DiskError::NoStub { path: stub_path }),
        Err(source) => Err(DiskError::StubFile { path: host, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_stub_is_systemd_boot_efis_of_the_platform() {
        assert_eq!(stub_path("amd64"), "usr/lib/systemd/boot/efi/linuxx64.efi.stub");
        assert_eq!(stub_path("arm64"), "usr/lib/systemd/boot/efi/linuxaa64.efi.stub");
        assert_eq!(stub_path("riscv64"), "usr/lib/systemd/boot/efi/linuxriscv64.efi.stub");
    }

    #[test]
    fn the_default_disk_is_one_gib_or_whole_gib_beyond() {
        assert_eq!(default_disk_size(25 << 20), GIB);
        assert_eq!(default_disk_size(GIB), GIB);
        assert_eq!(default_disk_size(GIB + 512), 2 * GIB);
        assert_eq!(default_disk_size(5 * GIB - 1), 5 * GIB);
    }

    fn through_holes(parts: &[&[u8]]) -> (Vec<u8>, u64) {
        let mut f = tempfile::tempfile().unwrap();
        let mut h = Holes::new(&mut f);
        for p in parts {
            h.write_all(p).unwrap();
        }
        h.finish().unwrap();
        f.rewind().unwrap();
        let mut back = Vec::new();
        f.read_to_end(&mut back).unwrap();
        let len = f.metadata().unwrap().len();
        (back, len)
    }

    #[test]
    fn holes_keep_the_bytes_and_the_length() {
        let zeros = vec![0u8; 8192];
        let (back, len) = through_holes(&[b"a", &zeros, b"b", &zeros]);
        assert_eq!(len, 2 + 2 * 8192);
        let mut want = b"a".to_vec();
        want.extend_from_slice(&zeros);
        want.push(b'b');
        want.extend_from_slice(&zeros);
        assert_eq!(back, want);
        let (back, len) = through_holes(&[&zeros]);
        assert_eq!((back, len), (zeros.clone(), 8192), "a file of one hole");
    }
}
