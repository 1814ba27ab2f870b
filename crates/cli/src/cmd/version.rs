//! `baleen version`: the version and the commit `build.rs` embedded.

use clap::Args;

/// `0.1.0 (commit abc123def456[-dirty])`: what `baleen version` and `baleen --version` print
/// after the name.
pub const LONG: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("BALEEN_COMMIT"), ")");

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print only the version number.
    #[arg(long, conflicts_with = "commit")]
    short: bool,
    /// Print only the commit (`unknown` when built outside a git checkout).
    #[arg(long)]
    commit: bool,
}

pub fn run(args: VersionArgs) -> anyhow::Result<i32> {
    if args.short {
        println!("{}", env!("CARGO_PKG_VERSION"));
    } else if args.commit {
        println!("{}", env!("BALEEN_COMMIT"));
    } else {
        println!("baleen {LONG}");
    }
    Ok(crate::exit::OK)
}
