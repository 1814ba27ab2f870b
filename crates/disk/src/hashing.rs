//! A writer that hashes what passes through it: the seed from which disk GUIDs and serials are
//! derived is the hash of the boot payload, computed while it is written once.
//!
//! BLAKE3 rather than SHA-256, on a thread of its own: the seed only has to follow the content,
//! and the payload (a UKI holding the whole initrd) can be a GiB. On one core SHA-256 (with the
//! CPU's SHA instructions) hashes ~1.1 GiB/s and BLAKE3 ~2.5, while a page-cache copy moves
//! ~3 GiB/s; on the hasher thread BLAKE3 keeps up with the copy, so hashing adds only the copy of
//! each 1 MiB handed over.

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Bytes collected before they go to the hasher thread.
const CHUNK: usize = 1 << 20;

#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    pending: Vec<u8>,
    /// Full chunks to the hasher; emptied chunks come back on `spare` to be filled again.
    to_hasher: SyncSender<Vec<u8>>,
    spare: Receiver<Vec<u8>>,
    hasher: JoinHandle<[u8; 32]>,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        // Two chunks in flight at most: the hasher's and the next one, 2 MiB.
        let (to_hasher, chunks) = mpsc::sync_channel::<Vec<u8>>(1);
        let (give_back, spare) = mpsc::sync_channel::<Vec<u8>>(2);
        let hasher = std::thread::spawn(move || {
            let mut h = blake3::Hasher::new();
            for mut chunk in chunks {
                h.update(&chunk);
                chunk.clear();
                let _ = give_back.try_send(chunk);
            }
            *h.finalize().as_bytes()
        });
        HashingWriter {
            inner,
            pending: Vec::with_capacity(CHUNK),
            to_hasher,
            spare,
            hasher,
            len: 0,
        }
    }

    fn hand_over(&mut self) {
        let next = self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.pending, next);
        // The hasher only stops when this writer drops its sender (or panics, which `finish`
        // reports).
        let _ = self.to_hasher.send(full);
    }

    /// The writer, the BLAKE3 hash of everything written and its length.
    pub fn finish(mut self) -> (W, [u8; 32], u64) {
        if !self.pending.is_empty() {
            self.hand_over();
        }
        let HashingWriter { inner, to_hasher, hasher, len, .. } = self;
        drop(to_hasher); // the end of the input
        (inner, hasher.join().expect("the hasher thread panicked"), len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let mut written = &buf[..n];
        while !written.is_empty() {
            let take = written.len().min(CHUNK - self.pending.len());
            self.pending.extend_from_slice(&written[..take]);
            written = &written[take..];
            if self.pending.len() == CHUNK {
                self.hand_over();
            }
        }
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_every_byte_written_in_order() {
        let data = baleen_testkit::noise(3 * CHUNK + 12_345, 5);
        let mut w = HashingWriter::new(Vec::new());
        // Uneven pieces, across chunk boundaries.
        for piece in data.chunks(CHUNK / 3 + 7) {
            w.write_all(piece).unwrap();
        }
        let (out, hash, len) = w.finish();
        assert!(out == data);
        assert_eq!(len, data.len() as u64);
        assert_eq!(&hash, blake3::hash(&data).as_bytes());
        let (_, empty, _) = HashingWriter::new(io::sink()).finish();
        assert_eq!(&empty, blake3::hash(b"").as_bytes());
    }
}
