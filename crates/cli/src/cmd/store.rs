//! The image store every subcommand that reads or writes images names with `--cache`: one flag,
//! one resolution (`~/` is the home directory whether it comes from the flag or BALEEN_CACHE, as
//! LinuxKit expands `--cache`; the default is `Store::default_dir`).

use clap::Args;
use std::path::PathBuf;

/// `--cache DIR` (alias `--store`, env BALEEN_CACHE), flattened into each subcommand that takes
/// the store.
#[derive(Debug, Clone, Default, Args)]
pub struct StoreArgs {
    /// The image store: an OCI image layout directory in LinuxKit's cache format, so
    /// `--cache ~/.linuxkit/cache` shares LinuxKit's [default: ~/.baleen/cache].
    #[arg(long = "cache", visible_alias = "store", global = true, env = "BALEEN_CACHE")]
    #[arg(value_name = "DIR")]
    pub cache: Option<String>,
}

impl StoreArgs {
    /// The store directory: the one given (its `~/` expanded), else the default.
    pub fn dir(&self) -> PathBuf {
        resolve(self.cache.as_deref())
    }

    /// Whether a directory was named (flag or BALEEN_CACHE) rather than defaulted.
    pub fn given(&self) -> bool {
        self.cache.is_some()
    }
}

/// The store directory: `given`, else a non-empty BALEEN_CACHE (either with `~/rest` →
/// `$HOME/rest`), else `Store::default_dir`.
pub fn resolve(given: Option<&str>) -> PathBuf {
    let env = std::env::var("BALEEN_CACHE").ok().filter(|d| !d.is_empty());
    given
        .or(env.as_deref())
        .map(baleen_build::files::expand_home)
        .unwrap_or_else(baleen_oci::Store::default_dir)
}
