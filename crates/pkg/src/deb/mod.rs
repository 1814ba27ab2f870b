//! Debian archives: control-file parsing, version comparison, dependency resolution, a verified
//! HTTP client and `.deb` unpacking.

pub mod archive;
pub mod changelog;
pub mod control;
pub mod resolve;
pub mod sources;
pub mod version;
