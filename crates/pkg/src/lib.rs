//! baleen-pkg: building component images without Docker.
//!
//! A package is a directory holding `build.yml` ([`spec::BuildSpec`]). Its tag
//! ([`tag::show_tag`]) is a content hash of everything the build reads, so the same inputs give the
//! same tag and the same image bytes.
//!
//! Map:
//! - [`deb`]: the Debian archive — deb822 ([`deb::control`]), versions, the resolver
//!   ([`deb::resolve::Index`]), the verified HTTP client ([`deb::archive::Archive`]: signed
//!   InRelease, hashed Packages.xz and `.deb`s) and the host's apt sources.
//! - [`lock`]: `packages.lock` ([`lock::Lock`]), the resolved closure a build uses.
//! - [`layer`]: [`layer::LayerBuilder`], `.deb` data + declared files → one sorted, fixed-time tar.
//! - [`kmod`]: `.modinfo` reading and depmod's text files for the kernel component.
//! - [`image`]: OCI config/manifest/index writing into an [`image::Sink`] (the `baleen-oci`
//!   store, or an image-layout directory).
//! - [`sbom`]: the SPDX document attached to each image (Debian packages with their source and
//!   DEP-5 licence, workspace binaries with their Cargo.lock crates).
//! - [`audit`]: which pinned Debian packages the archive's suites now carry newer versions of.
//! - [`builder`]: `lock` and `build`, tying the above together.
//!
//! Non-goals: no Dockerfiles, no maintainer scripts (Debian `postinst` and friends never run: the
//! image gets what the `.deb` data archives hold plus what `build.yml` declares), no emulation for
//! foreign architectures (an arm64 image is assembled from arm64 `.deb`s).

pub mod audit;
pub mod builder;
/// The error chain on one line: `baleen-spec`'s file, included so that it has one home.
#[path = "../../spec/src/chain.rs"]
mod chain;
pub mod deb;
pub mod image;
pub mod kmod;
pub mod layer;
pub mod lock;
pub mod prebuilt;
pub mod rust_inputs;
pub mod sbom;
pub mod spec;
mod store;
use chain::chain;
pub mod tag;

pub use builder::{build, lock, Built, Options};

pub use spec::BuildSpec;
pub use store::{open_store, push};
pub use tag::{show_tag, Tag};
