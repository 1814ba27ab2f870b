//! The bytes inside directory records: ISO 9660 identifiers made from POSIX names, recording
//! dates, and the SUSP / Rock Ridge (RRIP 1.10, `RRIP_1991A`) system-use entries that carry
//! what ISO 9660 cannot: the real name (`NM`), mode, link count and owner (`PX`), device
//! numbers (`PN`), symlink targets (`SL`) and times (`TF`).
//!
//! Non-goals: `RE`/`CL`/`PL` directory relocation (directories deeper than ISO 9660's 8 levels
//! are written where they are: Linux, libisofs and libarchive read them), `RR` (RRIP 1.09
//! only, and Linux stops reading a record's entries at an `RR` without flags), `SF`, `ZF`.

use baleen_tree::Civil;
use std::collections::HashSet;

/// Longest ISO 9660 identifier we write, without `;1` (as `mkisofs -l`).
const MAX_ID: usize = 31;
/// The most bytes of a name or symlink target one `NM`/`SL` entry carries, so that entries
/// stay small enough to pack into a record or a continuation area.
const CHUNK: usize = 120;

pub(super) fn both16(v: u16) -> [u8; 4] {
    let (l, b) = (v.to_le_bytes(), v.to_be_bytes());
    [l[0], l[1], b[0], b[1]]
}

pub(super) fn both32(v: u32) -> [u8; 8] {
    let (l, b) = (v.to_le_bytes(), v.to_be_bytes());
    [l[0], l[1], l[2], l[3], b[0], b[1], b[2], b[3]]
}

/// Unix seconds as a directory-record date (years since 1900, month, day, h, m, s, GMT
/// offset 0), clamped to the 1900–2155 the year byte holds.
pub(super) fn record_date(secs: i64) -> [u8; 7] {
    let c = Civil::of(secs);
    if c.year < 1900 {
        return [0, 1, 1, 0, 0, 0, 0];
    }
    if c.year > 2155 {
        return [255, 12, 31, 23, 59, 59, 0];
    }
    // 0..=255: the years outside 1900..=2155 returned above.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let year = (c.year - 1900) as u8;
    [year, c.month, c.day, c.hour, c.minute, c.second, 0]
}

/// Picks ISO 9660 identifiers (d-characters, `NAME.EXT;1` for files, `NAME` for directories)
/// for the children of one directory, unique within it. Call in a stable order: collisions are
/// resolved by numbering in call order.
#[derive(Debug, Default)]
pub(super) struct Names {
    used: HashSet<Vec<u8>>,
}

impl Names {
    pub(super) fn pick(&mut self, name: &str, dir: bool) -> Vec<u8> {
        let map = |s: &str| -> Vec<u8> {
            s.bytes()
                .map(|b| match b {
                    b'a'..=b'z' => b.to_ascii_uppercase(),
                    b'A'..=b'Z' | b'0'..=b'9' | b'_' => b,
                    _ => b'_',
                })
                .collect()
        };
        let (base, ext) = match name.rfind('.') {
            Some(i) if i > 0 && !dir => (map(&name[..i]), Some(map(&name[i + 1..]))),
            _ => (map(name), None),
        };
        let mut ext = ext.map(|mut e| {
            e.truncate(8);
            e
        });
        let room = match &ext {
            Some(e) => MAX_ID - 1 - e.len(),
            None if dir => MAX_ID,
            None => {
                // A file without an extension is still written `NAME.;1`.
                ext = Some(Vec::new());
                MAX_ID - 1
            }
        };
        let make = |base: &[u8]| -> Vec<u8> {
            let mut id = base.to_vec();
            if let Some(e) = &ext {
                id.push(b'.');
                id.extend_from_slice(e);
            }
            id
        };
        let mut b = base.clone();
        b.truncate(room);
        let mut id = make(&b);
        let mut n = 1u32;
        while self.used.contains(&id) {
            let suffix = format!("_{n}");
            let mut b = base.clone();
            b.truncate(room - suffix.len());
            b.extend_from_slice(suffix.as_bytes());
            id = make(&b);
            n += 1;
        }
        self.used.insert(id.clone());
        if !dir {
            id.extend_from_slice(b";1");
        }
        id
    }
}

/// The ordering of ECMA-119 9.3: by name, then extension, each padded with spaces; as every
/// d-character sorts after a space, that is the byte order of the two parts.
pub(super) fn sort_key(id: &[u8]) -> (&[u8], &[u8]) {
    let id = id.split(|b| *b == b';').next().unwrap_or(id);
    match id.iter().position(|b| *b == b'.') {
        Some(i) => (&id[..i], &id[i + 1..]),
        None => (id, &[]),
    }
}

