//! Flattening an image's layers into one stream, as go-containerregistry's `mutate.Extract` does
//! (LinuxKit's behaviour): layers are read topmost first and each path is emitted once, by the
//! topmost layer that has it. `.wh.<name>` whiteouts hide `<name>` (and everything below it) in
//! the layers read after it; a non-directory hides everything below its path too.
//!
//! Unlike `mutate.Extract`, opaque directories (`.wh..wh..opq`) are honoured: the directory's
//! contents from lower layers are hidden (docs/compat.md). Duplicate paths within one layer keep
//! the first occurrence, as `mutate.Extract` does.
//!
//! Memory is O(number of paths): one node per path component seen, never file data. Time is
//! linear in the bytes of the paths: a path is looked up component by component in a tree of
//! the paths seen ([`PathIndex`]), never ancestor by ancestor as whole strings (which made a
//! layer of 10,000 nested directories cubic).

use crate::entry::{Entry, EntryKind};
use crate::layer::{decompress, for_each_entry, Layer, LayerError};
use crate::limits::{Counting, Expanding, Expansion};
use std::cell::Cell;
use std::collections::HashMap;
use std::io::Read;
use std::rc::Rc;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

/// What the topmost layer that named a path made of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Only an ancestor of paths seen: no layer named it yet.
    Not,
    Dir,
    /// A non-directory: it hides what lower layers have below it.
    Other,
    /// A `.wh.` whiteout: it hides the path and what is below it.
    Whiteout,
}

#[derive(Debug)]
struct Node {
    seen: Seen,
    /// An opaque marker of an upper layer hides this directory's contents in lower layers.
    opaque: bool,
    children: HashMap<Box<str>, usize>,
}

impl Node {
    fn new() -> Self {
        Node { seen: Seen::Not, opaque: false, children: HashMap::new() }
    }
}

/// Where a path stands while layers are read topmost first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// An ancestor is a whiteout, a non-directory or opaque: the path does not exist.
    Hidden,
    /// Nothing read so far named it or a path below it.
    Absent,
    /// An upper layer (or this one) named it, or (`Seen::Not`) only paths below it.
    Named(Seen),
}

/// The paths seen so far, as a tree of components (node 0 is the root).
#[derive(Debug)]
struct PathIndex {
    nodes: Vec<Node>,
    /// The directory the last entry was in (or that it was), and its node: a tar lists a
    /// directory's entries together, so most entries start there instead of at the root, and a
    /// path costs one lookup, not one per component. Valid until the next entry changes the
    /// index; opaque markers clear it.
    last_dir: String,
    last_node: Option<usize>,
}

impl PathIndex {
    fn new() -> Self {
        PathIndex { nodes: vec![Node::new()], last_dir: String::new(), last_node: None }
    }

    fn hides_below(&self, n: usize) -> bool {
        let node = &self.nodes[n];
        node.opaque || matches!(node.seen, Seen::Other | Seen::Whiteout)
    }

    fn lookup(&self, path: &str) -> Lookup {
        // An opaque marker at the top of an upper layer hides every lower layer.
        if self.nodes[0].opaque {
            return Lookup::Hidden;
        }
        let mut at = 0;
        let mut parts = path.split('/').peekable();
        while let Some(part) = parts.next() {
            let Some(&child) = self.nodes[at].children.get(part) else {
                return Lookup::Absent;
            };
            at = child;
            if parts.peek().is_none() {
                return Lookup::Named(self.nodes[at].seen);
            }
            if self.hides_below(at) {
                return Lookup::Hidden;
            }
        }
        Lookup::Absent
    }

    fn child(&mut self, at: usize, part: &str) -> usize {
        match self.nodes[at].children.get(part) {
            Some(&n) => n,
            None => {
                let n = self.nodes.len();
                self.nodes.push(Node::new());
                self.nodes[at].children.insert(part.into(), n);
                n
            }
        }
    }

    /// The node of directory `dir` (`""` is the root), made with its missing ancestors, unless
    /// it or an ancestor hides what is below it.
    fn open_dir(&mut self, dir: &str) -> Option<usize> {
        if self.nodes[0].opaque {
            return None;
        }
        let at = match self.last_node {
            Some(n) if self.last_dir == dir => n,
            _ => {
                let mut at = 0;
                for part in dir.split('/').filter(|p| !p.is_empty()) {
                    at = self.child(at, part);
                    if self.hides_below(at) {
                        return None;
                    }
                }
                at
            }
        };
        (!self.hides_below(at)).then_some(at)
    }

    fn remember(&mut self, dir: &str, node: usize) {
        self.last_dir.clear();
        self.last_dir.push_str(dir);
        self.last_node = Some(node);
    }

    /// Records what the layer being read makes of `name`, unless an upper layer (or an earlier
    /// entry of this one) decided it or something above it hides it; returns whether it did.
    fn decide(&mut self, name: &str, seen: Seen) -> bool {
        let (dir, base) = split(name);
        let Some(parent) = self.open_dir(dir) else { return false };
        self.remember(dir, parent);
        let n = self.child(parent, base);
        if self.nodes[n].seen != Seen::Not {
            return false;
        }
        self.nodes[n].seen = seen;
        if seen == Seen::Dir {
            self.remember(name, n);
        }
        true
    }

