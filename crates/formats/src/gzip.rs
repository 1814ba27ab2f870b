//! Gzip on all cores, one member, deterministic whatever the thread count.
//!
//! The input is cut into fixed 1 MiB blocks; each is deflated on its own (no shared dictionary,
//! so a block's bytes depend only on its input) and ends with a sync flush, except the last,
//! which finishes the stream. Concatenated, they form one valid deflate stream; each block's
//! CRC-32 is taken on its worker too, and the calling thread combines them in order. Why our
//! own and not `gzp`: we need the output to be identical with 1 and N threads and a fixed header
//! (MTIME 0, OS 255), and it is ~150 lines.
//!
//! Memory: at most `2 × threads` blocks in flight (input and output), so a few MiB.

use crate::compressibility::incompressible;
use crate::num::usize_of;
use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub const BLOCK_SIZE: usize = 1 << 20;

/// The default thread cap: 2 × 8 blocks in flight (in + out) is ~32 MiB, inside the memory
/// budget of a build (150 MB peak) on any machine; past 8 cores deflate rarely keeps up with
/// the layer reading anyway.
pub const MAX_THREADS: usize = 8;

/// The fixed gzip header: deflate, no flags, MTIME 0, XFL 0, OS 255 (unknown, as Go writes).
const HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff];

struct Job {
    data: Vec<u8>,
    last: bool,
    reply: SyncSender<io::Result<Deflated>>,
}

/// A block deflated, with the CRC-32 of its input: workers take both off the calling thread,
/// which combines the CRCs in order (zlib's crc32_combine).
struct Deflated {
    bytes: Vec<u8>,
    crc: Crc,
}

fn deflated(data: &[u8], last: bool, level: Compression) -> io::Result<Deflated> {
    let mut crc = Crc::new();
    crc.update(data);
    Ok(Deflated { bytes: deflate_block(data, last, level)?, crc })
}

/// A block in the output's order: on a worker, done, or the shared block of zeros.
enum Pending {
    Worker(Receiver<io::Result<Deflated>>),
    Ready(Deflated),
    Zeros,
}

/// `data` as deflate stored blocks (RFC 1951 §3.2.4), written here rather than by zlib so that
/// storing runs at copy speed: from a byte boundary (the start of a stream, or after a sync
/// flush or another stored block) each block is one header byte (BFINAL, BTYPE 00, padding),
/// LEN and NLEN, then up to 65535 bytes. The stream stays byte-aligned after it, so no sync
/// flush is needed; `last` sets BFINAL on the last block (an empty one for empty `data`).
pub fn stored_deflate(data: &[u8], last: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 5 * (data.len() / 65535 + 1));
    stored_deflate_into(data, last, &mut out);
    out
}

/// [`stored_deflate`] appended to `out`, for a caller that frames the blocks (saves a copy).
pub fn stored_deflate_into(data: &[u8], last: bool, out: &mut Vec<u8>) {
    out.reserve(data.len() + 5 * (data.len() / 65535 + 1));
    let mut chunks = data.chunks(65535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[u8::from(last), 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let final_block = last && chunks.peek().is_none();
        #[allow(clippy::cast_possible_truncation)] // chunks of at most 65535 bytes
        let len = chunk.len() as u16;
        out.push(u8::from(final_block));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
}

/// Deflates one block on its own; `last` ends the stream, otherwise a sync flush aligns it.
/// An [`incompressible`] block is stored ([`stored_deflate`]), not deflated.
pub fn deflate_block(data: &[u8], last: bool, level: Compression) -> io::Result<Vec<u8>> {
    if incompressible(data) {
        return Ok(stored_deflate(data, last));
    }
    let mut c = Compress::new(level, false);
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    loop {
        let consumed = usize_of(c.total_in());
        let status =
            c.compress_vec(&data[consumed..], &mut out, flush).map_err(io::Error::other)?;
        let done_input = usize_of(c.total_in()) == data.len();
        let room_left = out.len() < out.capacity();
        match status {
            Status::StreamEnd => break,
            _ if !last && done_input && room_left => break,
            _ => out.reserve(64 * 1024),
        }
    }
    Ok(out)
}

/// A `Write` that gzips what it is given onto `inner`.
pub struct ParallelGzip<W: Write> {
    inner: W,
    level: Compression,
    buf: Vec<u8>,
    crc: Crc,
    header_done: bool,
    pending: VecDeque<Pending>,
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    max_pending: usize,
    /// A full block of zeros, deflated once: disk images (gcp's `disk.raw`) are mostly zeros,
    /// and a block's bytes depend only on its input, so the same bytes serve every such block.
    zero_block: Option<Deflated>,
}

impl<W: Write> std::fmt::Debug for ParallelGzip<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParallelGzip").field("threads", &self.workers.len()).finish()
    }
}

