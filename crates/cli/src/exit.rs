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
    eprint_error(&format!("error: {}", message(err)));
    if err.chain().any(|e| e.is::<UsageError>()) {
        USAGE
    } else {
        FAILURE
    }
}

/// The error chain as one line, `outer: inner: …`, every cause printed once. Library messages
/// hold only their own layer's context and leave the cause to `source()` (ARCHITECTURE.md,
/// "Errors"), so nothing here needs deduplicating. A message's `\n  hint: …` lines (what flag
/// or command would help) come after the whole chain, where the reader ends up.
pub fn message(err: &anyhow::Error) -> String {
    join(err.chain())
}

/// [`message`] for an error that is printed without being returned (one failure of several).
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    join(std::iter::successors(Some(err), |e| e.source()))
}

fn join<'a>(chain: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>) -> String {
    let mut text = String::new();
    let mut hints = String::new();
    for cause in chain {
        let m = cause.to_string();
        let (own, hint) = match m.find("\n  hint: ") {
            Some(at) => m.split_at(at),
            None => (m.as_str(), ""),
        };
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(own);
        hints.push_str(hint);
    }
    text + &hints
}

/// Prints an error text on stderr with [`escape_controls`]: every error that reaches the user goes
/// through here.
pub fn eprint_error(text: &str) {
    eprintln!("{}", escape_controls(text));
}

/// Error texts quote their inputs (YAML keys, image labels, layer paths, registry replies), and
/// a terminal obeys the escape sequences in them (`\x1b[2J\x1b[31mFAKE: build succeeded`).
/// Control characters other than newline and tab, and the invisible bidirectional overrides,
/// are shown as `\x1b` / `\u{202e}` instead. Newlines are kept: multi-line messages (one problem
/// per line, rustc-style diagnostics) are built that way on purpose.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    baleen_spec::escape::escaped(text, true)
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
        // Colour only for a person: a log file or a CI capture gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Inner;
    impl std::fmt::Display for Inner {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("connection refused")
        }
    }
    impl std::error::Error for Inner {}

    #[derive(Debug)]
    struct Outer(Inner);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("pulling alpine")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn every_cause_is_printed_once_in_order() {
        let err = anyhow::Error::new(Outer(Inner)).context("building minimal.yml");
        assert_eq!(message(&err), "building minimal.yml: pulling alpine: connection refused");
        let plain = anyhow::Error::new(Inner).context("pulling alpine");
        assert_eq!(message(&plain), "pulling alpine: connection refused");
    }

    /// Issue 23: the printer dropped a cause whose text already appeared in an earlier message,
    /// so a cause that happened to be a substring of the top message was lost.
    #[test]
    fn a_cause_whose_text_is_in_the_top_message_is_still_printed() {
        let err = anyhow::Error::new(Inner).context("retrying after connection refused");
        assert_eq!(message(&err), "retrying after connection refused: connection refused");
    }

    #[test]
    fn a_hint_comes_after_the_whole_chain() {
        let err = anyhow::Error::new(Inner)
            .context("writing tar\n  hint: raise the limit with --max-size SIZE")
            .context("building minimal.yml");
        assert_eq!(
            message(&err),
            "building minimal.yml: writing tar: connection refused\n  hint: raise the limit with \
             --max-size SIZE"
        );
    }

    #[test]
    fn control_characters_are_escaped_but_newlines_kept() {
        let hostile = "key `\x1b[2J\x1b[31mFAKE: build succeeded\r\u{9b}1m\u{202e}`\nnext line\tok";
        assert_eq!(
            escape_controls(hostile),
            "key `\\x1b[2J\\x1b[31mFAKE: build succeeded\\x0d\\u{9b}1m\\u{202e}`\nnext line\tok"
        );
        assert!(matches!(escape_controls("plain ü"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn usage_errors_exit_2_and_others_1() {
        assert_eq!(report(&anyhow::Error::new(UsageError("bad flag".into()))), USAGE);
        assert_eq!(report(&anyhow::anyhow!("broken")), FAILURE);
    }
}
