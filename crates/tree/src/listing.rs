//! [`Listing`]: a sink that writes one text line per entry, for golden files and debugging:
//!
//! ```text
//! d 0755 0:0 1492533000 dev  <docker.io/linuxkit/init:1 init[0]>
//! f 0644 0:0 1492533000 etc/hosts size=160 fnv=…  <… init[0]>
//! l 0777 0:0 1600000000 bin/sh -> busybox  <…>
//! h 0755 0:0 1600000000 bin/ash => bin/busybox  <…>
//! ```
//!
//! File data is hashed (SHA-256 would add a dependency; a 64-bit FNV-1a is enough to notice a
//! change in a golden file and keeps the crate small).

use crate::entry::{Entry, EntryKind, EntrySink, PAX_LOCATION, PAX_SOURCE};
use std::io::{self, Read, Write};

/// Writes a line per entry to `out`.
#[derive(Debug)]
pub struct Listing<W: Write> {
    out: W,
}

impl<W: Write> Listing<W> {
    pub fn new(out: W) -> Self {
        Listing { out }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// FNV-1a, 64 bits.
fn fnv1a(data: &mut dyn Read) -> io::Result<(u64, u64)> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut n = 0u64;
    let mut buf = [0u8; 64 * 1024];
    loop {
        let k = data.read(&mut buf)?;
        if k == 0 {
            return Ok((h, n));
        }
        for &b in &buf[..k] {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        n += k as u64;
    }
}

/// The listing line of an entry (without data), as [`Listing`] writes it.
pub fn describe(entry: &Entry) -> String {
    let (t, extra) = match &entry.kind {
        EntryKind::File { size } => ('f', format!(" size={size}")),
        EntryKind::Dir => ('d', String::new()),
        EntryKind::Symlink { target } => ('l', format!(" -> {target}")),
        EntryKind::HardLink { target } => ('h', format!(" => {target}")),
        EntryKind::Char { major, minor } => ('c', format!(" {major},{minor}")),
        EntryKind::Block { major, minor } => ('b', format!(" {major},{minor}")),
        EntryKind::Fifo => ('p', String::new()),
    };
    let origin = match (entry.pax(PAX_SOURCE), entry.pax(PAX_LOCATION)) {
        (None, None) => String::new(),
        (s, l) => format!("  <{} {}>", s.unwrap_or("-"), l.unwrap_or("-")),
    };
    format!(
        "{t} {:04o} {}:{} {} {}{extra}{origin}",
        entry.mode, entry.uid, entry.gid, entry.mtime.secs, entry.path
    )
}

impl<W: Write> EntrySink for Listing<W> {
    fn add(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        let mut line = describe(entry);
        if let EntryKind::File { .. } = entry.kind {
            let (h, _) = fnv1a(data)?;
            line = match line.find("  <") {
                Some(i) => format!("{} fnv={h:016x}{}", &line[..i], &line[i..]),
                None => format!("{line} fnv={h:016x}"),
            };
        }
        writeln!(self.out, "{line}")
    }
}
