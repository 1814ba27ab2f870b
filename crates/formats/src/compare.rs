//! Where two archives of the same tree differ, as a path in the tree: what `baleen verify`
//! reports for `tar`, `docker` and the initrd of `kernel+initrd` (newc cpio, plain or gzip/zstd,
//! concatenated as the kernel reads it).
//!
//! Key types: [`Member`] (one entry: path, kind, mode, owner, link target, mtime, a SHA-256 of
//! its data), [`Difference`] and [`first_difference`]; [`tar_members`] (through the `tar`
//! crate) and [`initrd_members`] (a newc reader: the one in this crate's tests only lists
//! names) read an archive into members, holding hashes, never file data.
//!
//! Non-goals: telling which bytes of a file differ (its path is the answer), other cpio formats
//! than newc, tar formats other than what the `tar` crate reads.

use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};

/// newc's magic, and the header length.
const NEWC: &[u8] = b"070701";
const NEWC_HEADER: usize = 110;
/// A name longer than this is not a path a kernel or tar would write.
const MAX_NAME: usize = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("reading the tar archive")]
    Tar(#[source] io::Error),
    #[error("reading the initrd at offset {offset}")]
    Read { offset: u64, source: io::Error },
    #[error("the initrd at offset {offset}: {what}")]
    Malformed { offset: u64, what: String },
    #[error("{path} is {size} bytes, more than the {max} read")]
    FileTooLarge { path: String, size: u64, max: u64 },
}

/// The kind of an entry, with a link's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink(String),
    Hardlink(String),
    /// A device, FIFO or socket, by its type letter or mode bits.
    Other(String),
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::File => f.write_str("file"),
            Kind::Dir => f.write_str("directory"),
            Kind::Symlink(t) => write!(f, "symlink to {t:?}"),
            Kind::Hardlink(t) => write!(f, "hard link to {t:?}"),
            Kind::Other(o) => write!(f, "special file ({o})"),
        }
    }
}

/// One archive entry as compared: everything but its data, and its data's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub path: String,
    pub kind: Kind,
    /// Permission bits (and setuid/setgid/sticky), without the type bits.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub size: u64,
    pub sha256: [u8; 32],
    /// Other metadata as text (PAX records, device numbers): compared whole.
    pub extra: String,
}

/// What differs about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// In the archive checked, not in the rebuilt one.
    OnlyInOutput,
    /// In the rebuilt archive, missing from the one checked.
    OnlyInRebuilt,
    Kind {
        output: Kind,
        rebuilt: Kind,
    },
    LinkTarget {
        output: String,
        rebuilt: String,
    },
    Content {
        output_size: u64,
        rebuilt_size: u64,
    },
    Mode {
        output: u32,
        rebuilt: u32,
    },
    Owner {
        output: (u64, u64),
        rebuilt: (u64, u64),
    },
    Mtime {
        output: u64,
        rebuilt: u64,
    },
    Metadata {
        output: String,
        rebuilt: String,
    },
    /// The same entries, in another order: the first one out of place.
    Order,
}

/// The first difference between two archives, at a path in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub path: String,
    pub what: What,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.path;
        match &self.what {
            What::OnlyInOutput => write!(f, "{p}: present in the output, not in the rebuild"),
            What::OnlyInRebuilt => write!(f, "{p}: missing from the output (the rebuild has it)"),
            What::Kind { output, rebuilt } => {
                write!(f, "{p}: type differs: output has a {output}, rebuild a {rebuilt}")
            }
            What::LinkTarget { output, rebuilt } => {
                write!(f, "{p}: link target differs: output {output:?}, rebuild {rebuilt:?}")
            }
            What::Content { output_size, rebuilt_size } if output_size == rebuilt_size => {
                write!(f, "{p}: content differs (both {output_size} bytes)")
            }
            What::Content { output_size, rebuilt_size } => write!(
                f,
                "{p}: content differs (output {output_size} bytes, rebuild {rebuilt_size} bytes)"
            ),
            What::Mode { output, rebuilt } => {
                write!(f, "{p}: mode differs: output {output:04o}, rebuild {rebuilt:04o}")
            }
            What::Owner { output, rebuilt } => write!(
                f,
                "{p}: owner differs: output {}:{}, rebuild {}:{}",
                output.0, output.1, rebuilt.0, rebuilt.1
            ),
            What::Mtime { output, rebuilt } => {
                write!(f, "{p}: modification time differs: output {output}, rebuild {rebuilt}")
            }
            What::Metadata { output, rebuilt } => {
                write!(f, "{p}: metadata differs: output {output:?}, rebuild {rebuilt:?}")
            }
            What::Order => write!(f, "{p}: the same entries in another order, from here on"),
        }
    }
}

