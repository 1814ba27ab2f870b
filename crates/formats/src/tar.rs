//! A PAX tar writer that produces the headers Go's `archive/tar` writes for LinuxKit's
//! `tar.FormatPAX` headers, so baleen's `tar` output matches LinuxKit's byte for byte where the
//! entries are the same.
//!
//! Why not the `tar` crate's `Builder`: its PAX extension headers are named differently
//! (`PaxHeaders.0` vs. its own), it splits long names differently, and pads the archive to a
//! 10 KiB record; Go writes neither. The header layout is small and fixed, so we own it.
//!
//! Rules (Go's `Writer.WriteHeader`): an entry with PAX records (ours nearly always have
//! `LINUXKIT.*`) gets a `x` header named `<dir>/PaxHeaders.0/<base>` holding the records sorted
//! by key, plus `path`/`linkpath` when a name is longer than its field or not ASCII, `size`,
//! `uid`, `gid`, `mtime` when they do not fit the octal fields (or mtime has a fraction). An
//! entry without records is plain USTAR (long names split into prefix/name when possible). The
//! archive ends with two zero blocks and no record padding.

use crate::num::usize_of;
use baleen_tree::{Entry, EntryKind, EntrySink};
use std::io::{self, Read, Write};

const BLOCK: usize = 512;

/// Streams entries into a PAX tar.
#[derive(Debug)]
pub struct TarWriter<W: Write> {
    out: W,
    written: u64,
}

fn is_ascii(s: &str) -> bool {
    s.bytes().all(|b| b < 0x80 && b != 0)
}

fn to_ascii(s: &str) -> String {
    s.chars().filter(|c| (*c as u32) < 0x80 && *c != '\0').collect()
}

fn fits_octal(len: usize, v: i128) -> bool {
    // len-1 digits, then a NUL.
    v >= 0 && v < (1i128 << (3 * (len - 1)))
}

fn put_str(field: &mut [u8], s: &str) {
    let b = s.as_bytes();
    let n = b.len().min(field.len());
    field[..n].copy_from_slice(&b[..n]);
}

/// Go's `formatOctal`: zero-padded to len-1 digits then NUL; values that do not fit become 0.
fn put_octal(field: &mut [u8], v: i128) {
    let v = if fits_octal(field.len(), v) { v } else { 0 };
    let s = format!("{:0width$o}", v, width = field.len() - 1);
    put_str(field, &s);
}

fn put_checksum(block: &mut [u8; BLOCK]) {
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}");
    block[148..154].copy_from_slice(s.as_bytes());
    block[154] = 0;
    block[155] = b' ';
}

/// Go's `formatPAXRecord`: `"<len> <key>=<value>\n"`, the length counting itself.
pub fn pax_record(key: &str, value: &str) -> String {
    let base = key.len() + value.len() + 3;
    let mut size = base + base.to_string().len();
    let mut rec = format!("{size} {key}={value}\n");
    if rec.len() != size {
        size = rec.len();
        rec = format!("{size} {key}={value}\n");
    }
    rec
}

/// Go's `formatPAXTime` (lives in the tree crate, which also needs it for atime/ctime).
pub use baleen_tree::format_pax_time as pax_time;

/// Go's `splitUSTARPath`.
fn split_ustar(name: &str) -> Option<(&str, &str)> {
    let mut length = name.len();
    if length <= 100 || !is_ascii(name) {
        return None;
    }
    if length > 156 {
        length = 156;
    } else if name.as_bytes()[length - 1] == b'/' {
        length -= 1;
    }
    let i = name[..length].rfind('/')?;
    let (nlen, plen) = (name.len() - i - 1, i);
    if i == 0 || nlen > 100 || nlen == 0 || plen > 155 {
        return None;
    }
    Some((&name[..i], &name[i + 1..]))
}

struct Fields<'a> {
    typeflag: u8,
    name: &'a str,
    link: &'a str,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: i64,
    uname: &'a str,
    gname: &'a str,
    dev: (u32, u32),
}

