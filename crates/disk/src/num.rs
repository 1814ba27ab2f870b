//! Conversions between `u64` sizes and `usize` lengths, checked once here.
//!
//! Byte counts are `u64` (files and disks outgrow 4 GiB), buffers are indexed by `usize`. baleen
//! builds only for 64-bit targets (the assertion below stops a 32-bit build), where the two have
//! the same width: a `u64` that indexes or sizes a buffer in memory converts without loss.

const _: () = assert!(usize::BITS == u64::BITS, "baleen-disk assumes 64-bit usize");

/// `n` as a `usize`: lossless, `usize` is 64 bits wide (asserted above).
#[allow(clippy::cast_possible_truncation)]
pub(crate) const fn usize_of(n: u64) -> usize {
    n as usize
}
