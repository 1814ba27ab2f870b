//! What Authenticode needs of a PE/COFF file: where the checksum and the certificate-table
//! directory entry sit, which bytes the image hash covers (Microsoft's "Windows Authenticode
//! Portable Executable Signature Format", §"Calculating the PE Image Hash"), and the PE
//! checksum itself.
//!
//! Only the headers are parsed; section data is read, never interpreted.

use sha2::{Digest, Sha256};
use std::io::{self, Read, Seek, SeekFrom};

const SECTION_HEADER_LEN: u64 = 40;
/// Index of the certificate table in the optional header's data directories.
const CERT_DIRECTORY: u64 = 4;

#[derive(Debug, thiserror::Error)]
pub enum PeError {
    #[error("not a PE/COFF file: {what} (at offset {offset:#x})")]
    Malformed { what: &'static str, offset: u64 },
    #[error(
        "the EFI binary is signed already (certificate table of {len} bytes at {offset:#x}); \
         sign the unsigned binary"
    )]
    AlreadySigned { offset: u64, len: u64 },
    #[error("reading the EFI binary at offset {offset:#x}")]
    Read { offset: u64, source: io::Error },
}

/// The parts of a PE file's headers that signing reads or rewrites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeLayout {
    /// The headers, `SizeOfHeaders` bytes from offset 0.
    pub headers: Vec<u8>,
    /// Offset of the optional header's `CheckSum`.
    pub checksum_at: usize,
    /// Offset of the certificate table's data directory entry (address, size).
    pub cert_dir_at: usize,
    /// Sections with file data, as (PointerToRawData, SizeOfRawData), sorted by pointer.
    pub sections: Vec<(u64, u64)>,
    /// The same sections with their names (`.linux`, `.initrd`…), in the same order.
    pub named: Vec<PeSection>,
    /// The certificate table of a signed file, as (file offset, length).
    pub signature: Option<(u64, u64)>,
    /// Length of the file.
    pub len: u64,
}

/// A section with file data: its name (the 8-byte field, up to its first NUL) and where its
/// data lies in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeSection {
    pub name: String,
    pub offset: u64,
    pub len: u64,
}