/// What differs between two members of the same path, in the order a reader cares about.
fn compare(o: &Member, r: &Member) -> Option<What> {
    let link = |k: &Kind| match k {
        Kind::Symlink(t) | Kind::Hardlink(t) => Some(t.clone()),
        _ => None,
    };
    if std::mem::discriminant(&o.kind) != std::mem::discriminant(&r.kind) {
        return Some(What::Kind { output: o.kind.clone(), rebuilt: r.kind.clone() });
    }
    if o.kind != r.kind {
        if let (Some(output), Some(rebuilt)) = (link(&o.kind), link(&r.kind)) {
            return Some(What::LinkTarget { output, rebuilt });
        }
        return Some(What::Kind { output: o.kind.clone(), rebuilt: r.kind.clone() });
    }
    if o.size != r.size || o.sha256 != r.sha256 {
        return Some(What::Content { output_size: o.size, rebuilt_size: r.size });
    }
    if o.mode != r.mode {
        return Some(What::Mode { output: o.mode, rebuilt: r.mode });
    }
    if (o.uid, o.gid) != (r.uid, r.gid) {
        return Some(What::Owner { output: (o.uid, o.gid), rebuilt: (r.uid, r.gid) });
    }
    if o.mtime != r.mtime {
        return Some(What::Mtime { output: o.mtime, rebuilt: r.mtime });
    }
    if o.extra != r.extra {
        return Some(What::Metadata { output: o.extra.clone(), rebuilt: r.extra.clone() });
    }
    None
}

/// The first difference in the checked archive's order: a path it has that differs from or is
/// absent in the rebuild, then a path only the rebuild has, then the order. `None` when both
/// hold the same entries in the same order (their bytes may still differ: padding, headers).
/// A path that occurs several times is matched occurrence by occurrence.
pub fn first_difference(output: &[Member], rebuilt: &[Member]) -> Option<Difference> {
    fn keyed(list: &[Member]) -> HashMap<(&str, usize), &Member> {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut out = HashMap::with_capacity(list.len());
        for m in list {
            let n = seen.entry(m.path.as_str()).or_default();
            out.insert((m.path.as_str(), *n), m);
            *n += 1;
        }
        out
    }
    let (by_output, by_rebuilt) = (keyed(output), keyed(rebuilt));
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for m in output {
        let n = seen.entry(m.path.as_str()).or_default();
        let key = (m.path.as_str(), *n);
        *n += 1;
        let what = match by_rebuilt.get(&key) {
            None => Some(What::OnlyInOutput),
            Some(r) => compare(m, r),
        };
        if let Some(what) = what {
            return Some(Difference { path: m.path.clone(), what });
        }
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for r in rebuilt {
        let n = seen.entry(r.path.as_str()).or_default();
        if !by_output.contains_key(&(r.path.as_str(), *n)) {
            return Some(Difference { path: r.path.clone(), what: What::OnlyInRebuilt });
        }
        *n += 1;
    }
    output
        .iter()
        .zip(rebuilt)
        .find(|(o, r)| o.path != r.path)
        .map(|(o, _)| Difference { path: o.path.clone(), what: What::Order })
}

/// Reads `data` to its end, returning its length and SHA-256.
fn hash(data: &mut dyn Read) -> io::Result<(u64, [u8; 32])> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut len = 0u64;
    loop {
        let n = match data.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, h.finalize().into()))
}

/// The members of a tar archive (`tar`, `docker`, a layer), in stream order.
pub fn tar_members(r: impl Read) -> Result<Vec<Member>, CompareError> {
    let mut out = Vec::new();
    tar_walk(r, &mut |mut m, data| {
        (m.size, m.sha256) = hash(data)?;
        out.push(m);
        Ok(())
    })?;
    Ok(out)
}

