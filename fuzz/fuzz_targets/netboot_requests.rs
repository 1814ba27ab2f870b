//! Any bytes as what a network client sends `baleen serve`: an HTTP request head
//! (`http::parse_request`, then its `Range` against entries of several lengths) and a TFTP
//! packet (`tftp::parse_request`). Nothing panics; a range served lies inside the entry; a
//! block size granted is within 8..=MAX_BLKSIZE.
#![no_main]

use baleen_netboot::http::{parse_range, parse_request, Span};
use baleen_netboot::tftp::{self, MAX_BLKSIZE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = parse_request(data) {
        for len in [0, 1, 512, 1 << 20, u64::MAX] {
            if let Span::Part { start, end } = parse_range(req.range.as_deref(), len) {
                assert!(start <= end && end < len, "{:?} of {len}: {start}..={end}", req.range);
            }
        }
    }
    if let Ok(req) = tftp::parse_request(data) {
        if let Some(n) = req.blksize {
            assert!((8..=MAX_BLKSIZE).contains(&n), "blksize {n}");
        }
    }
});