    /// Marks directory `dir` opaque for the layers below.
    fn make_opaque(&mut self, dir: &str) {
        let mut at = 0;
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            at = self.child(at, part);
        }
        self.nodes[at].opaque = true;
        self.last_node = None;
    }
}

/// Calls `f` with the layer's id for every visible entry of the image whose layers are given
/// bottom first (manifest order), streaming each entry's data from its layer. A layer that
/// expands past `expansion` is an error naming it ([`LayerError::Limit`]).
pub fn flatten<E: From<LayerError>>(
    layers: Vec<Layer>,
    expansion: Option<Expansion>,
    mut f: impl FnMut(&str, Entry, &mut dyn Read) -> Result<(), E>,
) -> Result<(), E> {
    let mut index = PathIndex::new();
    let mut links: Vec<Link> = Vec::new();
    for layer in layers.into_iter().rev() {
        let Layer { id, media_type, reader, size } = layer;
        let compressed = Rc::new(Cell::new(0));
        let expanded = Rc::new(Cell::new(0));
        let counted = Box::new(Counting { inner: reader, count: Rc::clone(&compressed) });
        let mut stream = Expanding {
            inner: decompress(&id, &media_type, counted)?,
            compressed,
            bound: expansion,
            expanded: Rc::clone(&expanded),
            tripped: None,
        };
        // With the layer's size known, a bomb is refused at the header that declares it.
        let declared_bound = expansion.zip(size);
        let mut opaque_here: Vec<String> = Vec::new();
        // Targets of this layer's links that nothing had named yet → the link's path.
        let mut not_yet: HashMap<String, String> = HashMap::new();
        let result = for_each_entry(&id, &mut stream, |entry, data| {
            if let Some((bound, size)) = declared_bound {
                bound
                    .check_declared(expanded.get(), entry.size(), size)
                    .map_err(|source| LayerError::Limit { layer: id.clone(), source })?;
            }
            let (dir, base) = split(&entry.path);
            if base == OPAQUE_MARKER {
                opaque_here.push(dir.to_string());
                return Ok(());
            }
            let tombstone = base.starts_with(WHITEOUT_PREFIX);
            let whited;
            let name = if tombstone {
                let real = &base[WHITEOUT_PREFIX.len()..];
                whited = if dir.is_empty() { real.to_string() } else { format!("{dir}/{real}") };
                whited.as_str()
            } else {
                entry.path.as_str()
            };
            // Tar and Docker extract in order: `link(2)` needs the target on disk already.
            if let Some(path) = not_yet.remove(name).filter(|_| !tombstone) {
                let target = entry.path;
                return Err(LayerError::HardLinkForward { layer: id.clone(), path, target }.into());
            }
            let seen = match (tombstone, &entry.kind) {
                (true, _) => Seen::Whiteout,
                (false, EntryKind::Dir) => Seen::Dir,
                (false, _) => Seen::Other,
            };
            if !index.decide(name, seen) {
                return Ok(());
            }
            if tombstone {
                return Ok(());
            }
            if let EntryKind::HardLink { target } = &entry.kind {
                let link =
                    || Link { layer: id.clone(), path: entry.path.clone(), target: target.clone() };
                if *target == entry.path {
                    return Err(
                        LayerError::HardLinkToSelf { layer: id.clone(), path: entry.path }.into()
                    );
                }
                match index.lookup(target) {
                    // In a lower layer (known once every layer is read), or later in this one
                    // (refused when it comes).
                    Lookup::Absent => {
                        not_yet.entry(target.clone()).or_insert_with(|| entry.path.clone());
                        links.push(link())
                    }
                    found => link().check(found)?,
                }
            }
            f(&id, entry, data)
        });
        // The bomb, not the read error it caused in whatever was reading.
        if let Some(source) = stream.tripped.take() {
            return Err(LayerError::Limit { layer: id, source }.into());
        }
        result?;
        // An opaque marker hides lower layers only, not its own layer's siblings.
        for dir in opaque_here {
            index.make_opaque(&dir);
        }
    }
    for link in links {
        let found = index.lookup(&link.target);
        link.check(found)?;
    }
    Ok(())
}

/// A hard link whose target was not known when it was read.
struct Link {
    layer: String,
    path: String,
    target: String,
}

impl Link {
    /// Whether the link can be made on extraction: its target must be a non-directory of the
    /// image (Linux refuses hard links to directories, and to nothing).
    fn check(self, target: Lookup) -> Result<(), LayerError> {
        let Link { layer, path, target: to } = self;
        match target {
            Lookup::Named(Seen::Other) => Ok(()),
            Lookup::Named(Seen::Dir | Seen::Not) => {
                Err(LayerError::HardLinkToDir { layer, path, target: to })
            }
            Lookup::Named(Seen::Whiteout) | Lookup::Hidden | Lookup::Absent => {
                Err(LayerError::HardLinkMissing { layer, path, target: to })
            }
        }
    }
}