fn entry(sig: &[u8; 2], body: &[u8]) -> Vec<u8> {
    let mut e = Vec::with_capacity(4 + body.len());
    e.extend_from_slice(sig);
    // Under 255: bodies are fixed-size or NM/SL pieces of at most CHUNK + 10 bytes.
    #[allow(clippy::cast_possible_truncation)]
    let len = (4 + body.len()) as u8;
    e.push(len);
    e.push(1);
    e.extend_from_slice(body);
    e
}

/// `SP`: the SUSP indicator, first in the root's `.` record.
pub(super) fn sp() -> Vec<u8> {
    entry(b"SP", &[0xbe, 0xef, 0])
}

/// `ER`: names RRIP 1.10 as the extension in use (root `.` only, in its continuation area).
pub(super) fn er() -> Vec<u8> {
    const ID: &[u8] = b"RRIP_1991A";
    const DES: &[u8] =
        b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
    const SRC: &[u8] = b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER \
IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";
    // Constant lengths of 10, 84 and 135 bytes.
    #[allow(clippy::cast_possible_truncation)]
    let mut body = vec![ID.len() as u8, DES.len() as u8, SRC.len() as u8, 1];
    body.extend_from_slice(ID);
    body.extend_from_slice(DES);
    body.extend_from_slice(SRC);
    entry(b"ER", &body)
}

/// `CE`: where the rest of a record's entries are.
pub(super) fn ce(lba: u32, offset: u32, len: u32) -> Vec<u8> {
    let mut body = Vec::with_capacity(24);
    body.extend_from_slice(&both32(lba));
    body.extend_from_slice(&both32(offset));
    body.extend_from_slice(&both32(len));
    entry(b"CE", &body)
}

pub(super) const CE_LEN: usize = 28;

/// `PX` (RRIP 1.10's 36-byte form): file mode with type bits, links, uid, gid.
pub(super) fn px(mode: u32, nlink: u32, uid: u32, gid: u32) -> Vec<u8> {
    let mut body = Vec::with_capacity(32);
    for v in [mode, nlink, uid, gid] {
        body.extend_from_slice(&both32(v));
    }
    entry(b"PX", &body)
}

/// `PN`: a device number as `mkisofs` writes it, glibc's 64-bit `makedev` split into high and
/// low halves (Linux reads `low` as `major << 8 | minor` when `high` is 0; libarchive joins them).
pub(super) fn pn(major: u32, minor: u32) -> Vec<u8> {
    let (ma, mi) = (u64::from(major), u64::from(minor));
    let dev =
        ((ma & 0xffff_f000) << 32) | ((ma & 0xfff) << 8) | ((mi & 0xffff_ff00) << 12) | (mi & 0xff);
    let mut body = Vec::with_capacity(16);
    let [h0, h1, h2, h3, l0, l1, l2, l3] = dev.to_be_bytes();
    body.extend_from_slice(&both32(u32::from_be_bytes([h0, h1, h2, h3])));
    body.extend_from_slice(&both32(u32::from_be_bytes([l0, l1, l2, l3])));
    entry(b"PN", &body)
}

/// `TF`: modification, access and attribute-change times, all the entry's mtime (as `mkisofs`
/// writes them from one stat).
pub(super) fn tf(secs: i64) -> Vec<u8> {
    let d = record_date(secs);
    let mut body = vec![0x0e];
    for _ in 0..3 {
        body.extend_from_slice(&d);
    }
    entry(b"TF", &body)
}

/// `NM` entries holding `name`, split with the CONTINUE flag when long.
pub(super) fn nm(name: &str) -> Vec<Vec<u8>> {
    let chunks: Vec<&[u8]> = name.as_bytes().chunks(CHUNK).collect();
    let last = chunks.len() - 1;
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut body = vec![u8::from(i != last)];
            body.extend_from_slice(c);
            entry(b"NM", &body)
        })
        .collect()
}

/// `SL` entries for a symlink target: one component record per path component (`/` as ROOT,
/// `.` CURRENT, `..` PARENT). Entries only ever break inside a component (the piece before the
/// break carries the component CONTINUE flag, an empty one if need be): Linux adds a `/` at an
/// entry break after a complete component, libarchive never does, and this way both read the
/// same target.
// `len() as u8`: every component piece is shorter than CAP (130 bytes).
#[allow(clippy::cast_possible_truncation)]
pub(super) fn sl(target: &str) -> Vec<Vec<u8>> {
    // Component records (flag, bytes).
    let mut comps: Vec<(u8, &[u8])> = Vec::new();
    if target.starts_with('/') {
        comps.push((0x08, &[]));
    }
    for comp in target.split('/').filter(|c| !c.is_empty()) {
        comps.push(match comp {
            "." => (0x02, &[]),
            ".." => (0x04, &[]),
            _ => (0, comp.as_bytes()),
        });
    }
    if comps.is_empty() {
        comps.push((0, &[]));
    }
    // Bytes of component records per entry; 2 are always kept for an empty continued piece.
    const CAP: usize = CHUNK + 10;
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    for (flag, mut data) in comps {
        loop {
            let room = CAP - cur.len();
            if 2 + data.len() + 2 <= room {
                cur.extend_from_slice(&[flag, data.len() as u8]);
                cur.extend_from_slice(data);
                break;
            }
            if flag == 0 && room >= 5 {
                let (piece, rest) = data.split_at(room - 2);
                cur.extend_from_slice(&[1, piece.len() as u8]);
                cur.extend_from_slice(piece);
                data = rest;
            } else {
                cur.extend_from_slice(&[1, 0]);
            }
            bodies.push(std::mem::take(&mut cur));
        }
    }
    bodies.push(cur);
    let last = bodies.len() - 1;
    bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut body = vec![u8::from(i != last)];
            body.extend_from_slice(b);
            entry(b"SL", &body)
        })
        .collect()
}

