//! baleen-pkg: building component images without Docker.
//!
//! A package is a directory holding `build.yml` ([`spec::BuildSpec`]). Its tag
//! ([`tag::show_tag`]) is a content hash of everything the build reads, so the same inputs give the
//! same tag and the same image bytes.
//!
//! Non-goals: no Dockerfiles, no maintainer scripts (Debian `postinst` and friends never run: the
//! image gets what the `.deb` data archives hold plus what `build.yml` declares), no emulation for
//! foreign architectures (an arm64 image is assembled from arm64 `.deb`s).

pub mod builder;
pub mod deb;
pub mod image;
pub mod kmod;
pub mod layer;
pub mod lock;
pub mod spec;
mod store;
pub use store::{open_store, push};
pub mod tag;

pub use builder::{build, lock, Built, Options};
pub use spec::BuildSpec;
pub use tag::{show_tag, Tag};

/// The error of any operation of this crate, named by module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Spec(#[from] spec::Error),
    #[error("{0}")]
    Tag(#[from] tag::Error),
}
