//! The raw disk inside a qcow2, VHD, VMDK or gcp output, read back (`baleen verify` compares
//! the disks, partition by partition, rather than their containers).
//!
//! Key items: [`Container`], [`read_back`] (container → raw disk on a `Write + Seek`, its
//! size returned). Streaming and bounded: qcow2 keeps its L1 table and one L2 table, a dynamic
//! VHD its block table, VMDK and gcp are read front to back; data moves one cluster, block or
//! grain at a time, and runs of zeros are skipped with a seek, so the raw disk stays sparse
//! (the caller sets its length to the size returned). Hostile inputs are bounded: tables must
//! fit in the file, a host cluster, block or table is mapped at most once, and the non-zero
//! bytes written are capped at the input's length (× 1032, deflate's best ratio, for VMDK, gcp).
//!
//! Non-goals: what baleen's writers never write — compressed or encrypted qcow2 clusters,
//! backing files, differencing VHDs, VMDKs other than stream-optimized.

use flate2::read::{MultiGzDecoder, ZlibDecoder};
use std::collections::HashSet;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};

/// The containers read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Qcow2,
    /// Fixed or dynamic: the footer says which.
    Vhd,
    /// Stream-optimized.
    Vmdk,
    /// A gzip'd tar holding `disk.raw`.
    Gcp,
}

