//! LinuxKit's YAML language for baleen (docs/yaml.md; where baleen differs: docs/compat.md,
//! "Configuration").
//!
//! - [`Config`] and friends ([`Image`], [`ImageConfig`], [`File`], [`Volume`]): the typed
//!   configuration, every key of LinuxKit's schema and nothing else.
//! - [`load`] / [`load_all`]: bytes → validated [`Config`], every problem a [`Diagnostic`] with
//!   file:line:column, key path (`services[2].capabilities[0]`) and a "did you mean" when a key or
//!   capability is misspelled. [`append`] merges files like `linuxkit build a.yml b.yml`.
//! - [`reference`]: LinuxKit's reference expansion and a syntax check of image references.
//! - [`IdMap`]: the per-container uid/gid numbering that files and containers refer to.
//! - [`TemplateResolver`]: how `@pkg:` templates are resolved, supplied by the caller.
//! - [`parse_label`]: the `org.mobyproject.config` image label, validated with the same rules.
//! - [`runtime::config_to_oci`] / [`runtime::runtime_json`]: a container's `config.json` and
//!   `runtime.json` ([`oci::Spec`], [`oci::RuntimeJson`]), byte-compatible with LinuxKit through
//!   [`oci::to_go_json`].
//! - [`privileges::grants`] / [`privileges::attribute`]: the host-level power a rendered
//!   container gets (binds of `/`, all capabilities, all devices…) and whether the YAML or the
//!   image label asked for it.
//! - [`metadata::yaml`] / [`metadata::json`]: the contents of a `metadata: yaml|json` file, as
//!   LinuxKit serializes the merged config.
//!
//! Non-goals: no I/O at all (callers hand over names and bytes), no network, no knowledge of
//! registries or output formats.

mod check;
mod config;
mod decode;
mod diag;
mod ids;
mod load;
mod merge;
mod node;
mod schema;

pub mod chain;
pub mod escape;
/// Lexical path cleaning: baleen-init's file, included (as `sysctl`) so the rule has one home.
#[path = "../../init/src/lexical.rs"]
mod lexical;
pub mod metadata;
pub mod oci;
pub mod privileges;
pub mod runtime;
/// Which sysctls a container may set: the file baleen-init enforces at container start, included
/// here so that `baleen build` refuses the same ones first (one rule, one home).
#[path = "../../init/src/sysctl.rs"]
pub mod sysctl;

pub mod reference;

pub use chain::chain;
pub use check::{bind, expand_capabilities, rlimit, tmpfs, Bind, Rlimit, ALL_CAPABILITIES};
pub use config::*;
pub use diag::{Diagnostic, Diagnostics};
pub use ids::{IdMap, FIRST_ID};
pub use load::{load, parse_label, Source, TemplateResolver};
pub use merge::{append, check_merged, load_all};
