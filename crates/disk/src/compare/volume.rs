//! What differs inside a volume that a disk or an ISO holds: a FAT volume file by file (an EFI
//! binary further by PE section), a squashfs or erofs root by the path in its tree. The volume's
//! kind is told from the rebuild's bytes, not from a partition type, so the ESP, a hybrid
//! disk's FAT partition, an ISO's EFI boot image and a DPS root partition are all looked into.

use super::{compare_pe, CompareError, Pair, Place, Signature};
use crate::fat_read::{fat_files, looks_like_fat, FatEntry};
use crate::runs::Runs;
use baleen_formats::compare::{first_difference, Member};
use std::io::{Read, Seek};

/// The kinds of volume looked into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fat,
    Squashfs,
    Erofs,
}

fn sniff<R: Read + Seek>(r: &mut R, at: u64, len: u64) -> Result<Option<Kind>, CompareError> {
    let mut head = vec![0u8; usize::try_from(len.min(2048)).unwrap_or(0)];
    if super::read_full(r, at, &mut head, "rebuild")? < head.len() || head.len() < 1028 {
        return Ok(None);
    }
    Ok(if &head[..4] == b"hsqs" {
        Some(Kind::Squashfs)
    } else if head[1024..1028] == 0xE0F5_E1E2u32.to_le_bytes() {
        Some(Kind::Erofs)
    } else if looks_like_fat(&head[..512]) {
        Some(Kind::Fat)
    } else {
        None
    })
}

/// Where two volumes of the same kind differ, the output's at `o` and the rebuild's at `r`
/// (offset, length); `None` when the rebuild holds no volume baleen reads, or when the two
/// hold the same files (the difference is then in the volume's own metadata, said by the
/// caller). A volume that cannot be read is said as such, with the first differing byte.
pub(super) fn volume_place<A: Read + Seek, B: Read + Seek>(
    pair: &mut Pair<'_, A, B>,
    o: (u64, u64),
    r: (u64, u64),
    at: u64,
    signature: Signature,
) -> Result<Option<Place>, CompareError> {
    let Some(kind) = sniff(pair.rebuilt, r.0, r.1)? else { return Ok(None) };
    match kind {
        Kind::Fat => fat_place(pair, o, r, at, signature),
        Kind::Squashfs | Kind::Erofs => {
            let fs = if kind == Kind::Squashfs { "squashfs" } else { "erofs" };
            let list = |inner: &mut dyn ReadSeek, span: (u64, u64)| {
                let mut w = Runs::new(inner, vec![span]);
                if kind == Kind::Squashfs {
                    baleen_formats::squashfs_members(&mut w)
                } else {
                    baleen_formats::erofs_members(&mut w)
                }
            };
            let members: Result<(Vec<Member>, Vec<Member>), _> =
                list(pair.output, o).and_then(|lo| Ok((lo, list(pair.rebuilt, r)?)));
            Ok(match members {
                Ok((lo, lr)) => first_difference(&lo, &lr)
                    .map(|d| Place::Tree { fs, difference: d.to_string() }),
                Err(e) => Some(Place::Unreadable { what: fs, reason: e.to_string(), offset: at }),
            })
        }
    }
}

/// `Read + Seek` as one object type, to list either side through one closure.
trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

/// The first file of the rebuild's FAT volume that the output's lacks or holds otherwise, in
/// the rebuild's directory order; then a file only the output has. An EFI binary is compared
/// as a PE file (with `signature`), so a signed UKI against an unsigned rebuild is no
/// difference; other files by their bytes.
fn fat_place<A: Read + Seek, B: Read + Seek>(
    pair: &mut Pair<'_, A, B>,
    o: (u64, u64),
    r: (u64, u64),
    at: u64,
    signature: Signature,
) -> Result<Option<Place>, CompareError> {
    let fr = match fat_files(pair.rebuilt, r.0, r.1) {
        Ok(f) => f,
        Err(e) => return Ok(Some(unreadable("rebuild", &e, at))),
    };
    let fo = match fat_files(pair.output, o.0, o.1) {
        Ok(f) => f,
        Err(e) => return Ok(Some(unreadable("output", &e, at))),
    };
    let file = |path: &str, what: &'static str| Place::FatFile { path: path.to_string(), what };
    for f in &fr {
        let Some(g) = fo.iter().find(|g| g.path == f.path) else {
            return Ok(Some(file(&f.path, "missing from the output")));
        };
        if g.dir != f.dir {
            return Ok(Some(file(&f.path, "a file in one, a directory in the other")));
        }
        if f.dir {
            continue;
        }
        if let Some(inner) = fat_file_place(pair, g, f, signature)? {
            return Ok(Some(Place::EspFile { path: f.path.clone(), inner: Box::new(inner) }));
        }
    }
    if let Some(g) = fo.iter().find(|g| !fr.iter().any(|f| f.path == g.path)) {
        return Ok(Some(file(&g.path, "only in the output")));
    }
    Ok(Some(Place::FatMetadata { offset: at }))
}

fn unreadable(which: &str, e: &crate::fat_read::FatReadError, at: u64) -> Place {
    Place::Unreadable { what: "FAT", reason: format!("the {which}'s: {e}"), offset: at }
}

/// How one file of two FAT volumes differs, if it does.
fn fat_file_place<A: Read + Seek, B: Read + Seek>(
    pair: &mut Pair<'_, A, B>,
    o: &FatEntry,
    r: &FatEntry,
    signature: Signature,
) -> Result<Option<Place>, CompareError> {
    let mut ro = Runs::new(&mut *pair.output, o.runs.clone());
    let mut rr = Runs::new(&mut *pair.rebuilt, r.runs.clone());
    if r.path.to_ascii_uppercase().ends_with(".EFI") {
        match compare_pe(&mut ro, &mut rr, signature) {
            Ok(p) => return Ok(p),
            // No longer a PE file: said by bytes below.
            Err(CompareError::Pe { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let mut inner = Pair { output: &mut ro, rebuilt: &mut rr };
    Ok(match inner.first_diff(0, 0, o.size.min(r.size))? {
        Some(offset) if o.size == r.size => Some(Place::FileContent { offset }),
        _ if o.size != r.size => Some(Place::Length { output: o.size, rebuilt: r.size }),
        Some(offset) => Some(Place::FileContent { offset }),
        None => None,
    })
}
