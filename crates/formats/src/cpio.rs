//! A newc (`070701`) cpio writer with the header choices of the Go package LinuxKit uses
//! (github.com/surma/gocpio), so an initrd's cpio matches LinuxKit's byte for byte:
//! inode numbers count up from 721 (the trailer takes the next one), nlink is 2 for
//! directories and 1 otherwise, the device is 3:1 on every entry, the check field is 0, names
//! and data are padded to 4 bytes, and the archive ends with `TRAILER!!!` padded to 512 bytes.
//! Hard links become relative symlinks (LinuxKit's choice: a cpio hard link repeats the data).
//!
//! One addition to LinuxKit: a directory that an entry needs but the stream never named is
//! written first (0755, root, the fixed epoch). The kernel's initramfs unpacker creates no
//! missing parents, so without it such a file would silently not exist at boot. Streams that
//! name every directory (every image from a Dockerfile or a Debian package does) are written
//! exactly as before.
//!
//! A segment of a segmented initrd ([`CpioWriter::after`]) is an archive of its own written
//! after others the kernel has already unpacked: the directories they wrote exist, so it
//! writes a parent only when no earlier segment wrote it either, exactly the directories the
//! one-archive initrd would have written there, with the same metadata. [`SegmentDirs`] says
//! which earlier directories it relied on and which it wrote, so that a cached copy is reused
//! only where it comes out byte for byte the same.
//!
//! Non-goals: reading cpio, the old binary or `070702` (crc) formats.

use crate::num::usize_of;
use baleen_tree::{Entry, EntryKind, EntrySink, Mtime, DEFAULT_MTIME};
use std::collections::{BTreeSet, HashSet};
use std::io::{self, Read, Write};

const FIRST_INODE: u64 = 721;

const S_IFIFO: u32 = 0o010000;
const S_IFCHR: u32 = 0o020000;
const S_IFDIR: u32 = 0o040000;
const S_IFBLK: u32 = 0o060000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

#[derive(Debug)]
pub struct CpioWriter<W: Write> {
    out: W,
    written: u64,
    inode: u64,
    /// Directories written so far (memory is O(directories), not O(entries)).
    dirs: HashSet<String>,
    /// Directories earlier segments wrote (empty for a whole archive).
    known: HashSet<String>,
    relied: BTreeSet<String>,
    synthesized: BTreeSet<String>,
}

/// How a segment's bytes depend on the directories earlier segments wrote, and what it adds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentDirs {
    /// Directories of earlier segments that the segment's entries stood on.
    pub relied: BTreeSet<String>,
    /// Parents the segment wrote because no segment before it had (0755, root, the epoch).
    pub synthesized: BTreeSet<String>,
    /// Every directory the segment wrote, the synthesized ones included.
    pub defined: BTreeSet<String>,
}

impl SegmentDirs {
    /// Whether the segment, written after segments that wrote the directories `known`, comes
    /// out with the same bytes as when these were recorded: it stands on the same directories
    /// and has to synthesize the same ones (the walk up from each entry stops at the same
    /// place).
    pub fn fits(&self, known: &HashSet<String>) -> bool {
        self.relied.iter().all(|d| known.contains(d))
            && !self.synthesized.iter().any(|d| known.contains(d))
    }
}

