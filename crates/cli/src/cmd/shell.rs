//! `baleen completions SHELL` and `baleen man`: generated from the clap definitions, so they
//! cannot drift from the flags.

use anyhow::Context;
use clap::{Args, CommandFactory};
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(after_long_help = "\
Install, e.g.:
  baleen completions bash > /etc/bash_completion.d/baleen
  baleen completions zsh > \"${fpath[1]}/_baleen\"
  baleen completions fish > ~/.config/fish/completions/baleen.fish")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write baleen.1 and one page per subcommand (baleen-build.1, baleen-cache-ls.1…) into
    /// this directory instead of printing baleen(1) on stdout.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn completions(args: CompletionsArgs) -> anyhow::Result<i32> {
    let mut cmd = super::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "baleen", &mut std::io::stdout().lock());
    Ok(crate::exit::OK)
}

pub fn man(args: ManArgs, quiet: bool) -> anyhow::Result<i32> {
    let cmd = super::Cli::command();
    match args.dir {
        None => {
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout().lock())
                .context("writing the man page to stdout")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
            if !quiet {
                eprintln!("wrote the man pages into {}", dir.display());
            }
        }
    }
    Ok(crate::exit::OK)
}
