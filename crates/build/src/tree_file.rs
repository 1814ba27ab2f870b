//! One file of the system's tree (`sbom.spdx.json`) found inside any output `baleen build`
//! writes: what `baleen audit OUTPUT` reads the SBOM through.
//!
//! The output is told by its bytes, not its name, and looked into level by level with the
//! readers `baleen verify` compares through: a tar (`tar`, and the initrd of
//! `tar-kernel-initrd`), an initrd (single or segmented newc cpio, plain, gzip or zstd), a
//! squashfs or erofs root image, a UKI (its `.initrd` section), an ISO 9660 volume (its files,
//! and the FAT, initrd or root images among them), a disk's partitions (GPT, else MBR: the
//! ESP's FAT volume, a `--root` partition), and qcow2, VHD, VMDK and gcp read back to their raw
//! disk in an unnamed scratch file — only the output itself: one inside it is not read back
//! (baleen writes none there, and nested read-backs would multiply their output). The file
//! itself is looked for first at each level; then the volumes inside, in order.
//!
//! Streamed and bounded: archives are read as streams, volumes through byte runs of the output
//! (never loaded whole), the file wanted is read only up to its `max`, nesting stops at
//! [`MAX_DEPTH`], at most [`MAX_SNIFFED`] files of one volume and [`MAX_LOOKS`] in all are looked
//! into (an ISO's files may share one extent). A hostile or
//! damaged output gets an error naming the place in it that could not be read.
//!
//! Non-goals: outputs that hold no tree (a kernel, a command line), `docker` outputs (their
//! layers are not the system's tree), file systems baleen does not write.

use baleen_disk::compare::{partitions, CompareError as DiskCompareError};
use baleen_disk::fat_read::{fat_files, looks_like_fat, FatReadError};
use baleen_disk::iso::read::{files as iso_files, IsoReadError};
use baleen_disk::readback::{self, Container, ReadBackError};
use baleen_disk::runs::Runs;
use baleen_formats::compare::{self as archive, CompareError, Wanted};
use baleen_formats::FsReadError;
use baleen_sign::{PeError, PeLayout};
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Volumes nested deeper than this are not looked into (a qcow2's disk's ESP's UKI's initrd is
/// five levels).
pub const MAX_DEPTH: usize = 8;
/// Files of one FAT or ISO volume looked into for a volume inside.
pub const MAX_SNIFFED: usize = 4096;
/// Files and volumes looked into in all: an ISO's files may share one extent, so a hostile
/// output could otherwise nest the same volume many times over.
pub const MAX_LOOKS: usize = 16384;
/// Bytes read from the start of a file to tell what it is.
const HEAD: usize = 4096;
/// ... when it is zstd data: a zstd block (up to 128 KiB) decompresses only whole, and the
/// first one must be read to see a cpio header.
const ZSTD_HEAD: u64 = 256 << 10;
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

#[derive(Debug, thiserror::Error)]
pub enum TreeFileError {
    #[error("opening {path}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{place}: reading it at offset {offset}")]
    Read { place: String, offset: u64, source: io::Error },
    #[error("{place}: reading it as an initrd")]
    Initrd { place: String, source: CompareError },
    #[error("{place}: reading it as a tar archive")]
    Tar { place: String, source: CompareError },
    #[error("{place}: reading its root file system")]
    Root { place: String, source: FsReadError },
    #[error("{place}: reading its FAT volume")]
    Fat { place: String, source: FatReadError },
    #[error("{place}: reading its ISO 9660 directories")]
    Iso { place: String, source: IsoReadError },
    #[error("{place}: reading its partition table")]
    Partitions { place: String, source: DiskCompareError },
    #[error("{place}: reading it as a PE file")]
    Pe { place: String, source: PeError },
    #[error("{place}: reading its raw disk back as {container}")]
    ReadBack { place: String, container: &'static str, source: ReadBackError },
    #[error("{place}: a scratch file for its raw disk")]
    Scratch { place: String, source: io::Error },
    #[error("{place}: its {path} is {size} bytes, more than the {max} read")]
    TooLarge { place: String, path: String, size: u64, max: u64 },
    #[error(
        "{place} is a kernel, which holds no file of the system: give the initrd, the root \
         image or the disk built with it"
    )]
    Kernel { place: String },
    #[error("{place}: volumes nested more than {MAX_DEPTH} deep")]
    TooDeep { place: String },
    #[error("{place}: more than {MAX_LOOKS} files and volumes to look into")]
    TooMany { place: String },
    #[error("{place}: no {path} found (looked into: {looked})")]
    NotFound { place: String, path: String, looked: String },
}