impl<W: Write> ParallelGzip<W> {
    /// `threads` = 0 uses every core, up to [`MAX_THREADS`]; 1 compresses on the calling
    /// thread. The bytes do not depend on it.
    pub fn new(inner: W, level: Compression, threads: usize) -> Self {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS)
        } else {
            threads
        };
        let mut workers = Vec::new();
        let mut jobs = None;
        if threads > 1 {
            let (tx, rx) = mpsc::sync_channel::<Job>(threads);
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..threads {
                let rx = Arc::clone(&rx);
                workers.push(std::thread::spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    let _ = job.reply.send(deflated(&job.data, job.last, level));
                }));
            }
            jobs = Some(tx);
        }
        ParallelGzip {
            inner,
            level,
            buf: Vec::with_capacity(BLOCK_SIZE),
            crc: Crc::new(),
            header_done: false,
            pending: VecDeque::new(),
            jobs,
            workers,
            max_pending: threads * 2,
            zero_block: None,
        }
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.header_done {
            self.inner.write_all(&HEADER)?;
            self.header_done = true;
        }
        Ok(())
    }

    fn collect_one(&mut self) -> io::Result<()> {
        let block = match self.pending.pop_front() {
            None => return Ok(()),
            Some(Pending::Worker(rx)) => {
                rx.recv().map_err(|_| io::Error::other("a gzip worker thread died"))??
            }
            Some(Pending::Ready(block)) => block,
            Some(Pending::Zeros) => {
                let zeros = self.zero_block.as_ref().expect("made before it is queued");
                self.crc.combine(&zeros.crc);
                return self.inner.write_all(&zeros.bytes);
            }
        };
        self.crc.combine(&block.crc);
        self.inner.write_all(&block.bytes)
    }

    fn submit(&mut self, last: bool) -> io::Result<()> {
        self.header()?;
        let next = if !last && is_zero(&self.buf) {
            // A full block of zeros: deflated the first time, in order like any block.
            if self.zero_block.is_none() {
                self.zero_block = Some(deflated(&self.buf, false, self.level)?);
            }
            self.buf.clear();
            Pending::Zeros
        } else if let Some(tx) = &self.jobs {
            let (reply, rx) = mpsc::sync_channel(1);
            let cap = if last { 0 } else { BLOCK_SIZE };
            let data = std::mem::replace(&mut self.buf, Vec::with_capacity(cap));
            tx.send(Job { data, last, reply })
                .map_err(|_| io::Error::other("the gzip workers stopped"))?;
            Pending::Worker(rx)
        } else {
            let block = deflated(&self.buf, last, self.level)?;
            self.buf.clear();
            Pending::Ready(block)
        };
        self.pending.push_back(next);
        while self.pending.len() >= self.max_pending {
            self.collect_one()?;
        }
        Ok(())
    }

    /// Compresses what is left, writes the trailer (CRC-32, size mod 2³²) and returns `inner`.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while !self.pending.is_empty() {
            self.collect_one()?;
        }
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
        self.inner.write_all(&trailer)?;
        self.inner.flush()?;
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        let ParallelGzip { inner, .. } = self;
        Ok(inner)
    }
}