/// Go's `filepath.Rel(base, target)` for two clean relative paths.
pub fn relative_path(base: &str, target: &str) -> String {
    let split = |s: &str| -> Vec<String> {
        s.split('/').filter(|p| !p.is_empty() && *p != ".").map(String::from).collect()
    };
    let (b, t) = (split(base), split(target));
    let common = b.iter().zip(&t).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".to_string(); b.len() - common];
    parts.extend(t[common..].iter().cloned());
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

impl<W: Write> CpioWriter<W> {
    pub fn new(out: W) -> Self {
        Self::after(out, HashSet::new())
    }

    /// A segment written after segments that wrote the directories `known` (see the module
    /// docs); [`CpioWriter::finish_segment`] gives them back with this segment's own.
    pub fn after(out: W, known: HashSet<String>) -> Self {
        CpioWriter {
            out,
            written: 0,
            inode: FIRST_INODE,
            dirs: HashSet::new(),
            known,
            relied: BTreeSet::new(),
            synthesized: BTreeSet::new(),
        }
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self, to: u64) -> io::Result<()> {
        let n = usize_of((to - self.written % to) % to);
        self.put(&vec![0u8; n])
    }

    #[allow(clippy::too_many_arguments)]
    fn header(
        &mut self,
        name: &str,
        mode: u32,
        uid: u64,
        gid: u64,
        nlink: u32,
        mtime: i64,
        size: u64,
        rdev: (u32, u32),
    ) -> io::Result<()> {
        self.pad(4)?;
        // Fields are 8 hex digits. Ids and sizes past 32 bits cannot be said and are refused
        // (cutting them would give the file another owner or length); times are clamped.
        let field = |what: &str, v: u64| {
            u32::try_from(v).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("entry {name:?}: {what} {v} does not fit a newc cpio's 32 bits"),
                )
            })
        };
        let (uid, gid, size) = (field("uid", uid)?, field("gid", gid)?, field("size", size)?);
        let mtime = u32::try_from(mtime.max(0)).unwrap_or(u32::MAX);
        // Inode numbers only tell entries apart; past 2^32 entries they wrap, as in cpio(1).
        #[allow(clippy::cast_possible_truncation)]
        let inode = self.inode as u32;
        let h = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            inode,
            mode,
            uid,
            gid,
            nlink,
            mtime,
            size,
            3,
            1,
            rdev.0,
            rdev.1,
            name.len() + 1,
            0
        );
        self.put(h.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.inode += 1;
        self.pad(4)
    }

    /// Writes each ancestor directory of `path` that has not been written yet. A directory in
    /// `dirs` had its own ancestors written before it, so the walk goes up only as far as the
    /// nearest written one: one lookup per entry in the usual stream that names its directories
    /// first, not one per ancestor (which made deep nesting cubic).
    fn parents(&mut self, path: &str) -> io::Result<()> {
        let mut missing = Vec::new();
        let mut dir = path;
        while let Some(i) = dir.rfind('/') {
            dir = &dir[..i];
            if dir.is_empty() || dir == "." || self.dirs.contains(dir) {
                break;
            }
            if self.known.contains(dir) {
                self.relied.insert(dir.to_string());
                break;
            }
            missing.push(dir);
        }
        for dir in missing.into_iter().rev() {
            self.synthesized.insert(dir.to_string());
            let e = Entry {
                mtime: Mtime { secs: DEFAULT_MTIME, nanos: 0 },
                ..Entry::new(dir, EntryKind::Dir, 0o755)
            };
            self.add(&e, &mut io::empty())?;
        }
        Ok(())
    }

    /// Writes the trailer, pads to 512 bytes and returns the writer.
    pub fn finish(self) -> io::Result<W> {
        self.finish_segment().map(|(out, _, _)| out)
    }

    /// [`CpioWriter::finish`] for a segment: also the directories known after it (those of
    /// earlier segments and its own) and what it relied on and wrote.
    pub fn finish_segment(mut self) -> io::Result<(W, HashSet<String>, SegmentDirs)> {
        self.header("TRAILER!!!", 0, 0, 0, 1, 0, 0, (0, 0))?;
        self.pad(512)?;
        self.out.flush()?;
        let defined: BTreeSet<String> = self.dirs.into_iter().collect();
        let mut known = self.known;
        known.extend(defined.iter().cloned());
        let dirs = SegmentDirs { relied: self.relied, synthesized: self.synthesized, defined };
        Ok((self.out, known, dirs))
    }
}

