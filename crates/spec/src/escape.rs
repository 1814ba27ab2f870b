//! Text from an input (a YAML value, an image label, a registry's answer, an archive's names)
//! as a message shows it: the characters a terminal would obey, written as escapes (`\x1b`,
//! `\u{202e}`), so quoted text can neither steer the terminal nor forge lines of the message.
//!
//! This file has no dependencies and is the one home of the rule: `baleen-spec` has it as
//! `escape` (the CLI uses it from there), `baleen-oci` includes the same file (`#[path]`); the
//! two crates share no lower crate, and a crate for forty lines would cost more than it holds.

use std::borrow::Cow;

/// `text` with its hostile characters escaped.
///
/// With `keep_lines` false (one line of a message): every control character, newlines
/// included, as `\n`, `\r`, `\t`, `\xNN` or `\u{N}`. With `keep_lines` true (a whole message
/// as printed, whose newlines are meant): control characters but newline and tab, and the
/// invisible bidirectional overrides, as `\xNN` or `\u{N}`.
pub fn escaped(text: &str, keep_lines: bool) -> Cow<'_, str> {
    let hostile = |c: char| {
        if keep_lines {
            (c.is_control() && c != '\n' && c != '\t')
                || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        } else {
            c.is_control()
        }
    };
    if !text.chars().any(hostile) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            c if !hostile(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' if !keep_lines => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x80 => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::escaped;

    #[test]
    fn one_line_escapes_every_control_and_multi_line_keeps_newline_and_tab() {
        let text = "a\nb\r\t\x1b[2J\u{202e}\u{85}";
        assert_eq!(escaped(text, false), "a\\nb\\r\\t\\x1b[2J\u{202e}\\u{85}");
        assert_eq!(escaped(text, true), "a\nb\\x0d\t\\x1b[2J\\u{202e}\\u{85}");
        assert!(matches!(escaped("plain", true), std::borrow::Cow::Borrowed("plain")));
    }
}
