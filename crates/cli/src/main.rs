//! `baleen`: the command-line shim. Parses flags, calls into the library crates, prints the error
//! chain and maps it to an exit code. No logic that a library needs lives here.

mod cmd;
mod exit;
mod linuxkit_argv;

/// The static baleen-init binaries build.rs embedded (`PREBUILT`), for `pkg build pkg/init`
/// without cargo or the sources.
mod prebuilt_init {
    include!(concat!(env!("OUT_DIR"), "/prebuilt_init.rs"));
}

use clap::{CommandFactory, Parser};

fn main() {
    // Built, so that clap's own --help and --version are among the flags (`-version` too).
    let mut command = cmd::Cli::command();
    command.build();
    let argv = match linuxkit_argv::rewrite(&command, std::env::args_os().collect()) {
        Ok(argv) => argv,
        Err(err) => std::process::exit(exit::report(&err.into())),
    };
    let cli = cmd::Cli::parse_from(argv);
    exit::init_logging(cli.global.verbose, cli.global.quiet);
    baleen_pkg::prebuilt::provide(&prebuilt_init::PREBUILT);
    let code = match cmd::run(cli) {
        Ok(code) => code,
        Err(err) => exit::report(&err),
    };
    std::process::exit(code);
}
