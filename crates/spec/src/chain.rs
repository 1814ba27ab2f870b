//! An error and every cause under it on one line, `outer: inner: …: root cause`, for text that
//! does not go through the CLI's printer (`crates/cli/src/exit.rs`): a log or console line, one
//! failure of several collected into a list, a report entry, a diagnostic. Messages hold only
//! their own layer's context (ARCHITECTURE.md, "Errors"), so every cause is written, once, and
//! none is dropped for looking like an earlier one.
//!
//! The text is the messages as they are: a message that quotes an input escapes it itself
//! (`escape`), and the printer that writes the line to a terminal escapes the rest.
//!
//! This file has no dependencies and is the one home of the rule: `baleen-spec` has it as
//! `chain` (build and the CLI use it from there); `baleen-oci`, `baleen-pkg`, `baleen-netboot`
//! and `baleen-init` (which may depend on no host crate) include the same file (`#[path]`).

/// `e` and its causes, outermost first, `: `-joined.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    /// A cause whose text already appears in an outer message is still news (the old
    /// registry printer dropped it), and is written.
    #[test]
    fn every_cause_is_written_once_in_order() {
        let e =
            E("reading x: denied", Some(Box::new(E("denied", Some(Box::new(E("eacces", None)))))));
        assert_eq!(super::chain(&e), "reading x: denied: denied: eacces");
        assert_eq!(super::chain(&E("alone", None)), "alone");
    }
}