fn typeflag(kind: &EntryKind) -> (u8, &str, (u32, u32)) {
    match kind {
        EntryKind::File { .. } => (b'0', "", (0, 0)),
        EntryKind::Dir => (b'5', "", (0, 0)),
        EntryKind::Symlink { target } => (b'2', target.as_str(), (0, 0)),
        EntryKind::HardLink { target } => (b'1', target.as_str(), (0, 0)),
        EntryKind::Char { major, minor } => (b'3', "", (*major, *minor)),
        EntryKind::Block { major, minor } => (b'4', "", (*major, *minor)),
        EntryKind::Fifo => (b'6', "", (0, 0)),
    }
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> Self {
        TarWriter { out, written: 0 }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let rem = usize_of(self.written % BLOCK as u64);
        if rem != 0 {
            self.put(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// Go's `templateV7Plus` plus magic: the USTAR layout every header shares.
    fn header_block(f: &Fields<'_>, prefix: &str) -> [u8; BLOCK] {
        let mut b = [0u8; BLOCK];
        put_str(&mut b[0..100], &to_ascii(f.name));
        put_octal(&mut b[100..108], i128::from(f.mode));
        put_octal(&mut b[108..116], i128::from(f.uid));
        put_octal(&mut b[116..124], i128::from(f.gid));
        put_octal(&mut b[124..136], i128::from(f.size));
        put_octal(&mut b[136..148], i128::from(f.mtime));
        b[156] = f.typeflag;
        put_str(&mut b[157..257], &to_ascii(f.link));
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        put_str(&mut b[265..297], &to_ascii(f.uname));
        put_str(&mut b[297..329], &to_ascii(f.gname));
        put_octal(&mut b[329..337], i128::from(f.dev.0));
        put_octal(&mut b[337..345], i128::from(f.dev.1));
        put_str(&mut b[345..500], prefix);
        put_checksum(&mut b);
        b
    }

    /// Writes one header (with its PAX header when needed) for `entry`.
    pub fn write_header(&mut self, entry: &Entry) -> io::Result<()> {
        let (flag, link, dev) = typeflag(&entry.kind);
        let size = entry.size();
        let mut f = Fields {
            typeflag: flag,
            name: &entry.path,
            link,
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
            size,
            mtime: entry.mtime.secs,
            uname: &entry.uname,
            gname: &entry.gname,
            dev,
        };
        let mut records: Vec<(String, String)> = entry.pax.clone();
        let mut name_needs_pax = false;
        if entry.path.len() > 100 || !is_ascii(&entry.path) {
            records.push(("path".into(), entry.path.clone()));
            name_needs_pax = true;
        }
        if link.len() > 100 || !is_ascii(link) {
            records.push(("linkpath".into(), link.to_string()));
        }
        if !fits_octal(12, i128::from(size)) {
            records.push(("size".into(), size.to_string()));
        }
        if !fits_octal(8, i128::from(entry.uid)) {
            records.push(("uid".into(), entry.uid.to_string()));
        }
        if !fits_octal(8, i128::from(entry.gid)) {
            records.push(("gid".into(), entry.gid.to_string()));
        }
        if entry.uname.len() > 32 || !is_ascii(&entry.uname) {
            records.push(("uname".into(), entry.uname.clone()));
        }
        if entry.gname.len() > 32 || !is_ascii(&entry.gname) {
            records.push(("gname".into(), entry.gname.clone()));
        }
        if entry.mtime.nanos != 0 || !fits_octal(12, i128::from(entry.mtime.secs)) {
            records.push(("mtime".into(), pax_time(entry.mtime)));
        }
        // Only a long (splittable, ASCII) name and nothing else: Go stays USTAR.
        if name_needs_pax && records.len() == 1 {
            if let Some((prefix, rest)) = split_ustar(&entry.path) {
                f.name = rest;
                let block = Self::header_block(&f, prefix);
                return self.put(&block);
            }
        }
        if !records.is_empty() {
            records.sort_by(|a, b| a.0.cmp(&b.0));
            let body: String = records.iter().map(|(k, v)| pax_record(k, v)).collect();
            let (dir, base) = match entry.path.rfind('/') {
                Some(i) => (&entry.path[..i], &entry.path[i + 1..]),
                None => ("", entry.path.as_str()),
            };
            let mut pax_name = if dir.is_empty() {
                format!("PaxHeaders.0/{base}")
            } else {
                format!("{dir}/PaxHeaders.0/{base}")
            };
            pax_name = to_ascii(&pax_name);
            pax_name.truncate(100);
            let pax_name = pax_name.trim_end_matches('/').to_string();
            let mut b = [0u8; BLOCK];
            put_str(&mut b[0..100], &pax_name);
            put_octal(&mut b[100..108], 0);
            put_octal(&mut b[108..116], 0);
            put_octal(&mut b[116..124], 0);
            put_octal(&mut b[124..136], body.len() as i128);
            put_octal(&mut b[136..148], 0);
            b[156] = b'x';
            b[257..263].copy_from_slice(b"ustar\0");
            b[263..265].copy_from_slice(b"00");
            put_checksum(&mut b);
            self.put(&b)?;
            self.put(body.as_bytes())?;
            self.pad()?;
        }
        let block = Self::header_block(&f, "");
        self.put(&block)
    }

    /// Ends the archive (two zero blocks) and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.put(&[0u8; BLOCK * 2])?;
        self.out.flush()?;
        Ok(self.out)
    }

    pub fn bytes_written(&self) -> u64 {
        self.written
    }
}

impl<W: Write> EntrySink for TarWriter<W> {
    fn add(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        self.write_header(entry)?;
        let size = entry.size();
        if size > 0 {
            let copied = io::copy(
                &mut data.take(size),
                &mut CountingWrite { inner: &mut self.out, count: &mut self.written },
            )?;
            if copied != size {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("entry {:?}: {size} bytes announced, {copied} supplied", entry.path),
                ));
            }
            self.pad()?;
        }
        Ok(())
    }
}

struct CountingWrite<'a, W: Write> {
    inner: &'a mut W,
    count: &'a mut u64,
}

impl<W: Write> Write for CountingWrite<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        *self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baleen_tree::Mtime;

    #[test]
    fn pax_records_count_their_own_length() {
        assert_eq!(pax_record("path", "a"), "9 path=a\n");
        assert_eq!(pax_record("path", "abc"), "12 path=abc\n");
        // 3 + 4 + 92 = 99 → 101 with digits, which itself has 3 digits → 102.
        let v = "x".repeat(92);
        let r = pax_record("path", &v);
        assert_eq!(r.len(), r.split(' ').next().unwrap().parse::<usize>().unwrap());
    }

    #[test]
    fn pax_times_match_go() {
        assert_eq!(pax_time(Mtime { secs: 1, nanos: 500_000_000 }), "1.5");
        assert_eq!(pax_time(Mtime::secs(42)), "42");
        assert_eq!(pax_time(Mtime { secs: -2, nanos: 750_000_000 }), "-1.25");
    }

    #[test]
    fn ustar_split_follows_go() {
        let long = format!("{}/{}", "d".repeat(60), "f".repeat(60));
        assert_eq!(split_ustar(&long), Some((&long[..60], &long[61..])));
        assert_eq!(split_ustar("short"), None);
        assert_eq!(split_ustar(&"x".repeat(120)), None);
    }
}
