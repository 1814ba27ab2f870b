//! Reading one image layer: decompression (gzip, zstd or plain, told by media type and by magic
//! bytes), tar parsing, path cleaning and the hostile-input checks every entry goes through.
//!
//! Non-goals: applying whiteouts (see `flatten`), writing anything.

use crate::entry::{Entry, EntryKind, Mtime};
use std::io::{self, BufRead, BufReader, Read};

/// One layer of an image, as the content store hands it over.
pub struct Layer {
    /// What error messages call this layer: its digest, or `layer[i]`.
    pub id: String,
    /// The descriptor's media type; compression is also sniffed from the first bytes, so a wrong
    /// or missing media type still works.
    pub media_type: String,
    pub reader: Box<dyn Read>,
    /// The layer's compressed size, when the caller has checked it (a verified descriptor's
    /// size): lets `flatten` refuse a bomb from the sizes its entries declare, before it
    /// decompresses them.
    pub size: Option<u64>,
}

impl std::fmt::Debug for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layer").field("id", &self.id).field("media_type", &self.media_type).finish()
    }
}

impl Layer {
    pub fn new(
        id: impl Into<String>,
        media_type: impl Into<String>,
        reader: impl Read + 'static,
    ) -> Self {
        Layer { id: id.into(), media_type: media_type.into(), reader: Box::new(reader), size: None }
    }

    /// The same layer, known to be `size` compressed bytes long.
    pub fn with_size(self, size: u64) -> Self {
        Layer { size: Some(size), ..self }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer {layer}: reading the layer stream")]
    Read { layer: String, source: io::Error },
    #[error("layer {layer}: entry {path:?}: reading its data")]
    Data { layer: String, path: String, source: io::Error },
    #[error("layer {layer}: entry {path:?}: the header claims {size} bytes but the stream ended after {got}")]
    Truncated { layer: String, path: String, size: u64, got: u64 },
    #[error("layer {layer}: entry {path:?}: the path leaves the image root (a `..` component)")]
    PathEscapes { layer: String, path: String },
    #[error("layer {layer}: entry {path:?}: hard link target {target:?} leaves the image root")]
    LinkEscapes { layer: String, path: String, target: String },
    #[error("layer {layer}: entry {path:?}: the name is not UTF-8")]
    NotUtf8 { layer: String, path: String },
    #[error("layer {layer}: entry {path:?}: its link target {target:?} is not UTF-8")]
    LinkNotUtf8 { layer: String, path: String, target: String },
    #[error(
        "layer {layer}: the layer is compressed twice ({inner} inside {outer}): its content must \
         be a tar archive"
    )]
    CompressedTwice { layer: String, outer: &'static str, inner: &'static str },
    #[error(
        "layer {layer}: the layer is compressed with {what}; layers are gzip, zstd or plain tar"
    )]
    UnsupportedCompression { layer: String, what: &'static str },
    #[error("layer {layer}: the layer is not a tar archive ({why})")]
    NotTar { layer: String, why: &'static str },
    #[error("layer {layer}: entry {path:?}: unsupported tar entry type {kind:?}")]
    UnsupportedType { layer: String, path: String, kind: char },
    #[error("layer {layer}: entry {path:?}: {what}")]
    BadHeader { layer: String, path: String, what: String },
    #[error("layer {layer}: entry {path:?}: the hard link links to itself")]
    HardLinkToSelf { layer: String, path: String },
    #[error(
        "layer {layer}: entry {path:?}: hard link target {target:?} is a directory (a hard link \
         must name a file)"
    )]
    HardLinkToDir { layer: String, path: String, target: String },
    #[error(
        "layer {layer}: entry {path:?}: hard link target {target:?}: no such file in the image \
         (not earlier in this layer, nor in a layer below)"
    )]
    HardLinkMissing { layer: String, path: String, target: String },
    #[error(
        "layer {layer}: entry {path:?}: hard link target {target:?} comes later in the layer (a \
         hard link must follow its target, as tar extracts in order)"
    )]
    HardLinkForward { layer: String, path: String, target: String },
    #[error("layer {layer}")]
    Limit { layer: String, source: crate::limits::LimitError },
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// What a stream's first bytes say it is compressed with, if anything.
fn compression_of(head: &[u8]) -> Option<&'static str> {
    const MAGICS: &[(&[u8], &str)] =
        &[(GZIP_MAGIC, "gzip"), (ZSTD_MAGIC, "zstd"), (b"\xfd7zXZ\0", "xz")];
    // bzip2: `BZh`, the block size digit, then the block magic (π's digits), which no tar
    // name starts with.
    let bzip2 = head.len() >= 10
        && head.starts_with(b"BZh")
        && (b'1'..=b'9').contains(&head[3])
        && &head[4..10] == b"1AY&SY";
    if bzip2 {
        return Some("bzip2");
    }
    MAGICS.iter().find(|(m, _)| head.starts_with(m)).map(|(_, name)| *name)
}

