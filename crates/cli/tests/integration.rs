//! The CLI's integration tests, linked as one binary (`autotests = false` in Cargo.toml): each
//! file below was its own test binary, and each linked baleen's libraries again.
//! `cargo test -p baleen --test integration MODULE::` runs one file's tests. None of them
//! changes process-wide state (environment, working directory): they set what they need on the
//! `baleen` commands they spawn.

mod arm64_boot;
mod audit_cli;
mod audit_outputs_cli;
mod build_cli;
mod cache_cli;
mod deliver_boot;
mod docs_cli;
mod examples_boot;
mod hostile_cli;
mod linuxkit_flags_cli;
mod pkg_alone_cli;
mod pkg_cli;
mod push_index_cli;
mod push_pull_cli;
mod rpi_cli;
mod run_secure_boot_cli;
mod serve_cli;
mod shell_cli;
mod validate_broken;
mod validate_ok;
mod verify_cli;
mod version_cli;