impl<W: Write> EntrySink for CpioWriter<W> {
    fn add(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        let path = entry.path.trim_end_matches('/');
        self.parents(path)?;
        if matches!(entry.kind, EntryKind::Dir) {
            self.dirs.insert(path.to_string());
        }
        let perm = entry.perm();
        let (ifmt, nlink, rdev) = match &entry.kind {
            EntryKind::File { .. } => (S_IFREG, 1, (0, 0)),
            EntryKind::Dir => (S_IFDIR, 2, (0, 0)),
            EntryKind::Symlink { .. } | EntryKind::HardLink { .. } => (S_IFLNK, 1, (0, 0)),
            EntryKind::Char { major, minor } => (S_IFCHR, 1, (*major, *minor)),
            EntryKind::Block { major, minor } => (S_IFBLK, 1, (*major, *minor)),
            EntryKind::Fifo => (S_IFIFO, 1, (0, 0)),
        };
        let link = match &entry.kind {
            EntryKind::Symlink { target } => Some(target.clone()),
            EntryKind::HardLink { target } => {
                let dir = entry.path.rfind('/').map_or("", |i| &entry.path[..i]);
                Some(relative_path(dir, target))
            }
            _ => None,
        };
        if entry.size() > u64::from(u32::MAX) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "entry {:?}: {} bytes do not fit a newc cpio (4 GiB limit)",
                    entry.path,
                    entry.size()
                ),
            ));
        }
        let size = link.as_ref().map_or(entry.size(), |l| l.len() as u64);
        self.header(
            &entry.path,
            ifmt | perm,
            entry.uid,
            entry.gid,
            nlink,
            entry.mtime.secs,
            size,
            rdev,
        )?;
        if let Some(l) = link {
            return self.put(l.as_bytes());
        }
        let want = entry.size();
        if want > 0 {
            let mut counted = Counted { inner: &mut self.out, n: 0 };
            io::copy(&mut data.take(want), &mut counted)?;
            let n = counted.n;
            self.written += n;
            if n != want {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("entry {:?}: {want} bytes announced, {n} supplied", entry.path),
                ));
            }
        }
        Ok(())
    }
}