/// Splits a record's entries between the record itself (`room` bytes) and one continuation
/// area: returns the inline entries (ending with a placeholder-free list: the caller appends
/// the `CE`) and the continued ones; `None` continued when everything fits.
pub(super) fn split(entries: &[Vec<u8>], room: usize) -> (usize, Option<usize>) {
    let total: usize = entries.iter().map(Vec::len).sum();
    if total <= room {
        return (entries.len(), None);
    }
    let mut used = 0;
    let mut n = 0;
    for e in entries {
        if used + e.len() + CE_LEN > room {
            break;
        }
        used += e.len();
        n += 1;
    }
    let rest: usize = entries[n..].iter().map(Vec::len).sum();
    (n, Some(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil_utc() {
        // LinuxKit's epoch, 2017-04-18 16:30:00.
        assert_eq!(record_date(baleen_tree::DEFAULT_MTIME), [117, 4, 18, 16, 30, 0, 0]);
        assert_eq!(record_date(0), [70, 1, 1, 0, 0, 0, 0]);
        assert_eq!(record_date(951_782_400), [100, 2, 29, 0, 0, 0, 0], "2000-02-29");
        assert_eq!(record_date(-3_000_000_000)[0], 0, "before 1900 clamps");
    }

    #[test]
    fn names_are_d_characters_unique_and_short() {
        let mut n = Names::default();
        assert_eq!(n.pick("hosts", false), b"HOSTS.;1");
        assert_eq!(n.pick("ld-linux.so.2", false), b"LD_LINUX_SO.2;1");
        assert_eq!(n.pick("lib", true), b"LIB");
        assert_eq!(n.pick("LIB", true), b"LIB_1", "case folds, so a second LIB is renamed");
        assert_eq!(n.pick(".profile", false), b"_PROFILE.;1");
        let long = "a".repeat(200) + ".conf";
        let id = n.pick(&long, false);
        assert_eq!(id.len(), 31 + 2);
        let again = n.pick(&long.to_uppercase(), false);
        assert_ne!(id, again);
        assert_eq!(again.len(), 31 + 2);
    }

    #[test]
    fn sort_key_orders_name_then_extension() {
        let mut ids: Vec<&[u8]> = vec![b"AB.C;1", b"A.Z;1", b"A_B.;1", b"AB"];
        ids.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
        assert_eq!(ids, [&b"A.Z;1"[..], b"AB", b"AB.C;1", b"A_B.;1"]);
    }

    #[test]
    fn long_symlinks_split_into_continued_entries() {
        let target = format!("/{}/../x", "d".repeat(300));
        let entries = sl(&target);
        assert!(entries.len() > 1);
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(&e[..2], b"SL");
            assert_eq!(e[2] as usize, e.len());
            assert_eq!(e[4], u8::from(i + 1 != entries.len()), "entry CONTINUE flag");
        }
        // Reassemble the components.
        let mut comps = Vec::new();
        let body: Vec<u8> = entries.iter().flat_map(|e| e[5..].to_vec()).collect();
        let mut i = 0;
        let mut cur = String::new();
        while i < body.len() {
            let (flags, len) = (body[i], body[i + 1] as usize);
            cur.push_str(std::str::from_utf8(&body[i + 2..i + 2 + len]).unwrap());
            match flags {
                0x08 => comps.push("/".to_string()),
                0x04 => comps.push("..".to_string()),
                0x01 => {
                    i += 2 + len;
                    continue;
                }
                _ => comps.push(cur.clone()),
            }
            assert!(len > 0 || flags != 0, "no empty plain component");
            cur.clear();
            i += 2 + len;
        }
        assert_eq!(comps, ["/".to_string(), "d".repeat(300), "..".into(), "x".into()]);
    }

    #[test]
    fn split_leaves_room_for_the_continuation_entry() {
        let entries = vec![vec![0u8; 36], vec![0u8; 26], vec![0u8; 125], vec![0u8; 125]];
        assert_eq!(split(&entries, 400), (4, None));
        let (n, rest) = split(&entries, 200);
        assert_eq!(n, 2);
        assert_eq!(rest, Some(250));
    }
}
