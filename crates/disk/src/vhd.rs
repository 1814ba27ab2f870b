//! Virtual PC / Hyper-V / Azure VHD from a raw disk: fixed (the raw bytes and a 512-byte
//! footer) and dynamic (footer copy, dynamic header, block allocation table, 2 MiB blocks with
//! their sector bitmaps for every block holding a non-zero byte, footer).
//!
//! The footer's timestamp is LinuxKit's epoch, its unique id derived from the caller's seed.
//! Creator application `qem2`, as in the images LinuxKit makes with `qemu-img convert -o
//! force_size`: it tells readers (qemu, Hyper-V, Azure) to take the size from the footer, not
//! from the CHS geometry, which cannot express every size.

use crate::gpt::derived_guid;
use crate::num::usize_of;
use crate::sparse::{copy_cluster, field32, nonzero_clusters, SparseError};
use std::io::{self, Read, Seek, Write};

const BLOCK: u64 = 2 << 20;
const BLOCK_U32: u32 = 2 << 20;
/// LinuxKit's epoch in seconds since 2000-01-01T00:00:00Z, VHD's epoch.
const TIMESTAMP: u32 = {
    let since_2000 = baleen_tree::DEFAULT_MTIME - 946_684_800;
    assert!(since_2000 >= 0 && since_2000 <= u32::MAX as i64);
    // In range: asserted just above, at compile time.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let t = since_2000 as u32;
    t
};
const NO_OFFSET: u64 = u64::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VhdKind {
    Fixed,
    Dynamic,
}

fn checksum(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(0u32, |s, b| s.wrapping_add(u32::from(*b)))
}

/// CHS geometry by the algorithm of the VHD specification.
fn geometry(size: u64) -> (u16, u8, u8) {
    let total = (size / 512).min(65_535 * 16 * 255);
    let (spt, heads, cyl_heads);
    if total >= 65_535 * 16 * 63 {
        spt = 255;
        heads = 16;
        cyl_heads = total / spt;
    } else {
        let mut s = 17;
        let mut ch = total / s;
        let mut h = ch.div_ceil(1024).max(4);
        if ch >= h * 1024 || h > 16 {
            s = 31;
            h = 16;
            ch = total / s;
        }
        if ch >= h * 1024 {
            s = 63;
            h = 16;
            ch = total / s;
        }
        spt = s;
        heads = h;
        cyl_heads = ch;
    }
    // The algorithm caps the geometry at 65535 cylinders, 16 heads, 255 sectors a track.
    #[allow(clippy::cast_possible_truncation)]
    let chs = ((cyl_heads / heads) as u16, heads as u8, spt as u8);
    chs
}

