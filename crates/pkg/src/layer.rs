//! Assembling one deterministic layer tar from `.deb` data archives and declared entries.
//!
//! Entries are collected first (file bytes spooled to one temporary file, so memory stays flat
//! for a kernel's 40 MB of modules) and written sorted by path, with implied parent directories,
//! mtime fixed to [`EPOCH`], numeric owners only, hard links turned into copies and dropped paths
//! left out. A later entry for the same path replaces an earlier one, as unpacking in order would.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The mtime of every entry: Unix time 0, as `SOURCE_DATE_EPOCH=0` would give.
pub const EPOCH: u64 = 0;

/// The largest file read aside while unpacking (a `.deb`'s copyright file), and the largest
/// control file read.
pub const MAX_CAPTURE: u64 = 1 << 20;

pub use crate::sbom::DebMeta;

/// Whether `add_entries` applies the drop globs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DropMode {
    Apply,
    Keep,
}

/// A `.deb` member (`control.tar.xz`, `data.tar.zst`…) decompressed.
fn decompress<'a>(
    member: impl Read + 'a,
    name: &str,
    what: &str,
) -> Result<Box<dyn Read + 'a>, LayerError> {
    let read = |source| LayerError::Read { what: what.to_owned(), source };
    Ok(match name.rsplit_once(".tar").map(|(_, ext)| ext) {
        Some(".xz") => Box::new(liblzma::read::XzDecoder::new(member)),
        Some(".zst") => Box::new(zstd::stream::read::Decoder::new(member).map_err(read)?),
        Some(".gz") => Box::new(flate2::read::GzDecoder::new(member)),
        Some("") => Box::new(member),
        _ => {
            return Err(LayerError::Compression { what: what.to_owned(), member: name.to_owned() })
        }
    })
}

