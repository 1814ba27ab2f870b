//! Pass 1 of the ISO writer: [`IsoTree`], an [`EntrySink`] that keeps the tree's metadata in
//! memory and spools file data, in stream order, to a file the caller gives it.
//!
//! ISO 9660 puts every directory before the data it points to, and a directory's size depends on
//! its children's names: nothing can be written until the tree has ended. Spooling keeps memory
//! at O(entries) whatever the file sizes; pass 2 ([`IsoTree::write`]) copies the data back.
//! Later entries win, as on extraction: a re-emitted directory updates its metadata and keeps
//! its children; any other replacement drops what was there. Hard links share the data (and
//! the extent) of their target.

use super::IsoWriteError;
use baleen_tree::{Entry, EntryKind, EntrySink, DEFAULT_MTIME};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};

#[derive(Debug, Clone, Copy)]
pub(super) struct Meta {
    /// Permission bits with setuid/setgid/sticky (no type bits).
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
}

impl Meta {
    fn of(e: &Entry) -> Result<Meta, IsoWriteError> {
        let id = |id: u64| {
            u32::try_from(id).map_err(|_| IsoWriteError::BigId { path: e.path.clone(), id })
        };
        Ok(Meta { perm: e.perm(), uid: id(e.uid)?, gid: id(e.gid)?, mtime: e.mtime.secs })
    }

    pub(super) fn synthesized(perm: u32) -> Meta {
        Meta { perm, uid: 0, gid: 0, mtime: DEFAULT_MTIME }
    }
}

#[derive(Debug)]
pub(super) enum Kind {
    /// Children by POSIX name.
    Dir(BTreeMap<String, u32>),
    /// Index into the blobs.
    File(u32),
    Symlink(String),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
    /// The El Torito boot catalog, made by the writer.
    Catalog,
}

#[derive(Debug)]
pub(super) struct Node {
    pub name: String,
    pub meta: Meta,
    pub kind: Kind,
}

/// A file's data in the spool.
#[derive(Debug, Clone, Copy)]
pub(super) struct Blob {
    pub offset: u64,
    pub len: u64,
}

/// The metadata of a tree and its spooled file data; see the module doc.
#[derive(Debug)]
pub struct IsoTree<S> {
    pub(super) nodes: Vec<Node>,
    pub(super) blobs: Vec<Blob>,
    pub(super) spool: S,
    spool_len: u64,
    /// The blob of the last entry added, for [`IsoTree::reread_last`].
    last: Option<Blob>,
    /// SHA-256 of every entry's metadata, in stream order, and a CRC-32 of all file data: the
    /// seed of identifiers. (SHA-256 over the data would cost more than the rest of the pass.)
    pub(super) hash: Sha256,
    pub(super) data_crc: flate2::Crc,
    buf: Vec<u8>,
}

pub(super) const ROOT: u32 = 0;

/// A directory of one hierarchy (ISO 9660's or Joliet's) as the writer lays it out.
pub(super) struct Dir {
    pub node: u32,
    /// Its identifier in its parent (`\0` for the root).
    pub id: Vec<u8>,
    /// Index of the parent in the directory list (the root is its own parent).
    pub parent: usize,
    /// Children as (identifier, node), in record order.
    pub children: Vec<(Vec<u8>, u32)>,
    pub subdirs: u32,
    pub lba: u32,
    pub sectors: u32,
}

impl<S> IsoTree<S> {
    /// The directories breadth first (the path table's order). `ids` gives a directory's
    /// children as (identifier, node) in record order, leaving out what the hierarchy cannot
    /// hold.
    pub(super) fn breadth_first(
        &self,
        mut ids: impl FnMut(&BTreeMap<String, u32>) -> Vec<(Vec<u8>, u32)>,
    ) -> Vec<Dir> {
        let dir = |node, id, parent| Dir {
            node,
            id,
            parent,
            children: vec![],
            subdirs: 0,
            lba: 0,
            sectors: 0,
        };
        let mut dirs = vec![dir(ROOT, vec![0], 0)];
        let mut i = 0;
        while i < dirs.len() {
            let Kind::Dir(children) = &self.nodes[dirs[i].node as usize].kind else {
                unreachable!("only directories are queued")
            };
            let kids = ids(children);
            let mut subdirs = 0;
            for (id, node) in &kids {
                if matches!(self.nodes[*node as usize].kind, Kind::Dir(_)) {
                    subdirs += 1;
                    dirs.push(dir(*node, id.clone(), i));
                }
            }
            dirs[i].children = kids;
            dirs[i].subdirs = subdirs;
            i += 1;
        }
        dirs
    }
}

