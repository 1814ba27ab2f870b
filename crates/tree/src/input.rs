//! Reading a previous build's tar for `--input-tar` (LinuxKit §3.3): find the metadata file, and
//! copy the entries of an unchanged section, matched by their `LINUXKIT.source` and
//! `LINUXKIT.location` records.
//!
//! A [`SectionIndex`] reads the tar's headers once (seeking over file data) and records where
//! each section lies, so copying a section reads only its own bytes: a rebuild that copies N
//! sections reads the tar about once, not N times. Nothing else is kept in memory.

use crate::entry::{Entry, PAX_LOCATION, PAX_SOURCE};
use crate::layer::{for_each_entry, LayerError};
use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;

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

/// Where each section (`LINUXKIT.source`, `LINUXKIT.location`) of a tar lies: the bytes from the
/// first header of its first entry (PAX extension header included) to the end of its last
/// entry's data. A section is contiguous in a tar baleen or LinuxKit wrote; when it is not, the
/// range spans what lies between too, and [`for_each_section_entry`] over the range still picks
/// only the section's own entries, in order.
#[derive(Debug, Default)]
pub struct SectionIndex {
    sections: HashMap<(String, String), Range<u64>>,
}

impl SectionIndex {
    /// One pass over the headers of `tar`; file data is skipped by seeking.
    pub fn build<R: Read + Seek>(tar: R) -> Result<SectionIndex, LayerError> {
        let read_err = |source: io::Error| LayerError::Read { layer: "input tar".into(), source };
        let mut archive = tar::Archive::new(tar);
        let mut sections: HashMap<(String, String), Range<u64>> = HashMap::new();
        // The end of the previous entry's data: where the next entry's header chain starts.
        let mut chain_start = 0u64;
        for item in archive.entries_with_seek().map_err(read_err)? {
            let mut te = item.map_err(read_err)?;
            let end = te
                .raw_file_position()
                .checked_add(te.size().div_ceil(512) * 512)
                .ok_or_else(|| read_err(io::Error::other("an entry's size overflows")))?;
            let (mut source, mut location) = (None, None);
            if let Some(exts) = te.pax_extensions().map_err(read_err)? {
                for ext in exts {
                    let ext = ext.map_err(read_err)?;
                    match (ext.key(), ext.value()) {
                        (Ok(PAX_SOURCE), Ok(v)) => source = Some(v.to_string()),
                        (Ok(PAX_LOCATION), Ok(v)) => location = Some(v.to_string()),
                        _ => {}
                    }
                }
            }
            if let (Some(source), Some(location)) = (source, location) {
                sections
                    .entry((source, location))
                    .and_modify(|r| r.end = end)
                    .or_insert(chain_start..end);
            }
            chain_start = end;
        }
        Ok(SectionIndex { sections })
    }

    /// The byte range of a section, if the tar has any entry of it.
    pub fn range(&self, source: &str, location: &str) -> Option<Range<u64>> {
        self.sections.get(&(source.to_string(), location.to_string())).cloned()
    }

    /// How many sections the tar holds.
    pub fn len(&self) -> usize {
        self.sections.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }
}