struct Counted<'a, W: Write> {
    inner: &'a mut W,
    n: u64,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names in a newc archive, in order.
    fn names(cpio: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 110 <= cpio.len() && &cpio[at..at + 6] == b"070701" {
            let field = |i: usize| {
                let s = std::str::from_utf8(&cpio[at + 6 + i * 8..at + 14 + i * 8]).unwrap();
                usize::from_str_radix(s, 16).unwrap()
            };
            let (size, namesize) = (field(6), field(11));
            let name = String::from_utf8(cpio[at + 110..at + 110 + namesize - 1].to_vec()).unwrap();
            let data = (at + 110 + namesize).div_ceil(4) * 4;
            at = (data + size).div_ceil(4) * 4;
            if name == "TRAILER!!!" {
                break;
            }
            out.push(name);
        }
        out
    }

    #[test]
    fn missing_parent_directories_are_written_once_before_their_children() {
        let mut w = CpioWriter::new(Vec::new());
        let f = |p: &str| Entry::new(p, EntryKind::File { size: 0 }, 0o644);
        w.add(&f("lib/modules/6.1/a.ko"), &mut io::empty()).unwrap();
        w.add(&f("lib/modules/6.1/b.ko"), &mut io::empty()).unwrap();
        w.add(&Entry::new("bin", EntryKind::Dir, 0o700), &mut io::empty()).unwrap();
        w.add(&f("bin/sh"), &mut io::empty()).unwrap();
        w.add(&f("bin/x/y/z"), &mut io::empty()).unwrap();
        let names = names(&w.finish().unwrap());
        assert_eq!(
            names,
            [
                "lib",
                "lib/modules",
                "lib/modules/6.1",
                "lib/modules/6.1/a.ko",
                "lib/modules/6.1/b.ko",
                "bin",
                "bin/sh",
                "bin/x",
                "bin/x/y",
                "bin/x/y/z"
            ]
        );
    }

    #[test]
    fn a_segment_writes_only_the_parents_no_earlier_segment_wrote() {
        let f = |p: &str| Entry::new(p, EntryKind::File { size: 0 }, 0o644);
        let mut first = CpioWriter::new(Vec::new());
        first.add(&Entry::new("etc", EntryKind::Dir, 0o700), &mut io::empty()).unwrap();
        first.add(&f("lib/a"), &mut io::empty()).unwrap();
        let (_, known, dirs) = first.finish_segment().unwrap();
        assert_eq!(dirs.synthesized.iter().collect::<Vec<_>>(), ["lib"]);
        let mut second = CpioWriter::after(Vec::new(), known.clone());
        second.add(&f("etc/motd"), &mut io::empty()).unwrap();
        second.add(&f("usr/bin/x"), &mut io::empty()).unwrap();
        let (out, _, dirs) = second.finish_segment().unwrap();
        // `etc` (0700) is not written again as 0755: the kernel would chmod it.
        assert_eq!(names(&out), ["etc/motd", "usr", "usr/bin", "usr/bin/x"]);
        assert_eq!(dirs.relied.iter().collect::<Vec<_>>(), ["etc"]);
        assert_eq!(dirs.synthesized.iter().collect::<Vec<_>>(), ["usr", "usr/bin"]);
        assert!(dirs.fits(&known));
        let mut without_etc = known.clone();
        without_etc.remove("etc");
        assert!(!dirs.fits(&without_etc), "it would have to write etc itself");
        let mut with_usr = known;
        with_usr.insert("usr".into());
        assert!(!dirs.fits(&with_usr), "it would not write usr");
    }

    #[test]
    fn relative_paths_match_go_filepath_rel() {
        assert_eq!(relative_path("bin", "bin/busybox"), "busybox");
        assert_eq!(relative_path("usr/bin", "bin/busybox"), "../../bin/busybox");
        assert_eq!(relative_path("", "bin/busybox"), "bin/busybox");
        assert_eq!(relative_path("a/b", "a/c/d"), "../c/d");
    }

    /// Issue 23: the header took `uid as u32` and `gid as u32`, so an owner id past 32 bits
    /// (a PAX tar can carry one) went into the initrd wrapped, as another user.
    #[test]
    fn an_owner_id_past_32_bits_is_refused_not_wrapped() {
        let big = (1u64 << 32) + 7;
        let mut w = CpioWriter::new(Vec::new());
        let e = Entry { uid: big, ..Entry::new("a", EntryKind::File { size: 0 }, 0o644) };
        let err = w.add(&e, &mut &b""[..]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("\"a\"") && err.to_string().contains("uid"), "{err}");
        let e = Entry { gid: big, ..Entry::new("b", EntryKind::Dir, 0o755) };
        assert!(w.add(&e, &mut &b""[..]).is_err());
        let e = Entry { uid: u64::from(u32::MAX), ..Entry::new("c", EntryKind::Dir, 0o755) };
        w.add(&e, &mut &b""[..]).unwrap();
    }

    #[test]
    fn header_layout_and_trailer() {
        let mut w = CpioWriter::new(Vec::new());
        let e = Entry::new("a", EntryKind::File { size: 3 }, 0o644);
        w.add(&e, &mut &b"xyz"[..]).unwrap();
        let out = w.finish().unwrap();
        let head = std::str::from_utf8(&out[..110]).unwrap();
        assert_eq!(&head[..6], "070701");
        assert_eq!(&head[6..14], "000002d1"); // inode 721
        assert_eq!(&head[14..22], "000081a4"); // regular 0644
        assert_eq!(&head[38..46], "00000001"); // nlink
        assert_eq!(&head[62..78], "0000000300000001"); // dev 3:1
        assert_eq!(&out[110..112], b"a\0");
        assert_eq!(&out[112..115], b"xyz"); // 112 is 4-aligned
        assert_eq!(out.len() % 512, 0);
        let trailer = std::str::from_utf8(&out[116..226]).unwrap();
        assert_eq!(&trailer[6..14], "000002d2");
        assert_eq!(&out[226..237], b"TRAILER!!!\0");
    }
}
