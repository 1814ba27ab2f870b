//! A byte pipe between two threads, so that a raw disk can be converted (vmdk, gcp) while it is
//! written instead of going through a scratch file: 1 MiB chunks through a bounded channel, the
//! emptied ones sent back for reuse (a fresh 1 MiB buffer is a fresh mapping, faulted in page by
//! page).
//!
//! The writer's end fails with `BrokenPipe` once the reader's end is gone; the reader sees the
//! end of the stream once the writer's end is dropped, so a writer that stops early shows as a
//! short stream, and the caller reports the writer's own error. The writer must `flush` at the
//! end: what it buffered is sent then, not when it is dropped.

use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

const CHUNK: usize = 1 << 20;

/// The two ends of a pipe holding at most `chunks` MiB in flight.
pub fn pipe(chunks: usize) -> (PipeWriter, PipeReader) {
    let (tx, rx) = sync_channel(chunks);
    let (spare_tx, spare_rx) = sync_channel(chunks + 2);
    let writer = PipeWriter { tx, spares: spare_rx, buf: Vec::with_capacity(CHUNK) };
    (writer, PipeReader { rx, spares: spare_tx, chunk: Vec::new(), at: 0 })
}

pub struct PipeWriter {
    tx: SyncSender<Vec<u8>>,
    spares: Receiver<Vec<u8>>,
    buf: Vec<u8>,
}

impl PipeWriter {
    fn send(&mut self) -> io::Result<()> {
        let mut next = self.spares.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        next.clear();
        let full = std::mem::replace(&mut self.buf, next);
        self.tx
            .send(full)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the reader stopped"))
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    /// Sends what is buffered: call it once the stream is complete.
    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.send()
    }
}

pub struct PipeReader {
    rx: Receiver<Vec<u8>>,
    spares: SyncSender<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    let done = std::mem::replace(&mut self.chunk, chunk);
                    self.at = 0;
                    // Back to the writer; dropped when it has spares enough or is gone.
                    if done.capacity() >= CHUNK {
                        let _ = self.spares.try_send(done);
                    }
                }
                Err(_) => return Ok(0), // the writer's end is gone: end of stream
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_in_order_and_a_dropped_end_shows_on_the_other() {
        let data: Vec<u8> = (0..3 * CHUNK + 12_345).map(|i| (i * 7 % 251) as u8).collect();
        let (mut w, mut r) = pipe(2);
        let back = std::thread::scope(|s| {
            let reader = s.spawn(move || {
                let mut back = Vec::new();
                r.read_to_end(&mut back).unwrap();
                back
            });
            for piece in data.chunks(5000) {
                w.write_all(piece).unwrap();
            }
            w.flush().unwrap();
            drop(w);
            reader.join().unwrap()
        });
        assert!(back == data);

        let (mut w, r) = pipe(1);
        drop(r);
        let e = w.write_all(&data).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }
}
