//! Where two UKIs, two disks or two ISOs differ: the PE section, the partition and the file
//! in it, rather than a byte offset (`baleen verify`).
//!
//! Key items: [`compare_pe`] (sections by name, then the headers, the data after the sections,
//! the signature; [`Signature::Strip`] compares a signed UKI with an unsigned rebuild: the
//! certificate table, its directory entry, the checksum and sbsign's alignment padding left
//! out), [`compare_disk`] (the GPT, else the MBR, partition table, then each partition's bytes;
//! a partition that holds a FAT volume is compared file by file, an EFI binary in it by PE
//! section, and a squashfs or erofs root by the path in its tree: `volume`), [`compare_iso`]
//! (the file by its Rock Ridge path, and the same look into a file that is a volume),
//! [`Place`] (what the caller prints).
//!
//! Non-goals: which bytes of a file differ beyond the first (the path is the answer); volumes
//! other than FAT, squashfs and erofs (ISO 9660 has its own reader) get the offset.

mod volume;

use crate::gpt::SECTOR;
use crate::num::usize_of;
use baleen_sign::{PeError, PeLayout};
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};
use volume::volume_place;

/// The Microsoft certificate table is aligned to 8 bytes: sbsign pads the image with at most 7
/// zeros before it.
const SIGNATURE_ALIGN: u64 = 8;
const CHUNK: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("reading the {which} as a PE file")]
    Pe { which: &'static str, source: PeError },
    #[error("reading the {which} at offset {offset}")]
    Read { which: &'static str, offset: u64, source: io::Error },
    #[error("reading the {which}'s ISO 9660 directories")]
    Iso { which: &'static str, source: crate::iso::read::IsoReadError },
}

/// How a signature is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// Byte for byte (the rebuild was signed with the same key).
    Compare,
    /// Left out of the checked file: the rebuild is unsigned.
    Strip,
}

/// Where two files first differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A PE section, by name, and the offset of the first differing byte in it.
    Section {
        name: String,
        offset: u64,
        output_len: u64,
        rebuilt_len: u64,
    },
    SectionOnlyInOutput(String),
    SectionOnlyInRebuilt(String),
    PeHeaders {
        offset: u64,
    },
    AfterSections {
        offset: u64,
    },
    Signature,
    /// Same content up to the shorter length.
    Length {
        output: u64,
        rebuilt: u64,
    },
    PartitionTable {
        what: String,
    },
    /// Partition `index` (from 1), named as its GPT entry.
    Partition {
        index: usize,
        name: String,
        inner: Box<Place>,
    },
    /// Several partitions differ: each [`Place::Partition`], in disk order.
    Partitions(Vec<Place>),
    /// A file of a FAT volume.
    EspFile {
        path: String,
        inner: Box<Place>,
    },
    /// A file of an ISO 9660 volume.
    IsoFile {
        path: String,
        what: &'static str,
    },
    /// A file of an ISO 9660 volume that is itself a volume (`iso-efi`'s ESP image).
    IsoImage {
        path: String,
        inner: Box<Place>,
    },
    /// ISO metadata (descriptors, directories, boot records, padding): bytes at this offset.
    IsoMetadata {
        offset: u64,
    },
    /// FAT metadata (boot sector, tables, directories): bytes at this offset of the volume.
    FatMetadata {
        offset: u64,
    },
    /// A file of a FAT volume present in one only, or a file in one and a directory in the
    /// other.
    FatFile {
        path: String,
        what: &'static str,
    },
    /// The content of a file of the same length, from this byte of the file.
    FileContent {
        offset: u64,
    },
    /// A path in a squashfs or erofs tree, and what differs there.
    Tree {
        fs: &'static str,
        difference: String,
    },
    /// A volume that could not be read as the rebuild's kind: why, and the first differing
    /// byte of the partition or file.
    Unreadable {
        what: &'static str,
        reason: String,
        offset: u64,
    },
    /// No structure known here: a byte offset.
    Offset {
        offset: u64,
    },
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Section { name, offset, output_len, rebuilt_len }
                if output_len == rebuilt_len =>
            {
                write!(f, "PE section {name}: content differs (from byte {offset} of the section)")
            }
            Place::Section { name, output_len, rebuilt_len, .. } => write!(
                f,
                "PE section {name}: length differs (output {output_len} bytes, rebuild \
                 {rebuilt_len} bytes)"
            ),
            Place::SectionOnlyInOutput(n) => write!(f, "PE section {n}: only in the output"),
            Place::SectionOnlyInRebuilt(n) => write!(f, "PE section {n}: missing from the output"),
            Place::PeHeaders { offset } => write!(f, "PE headers differ (at byte {offset})"),
            Place::AfterSections { offset } => {
                write!(f, "data after the PE sections differs (at byte {offset})")
            }
            Place::Signature => f.write_str("the Authenticode signature differs"),
            Place::Length { output, rebuilt } => {
                write!(f, "length differs: output {output} bytes, rebuild {rebuilt} bytes")
            }
            Place::PartitionTable { what } => write!(f, "partition table: {what}"),
            Place::Partition { index, name, inner } => {
                write!(f, "partition {index} ({name:?}): {inner}")
            }
            Place::Partitions(all) => {
                for (i, p) in all.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{p}")?;
                }
                Ok(())
            }
            Place::EspFile { path, inner } => write!(f, "file {path}: {inner}"),
            Place::IsoFile { path, what } => write!(f, "ISO file {path}: {what}"),
            Place::IsoImage { path, inner } => write!(f, "ISO file {path}: {inner}"),
            Place::IsoMetadata { offset } => write!(
                f,
                "ISO metadata (volume descriptors, directories, boot records) at byte {offset}"
            ),
            Place::FatMetadata { offset } => {
                write!(f, "FAT metadata (boot sector, tables or directories) at byte {offset}")
            }
            Place::FatFile { path, what } => write!(f, "file {path}: {what}"),
            Place::FileContent { offset } => {
                write!(f, "content differs (from byte {offset} of the file)")
            }
            Place::Tree { fs, difference } => write!(f, "{fs} {difference}"),
            Place::Unreadable { what, reason, offset } => {
                write!(f, "bytes differ at offset {offset}; not readable as {what} ({reason})")
            }
            Place::Offset { offset } => {
                write!(f, "bytes differ at offset {offset} (no structure known there)")
            }
        }
    }
}

