//! `kernel+initrd` and `tar-kernel-initrd` (LinuxKit's `tarToInitrd` and output functions).
//!
//! [`InitrdWriter`] is an [`EntrySink`]: `boot/kernel` streams to the kernel writer,
//! `boot/cmdline` and `boot/ucode.cpio` are kept (small), the rest of `boot/` is skipped, and
//! every other entry goes, in stream order, into a newc cpio compressed with gzip (all cores)
//! or zstd, padded to 4 bytes at the end. With `prepend_ucode`, the microcode cpio is written
//! to the initrd before the compressed stream, as LinuxKit's `B-initrd.img` has it. One pass,
//! no temp files.
//!
//! Layouts ([`InitrdLayout`]): `Single` is LinuxKit's, one cpio in one compressed stream.
//! `Segmented` (the default) ends the cpio and its compressed stream at each section of the
//! tree ([`EntrySink::section`]) and starts another: a gzip member or zstd frame per section,
//! back to back. Linux unpacks concatenated compressed archives in turn, into one root, in one
//! pass (`unpack_to_rootfs`): a directory an earlier segment wrote exists for the later ones,
//! so a segment writes only the parents no segment before it wrote, as the single cpio would
//! ([`CpioWriter::after`]), and the unpacked tree is the same file for file, mode for mode.
//! Hard links cannot span segments (the kernel forgets its link table at each trailer): the
//! cpio writer has none, it writes them as symlinks. What the layout buys is that a section
//! that did not change can be copied whole from a cache ([`InitrdWriter::splice_segment`])
//! instead of compressed again; [`InitrdWriter::set_tap`] hands the caller a copy of the
//! bytes of each segment as it is written.

use crate::cpio::{CpioWriter, SegmentDirs};
use crate::gzip::ParallelGzip;
use crate::tar::TarWriter;
use baleen_tree::{Entry, EntryKind, EntrySink};
use std::collections::HashSet;
use std::io::{self, Read, Write};

/// How the initrd's cpio is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitrdCompression {
    #[default]
    Gzip,
    Zstd,
}

impl InitrdCompression {
    /// The compressor and its level, as a name: part of what a cached segment is keyed by.
    pub fn with_level(self) -> &'static str {
        match self {
            InitrdCompression::Gzip => "gzip-6",
            InitrdCompression::Zstd => "zstd-3-checksum",
        }
    }
}

/// One compressed stream, or one per section of the tree (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitrdLayout {
    /// LinuxKit's: one cpio, one compressed stream.
    Single,
    /// One cpio and compressed stream per section, concatenated.
    #[default]
    Segmented,
}

#[derive(Debug, Clone, Copy)]
pub struct InitrdOptions {
    pub compression: InitrdCompression,
    /// Worker threads for compression; 0 = every core. The output does not depend on it.
    pub threads: usize,
    /// Write `boot/ucode.cpio` at the start of the initrd (`kernel+initrd`), or keep it apart
    /// (`tar-kernel-initrd`).
    pub prepend_ucode: bool,
    pub layout: InitrdLayout,
}

