//! baleen-build's integration tests, linked as one binary (`autotests = false` in Cargo.toml):
//! each file below was its own test binary, and each linked the whole pipeline again (about
//! 155 MB apiece in a debug build). `cargo test -p baleen-build --test integration MODULE::`
//! runs one file's tests.
//!
//! `conformance.rs` stays a binary of its own: it sets the process's HOME and working
//! directory (the LinuxKit YAMLs it builds name `~/.ssh/...` and `./check.sh`), which the
//! other tests, running on threads of the same process, must not see.

mod common;

mod bios_boot;
mod boot;
mod damaged_store;
mod disk;
mod iso_bios;
mod oci_volume;
mod pipeline;
mod rootfs_boot;
mod sbom;
mod secure_boot;
mod segment_cache;