/// Two readers side by side, named for errors.
struct Pair<'a, A, B> {
    output: &'a mut A,
    rebuilt: &'a mut B,
}

impl<A: Read + Seek, B: Read + Seek> Pair<'_, A, B> {
    /// The offset (from `start`) of the first differing byte of `len` bytes at `at_output` and
    /// `at_rebuilt`; `None` when equal. A read short on one side only is a difference where it
    /// ends; both sides ending at the same byte is not (a partition that runs past the end of
    /// both files: the lengths, compared apart, say whether the files differ).
    fn first_diff(
        &mut self,
        at_output: u64,
        at_rebuilt: u64,
        len: u64,
    ) -> Result<Option<u64>, CompareError> {
        let (mut a, mut b) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
        let mut done = 0u64;
        while done < len {
            let n = usize::try_from(len - done).unwrap_or(CHUNK).min(CHUNK);
            let ra = read_full(self.output, at_output + done, &mut a[..n], "output")?;
            let rb = read_full(self.rebuilt, at_rebuilt + done, &mut b[..n], "rebuild")?;
            if let Some(i) = a[..ra.min(rb)].iter().zip(&b[..ra.min(rb)]).position(|(x, y)| x != y)
            {
                return Ok(Some(done + i as u64));
            }
            if ra != rb {
                return Ok(Some(done + ra.min(rb) as u64));
            }
            if ra < n {
                break;
            }
            done += n as u64;
        }
        Ok(None)
    }
}

/// Reads up to `buf.len()` bytes at `offset`; fewer only at the end of the file.
fn read_full<R: Read + Seek>(
    r: &mut R,
    offset: u64,
    buf: &mut [u8],
    which: &'static str,
) -> Result<usize, CompareError> {
    let err = |source| CompareError::Read { which, offset, source };
    r.seek(SeekFrom::Start(offset)).map_err(err)?;
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(err(e)),
        }
    }
    Ok(got)
}

