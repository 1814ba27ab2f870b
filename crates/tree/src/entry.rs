//! The entry model: one filesystem object of the image tree, and the sink that consumes them.

use std::io::{self, Read};

/// LinuxKit's fixed epoch for every synthesized entry: 2017-04-18T16:30:00Z. The one
/// declaration: every format that writes a fixed date (ISO, FAT, VHD, the SBOM) derives it.
pub const DEFAULT_MTIME: i64 = 1_492_533_000;

/// A Unix time as a UTC calendar date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl Civil {
    /// `secs` since the Unix epoch in the proleptic Gregorian calendar (Howard Hinnant's
    /// civil-from-days).
    pub const fn of(secs: i64) -> Civil {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
        // Every field below is in range by construction (1–31, 1–12, 0–23, 0–59).
        Civil {
            year,
            month: month as u8,
            day: day as u8,
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
        }
    }
}

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

#[cfg(test)]
mod civil_tests {
    use super::*;

    #[test]
    fn the_epoch_is_2017_04_18_16_30_utc() {
        let c = Civil::of(DEFAULT_MTIME);
        assert_eq!((c.year, c.month, c.day, c.hour, c.minute, c.second), (2017, 4, 18, 16, 30, 0));
        let leap = Civil::of(951_825_600); // 2000-02-29T12:00:00Z
        assert_eq!((leap.year, leap.month, leap.day, leap.hour), (2000, 2, 29, 12));
        let before = Civil::of(-1); // 1969-12-31T23:59:59Z
        assert_eq!((before.year, before.month, before.day, before.second), (1969, 12, 31, 59));
    }
}
