//! One image into the tree: LinuxKit's `ImageTar` filter on top of the flattened layers.
//!
//! - dropped: `.dockerenv`, `Dockerfile`, `dev/console`, `dev/pts`, `dev/shm`, `etc/hostname`;
//! - replaced (content, mtime → the fixed epoch): `etc/hosts`, `etc/resolv.conf` (or a symlink
//!   to `/run/resolvconf/resolv.conf` for init images and volumes);
//! - touched (appended, sorted, unless literally seen): `dev`, `dev/pts`, `dev/shm`, `etc`,
//!   `etc/hosts`, `etc/mtab`, `etc/resolv.conf`, `proc`, `sys`;
//! - every path moved under the prefix, hard-link targets too; every entry tagged with
//!   `LINUXKIT.source` / `LINUXKIT.location`.

use crate::entry::{Entry, EntryKind, Mtime, DEFAULT_MTIME};
use crate::flatten::flatten;
use crate::layer::{Layer, LayerError};
use crate::limits::Expansion;
use std::io::{self, Read};

/// An image as the tree consumes it: its canonical reference (written to `LINUXKIT.source`) and
/// its layers, bottom first.
#[derive(Debug)]
pub struct Image {
    pub reference: String,
    pub layers: Vec<Layer>,
}

/// Where `etc/resolv.conf` points in init images and volumes.
pub const RESOLVCONF_SYMLINK: &str = "/run/resolvconf/resolv.conf";

const EXCLUDE: &[&str] =
    &[".dockerenv", "Dockerfile", "dev/console", "dev/pts", "dev/shm", "etc/hostname"];

pub(crate) const HOSTS: &str = "127.0.0.1       localhost\n::1     localhost ip6-localhost ip6-loopback\nfe00::0 ip6-localnet\nff00::0 ip6-mcastprefix\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n";
pub(crate) const RESOLV_CONF: &str = "\n# no resolv.conf configured\n";

fn replacement(name: &str) -> Option<&'static str> {
    match name {
        "etc/hosts" => Some(HOSTS),
        "etc/resolv.conf" => Some(RESOLV_CONF),
        _ => None,
    }
}

/// LinuxKit's touch list, in its sort order (keys of directories end in `/`, which is why they
/// never match an image's cleaned names and are always re-emitted; `etc/hosts` and
/// `etc/resolv.conf` go through the replace branch, which never marks them found).
const TOUCH: &[(&str, &str)] = &[
    ("dev/", "dev"),
    ("dev/pts/", "dev/pts"),
    ("dev/shm/", "dev/shm"),
    ("etc/", "etc"),
    ("etc/hosts", "etc/hosts"),
    ("etc/mtab", "etc/mtab"),
    ("etc/resolv.conf", "etc/resolv.conf"),
    ("proc/", "proc"),
    ("sys/", "sys"),
];

/// Errors while one image is written; the caller adds the image reference.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ImageError {
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error("{}writing entry {}", in_layer(layer), crate::limits::shown(path))]
    Sink { layer: Option<String>, path: String, source: io::Error },
    #[error("{0}")]
    Other(String),
    /// What a section made itself (the kernel `--decompress-kernel` gunzips) went over a limit.
    #[error("{what}")]
    Limit { what: String, source: crate::limits::LimitError },
}

/// `layer sha256:…: ` when the entry came from a layer.
pub(crate) fn in_layer(layer: &Option<String>) -> String {
    layer.as_ref().map_or(String::new(), |l| format!("layer {l}: "))
}

impl ImageError {
    /// Names the layer an entry that the sink refused came from.
    fn blaming(self, id: &str) -> Self {
        match self {
            ImageError::Sink { layer: None, path, source } => {
                ImageError::Sink { layer: Some(id.to_string()), path, source }
            }
            other => other,
        }
    }
}

pub(crate) type Emit<'a> = dyn FnMut(&Entry, &mut dyn Read) -> Result<(), ImageError> + 'a;

