//! Flattening an image's layers into one stream, as go-containerregistry's `mutate.Extract` does
//! (LinuxKit's behaviour): layers are read topmost first and each path is emitted once, by the
//! topmost layer that has it. `.wh.<name>` whiteouts hide `<name>` (and everything below it) in
//! the layers read after it; a non-directory hides everything below its path too.
//!
//! Unlike `mutate.Extract`, opaque directories (`.wh..wh..opq`) are honoured: the directory's
//! contents from lower layers are hidden (docs/compat.md). Duplicate paths within one layer keep
//! the first occurrence, as `mutate.Extract` does.
//!
//! Memory is O(number of paths): one map entry per path seen, never file data.

use crate::entry::{Entry, EntryKind};
use crate::layer::{decompress, for_each_entry, Layer, LayerError};
use std::collections::{HashMap, HashSet};
use std::io::Read;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

/// Ancestors of `path`, nearest first (`a/b/c` → `a/b`, `a`).
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut cur = path;
    std::iter::from_fn(move || {
        let i = cur.rfind('/')?;
        cur = &cur[..i];
        Some(cur)
    })
}

/// Calls `f` for every visible entry of the image whose layers are given bottom first (manifest
/// order), streaming each entry's data from its layer.
pub fn flatten<E: From<LayerError>>(
    layers: Vec<Layer>,
    mut f: impl FnMut(Entry, &mut dyn Read) -> Result<(), E>,
) -> Result<(), E> {
    // true: a whiteout or a non-directory, which hides everything below it in lower layers.
    let mut seen: HashMap<String, bool> = HashMap::new();
    let mut opaque: HashSet<String> = HashSet::new();
    for layer in layers.into_iter().rev() {
        let Layer { id, media_type, reader } = layer;
        let mut stream = decompress(&id, &media_type, reader)?;
        let mut opaque_here: Vec<String> = Vec::new();
        for_each_entry(&id, &mut stream, |entry, data| {
            let (dir, base) = split(&entry.path);
            if base == OPAQUE_MARKER {
                opaque_here.push(dir.to_string());
                return Ok(());
            }
            let tombstone = base.starts_with(WHITEOUT_PREFIX);
            let name = if tombstone {
                let real = &base[WHITEOUT_PREFIX.len()..];
                if dir.is_empty() {
                    real.to_string()
                } else {
                    format!("{dir}/{real}")
                }
            } else {
                entry.path.clone()
            };
            if seen.contains_key(&name) {
                return Ok(());
            }
            if ancestors(&name).any(|a| seen.get(a) == Some(&true) || opaque.contains(a)) {
                return Ok(());
            }
            let hides = tombstone || entry.kind != EntryKind::Dir;
            seen.insert(name, hides);
            if tombstone {
                return Ok(());
            }
            f(entry, data)
        })?;
        // An opaque marker hides lower layers only, not its own layer's siblings.
        opaque.extend(opaque_here);
    }
    Ok(())
}
