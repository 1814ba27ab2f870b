//! OCI images for baleen: references, a registry client, and a verified content store.
//!
//! Key types:
//! - [`Reference`] (`alpine` → `docker.io/library/alpine:latest`), [`Digest`], [`Platform`].
//! - [`Store`]: an OCI image layout on disk (default `~/.baleen/cache`), the same layout and
//!   `index.json` annotations as LinuxKit's cache, so either tool reads the other's. Every blob
//!   is written to a temp file, verified (digest and size) and renamed into place.
//! - [`Image`]: one platform's manifest, config and layers, all present in the store.
//! - [`pull`] / [`push`] (async, on tokio; [`pull_blocking`], [`pull_all_blocking`] and
//!   [`push_blocking`] for synchronous callers), [`archive::export`] / [`archive::import`].
//!
//! - [`artifact`]: files (a built system) as an OCI artifact: stored, pushed, pulled.
//! - [`VerifiedBlob`]: a stored blob read back with its digest checked ([`Store::open_verified`]).
//!
//! Invariants, stated as absences: no blob reaches `blobs/` unverified, and none is read back
//! unverified (a damaged one is moved to `quarantine/`); no name in index.json
//! points at content that was not completely stored first; no plain HTTP except to loopback
//! hosts and hosts listed as insecure; no knowledge of YAML.
//!
//! Non-goals: Docker schema 1 manifests, signature verification (cosign/notation), resuming a
//! blob across runs (only within one pull).

pub mod archive;
pub mod artifact;
pub mod attestation;
mod digest;
pub mod manifest;
mod platform;
mod progress;
mod pull;
mod push;
mod reference;
pub mod registry;
mod store;
pub mod system_index;
pub mod written;

/// Text from an input (a registry's answer, an archive's names, an index's platforms) as an
/// error message shows it: control characters, newlines included, written as escapes (`\n`,
/// `\x1b`), so it can neither forge lines of the message nor steer a terminal.
pub(crate) fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    escape::escaped(s, false)
}

/// The escaping rule: `baleen-spec`'s file, included so that it has one home (see its doc).
#[path = "../../spec/src/escape.rs"]
mod escape;

/// The error chain on one line: `baleen-spec`'s file, included so that it has one home.
#[path = "../../spec/src/chain.rs"]
mod chain;
use chain::chain;

pub use digest::{Digest, DigestError, Hasher};
/// Descriptor and manifest types, re-exported so callers use the same `oci-spec` version.
pub use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};
pub use platform::{Platform, PlatformError};
pub use progress::{Progress, Transfer};
pub use pull::{
    is_published, is_published_blocking, pull, pull_all, pull_all_blocking, pull_blocking,
    pull_with, PullError, PullOptions,
};
pub use push::{push, push_blocking, PushError, PushOptions};
pub use reference::{Reference, ReferenceError, DOCKER_HUB};
pub use registry::{Client, RegistryError, RegistryOptions};
/// The index.json annotations that name cached images.
pub use store::index::{name_of, CONTAINERD_NAME, REF_NAME};
pub use store::{
    Blob, BlobCheck, Derived, GcReport, Image, Ingest, MovedAside, Problem, QuarantineBound, Store,
    StoreError, VerifiedBlob, VerifyReport, QUARANTINE, QUARANTINE_BOUND,
};