/// Emits the leading directories of `prefix` (which ends in `/`), mode 0755, as `tarPrefix` does.
pub(crate) fn emit_prefix(
    prefix: &str,
    source: &str,
    location: &str,
    emit: &mut Emit<'_>,
) -> Result<(), ImageError> {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(());
    }
    let mut acc = String::new();
    for part in trimmed.split('/') {
        if !acc.is_empty() {
            acc.push('/');
        }
        acc.push_str(part);
        let dir = Entry::new(acc.clone(), EntryKind::Dir, 0o755).with_origin(source, location);
        emit(&dir, &mut io::empty())?;
    }
    Ok(())
}

/// Writes `image` under `prefix` (empty or ending in `/`). `None` writes only the prefix
/// directories, tagged `empty`, as LinuxKit does for a blank volume. A layer that expands past
/// `expansion` is an error.
pub(crate) fn image_tar(
    location: &str,
    image: Option<Image>,
    prefix: &str,
    resolv: Option<&str>,
    expansion: Option<Expansion>,
    emit: &mut Emit<'_>,
) -> Result<(), ImageError> {
    let source = image.as_ref().map_or("empty", |i| i.reference.as_str()).to_string();
    emit_prefix(prefix, &source, location, emit)?;
    let Some(image) = image else { return Ok(()) };
    let mut mtab_found = false;
    let mut each = |mut entry: Entry, data: &mut dyn Read| -> Result<(), ImageError> {
        let name = std::mem::take(&mut entry.path);
        if EXCLUDE.contains(&name.as_str()) {
            return Ok(());
        }
        entry.set_pax(crate::PAX_SOURCE, &source);
        entry.set_pax(crate::PAX_LOCATION, location);
        entry.path = format!("{prefix}{name}");
        if let Some(content) = replacement(&name) {
            entry.mtime = Mtime::secs(DEFAULT_MTIME);
            if let (Some(target), "etc/resolv.conf") = (resolv, name.as_str()) {
                entry.kind = EntryKind::Symlink { target: target.to_string() };
                return emit(&entry, &mut io::empty());
            }
            // LinuxKit keeps the header's type here; a symlink or link with content would make
            // its tar writer fail, so the replacement is always a regular file.
            if !matches!(entry.kind, EntryKind::File { .. }) {
                entry.mode = entry.perm();
            }
            entry.kind = EntryKind::File { size: content.len() as u64 };
            return emit(&entry, &mut content.as_bytes());
        }
        if name == "etc/mtab" {
            mtab_found = true;
            entry.mtime = Mtime::secs(DEFAULT_MTIME);
        }
        if let EntryKind::HardLink { target } = &mut entry.kind {
            *target = format!("{prefix}{target}");
        }
        emit(&entry, data)
    };
    flatten(image.layers, expansion, |layer: &str, entry, data: &mut dyn Read| {
        each(entry, data).map_err(|e| e.blaming(layer))
    })?;
    for (key, name) in TOUCH {
        if *key == "etc/mtab" && mtab_found {
            continue;
        }
        let path = format!("{prefix}{name}");
        let mut content: &[u8] = &[];
        let (kind, mode) = match *key {
            "etc/mtab" => (EntryKind::Symlink { target: "/proc/mounts".into() }, 0o755),
            "etc/resolv.conf" if resolv.is_some() => {
                (EntryKind::Symlink { target: resolv.unwrap_or_default().to_string() }, 0o644)
            }
            "etc/hosts" | "etc/resolv.conf" => {
                content = replacement(name).unwrap_or_default().as_bytes();
                (EntryKind::File { size: content.len() as u64 }, 0o644)
            }
            _ => (EntryKind::Dir, 0o755),
        };
        let entry = Entry::new(path, kind, mode).with_origin(&source, location);
        emit(&entry, &mut content)?;
    }
    Ok(())
}