/// Why a tar stream's first block is not a tar header, if it is not. Nothing, or an all-zero
/// block (the end of an empty archive), is a tar.
fn not_a_tar_header(block: &[u8]) -> Option<&'static str> {
    if block.is_empty() || block.iter().all(|&b| b == 0) {
        return None;
    }
    if block.len() < 512 {
        return Some("it is shorter than one 512-byte tar header");
    }
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == ' ' || c == '\0'))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| if (148..156).contains(&i) { u32::from(b' ') } else { u32::from(b) })
        .sum();
    match stored {
        None => Some("its first 512 bytes are not a tar header"),
        Some(s) if s != sum => Some("its first 512 bytes are not a tar header: bad checksum"),
        Some(_) => None,
    }
}

/// Wraps a layer blob in the right decompressor. Magic bytes win over the media type: registries
/// and old Docker manifests do not always say what they ship. The first block of what comes out
/// is checked: a layer compressed twice, with an unsupported algorithm, or that is no tar at all
/// says so, instead of whatever the tar reader would trip on.
pub fn decompress(
    id: &str,
    media_type: &str,
    reader: Box<dyn Read>,
) -> Result<Box<dyn Read>, LayerError> {
    let read_err = |source| LayerError::Read { layer: id.to_string(), source };
    let mut buf = BufReader::with_capacity(64 * 1024, reader);
    let head = buf.fill_buf().map_err(read_err)?;
    let (outer, mut stream): (Option<&'static str>, Box<dyn Read>) =
        if head.starts_with(GZIP_MAGIC) || (head.is_empty() && media_type.contains("gzip")) {
            (Some("gzip"), Box::new(flate2::read::MultiGzDecoder::new(buf)))
        } else if head.starts_with(ZSTD_MAGIC) {
            let dec = zstd::stream::read::Decoder::with_buffer(buf).map_err(read_err)?;
            (Some("zstd"), Box::new(dec))
        } else if let Some(what) = compression_of(head) {
            return Err(LayerError::UnsupportedCompression { layer: id.to_string(), what });
        } else {
            (None, Box::new(buf))
        };
    let mut first = Vec::with_capacity(512);
    (&mut stream).take(512).read_to_end(&mut first).map_err(read_err)?;
    if let Some(inner) = compression_of(&first) {
        return Err(match outer {
            Some(outer) => LayerError::CompressedTwice { layer: id.to_string(), outer, inner },
            None => LayerError::UnsupportedCompression { layer: id.to_string(), what: inner },
        });
    }
    if let Some(why) = not_a_tar_header(&first) {
        return Err(LayerError::NotTar { layer: id.to_string(), why });
    }
    Ok(Box::new(io::Cursor::new(first).chain(stream)))
}

/// Cleans a path the way Go's `path.Clean` does, then makes it root-relative: a leading `/` is
/// dropped (Docker extracts `/etc/x` as `etc/x`), `..` above a rooted path is dropped, and `..`
/// above a relative path is an escape (`None`). `.` and the empty path become `""`.
pub fn clean_path(name: &str) -> Option<String> {
    // Most names are clean already: no copy of their components (deep paths have thousands).
    let clean = !name.is_empty()
        && !name.as_bytes().windows(2).any(|w| w == b"//")
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.split('/').any(|p| p == "." || p == "..");
    if clean {
        return Some(name.to_string());
    }
    let rooted = name.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() && !rooted {
                    return None;
                }
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// The data of the current entry, limited to the size its header claims, recording whether the
/// stream failed so that a sink's error can be traced back to the layer.
pub(crate) struct EntryData<'a> {
    inner: &'a mut dyn Read,
    remaining: u64,
    size: u64,
    failure: Option<io::Error>,
}

impl<'a> EntryData<'a> {
    pub(crate) fn new(inner: &'a mut dyn Read, size: u64) -> Self {
        EntryData { inner, remaining: size, size, failure: None }
    }

    /// Reads whatever the consumer left, so the tar stream stays aligned and truncation shows.
    pub(crate) fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(|_| ())
    }

    /// Converts a recorded stream failure into the layer error that names the entry.
    pub(crate) fn take_failure(&mut self, layer: &str, path: &str) -> Option<LayerError> {
        let err = self.failure.take()?;
        let got = self.size - self.remaining;
        Some(if err.kind() == io::ErrorKind::UnexpectedEof && got < self.size {
            LayerError::Truncated {
                layer: layer.to_string(),
                path: path.to_string(),
                size: self.size,
                got,
            }
        } else {
            LayerError::Data { layer: layer.to_string(), path: path.to_string(), source: err }
        })
    }
}