fn bad(e: IsoWriteError) -> io::Error {
    io::Error::other(e)
}

impl<S: Read + Write + Seek> IsoTree<S> {
    /// A tree with an empty root (0755, root-owned, LinuxKit's epoch) spooling to `spool`,
    /// which should be empty and positioned at its start.
    pub fn new(spool: S) -> Self {
        IsoTree {
            nodes: vec![Node {
                name: String::new(),
                meta: Meta::synthesized(0o755),
                kind: Kind::Dir(BTreeMap::new()),
            }],
            blobs: Vec::new(),
            spool,
            spool_len: 0,
            last: None,
            hash: Sha256::new(),
            data_crc: flate2::Crc::new(),
            buf: Vec::new(),
        }
    }

    /// Reads back the data of the entry just added (empty if it had none): lets one tree pass
    /// feed a second sink without reading the source twice.
    pub fn reread_last(&mut self) -> io::Result<io::Take<&mut S>> {
        let blob = self.last.unwrap_or(Blob { offset: self.spool_len, len: 0 });
        self.spool.seek(SeekFrom::Start(blob.offset))?;
        Ok((&mut self.spool).take(blob.len))
    }

    fn child(&self, dir: u32, name: &str) -> Option<u32> {
        match &self.nodes[dir as usize].kind {
            Kind::Dir(children) => children.get(name).copied(),
            _ => None,
        }
    }