/// Where the UKI (or any PE file) `output` first differs from `rebuilt`; `None` when they are
/// the same (with [`Signature::Strip`], the same but for the output's signature).
pub fn compare_pe<A: Read + Seek, B: Read + Seek>(
    output: &mut A,
    rebuilt: &mut B,
    signature: Signature,
) -> Result<Option<Place>, CompareError> {
    let lo =
        PeLayout::read(output).map_err(|source| CompareError::Pe { which: "output", source })?;
    let lr =
        PeLayout::read(rebuilt).map_err(|source| CompareError::Pe { which: "rebuild", source })?;
    let mut pair = Pair { output, rebuilt };
    // A signed UKI also carries its signed PCR 11 policy (`.pcrsig`) and the key to check it
    // (`.pcrpkey`), which an unsigned rebuild cannot have. With the signature left out they are
    // left out too; the headers then differ in the section table and image size, so only the
    // entry point is compared among them, and every other section byte for byte.
    const POLICY: [&str; 2] = [".pcrsig", ".pcrpkey"];
    let policy_only_in_output = signature == Signature::Strip
        && lo.named.iter().any(|o| POLICY.contains(&o.name.as_str()))
        && !lr.named.iter().any(|s| POLICY.contains(&s.name.as_str()));
    // Sections by name, in the rebuild's order; the k-th of a name (in file order) with the
    // output's k-th of that name, so that repeated names pair up as they lie.
    let (mo, mr) = (by_name(&lo), by_name(&lr));
    let mut nth: HashMap<&str, usize> = HashMap::new();
    for s in &lr.named {
        let k = nth.entry(s.name.as_str()).or_insert(0);
        let Some(o) = mo.get(s.name.as_str()).and_then(|v| v.get(*k)) else {
            return Ok(Some(Place::SectionOnlyInRebuilt(s.name.clone())));
        };
        *k += 1;
        let diff = pair.first_diff(o.offset, s.offset, s.len.min(o.len))?;
        if diff.is_some() || o.len != s.len {
            return Ok(Some(Place::Section {
                name: s.name.clone(),
                offset: diff.unwrap_or(s.len.min(o.len)),
                output_len: o.len,
                rebuilt_len: s.len,
            }));
        }
    }
    // An output section past the rebuild's count of its name.
    let mut nth: HashMap<&str, usize> = HashMap::new();
    for o in &lo.named {
        let k = nth.entry(o.name.as_str()).or_insert(0);
        *k += 1;
        let left_out = policy_only_in_output && POLICY.contains(&o.name.as_str());
        if !left_out && *k > mr.get(o.name.as_str()).map_or(0, Vec::len) {
            return Ok(Some(Place::SectionOnlyInOutput(o.name.clone())));
        }
    }
    if policy_only_in_output {
        let (eo, er) = (entry_point(&lo.headers), entry_point(&lr.headers));
        return Ok((eo != er).then_some(Place::PeHeaders { offset: 0 }));
    }
    // The headers, less what signing rewrites when the signature is left out.
    let (ho, hr) = (masked_headers(&lo, signature), masked_headers(&lr, signature));
    if let Some(i) = ho.iter().zip(&hr).position(|(a, b)| a != b) {
        return Ok(Some(Place::PeHeaders { offset: i as u64 }));
    }
    if ho.len() != hr.len() {
        return Ok(Some(Place::PeHeaders { offset: ho.len().min(hr.len()) as u64 }));
    }
    // After the last section: up to the signature (or the end).
    let body = |l: &PeLayout| l.len - l.signature.map_or(0, |(_, len)| len);
    let data_end = |l: &PeLayout| {
        l.named.iter().map(|s| s.offset + s.len).max().unwrap_or(0).max(l.headers.len() as u64)
    };
    let (bo, br) = (body(&lo), body(&lr));
    let from = data_end(&lr);
    if let Some(i) = pair.first_diff(from, from, bo.min(br).saturating_sub(from))? {
        return Ok(Some(Place::AfterSections { offset: from + i }));
    }
    if bo != br {
        // sbsign's alignment zeros before the table are part of signing, not of the image.
        let stripped_padding = signature == Signature::Strip
            && lo.signature.is_some()
            && bo > br
            && bo - br < SIGNATURE_ALIGN
            && pair.first_diff(br, br, 0)?.is_none()
            && is_zero(pair.output, br, bo - br)?;
        if !stripped_padding {
            return Ok(Some(Place::Length { output: bo, rebuilt: br }));
        }
    }
    if signature == Signature::Compare {
        match (lo.signature, lr.signature) {
            (None, None) => {}
            (Some((ao, lo_len)), Some((ar, lr_len))) if lo_len == lr_len => {
                if pair.first_diff(ao, ar, lo_len)?.is_some() {
                    return Ok(Some(Place::Signature));
                }
            }
            _ => return Ok(Some(Place::Signature)),
        }
    }
    Ok(None)
}