impl Read for EntryData<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        match self.inner.read(&mut buf[..want]) {
            Ok(0) => {
                let err = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("stream ended {} bytes before the end of the entry", self.remaining),
                );
                self.failure = Some(io::Error::new(err.kind(), err.to_string()));
                Err(err)
            }
            Ok(n) => {
                self.remaining -= n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.failure = Some(io::Error::new(e.kind(), e.to_string()));
                Err(e)
            }
        }
    }
}

/// PAX keys that describe header fields: the writer regenerates them from the entry.
fn is_basic_pax_key(key: &str) -> bool {
    matches!(key, "path" | "linkpath" | "size" | "uid" | "gid" | "uname" | "gname" | "mtime")
        || key.starts_with("GNU.sparse.")
}

/// Parses a PAX time (`secs[.fraction]`, possibly negative).
pub fn parse_pax_time(s: &str) -> Option<Mtime> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (secs, frac) = body.split_once('.').unwrap_or((body, ""));
    let secs: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let nanos: u32 = digits.parse().ok()?;
    Some(if !neg {
        Mtime { secs, nanos }
    } else if nanos == 0 {
        Mtime { secs: -secs, nanos: 0 }
    } else {
        Mtime { secs: -secs - 1, nanos: 1_000_000_000 - nanos }
    })
}

/// Go's `formatPAXTime`: whole seconds, or seconds and a fraction without trailing zeros.
pub fn format_pax_time(t: Mtime) -> String {
    if t.nanos == 0 {
        return t.secs.to_string();
    }
    let (sign, secs, nanos) = if t.secs < 0 {
        ("-", -(t.secs + 1), 1_000_000_000 - t.nanos)
    } else {
        ("", t.secs, t.nanos)
    };
    let s = format!("{sign}{secs}.{nanos:09}");
    s.trim_end_matches('0').to_string()
}

