//! `kernel+initrd` and `tar-kernel-initrd` (LinuxKit's `tarToInitrd` and output functions).
//!
//! [`InitrdWriter`] is an [`EntrySink`]: `boot/kernel` streams to the kernel writer,
//! `boot/cmdline` and `boot/ucode.cpio` are kept (small), the rest of `boot/` is skipped, and
//! every other entry goes, in stream order, into a newc cpio compressed with gzip (all cores)
//! or zstd, padded to 4 bytes. With `prepend_ucode`, the microcode cpio is written to the initrd
//! before the compressed stream, as LinuxKit's `B-initrd.img` has it. One pass, no temp files.

use crate::cpio::CpioWriter;
use crate::gzip::ParallelGzip;
use crate::tar::TarWriter;
use baleen_tree::{Entry, EntryKind, EntrySink};
use std::io::{self, Read, Write};

/// How the initrd's cpio is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitrdCompression {
    #[default]
    Gzip,
    Zstd,
}

#[derive(Debug, Clone, Copy)]
pub struct InitrdOptions {
    pub compression: InitrdCompression,
    /// Worker threads for compression; 0 = every core. The output does not depend on it.
    pub threads: usize,
    /// Write `boot/ucode.cpio` at the start of the initrd (`kernel+initrd`), or keep it apart
    /// (`tar-kernel-initrd`).
    pub prepend_ucode: bool,
}

impl Default for InitrdOptions {
    fn default() -> Self {
        InitrdOptions { compression: InitrdCompression::Gzip, threads: 0, prepend_ucode: true }
    }
}

/// Counts bytes and pads the stream to a multiple of 4 at the end (LinuxKit's `pad4`).
struct Pad4<W: Write> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Pad4<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Pad4<W> {
    fn finish(mut self) -> io::Result<(W, u64)> {
        let pad = ((4 - self.n % 4) % 4) as usize;
        self.inner.write_all(&[0u8; 3][..pad])?;
        self.inner.flush()?;
        Ok((self.inner, self.n + pad as u64))
    }
}

enum Compressor<W: Write> {
    Gzip(ParallelGzip<Pad4<W>>),
    Zstd(zstd::stream::write::Encoder<'static, Pad4<W>>),
}

impl<W: Write> Compressor<W> {
    fn new(inner: W, opts: &InitrdOptions) -> io::Result<Self> {
        let pad = Pad4 { inner, n: 0 };
        Ok(match opts.compression {
            InitrdCompression::Gzip => Compressor::Gzip(ParallelGzip::new(
                pad,
                flate2::Compression::default(),
                opts.threads,
            )),
            InitrdCompression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(pad, 3)?;
                // zstd's multi-threaded output is the same for any number of workers ≥ 1, but
                // differs from single-threaded mode (0): always use at least one worker. Each
                // worker holds jobs of several MiB, so the default is capped to stay in budget.
                let threads = if opts.threads == 0 {
                    std::thread::available_parallelism().map_or(1, |n| n.get()).min(4)
                } else {
                    opts.threads
                };
                enc.multithread(threads as u32)?;
                enc.include_checksum(true)?;
                Compressor::Zstd(enc)
            }
        })
    }

    fn finish(self) -> io::Result<(W, u64)> {
        match self {
            Compressor::Gzip(g) => g.finish()?.finish(),
            Compressor::Zstd(z) => z.finish()?.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(g) => g.write(buf),
            Compressor::Zstd(z) => z.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Initrd<I: Write> {
    /// Nothing compressed yet; data-less entries wait in `pending` so that the microcode, which
    /// the kernel section emits right after the `boot` directory, can still go first.
    NotStarted(I, Vec<Entry>),
    /// Boxed: the compressor's state is a few hundred bytes, the other variants a few words.
    Started(Box<CpioWriter<Compressor<I>>>),
    Poisoned,
}

/// What an [`InitrdWriter`] produced.
#[derive(Debug)]
pub struct InitrdOutput<K, I> {
    pub kernel: K,
    pub kernel_len: u64,
    pub initrd: I,
    /// Bytes written to the initrd, ucode included when prepended.
    pub initrd_len: u64,
    pub cmdline: Vec<u8>,
    /// The microcode cpio when it was not prepended (empty otherwise or when absent).
    pub ucode: Vec<u8>,
}

/// The `kernel+initrd` writer: see the module docs.
pub struct InitrdWriter<K: Write, I: Write> {
    kernel: K,
    kernel_len: u64,
    kernel_seen: bool,
    initrd: Initrd<I>,
    ucode_len: u64,
    cmdline: Vec<u8>,
    ucode: Vec<u8>,
    opts: InitrdOptions,
}

impl<K: Write, I: Write> std::fmt::Debug for InitrdWriter<K, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitrdWriter")
            .field("opts", &self.opts)
            .field("kernel_len", &self.kernel_len)
            .finish()
    }
}

impl<K: Write, I: Write> InitrdWriter<K, I> {
    pub fn new(kernel: K, initrd: I, opts: InitrdOptions) -> Self {
        InitrdWriter {
            kernel,
            kernel_len: 0,
            kernel_seen: false,
            initrd: Initrd::NotStarted(initrd, Vec::new()),
            ucode_len: 0,
            cmdline: Vec::new(),
            ucode: Vec::new(),
            opts,
        }
    }

