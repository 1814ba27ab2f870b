//! Reading a raw disk image by clusters, for the formats that store only what is not zero.

use crate::num::usize_of;
use std::io::{self, Read, Seek, SeekFrom};

#[derive(Debug, thiserror::Error)]
pub enum SparseError {
    #[error("reading the raw disk at offset {offset}")]
    Read { offset: u64, source: io::Error },
    #[error("writing the disk image")]
    Write { source: io::Error },
    #[error("the {format} image's {field} would be {value}, past its 32-bit field: the disk is too large for {format}")]
    FieldTooLarge { format: &'static str, field: &'static str, value: u64 },
}

/// `value` for a 32-bit header or table field of `format`, or the error naming both.
pub fn field32(format: &'static str, field: &'static str, value: u64) -> Result<u32, SparseError> {
    u32::try_from(value).map_err(|_| SparseError::FieldTooLarge { format, field, value })
}

/// One flag per `cluster`-byte cluster of the first `size` bytes of `raw`: does it hold a
/// non-zero byte. Leaves `raw` at an unspecified position.
pub fn nonzero_clusters<R: Read + Seek>(
    raw: &mut R,
    size: u64,
    cluster: u64,
) -> Result<Vec<bool>, SparseError> {
    raw.rewind().map_err(|source| SparseError::Read { offset: 0, source })?;
    let n = size.div_ceil(cluster);
    let mut flags = Vec::with_capacity(usize_of(n));
    let mut buf = vec![0u8; usize_of(cluster)];
    for c in 0..n {
        let len = usize_of(cluster.min(size - c * cluster));
        raw.read_exact(&mut buf[..len])
            .map_err(|source| SparseError::Read { offset: c * cluster, source })?;
        flags.push(!baleen_formats::is_zero(&buf[..len]));
    }
    Ok(flags)
}

/// Reads cluster `c` into `buf` (its length is the cluster size), zero-padded past `size`.
pub fn copy_cluster<R: Read + Seek>(
    raw: &mut R,
    size: u64,
    c: u64,
    buf: &mut [u8],
) -> Result<(), SparseError> {
    let offset = c * buf.len() as u64;
    raw.seek(SeekFrom::Start(offset)).map_err(|source| SparseError::Read { offset, source })?;
    read_cluster(raw, size, c, buf)
}

/// Reads cluster `c` into `buf` from where `raw` stands (its start, in a front-to-back read),
/// zero-padded past `size`.
pub fn read_cluster<R: Read>(
    raw: &mut R,
    size: u64,
    c: u64,
    buf: &mut [u8],
) -> Result<(), SparseError> {
    let offset = c * buf.len() as u64;
    let len = usize_of((buf.len() as u64).min(size - offset));
    raw.read_exact(&mut buf[..len]).map_err(|source| SparseError::Read { offset, source })?;
    buf[len..].fill(0);
    Ok(())
}