/// What a file is, told from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Iso,
    Disk,
    Fat,
    Squashfs,
    Erofs,
    Pe,
    Initrd,
    Tar,
    /// A gzip'd tar: gcp's (`disk.raw` first) or a tar output compressed.
    GzipTar,
    Container(Container),
    Kernel,
    Other,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Iso => "ISO 9660 volume",
            Kind::Disk => "disk",
            Kind::Fat => "FAT volume",
            Kind::Squashfs => "squashfs image",
            Kind::Erofs => "erofs image",
            Kind::Pe => "PE file",
            Kind::Initrd => "initrd",
            Kind::Tar => "tar archive",
            Kind::GzipTar => "gzip'd tar archive",
            Kind::Container(c) => c.name(),
            Kind::Kernel => "kernel",
            Kind::Other => "not a volume or archive baleen writes",
        })
    }
}

/// `Read + Seek` as one object type, to nest byte runs of byte runs.
trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

/// The data of the file `want` of the tree inside the output `path` (see the module docs).
pub fn find(path: &Path, want: Wanted<'_>) -> Result<Vec<u8>, TreeFileError> {
    let mut file =
        File::open(path).map_err(|source| TreeFileError::Open { path: path.into(), source })?;
    let place = path.display().to_string();
    let mut finder = Finder { want, looked: Vec::new(), looks: 0 };
    match finder.look(&mut file, &place, 0)? {
        Some(data) => Ok(data),
        None => {
            let mut looked = finder.looked;
            if looked.is_empty() {
                looked.push(
                    "nothing: it is no tar, initrd, squashfs, erofs, UKI, ISO or disk baleen \
                     writes"
                        .into(),
                );
            }
            if looked.len() > 12 {
                let more = looked.len() - 12;
                looked.truncate(12);
                looked.push(format!("{more} more"));
            }
            Err(TreeFileError::NotFound {
                place,
                path: want.path.to_owned(),
                looked: looked.join("; "),
            })
        }
    }
}

/// A file of a FAT or ISO volume: its path, length and byte runs in the volume.
type VolumeFile = (String, u64, Vec<(u64, u64)>);

struct Finder<'w> {
    want: Wanted<'w>,
    /// What was looked into, for the error when nothing is found.
    looked: Vec<String>,
    /// How many files and volumes were, against [`MAX_LOOKS`].
    looks: usize,
}

/// Reads up to `buf.len()` bytes at `offset`; fewer only at the end.
fn read_head(r: &mut dyn ReadSeek, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    r.seek(SeekFrom::Start(offset))?;
    crate::verify::fill(r, buf)
}

/// What `r` is, from its first [`HEAD`] bytes (and ISO 9660's descriptor at 32 KiB).
fn sniff(r: &mut dyn ReadSeek, place: &str) -> Result<Kind, TreeFileError> {
    let read = |offset, source| TreeFileError::Read { place: place.to_owned(), offset, source };
    let mut head = vec![0u8; HEAD];
    let n = read_head(r, 0, &mut head).map_err(|e| read(0, e))?;
    head.truncate(n);
    if head.starts_with(&ZSTD_MAGIC) {
        head.resize(usize::try_from(ZSTD_HEAD).unwrap_or(HEAD), 0);
        let n = read_head(r, 0, &mut head).map_err(|e| read(0, e))?;
        head.truncate(n);
    }
    let mut cd = [0u8; 6];
    if read_head(r, 16 * 2048, &mut cd).map_err(|e| read(16 * 2048, e))? == 6
        && &cd[1..6] == b"CD001"
    {
        return Ok(Kind::Iso);
    }
    let at = |o: usize, magic: &[u8]| head.get(o..o + magic.len()) == Some(magic);
    Ok(if at(0, b"hsqs") {
        Kind::Squashfs
    } else if at(1024, &0xE0F5_E1E2u32.to_le_bytes()) {
        Kind::Erofs
    } else if at(0, b"QFI\xfb") {
        Kind::Container(Container::Qcow2)
    } else if at(0, b"conectix") {
        Kind::Container(Container::Vhd)
    } else if at(0, b"KDMV") {
        Kind::Container(Container::Vmdk)
    } else if head.len() >= 512 && looks_like_fat(&head[..512]) {
        Kind::Fat
    } else if at(0x202, b"HdrS") || at(0x38, b"ARM\x64") {
        // Before the MBR: a bzImage's boot sector ends in 0x55AA too.
        Kind::Kernel
    } else if at(512, b"EFI PART") || at(510, &[0x55, 0xaa]) {
        Kind::Disk
    } else if at(0, b"MZ") {
        Kind::Pe
    } else if archive::looks_like_initrd(&head) {
        Kind::Initrd
    } else if at(257, b"ustar") {
        Kind::Tar
    } else if at(0, &[0x1f, 0x8b]) && gzip_tar(&head) {
        Kind::GzipTar
    } else {
        Kind::Other
    })
}

