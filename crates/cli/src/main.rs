//! `baleen`: the command-line shim. Parses flags, calls into the library crates, prints the error
//! chain and maps it to an exit code. No logic that a library needs lives here.

mod cmd;
mod exit;

use clap::Parser;

fn main() {
    let cli = cmd::Cli::parse();
    exit::init_logging(cli.global.verbose, cli.global.quiet);
    let code = match cmd::run(cli) {
        Ok(code) => code,
        Err(err) => exit::report(&err),
    };
    std::process::exit(code);
}
