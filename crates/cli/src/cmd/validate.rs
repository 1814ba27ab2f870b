//! `baleen validate FILE...`: load, merge and check configs exactly as `build` would.

use super::config_input::{self, OutFormat};
use clap::Args;

/// Exit status: 0 valid, 1 invalid (problems on stderr), 2 usage (bad flags, unreadable file).
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// LinuxKit YAML files, merged left to right as `build` does: the kernel of a later file
    /// overrides, lists (init, onboot, services, files, volumes…) are concatenated. `-` reads
    /// stdin.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
    /// Also print the merged config on stdout, as `yaml` or `json`.
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<OutFormat>,
    /// Same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Print image references in their canonical form (`alpine` → `docker.io/library/alpine`).
    #[arg(long)]
    expand_refs: bool,
}

/// `quiet` (`-q`) drops the summary line: the exit status alone says the files are valid.
pub fn run(args: ValidateArgs, quiet: bool) -> anyhow::Result<i32> {
    let inputs = config_input::read_inputs(&args.files)?;
    let cfg = match config_input::load(&inputs) {
        Ok(cfg) => cfg,
        Err(diags) => {
            config_input::report(&diags);
            return Ok(crate::exit::FAILURE);
        }
    };
    let format = if args.json { Some(OutFormat::Json) } else { args.format };
    if let Some(format) = format {
        let cfg = if args.expand_refs { cfg.with_expanded_refs() } else { cfg.clone() };
        config_input::print_config(&cfg, format)?;
    }
    if quiet {
        return Ok(crate::exit::OK);
    }
    eprintln!(
        "{}: valid ({} init, {} onboot, {} onshutdown, {} services, {} files, {} volumes)",
        args.files.join(" "),
        cfg.init.len(),
        cfg.onboot.len(),
        cfg.onshutdown.len(),
        cfg.services.len(),
        cfg.files.len(),
        cfg.volumes.len()
    );
    Ok(crate::exit::OK)
}
