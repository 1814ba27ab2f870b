//! The directory tree a filesystem image needs, gathered from the entry stream: the squashfs and
//! erofs writers stream file data to their output as entries arrive and keep only this metadata
//! (O(paths), never O(bytes)) until the end, when directories are laid out sorted by name.
//!
//! Stream semantics as on tar extraction: later entries at a path win (a directory re-emitted
//! keeps its children and takes the new owner/mode), missing parents are created (0755, root,
//! the fixed epoch), and a hard link names the node its target names at that moment.
//!
//! Non-goals: xattrs, sockets (tar has none), ACLs.

use baleen_tree::{Entry, EntryKind, Mtime, DEFAULT_MTIME};
use std::collections::BTreeMap;

/// What a node is; `D` is where the writer put a regular file's data.
#[derive(Debug)]
pub(crate) enum Kind<D> {
    /// Children by name, in byte order (the order both formats store).
    Dir(BTreeMap<Vec<u8>, usize>),
    File {
        size: u64,
        data: D,
    },
    Symlink(Vec<u8>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

#[derive(Debug)]
pub(crate) struct Node<D> {
    pub kind: Kind<D>,
    /// Permission bits with setuid/setgid/sticky.
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Mtime,
}

impl<D> Node<D> {
    /// The `S_IFMT` bits of this node.
    pub fn ifmt(&self) -> u32 {
        match self.kind {
            Kind::Dir(_) => 0o040000,
            Kind::File { .. } => 0o100000,
            Kind::Symlink(_) => 0o120000,
            Kind::Char(..) => 0o020000,
            Kind::Block(..) => 0o060000,
            Kind::Fifo => 0o010000,
        }
    }

    pub fn children(&self) -> Option<&BTreeMap<Vec<u8>, usize>> {
        match &self.kind {
            Kind::Dir(c) => Some(c),
            _ => None,
        }
    }
}

/// Why an entry could not join the tree.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error(
        "hard link {path:?}: its target {target:?} is not a non-directory earlier in the tree"
    )]
    MissingLinkTarget { path: String, target: String },
    #[error("{path:?}: uid/gid {id} does not fit 32 bits")]
    BigId { path: String, id: u64 },
}

/// The arena: node 0 is the root. Replaced nodes stay in the arena unreachable; writers walk
/// from the root.
#[derive(Debug)]
pub(crate) struct FsTree<D> {
    pub nodes: Vec<Node<D>>,
}

/// The kernel's `new_encode_dev`, which both formats store.
pub(crate) fn encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

impl<D> FsTree<D> {
    pub fn new() -> Self {
        FsTree { nodes: vec![Self::dir_node()] }
    }

    fn dir_node() -> Node<D> {
        Node {
            kind: Kind::Dir(BTreeMap::new()),
            perm: 0o755,
            uid: 0,
            gid: 0,
            mtime: Mtime::secs(DEFAULT_MTIME),
        }
    }

