//! `baleen verify`'s library half: which format wrote an output file (from its name, as
//! [`Format::outputs`] names them), what to rebuild, and where an output differs from its
//! rebuild, said in the format's own terms by the crate that owns it.
//!
//! Key items: [`plan`] (output files → [`Group`]s, one rebuild each), [`compare`] (one output
//! against its rebuild → [`Verdict`]). The rebuild itself is [`crate::build`] with the
//! outputs' formats into a temporary directory, the images pinned by a lock
//! ([`crate::lock`]); the caller runs it.
//!
//! What each output is compared as: `tar`, `docker`, `tar-kernel-initrd` → the path of the first
//! differing entry (formats' `compare`); initrds (`-initrd.img`, `-root-initrd.img`) → the same,
//! decompressed; `-squashfs.img`, `-erofs.img` → the same, read back by formats' `fsread`;
//! `uki` → the PE section (disk's `compare`); raw disks → the partition and the file in it
//! (FAT volumes file by file, an EFI binary by PE section, a `--root` partition by path);
//! qcow2, VHD, VMDK and gcp → the same on the raw disk read back from each (disk's
//! `readback`, into scratch files); ISOs → the file (Rock Ridge path) and the file inside a
//! volume it holds, else their metadata. The kernel and cmdline → a byte offset, said to be
//! one.

use crate::format::Format;
use baleen_disk::compare::{self as disk_compare, Place, Signature};
use baleen_disk::readback::{self, Container};
use baleen_formats::compare as archive;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}: not a file name baleen build writes (NAME-kernel, NAME.tar, NAME-efi.img…)")]
    UnknownName(PathBuf),
    #[error("{path}: reading it")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: reading it as {format}")]
    Archive { path: PathBuf, format: Format, source: archive::CompareError },
    #[error("{path}: reading it as {format}")]
    Disk { path: PathBuf, format: Format, source: disk_compare::CompareError },
    #[error("{path}: reading its root filesystem as {format}")]
    Root { path: PathBuf, format: Format, source: baleen_formats::FsReadError },
    #[error("{path}: reading its raw disk back as {format}")]
    ReadBack { path: PathBuf, format: Format, source: readback::ReadBackError },
    #[error("a scratch file for the raw disk of {path}")]
    Scratch { path: PathBuf, source: io::Error },
}

/// One output file to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub path: PathBuf,
    pub format: Format,
    /// Its suffix after the base name (`-initrd.img`).
    pub suffix: &'static str,
}

/// Outputs of one base name: rebuilt together, with these formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub formats: Vec<Format>,
    pub targets: Vec<Target>,
}

impl Group {
    /// The rebuilt file of `t` in `dir`.
    pub fn rebuilt(&self, dir: &Path, t: &Target) -> PathBuf {
        dir.join(format!("{}{}", self.name, t.suffix))
    }
}