/// `Package`, `Version`, `Architecture` and `Source` of the `control` file in a control tar.
fn read_control(r: impl Read, what: &str) -> Result<DebMeta, LayerError> {
    let read = |source| LayerError::Read { what: what.to_owned(), source };
    let mut archive = tar::Archive::new(r);
    for entry in archive.entries().map_err(read)? {
        let entry = entry.map_err(read)?;
        if norm(&String::from_utf8_lossy(&entry.path_bytes())).as_deref() != Some("control") {
            continue;
        }
        let mut text = String::new();
        entry.take(MAX_CAPTURE).read_to_string(&mut text).map_err(read)?;
        let p = crate::deb::control::parse(&text).into_iter().next().unwrap_or_default();
        let field = |k: &str| p.get(k).unwrap_or_default().to_owned();
        return Ok(DebMeta {
            package: field("Package"),
            version: field("Version"),
            architecture: field("Architecture"),
            source: p.get("Source").map(str::to_owned),
            copyright: None,
        });
    }
    Ok(DebMeta::default())
}

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("reading {what}")]
    Read { what: String, source: std::io::Error },
    #[error("{what}: no data.tar member (is it a .deb?)")]
    NoData { what: String },
    #[error("{what}: unsupported data archive {member:?}")]
    Compression { what: String, member: String },
    #[error("{what}: entry {path:?} leaves the image root")]
    Escape { what: String, path: String },
    #[error("drop glob {glob:?}: {message}")]
    Glob { glob: String, message: String },
    #[error("spooling layer data in {dir}")]
    Spool { dir: PathBuf, source: std::io::Error },
    #[error("writing the layer tar")]
    Write(#[source] std::io::Error),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// Offset and length in the spool.
    File {
        offset: u64,
        len: u64,
    },
    Symlink(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

/// A set of filesystem entries on its way to becoming a layer.
#[derive(Debug)]
pub struct LayerBuilder {
    spool: File,
    spool_len: u64,
    nodes: BTreeMap<String, Node>,
    drop: Vec<glob::Pattern>,
}

impl LayerBuilder {
    /// `drop`: globs of relative paths (`usr/share/doc/**`) left out of `.deb` contents.
    pub fn new(drop: &[String]) -> Result<LayerBuilder, LayerError> {
        let drop = drop
            .iter()
            .map(|g| {
                glob::Pattern::new(g)
                    .map_err(|e| LayerError::Glob { glob: g.clone(), message: e.to_string() })
            })
            .collect::<Result<_, _>>()?;
        let dir = std::env::temp_dir();
        let spool = tempfile::tempfile().map_err(|source| LayerError::Spool { dir, source })?;
        Ok(LayerBuilder { spool, spool_len: 0, nodes: BTreeMap::new(), drop })
    }

    fn dropped(&self, path: &str) -> bool {
        let opts = glob::MatchOptions { require_literal_separator: true, ..Default::default() };
        self.drop.iter().any(|g| g.matches_with(path, opts))
    }

    /// Unpacks the `data.tar.{xz,zst,gz}` member of a `.deb`; `what` names it in errors.
    /// Returns what its control file says and its copyright file, read before the drop globs
    /// leave `usr/share/doc` out (the SBOM's source package and licence).
    pub fn add_deb(&mut self, deb: &Path, what: &str) -> Result<DebMeta, LayerError> {
        let read = |source| LayerError::Read { what: what.to_owned(), source };
        let f = File::open(deb).map_err(read)?;
        self.read_deb(std::io::BufReader::new(f), what)
    }

    /// [`LayerBuilder::add_deb`] on a `.deb` already open as a stream: the entry point of the
    /// `deb` fuzz target (fuzz/), which feeds it untrusted bytes without a file.
    pub fn add_deb_from(&mut self, deb: impl Read, what: &str) -> Result<(), LayerError> {
        self.read_deb(deb, what).map(|_| ())
    }

    fn read_deb(&mut self, deb: impl Read, what: &str) -> Result<DebMeta, LayerError> {
        let read = |source| LayerError::Read { what: what.to_owned(), source };
        let mut meta = DebMeta::default();
        let mut ar = ar::Archive::new(deb);
        while let Some(member) = ar.next_entry() {
            let member = member.map_err(read)?;
            let name = String::from_utf8_lossy(member.header().identifier()).into_owned();
            if name.starts_with("control.tar") {
                meta = read_control(decompress(member, &name, what)?, what)?;
                continue;
            }
            if !name.starts_with("data.tar") {
                continue;
            }
            let copyright = format!("usr/share/doc/{}/copyright", meta.package);
            let capture = (!meta.package.is_empty()).then_some(copyright.as_str());
            meta.copyright =
                self.add_tar_capturing(decompress(member, &name, what)?, what, capture)?;
            return Ok(meta);
        }
        Err(LayerError::NoData { what: what.to_owned() })
    }

    /// Adds every entry of a tar stream. With `apply_drop`, entries matching the drop globs are
    /// skipped.
    pub fn add_tar(
        &mut self,
        r: impl Read,
        what: &str,
        apply_drop: bool,
    ) -> Result<(), LayerError> {
        let drop = if apply_drop { DropMode::Apply } else { DropMode::Keep };
        self.add_entries(r, what, drop, None).map(|_| ())
    }

    /// [`LayerBuilder::add_tar`] with the drop globs applied, returning the bytes of the regular
    /// file at `capture` (even when dropped) when it is at most [`MAX_CAPTURE`] bytes.
    fn add_tar_capturing(
        &mut self,
        r: impl Read,
        what: &str,
        capture: Option<&str>,
    ) -> Result<Option<Vec<u8>>, LayerError> {
        self.add_entries(r, what, DropMode::Apply, capture)
    }

    fn add_entries(
        &mut self,
        r: impl Read,
        what: &str,
        drop: DropMode,
        capture: Option<&str>,
    ) -> Result<Option<Vec<u8>>, LayerError> {
        let read = |source| LayerError::Read { what: what.to_owned(), source };
        let mut captured = None;
        let mut archive = tar::Archive::new(r);
        for entry in archive.entries().map_err(read)? {
            let mut entry = entry.map_err(read)?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(path) = norm(&raw) else {
                if raw.trim_start_matches("./").trim_matches('/').is_empty() {
                    continue; // the archive's own root "./"
                }
                return Err(LayerError::Escape { what: what.to_owned(), path: raw });
            };
            let wanted = capture == Some(path.as_str())
                && entry.header().entry_type().is_file()
                && entry.header().size().is_ok_and(|n| n <= MAX_CAPTURE);
            let bytes = if wanted {
                let mut b = Vec::new();
                entry.read_to_end(&mut b).map_err(read)?;
                captured = Some(b.clone());
                Some(b)
            } else {
                None
            };
            if drop == DropMode::Apply && self.dropped(&path) {
                continue;
            }
            let h = entry.header();
            let mode = h.mode().map_err(read)? & 0o7777;
            // An empty owner field means root, as GNU tar reads it.
            let uid = h.uid().unwrap_or(0);
            let gid = h.gid().unwrap_or(0);
            let kind = match h.entry_type() {
                tar::EntryType::Directory => Kind::Dir,
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    Kind::Symlink(target)
                }
                tar::EntryType::Link => {
                    // A hard link becomes a copy of its target's node: layers with hard links
                    // need the target in the same layer, and sorting could reorder them.
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    match norm(&target).and_then(|t| self.nodes.get(&t).cloned()) {
                        Some(n) => n.kind,
                        None => continue,
                    }
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let (offset, len) = match &bytes {
                        Some(b) => self.spool_from(&mut &b[..]),
                        None => self.spool_from(&mut entry),
                    }
                    .map_err(read)?;
                    Kind::File { offset, len }
                }
                other => {
                    tracing::debug!(
                        "{what}: skipping {path} ({other:?}); device nodes come from devtmpfs"
                    );
                    continue;
                }
            };
            self.nodes.insert(path, Node { kind, mode, uid, gid });
        }
        Ok(captured)
    }

    fn spool_from(&mut self, r: &mut impl Read) -> std::io::Result<(u64, u64)> {
        let offset = self.spool_len;
        self.spool.seek(SeekFrom::Start(offset))?;
        let len = std::io::copy(r, &mut self.spool)?;
        self.spool_len += len;
        Ok((offset, len))
    }

    /// Adds a regular file (owned by root) from a reader.
    pub fn add_file(&mut self, path: &str, mode: u32, mut r: impl Read) -> Result<(), LayerError> {
        let path = norm(path).ok_or_else(|| LayerError::Escape {
            what: "build.yml".into(),
            path: path.to_owned(),
        })?;
        let (offset, len) = self
            .spool_from(&mut r)
            .map_err(|source| LayerError::Read { what: path.clone(), source })?;
        self.nodes.insert(path, Node { kind: Kind::File { offset, len }, mode, uid: 0, gid: 0 });
        Ok(())
    }

    pub fn add_dir(&mut self, path: &str, mode: u32) -> Result<(), LayerError> {
        let path = norm(path).ok_or_else(|| LayerError::Escape {
            what: "build.yml".into(),
            path: path.to_owned(),
        })?;
        self.nodes.insert(path, Node { kind: Kind::Dir, mode, uid: 0, gid: 0 });
        Ok(())
    }

    pub fn add_symlink(&mut self, path: &str, target: &str) -> Result<(), LayerError> {
        let path = norm(path).ok_or_else(|| LayerError::Escape {
            what: "build.yml".into(),
            path: path.to_owned(),
        })?;
        self.nodes.insert(
            path,
            Node { kind: Kind::Symlink(target.to_owned()), mode: 0o777, uid: 0, gid: 0 },
        );
        Ok(())
    }

    /// The entries, sorted by path.
    pub fn nodes(&self) -> &BTreeMap<String, Node> {
        &self.nodes
    }

    /// Removes every entry for which `keep` is false.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &Node) -> bool) {
        self.nodes.retain(|p, n| keep(p, n));
    }

    /// The bytes of a regular file entry.
    pub fn read(&mut self, path: &str) -> Option<Vec<u8>> {
        let Kind::File { offset, len } = self.nodes.get(path)?.kind else { return None };
        let mut buf = vec![0u8; len as usize];
        self.spool.seek(SeekFrom::Start(offset)).ok()?;
        self.spool.read_exact(&mut buf).ok()?;
        Some(buf)
    }

    /// Writes the layer as an uncompressed tar: sorted, parents implied, mtimes fixed.
    pub fn write_tar<W: Write>(&mut self, w: W) -> Result<W, LayerError> {
        let mut all: BTreeMap<String, Node> = BTreeMap::new();
        for (path, node) in &self.nodes {
            let mut parent = Path::new(path).parent();
            while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                all.entry(p.to_string_lossy().into_owned()).or_insert(Node {
                    kind: Kind::Dir,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                });
                parent = p.parent();
            }
            all.insert(path.clone(), node.clone());
        }
        let mut b = tar::Builder::new(w);
        b.mode(tar::HeaderMode::Deterministic);
        for (path, node) in &all {
            let mut h = tar::Header::new_gnu();
            h.set_mode(node.mode);
            h.set_uid(node.uid);
            h.set_gid(node.gid);
            h.set_mtime(EPOCH);
            let res = match &node.kind {
                Kind::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    b.append_data(&mut h, format!("{path}/"), std::io::empty())
                }
                Kind::Symlink(target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    b.append_link(&mut h, path, target)
                }
                Kind::File { offset, len } => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(*len);
                    self.spool.seek(SeekFrom::Start(*offset)).map_err(LayerError::Write)?;
                    b.append_data(&mut h, path, (&mut self.spool).take(*len))
                }
            };
            res.map_err(LayerError::Write)?;
        }
        b.into_inner().map_err(LayerError::Write)
    }
}

