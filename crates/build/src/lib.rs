//! The build pipeline: a validated [`baleen_spec::Config`] and the content store in, the requested
//! output files out.
//!
//! Key types: [`Format`] (the one table of output formats: names, writer family, output files,
//! `--help` lines; [`format::Target`] is where a writer puts its files), [`Request`] (a build,
//! [`Request::new`] and defaults), [`Outputs`] (files
//! that appear whole or not at all), [`SbomOptions`] (the merged SPDX SBOM, [`sbom`]), [`Signing`]
//! (`--sign-key`/`--sign-cert`: the UKI signed for Secure Boot, [`sign`], with its TPM2 PCR 11
//! policy, [`tpm`]), [`verity`]
//! (`--verity`: a dm-verity hash tree after the root image of kernel+squashfs/erofs, or in a
//! partition of its own), [`root_partition`] (`--root`: the EFI disks' root partition), [`lock`]
//! (the image digests a build resolved), [`verify`] (`baleen verify`: an output against its
//! rebuild). The
//! pipeline pulls every image of the config, renders each container's `config.json`/
//! `runtime.json` (listing the containers with host-level power, [`privileges`]), streams the image tree into each format's writer, and commits the outputs
//! at the end (every destination checked before the first is replaced; [`output`]).
//!
//! Non-goals: parsing command-line flags (crates/cli), knowing how a format is laid out
//! (crates/formats), how layers are flattened (crates/tree) or how registries speak (crates/oci).

pub mod bios;
pub mod budget;
mod checks;
pub mod disk;
mod fetch;
pub mod files;
pub mod format;
pub mod images;
pub mod incremental;
pub mod iso;
pub mod lock;
pub mod oci_volume;
pub mod output;
mod pipe;
pub mod pipeline;
pub mod privileges;
pub mod root_partition;
pub mod rootfs;
pub mod rpi;
pub mod sbom;
pub mod scratch;
mod sections;
pub mod segments;
pub mod sign;
mod sparse_file;
pub mod tpm;
pub mod tree_file;
pub mod verify;
pub mod verity;

/// What the tree refuses to expand to (`--max-size`, `--max-expansion`), from crates/tree.
pub mod limits {
    pub use baleen_tree::{Expansion, LimitError, Limits, EXPANSION_FLOOR};
}

pub use budget::Budget;
pub use format::Format;
pub use output::Outputs;
pub use pipeline::{build, build_report, BuildError, Built, Output, Request};
pub use privileges::{PrivilegePolicy, Privileged, Privileges};
pub use root_partition::RootFs;
pub use sbom::SbomOptions;
pub use sign::Signing;
