//! Rust binaries that came prebuilt with the program, used when a package's `rust:` binary
//! cannot be built here: no Cargo workspace above the package (a copy of `pkg/init` outside the
//! checkout, a release tarball), or no cargo on `PATH`.
//!
//! The `baleen` binary embeds the static `baleen-init` it was built with (`crates/cli/build.rs`)
//! and hands the list to [`provide`] once at startup, the one process-wide hook of this crate.
//! Each entry carries the [`rust_inputs::digest`](crate::rust_inputs::digest) of the sources it
//! was built from: inside a workspace it stands in for cargo only when those sources are the
//! checkout's, so an image is never tagged with one source's hash and another's bytes.

use std::sync::OnceLock;

/// One embedded static binary, built as `pkg build` builds a `static: true` binary (musl,
/// `--profile release-init`).
#[derive(Debug)]
pub struct Prebuilt {
    /// The Cargo package and binary names, as in build.yml's `rust:`.
    pub package: &'static str,
    pub bin: &'static str,
    /// The Debian architecture it runs on (`amd64`, `arm64`).
    pub arch: &'static str,
    /// The digest of the sources it was built from.
    pub inputs: &'static str,
    /// Its crate's version and the crates it is built from, for the SBOM
    /// ([`crate::rust_inputs::locked_crates_text`]).
    pub crates: &'static str,
    pub bytes: &'static [u8],
}

/// What the program embeds, and why not more (printed when a binary is missing).
#[derive(Debug)]
pub struct Provided {
    pub binaries: &'static [Prebuilt],
    /// Why an architecture is absent, e.g. "built without the aarch64-unknown-linux-musl target".
    pub missing: &'static str,
}

static PROVIDED: OnceLock<&'static Provided> = OnceLock::new();

/// Makes `provided` available to every later build and tag in this process. A second call is
/// ignored: the program embeds one set.
pub fn provide(provided: &'static Provided) {
    let _ = PROVIDED.set(provided);
}

/// The provided set, if the program gave one.
pub fn provided() -> Option<&'static Provided> {
    PROVIDED.get().copied()
}

/// The prebuilt `bin` of `package` for `arch`.
pub fn find(package: &str, bin: &str, arch: &str) -> Option<&'static Prebuilt> {
    provided()?.binaries.iter().find(|p| p.package == package && p.bin == bin && p.arch == arch)
}

/// The source digest of prebuilt `package` (any architecture: they share the sources).
pub fn inputs_of(package: &str) -> Option<&'static str> {
    provided()?.binaries.iter().find(|p| p.package == package).map(|p| p.inputs)
}