/// Whether every byte of `data` is zero, a 4 KiB page at a time, stopping at the first page that
/// holds something, so data is rejected at once.
pub fn is_zero(data: &[u8]) -> bool {
    // Slice equality on bytes is libc's memcmp, fast in any build: a word-folding loop ran at
    // 180 MB/s in a debug build, where the tests push multi-GiB disks through here.
    static PAGE: [u8; 4096] = [0; 4096];
    data.chunks(PAGE.len()).all(|page| page == &PAGE[..page.len()])
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let total = data.len();
        while !data.is_empty() {
            let room = BLOCK_SIZE - self.buf.len();
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == BLOCK_SIZE {
                self.submit(false)?;
            }
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushing mid-stream would change block boundaries and so the bytes: only finish does.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(n: usize) -> Vec<u8> {
        let mut x: u32 = 12345;
        (0..n)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if i % 3 == 0 {
                    (x >> 24) as u8
                } else {
                    b"abcdefgh"[i % 8]
                }
            })
            .collect()
    }

    fn gz(data: &[u8], threads: usize) -> Vec<u8> {
        let mut w = ParallelGzip::new(Vec::new(), Compression::default(), threads);
        for chunk in data.chunks(7777) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn round_trips_and_is_thread_count_independent() {
        let data = sample(2 * BLOCK_SIZE + 12345);
        let one = gz(&data, 1);
        let four = gz(&data, 4);
        assert_eq!(one, four);
        assert_eq!(&one[..10], &HEADER);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&one[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn zero_blocks_give_the_bytes_compressing_them_gives() {
        // Zeros between data, a whole zero block at the end and a partial one: the reused
        // block must be where a compressed one would be, with 1 thread and with several.
        let mut data = sample(BLOCK_SIZE + 7);
        data.extend(vec![0u8; 3 * BLOCK_SIZE]);
        data.extend(sample(5000));
        data.extend(vec![0u8; BLOCK_SIZE + 100]);
        let reference = {
            let mut out = HEADER.to_vec();
            let blocks: Vec<&[u8]> = data.chunks(BLOCK_SIZE).collect();
            let (last, full) = blocks.split_last().unwrap();
            assert!(last.len() < BLOCK_SIZE);
            for b in full {
                out.extend(deflate_block(b, false, Compression::new(6)).unwrap());
            }
            out.extend(deflate_block(last, true, Compression::new(6)).unwrap());
            let mut crc = Crc::new();
            crc.update(&data);
            out.extend(crc.sum().to_le_bytes());
            #[allow(clippy::cast_possible_truncation)] // ISIZE: the length modulo 2^32
            let isize = data.len() as u32;
            out.extend(isize.to_le_bytes());
            out
        };
        for threads in [1, 3] {
            let got = gz(&data, threads);
            assert!(
                got == reference,
                "{threads} threads: {} vs {} bytes, first diff at {:?}",
                got.len(),
                reference.len(),
                got.iter().zip(&reference).position(|(a, b)| a != b)
            );
        }
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&reference[..]).read_to_end(&mut back).unwrap();
        assert!(back == data);
    }

    /// Bytes no deflate can shrink, as a gzip'd initrd or kernel is.
    fn noise(n: usize) -> Vec<u8> {
        baleen_testkit::noise(n, 0x9e37_79b9_7f4a_7c15)
    }

    #[test]
    fn incompressible_blocks_are_stored_and_others_deflated() {
        let n = noise(BLOCK_SIZE);
        assert!(incompressible(&n));
        let stored = deflate_block(&n, false, Compression::best()).unwrap();
        // Stored blocks: 5 bytes of header per ≤ 64 KiB.
        assert_eq!(stored.len(), n.len() + 5 * n.len().div_ceil(65535));
        // Each alone, last or not, inflates back (with zlib's own reader).
        for (data, last) in
            [(&n[..], true), (&n[..70_000], false), (&n[..0], true), (&n[..0], false)]
        {
            let mut d = flate2::Decompress::new(false);
            let mut back = Vec::with_capacity(data.len() + 1);
            let z = stored_deflate(data, last);
            let st = d.decompress_vec(&z, &mut back, flate2::FlushDecompress::Sync).unwrap();
            assert_eq!(back, data, "len {} last {last}", data.len());
            assert_eq!(usize_of(d.total_in()), z.len());
            assert_eq!(st == Status::StreamEnd, last);
        }
        // Mostly-compressible and tiny inputs are deflated as before.
        let text = sample(BLOCK_SIZE);
        assert!(!incompressible(&text));
        assert!(!incompressible(&n[..8000]));
        let mut mixed = n[..BLOCK_SIZE / 2].to_vec();
        mixed.extend(vec![7u8; BLOCK_SIZE / 2]);
        assert!(!incompressible(&mixed), "compressible at the middle and end samples");
        // Text with noise at the start, middle and end (where three samples would look): the
        // other samples see the text, so the block is deflated.
        let mut spotted = sample(BLOCK_SIZE);
        let spot = |d: &mut Vec<u8>, at: usize| d[at..at + 8192].copy_from_slice(&n[..8192]);
        for at in [0, BLOCK_SIZE / 2 - 4096, BLOCK_SIZE - 8192] {
            spot(&mut spotted, at);
        }
        assert!(!incompressible(&spotted), "noise where a few samples look is not enough");
        // A FAT of one contiguous file: sequential u32 cluster numbers, no repeats for LZ77 to
        // find, but skewed bytes that Huffman coding shrinks to ~60 %.
        let fat: Vec<u8> =
            (2..u32::try_from(BLOCK_SIZE).unwrap() / 4 + 2).flat_map(u32::to_le_bytes).collect();
        assert!(!incompressible(&fat), "a FAT table is compressible");
        // Noise repeated every 1000 bytes: each 4 KiB sample sees every byte value about four
        // times over (skewed counts) and long repeats.
        let repeated: Vec<u8> = n[..1000].iter().copied().cycle().take(BLOCK_SIZE).collect();
        assert!(!incompressible(&repeated), "repeats of noise are compressible");
        // Whatever was chosen, the stream round-trips, with 1 thread and with 3.
        let mut data = n.clone();
        data.extend(sample(BLOCK_SIZE + 99));
        data.extend(noise(3 * BLOCK_SIZE / 2));
        let one = gz(&data, 1);
        assert_eq!(one, gz(&data, 3));
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&one[..]).read_to_end(&mut back).unwrap();
        assert!(back == data);
        assert!(one.len() < data.len(), "the text block still shrank: {}", one.len());
    }

    #[test]
    fn is_zero_sees_any_byte_anywhere() {
        assert!(is_zero(&[]) && is_zero(&[0; 10_001]));
        for at in [0, 7, 8, 4095, 4096, 10_000] {
            let mut d = vec![0u8; 10_001];
            d[at] = 1;
            assert!(!is_zero(&d), "a byte at {at}");
        }
    }

    #[test]
    fn empty_input_is_a_valid_gzip() {
        let out = gz(&[], 2);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..]).read_to_end(&mut back).unwrap();
        assert!(back.is_empty());
    }
}