/// The formats whose outputs end in the longest suffix `file` ends in, with that suffix.
fn candidates(file: &str) -> Option<(&'static str, Vec<Format>)> {
    let mut best: Option<(&'static str, Vec<Format>)> = None;
    for &f in Format::ALL {
        for &s in f.outputs() {
            if file.len() <= s.len() || !file.ends_with(s) {
                continue;
            }
            match &mut best {
                Some((b, list)) if *b == s => list.push(f),
                Some((b, _)) if b.len() >= s.len() => {}
                _ => best = Some((s, vec![f])),
            }
        }
    }
    best
}

/// Groups output files by base name and picks the format of each: where a suffix is shared
/// (`-kernel` by every kernel format, `.iso` by kernel+iso and iso-bios, `.vhd` by vhd and
/// dynamic-vhd), the format another file of the same name settles, else the file decides
/// (a dynamic VHD begins with its footer copy), else LinuxKit's default (kernel+initrd,
/// iso-bios).
pub fn plan(outputs: &[PathBuf]) -> Result<Vec<Group>, VerifyError> {
    let mut found: Vec<(usize, PathBuf, String, &'static str, Vec<Format>)> = Vec::new();
    for path in outputs {
        let file = path.file_name().and_then(|f| f.to_str()).unwrap_or_default();
        let (suffix, formats) =
            candidates(file).ok_or_else(|| VerifyError::UnknownName(path.clone()))?;
        let name = file[..file.len() - suffix.len()].to_string();
        found.push((found.len(), path.clone(), name, suffix, formats));
    }
    let mut groups: Vec<Group> = Vec::new();
    // Files with one candidate first: they settle the others of their name.
    found.sort_by_key(|(_, _, _, _, formats)| formats.len() > 1);
    let mut order = Vec::new();
    for (index, path, name, suffix, formats) in found {
        order.push((path.clone(), index));
        // tar and docker are built alone (a single stream): their own rebuild.
        let alone = formats.len() == 1 && formats[0].streamable();
        let fits = |g: &Group| {
            g.name == name
                && if alone {
                    g.formats == formats
                } else {
                    !g.formats.iter().any(|f| f.streamable())
                }
        };
        let idx = match groups.iter().position(fits) {
            Some(i) => i,
            None => {
                groups.push(Group { name: name.clone(), formats: vec![], targets: vec![] });
                groups.len() - 1
            }
        };
        let group = &mut groups[idx];
        let format = match formats.iter().find(|f| group.formats.contains(f)) {
            Some(&f) => f,
            None if formats.len() == 1 => formats[0],
            None => default_of(&path, &formats),
        };
        if !group.formats.contains(&format) {
            group.formats.push(format);
        }
        group.targets.push(Target { path, format, suffix });
    }
    // Reported in the order given.
    let given = |t: &Target| order.iter().find(|(p, _)| *p == t.path).map_or(0, |(_, i)| *i);
    for g in &mut groups {
        g.targets.sort_by_key(given);
        g.formats.sort();
    }
    Ok(groups)
}

fn default_of(path: &Path, formats: &[Format]) -> Format {
    if formats.contains(&Format::Vhd) {
        let mut head = [0u8; 8];
        let dynamic = File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok()
            && &head == b"conectix";
        return if dynamic { Format::DynamicVhd } else { Format::Vhd };
    }
    for preferred in [Format::KernelInitrd, Format::IsoBios] {
        if formats.contains(&preferred) {
            return preferred;
        }
    }
    formats[0]
}

/// What a comparison found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Identical,
    /// Identical once the output's signature is left out (`--sign-key` not given).
    IdenticalUnsigned,
    /// The first difference, said in the format's terms.
    Differs(String),
}

/// Compares the output `t` with its rebuild `rebuilt`. `signature` says whether a signed UKI's
/// signature is compared or left out (also the UKI in a disk's or an ISO's ESP).
pub fn compare(t: &Target, rebuilt: &Path, signature: Signature) -> Result<Verdict, VerifyError> {
    if !rebuilt.exists() {
        // kernel+initrd leaves out an empty kernel, initrd or command line, as LinuxKit does.
        return Ok(Verdict::Differs("the rebuild has no such file (it came out empty)".into()));
    }
    if let Some(offset) = first_byte_difference(&t.path, rebuilt)? {
        let place = structural(t, rebuilt, signature)?;
        return Ok(match place {
            Some(text) => Verdict::Differs(text),
            None if signature == Signature::Strip && t.format == Format::Uki => {
                Verdict::IdenticalUnsigned
            }
            None => Verdict::Differs(format!(
                "bytes differ at offset {offset}, though every entry compares equal \
                 (headers or padding)"
            )),
        });
    }
    Ok(Verdict::Identical)
}

/// The offset of the first byte that differs (or where the shorter file ends).
fn first_byte_difference(a: &Path, b: &Path) -> Result<Option<u64>, VerifyError> {
    let open = |path: &Path| {
        File::open(path)
            .map(|f| BufReader::with_capacity(1 << 20, f))
            .map_err(|source| VerifyError::Read { path: path.to_path_buf(), source })
    };
    let (mut ra, mut rb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut at = 0u64;
    loop {
        let na = fill(&mut ra, &mut ba)
            .map_err(|source| VerifyError::Read { path: a.into(), source })?;
        let nb = fill(&mut rb, &mut bb)
            .map_err(|source| VerifyError::Read { path: b.into(), source })?;
        let n = na.min(nb);
        if let Some(i) = ba[..n].iter().zip(&bb[..n]).position(|(x, y)| x != y) {
            return Ok(Some(at + i as u64));
        }
        if na != nb {
            return Ok(Some(at + n as u64));
        }
        if na == 0 {
            return Ok(None);
        }
        at += n as u64;
    }
}

/// Reads until `buf` is full or the input ends; the count read.
pub(crate) fn fill(r: &mut (impl Read + ?Sized), buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The first difference in the format's terms; `None` when its structure compares equal.
fn structural(
    t: &Target,
    rebuilt: &Path,
    signature: Signature,
) -> Result<Option<String>, VerifyError> {
    let archive_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| VerifyError::Archive { path, format: t.format, source }
    };
    let disk_err = |source| VerifyError::Disk { path: t.path.clone(), format: t.format, source };
    let members = |path: &Path, initrd: bool| -> Result<Vec<archive::Member>, VerifyError> {
        let r = open(path)?;
        if initrd {
            archive::initrd_members(r).map_err(archive_err(path))
        } else {
            archive::tar_members(r).map_err(archive_err(path))
        }
    };
    let place_text = |p: Option<Place>| p.map(|p| p.to_string());
    match t.suffix {
        ".tar" | ".docker" | "-initrd.tar" | "-initrd.img" | "-root-initrd.img" => {
            let initrd = t.suffix.ends_with(".img");
            let (o, r) = (members(&t.path, initrd)?, members(rebuilt, initrd)?);
            Ok(archive::first_difference(&o, &r).map(|d| d.to_string()))
        }
        "-squashfs.img" | "-erofs.img" => {
            let list = |path: &Path| {
                let mut r = open(path)?;
                let listed = if t.suffix == "-squashfs.img" {
                    baleen_formats::squashfs_members(&mut r)
                } else {
                    baleen_formats::erofs_members(&mut r)
                };
                listed.map_err(|source| VerifyError::Root {
                    path: path.to_path_buf(),
                    format: t.format,
                    source,
                })
            };
            let (o, r) = (list(&t.path)?, list(rebuilt)?);
            Ok(archive::first_difference(&o, &r).map(|d| d.to_string()))
        }
        ".efi" => {
            let (mut o, mut r) = (open(&t.path)?, open(rebuilt)?);
            disk_compare::compare_pe(&mut o, &mut r, signature).map(place_text).map_err(disk_err)
        }
        "-efi.img" | ".raw" | "-bios.img" => {
            let (mut o, mut r) = (open(&t.path)?, open(rebuilt)?);
            disk_compare::compare_disk(&mut o, &mut r, signature).map(place_text).map_err(disk_err)
        }
        ".iso" | "-efi.iso" | "-efi-initrd.iso" => {
            let (mut o, mut r) = (open(&t.path)?, open(rebuilt)?);
            match disk_compare::compare_iso(&mut o, &mut r, signature).map_err(disk_err)? {
                Some(place) => Ok(Some(place.to_string())),
                None => Ok(first_byte_difference(&t.path, rebuilt)?
                    .map(|offset| Place::IsoMetadata { offset }.to_string())),
            }
        }
        ".qcow2" | "-efi.qcow2" | ".vhd" | ".vmdk" | ".img.tar.gz" => {
            let container = match t.suffix {
                ".vhd" => Container::Vhd,
                ".vmdk" => Container::Vmdk,
                ".img.tar.gz" => Container::Gcp,
                _ => Container::Qcow2,
            };
            let (mut o, mut r) =
                (raw_disk(t, &t.path, container)?, raw_disk(t, rebuilt, container)?);
            match disk_compare::compare_disk(&mut o, &mut r, signature).map_err(disk_err)? {
                Some(place) => Ok(Some(format!("in the raw disk: {place}"))),
                None => Ok(first_byte_difference(&t.path, rebuilt)?.map(|offset| {
                    format!(
                        "the raw disks inside are the same; the {} file's own bytes differ at \
                         offset {offset}",
                        t.format
                    )
                })),
            }
        }
        _ => Ok(first_byte_difference(&t.path, rebuilt)?.map(|offset| {
            format!("bytes differ at offset {offset} (no structure known for {} outputs)", t.suffix)
        })),
    }
}

fn open(path: &Path) -> Result<BufReader<File>, VerifyError> {
    File::open(path)
        .map(|f| BufReader::with_capacity(1 << 20, f))
        .map_err(|source| VerifyError::Read { path: path.to_path_buf(), source })
}

/// The raw disk inside `path`, read back into an unnamed scratch file (sparse where the disk
/// has holes), for [`disk_compare::compare_disk`].
fn raw_disk(t: &Target, path: &Path, container: Container) -> Result<File, VerifyError> {
    let scratch = |source| VerifyError::Scratch { path: path.to_path_buf(), source };
    let mut raw = crate::scratch::file().map_err(scratch)?;
    let mut from = open(path)?;
    let size = {
        let mut w = io::BufWriter::with_capacity(1 << 20, &mut raw);
        let size = readback::read_back(container, &mut from, &mut w).map_err(|source| {
            VerifyError::ReadBack { path: path.to_path_buf(), format: t.format, source }
        })?;
        w.into_inner().map_err(|e| scratch(e.into_error()))?;
        size
    };
    raw.set_len(size).map_err(scratch)?;
    raw.seek(SeekFrom::Start(0)).map_err(scratch)?;
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(outputs: &[&str]) -> Vec<(String, Vec<Format>, Vec<Format>)> {
        let paths: Vec<PathBuf> = outputs.iter().map(PathBuf::from).collect();
        plan(&paths)
            .unwrap()
            .into_iter()
            .map(|g| (g.name, g.formats, g.targets.iter().map(|t| t.format).collect()))
            .collect()
    }

    #[test]
    fn output_names_give_their_formats() {
        assert_eq!(names(&["out/sys.tar"]), [("sys".into(), vec![Format::Tar], vec![Format::Tar])]);
        // -kernel alone is kernel+initrd's; beside -squashfs.img, kernel+squashfs's.
        assert_eq!(names(&["sys-kernel"])[0].1, [Format::KernelInitrd]);
        let g = &names(&["sys-kernel", "sys-squashfs.img", "sys-cmdline"])[0];
        assert_eq!(g.1, [Format::KernelSquashfs]);
        assert_eq!(g.2, [Format::KernelSquashfs; 3]);
        // The longest suffix wins: -efi.iso is not .iso, -root-initrd.img not -initrd.img.
        assert_eq!(names(&["a-efi.iso"])[0].1, [Format::IsoEfi]);
        assert_eq!(names(&["a-root-initrd.img", "a-erofs.img"])[0].1, [Format::KernelErofs]);
        assert_eq!(names(&["a.iso"])[0].1, [Format::IsoBios]);
        // raw-efi's ESP is read as a FAT volume: no UKI rebuilt beside it.
        assert_eq!(names(&["a-efi.img"])[0].1, [Format::RawEfi]);
        assert_eq!(names(&["a.tar", "b.tar"]).len(), 2);
        // tar is built alone: a.tar and a-kernel are two rebuilds.
        let g = names(&["a.tar", "a-kernel", "a.docker"]);
        let formats: Vec<_> = g.iter().map(|g| g.1.clone()).collect();
        assert_eq!(formats, [vec![Format::Tar], vec![Format::Docker], vec![Format::KernelInitrd]]);
    }

    #[test]
    fn a_name_baleen_does_not_write_is_refused() {
        let err = plan(&[PathBuf::from("notes.txt")]).unwrap_err();
        assert!(err.to_string().starts_with("notes.txt: not a file name"), "{err}");
        assert!(plan(&[PathBuf::from(".tar")]).is_err(), "a suffix with no name");
    }
}
