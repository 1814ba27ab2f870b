//! A `format: oci` volume (spec §1.4): instead of the image's flattened root, `containers/volumes/
//! <name>/lower/` holds the image as an OCI image layout — `oci-layout`, `blobs/sha256/<hex>` for
//! every blob, `index.json` naming the image — so a container can load it (containerd, skopeo).
//!
//! Key type: [`OciLayout`] (what the caller resolved from its store: blob digests and sizes in
//! write order, the `index.json` bytes, and a way to open each blob). The tree only lays the
//! entries out; choosing platforms and reading the store is the build crate's.
//!
//! Non-goals: compressing or converting blobs, writing anything the caller did not list, the
//! image tree's touch entries (`dev`, `etc/hosts`, …), which belong to a root filesystem and not
//! to a layout.

use crate::entry::{Entry, EntryKind};
use crate::image::{emit_prefix, Emit, ImageError};
use std::io::{self, Read};

/// The blobs and index of an OCI image layout, ready to stream.
pub struct OciLayout<'a> {
    /// The image reference (`LINUXKIT.source` of every entry).
    pub reference: String,
    /// `sha256:<hex>` digests and sizes, in the order to write them; each once.
    pub blobs: Vec<(String, u64)>,
    /// `index.json`'s bytes.
    pub index_json: Vec<u8>,
    /// Opens a blob by digest.
    pub open: &'a mut dyn FnMut(&str) -> io::Result<Box<dyn Read>>,
}

impl std::fmt::Debug for OciLayout<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciLayout")
            .field("reference", &self.reference)
            .field("blobs", &self.blobs.len())
            .finish()
    }
}

/// The `oci-layout` file of image-spec 1.x.
pub const OCI_LAYOUT_FILE: &str = r#"{"imageLayoutVersion": "1.0.0"}"#;

/// Writes the layout under `prefix` (ending in `/`): the prefix directories, `oci-layout`,
/// `blobs`, `blobs/sha256`, each blob, `index.json`; files 0644, directories 0755, at the fixed
/// epoch, tagged with the reference and `location`.
pub(crate) fn emit_layout(
    prefix: &str,
    location: &str,
    layout: OciLayout<'_>,
    emit: &mut Emit<'_>,
) -> Result<(), ImageError> {
    let source = layout.reference.as_str();
    emit_prefix(prefix, source, location, emit)?;
    let file = |path: String, size: usize| {
        Entry::new(path, EntryKind::File { size: size as u64 }, 0o644).with_origin(source, location)
    };
    emit(
        &file(format!("{prefix}oci-layout"), OCI_LAYOUT_FILE.len()),
        &mut OCI_LAYOUT_FILE.as_bytes(),
    )?;
    for dir in ["blobs", "blobs/sha256"] {
        let e = Entry::new(format!("{prefix}{dir}"), EntryKind::Dir, 0o755)
            .with_origin(source, location);
        emit(&e, &mut io::empty())?;
    }
    for (digest, size) in &layout.blobs {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| ImageError::Other(format!("blob {digest:?} is not a sha256 digest")))?;
        let path = format!("{prefix}blobs/sha256/{hex}");
        let mut data = (layout.open)(digest)
            .map_err(|e| ImageError::Other(format!("opening blob {digest}: {e}")))?;
        let entry = Entry::new(path.clone(), EntryKind::File { size: *size }, 0o644)
            .with_origin(source, location);
        // The sink reads exactly `size` bytes; a blob that is shorter must not pass silently.
        let mut counted = Counted { inner: &mut data, n: 0 };
        emit(&entry, &mut (&mut counted).take(*size))?;
        if counted.n != *size {
            return Err(ImageError::Other(format!(
                "blob {digest}: {} bytes in the store, {size} expected",
                counted.n
            )));
        }
    }
    let index = &layout.index_json;
    emit(&file(format!("{prefix}index.json"), index.len()), &mut &index[..])
}

struct Counted<'a> {
    inner: &'a mut dyn Read,
    n: u64,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Collect, TreeWriter};

    fn sha(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    #[test]
    fn layout_entries_in_order_with_origin() {
        let blobs = vec![(sha(1), 3), (sha(2), 2)];
        let mut open = |d: &str| -> io::Result<Box<dyn Read>> {
            Ok(Box::new(io::Cursor::new(if d == sha(1) {
                b"abc".to_vec()
            } else {
                b"de".to_vec()
            })))
        };
        let layout = OciLayout {
            reference: "docker.io/library/alpine:3.21".into(),
            blobs,
            index_json: b"{}".to_vec(),
            open: &mut open,
        };
        let mut tw = TreeWriter::new(Collect::default());
        tw.oci_volume(0, "vol", layout).unwrap();
        let got = tw.into_sink();
        let paths: Vec<&str> = got.entries.iter().map(|(e, _)| e.path.as_str()).collect();
        let b1 = format!("containers/volumes/vol/lower/blobs/sha256/{}", &sha(1)[7..]);
        let b2 = format!("containers/volumes/vol/lower/blobs/sha256/{}", &sha(2)[7..]);
        assert_eq!(
            paths,
            [
                "containers",
                "containers/volumes",
                "containers/volumes/vol",
                "containers/volumes/vol/lower",
                "containers/volumes/vol/lower/oci-layout",
                "containers/volumes/vol/lower/blobs",
                "containers/volumes/vol/lower/blobs/sha256",
                b1.as_str(),
                b2.as_str(),
                "containers/volumes/vol/lower/index.json",
                "containers/volumes/vol/tmp",
                "containers/volumes/vol/merged",
            ]
        );
        assert_eq!(got.entries[7].1, b"abc");
        assert_eq!(
            crate::origin_of(&got.entries[7].0),
            (Some("docker.io/library/alpine:3.21"), Some("volume[0]"))
        );
        assert_eq!(
            crate::origin_of(&got.entries[11].0),
            (Some("linuxkit.volumes"), Some("volume[0]"))
        );
    }

    #[test]
    fn short_blob_and_bad_digest_are_errors() {
        let mut open = |_: &str| -> io::Result<Box<dyn Read>> {
            Ok(Box::new(io::Cursor::new(b"ab".to_vec())))
        };
        let layout = OciLayout {
            reference: "r".into(),
            blobs: vec![(sha(1), 3)],
            index_json: vec![],
            open: &mut open,
        };
        let mut tw = TreeWriter::new(Collect::default());
        let err = tw.oci_volume(0, "v", layout).unwrap_err().to_string();
        assert!(err.contains("2 bytes in the store, 3 expected"), "{err}");

        let mut open = |_: &str| -> io::Result<Box<dyn Read>> { Ok(Box::new(io::empty())) };
        let layout = OciLayout {
            reference: "r".into(),
            blobs: vec![("sha256:../../etc".into(), 0)],
            index_json: vec![],
            open: &mut open,
        };
        let mut tw = TreeWriter::new(Collect::default());
        let err = tw.oci_volume(0, "v", layout).unwrap_err().to_string();
        assert!(err.contains("not a sha256 digest"), "{err}");
    }
}