/// Reads a tar stream entry by entry, calling `f` with each entry (path cleaned, checked) and its
/// data. `id` names the stream in errors. Whatever `f` leaves unread is drained.
pub(crate) fn for_each_entry<E: From<LayerError>>(
    id: &str,
    reader: &mut dyn Read,
    mut f: impl FnMut(Entry, &mut EntryData<'_>) -> Result<(), E>,
) -> Result<(), E> {
    let read_err = |source: io::Error| LayerError::Read { layer: id.to_string(), source };
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(read_err)?;
    for item in entries {
        let mut tar_entry = item.map_err(read_err)?;
        let entry = match convert(id, &mut tar_entry)? {
            Some(e) => e,
            None => {
                let size = tar_entry.size();
                let mut data = EntryData::new(&mut tar_entry, size);
                if data.drain().is_err() {
                    if let Some(err) = data.take_failure(id, "(skipped entry)") {
                        return Err(err.into());
                    }
                }
                continue;
            }
        };
        let size = entry.size();
        let path = entry.path.clone();
        let mut data = EntryData::new(&mut tar_entry, size);
        let result = f(entry, &mut data);
        if let Some(err) = data.take_failure(id, &path) {
            return Err(err.into());
        }
        result?;
        if data.drain().is_err() {
            if let Some(err) = data.take_failure(id, &path) {
                return Err(err.into());
            }
        }
    }
    Ok(())
}

/// A numeric header field; an empty one (all NUL or spaces) reads as 0, as Go's reader does.
fn numeric(parsed: io::Result<u64>, raw: &[u8]) -> Option<u64> {
    match parsed {
        Ok(v) => Some(v),
        Err(_) if raw.iter().all(|&b| b == 0 || b == b' ') => Some(0),
        Err(_) => None,
    }
}

/// Turns a tar entry into our model. `None` for entries that carry no file (global PAX headers,
/// the root directory itself).
fn convert<R: Read>(id: &str, te: &mut tar::Entry<'_, R>) -> Result<Option<Entry>, LayerError> {
    let raw_path = te.path_bytes().into_owned();
    let shown = String::from_utf8_lossy(&raw_path).into_owned();
    let err_path = |what: &str| LayerError::BadHeader {
        layer: id.to_string(),
        path: shown.clone(),
        what: what.to_string(),
    };
    let header = te.header().clone();
    let etype = header.entry_type();
    if etype.is_pax_global_extensions() {
        return Ok(None);
    }
    let name = String::from_utf8(raw_path)
        .map_err(|_| LayerError::NotUtf8 { layer: id.to_string(), path: shown.clone() })?;
    let path = clean_path(&name)
        .ok_or_else(|| LayerError::PathEscapes { layer: id.to_string(), path: shown.clone() })?;
    if path.is_empty() {
        return Ok(None);
    }
    let link = match te.link_name_bytes() {
        Some(l) => {
            Some(String::from_utf8(l.into_owned()).map_err(|e| LayerError::LinkNotUtf8 {
                layer: id.to_string(),
                path: shown.clone(),
                target: String::from_utf8_lossy(e.as_bytes()).into_owned(),
            })?)
        }
        None => None,
    };
    let device = |h: &tar::Header| -> Result<(u32, u32), LayerError> {
        let major = h.device_major().map_err(|_| err_path("bad device major"))?.unwrap_or(0);
        let minor = h.device_minor().map_err(|_| err_path("bad device minor"))?.unwrap_or(0);
        Ok((major, minor))
    };
    let kind = match etype {
        // Old (v7) archives mark directories only by a trailing `/` on a regular-file type.
        tar::EntryType::Regular if etype.as_byte() == 0 && name.ends_with('/') => EntryKind::Dir,
        tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File { size: te.size() },
        tar::EntryType::Directory => EntryKind::Dir,
        tar::EntryType::Symlink => EntryKind::Symlink { target: link.unwrap_or_default() },
        tar::EntryType::Link => {
            let raw = link.unwrap_or_default();
            let target = match clean_path(&raw) {
                Some(t) if !t.is_empty() => t,
                _ => {
                    return Err(LayerError::LinkEscapes {
                        layer: id.to_string(),
                        path: shown,
                        target: raw,
                    })
                }
            };
            EntryKind::HardLink { target }
        }
        tar::EntryType::Char => {
            let (major, minor) = device(&header)?;
            EntryKind::Char { major, minor }
        }
        tar::EntryType::Block => {
            let (major, minor) = device(&header)?;
            EntryKind::Block { major, minor }
        }
        tar::EntryType::Fifo => EntryKind::Fifo,
        other => {
            return Err(LayerError::UnsupportedType {
                layer: id.to_string(),
                path: shown,
                kind: other.as_byte() as char,
            })
        }
    };
    let mut entry = Entry {
        path,
        kind,
        // Kept as the image wrote it: Docker's classic builder sets file-type bits (0100644)
        // and LinuxKit's tar copies them; consumers take `perm()`.
        mode: numeric(header.mode().map(u64::from), &header.as_old().mode)
            .ok_or_else(|| err_path("bad mode field"))? as u32
            & 0o7777777,
        uid: numeric(header.uid(), &header.as_old().uid)
            .ok_or_else(|| err_path("bad uid field"))?,
        gid: numeric(header.gid(), &header.as_old().gid)
            .ok_or_else(|| err_path("bad gid field"))?,
        uname: header.username().ok().flatten().unwrap_or_default().to_string(),
        gname: header.groupname().ok().flatten().unwrap_or_default().to_string(),
        mtime: Mtime::secs(
            numeric(header.mtime(), &header.as_old().mtime)
                .ok_or_else(|| err_path("bad mtime field"))? as i64,
        ),
        pax: Vec::new(),
    };
    if let Some(exts) =
        te.pax_extensions().map_err(|source| LayerError::Read { layer: id.to_string(), source })?
    {
        for ext in exts {
            let ext = ext.map_err(|_| err_path("malformed PAX record"))?;
            let key = ext.key().map_err(|_| err_path("PAX key is not UTF-8"))?.to_string();
            let value = ext.value().map_err(|_| err_path("PAX value is not UTF-8"))?.to_string();
            match key.as_str() {
                "mtime" => {
                    entry.mtime = parse_pax_time(&value).ok_or_else(|| err_path("bad PAX mtime"))?
                }
                "uid" => entry.uid = value.parse().map_err(|_| err_path("bad PAX uid"))?,
                "gid" => entry.gid = value.parse().map_err(|_| err_path("bad PAX gid"))?,
                "uname" => entry.uname = value,
                "gname" => entry.gname = value,
                // Go parses these into times and formats them again when writing.
                "atime" | "ctime" => {
                    let t =
                        parse_pax_time(&value).ok_or_else(|| err_path("bad PAX atime/ctime"))?;
                    entry.set_pax(&key, &format_pax_time(t));
                }
                k if is_basic_pax_key(k) => {}
                _ => entry.set_pax(&key, &value),
            }
        }
    }
    Ok(Some(entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_is_go_clean_made_relative() {
        assert_eq!(clean_path("etc/passwd").as_deref(), Some("etc/passwd"));
        assert_eq!(clean_path("a/./b").as_deref(), Some("a/b"));
        assert_eq!(clean_path("a/b/").as_deref(), Some("a/b"));
        assert_eq!(clean_path("./etc/").as_deref(), Some("etc"));
        assert_eq!(clean_path("/etc//passwd").as_deref(), Some("etc/passwd"));
        assert_eq!(clean_path("a/../b").as_deref(), Some("b"));
        assert_eq!(clean_path("/../etc").as_deref(), Some("etc"));
        assert_eq!(clean_path("./").as_deref(), Some(""));
        assert_eq!(clean_path("../etc"), None);
        assert_eq!(clean_path("a/../../etc"), None);
    }

    #[test]
    fn pax_time_parses_fractions_and_negatives() {
        assert_eq!(
            parse_pax_time("1500000000.5"),
            Some(Mtime { secs: 1_500_000_000, nanos: 500_000_000 })
        );
        assert_eq!(parse_pax_time("12"), Some(Mtime::secs(12)));
        assert_eq!(parse_pax_time("-1.25"), Some(Mtime { secs: -2, nanos: 750_000_000 }));
        assert_eq!(parse_pax_time("x"), None);
    }
}
