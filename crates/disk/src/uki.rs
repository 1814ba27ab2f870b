//! Unified Kernel Images: systemd's EFI stub (a PE32+ file) with the kernel, initrd, command line
//! and os-release appended as sections, laid out as `ukify` lays them out.
//!
//! The stub's sections are kept byte for byte; anything after its last section (a COFF symbol
//! table in Debian's stub) is dropped, as ukify does. New sections start after the stub's image
//! at the stub's own section alignment, their file data at its file alignment; `.linux` comes
//! last so that the kernel has room to grow in place. The PE checksum is recomputed; there is no
//! timestamp to set (the stub's stays). `.pcrpkey` and `.pcrsig` (a signed PCR policy, made by
//! the caller) go where ukify puts them: `.pcrpkey` before `.initrd`, `.pcrsig` after it.
//! Non-goals: signing, `.dtb`/`.splash`/`.uname` sections.

use crate::num::usize_of;
use baleen_sign::PeChecksum;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// `IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ`, what ukify gives its sections.
const SECTION_FLAGS: u32 = 0x4000_0040;
const SECTION_HEADER_LEN: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum UkiError {
    #[error("reading the EFI stub: {what} (at offset {offset:#x})")]
    BadStub { what: &'static str, offset: usize },
    #[error("the EFI stub's headers have room for {room} more section headers, {need} are needed")]
    NoRoom { room: usize, need: usize },
    #[error("UKI section {name} ({len} bytes) does not fit a PE32+ image (4 GiB)")]
    TooLarge { name: &'static str, len: u64 },
    #[error("the UKI's sections end at {size} bytes in memory, past PE's 32-bit SizeOfImage")]
    ImageTooLarge { size: u64 },
    #[error("reading {name} for the UKI")]
    Read { name: &'static str, source: io::Error },
    #[error("writing the UKI")]
    Write { source: io::Error },
}

/// What goes into a UKI besides the stub. Readers are read twice (checksum, then copy).
#[derive(Debug)]
pub struct UkiParts<'a, K, I> {
    pub kernel: &'a mut K,
    pub initrd: &'a mut I,
    pub cmdline: &'a [u8],
    pub osrel: &'a [u8],
    /// The public key PEM of a signed PCR policy (`.pcrpkey`), empty for none.
    pub pcrpkey: &'a [u8],
    /// The signed PCR policy JSON (`.pcrsig`), empty for none.
    pub pcrsig: &'a [u8],
}

struct StubLayout {
    /// Offset of the COFF file header (after `PE\0\0`).
    coff: usize,
    opt: usize,
    nsections: usize,
    section_table: usize,
    section_align: u64,
    file_align: u64,
    size_of_headers: usize,
    /// End of the last section's file data: the stub is cut here.
    raw_end: u64,
    /// First free virtual address after the stub's image.
    va_end: u64,
    first_raw: usize,
}

fn u16_at(b: &[u8], off: usize, what: &'static str) -> Result<u16, UkiError> {
    b.get(off..off + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or(UkiError::BadStub { what, offset: off })
}

fn u32_at(b: &[u8], off: usize, what: &'static str) -> Result<u32, UkiError> {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(UkiError::BadStub { what, offset: off })
}

fn round_up(v: u64, align: u64) -> u64 {
    v.div_ceil(align) * align
}

fn parse_stub(stub: &[u8]) -> Result<StubLayout, UkiError> {
    if stub.get(..2) != Some(b"MZ") {
        return Err(UkiError::BadStub { what: "no MZ signature", offset: 0 });
    }
    let pe = u32_at(stub, 0x3c, "truncated DOS header")? as usize;
    if stub.get(pe..pe + 4) != Some(b"PE\0\0") {
        return Err(UkiError::BadStub { what: "no PE signature", offset: pe });
    }
    let coff = pe + 4;
    let nsections = u16_at(stub, coff + 2, "truncated COFF header")? as usize;
    let opt_len = u16_at(stub, coff + 16, "truncated COFF header")? as usize;
    let opt = coff + 20;
    if u16_at(stub, opt, "truncated optional header")? != 0x20b {
        return Err(UkiError::BadStub { what: "not a PE32+ optional header", offset: opt });
    }
    let section_align = u64::from(u32_at(stub, opt + 32, "truncated optional header")?);
    let file_align = u64::from(u32_at(stub, opt + 36, "truncated optional header")?);
    if section_align == 0 || file_align == 0 || file_align % 2 != 0 {
        return Err(UkiError::BadStub { what: "zero or odd alignment", offset: opt + 32 });
    }
    let size_of_image = u64::from(u32_at(stub, opt + 56, "truncated optional header")?);
    let size_of_headers = u32_at(stub, opt + 60, "truncated optional header")? as usize;
    let section_table = opt + opt_len;
    // The fields written later (up to the certificate directory entry) and the section table
    // must lie inside the headers, which are all of the stub that is rewritten.
    if opt + 152 > section_table || section_table + nsections * SECTION_HEADER_LEN > size_of_headers
    {
        return Err(UkiError::BadStub { what: "headers do not fit SizeOfHeaders", offset: opt });
    }
    let mut raw_end = size_of_headers as u64;
    let mut va_end = size_of_image;
    let mut first_raw = usize::MAX;
    for i in 0..nsections {
        let h = section_table + i * SECTION_HEADER_LEN;
        let what = "truncated section table";
        let vsize = u64::from(u32_at(stub, h + 8, what)?);
        let va = u64::from(u32_at(stub, h + 12, what)?);
        let raw_size = u64::from(u32_at(stub, h + 16, what)?);
        let raw_ptr = u64::from(u32_at(stub, h + 20, what)?);
        if raw_size > 0 {
            raw_end = raw_end.max(raw_ptr + raw_size);
            first_raw = first_raw.min(usize_of(raw_ptr));
        }
        va_end = va_end.max(va + vsize);
    }
    if raw_end > stub.len() as u64 {
        return Err(UkiError::BadStub { what: "section data past the end", offset: stub.len() });
    }
    Ok(StubLayout {
        coff,
        opt,
        nsections,
        section_table,
        section_align,
        file_align,
        size_of_headers,
        raw_end,
        va_end: round_up(va_end, section_align),
        first_raw: if first_raw == usize::MAX { size_of_headers } else { first_raw },
    })
}

enum Source<'a> {
    Bytes(&'a [u8]),
    Reader(&'a mut dyn ReadSeek),
}

trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

struct NewSection<'a> {
    name: &'static str,
    len: u64,
    data: Source<'a>,
}

fn stream_len(name: &'static str, r: &mut dyn ReadSeek) -> Result<u64, UkiError> {
    let len = r.seek(SeekFrom::End(0)).map_err(|source| UkiError::Read { name, source })?;
    r.rewind().map_err(|source| UkiError::Read { name, source })?;
    Ok(len)
}

/// Writes `stub` + `parts` as one UKI to `out`; returns its length. Sections with no bytes
/// (an empty initrd or command line) are left out, as ukify leaves out what it is not given.
pub fn write_uki<K: Read + Seek, I: Read + Seek, W: Write>(
    stub: &[u8],
    parts: UkiParts<'_, K, I>,
    mut out: W,
) -> Result<u64, UkiError> {
    let layout = parse_stub(stub)?;
    let kernel_len = stream_len(".linux", parts.kernel)?;
    let initrd_len = stream_len(".initrd", parts.initrd)?;
    let mut sections = vec![
        NewSection {
            name: ".osrel",
            len: parts.osrel.len() as u64,
            data: Source::Bytes(parts.osrel),
        },
        NewSection {
            name: ".cmdline",
            len: parts.cmdline.len() as u64,
            data: Source::Bytes(parts.cmdline),
        },
        NewSection {
            name: ".pcrpkey",
            len: parts.pcrpkey.len() as u64,
            data: Source::Bytes(parts.pcrpkey),
        },
        NewSection { name: ".initrd", len: initrd_len, data: Source::Reader(parts.initrd) },
        NewSection {
            name: ".pcrsig",
            len: parts.pcrsig.len() as u64,
            data: Source::Bytes(parts.pcrsig),
        },
        NewSection { name: ".linux", len: kernel_len, data: Source::Reader(parts.kernel) },
    ];
    sections.retain(|s| s.len > 0);

    let header_room = layout.size_of_headers.min(layout.first_raw);
    let table_end = layout.section_table + layout.nsections * SECTION_HEADER_LEN;
    let room = header_room.saturating_sub(table_end) / SECTION_HEADER_LEN;
    if room < sections.len() {
        return Err(UkiError::NoRoom { room, need: sections.len() });
    }

    let mut head = stub[..usize_of(layout.raw_end)].to_vec();
    let mut va = layout.va_end;
    let mut raw = round_up(layout.raw_end, layout.file_align);
    let mut placed = Vec::with_capacity(sections.len());
    for (i, s) in sections.iter().enumerate() {
        let raw_size = round_up(s.len, layout.file_align);
        if va + s.len > u64::from(u32::MAX) || raw + raw_size > u64::from(u32::MAX) {
            return Err(UkiError::TooLarge { name: s.name, len: s.len });
        }
        let field =
            |v: u64| u32::try_from(v).map_err(|_| UkiError::TooLarge { name: s.name, len: s.len });
        let mut h = [0u8; SECTION_HEADER_LEN];
        h[..s.name.len()].copy_from_slice(s.name.as_bytes());
        h[8..12].copy_from_slice(&field(s.len)?.to_le_bytes());
        h[12..16].copy_from_slice(&field(va)?.to_le_bytes());
        h[16..20].copy_from_slice(&field(raw_size)?.to_le_bytes());
        h[20..24].copy_from_slice(&field(raw)?.to_le_bytes());
        h[36..40].copy_from_slice(&SECTION_FLAGS.to_le_bytes());
        let at = table_end + i * SECTION_HEADER_LEN;
        head[at..at + SECTION_HEADER_LEN].copy_from_slice(&h);
        placed.push(raw);
        va = round_up(va + s.len, layout.section_align);
        raw += raw_size;
    }
    let total = raw;
    let set32 = |head: &mut Vec<u8>, off: usize, v: u32| {
        head[off..off + 4].copy_from_slice(&v.to_le_bytes());
    };
    let nsections = u16::try_from(layout.nsections + sections.len()).map_err(|_| {
        UkiError::NoRoom { room: usize::from(u16::MAX) - layout.nsections, need: sections.len() }
    })?;
    let size_of_image = u32::try_from(va).map_err(|_| UkiError::ImageTooLarge { size: va })?;
    head[layout.coff + 2..layout.coff + 4].copy_from_slice(&nsections.to_le_bytes());
    // The symbol table was cut off with everything after the last section.
    set32(&mut head, layout.coff + 8, 0);
    set32(&mut head, layout.coff + 12, 0);
    set32(&mut head, layout.opt + 56, size_of_image);
    set32(&mut head, layout.opt + 64, 0); // CheckSum, summed as zero
                                          // A signature over the stub would not cover the new sections: drop the certificate table.
    let dirs = layout.opt + 112;
    if u32_at(&head, layout.opt + 108, "truncated optional header")? > 4 {
        set32(&mut head, dirs + 4 * 8, 0);
        set32(&mut head, dirs + 4 * 8 + 4, 0);
    }

    let mut sum = PeChecksum::default();
    sum.add(&head);
    let mut pos = head.len() as u64;
    for (s, &at) in sections.iter_mut().zip(&placed) {
        sum.add_zeros(at - pos);
        pos = at + s.len;
        match &mut s.data {
            Source::Bytes(b) => sum.add(b),
            Source::Reader(r) => {
                let name = s.name;
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let n = read_full(*r, &mut buf)
                        .map_err(|source| UkiError::Read { name, source })?;
                    if n == 0 {
                        break;
                    }
                    sum.add(&buf[..n]);
                }
                r.rewind().map_err(|source| UkiError::Read { name, source })?;
            }
        }
    }
    sum.add_zeros(total - pos);
    let checksum = sum.finish();
    set32(&mut head, layout.opt + 64, checksum);

    let w = |source| UkiError::Write { source };
    out.write_all(&head).map_err(w)?;
    let mut pos = head.len() as u64;
    for (s, at) in sections.iter_mut().zip(placed) {
        write_zeros(&mut out, at - pos).map_err(w)?;
        let copied = match &mut s.data {
            Source::Bytes(b) => {
                out.write_all(b).map_err(w)?;
                b.len() as u64
            }
            Source::Reader(r) => {
                let name = s.name;
                let n = io::copy(&mut r.take(s.len), &mut out)
                    .map_err(|source| UkiError::Read { name, source })?;
                if n != s.len {
                    let source = io::Error::new(io::ErrorKind::UnexpectedEof, "changed size");
                    return Err(UkiError::Read { name, source });
                }
                n
            }
        };
        pos = at + copied;
    }
    write_zeros(&mut out, total - pos).map_err(w)?;
    Ok(total)
}

/// Reads until `buf` is full or the stream ends.
fn read_full(r: &mut dyn ReadSeek, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

pub(crate) fn write_zeros<W: Write + ?Sized>(out: &mut W, mut n: u64) -> io::Result<()> {
    const ZEROS: [u8; 4096] = [0; 4096];
    while n > 0 {
        let k = usize_of(n.min(ZEROS.len() as u64));
        out.write_all(&ZEROS[..k])?;
        n -= k as u64;
    }
    Ok(())
}

/// The `.osrel` baleen puts in its UKIs: fixed text, so that the UKI depends only on the build.
pub fn default_osrel(name: &str) -> Vec<u8> {
    format!("NAME=\"baleen\"\nID=baleen\nPRETTY_NAME=\"{name} (baleen)\"\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_a_non_pe_stub() {
        let mut k = io::Cursor::new(vec![1u8; 10]);
        let mut i = io::Cursor::new(Vec::new());
        let parts = UkiParts {
            kernel: &mut k,
            initrd: &mut i,
            cmdline: b"",
            osrel: b"",
            pcrpkey: b"",
            pcrsig: b"",
        };
        let err = write_uki(b"ELF.....", parts, io::sink()).unwrap_err();
        assert!(err.to_string().contains("no MZ signature"), "{err}");
    }
}