    /// The node at `path` (relative, `/`-separated), if any.
    pub(super) fn lookup(&self, path: &str) -> Option<u32> {
        let mut at = ROOT;
        for c in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
            at = self.child(at, c)?;
        }
        Some(at)
    }

    /// Puts `node` at `parent/name`, replacing what was there (a directory over a directory
    /// only takes the new metadata).
    pub(super) fn place(&mut self, parent: u32, node: Node) -> u32 {
        if let Some(old) = self.child(parent, &node.name) {
            let o = &mut self.nodes[old as usize];
            match (&o.kind, &node.kind) {
                (Kind::Dir(_), Kind::Dir(_)) => o.meta = node.meta,
                _ => *o = node,
            }
            return old;
        }
        // Fits: add_entry refuses an entry that could take the ids past u32::MAX.
        #[allow(clippy::cast_possible_truncation)]
        let id = self.nodes.len() as u32;
        let name = node.name.clone();
        self.nodes.push(node);
        if let Kind::Dir(children) = &mut self.nodes[parent as usize].kind {
            children.insert(name, id);
        }
        id
    }

    /// The directory that holds `path`'s last component, created (0755, root, epoch) where
    /// missing. A symlink in the way to a directory of the tree is followed, as the kernel's
    /// initramfs unpacker and tar do (`lib -> usr/lib` with entries under `lib/modules`); any other
    /// non-directory in the way is replaced.
    pub(super) fn parent_of<'p>(&mut self, path: &'p str) -> Result<(u32, &'p str), IsoWriteError> {
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
        if comps.contains(&"..") {
            return Err(IsoWriteError::BadPath { path: path.to_string() });
        }
        let Some((last, dirs)) = comps.split_last() else { return Ok((ROOT, "")) };
        let mut at = ROOT;
        let mut at_path: Vec<String> = Vec::new();
        for d in dirs {
            let followed = match self.child(at, d).map(|c| &self.nodes[c as usize].kind) {
                Some(Kind::Dir(_)) => {
                    at = self.child(at, d).expect("just found");
                    at_path.push((*d).to_string());
                    continue;
                }
                Some(Kind::Symlink(target)) => {
                    let target = target.clone();
                    self.resolve_dir(&at_path, &target, 0)
                }
                _ => None,
            };
            match followed {
                Some((dir, dir_path)) => (at, at_path) = (dir, dir_path),
                None => {
                    at = self.place(
                        at,
                        Node {
                            name: (*d).to_string(),
                            meta: Meta::synthesized(0o755),
                            kind: Kind::Dir(BTreeMap::new()),
                        },
                    );
                    at_path.push((*d).to_string());
                }
            }
        }
        Ok((at, last))
    }

    /// The directory a symlink with `target`, in the directory at `from`, leads to, if it is one
    /// of the tree (symlinks followed, at most 16 deep, `..` stopping at the root).
    fn resolve_dir(&self, from: &[String], target: &str, depth: u32) -> Option<(u32, Vec<String>)> {
        if depth > 16 {
            return None;
        }
        let mut want: Vec<String> =
            if target.starts_with('/') { Vec::new() } else { from.to_vec() };
        for c in target.split('/').filter(|c| !c.is_empty() && *c != ".") {
            if c == ".." {
                want.pop();
            } else {
                want.push(c.to_string());
            }
        }
        let mut at = ROOT;
        let mut at_path: Vec<String> = Vec::new();
        for c in &want {
            let child = self.child(at, c)?;
            match &self.nodes[child as usize].kind {
                Kind::Dir(_) => {
                    at = child;
                    at_path.push(c.clone());
                }
                Kind::Symlink(t) => (at, at_path) = self.resolve_dir(&at_path, t, depth + 1)?,
                _ => return None,
            }
        }
        Some((at, at_path))
    }

    fn add_entry(&mut self, entry: &Entry, data: &mut dyn Read) -> Result<(), io::Error> {
        self.last = None;
        let (parent, name) = self.parent_of(&entry.path).map_err(bad)?;
        // Node and blob ids are u32: keep room for this entry, its parents and the catalog.
        let room = self.nodes.len() + entry.path.split('/').count() + 2;
        if u32::try_from(room).is_err() {
            return Err(bad(IsoWriteError::TooManyEntries { path: entry.path.clone() }));
        }
        let meta = Meta::of(entry).map_err(bad)?;
        self.hash.update(entry.path.as_bytes());
        self.hash.update([0]);
        self.hash.update(format!(
            "{:?} {:o} {} {} {}",
            entry.kind, meta.perm, meta.uid, meta.gid, meta.mtime
        ));
        let kind = match &entry.kind {
            EntryKind::Dir => Kind::Dir(BTreeMap::new()),
            EntryKind::File { size } => {
                let offset = self.spool_len;
                self.spool.seek(SeekFrom::Start(offset))?;
                let n = self.spool_copy(&mut data.take(*size))?;
                if n != *size {
                    return Err(bad(IsoWriteError::ShortData {
                        path: entry.path.clone(),
                        want: *size,
                        got: n,
                    }));
                }
                self.spool_len += n;
                let blob = Blob { offset, len: n };
                self.last = Some(blob);
                self.blobs.push(blob);
                // Fits: there are fewer blobs than nodes, whose ids add_entry keeps in u32.
                #[allow(clippy::cast_possible_truncation)]
                let blob = self.blobs.len() as u32 - 1;
                Kind::File(blob)
            }
            EntryKind::Symlink { target } => Kind::Symlink(target.clone()),
            EntryKind::HardLink { target } => {
                let t = self.lookup(target).ok_or_else(|| {
                    bad(IsoWriteError::HardLink {
                        path: entry.path.clone(),
                        target: target.clone(),
                    })
                })?;
                match &self.nodes[t as usize].kind {
                    Kind::File(b) => Kind::File(*b),
                    Kind::Symlink(s) => Kind::Symlink(s.clone()),
                    Kind::Char(a, b) => Kind::Char(*a, *b),
                    Kind::Block(a, b) => Kind::Block(*a, *b),
                    Kind::Fifo => Kind::Fifo,
                    Kind::Dir(_) | Kind::Catalog => {
                        return Err(bad(IsoWriteError::HardLink {
                            path: entry.path.clone(),
                            target: target.clone(),
                        }))
                    }
                }
            }
            EntryKind::Char { major, minor } => Kind::Char(*major, *minor),
            EntryKind::Block { major, minor } => Kind::Block(*major, *minor),
            EntryKind::Fifo => Kind::Fifo,
        };
        if name.is_empty() {
            // The root itself: only its metadata can change.
            if matches!(kind, Kind::Dir(_)) {
                self.nodes[ROOT as usize].meta = meta;
            }
            return Ok(());
        }
        self.place(parent, Node { name: name.to_string(), meta, kind });
        Ok(())
    }
}