/// A PE file's sections by name, each name's in file order.
fn by_name(l: &PeLayout) -> HashMap<&str, Vec<&baleen_sign::PeSection>> {
    let mut m: HashMap<&str, Vec<_>> = HashMap::new();
    for s in &l.named {
        m.entry(s.name.as_str()).or_default().push(s);
    }
    m
}

/// `AddressOfEntryPoint` from a PE file's headers (`e_lfanew` + 4 + 20 + 16), if they hold it.
fn entry_point(headers: &[u8]) -> Option<[u8; 4]> {
    let pe = u32::from_le_bytes(headers.get(0x3c..0x40)?.try_into().ok()?);
    let at = usize::try_from(pe).ok()?.checked_add(40)?;
    headers.get(at..at + 4)?.try_into().ok()
}

fn is_zero<R: Read + Seek>(r: &mut R, at: u64, len: u64) -> Result<bool, CompareError> {
    let mut buf = [0u8; usize_of(SIGNATURE_ALIGN)];
    let n = usize::try_from(len).unwrap_or(0).min(buf.len());
    let got = read_full(r, at, &mut buf[..n], "output")?;
    Ok(got == n && buf[..n].iter().all(|b| *b == 0))
}

/// The headers with the checksum and the certificate directory entry zeroed for
/// [`Signature::Strip`].
fn masked_headers(l: &PeLayout, signature: Signature) -> Vec<u8> {
    let mut h = l.headers.clone();
    if signature == Signature::Strip {
        h[l.checksum_at..l.checksum_at + 4].fill(0);
        h[l.cert_dir_at..l.cert_dir_at + 8].fill(0);
    }
    h
}

/// Where the ISO 9660 volume `output` first differs from `rebuilt`: a file (by its Rock Ridge
/// path, in the rebuild's directory order), and inside a file that is a FAT, squashfs or erofs
/// volume (`iso-efi`'s and `iso-efi-initrd`'s ESP image, a root image) the file in it; else
/// `None` (the metadata around the files).
pub fn compare_iso<A: Read + Seek, B: Read + Seek>(
    output: &mut A,
    rebuilt: &mut B,
    signature: Signature,
) -> Result<Option<Place>, CompareError> {
    use crate::iso::read::files;
    let fo = files(output).map_err(|source| CompareError::Iso { which: "output", source })?;
    let fr = files(rebuilt).map_err(|source| CompareError::Iso { which: "rebuild", source })?;
    let mut pair = Pair { output: &mut *output, rebuilt: &mut *rebuilt };
    for r in &fr {
        let Some(o) = fo.iter().find(|o| o.path == r.path) else {
            return Ok(Some(Place::IsoFile {
                path: r.path.clone(),
                what: "missing from the output",
            }));
        };
        let common = o.len.min(r.len);
        let Some(at) =
            pair.first_diff(o.offset, r.offset, common)?.or((o.len != r.len).then_some(common))
        else {
            continue;
        };
        let (os, rs) = ((o.offset, o.len), (r.offset, r.len));
        if let Some(inner) = volume_place(&mut pair, os, rs, at, signature)? {
            return Ok(Some(Place::IsoImage { path: r.path.clone(), inner: Box::new(inner) }));
        }
        let what = if o.len != r.len { "length differs" } else { "content differs" };
        return Ok(Some(Place::IsoFile { path: r.path.clone(), what }));
    }
    if let Some(o) = fo.iter().find(|o| !fr.iter().any(|r| r.path == o.path)) {
        return Ok(Some(Place::IsoFile { path: o.path.clone(), what: "only in the output" }));
    }
    // Same files: the first differing byte is in what surrounds them (the caller's offset).
    Ok(None)
}