    /// The node a path names now, if any.
    pub fn lookup(&self, path: &str) -> Option<usize> {
        let mut at = 0;
        for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
            at = *self.nodes[at].children()?.get(part.as_bytes())?;
        }
        Some(at)
    }

    /// The directory node `path` names, creating missing directories (and replacing
    /// non-directories in the way, as tar extraction does).
    fn dir(&mut self, path: &[&str]) -> usize {
        let mut at = 0;
        for part in path {
            let existing = self.nodes[at].children().and_then(|c| c.get(part.as_bytes())).copied();
            at = match existing {
                Some(n) if matches!(self.nodes[n].kind, Kind::Dir(_)) => n,
                _ => {
                    let n = self.nodes.len();
                    self.nodes.push(Self::dir_node());
                    if let Kind::Dir(c) = &mut self.nodes[at].kind {
                        c.insert(part.as_bytes().to_vec(), n);
                    }
                    n
                }
            };
        }
        at
    }

    /// Adds an entry; `data` is the writer's record of a regular file's bytes (already
    /// written), `None` for other kinds.
    pub fn insert(&mut self, entry: &Entry, data: Option<D>) -> Result<(), TreeError> {
        let id = |v: u64| {
            u32::try_from(v).map_err(|_| TreeError::BigId { path: entry.path.clone(), id: v })
        };
        let (uid, gid) = (id(entry.uid)?, id(entry.gid)?);
        let parts: Vec<&str> =
            entry.path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
        let Some((name, parents)) = parts.split_last() else {
            // The root itself: only a directory can describe it.
            if matches!(entry.kind, EntryKind::Dir) {
                let root = &mut self.nodes[0];
                (root.perm, root.uid, root.gid, root.mtime) = (entry.perm(), uid, gid, entry.mtime);
            }
            return Ok(());
        };
        let parent = self.dir(parents);
        let kind = match &entry.kind {
            EntryKind::HardLink { target } => {
                let n = self
                    .lookup(target)
                    .filter(|&n| self.nodes[n].children().is_none())
                    .ok_or_else(|| TreeError::MissingLinkTarget {
                        path: entry.path.clone(),
                        target: target.clone(),
                    })?;
                if let Kind::Dir(c) = &mut self.nodes[parent].kind {
                    c.insert(name.as_bytes().to_vec(), n);
                }
                return Ok(());
            }
            EntryKind::Dir => {
                let at = self.dir(&parts);
                let node = &mut self.nodes[at];
                (node.perm, node.uid, node.gid, node.mtime) = (entry.perm(), uid, gid, entry.mtime);
                return Ok(());
            }
            EntryKind::File { size } => match data {
                Some(data) => Kind::File { size: *size, data },
                None => unreachable!("writers pass data for files"),
            },
            EntryKind::Symlink { target } => Kind::Symlink(target.as_bytes().to_vec()),
            EntryKind::Char { major, minor } => Kind::Char(*major, *minor),
            EntryKind::Block { major, minor } => Kind::Block(*major, *minor),
            EntryKind::Fifo => Kind::Fifo,
        };
        let n = self.nodes.len();
        self.nodes.push(Node { kind, perm: entry.perm(), uid, gid, mtime: entry.mtime });
        if let Kind::Dir(c) = &mut self.nodes[parent].kind {
            c.insert(name.as_bytes().to_vec(), n);
        }
        Ok(())
    }

    /// Reachable nodes in breadth-first order from the root (each once, hard links included),
    /// with the number of names each has (its link count before directories' `..`).
    pub fn reachable(&self) -> (Vec<usize>, Vec<u32>) {
        let mut names = vec![0u32; self.nodes.len()];
        let mut order = vec![0];
        names[0] = 1;
        let mut i = 0;
        while i < order.len() {
            if let Some(c) = self.nodes[order[i]].children() {
                for &n in c.values() {
                    names[n] += 1;
                    if names[n] == 1 {
                        order.push(n);
                    }
                }
            }
            i += 1;
        }
        (order, names)
    }

    /// The link count a filesystem stores: 2 + subdirectories for a directory, the number of
    /// names otherwise.
    pub fn nlink(&self, n: usize, names: &[u32]) -> u32 {
        match self.nodes[n].children() {
            Some(c) => {
                let subdirs =
                    c.values().filter(|&&k| matches!(self.nodes[k].kind, Kind::Dir(_))).count();
                // Saturates, as link counts do, rather than wrap.
                u32::try_from(subdirs).map_or(u32::MAX, |s| s.saturating_add(2))
            }
            None => names[n],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(path: &str, kind: EntryKind) -> Entry {
        Entry::new(path, kind, 0o644)
    }

    #[test]
    fn later_entries_win_and_parents_are_made() {
        let mut t = FsTree::<u32>::new();
        t.insert(&e("a/b/f", EntryKind::File { size: 1 }), Some(1)).unwrap();
        t.insert(&e("a/b/f", EntryKind::File { size: 2 }), Some(2)).unwrap();
        t.insert(&Entry { uid: 5, ..e("a", EntryKind::Dir) }, None).unwrap();
        let f = t.lookup("a/b/f").unwrap();
        assert!(matches!(t.nodes[f].kind, Kind::File { size: 2, data: 2 }));
        let a = t.lookup("a").unwrap();
        assert_eq!(t.nodes[a].uid, 5);
        assert!(t.lookup("a/b").is_some(), "a re-emitted directory keeps its children");
    }

    #[test]
    fn hard_links_share_a_node_and_count_names() {
        let mut t = FsTree::<u32>::new();
        t.insert(&e("x", EntryKind::File { size: 0 }), Some(0)).unwrap();
        t.insert(&e("d/y", EntryKind::HardLink { target: "x".into() }), None).unwrap();
        assert_eq!(t.lookup("x"), t.lookup("d/y"));
        let (order, names) = t.reachable();
        assert_eq!(order.len(), 3, "root, x, d; y is x");
        assert_eq!(t.nlink(t.lookup("x").unwrap(), &names), 2);
        assert_eq!(t.nlink(0, &names), 3);
        let err = t.insert(&e("z", EntryKind::HardLink { target: "nope".into() }), None);
        assert!(matches!(err, Err(TreeError::MissingLinkTarget { .. })));
    }
}