impl Default for InitrdOptions {
    fn default() -> Self {
        InitrdOptions {
            compression: InitrdCompression::Gzip,
            threads: 0,
            prepend_ucode: true,
            layout: InitrdLayout::default(),
        }
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

/// The initrd's writer, with a copy of what passes to the caller's tap when one is set.
struct Tapped<W: Write> {
    inner: W,
    tap: Option<Box<dyn Write + Send>>,
}

impl<W: Write> Write for Tapped<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(tap) = &mut self.tap {
            tap.write_all(&buf[..n])?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

type Out<I> = Pad4<Tapped<I>>;

enum Compressor<W: Write> {
    Gzip(ParallelGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    fn new(inner: W, opts: &InitrdOptions) -> io::Result<Self> {
        Ok(match opts.compression {
            InitrdCompression::Gzip => Compressor::Gzip(ParallelGzip::new(
                inner,
                flate2::Compression::default(),
                opts.threads,
            )),
            InitrdCompression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(inner, 3)?;
                // zstd's multi-threaded output is the same for any number of workers ≥ 1, but
                // differs from single-threaded mode (0): always use at least one worker. Each
                // worker holds jobs of several MiB, so the default is capped to stay in budget.
                let threads = if opts.threads == 0 {
                    std::thread::available_parallelism().map_or(1, |n| n.get()).min(4)
                } else {
                    opts.threads
                };
                enc.multithread(u32::try_from(threads).unwrap_or(u32::MAX))?;
                enc.include_checksum(true)?;
                Compressor::Zstd(enc)
            }
        })
    }

    /// Ends the compressed stream (a gzip member, a zstd frame).
    fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Gzip(g) => g.finish(),
            Compressor::Zstd(z) => z.finish(),
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
    /// Between segments (or before the first). Until the first compressed byte, data-less
    /// entries wait in `pending` so that the microcode, which the kernel section emits right
    /// after the `boot` directory, can still go first.
    Idle(Out<I>, Vec<Entry>),
    /// Boxed: the compressor's state is a few hundred bytes, the other variants a few words.
    Open(Box<CpioWriter<Compressor<Out<I>>>>),
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

fn failed_earlier() -> io::Error {
    io::Error::other("the initrd writer failed earlier")
}

/// The `kernel+initrd` writer: see the module docs.
pub struct InitrdWriter<K: Write, I: Write> {
    kernel: Tapped<K>,
    kernel_len: u64,
    kernel_seen: bool,
    initrd: Initrd<I>,
    /// Segments written or spliced so far.
    segments: u64,
    /// Directories the finished segments wrote.
    known: HashSet<String>,
    ucode_len: u64,
    cmdline: Vec<u8>,
    ucode: Vec<u8>,
    /// A copy of the microcode written at the start of the initrd.
    prepended_ucode: Vec<u8>,
    opts: InitrdOptions,
}

impl<K: Write, I: Write> std::fmt::Debug for InitrdWriter<K, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitrdWriter")
            .field("opts", &self.opts)
            .field("kernel_len", &self.kernel_len)
            .field("segments", &self.segments)
            .finish()
    }
}

impl<K: Write, I: Write> InitrdWriter<K, I> {
    pub fn new(kernel: K, initrd: I, opts: InitrdOptions) -> Self {
        let out = Pad4 { inner: Tapped { inner: initrd, tap: None }, n: 0 };
        InitrdWriter {
            kernel: Tapped { inner: kernel, tap: None },
            kernel_len: 0,
            kernel_seen: false,
            initrd: Initrd::Idle(out, Vec::new()),
            segments: 0,
            known: HashSet::new(),
            ucode_len: 0,
            cmdline: Vec::new(),
            ucode: Vec::new(),
            prepended_ucode: Vec::new(),
            opts,
        }
    }

    /// Sets where a copy of the kernel goes as `boot/kernel` streams past; returns the previous.
    pub fn set_kernel_tap(
        &mut self,
        tap: Option<Box<dyn Write + Send>>,
    ) -> Option<Box<dyn Write + Send>> {
        std::mem::replace(&mut self.kernel.tap, tap)
    }

    /// The command line and the microcode seen so far (prepended or kept apart).
    pub fn boot_files(&self) -> (&[u8], &[u8]) {
        let ucode = if self.opts.prepend_ucode { &self.prepended_ucode } else { &self.ucode };
        (&self.cmdline, ucode)
    }

    /// The open segment's cpio, opening one (a new compressed stream) when none is.
    fn cpio(&mut self) -> io::Result<&mut CpioWriter<Compressor<Out<I>>>> {
        if let Initrd::Idle(..) = self.initrd {
            let Initrd::Idle(out, pending) = std::mem::replace(&mut self.initrd, Initrd::Poisoned)
            else {
                unreachable!("checked just above")
            };
            let known = std::mem::take(&mut self.known);
            let mut cpio = CpioWriter::after(Compressor::new(out, &self.opts)?, known);
            for e in &pending {
                cpio.add(e, &mut io::empty())?;
            }
            self.segments += 1;
            self.initrd = Initrd::Open(Box::new(cpio));
        }
        match &mut self.initrd {
            Initrd::Open(c) => Ok(c),
            _ => Err(failed_earlier()),
        }
    }

    /// Segmented layout: ends the open segment (its cpio trailer and compressed stream) and
    /// says which directories it relied on and wrote; an empty section writes nothing. The
    /// single layout ignores it (and says nothing).
    pub fn end_segment(&mut self) -> io::Result<SegmentDirs> {
        if self.opts.layout == InitrdLayout::Single {
            return Ok(SegmentDirs::default());
        }
        if matches!(&self.initrd, Initrd::Idle(_, pending) if !pending.is_empty()) {
            self.cpio()?;
        }
        match std::mem::replace(&mut self.initrd, Initrd::Poisoned) {
            Initrd::Open(cpio) => {
                let (compressor, known, dirs) = cpio.finish_segment()?;
                self.known = known;
                self.initrd = Initrd::Idle(compressor.finish()?, Vec::new());
                Ok(dirs)
            }
            idle @ Initrd::Idle(..) => {
                self.initrd = idle;
                Ok(SegmentDirs::default())
            }
            Initrd::Poisoned => Err(failed_earlier()),
        }
    }

    /// The directories the segments so far wrote (segmented layout): a cached segment fits
    /// after them when [`SegmentDirs::fits`] says so.
    pub fn known_dirs(&self) -> &HashSet<String> {
        &self.known
    }

    /// Sets where a copy of the bytes of the segments written from now on goes (`None`: no
    /// copy), between segments only; returns the previous tap.
    pub fn set_tap(
        &mut self,
        tap: Option<Box<dyn Write + Send>>,
    ) -> io::Result<Option<Box<dyn Write + Send>>> {
        match &mut self.initrd {
            Initrd::Idle(out, _) => Ok(std::mem::replace(&mut out.inner.tap, tap)),
            _ => Err(io::Error::other("the initrd's tap can only change between segments")),
        }
    }

    /// Segmented layout, between segments: copies a segment written earlier (a cached one,
    /// checked by the caller) into the initrd, `dirs` being what it recorded; returns the
    /// bytes copied. The caller checked that `dirs` fits [`Self::known_dirs`].
    pub fn splice_segment(&mut self, data: &mut dyn Read, dirs: &SegmentDirs) -> io::Result<u64> {
        if self.opts.layout == InitrdLayout::Single {
            return Err(io::Error::other("a single-stream initrd has no segments to splice"));
        }
        if !dirs.fits(&self.known) {
            return Err(io::Error::other(
                "the segment was written after other directories than the initrd has here",
            ));
        }
        let Initrd::Idle(out, pending) = &mut self.initrd else {
            return Err(io::Error::other("a segment can only be spliced between segments"));
        };
        if !pending.is_empty() {
            return Err(io::Error::other("entries wait for a segment before the spliced one"));
        }
        let n = io::copy(data, out)?;
        self.segments += 1;
        self.known.extend(dirs.defined.iter().cloned());
        Ok(n)
    }

    /// Ends the cpio (an empty tree still gives a cpio with its trailer, as LinuxKit's does),
    /// the compressed stream and its padding.
    pub fn finish(mut self) -> io::Result<InitrdOutput<K, I>> {
        self.end_segment()?;
        if self.segments == 0 || self.opts.layout == InitrdLayout::Single {
            self.cpio()?;
        }
        let out = match std::mem::replace(&mut self.initrd, Initrd::Poisoned) {
            Initrd::Open(cpio) => cpio.finish()?.finish()?,
            Initrd::Idle(out, _) => out,
            Initrd::Poisoned => return Err(failed_earlier()),
        };
        let (tapped, n) = out.finish()?;
        self.kernel.flush()?;
        Ok(InitrdOutput {
            kernel: self.kernel.inner,
            kernel_len: self.kernel_len,
            initrd: tapped.inner,
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
                    // Straight to the initrd: not counted for the compressed stream's padding,
                    // and not part of any segment.
                    Initrd::Idle(out, _) if self.segments == 0 => {
                        out.inner.inner.write_all(&ucode)?;
                        self.ucode_len += ucode.len() as u64;
                        self.prepended_ucode = ucode;
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
                Initrd::Idle(_, pending)
                    if self.segments == 0 && entry.size() == 0 && pending.len() < 4096 =>
                {
                    pending.push(entry.clone());
                    Ok(())
                }
                _ => self.cpio()?.add(entry, data),
            },
        }
    }

    fn section(&mut self, _name: &str) -> io::Result<()> {
        self.end_segment().map(|_| ())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A tap the test keeps a handle on.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn file(path: &str, data: &'static [u8]) -> (Entry, &'static [u8]) {
        (Entry::new(path, EntryKind::File { size: data.len() as u64 }, 0o644), data)
    }

    type Sections = Vec<(&'static str, Vec<(Entry, &'static [u8])>)>;

    fn sections() -> Sections {
        vec![
            (
                "init",
                vec![(Entry::new("etc", EntryKind::Dir, 0o700), &b""[..]), file("init", b"#!")],
            ),
            ("services[0]", vec![file("containers/services/a/config.json", b"{}")]),
            ("files", vec![file("etc/motd", b"hi"), file("usr/x", b"x")]),
        ]
    }

    fn writer() -> InitrdWriter<Vec<u8>, Vec<u8>> {
        let opts = InitrdOptions { threads: 1, ..Default::default() };
        InitrdWriter::new(Vec::new(), Vec::new(), opts)
    }

    fn write(w: &mut InitrdWriter<Vec<u8>, Vec<u8>>, entries: &[(Entry, &'static [u8])]) {
        for (e, data) in entries {
            w.add(e, &mut &data[..]).unwrap();
        }
    }

    #[test]
    fn a_spliced_segment_gives_the_bytes_of_writing_it_again() {
        let mut w = writer();
        let mut taken = (Shared::default(), SegmentDirs::default());
        for (name, entries) in sections() {
            w.section(name).unwrap();
            if name == "services[0]" {
                w.set_tap(Some(Box::new(taken.0.clone()))).unwrap();
            }
            write(&mut w, &entries);
            if name == "services[0]" {
                taken.1 = w.end_segment().unwrap();
                w.set_tap(None).unwrap();
            }
        }
        let whole = w.finish().unwrap().initrd;
        assert!(!taken.0 .0.lock().unwrap().is_empty());
        // `containers` and its children were missing: the segment wrote them.
        assert_eq!(taken.1.synthesized.len(), 3, "{:?}", taken.1);

        let mut w = writer();
        for (name, entries) in sections() {
            w.section(name).unwrap();
            if name == "services[0]" {
                assert!(taken.1.fits(w.known_dirs()));
                w.splice_segment(&mut &taken.0 .0.lock().unwrap()[..], &taken.1).unwrap();
            } else {
                write(&mut w, &entries);
            }
        }
        assert!(w.finish().unwrap().initrd == whole, "splicing changed the initrd");
    }

    #[test]
    fn a_later_segment_does_not_write_an_earlier_directory_again() {
        let mut w = writer();
        for (name, entries) in sections() {
            w.section(name).unwrap();
            write(&mut w, &entries);
        }
        let initrd = w.finish().unwrap().initrd;
        let members = crate::compare::initrd_members(&initrd[..]).unwrap();
        let etc: Vec<_> = members.iter().filter(|m| m.path == "etc").collect();
        assert_eq!(etc.len(), 1, "etc (0700) written again by `files`: {members:?}");
        assert_eq!(etc[0].mode, 0o700);
    }

    #[test]
    fn a_segment_does_not_splice_where_it_would_differ() {
        let mut w = writer();
        let dirs = SegmentDirs { relied: ["etc".to_string()].into(), ..Default::default() };
        let err = w.splice_segment(&mut &b"x"[..], &dirs).unwrap_err();
        assert!(err.to_string().contains("other directories"), "{err}");
    }
}
