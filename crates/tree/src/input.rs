//! Reading a previous build's tar for `--input-tar` (LinuxKit §3.3): find the metadata file, and
//! copy the entries of an unchanged section, matched by their `LINUXKIT.source` and
//! `LINUXKIT.location` records. The tar is read as a stream each time; nothing is kept.

use crate::entry::{Entry, PAX_LOCATION, PAX_SOURCE};
use crate::layer::{for_each_entry, LayerError};
use std::io::Read;

/// The contents of the regular file at `path` (leading `/` ignored) in a tar, if present.
/// Meant for the small metadata file (`files` entry with `metadata:`).
pub fn read_tar_file(tar: &mut dyn Read, path: &str) -> Result<Option<Vec<u8>>, LayerError> {
    let want = path.trim_start_matches('/').trim_end_matches('/');
    let mut found = None;
    for_each_entry("input tar", tar, |entry: Entry, data| -> Result<(), LayerError> {
        if found.is_none() && entry.path == want {
            let mut buf = Vec::new();
            data.read_to_end(&mut buf)
                .map_err(|source| LayerError::Read { layer: "input tar".into(), source })?;
            found = Some(buf);
        }
        Ok(())
    })?;
    Ok(found)
}

/// Calls `f` for every entry of the tar whose source and location records equal the given ones,
/// with its data, in stream order.
pub fn for_each_section_entry<E: From<LayerError>>(
    tar: &mut dyn Read,
    source: &str,
    location: &str,
    mut f: impl FnMut(&Entry, &mut dyn Read) -> Result<(), E>,
) -> Result<(), E> {
    for_each_entry("input tar", tar, |entry: Entry, data| {
        if entry.pax(PAX_SOURCE) == Some(source) && entry.pax(PAX_LOCATION) == Some(location) {
            f(&entry, data)?;
        }
        Ok(())
    })
}
