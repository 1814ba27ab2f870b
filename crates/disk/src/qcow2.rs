//! qcow2 version 3 from a raw disk: 64 KiB clusters, only clusters with a non-zero byte
//! allocated, 16-bit refcounts, no compression, no snapshots, no backing file.
//!
//! Two passes over the raw image: one to find the non-zero clusters (a bit per cluster is all
//! that is kept), one to copy them after the metadata, which is laid out up front in this
//! order: header, L1 table, refcount table, refcount blocks, L2 tables, data in guest order.

use crate::num::usize_of;
use crate::sparse::{copy_cluster, field32, nonzero_clusters, SparseError};
use std::io::{Read, Seek, Write};

const CLUSTER_BITS: u32 = 16;
const CLUSTER: u64 = 1 << CLUSTER_BITS;
/// L2 entries per table (8-byte entries in one cluster).
const L2_ENTRIES: u64 = CLUSTER / 8;
/// Refcounts per block (16-bit entries in one cluster).
const REFCOUNTS_PER_BLOCK: u64 = CLUSTER / 2;
/// "The cluster is used once": lets qemu write in place without copy-on-write checks.
const OFLAG_COPIED: u64 = 1 << 63;

fn clusters_for(bytes: u64) -> u64 {
    bytes.div_ceil(CLUSTER)
}

/// Converts the `size`-byte raw image `raw` into qcow2 on `out`; returns the bytes written.
pub fn write_qcow2<R: Read + Seek, W: Write>(
    raw: &mut R,
    size: u64,
    mut out: W,
) -> Result<u64, SparseError> {
    let used = nonzero_clusters(raw, size, CLUSTER)?;
    let guest_clusters = clusters_for(size);
    let l1_entries = guest_clusters.div_ceil(L2_ENTRIES);
    let l1_clusters = clusters_for(l1_entries * 8).max(1);
    let l2_used: Vec<bool> = (0..l1_entries)
        .map(|t| {
            let end = ((t + 1) * L2_ENTRIES).min(guest_clusters);
            (t * L2_ENTRIES..end).any(|c| used[usize_of(c)])
        })
        .collect();
    let l2_count = l2_used.iter().filter(|u| **u).count() as u64;
    let data_count = used.iter().filter(|u| **u).count() as u64;
    // Refcount blocks cover every host cluster, themselves and their table included.
    let fixed = 1 + l1_clusters + l2_count + data_count;
    let (mut rt_clusters, mut rb_clusters) = (1u64, 1u64);
    loop {
        let total = fixed + rt_clusters + rb_clusters;
        let rb = total.div_ceil(REFCOUNTS_PER_BLOCK);
        let rt = clusters_for(rb * 8).max(1);
        if (rb, rt) == (rb_clusters, rt_clusters) {
            break;
        }
        (rb_clusters, rt_clusters) = (rb.max(rb_clusters), rt.max(rt_clusters));
    }
    let host_clusters = fixed + rt_clusters + rb_clusters;
    let l1_at = 1;
    let rt_at = l1_at + l1_clusters;
    let rb_at = rt_at + rt_clusters;
    let l2_at = rb_at + rb_clusters;
    let data_at = l2_at + l2_count;

    let w = |source| SparseError::Write { source };
    let mut header = vec![0u8; usize_of(CLUSTER)];
    header[..4].copy_from_slice(b"QFI\xfb");
    header[4..8].copy_from_slice(&3u32.to_be_bytes());
    header[20..24].copy_from_slice(&CLUSTER_BITS.to_be_bytes());
    header[24..32].copy_from_slice(&size.to_be_bytes());
    header[36..40].copy_from_slice(&field32("qcow2", "L1 size", l1_entries)?.to_be_bytes());
    header[40..48].copy_from_slice(&(l1_at * CLUSTER).to_be_bytes());
    header[48..56].copy_from_slice(&(rt_at * CLUSTER).to_be_bytes());
    header[56..60]
        .copy_from_slice(&field32("qcow2", "refcount table clusters", rt_clusters)?.to_be_bytes());
    header[96..100].copy_from_slice(&4u32.to_be_bytes()); // refcount_order: 16 bits
    header[100..104].copy_from_slice(&104u32.to_be_bytes()); // header length
                                                             // Bytes 104..112 stay zero: the end of the (empty) header extension list.
    out.write_all(&header).map_err(w)?;

    let mut l1 = vec![0u8; usize_of(l1_clusters * CLUSTER)];
    let mut next_l2 = l2_at;
    for (t, &u) in l2_used.iter().enumerate() {
        if u {
            let e = (next_l2 * CLUSTER) | OFLAG_COPIED;
            l1[t * 8..t * 8 + 8].copy_from_slice(&e.to_be_bytes());
            next_l2 += 1;
        }
    }
    out.write_all(&l1).map_err(w)?;

    let mut rt = vec![0u8; usize_of(rt_clusters * CLUSTER)];
    for b in 0..rb_clusters {
        let at = usize_of(b * 8);
        rt[at..at + 8].copy_from_slice(&((rb_at + b) * CLUSTER).to_be_bytes());
    }
    out.write_all(&rt).map_err(w)?;
    let mut rb = vec![0u8; usize_of(rb_clusters * CLUSTER)];
    for c in 0..usize_of(host_clusters) {
        rb[c * 2..c * 2 + 2].copy_from_slice(&1u16.to_be_bytes());
    }
    out.write_all(&rb).map_err(w)?;

    let mut next_data = data_at;
    for (t, &u) in l2_used.iter().enumerate() {
        if !u {
            continue;
        }
        let mut l2 = vec![0u8; usize_of(CLUSTER)];
        let start = t as u64 * L2_ENTRIES;
        for i in 0..L2_ENTRIES.min(guest_clusters - start) {
            if used[usize_of(start + i)] {
                let e = (next_data * CLUSTER) | OFLAG_COPIED;
                l2[usize_of(i * 8)..usize_of(i * 8 + 8)].copy_from_slice(&e.to_be_bytes());
                next_data += 1;
            }
        }
        out.write_all(&l2).map_err(w)?;
    }

    let mut buf = vec![0u8; usize_of(CLUSTER)];
    for (c, &u) in used.iter().enumerate() {
        if u {
            copy_cluster(raw, size, c as u64, &mut buf)?;
            out.write_all(&buf).map_err(w)?;
        }
    }
    Ok(host_clusters * CLUSTER)
}