    fn cpio(&mut self) -> io::Result<&mut CpioWriter<Compressor<I>>> {
        if let Initrd::NotStarted(..) = self.initrd {
            let Initrd::NotStarted(out, pending) =
                std::mem::replace(&mut self.initrd, Initrd::Poisoned)
            else {
                unreachable!("checked just above")
            };
            let mut cpio = CpioWriter::new(Compressor::new(out, &self.opts)?);
            for e in &pending {
                cpio.add(e, &mut io::empty())?;
            }
            self.initrd = Initrd::Started(Box::new(cpio));
        }
        match &mut self.initrd {
            Initrd::Started(c) => Ok(c),
            _ => Err(io::Error::other("the initrd writer failed earlier")),
        }
    }

    /// Ends the cpio (an empty tree still gives a cpio with its trailer, as LinuxKit's does),
    /// the compressed stream and its padding.
    pub fn finish(mut self) -> io::Result<InitrdOutput<K, I>> {
        self.cpio()?;
        let Initrd::Started(cpio) = self.initrd else {
            return Err(io::Error::other("the initrd writer failed earlier"));
        };
        let (initrd, n) = cpio.finish()?.finish()?;
        self.kernel.flush()?;
        Ok(InitrdOutput {
            kernel: self.kernel,
            kernel_len: self.kernel_len,
            initrd,
            initrd_len: n + self.ucode_len,
            cmdline: self.cmdline,
            ucode: self.ucode,
        })
    }
}

impl<K: Write, I: Write> EntrySink for InitrdWriter<K, I> {
    fn add(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        match entry.path.as_str() {
            "boot/kernel" => {
                // LinuxKit keeps the last one; a stream cannot take back what it wrote.
                if self.kernel_seen {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "boot/kernel appears twice in the tree (a `files` entry at boot/kernel?)",
                    ));
                }
                self.kernel_seen = true;
                self.kernel_len = io::copy(&mut data.take(entry.size()), &mut self.kernel)?;
                Ok(())
            }
            "boot/cmdline" => {
                self.cmdline.clear();
                data.take(entry.size()).read_to_end(&mut self.cmdline).map(|_| ())
            }
            "boot/ucode.cpio" => {
                let mut ucode = Vec::new();
                data.take(entry.size()).read_to_end(&mut ucode)?;
                if !self.opts.prepend_ucode {
                    self.ucode = ucode;
                    return Ok(());
                }
                if self.ucode_len > 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "boot/ucode.cpio appears twice in the tree",
                    ));
                }
                match &mut self.initrd {
                    Initrd::NotStarted(out, _) => {
                        out.write_all(&ucode)?;
                        self.ucode_len += ucode.len() as u64;
                        Ok(())
                    }
                    _ => Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        "boot/ucode.cpio comes after initrd contents in the kernel image; the initrd is written in one pass and the microcode must come first",
                    )),
                }
            }
            p if p.starts_with("boot/") => Ok(()),
            _ => match &mut self.initrd {
                Initrd::NotStarted(_, pending) if entry.size() == 0 && pending.len() < 4096 => {
                    pending.push(entry.clone());
                    Ok(())
                }
                _ => self.cpio()?.add(entry, data),
            },
        }
    }
}

/// Writes `tar-kernel-initrd`'s `B-initrd.tar`: PAX tar with `kernel`, `initrd.img`,
/// `cmdline`, `ucode.cpio` (each only when non-empty), mode 0644, at the fixed epoch.
pub fn write_tar_kernel_initrd<W: Write>(
    out: W,
    kernel: &mut dyn Read,
    kernel_len: u64,
    initrd: &mut dyn Read,
    initrd_len: u64,
    cmdline: &[u8],
    ucode: &[u8],
) -> io::Result<W> {
    let mut tar = TarWriter::new(out);
    let mut put = |name: &str, len: u64, data: &mut dyn Read| -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        tar.add(&Entry::new(name, EntryKind::File { size: len }, 0o644), data)
    };
    put("kernel", kernel_len, kernel)?;
    put("initrd.img", initrd_len, initrd)?;
    put("cmdline", cmdline.len() as u64, &mut &cmdline[..])?;
    put("ucode.cpio", ucode.len() as u64, &mut &ucode[..])?;
    tar.finish()
}