impl<S: Read + Write + Seek> IsoTree<S> {
    /// Copies `data` to the spool (at its current position), summing it; returns the length.
    fn spool_copy(&mut self, data: &mut dyn Read) -> io::Result<u64> {
        // Large chunks: the spool is usually an unbuffered file.
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(COPY_CHUNK, 0);
        let mut n = 0u64;
        let result = loop {
            let k = match data.read(&mut buf) {
                Ok(0) => break Ok(n),
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            };
            self.data_crc.update(&buf[..k]);
            if let Err(e) = self.spool.write_all(&buf[..k]) {
                break Err(e);
            }
            n += k as u64;
        };
        self.buf = buf;
        result
    }
}

const COPY_CHUNK: usize = 256 * 1024;

impl<S: Read + Write + Seek> EntrySink for IsoTree<S> {
    fn add(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        self.add_entry(entry, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::num::usize_of;

    fn add(t: &mut IsoTree<io::Cursor<Vec<u8>>>, path: &str, kind: EntryKind) {
        let data = vec![b'x'; kind_size(&kind)];
        t.add(&Entry::new(path, kind, 0o755), &mut &data[..]).unwrap();
    }

    fn kind_size(k: &EntryKind) -> usize {
        match k {
            EntryKind::File { size } => usize_of(*size),
            _ => 0,
        }
    }

    /// Issue 23: `Meta::of` took `uid as u32`, so an owner id past 32 bits (a PAX tar can
    /// carry one) was written into Rock Ridge's PX entry wrapped, as another user.
    #[test]
    fn an_owner_id_past_32_bits_is_refused_not_wrapped() {
        let mut t = IsoTree::new(io::Cursor::new(Vec::new()));
        let big = (1u64 << 32) + 7;
        let entry = Entry { uid: big, ..Entry::new("etc/x", EntryKind::File { size: 0 }, 0o644) };
        let err = t.add(&entry, &mut &[][..]).unwrap_err();
        let inner = err.get_ref().and_then(|e| e.downcast_ref::<IsoWriteError>());
        assert!(
            matches!(inner, Some(IsoWriteError::BigId { path, id }) if path == "etc/x" && *id == big),
            "{err:?}"
        );
        let gid = Entry { gid: big, ..Entry::new("etc/y", EntryKind::Dir, 0o755) };
        assert!(t.add(&gid, &mut &[][..]).is_err());
        let fits = Entry { uid: u64::from(u32::MAX), ..Entry::new("etc/z", EntryKind::Dir, 0o755) };
        t.add(&fits, &mut &[][..]).unwrap();
    }

    #[test]
    fn entries_under_a_symlinked_directory_land_in_its_target() {
        let mut t = IsoTree::new(io::Cursor::new(Vec::new()));
        add(&mut t, "usr/lib", EntryKind::Dir);
        add(&mut t, "lib", EntryKind::Symlink { target: "usr/lib".into() });
        add(&mut t, "lib/modules/6.1/x.ko", EntryKind::File { size: 3 });
        add(&mut t, "opt/a", EntryKind::Symlink { target: "../usr/./lib/".into() });
        add(&mut t, "opt/a/y", EntryKind::File { size: 1 });
        add(&mut t, "loop", EntryKind::Symlink { target: "loop".into() });
        add(&mut t, "loop/z", EntryKind::File { size: 1 });
        assert!(matches!(t.nodes[t.lookup("lib").unwrap() as usize].kind, Kind::Symlink(_)));
        assert!(t.lookup("usr/lib/modules/6.1/x.ko").is_some());
        assert!(t.lookup("usr/lib/y").is_some(), "relative targets resolve from the link's dir");
        assert!(t.lookup("loop/z").is_some(), "a symlink loop is replaced by a directory");
        assert!(matches!(t.nodes[t.lookup("loop").unwrap() as usize].kind, Kind::Dir(_)));
    }
}