fn footer(size: u64, kind: VhdKind, data_offset: u64, seed: &[u8]) -> [u8; 512] {
    let mut f = [0u8; 512];
    f[..8].copy_from_slice(b"conectix");
    f[8..12].copy_from_slice(&2u32.to_be_bytes()); // features: reserved bit
    f[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    f[16..24].copy_from_slice(&data_offset.to_be_bytes());
    f[24..28].copy_from_slice(&TIMESTAMP.to_be_bytes());
    f[28..32].copy_from_slice(b"qem2");
    f[32..36].copy_from_slice(&0x0005_0003u32.to_be_bytes());
    f[36..40].copy_from_slice(b"Wi2k");
    f[40..48].copy_from_slice(&size.to_be_bytes());
    f[48..56].copy_from_slice(&size.to_be_bytes());
    let (c, h, s) = geometry(size);
    f[56..58].copy_from_slice(&c.to_be_bytes());
    f[58] = h;
    f[59] = s;
    let t: u32 = match kind {
        VhdKind::Fixed => 2,
        VhdKind::Dynamic => 3,
    };
    f[60..64].copy_from_slice(&t.to_be_bytes());
    f[68..84].copy_from_slice(&derived_guid(seed, "vhd-id"));
    let sum = checksum(&f);
    f[64..68].copy_from_slice(&sum.to_be_bytes());
    f
}

/// The footer that makes a `size`-byte raw disk (a multiple of 512), followed by it, a fixed
/// VHD: for a caller that writes the raw disk itself and need not read it back.
pub fn fixed_vhd_footer(size: u64, seed: &[u8]) -> [u8; 512] {
    footer(size, VhdKind::Fixed, NO_OFFSET, seed)
}

/// Converts the `size`-byte raw image (a multiple of 512) into a VHD of `kind` on `out`.
pub fn write_vhd<R: Read + Seek, W: Write>(
    raw: &mut R,
    size: u64,
    kind: VhdKind,
    seed: &[u8],
    mut out: W,
) -> Result<(), SparseError> {
    let w = |source| SparseError::Write { source };
    match kind {
        VhdKind::Fixed => {
            raw.rewind().map_err(|source| SparseError::Read { offset: 0, source })?;
            let n = io::copy(&mut raw.take(size), &mut out).map_err(w)?;
            if n != size {
                let source = io::Error::new(io::ErrorKind::UnexpectedEof, "raw disk too short");
                return Err(SparseError::Read { offset: n, source });
            }
            out.write_all(&fixed_vhd_footer(size, seed)).map_err(w)
        }
        VhdKind::Dynamic => write_dynamic(raw, size, seed, out),
    }
}

fn write_dynamic<R: Read + Seek, W: Write>(
    raw: &mut R,
    size: u64,
    seed: &[u8],
    mut out: W,
) -> Result<(), SparseError> {
    let w = |source| SparseError::Write { source };
    let used = nonzero_clusters(raw, size, BLOCK)?;
    let entries = used.len() as u64;
    let bat_at: u64 = 512 + 1024;
    let bat_len = (entries * 4).next_multiple_of(512);
    let foot = footer(size, VhdKind::Dynamic, 512, seed);
    out.write_all(&foot).map_err(w)?;

    let mut h = [0u8; 1024];
    h[..8].copy_from_slice(b"cxsparse");
    h[8..16].copy_from_slice(&NO_OFFSET.to_be_bytes());
    h[16..24].copy_from_slice(&bat_at.to_be_bytes());
    h[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    h[28..32].copy_from_slice(&field32("VHD", "block count", entries)?.to_be_bytes());
    h[32..36].copy_from_slice(&BLOCK_U32.to_be_bytes());
    let sum = checksum(&h);
    h[36..40].copy_from_slice(&sum.to_be_bytes());
    out.write_all(&h).map_err(w)?;

    // Each present block: a 512-byte sector bitmap (all present) then its 2 MiB.
    let mut bat = vec![0xffu8; usize_of(bat_len)];
    let mut next_sector = (bat_at + bat_len) / 512;
    for (i, &u) in used.iter().enumerate() {
        if u {
            let sector = field32("VHD", "block sector", next_sector)?;
            bat[i * 4..i * 4 + 4].copy_from_slice(&sector.to_be_bytes());
            next_sector += (512 + BLOCK) / 512;
        }
    }
    out.write_all(&bat).map_err(w)?;
    let bitmap = [0xffu8; 512];
    let mut buf = vec![0u8; usize_of(BLOCK)];
    for (i, &u) in used.iter().enumerate() {
        if u {
            copy_cluster(raw, size, i as u64, &mut buf)?;
            out.write_all(&bitmap).map_err(w)?;
            out.write_all(&buf).map_err(w)?;
        }
    }
    out.write_all(&foot).map_err(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_matches_the_specification_examples() {
        // 1 GiB: qemu-img reports 2080/16/63 for a VHD of this size.
        assert_eq!(geometry(1 << 30), (2080, 16, 63));
        let f = footer(1 << 20, VhdKind::Fixed, NO_OFFSET, b"x");
        let mut z = f;
        z[64..68].fill(0);
        assert_eq!(u32::from_be_bytes(f[64..68].try_into().unwrap()), checksum(&z));
    }
}