/// One partition of a disk, as [`partitions`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// From 1, in table order.
    pub index: usize,
    /// The GPT entry's name, or `MBR entry N, type 0xTT`.
    pub name: String,
    /// Byte offset and length in the disk.
    pub start: u64,
    pub len: u64,
}

/// The partitions of the disk `r` as [`compare_disk`] reads them: the primary GPT's used
/// entries, else the MBR's (not a protective one); empty when it has neither table.
pub fn partitions<R: Read + Seek>(r: &mut R) -> Result<Vec<Partition>, CompareError> {
    let entries = match gpt_entries(r, "disk")? {
        Some(e) => e,
        None => mbr_entries(r, "disk")?.unwrap_or_default(),
    };
    Ok(entries
        .into_iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let start = e.first.checked_mul(SECTOR)?;
            let len = e.last.checked_add(1)?.checked_sub(e.first)?.checked_mul(SECTOR)?;
            Some(Partition { index: i + 1, name: e.name, start, len })
        })
        .collect())
}

/// One GPT entry as compared.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    type_guid: [u8; 16],
    first: u64,
    last: u64,
    name: String,
}

/// The used entries of the primary GPT of `r`, or `None` when there is no GPT.
fn gpt_entries<R: Read + Seek>(
    r: &mut R,
    which: &'static str,
) -> Result<Option<Vec<Entry>>, CompareError> {
    let mut header = [0u8; 92];
    if read_full(r, SECTOR, &mut header, which)? < header.len() || &header[..8] != b"EFI PART" {
        return Ok(None);
    }
    let u = |at: usize, n: usize| {
        header[at..at + n].iter().rev().fold(0u64, |a, b| (a << 8) | u64::from(*b))
    };
    let (lba, count, size) = (u(72, 8), u(80, 4), u(84, 4));
    // A table this crate's writer makes has 128 entries of 128 bytes; refuse nonsense.
    if !(128..=4096).contains(&size) || count > 1024 {
        return Ok(None);
    }
    let len = usize::try_from(count * size).unwrap_or(0);
    let mut table = vec![0u8; len];
    let Some(at) = lba.checked_mul(SECTOR) else { return Ok(None) };
    if read_full(r, at, &mut table, which)? < len {
        return Ok(None);
    }
    let mut out = Vec::new();
    for e in table.chunks(usize::try_from(size).unwrap_or(128)) {
        let mut type_guid = [0u8; 16];
        type_guid.copy_from_slice(&e[..16]);
        if type_guid == [0; 16] {
            continue;
        }
        let le = |at: usize| u64::from_le_bytes(e[at..at + 8].try_into().unwrap_or([0; 8]));
        let name: Vec<u16> = e[56..128]
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|c| *c != 0)
            .collect();
        let (first, last) = (le(32), le(40));
        // An entry ending before it starts, or past the last byte a u64 offset can name, is
        // not a table this crate's writer makes (and its size would not compute).
        if last < first || last.checked_add(1).and_then(|n| n.checked_mul(SECTOR)).is_none() {
            return Ok(None);
        }
        out.push(Entry { type_guid, first, last, name: String::from_utf16_lossy(&name) });
    }
    Ok(Some(out))
}

/// The used entries of the MBR of `r` (not a protective one), or `None` when it has none.
fn mbr_entries<R: Read + Seek>(
    r: &mut R,
    which: &'static str,
) -> Result<Option<Vec<Entry>>, CompareError> {
    let mut mbr = [0u8; 512];
    if read_full(r, 0, &mut mbr, which)? < 512 || mbr[510..512] != [0x55, 0xaa] {
        return Ok(None);
    }
    let mut out = Vec::new();
    for (i, e) in mbr[446..510].chunks_exact(16).enumerate() {
        let kind = e[4];
        let le =
            |at: usize| u64::from(u32::from_le_bytes([e[at], e[at + 1], e[at + 2], e[at + 3]]));
        let (first, count) = (le(8), le(12));
        if kind == 0 || kind == 0xee || count == 0 {
            continue;
        }
        let mut type_guid = [0u8; 16];
        type_guid[0] = kind;
        out.push(Entry {
            type_guid,
            first,
            last: first + count - 1,
            name: format!("MBR entry {}, type {kind:#04x}", i + 1),
        });
    }
    Ok((!out.is_empty()).then_some(out))
}