fn field(b: &[u8], off: u64, n: usize, what: &'static str) -> Result<u64, PeError> {
    let bad = || PeError::Malformed { what, offset: off };
    let start = usize::try_from(off).map_err(|_| bad())?;
    let s = b.get(start..start + n).ok_or_else(bad)?;
    Ok(s.iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

fn read_at<R: Read + Seek>(r: &mut R, offset: u64, buf: &mut [u8]) -> Result<(), PeError> {
    let err = |source| PeError::Read { offset, source };
    r.seek(SeekFrom::Start(offset)).map_err(err)?;
    r.read_exact(buf).map_err(err)
}

impl PeLayout {
    /// Parses the headers of the PE file `r` (of any position; it is rewound).
    pub fn read<R: Read + Seek>(r: &mut R) -> Result<PeLayout, PeError> {
        let len = r.seek(SeekFrom::End(0)).map_err(|source| PeError::Read { offset: 0, source })?;
        // The DOS header, then enough to reach SizeOfHeaders.
        let mut dos = [0u8; 64];
        if len < 64 {
            return Err(PeError::Malformed { what: "shorter than a DOS header", offset: len });
        }
        read_at(r, 0, &mut dos)?;
        if &dos[..2] != b"MZ" {
            return Err(PeError::Malformed { what: "no MZ signature", offset: 0 });
        }
        let pe = field(&dos, 0x3c, 4, "truncated DOS header")?;
        let opt = pe + 24;
        // The optional header's fixed part up to SizeOfHeaders (offset 60) is the same in PE32
        // and PE32+.
        let mut probe = vec![0u8; 64 + 24];
        if pe + 88 > len {
            return Err(PeError::Malformed { what: "truncated PE header", offset: pe });
        }
        read_at(r, pe, &mut probe)?;
        let size_of_headers = field(&probe, 24 + 60, 4, "truncated optional header")?;
        if size_of_headers > len || size_of_headers < opt + 64 {
            return Err(PeError::Malformed {
                what: "SizeOfHeaders out of range",
                offset: opt + 60,
            });
        }
        let size = usize::try_from(size_of_headers).map_err(|_| PeError::Malformed {
            what: "SizeOfHeaders out of range",
            offset: opt + 60,
        })?;
        let mut headers = vec![0u8; size];
        read_at(r, 0, &mut headers)?;
        PeLayout::parse(headers, len)
    }

    fn parse(headers: Vec<u8>, len: u64) -> Result<PeLayout, PeError> {
        let h = &headers;
        let pe = field(h, 0x3c, 4, "truncated DOS header")?;
        if field(h, pe, 4, "truncated PE signature")? != 0x4550 {
            return Err(PeError::Malformed { what: "no PE signature", offset: pe });
        }
        let coff = pe + 4;
        let nsections = field(h, coff + 2, 2, "truncated COFF header")?;
        let opt_len = field(h, coff + 16, 2, "truncated COFF header")?;
        let opt = coff + 20;
        // Where the data directories start: PE32 and PE32+ differ by their 64-bit fields.
        let (count_at, dirs_at) = match field(h, opt, 2, "truncated optional header")? {
            0x10b => (opt + 92, opt + 96),
            0x20b => (opt + 108, opt + 112),
            _ => {
                return Err(PeError::Malformed {
                    what: "unknown optional header magic",
                    offset: opt,
                })
            }
        };
        if field(h, count_at, 4, "truncated optional header")? <= CERT_DIRECTORY {
            return Err(PeError::Malformed {
                what: "no certificate table directory",
                offset: count_at,
            });
        }
        let cert_dir_at = dirs_at + 8 * CERT_DIRECTORY;
        let cert_len = field(h, cert_dir_at + 4, 4, "truncated data directories")?;
        let cert_at = field(h, cert_dir_at, 4, "truncated data directories")?;
        // Authenticode leaves out the table as the last thing in the file, nothing after it.
        if cert_len != 0 && cert_at + cert_len != len {
            return Err(PeError::Malformed {
                what: "certificate table not at the end",
                offset: cert_dir_at,
            });
        }
        let signature = (cert_len != 0).then_some((cert_at, cert_len));
        let table = opt + opt_len;
        let mut named = Vec::new();
        for i in 0..nsections {
            let at = table + i * SECTION_HEADER_LEN;
            let what = "section table past SizeOfHeaders";
            let size = field(h, at + 16, 4, what)?;
            let ptr = field(h, at + 20, 4, what)?;
            if size == 0 {
                continue;
            }
            if ptr + size > len {
                return Err(PeError::Malformed { what: "section data past the end", offset: at });
            }
            let raw = usize::try_from(at).ok().and_then(|at| h.get(at..at + 8)).ok_or(
                PeError::Malformed { what: "section table past SizeOfHeaders", offset: at },
            )?;
            let name = raw.split(|b| *b == 0).next().unwrap_or_default();
            let name = String::from_utf8_lossy(name).into_owned();
            named.push(PeSection { name, offset: ptr, len: size });
        }
        named.sort_unstable_by_key(|s| (s.offset, s.len));
        let sections = named.iter().map(|s| (s.offset, s.len)).collect();
        let to_usize = |v: u64| {
            usize::try_from(v).map_err(|_| PeError::Malformed { what: "header offset", offset: v })
        };
        Ok(PeLayout {
            checksum_at: to_usize(opt + 64)?,
            cert_dir_at: to_usize(cert_dir_at)?,
            headers,
            sections,
            named,
            signature,
            len,
        })
    }

    /// The Authenticode SHA-256 image hash of the file `r`: of a signed file, the hash its
    /// signature covers; of an unsigned one, the hash it will be signed with, `len` rounded up
    /// to 8 with zeros (where the certificate table will start), as sbsign pads it.
    pub fn digest<R: Read + Seek>(&self, r: &mut R) -> Result<[u8; 32], PeError> {
        let mut sha = Sha256::new();
        let h = &self.headers;
        sha.update(&h[..self.checksum_at]);
        sha.update(&h[self.checksum_at + 4..self.cert_dir_at]);
        sha.update(&h[self.cert_dir_at + 8..]);
        let mut hashed = h.len() as u64;
        for &(ptr, size) in &self.sections {
            copy_range(r, ptr, size, |b| sha.update(b))?;
            hashed += size;
        }
        // The spec's "extra data": what follows SUM_OF_BYTES_HASHED, up to the certificate table.
        let end = self.len - self.signature.map_or(0, |(_, len)| len);
        if end > hashed {
            copy_range(r, hashed, end - hashed, |b| sha.update(b))?;
        }
        if self.signature.is_none() {
            sha.update(&[0u8; 8][..padding(self.len)]);
        }
        Ok(sha.finalize().into())
    }
}

/// Zero bytes that bring `len` to a multiple of 8 (the certificate table's alignment).
pub fn padding(len: u64) -> usize {
    // Always < 8: the cast cannot truncate.
    ((8 - len % 8) % 8) as usize
}

/// Feeds `len` bytes of `r` from `offset` to `f`, in 1 MiB pieces.
pub fn copy_range<R: Read + Seek>(
    r: &mut R,
    offset: u64,
    len: u64,
    mut f: impl FnMut(&[u8]),
) -> Result<(), PeError> {
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    while done < len {
        let n = usize::try_from((len - done).min(buf.len() as u64)).unwrap_or(buf.len());
        read_at(r, offset + done, &mut buf[..n])?;
        f(&buf[..n]);
        done += n as u64;
    }
    Ok(())
}

/// The PE checksum (`CheckSum` of the optional header, as `imagehlp!CheckSumMappedFile`
/// computes it): 16-bit little-endian words summed with end-around carry, plus the file length.
/// Bytes may be fed in pieces of any length; the field itself must be fed as zeros.
#[derive(Debug, Default)]
pub struct PeChecksum {
    sum: u64,
    /// The low byte of a word whose high byte is in the next piece.
    pending: Option<u8>,
    len: u64,
}

impl PeChecksum {
    pub fn add(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        let mut s = self.sum;
        if let (Some(lo), Some((&hi, rest))) = (self.pending, bytes.split_first()) {
            s += u64::from(u16::from_le_bytes([lo, hi]));
            self.pending = None;
            bytes = rest;
        }
        let mut words = bytes.chunks_exact(2);
        for w in &mut words {
            s += u64::from(u16::from_le_bytes([w[0], w[1]]));
        }
        if let [last] = words.remainder() {
            self.pending = Some(*last);
        }
        // Fold now and then; a u64 cannot overflow within one call of any realistic size.
        self.sum = (s & 0xffff_ffff) + (s >> 32);
    }

    /// Feeds `n` zero bytes: they add nothing to the sum but count in the length and in the
    /// pairing of bytes into words.
    pub fn add_zeros(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        self.len += n;
        let mut rest = n;
        if let Some(lo) = self.pending.take() {
            self.sum += u64::from(lo);
            rest -= 1;
        }
        if rest % 2 == 1 {
            self.pending = Some(0);
        }
    }

    /// The checksum of everything fed so far.
    pub fn finish(self) -> u32 {
        let mut s = self.sum + self.pending.map_or(0, u64::from);
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        // The PE format stores the sum plus the length in 32 bits; files past 4 GiB wrap as
        // CheckSumMappedFile's do.
        (s.wrapping_add(self.len) & 0xffff_ffff) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pe_checksum_folds_carries() {
        let mut s = PeChecksum::default();
        s.add(&[0xff, 0xff, 0x02, 0x00]);
        // 0xffff + 0x0002 = 0x10001 -> 0x0002, plus length 4.
        assert_eq!(s.finish(), 6);
    }

    #[test]
    fn pe_checksum_pairs_words_across_pieces() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(1001).collect();
        let mut whole = PeChecksum::default();
        whole.add(&bytes);
        let mut pieces = PeChecksum::default();
        for chunk in bytes.chunks(7) {
            pieces.add(chunk);
        }
        assert_eq!(pieces.finish(), whole.finish());
    }

    #[test]
    fn zeros_keep_the_pairing_of_the_bytes_around_them() {
        let mut bytes = vec![0x11u8, 0x22, 0x33];
        bytes.extend([0; 5]);
        bytes.extend([0x44, 0x55, 0x66]);
        let mut whole = PeChecksum::default();
        whole.add(&bytes);
        let mut pieces = PeChecksum::default();
        pieces.add(&[0x11, 0x22, 0x33]);
        pieces.add_zeros(5);
        pieces.add(&[0x44, 0x55, 0x66]);
        assert_eq!(pieces.finish(), whole.finish());
    }

    #[test]
    fn padding_reaches_the_next_multiple_of_eight() {
        assert_eq!([0, 1, 7, 8, 9].map(padding), [0, 7, 1, 0, 7]);
    }

    #[test]
    fn rejects_a_file_that_is_not_pe() {
        let err = PeLayout::read(&mut io::Cursor::new(vec![b'E'; 100])).unwrap_err();
        assert!(err.to_string().contains("no MZ signature"), "{err}");
    }
}