/// The bytes of `range` in `file`, to read one section as a tar stream of its own.
pub fn section_reader<R: Read + Seek>(mut file: R, range: Range<u64>) -> io::Result<io::Take<R>> {
    file.seek(SeekFrom::Start(range.start))?;
    Ok(file.take(range.end.saturating_sub(range.start)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A tar of entries `(path, source, location, size)`, PAX records as a build writes them.
    fn tar_of(entries: &[(&str, &str, &str, usize)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for &(path, source, location, size) in entries {
            b.append_pax_extensions([
                (PAX_SOURCE, source.as_bytes()),
                (PAX_LOCATION, location.as_bytes()),
            ])
            .unwrap();
            let mut h = tar::Header::new_ustar();
            h.set_path(path).unwrap();
            h.set_size(size as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, &vec![b'x'; size][..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn paths_in(tar: &[u8], range: Range<u64>, source: &str, location: &str) -> Vec<String> {
        let mut r = section_reader(Cursor::new(tar), range).unwrap();
        let mut out = Vec::new();
        for_each_section_entry(&mut r, source, location, |e, _| -> Result<(), LayerError> {
            out.push(e.path.clone());
            Ok(())
        })
        .unwrap();
        out
    }

    /// Counts what is read, to show a section copy reads only that section.
    struct Counting<R> {
        inner: R,
        read: u64,
    }
    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read += n as u64;
            Ok(n)
        }
    }
    impl<R: Seek> Seek for Counting<R> {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    #[test]
    fn each_section_is_found_and_copied_whole() {
        let tar = tar_of(&[
            ("a/1", "img-a", "onboot[0]", 10),
            ("a/2", "img-a", "onboot[0]", 700),
            ("b/1", "img-b", "services[0]", 0),
            ("b/2", "img-b", "services[0]", 3),
            ("c/1", "img-a", "services[1]", 1),
        ]);
        let idx = SectionIndex::build(Cursor::new(&tar)).unwrap();
        assert_eq!(idx.len(), 3);
        let cases = [
            ("img-a", "onboot[0]", vec!["a/1", "a/2"]),
            ("img-b", "services[0]", vec!["b/1", "b/2"]),
            ("img-a", "services[1]", vec!["c/1"]),
        ];
        for (source, location, want) in cases {
            let range = idx.range(source, location).unwrap();
            assert_eq!(paths_in(&tar, range, source, location), want, "{location}");
            // The same entries a scan of the whole tar finds.
            let mut whole = Vec::new();
            for_each_section_entry(
                &mut &tar[..],
                source,
                location,
                |e, _| -> Result<_, LayerError> {
                    whole.push(e.path.clone());
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(whole, want);
        }
        assert_eq!(idx.range("img-b", "onboot[0]"), None);
    }

    #[test]
    fn a_split_section_still_gives_only_its_own_entries() {
        let tar = tar_of(&[
            ("a/1", "img-a", "onboot[0]", 5),
            ("b/1", "img-b", "onboot[1]", 5),
            ("a/2", "img-a", "onboot[0]", 5),
        ]);
        let idx = SectionIndex::build(Cursor::new(&tar)).unwrap();
        let range = idx.range("img-a", "onboot[0]").unwrap();
        assert_eq!(paths_in(&tar, range, "img-a", "onboot[0]"), ["a/1", "a/2"]);
    }

    #[test]
    fn indexing_skips_file_data_and_a_copy_reads_only_its_section() {
        // Before the index, every copied section read the whole tar, big files included.
        let big = 4 << 20;
        let tar =
            tar_of(&[("big", "img-a", "onboot[0]", big), ("small", "img-b", "onboot[1]", 10)]);
        let mut counting = Counting { inner: Cursor::new(&tar), read: 0 };
        let idx = SectionIndex::build(&mut counting).unwrap();
        assert!(counting.read < 64 * 1024, "indexing read {} bytes", counting.read);
        let range = idx.range("img-b", "onboot[1]").unwrap();
        let mut counting = Counting { inner: Cursor::new(&tar), read: 0 };
        let mut r = section_reader(&mut counting, range).unwrap();
        let mut n = 0;
        for_each_section_entry(&mut r, "img-b", "onboot[1]", |_, _| -> Result<_, LayerError> {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 1);
        assert!(
            counting.read < 64 * 1024,
            "copying the small section read {} bytes",
            counting.read
        );
    }

    #[test]
    fn a_hostile_size_is_an_error_not_an_overflow() {
        let mut tar = tar_of(&[("a", "s", "l", 1)]);
        // The ustar header follows the PAX header block and its data: patch its size field to
        // the largest base-256 value.
        let hdr = tar.chunks(512).position(|c| c.starts_with(b"a\0")).unwrap() * 512;
        tar[hdr + 124] = 0xff;
        for b in &mut tar[hdr + 125..hdr + 136] {
            *b = 0xff;
        }
        let mut h = tar::Header::new_old();
        h.as_mut_bytes().copy_from_slice(&tar[hdr..hdr + 512]);
        h.set_cksum();
        tar[hdr..hdr + 512].copy_from_slice(h.as_bytes());
        assert!(SectionIndex::build(Cursor::new(&tar)).is_err());
    }
}