/// Where the disk `output` first differs from `rebuilt`: the partition table (GPT, else MBR),
/// then the first partition whose bytes differ and, when it holds a FAT, squashfs or erofs
/// volume, the file in it (an EFI binary by PE section, compared with `signature`), then the
/// bytes outside the partitions. A disk with neither table gets a byte offset.
pub fn compare_disk<A: Read + Seek, B: Read + Seek>(
    output: &mut A,
    rebuilt: &mut B,
    signature: Signature,
) -> Result<Option<Place>, CompareError> {
    let len_o = output.seek(SeekFrom::End(0)).map_err(|source| CompareError::Read {
        which: "output",
        offset: 0,
        source,
    })?;
    let len_r = rebuilt.seek(SeekFrom::End(0)).map_err(|source| CompareError::Read {
        which: "rebuild",
        offset: 0,
        source,
    })?;
    let (mut po, mut pr) = (gpt_entries(output, "output")?, gpt_entries(rebuilt, "rebuild")?);
    if po.is_none() && pr.is_none() {
        (po, pr) = (mbr_entries(output, "output")?, mbr_entries(rebuilt, "rebuild")?);
    }
    let parts = match (po, pr) {
        (Some(po), Some(pr)) => {
            if po.len() != pr.len() {
                let what = format!("output has {} partitions, rebuild {}", po.len(), pr.len());
                return Ok(Some(Place::PartitionTable { what }));
            }
            for (i, (a, b)) in po.iter().zip(&pr).enumerate() {
                if a != b {
                    let what = format!(
                        "partition {} differs: output {:?} sectors {}-{}, rebuild {:?} sectors {}-{}",
                        i + 1, a.name, a.first, a.last, b.name, b.first, b.last
                    );
                    return Ok(Some(Place::PartitionTable { what }));
                }
            }
            pr
        }
        (None, None) => {
            let mut pair = Pair { output: &mut *output, rebuilt: &mut *rebuilt };
            return Ok(match pair.first_diff(0, 0, len_o.min(len_r))? {
                Some(offset) => Some(Place::Offset { offset }),
                None if len_o != len_r => Some(Place::Length { output: len_o, rebuilt: len_r }),
                None => None,
            });
        }
        _ => {
            return Ok(Some(Place::PartitionTable {
                what: "only one of the two has a partition table".into(),
            }))
        }
    };
    let mut pair = Pair { output: &mut *output, rebuilt: &mut *rebuilt };
    // Every partition that differs: a root partition's change also changes the UKI in the ESP
    // before it (its `root=PARTUUID=` is derived from the root), and the file in the root is
    // the answer a reader wants.
    let mut differing = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let (start, len) = (p.first * SECTOR, (p.last + 1 - p.first) * SECTOR);
        let Some(at) = pair.first_diff(start, start, len)? else { continue };
        let span = (start, len);
        let inner = volume_place(&mut pair, span, span, at, signature)?
            .unwrap_or(Place::Offset { offset: at });
        differing.push(Place::Partition {
            index: i + 1,
            name: p.name.clone(),
            inner: Box::new(inner),
        });
    }
    if differing.len() > 1 {
        return Ok(Some(Place::Partitions(differing)));
    }
    if let Some(place) = differing.pop() {
        return Ok(Some(place));
    }
    // Outside the partitions: the protective MBR, the GPT headers and tables, the gaps.
    if let Some(at) = pair.first_diff(0, 0, len_o.min(len_r))? {
        let inside =
            |s: u64| parts.iter().any(|p| (p.first * SECTOR..(p.last + 1) * SECTOR).contains(&s));
        if !inside(at) {
            let what = format!(
                "bytes outside the partitions differ at offset {at} (MBR, GPT headers or tables)"
            );
            return Ok(Some(Place::PartitionTable { what }));
        }
    }
    if len_o != len_r {
        return Ok(Some(Place::Length { output: len_o, rebuilt: len_r }));
    }
    Ok(None)
}
