//! The Joliet tree (`genisoimage -J -joliet-long`): a supplementary volume descriptor and a
//! second directory hierarchy with UCS-2 names of up to 103 characters, for readers without Rock
//! Ridge (Windows). Its records point at the same file extents as the ISO 9660 tree.
//!
//! Only directories and regular files appear (symlinks, devices and FIFOs have no Joliet form;
//! genisoimage leaves them out too). Characters Joliet forbids (`* / : ; ? \`) and those outside
//! the BMP become `_`; names are made unique per directory by numbering.

use super::tree::{Dir, Kind};
use super::IsoTree;
use std::collections::HashSet;

/// `-joliet-long`'s limit, in UCS-2 characters, without `;1`.
const MAX_NAME: usize = 103;

fn ucs2(name: &str, dir: bool, n: u32) -> Vec<u8> {
    let mut units: Vec<u16> = name
        .chars()
        .map(|c| match c {
            '*' | '/' | ':' | ';' | '?' | '\\' => u16::from(b'_'),
            c if (c as u32) < 0x20 || (c as u32) > 0xffff => u16::from(b'_'),
            c => c as u16,
        })
        .collect();
    let suffix: Vec<u16> =
        if n == 0 { Vec::new() } else { format!("_{n}").encode_utf16().collect() };
    units.truncate(MAX_NAME - suffix.len());
    units.extend(suffix);
    if !dir {
        units.extend(";1".encode_utf16());
    }
    units.iter().flat_map(|u| u.to_be_bytes()).collect()
}

/// The Joliet directories, breadth first with children sorted by identifier (path table order).
pub(super) fn directories<S>(tree: &IsoTree<S>) -> Vec<Dir> {
    tree.breadth_first(|children| {
        let mut used = HashSet::new();
        let mut kids = Vec::new();
        for (name, &id) in children {
            let kind = &tree.nodes[id as usize].kind;
            let dir = matches!(kind, Kind::Dir(_));
            if !dir && !matches!(kind, Kind::File(_) | Kind::Catalog) {
                continue;
            }
            let mut n = 0;
            let mut jid = ucs2(name, dir, n);
            while !used.insert(jid.clone()) {
                n += 1;
                jid = ucs2(name, dir, n);
            }
            kids.push((jid, id));
        }
        kids.sort();
        kids
    })
}

/// The supplementary volume descriptor: the primary's fields, UCS-2 level 3 escape sequences,
/// identifiers in UCS-2.
pub(super) fn svd(
    pvd: &[u8],
    volume_id: &str,
    pt_len: u32,
    l: u32,
    m: u32,
    root: &[u8],
) -> Vec<u8> {
    use super::rock::both32;
    let mut d = pvd.to_vec();
    d[0] = 2;
    d[8..40].copy_from_slice(&padded_ucs2("LINUX", 32));
    d[40..72].copy_from_slice(&padded_ucs2(volume_id, 32));
    d[88..91].copy_from_slice(b"%/E");
    d[132..140].copy_from_slice(&both32(pt_len));
    d[140..144].copy_from_slice(&l.to_le_bytes());
    d[148..152].copy_from_slice(&m.to_be_bytes());
    d[156..190].copy_from_slice(root);
    d[574..702].copy_from_slice(&padded_ucs2("BALEEN", 128));
    d
}

/// `text` in UCS-2 big-endian, padded with UCS-2 spaces to `len` bytes.
fn padded_ucs2(text: &str, len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = text.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
    v.truncate(len);
    while v.len() + 2 <= len {
        v.extend_from_slice(&[0, b' ']);
    }
    v.resize(len, 0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_ucs2_big_endian_capped_and_versioned() {
        assert_eq!(ucs2("a;b", false, 0), b"\0a\0_\0b\0;\x001");
        assert_eq!(ucs2("d", true, 2), b"\0d\0_\x002");
        let long = "é".repeat(200);
        let id = ucs2(&long, false, 0);
        assert_eq!(id.len(), (MAX_NAME + 2) * 2);
        assert_eq!(&id[..2], &[0, 0xe9]);
        assert_eq!(ucs2("\u{1f600}", true, 0), b"\0_");
    }
}