/// Whether gzip data decompresses to a tar header.
fn gzip_tar(head: &[u8]) -> bool {
    let mut block = [0u8; 512];
    flate2::read::GzDecoder::new(head).read_exact(&mut block).is_ok()
        && &block[257..262] == b"ustar"
}

impl Finder<'_> {
    fn look(
        &mut self,
        r: &mut dyn ReadSeek,
        place: &str,
        depth: usize,
    ) -> Result<Option<Vec<u8>>, TreeFileError> {
        if depth > MAX_DEPTH {
            return Err(TreeFileError::TooDeep { place: place.to_owned() });
        }
        self.looks += 1;
        if self.looks > MAX_LOOKS {
            return Err(TreeFileError::TooMany { place: place.to_owned() });
        }
        let kind = sniff(r, place)?;
        if kind != Kind::Other {
            self.looked.push(format!("{place}: {kind}"));
        }
        let want = self.want;
        let p = || place.to_owned();
        let start = |r: &mut dyn ReadSeek| {
            r.seek(SeekFrom::Start(0)).map_err(|source| TreeFileError::Read {
                place: place.to_owned(),
                offset: 0,
                source,
            })
        };
        match kind {
            Kind::Other => Ok(None),
            Kind::Kernel if depth == 0 => Err(TreeFileError::Kernel { place: p() }),
            Kind::Kernel => Ok(None),
            Kind::Initrd => {
                start(r)?;
                archive::initrd_file(BufReader::with_capacity(1 << 16, r), want)
                    .map_err(|source| archive_error(place, source))
            }
            Kind::Tar => {
                start(r)?;
                self.tar(BufReader::with_capacity(1 << 16, r), place, depth)
            }
            Kind::GzipTar => {
                start(r)?;
                let mut gz =
                    flate2::read::GzDecoder::new(BufReader::with_capacity(1 << 16, &mut *r));
                let mut first = [0u8; 512];
                let gcp = gz.read_exact(&mut first).is_ok() && first.starts_with(b"disk.raw\0");
                if gcp {
                    return self.read_back(r, Container::Gcp, place, depth);
                }
                start(r)?;
                let gz = flate2::read::GzDecoder::new(BufReader::with_capacity(1 << 16, r));
                self.tar(gz, place, depth)
            }
            Kind::Squashfs | Kind::Erofs => {
                let mut r = r;
                let found = if kind == Kind::Squashfs {
                    baleen_formats::squashfs_file(&mut r, want)
                } else {
                    baleen_formats::erofs_file(&mut r, want)
                };
                found.map_err(|source| match source {
                    FsReadError::FileTooLarge { path, size, max, .. } => {
                        TreeFileError::TooLarge { place: p(), path, size, max }
                    }
                    source => TreeFileError::Root { place: p(), source },
                })
            }
            Kind::Container(c) => self.read_back(r, c, place, depth),
            Kind::Pe => {
                let layout = PeLayout::read(&mut &mut *r)
                    .map_err(|source| TreeFileError::Pe { place: p(), source })?;
                let Some(s) = layout.named.iter().find(|s| s.name == ".initrd") else {
                    self.looked.push(format!("{place}: no .initrd section"));
                    return Ok(None);
                };
                let mut section = Runs::new(r, vec![(s.offset, s.len)]);
                self.look(&mut section, &format!("{place}, section .initrd"), depth + 1)
            }
            Kind::Disk => {
                let parts = partitions(&mut &mut *r)
                    .map_err(|source| TreeFileError::Partitions { place: p(), source })?;
                for part in parts {
                    let mut inner = Runs::new(&mut *r, vec![(part.start, part.len)]);
                    let at = format!("{place}, partition {} ({:?})", part.index, part.name);
                    if let Some(data) = self.look(&mut inner, &at, depth + 1)? {
                        return Ok(Some(data));
                    }
                }
                Ok(None)
            }
            Kind::Fat => {
                let len = r.seek(SeekFrom::End(0)).map_err(|source| TreeFileError::Read {
                    place: p(),
                    offset: 0,
                    source,
                })?;
                let entries = fat_files(&mut &mut *r, 0, len)
                    .map_err(|source| TreeFileError::Fat { place: p(), source })?;
                let files: Vec<VolumeFile> = entries
                    .into_iter()
                    .filter(|e| !e.dir)
                    .map(|e| (e.path, e.size, e.runs))
                    .collect();
                self.volume(r, files, place, depth)
            }
            Kind::Iso => {
                let files = iso_files(&mut &mut *r)
                    .map_err(|source| TreeFileError::Iso { place: p(), source })?;
                let files = files
                    .into_iter()
                    .map(|f| {
                        (f.path.trim_start_matches('/').to_owned(), f.len, vec![(f.offset, f.len)])
                    })
                    .collect();
                self.volume(r, files, place, depth)
            }
        }
    }

    /// A volume's files (path, length, byte runs): the file wanted, else what is inside each.
    fn volume(
        &mut self,
        r: &mut dyn ReadSeek,
        files: Vec<VolumeFile>,
        place: &str,
        depth: usize,
    ) -> Result<Option<Vec<u8>>, TreeFileError> {
        if let Some((path, size, runs)) = files.iter().find(|f| self.want.is(&f.0)) {
            if *size > self.want.max {
                return Err(TreeFileError::TooLarge {
                    place: place.to_owned(),
                    path: shown(path),
                    size: *size,
                    max: self.want.max,
                });
            }
            let mut data = Vec::new();
            Runs::new(r, runs.clone()).read_to_end(&mut data).map_err(|source| {
                let place = format!("{place}, file {}", shown(path));
                TreeFileError::Read { place, offset: 0, source }
            })?;
            return Ok(Some(data));
        }
        for (path, _, runs) in files.into_iter().take(MAX_SNIFFED) {
            let mut inner = Runs::new(&mut *r, runs);
            if let Some(data) =
                self.look(&mut inner, &format!("{place}, file {}", shown(&path)), depth + 1)?
            {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }

    /// A tar stream: the file wanted at its path, else inside an initrd member
    /// (`tar-kernel-initrd`'s `boot/initrd.img`).
    fn tar(
        &mut self,
        r: impl Read,
        place: &str,
        depth: usize,
    ) -> Result<Option<Vec<u8>>, TreeFileError> {
        let want = self.want;
        let (mut direct, mut nested) = (None, None);
        let mut failed: Option<TreeFileError> = None;
        let mut inner_looked = Vec::new();
        let walked = archive::tar_walk(r, &mut |m, data| {
            if m.kind != archive::Kind::File {
                return Ok(());
            }
            if want.is(&m.path) {
                if m.size > want.max {
                    failed = Some(TreeFileError::TooLarge {
                        place: place.to_owned(),
                        path: shown(&m.path),
                        size: m.size,
                        max: want.max,
                    });
                    return Err(io::Error::other("stopped"));
                }
                let mut bytes = Vec::new();
                data.take(want.max).read_to_end(&mut bytes)?;
                direct = Some(bytes);
                return Ok(());
            }
            if nested.is_some() || depth >= MAX_DEPTH {
                return Ok(());
            }
            let mut head = Vec::with_capacity(HEAD);
            (&mut *data).take(HEAD as u64).read_to_end(&mut head)?;
            if head.starts_with(&ZSTD_MAGIC) {
                (&mut *data).take(ZSTD_HEAD - HEAD as u64).read_to_end(&mut head)?;
            }
            if !archive::looks_like_initrd(&head) {
                return Ok(());
            }
            let at = format!("{place}, member {}", shown(&m.path));
            inner_looked.push(format!("{at}: initrd"));
            match archive::initrd_file(io::Cursor::new(head).chain(data), want) {
                Ok(found) => nested = found,
                Err(source) => {
                    failed = Some(archive_error(&at, source));
                    return Err(io::Error::other("stopped"));
                }
            }
            Ok(())
        });
        self.looked.extend(inner_looked);
        if let Some(e) = failed {
            return Err(e);
        }
        walked.map_err(|source| TreeFileError::Tar { place: place.to_owned(), source })?;
        Ok(direct.or(nested))
    }

    /// A qcow2, VHD, VMDK or gcp output read back to its raw disk in a scratch file, then that;
    /// one inside the output (`depth` > 0) is not.
    fn read_back(
        &mut self,
        r: &mut dyn ReadSeek,
        container: Container,
        place: &str,
        depth: usize,
    ) -> Result<Option<Vec<u8>>, TreeFileError> {
        if depth > 0 {
            // baleen writes a container only as the output itself. Each read-back may write
            // up to 1032 times what it reads (deflate's ratio); one nested in another's raw
            // disk would multiply that, so a small hostile output could fill the disk.
            let name = container.name();
            self.looked.push(format!("{place}: a {name} inside the output, not read back"));
            return Ok(None);
        }
        let scratch = |source| TreeFileError::Scratch { place: place.to_owned(), source };
        let mut raw = crate::scratch::file().map_err(scratch)?;
        r.seek(SeekFrom::Start(0)).map_err(|source| TreeFileError::Read {
            place: place.to_owned(),
            offset: 0,
            source,
        })?;
        let size = {
            let mut from = BufReader::with_capacity(1 << 20, &mut *r);
            let mut w = io::BufWriter::with_capacity(1 << 20, &mut raw);
            let size = readback::read_back(container, &mut from, &mut w).map_err(|source| {
                TreeFileError::ReadBack {
                    place: place.to_owned(),
                    container: container.name(),
                    source,
                }
            })?;
            w.into_inner().map_err(|e| scratch(e.into_error()))?;
            size
        };
        raw.set_len(size).map_err(scratch)?;
        self.look(&mut raw, &format!("{place}, its raw disk"), depth + 1)
    }
}

/// A name the output chose (a member, a file of a volume) as a place in a message shows it: on
/// one line, its control characters escaped. The printed error keeps its own newlines, so a
/// raw one in a name would start a line of the output's making (`error: …`, a `hint:`).
fn shown(name: &str) -> String {
    baleen_spec::escape::escaped(name, false).into_owned()
}

/// An initrd's error: a file too large to read said as such.
fn archive_error(place: &str, source: CompareError) -> TreeFileError {
    match source {
        CompareError::FileTooLarge { path, size, max } => {
            TreeFileError::TooLarge { place: place.to_owned(), path: shown(&path), size, max }
        }
        source => TreeFileError::Initrd { place: place.to_owned(), source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut t = tar::Builder::new(Vec::new());
        for (path, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_cksum();
            t.append_data(&mut h, path, *data).unwrap();
        }
        t.into_inner().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn cpio(path: &str, data: &[u8]) -> Vec<u8> {
        use baleen_tree::{Entry, EntryKind, EntrySink};
        let mut w = baleen_formats::CpioWriter::new(Vec::new());
        let e = Entry::new(path, EntryKind::File { size: data.len() as u64 }, 0o644);
        w.add(&e, &mut &data[..]).unwrap();
        w.finish().unwrap()
    }

    const WANT: Wanted<'static> = Wanted { path: "sbom.spdx.json", max: 64 };

    fn find_in(bytes: &[u8]) -> (PathBuf, Result<Vec<u8>, TreeFileError>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        std::fs::write(&path, bytes).unwrap();
        let found = find(&path, WANT);
        (path, found, dir)
    }

    #[test]
    fn a_gzip_tar_and_a_tar_holding_an_initrd_give_the_file() {
        let (_, found, _d) = find_in(&gzip(&tar(&[("./sbom.spdx.json", b"{}")])));
        assert_eq!(found.unwrap(), b"{}");
        // tar-kernel-initrd: the file is in the initrd member.
        let initrd = gzip(&cpio("sbom.spdx.json", b"[1]"));
        let (_, found, _d) = find_in(&tar(&[("boot/kernel", b"k"), ("boot/initrd.img", &initrd)]));
        assert_eq!(found.unwrap(), b"[1]");
    }

    /// zstd decompresses a block only whole: with 4 KiB read, an initrd whose first block is
    /// larger was not told from other data (and its SBOM not found).
    #[test]
    fn a_zstd_initrd_with_a_large_first_block_is_read() {
        let noise: Vec<u8> =
            (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let tree = [cpio("big", &noise), cpio("sbom.spdx.json", b"{}")].concat();
        let z = zstd::stream::encode_all(&tree[..], 3).unwrap();
        assert!(!archive::looks_like_initrd(&z[..HEAD]), "the first block is past 4 KiB");
        let (_, found, _d) = find_in(&z);
        assert_eq!(found.unwrap(), b"{}");
    }

    /// A hostile disk whose MBR partition is the whole disk again: each level finds the same
    /// disk inside; the look stops at [`MAX_DEPTH`] with an error, not a loop.
    #[test]
    fn a_disk_that_holds_itself_stops_at_the_depth_limit() {
        let mut disk = vec![0u8; 1024];
        disk[446 + 4] = 0x83;
        disk[446 + 12] = 2; // two sectors from LBA 0: the disk itself
        disk[510..512].copy_from_slice(&[0x55, 0xaa]);
        let (p, found, _d) = find_in(&disk);
        let err = found.unwrap_err().to_string();
        let inner = ", partition 1 (\"MBR entry 1, type 0x83\")";
        assert_eq!(
            err,
            format!(
                "{}{}: volumes nested more than {MAX_DEPTH} deep",
                p.display(),
                inner.repeat(9)
            ),
        );
    }

    /// A raw disk whose MBR partition 1 (from LBA 1) holds `part`.
    fn disk_with(part: &[u8]) -> Vec<u8> {
        let sectors = part.len().div_ceil(512);
        let mut disk = vec![0u8; 512 * (1 + sectors)];
        disk[446 + 4] = 0x83;
        disk[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
        disk[446 + 12..446 + 16].copy_from_slice(&u32::try_from(sectors).unwrap().to_le_bytes());
        disk[510..512].copy_from_slice(&[0x55, 0xaa]);
        disk[512..512 + part.len()].copy_from_slice(part);
        disk
    }

    /// Each read-back may write up to 1032 times its input (deflate's ratio) to a scratch file,
    /// and a raw disk read back was looked into again: a gcp inside a gcp's disk multiplied the
    /// ratios, so a small output could fill the disk. baleen writes a container only as the
    /// output itself: one found inside is not read back, and the error says so.
    #[test]
    fn a_container_inside_a_read_back_disk_is_not_read_back_again() {
        let gcp = |disk: &[u8]| gzip(&tar(&[("disk.raw", disk)]));
        let inner = gcp(&disk_with(&tar(&[("sbom.spdx.json", b"{}")])));
        let (p, found, _d) = find_in(&gcp(&disk_with(&inner)));
        let err = found.unwrap_err();
        assert!(matches!(err, TreeFileError::NotFound { .. }), "{err:?}");
        let inner_place = format!(
            "{}, its raw disk, partition 1 (\"MBR entry 1, type 0x83\"): a gcp tar inside the \
             output, not read back",
            p.display()
        );
        assert!(err.to_string().contains(&inner_place), "{err}");
        // The same disk as the output itself is read back.
        let (_, found, _d) = find_in(&gcp(&disk_with(&tar(&[("sbom.spdx.json", b"{}")]))));
        assert_eq!(found.unwrap(), b"{}");
    }

    /// A member or file name in the output is the output's to choose: with a newline in it,
    /// the error printed (which keeps a message's own newlines) showed a line of the attacker's
    /// (`error: …`, a fake `hint:`). Names are shown escaped, on the line they belong to.
    #[test]
    fn a_hostile_member_name_cannot_forge_a_line_of_the_error() {
        let initrd = gzip(&cpio("sbom.spdx.json", &[b' '; 200]));
        let cut = &initrd[..initrd.len() - 20];
        let name = "boot/x\n  hint: audit passed\x1b[2J";
        let (p, found, _d) = find_in(&tar(&[(name, cut)]));
        let err = found.unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}, member boot/x\\n  hint: audit passed\\x1b[2J: reading it as an initrd",
                p.display()
            ),
        );
    }

    #[test]
    fn a_file_too_large_or_a_broken_initrd_member_is_named() {
        let (p, found, _d) = find_in(&tar(&[("sbom.spdx.json", &[b' '; 65])]));
        assert_eq!(
            found.unwrap_err().to_string(),
            format!("{}: its sbom.spdx.json is 65 bytes, more than the 64 read", p.display())
        );
        let initrd = gzip(&cpio("sbom.spdx.json", &[b' '; 200]));
        let cut = &initrd[..initrd.len() - 20];
        let (p, found, _d) = find_in(&tar(&[("boot/initrd.img", cut)]));
        let err = found.unwrap_err().to_string();
        assert_eq!(
            err,
            format!("{}, member boot/initrd.img: reading it as an initrd", p.display()),
            "{err}"
        );
    }
}
