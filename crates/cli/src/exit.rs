//! Exit codes and error printing, shared by every command.

/// Success.
pub const OK: i32 = 0;
/// The input (YAML, image, archive…) was invalid, or the operation failed.
pub const FAILURE: i32 = 1;
/// The command line itself was wrong (clap uses 2 as well).
pub const USAGE: i32 = 2;

/// Prints `error: outer: inner: …` on stderr and returns the exit code for it.
///
/// An error whose chain holds a [`UsageError`] maps to [`USAGE`].
pub fn report(err: &anyhow::Error) -> i32 {
    eprintln!("error: {err:#}");
    if err.chain().any(|e| e.is::<UsageError>()) {
        USAGE
    } else {
        FAILURE
    }
}

/// A command-line mistake that clap could not catch (conflicting values, a missing file
/// argument…). Exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Logs go to stderr; data goes to stdout. `-v` raises the level, `-q` silences all but errors.
/// `BALEEN_LOG` (an `EnvFilter` directive) overrides both.
pub fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("BALEEN_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .init();
}