/// A file of the tree, given without a leading `/` (`sbom.spdx.json`), and the most of its data
/// read: what [`tar_file`] and [`initrd_file`] look for.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    pub path: &'a str,
    pub max: u64,
}

impl Wanted<'_> {
    /// Whether an archive's member path (`./sbom.spdx.json`, `/sbom.spdx.json`) is this one.
    pub fn is(&self, member: &str) -> bool {
        member.trim_start_matches("./").trim_start_matches('/') == self.path
    }

    /// A visitor keeping the data of the last regular file at the path (the one a kernel or
    /// tar leaves in place); one larger than `max` is noted in `too_large`, not read.
    fn keep<'s>(
        &'s self,
        found: &'s mut Option<Vec<u8>>,
        too_large: &'s mut Option<u64>,
    ) -> impl FnMut(Member, &mut dyn Read) -> io::Result<()> + 's {
        move |m, data| {
            if m.kind != Kind::File || !self.is(&m.path) {
                return Ok(());
            }
            if m.size > self.max {
                *too_large = Some(m.size);
                *found = None;
                return Ok(());
            }
            let mut bytes = Vec::new();
            data.take(self.max).read_to_end(&mut bytes)?;
            *found = Some(bytes);
            *too_large = None;
            Ok(())
        }
    }

    fn result(
        &self,
        found: Option<Vec<u8>>,
        too_large: Option<u64>,
    ) -> Result<Option<Vec<u8>>, CompareError> {
        match too_large {
            Some(size) => {
                Err(CompareError::FileTooLarge { path: self.path.to_owned(), size, max: self.max })
            }
            None => Ok(found),
        }
    }
}

/// The data of the file `want` in a tar archive, streamed (the archive may be gigabytes): the
/// last member at that path; `None` when there is none.
pub fn tar_file(r: impl Read, want: Wanted<'_>) -> Result<Option<Vec<u8>>, CompareError> {
    let (mut found, mut too_large) = (None, None);
    tar_walk(r, &mut want.keep(&mut found, &mut too_large))?;
    want.result(found, too_large)
}

/// Every member of a tar archive in stream order, each handed to `visit` with its data (its
/// `size` and `sha256` left for the visitor; data it leaves unread is skipped). An error of
/// `visit` is a read error of the archive.
pub fn tar_walk(
    r: impl Read,
    visit: &mut dyn FnMut(Member, &mut dyn Read) -> io::Result<()>,
) -> Result<(), CompareError> {
    let mut archive = ::tar::Archive::new(r);
    for entry in archive.entries().map_err(CompareError::Tar)? {
        let mut entry = entry.map_err(CompareError::Tar)?;
        let path = entry.path().map_err(CompareError::Tar)?.to_string_lossy().into_owned();
        let link = || -> Result<String, CompareError> {
            Ok(entry
                .link_name()
                .map_err(CompareError::Tar)?
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default())
        };
        let kind = match entry.header().entry_type() {
            ::tar::EntryType::Regular | ::tar::EntryType::Continuous => Kind::File,
            ::tar::EntryType::Directory => Kind::Dir,
            ::tar::EntryType::Symlink => Kind::Symlink(link()?),
            ::tar::EntryType::Link => Kind::Hardlink(link()?),
            other => Kind::Other(format!("tar type {}", other.as_byte() as char)),
        };
        let header = entry.header();
        let mode = header.mode().map_err(CompareError::Tar)? & 0o7777;
        let uid = header.uid().map_err(CompareError::Tar)?;
        let gid = header.gid().map_err(CompareError::Tar)?;
        let mtime = header.mtime().map_err(CompareError::Tar)?;
        let size = header.size().map_err(CompareError::Tar)?;
        let mut extra = match (header.device_major(), header.device_minor()) {
            (Ok(Some(a)), Ok(Some(b))) if matches!(kind, Kind::Other(_)) => format!("dev {a},{b}"),
            _ => String::new(),
        };
        if let Some(pax) = entry.pax_extensions().map_err(CompareError::Tar)? {
            for record in pax {
                let record = record.map_err(CompareError::Tar)?;
                let key = record.key().unwrap_or("?");
                // path and linkpath are compared as such above.
                if key != "path" && key != "linkpath" {
                    let value = String::from_utf8_lossy(record.value_bytes());
                    extra.push_str(&format!(" {key}={value}"));
                }
            }
        }
        let member = Member { path, kind, mode, uid, gid, mtime, size, sha256: [0; 32], extra };
        visit(member, &mut entry).map_err(CompareError::Tar)?;
    }
    Ok(())
}

