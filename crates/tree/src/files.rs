//! The `files` section (LinuxKit's `filesystem`): each item with its missing parent directories.
//!
//! The build crate resolves what needs the host or the config (reading `source`, skipping an
//! absent `optional` source, rendering `metadata`, parsing `mode`, mapping user names to ids);
//! this module owns the tree rules: leading `/` stripped, 0600/0700 defaults, parent directories
//! emitted once per files section with the file's mode plus an x bit for each of user/group/other
//! that has any bit, and the file's owner (even for `etc`, as LinuxKit does).

use crate::entry::{Entry, EntryKind, EntrySink};
use crate::writer::TreeError;
use std::collections::HashSet;
use std::io::Read;

/// The data of a file item: small contents in memory, or a stream of known size.
pub enum FileData {
    Bytes(Vec<u8>),
    Stream { size: u64, reader: Box<dyn Read> },
}

impl std::fmt::Debug for FileData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileData::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            FileData::Stream { size, .. } => write!(f, "Stream({size} bytes)"),
        }
    }
}

#[derive(Debug)]
pub enum FileKind {
    Contents(FileData),
    Directory,
    Symlink(String),
}

/// One resolved `files` entry.
#[derive(Debug)]
pub struct FileItem {
    /// Index in the YAML `files` list (for `LINUXKIT.location` = `files[i]`).
    pub index: usize,
    pub path: String,
    pub kind: FileKind,
    /// Parsed octal `mode`; `None` gives 0600 for files and symlinks, 0700 for directories.
    pub mode: Option<u32>,
    pub uid: u64,
    pub gid: u64,
}

/// Adds an x bit to each of user/group/other that has any permission bit (0600 → 0700).
pub fn parent_dir_mode(mode: u32) -> u32 {
    let mut m = mode;
    if m & 0o700 != 0 {
        m |= 0o100;
    }
    if m & 0o070 != 0 {
        m |= 0o010;
    }
    if m & 0o007 != 0 {
        m |= 0o001;
    }
    m
}

/// Go's `path.Dir` components of a relative path, `.` dropped.
fn parent_parts(path: &str) -> Vec<&str> {
    let Some(i) = path.rfind('/') else { return Vec::new() };
    path[..i].split('/').filter(|p| !p.is_empty() && *p != ".").collect()
}

pub(crate) fn emit_files<S: EntrySink + ?Sized>(
    items: Vec<FileItem>,
    sink: &mut S,
) -> Result<(), TreeError> {
    let mut added: HashSet<String> = HashSet::new();
    for item in items {
        let location = format!("files[{}]", item.index);
        let fail = |message: String| TreeError::Files { location: location.clone(), message };
        if item.path.is_empty() {
            return Err(fail("did not specify path for file".into()));
        }
        let path = item.path.strip_prefix('/').unwrap_or(&item.path).to_string();
        let is_dir = matches!(item.kind, FileKind::Directory);
        let mode = item.mode.unwrap_or(if is_dir { 0o700 } else { 0o600 });
        let dir_mode = parent_dir_mode(mode);
        let mut root = String::new();
        for part in parent_parts(&path) {
            if !root.is_empty() {
                root.push('/');
            }
            root.push_str(part);
            if added.insert(root.clone()) {
                let mut e = Entry::new(root.clone(), EntryKind::Dir, dir_mode)
                    .with_origin("linuxkit.files", &location);
                e.uid = item.uid;
                e.gid = item.gid;
                sink.add(&e, &mut std::io::empty()).map_err(|source| TreeError::FilesSink {
                    location: location.clone(),
                    path: root.clone(),
                    source,
                })?;
            }
        }
        added.insert(path.clone());
        let entry_path = path.trim_end_matches('/').to_string();
        let (kind, mut data): (EntryKind, Box<dyn Read>) = match item.kind {
            FileKind::Directory => (EntryKind::Dir, Box::new(std::io::empty())),
            FileKind::Symlink(target) => {
                (EntryKind::Symlink { target }, Box::new(std::io::empty()))
            }
            FileKind::Contents(FileData::Bytes(b)) => {
                (EntryKind::File { size: b.len() as u64 }, Box::new(std::io::Cursor::new(b)))
            }
            FileKind::Contents(FileData::Stream { size, reader }) => {
                (EntryKind::File { size }, Box::new(reader.take(size)))
            }
        };
        let mut e = Entry::new(entry_path, kind, mode).with_origin("linuxkit.files", &location);
        e.uid = item.uid;
        e.gid = item.gid;
        sink.add(&e, &mut data).map_err(|source| TreeError::FilesSink {
            location: location.clone(),
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_mode_adds_x_where_any_bit_is_set() {
        assert_eq!(parent_dir_mode(0o600), 0o700);
        assert_eq!(parent_dir_mode(0o644), 0o755);
        assert_eq!(parent_dir_mode(0o640), 0o750);
        assert_eq!(parent_dir_mode(0o000), 0o000);
    }

    #[test]
    fn parents_follow_go_path_dir() {
        assert_eq!(parent_parts("etc/wireguard/wg0.conf"), vec!["etc", "wireguard"]);
        assert_eq!(parent_parts("file"), Vec::<&str>::new());
        assert_eq!(parent_parts("a/b/"), vec!["a", "b"]);
    }
}