impl Container {
    /// As errors name it: `qcow2`, `VHD`, `VMDK`, `gcp tar`.
    pub fn name(self) -> &'static str {
        match self {
            Container::Qcow2 => "qcow2",
            Container::Vhd => "VHD",
            Container::Vmdk => "VMDK",
            Container::Gcp => "gcp tar",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadBackError {
    #[error("reading the {container} file at offset {offset}")]
    Read { container: &'static str, offset: u64, source: io::Error },
    #[error("writing the raw disk read back from the {container} file")]
    Write { container: &'static str, source: io::Error },
    #[error("the {container} file at offset {offset}: {what}")]
    Malformed { container: &'static str, offset: u64, what: String },
}

/// The largest raw disk read back (qcow2's and VHD's size fields are 64-bit): 16 TiB.
pub const MAX_DISK: u64 = 16 << 40;

/// How much larger than its compressed form deflate data can get (its best ratio, ~1032:1).
const DEFLATE_RATIO: u64 = 1032;

struct Io<'a, R, W> {
    c: Container,
    r: &'a mut R,
    out: Out<'a, W>,
    /// The container file's length: tables must fit in it.
    len: u64,
    /// Host clusters, sectors and tables already mapped: each may be mapped once.
    hosts: HashSet<u64>,
}

/// The raw disk being written, and the budget of non-zero bytes a hostile container could
/// otherwise multiply (one cluster mapped at every guest offset of a 16 TiB disk).
struct Out<'a, W> {
    c: Container,
    w: &'a mut W,
    written: u64,
    limit: u64,
}

impl<R: Read + Seek, W: Write + Seek> Io<'_, R, W> {
    fn bad(&self, offset: u64, what: impl Into<String>) -> ReadBackError {
        ReadBackError::Malformed { container: self.c.name(), offset, what: what.into() }
    }

    /// Refuses the host `offset` (of a cluster, block or table) mapped a second time.
    fn claim(&mut self, offset: u64, what: &str) -> Result<(), ReadBackError> {
        if self.hosts.insert(offset) {
            Ok(())
        } else {
            Err(self.bad(offset, format!("{what} mapped twice")))
        }
    }

    /// Refuses a table of `bytes` at `offset` that does not fit in the file.
    fn fits(&self, offset: u64, bytes: u64, what: &str) -> Result<(), ReadBackError> {
        match offset.checked_add(bytes) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(self.bad(
                offset,
                format!("{what} of {bytes} bytes past the end of the {}-byte file", self.len),
            )),
        }
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ReadBackError> {
        let container = self.c.name();
        let err = |source| ReadBackError::Read { container, offset, source };
        self.r.seek(SeekFrom::Start(offset)).map_err(err)?;
        self.r.read_exact(buf).map_err(err)
    }
}

impl<W: Write + Seek> Out<'_, W> {
    /// Writes `data` (read at `from` of the container) at `at` of the raw disk, leaving
    /// all-zero stretches unwritten; refuses more non-zero bytes than the budget.
    fn put(&mut self, from: u64, at: u64, data: &[u8]) -> Result<(), ReadBackError> {
        let container = self.c.name();
        let err = |source| ReadBackError::Write { container, source };
        for (i, chunk) in data.chunks(4096).enumerate() {
            if chunk.iter().all(|b| *b == 0) {
                continue;
            }
            self.written += chunk.len() as u64;
            if self.written > self.limit {
                let what = format!(
                    "more than {} non-zero bytes of raw disk, more than the file can hold",
                    self.limit
                );
                return Err(ReadBackError::Malformed { container, offset: from, what });
            }
            self.w.seek(SeekFrom::Start(at + 4096 * i as u64)).map_err(err)?;
            self.w.write_all(chunk).map_err(err)?;
        }
        Ok(())
    }
}

/// Reads the raw disk out of `r`, a `container` file, onto `w`; returns the disk's size.
pub fn read_back<R: Read + Seek, W: Write + Seek>(
    container: Container,
    r: &mut R,
    w: &mut W,
) -> Result<u64, ReadBackError> {
    let len = r.seek(SeekFrom::End(0)).map_err(|source| ReadBackError::Read {
        container: container.name(),
        offset: 0,
        source,
    })?;
    let limit = match container {
        Container::Qcow2 | Container::Vhd => len,
        Container::Vmdk | Container::Gcp => len.saturating_mul(DEFLATE_RATIO),
    };
    let out = Out { c: container, w, written: 0, limit };
    let mut io = Io { c: container, r, out, len, hosts: HashSet::new() };
    let size = match container {
        Container::Qcow2 => qcow2(&mut io)?,
        Container::Vhd => vhd(&mut io)?,
        Container::Vmdk => vmdk(&mut io)?,
        Container::Gcp => gcp(&mut io)?,
    };
    io.out
        .w
        .flush()
        .map_err(|source| ReadBackError::Write { container: container.name(), source })?;
    Ok(size)
}

fn be32(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}

fn be64(b: &[u8], at: usize) -> u64 {
    (be32(b, at) << 32) | be32(b, at + 4)
}

fn qcow2<R: Read + Seek, W: Write + Seek>(io: &mut Io<'_, R, W>) -> Result<u64, ReadBackError> {
    let mut h = [0u8; 72];
    io.read_at(0, &mut h)?;
    if &h[..4] != b"QFI\xfb" || !matches!(be32(&h, 4), 2 | 3) {
        return Err(io.bad(0, "no qcow2 magic and version 2 or 3"));
    }
    if be64(&h, 8) != 0 || be32(&h, 32) != 0 {
        return Err(io.bad(8, "a backing file or encryption"));
    }
    let bits = be32(&h, 20);
    if !(9..=21).contains(&bits) {
        return Err(io.bad(20, format!("cluster bits {bits}")));
    }
    let cluster = 1u64 << bits;
    let size = be64(&h, 24);
    if size > MAX_DISK {
        return Err(io.bad(24, format!("a {size}-byte disk")));
    }
    let per_l2 = cluster / 8;
    let l1_len = be32(&h, 36);
    if l1_len < size.div_ceil(cluster).div_ceil(per_l2)
        || l1_len > (MAX_DISK / cluster).div_ceil(per_l2)
    {
        return Err(io.bad(36, format!("{l1_len} L1 entries for a {size}-byte disk")));
    }
    let l1_at = be64(&h, 40);
    io.fits(l1_at, l1_len * 8, "an L1 table")?;
    let mut l1 = vec![0u8; usize::try_from(l1_len * 8).map_err(|_| io.bad(36, "L1 size"))?];
    io.read_at(l1_at, &mut l1)?;
    let cluster_usize = usize::try_from(cluster).map_err(|_| io.bad(20, "cluster size"))?;
    let (mut l2, mut data) = (vec![0u8; cluster_usize], vec![0u8; cluster_usize]);
    const OFFSET: u64 = 0x00ff_ffff_ffff_fe00;
    for (t, e) in l1.chunks_exact(8).enumerate() {
        let l2_at = be64(e, 0) & OFFSET;
        if l2_at == 0 {
            continue;
        }
        io.claim(l2_at, "an L2 table")?;
        io.read_at(l2_at, &mut l2)?;
        for (i, e) in l2.chunks_exact(8).enumerate() {
            let e = be64(e, 0);
            let guest = (t as u64 * per_l2 + i as u64) * cluster;
            if guest >= size || e & 1 != 0 || e & OFFSET == 0 {
                continue; // past the end, reads as zeros, or unallocated
            }
            if e & (1 << 62) != 0 {
                return Err(io.bad(l2_at, format!("a compressed cluster at guest byte {guest}")));
            }
            let host = e & OFFSET;
            io.claim(host, &format!("the data cluster of guest byte {guest}"))?;
            let n = usize::try_from(cluster.min(size - guest)).unwrap_or(cluster_usize);
            io.read_at(host, &mut data[..n])?;
            io.out.put(host, guest, &data[..n])?;
        }
    }
    Ok(size)
}

fn vhd<R: Read + Seek, W: Write + Seek>(io: &mut Io<'_, R, W>) -> Result<u64, ReadBackError> {
    let container = io.c.name();
    let len = io.r.seek(SeekFrom::End(0)).map_err(|source| ReadBackError::Read {
        container,
        offset: 0,
        source,
    })?;
    if len < 512 {
        return Err(io.bad(0, "shorter than its footer"));
    }
    let mut f = [0u8; 512];
    io.read_at(len - 512, &mut f)?;
    if &f[..8] != b"conectix" {
        return Err(io.bad(len - 512, "no footer (conectix)"));
    }
    let size = be64(&f, 48);
    if size > MAX_DISK {
        return Err(io.bad(len - 464, format!("a {size}-byte disk")));
    }
    let mut buf = vec![0u8; 1 << 20];
    match be32(&f, 60) {
        2 => {
            if len - 512 != size {
                return Err(io.bad(len - 512, format!("a fixed {size}-byte disk in {len} bytes")));
            }
            let mut at = 0;
            while at < size {
                let n = usize::try_from((size - at).min(1 << 20)).unwrap_or(1 << 20);
                io.read_at(at, &mut buf[..n])?;
                io.out.put(at, at, &buf[..n])?;
                at += n as u64;
            }
        }
        3 => {
            let mut d = [0u8; 1024];
            let dyn_at = be64(&f, 16);
            io.read_at(dyn_at, &mut d)?;
            if &d[..8] != b"cxsparse" {
                return Err(io.bad(dyn_at, "no dynamic header (cxsparse)"));
            }
            let (table, entries, block) = (be64(&d, 16), be32(&d, 28), be32(&d, 32));
            if !(512..=1 << 28).contains(&block)
                || block % 512 != 0
                || entries > size.div_ceil(block) + 1
            {
                return Err(io.bad(dyn_at, format!("{entries} blocks of {block} bytes")));
            }
            let bitmap = (block / 512).div_ceil(8).next_multiple_of(512);
            io.fits(table, entries * 4, "a block table")?;
            let mut bat = vec![0u8; usize::try_from(entries * 4).unwrap_or(0)];
            io.read_at(table, &mut bat)?;
            buf.resize(usize::try_from(block).unwrap_or(0), 0);
            for (b, e) in bat.chunks_exact(4).enumerate() {
                let sector = be32(e, 0);
                let guest = b as u64 * block;
                if sector == 0xffff_ffff || guest >= size {
                    continue;
                }
                let host = sector * 512 + bitmap;
                io.claim(host, &format!("the block of guest byte {guest}"))?;
                let n = usize::try_from(block.min(size - guest)).unwrap_or(0);
                io.read_at(host, &mut buf[..n])?;
                io.out.put(host, guest, &buf[..n])?;
            }
        }
        other => return Err(io.bad(len - 452, format!("disk type {other}, not fixed or dynamic"))),
    }
    Ok(size)
}

fn vmdk<R: Read + Seek, W: Write + Seek>(io: &mut Io<'_, R, W>) -> Result<u64, ReadBackError> {
    let mut h = [0u8; 512];
    io.read_at(0, &mut h)?;
    let le = |at: usize| u64::from_le_bytes(h[at..at + 8].try_into().unwrap_or([0; 8]));
    let flags = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if &h[..4] != b"KDMV" || flags & (1 << 16) == 0 || flags & (1 << 17) == 0 {
        return Err(io.bad(0, "not a stream-optimized VMDK (KDMV, compressed grains, markers)"));
    }
    let (capacity, grain, overhead) = (le(12), le(20), le(64));
    let size = capacity.saturating_mul(512);
    if size > MAX_DISK || !(8..=2048).contains(&grain) {
        return Err(io.bad(12, format!("{capacity} sectors in grains of {grain}")));
    }
    let grain_bytes = grain * 512;
    let container = io.c.name();
    let mut at = overhead.saturating_mul(512);
    io.r.seek(SeekFrom::Start(at)).map_err(|source| ReadBackError::Read {
        container,
        offset: at,
        source,
    })?;
    let mut r = BufReader::with_capacity(1 << 20, &mut *io.r);
    let mut data = Vec::with_capacity(usize::try_from(grain_bytes).unwrap_or(0));
    loop {
        let mut m = [0u8; 512];
        r.read_exact(&mut m[..12]).map_err(|source| ReadBackError::Read {
            container,
            offset: at,
            source,
        })?;
        let value = u64::from_le_bytes(m[..8].try_into().unwrap_or([0; 8]));
        let stored = u64::from(u32::from_le_bytes([m[8], m[9], m[10], m[11]]));
        if stored == 0 {
            // A marker sector: end of stream, or grain tables, directory, footer after it.
            r.read_exact(&mut m[12..]).map_err(|source| ReadBackError::Read {
                container,
                offset: at,
                source,
            })?;
            if u32::from_le_bytes([m[12], m[13], m[14], m[15]]) == 0 {
                break;
            }
            let skip = value.saturating_mul(512);
            io::copy(&mut (&mut r).take(skip), &mut io::sink())
                .map_err(|source| ReadBackError::Read { container, offset: at, source })?;
            at = match skip.checked_add(512).and_then(|n| at.checked_add(n)) {
                Some(next) => next,
                None => return Err(io.bad(at, format!("a marker skipping {value} sectors"))),
            };
            continue;
        }
        let guest = value.saturating_mul(512);
        if guest >= size || stored > grain_bytes * 2 + 1024 {
            return Err(io.bad(at, format!("a grain of {stored} bytes at sector {value}")));
        }
        data.clear();
        let mut z = ZlibDecoder::new((&mut r).take(stored));
        (&mut z)
            .take(grain_bytes + 1)
            .read_to_end(&mut data)
            .map_err(|source| ReadBackError::Read { container, offset: at, source })?;
        // What the decoder left of the stored bytes, and the padding to the next sector.
        let rest = z.into_inner().limit();
        let pad = (12 + stored).next_multiple_of(512) - 12 - stored;
        io::copy(&mut (&mut r).take(rest + pad), &mut io::sink())
            .map_err(|source| ReadBackError::Read { container, offset: at, source })?;
        if data.len() as u64 > grain_bytes.min(size - guest) {
            return Err(io.bad(at, format!("a grain inflating to {} bytes", data.len())));
        }
        io.out.put(at, guest, &data)?;
        at += 12 + stored + pad;
    }
    Ok(size)
}

fn gcp<R: Read + Seek, W: Write + Seek>(io: &mut Io<'_, R, W>) -> Result<u64, ReadBackError> {
    let container = io.c.name();
    io.r.seek(SeekFrom::Start(0)).map_err(|source| ReadBackError::Read {
        container,
        offset: 0,
        source,
    })?;
    let mut z = MultiGzDecoder::new(BufReader::with_capacity(1 << 20, &mut *io.r));
    let mut h = [0u8; 512];
    // Offsets here count the decompressed tar's bytes.
    z.read_exact(&mut h).map_err(|source| ReadBackError::Read { container, offset: 0, source })?;
    if &h[..9] != b"disk.raw\0" {
        let bad = ReadBackError::Malformed {
            container,
            offset: 0,
            what: "the first tar member is not disk.raw".into(),
        };
        return Err(bad);
    }
    let text =
        std::str::from_utf8(&h[124..135]).unwrap_or("").trim_matches(|c| c == '\0' || c == ' ');
    let size = u64::from_str_radix(text, 8).map_err(|_| ReadBackError::Malformed {
        container,
        offset: 124,
        what: format!("tar size field {text:?}"),
    })?;
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < size {
        let n = usize::try_from((size - at).min(1 << 20)).unwrap_or(1 << 20);
        z.read_exact(&mut buf[..n]).map_err(|source| ReadBackError::Read {
            container,
            offset: 512 + at,
            source,
        })?;
        io.out.put(512 + at, at, &buf[..n])?;
        at += n as u64;
    }
    Ok(size)
}
