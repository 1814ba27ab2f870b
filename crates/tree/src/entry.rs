//! The entry model: one filesystem object of the image tree, and the sink that consumes them.

use std::io::{self, Read};

/// LinuxKit's fixed epoch for every synthesized entry: 2017-04-18T16:30:00Z.
pub const DEFAULT_MTIME: i64 = 1_492_533_000;

/// PAX record naming where an entry came from (an image reference, `linuxkit.files`, ...).
pub const PAX_SOURCE: &str = "LINUXKIT.source";
/// PAX record naming the YAML location of an entry's origin (`kernel`, `init[0]`, `files[2]`, ...).
pub const PAX_LOCATION: &str = "LINUXKIT.location";

/// A modification time with the sub-second part that PAX headers can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Mtime {
    pub secs: i64,
    pub nanos: u32,
}

impl Mtime {
    pub const fn secs(secs: i64) -> Self {
        Mtime { secs, nanos: 0 }
    }
}

/// What kind of object an entry is. Paths in link targets are kept as the image wrote them for
/// symlinks (they are data), and are root-relative for hard links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File {
        size: u64,
    },
    Dir,
    Symlink {
        target: String,
    },
    /// Target is a path relative to the tree root, without a leading `/`.
    HardLink {
        target: String,
    },
    Char {
        major: u32,
        minor: u32,
    },
    Block {
        major: u32,
        minor: u32,
    },
    Fifo,
}

/// One entry of the image tree.
///
/// `path` is relative to the root, has no leading `/`, no trailing `/`, and no `.`/`..`
/// components when it came from an image layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: EntryKind,
    /// The tar mode field: permission bits plus setuid/setgid/sticky, and, for entries from
    /// images whose layers carry them (Docker's classic builder), file-type bits such as
    /// `0o100000`, kept so the tar matches LinuxKit's. The type is in `kind`; use
    /// [`Entry::perm`] for the permissions.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: String,
    pub gname: String,
    pub mtime: Mtime,
    /// Extra PAX records (xattrs, `LINUXKIT.*`, `atime`/`ctime`), in the order they were set;
    /// writers sort them. Records describing header fields (path, size, mtime, ...) never appear.
    pub pax: Vec<(String, String)>,
}

impl Entry {
    /// A synthesized entry: root-owned, at [`DEFAULT_MTIME`], no PAX records.
    pub fn new(path: impl Into<String>, kind: EntryKind, mode: u32) -> Self {
        Entry {
            path: path.into(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            uname: String::new(),
            gname: String::new(),
            mtime: Mtime::secs(DEFAULT_MTIME),
            pax: Vec::new(),
        }
    }

    /// Permission bits with setuid/setgid/sticky: `mode & 0o7777`.
    pub fn perm(&self) -> u32 {
        self.mode & 0o7777
    }

    /// Bytes of data that follow the header: only regular files have any.
    pub fn size(&self) -> u64 {
        match self.kind {
            EntryKind::File { size } => size,
            _ => 0,
        }
    }

    /// Sets (or replaces) a PAX record.
    pub fn set_pax(&mut self, key: &str, value: &str) {
        match self.pax.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.pax.push((key.to_string(), value.to_string())),
        }
    }

    pub fn pax(&self, key: &str) -> Option<&str> {
        self.pax.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Sets `LINUXKIT.source` and `LINUXKIT.location`.
    pub fn with_origin(mut self, source: &str, location: &str) -> Self {
        self.set_pax(PAX_SOURCE, source);
        self.set_pax(PAX_LOCATION, location);
        self
    }
}

/// A consumer of the image tree: a format writer, a collector in tests, a filter.
///
/// `add` receives each entry in stream order; `data` yields exactly `entry.size()` bytes (an
/// error from `data` means the source failed and the sink should return it). A sink must not
/// assume paths are unique: LinuxKit's tree re-emits directories and later entries win.
pub trait EntrySink {
    fn add(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()>;

    /// The entries that follow belong to the section `name` of the tree (`kernel`, `init`,
    /// `volume[0]`, `services[2]`, `files`, `sbom`, …), which differs from the previous one's.
    /// A sink that writes sections apart (the segmented initrd) ends the previous section's
    /// part here; a sink that is one stream ignores it, and so does the default.
    fn section(&mut self, name: &str) -> io::Result<()> {
        let _ = name;
        Ok(())
    }
}

impl<S: EntrySink + ?Sized> EntrySink for &mut S {
    fn add(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        (**self).add(entry, data)
    }
    fn section(&mut self, name: &str) -> io::Result<()> {
        (**self).section(name)
    }
}

impl<S: EntrySink + ?Sized> EntrySink for Box<S> {
    fn add(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        (**self).add(entry, data)
    }
    fn section(&mut self, name: &str) -> io::Result<()> {
        (**self).section(name)
    }
}

/// A sink that keeps entries and their data in memory: for tests and small trees only.
#[derive(Debug, Default)]
pub struct Collect {
    pub entries: Vec<(Entry, Vec<u8>)>,
}

impl EntrySink for Collect {
    fn add(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        let mut buf = Vec::new();
        data.read_to_end(&mut buf)?;
        self.entries.push((entry.clone(), buf));
        Ok(())
    }
}

impl Collect {
    pub fn paths(&self) -> Vec<&str> {
        self.entries.iter().map(|(e, _)| e.path.as_str()).collect()
    }

    /// The last entry at `path` (later entries win, as on extraction).
    pub fn get(&self, path: &str) -> Option<&(Entry, Vec<u8>)> {
        self.entries.iter().rev().find(|(e, _)| e.path == path)
    }
}