/// `./usr/bin/x`, `/usr/bin/x/` → `usr/bin/x`; `None` for the root itself or a path with `..`.
pub fn norm(p: &str) -> Option<String> {
    crate::spec::image_path(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use baleen_testkit::Chain;

    /// A hostile .deb's member name reached the error as raw bytes: an escape sequence or a
    /// newline could rewrite the user's terminal or forge a second error line.
    #[test]
    fn an_unsupported_data_member_is_named_escaped() {
        let mut ar = ar::Builder::new(Vec::new());
        let name = b"data.tar.lz\x1b[2J\nerror: forged".to_vec();
        ar.append(&ar::Header::new(name, 0), &[][..]).unwrap();
        let deb = ar.into_inner().unwrap();
        let err = LayerBuilder::new(&[]).unwrap().add_deb_from(&deb[..], "evil.deb").unwrap_err();
        let text = err.chain();
        assert!(matches!(err, LayerError::Compression { .. }), "{text}");
        assert!(!text.contains('\x1b') && !text.contains('\n'), "{text:?}");
        assert!(text.contains("data.tar.lz"), "{text}");
    }

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(1_700_000_000);
            h.set_uid(1000);
            h.set_gid(0);
            b.append_data(&mut h, p, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn listing(tar_bytes: &[u8]) -> Vec<String> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                format!(
                    "{} {:o} {} {}",
                    e.path().unwrap().display(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                    h.uid().unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn sorted_with_parents_fixed_times_and_drops() {
        let mut l = LayerBuilder::new(&["usr/share/doc/**".to_owned(), "usr/share/doc".to_owned()])
            .unwrap();
        let t = tar_of(&[
            ("./usr/share/doc/x/copyright", b"c"),
            ("./usr/bin/z", b"z"),
            ("./etc/a", b"a"),
        ]);
        l.add_tar(&t[..], "test.deb", true).unwrap();
        l.add_symlink("/bin/sh", "busybox").unwrap();
        let out = l.write_tar(Vec::new()).unwrap();
        assert_eq!(
            listing(&out),
            [
                "bin/ 755 0 0",
                "bin/sh 777 0 0",
                "etc/ 755 0 0",
                "etc/a 644 0 1000",
                "usr/ 755 0 0",
                "usr/bin/ 755 0 0",
                "usr/bin/z 644 0 1000"
            ]
        );
        let again = l.write_tar(Vec::new()).unwrap();
        assert_eq!(out, again, "writing twice gives the same bytes");
    }

    #[test]
    fn escaping_entries_are_rejected() {
        let mut l = LayerBuilder::new(&[]).unwrap();
        let t = tar_of(&[("./ok", b"1")]);
        l.add_tar(&t[..], "good.deb", true).unwrap();
        // tar's builder refuses `..`, so write the name into the header by hand.
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
        h.set_size(0);
        h.set_cksum();
        let mut raw = h.as_bytes().to_vec();
        raw.extend_from_slice(&[0u8; 1024]);
        let err = l.add_tar(&raw[..], "evil.deb", true).unwrap_err().chain();
        assert!(err.contains("evil.deb") && err.contains("../escape"), "{err}");
    }

    #[test]
    fn later_entries_replace_and_read_back() {
        let mut l = LayerBuilder::new(&[]).unwrap();
        l.add_file("/etc/x", 0o600, &b"one"[..]).unwrap();
        l.add_file("etc/x", 0o644, &b"two"[..]).unwrap();
        assert_eq!(l.read("etc/x").unwrap(), b"two");
        assert_eq!(l.nodes()["etc/x"].mode, 0o644);
    }
}