/// A reader that counts the bytes it has consumed (for error offsets).
struct Counted<R> {
    inner: R,
    at: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.at += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.at += n as u64;
        self.inner.consume(n);
    }
}

/// The members of an initrd as the kernel unpacks it: newc cpio archives, each plain or
/// compressed with gzip or zstd, one after the other (microcode first, then the system), zero
/// padding between and after them (the kernel skips it, and the initrd writer aligns its
/// end). Offsets in errors count the file's bytes, or the decompressed bytes of a compressed
/// part.
pub fn initrd_members(r: impl Read) -> Result<Vec<Member>, CompareError> {
    let mut out = Vec::new();
    initrd_walk(r, &mut |mut m, data| {
        m.sha256 = hash(data)?.1;
        out.push(m);
        Ok(())
    })?;
    Ok(out)
}

/// The data of the file `want` in an initrd (as [`initrd_members`] reads it, streamed): the
/// last entry at that path, the one the kernel leaves in place; `None` when there is none.
pub fn initrd_file(r: impl Read, want: Wanted<'_>) -> Result<Option<Vec<u8>>, CompareError> {
    let (mut found, mut too_large) = (None, None);
    initrd_walk(r, &mut want.keep(&mut found, &mut too_large))?;
    want.result(found, too_large)
}

/// Whether `head`, the first bytes of a file, begins an initrd [`initrd_members`] reads: a newc
/// cpio archive, or gzip or zstd data that decompresses to one.
pub fn looks_like_initrd(head: &[u8]) -> bool {
    let mut start = [0u8; 6];
    let inflated = if head.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(head).read_exact(&mut start).is_ok()
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::read::Decoder::with_buffer(head)
            .and_then(|mut d| d.read_exact(&mut start))
            .is_ok()
    } else {
        start.copy_from_slice(head.get(..6).unwrap_or(&[0; 6]));
        true
    };
    inflated && start == *NEWC
}

/// Every entry of an initrd, in the order the kernel unpacks them, each handed to `visit` with
/// its data (its `sha256` left for the visitor; data it leaves unread is skipped). An error of
/// `visit` is a read error at the entry.
pub fn initrd_walk(
    r: impl Read,
    visit: &mut dyn FnMut(Member, &mut dyn Read) -> io::Result<()>,
) -> Result<(), CompareError> {
    let mut r = Counted { inner: BufReader::with_capacity(1 << 16, r), at: 0 };
    loop {
        let at = r.at;
        let head = r.fill_buf().map_err(|source| CompareError::Read { offset: at, source })?;
        if head.is_empty() {
            return Ok(());
        }
        let zeros = head.iter().take_while(|b| **b == 0).count();
        if zeros > 0 {
            r.consume(zeros);
            continue;
        }
        if head.starts_with(&NEWC[..4]) {
            cpio_archive(&mut r, visit)?;
        } else if head.starts_with(&[0x1f, 0x8b]) {
            // One member at a time (bufread leaves what follows it unread): padding may follow.
            let gz = flate2::bufread::GzDecoder::new(&mut r);
            let mut inner = Counted { inner: BufReader::with_capacity(1 << 16, gz), at: 0 };
            cpio_stream(&mut inner, visit)?;
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            let zs = zstd::stream::read::Decoder::with_buffer(&mut r)
                .map_err(|source| CompareError::Read { offset: at, source })?
                .single_frame();
            let mut inner = Counted { inner: BufReader::with_capacity(1 << 16, zs), at: 0 };
            cpio_stream(&mut inner, visit)?;
        } else {
            return Err(CompareError::Malformed {
                offset: at,
                what: "neither a newc cpio archive nor gzip or zstd data".into(),
            });
        }
    }
}

