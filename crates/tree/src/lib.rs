//! The image tree: the one ordered stream of filesystem entries that every output format
//! consumes.
//!
//! Key types: [`Entry`] (one filesystem object: path, [`EntryKind`], mode, owner, mtime, PAX
//! records), [`EntrySink`] (what formats implement), [`Layer`] and [`Image`] (plain inputs: a
//! layer is a `Read` of a tar, gzip or zstd blob), [`flatten`] (whiteouts, as
//! go-containerregistry's `mutate.Extract`), and [`TreeWriter`], which writes LinuxKit's sections
//! in LinuxKit's order: kernel, init, volumes, onboot, onshutdown, services, files. Sinks
//! compose: [`Fanout`] feeds several sinks (formats) from one pass, [`Listing`] prints a tree for
//! golden files, [`Collect`] keeps it in memory for tests. [`Limits`] bound what a tree may
//! expand to (a decompression bomb, `--max-size`); [`LimitError`] says which bound an error is
//! about ([`TreeError::limit`]).
//!
//! Invariants: entry data streams from the layer to the sink (memory is O(paths), never
//! O(bytes), except the compressed kernel when `--decompress-kernel` asks for it and the small
//! apk databases); paths from images never contain `..` or a leading `/`; no path reaches a
//! [`TreeWriter`]'s sink longer than [`PATH_MAX`] or with a component longer than [`NAME_MAX`];
//! an image with a hard link to itself, to a directory, to nothing or to a file later in its own
//! layer is an error (once its layers are read, for a target that could come from a lower one); synthesized entries carry
//! [`DEFAULT_MTIME`] and uid/gid 0; the same inputs give the same stream.
//!
//! Non-goals: writing any output format (crates/formats), reading YAML or rendering
//! `config.json` (crates/spec), pulling images (crates/oci), touching host paths.

mod entry;
mod fanout;
mod files;
mod flatten;
mod image;
mod input;
mod kernel;
mod layer;
mod limits;
mod listing;
mod oci_layout;
mod writer;

pub use entry::{
    Civil, Collect, Entry, EntryKind, EntrySink, Mtime, DEFAULT_MTIME, PAX_LOCATION, PAX_SOURCE,
};
pub use fanout::{Branch, Fanout};
pub use files::{parent_dir_mode, FileData, FileItem, FileKind};
pub use flatten::flatten;
pub use image::{Image, RESOLVCONF_SYMLINK};
pub use input::{for_each_section_entry, read_tar_file, section_reader, SectionIndex};
pub use kernel::{decompress_kernel, KernelError, KernelOptions};
pub use layer::{clean_path, decompress, format_pax_time, parse_pax_time, Layer, LayerError};
pub use limits::{
    bytes, shown, Expansion, LimitError, Limits, DEFAULT_MAX_EXPANSION, DEFAULT_MAX_TREE_BYTES,
    EXPANSION_FLOOR, NAME_MAX, PATH_MAX,
};
pub use listing::{describe, Listing};
pub use oci_layout::{OciLayout, OCI_LAYOUT_FILE};
pub use writer::{origin_of, Bundle, Section, TreeError, TreeWriter};
