use clap::Args;

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print only the version number.
    #[arg(long)]
    short: bool,
}

pub fn run(args: VersionArgs) -> anyhow::Result<i32> {
    if args.short {
        println!("{}", env!("CARGO_PKG_VERSION"));
    } else {
        println!("baleen version {}", env!("CARGO_PKG_VERSION"));
    }
    Ok(crate::exit::OK)
}