/// Every cpio archive of a decompressed stream, to its end.
fn cpio_stream<R: BufRead>(
    r: &mut Counted<R>,
    visit: &mut dyn FnMut(Member, &mut dyn Read) -> io::Result<()>,
) -> Result<(), CompareError> {
    loop {
        let at = r.at;
        let head = r.fill_buf().map_err(|source| CompareError::Read { offset: at, source })?;
        if head.is_empty() {
            return Ok(());
        }
        let zeros = head.iter().take_while(|b| **b == 0).count();
        if zeros > 0 {
            r.consume(zeros);
            continue;
        }
        cpio_archive(r, visit)?;
    }
}

/// One newc archive, through its `TRAILER!!!`.
fn cpio_archive<R: BufRead>(
    r: &mut Counted<R>,
    visit: &mut dyn FnMut(Member, &mut dyn Read) -> io::Result<()>,
) -> Result<(), CompareError> {
    loop {
        let at = r.at;
        let read_err = |source| CompareError::Read { offset: at, source };
        let bad = |what: String| CompareError::Malformed { offset: at, what };
        let mut header = [0u8; NEWC_HEADER];
        r.read_exact(&mut header).map_err(read_err)?;
        if &header[..6] != NEWC {
            return Err(bad("no newc cpio header (070701)".into()));
        }
        let field = |i: usize| -> Result<u64, CompareError> {
            let text = std::str::from_utf8(&header[6 + i * 8..14 + i * 8]).unwrap_or("");
            u64::from_str_radix(text, 16).map_err(|_| bad(format!("header field {i} is not hex")))
        };
        let (mode, uid, gid, mtime, size) = (field(1)?, field(2)?, field(3)?, field(5)?, field(6)?);
        let (rmajor, rminor, namesize) = (field(9)?, field(10)?, field(11)?);
        let namesize = usize::try_from(namesize)
            .ok()
            .filter(|n| (1..=MAX_NAME).contains(n))
            .ok_or_else(|| bad(format!("name size {namesize}")))?;
        let mut name = vec![0u8; (NEWC_HEADER + namesize).next_multiple_of(4) - NEWC_HEADER];
        r.read_exact(&mut name).map_err(read_err)?;
        name.truncate(namesize - 1);
        let path = String::from_utf8_lossy(&name).into_owned();
        if path == "TRAILER!!!" {
            return Ok(());
        }
        let mut data = (&mut *r).take(size);
        let kind = match mode & 0o170000 {
            0o100000 => Kind::File,
            0o040000 => Kind::Dir,
            0o120000 => {
                let mut target = Vec::new();
                data.read_to_end(&mut target).map_err(read_err)?;
                Kind::Symlink(String::from_utf8_lossy(&target).into_owned())
            }
            t => Kind::Other(format!("mode {t:06o}")),
        };
        let symlink = matches!(kind, Kind::Symlink(_));
        let extra = if matches!(kind, Kind::Other(_)) {
            format!("dev {rmajor},{rminor}")
        } else {
            String::new()
        };
        let member = Member {
            path: path.clone(),
            kind,
            mode: u32::try_from(mode & 0o7777).unwrap_or(0),
            uid,
            gid,
            mtime,
            size,
            sha256: [0; 32],
            extra,
        };
        let mut data = Counted { inner: data, at: 0 };
        visit(member, &mut data).map_err(read_err)?;
        io::copy(&mut data, &mut io::sink()).map_err(read_err)?;
        let len = data.at;
        if !symlink && len != size {
            return Err(bad(format!("{path}: {len} of {size} bytes of data")));
        }
        let pad = usize::try_from(size.next_multiple_of(4) - size).unwrap_or(0);
        r.read_exact(&mut [0u8; 4][..pad]).map_err(read_err)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baleen_tree::{Entry, EntryKind, EntrySink};

    fn cpio(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut w = crate::CpioWriter::new(Vec::new());
        for (path, data, mode) in files {
            let e = Entry::new(*path, EntryKind::File { size: data.len() as u64 }, *mode);
            w.add(&e, &mut &data[..]).unwrap();
        }
        w.finish().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut e, data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_changed_file_in_a_gzip_initrd_is_named() {
        let a = cpio(&[("etc/a", b"one", 0o644), ("etc/b", b"two", 0o644)]);
        let b = cpio(&[("etc/a", b"one", 0o644), ("etc/b", b"TWO", 0o644)]);
        // Microcode first, uncompressed, as the kernel reads it.
        // Zero padding after the gzip member, as the initrd writer aligns the file.
        let ucode = cpio(&[("kernel/x86/microcode/GenuineIntel.bin", b"u", 0o644)]);
        let output = initrd_members(&[&ucode[..], &gzip(&a), &[0; 3]].concat()[..]).unwrap();
        let rebuilt = initrd_members(&[&ucode[..], &gzip(&b), &[0; 3]].concat()[..]).unwrap();
        // The writer adds the parent directories.
        assert_eq!(output.len(), 7, "{output:?}");
        let d = first_difference(&output, &rebuilt).unwrap();
        assert_eq!(d.path, "etc/b");
        assert_eq!(d.what, What::Content { output_size: 3, rebuilt_size: 3 });
        assert_eq!(first_difference(&output, &output), None);
    }

    #[test]
    fn mode_presence_and_order_are_told_apart() {
        let m = |files: &[(&str, &[u8], u32)]| initrd_members(&cpio(files)[..]).unwrap();
        let base = m(&[("a", b"1", 0o644), ("b", b"2", 0o644)]);
        let d = first_difference(&m(&[("a", b"1", 0o755), ("b", b"2", 0o644)]), &base).unwrap();
        assert_eq!((d.path.as_str(), d.what), ("a", What::Mode { output: 0o755, rebuilt: 0o644 }));
        let d = first_difference(&m(&[("a", b"1", 0o644)]), &base).unwrap();
        assert_eq!((d.path.as_str(), d.what), ("b", What::OnlyInRebuilt));
        let d = first_difference(&m(&[("b", b"2", 0o644), ("a", b"1", 0o644)]), &base).unwrap();
        assert_eq!((d.path.as_str(), d.what), ("b", What::Order));
    }

    /// `initrd_file` and `tar_file`: the last entry at the path wins (the one the kernel and
    /// tar leave in place), a leading `./` or `/` is the same path, a file past `max` is
    /// refused by name; `looks_like_initrd` tells cpio, gzip and zstd cpio from other data.
    #[test]
    fn one_file_is_read_from_an_initrd_and_a_tar_bounded() {
        let first = cpio(&[("sbom.spdx.json", b"old", 0o644)]);
        let second = cpio(&[("./sbom.spdx.json", b"new", 0o644), ("etc/a", b"1", 0o644)]);
        let initrd = [&first[..], &gzip(&second)].concat();
        let want = Wanted { path: "sbom.spdx.json", max: 10 };
        assert_eq!(initrd_file(&initrd[..], want).unwrap().as_deref(), Some(&b"new"[..]));
        assert_eq!(initrd_file(&initrd[..], Wanted { path: "etc/b", max: 10 }).unwrap(), None);
        let err = initrd_file(&initrd[..], Wanted { path: "etc/a", max: 0 }).unwrap_err();
        assert_eq!(err.to_string(), "etc/a is 1 bytes, more than the 0 read");
        assert!(looks_like_initrd(&first) && looks_like_initrd(&gzip(&second)));
        assert!(!looks_like_initrd(&gzip(b"not a cpio archive")) && !looks_like_initrd(b"07"));

        let mut t = ::tar::Builder::new(Vec::new());
        for (path, data) in [("sbom.spdx.json", &b"one"[..]), ("sbom.spdx.json", b"two")] {
            let mut h = ::tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_cksum();
            t.append_data(&mut h, path, data).unwrap();
        }
        let tar = t.into_inner().unwrap();
        assert_eq!(tar_file(&tar[..], want).unwrap().as_deref(), Some(&b"two"[..]));
    }

    #[test]
    fn a_truncated_initrd_is_an_error_with_its_offset() {
        let a = cpio(&[("etc/a", b"one", 0o644)]);
        // `etc` (116 bytes with its name), then the header of `etc/a` cut short: the error
        // names where that entry starts.
        let err = initrd_members(&a[..120]).unwrap_err();
        assert!(matches!(err, CompareError::Read { offset: 116, .. }), "{err:?}");
    }
}
