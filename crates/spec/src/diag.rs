//! Diagnostics: what is wrong, where (file:line:column), and at which key path, rendered like
//! rustc so that the offending line and a caret sit under the message.

use crate::node::Pos;
use std::fmt;

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file name as the user gave it (`-` for stdin).
    pub file: String,
    /// 1-based line and column.
    pub line: usize,
    pub col: usize,
    /// Key path to the offending node, e.g. `services[2].capabilities[0]` (empty: the document).
    pub path: String,
    pub message: String,
    /// A suggestion ("did you mean `services`?"), shown as `= help:`.
    pub help: Option<String>,
    /// The source line and the caret width, for rendering.
    pub source_line: Option<String>,
    pub width: usize,
}

impl Diagnostic {
    /// A diagnostic at `pos` of `src`, with the source line cut out for rendering.
    pub fn at(file: &str, src: &str, pos: Pos, path: &str, message: String) -> Self {
        let source_line = src.lines().nth(pos.line.saturating_sub(1)).map(str::to_string);
        Diagnostic {
            file: file.to_string(),
            line: pos.line,
            col: pos.col,
            path: path.to_string(),
            message,
            help: None,
            source_line,
            width: pos.width.max(1),
        }
    }

    /// A diagnostic about a file as a whole (no useful position inside it).
    pub fn whole_file(file: &str, message: String) -> Self {
        Diagnostic {
            file: file.to_string(),
            line: 1,
            col: 1,
            path: String::new(),
            message,
            help: None,
            source_line: None,
            width: 1,
        }
    }

    pub fn with_help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }
}

impl fmt::Display for Diagnostic {
    /// ```text
    /// error: services[0]: unknown key `capabilites`
    ///  --> a.yml:7:5
    ///   |
    /// 7 |     capabilites:
    ///   |     ^^^^^^^^^^^
    ///   = help: did you mean `capabilities`?
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Each part is one line: values quoted from the YAML (or a label) may hold newlines.
        let message = one_line(&self.message);
        if self.path.is_empty() {
            writeln!(f, "error: {message}")?;
        } else {
            writeln!(f, "error: {}: {message}", one_line(&self.path))?;
        }
        let num = self.line.to_string();
        let pad = " ".repeat(num.len());
        write!(f, "{pad}--> {}:{}:{}", one_line(&self.file), self.line, self.col)?;
        if let Some(line) = &self.source_line {
            // Long lines (minified JSON, hostile input) are cut to a window around the column.
            let chars: Vec<char> = line.chars().collect();
            let col0 = self.col.saturating_sub(1).min(chars.len());
            let start = col0.saturating_sub(WINDOW / 2);
            let end = (start + WINDOW).min(chars.len());
            let mut shown: String = chars[start..end].iter().collect();
            let mut lead_prefix = String::new();
            if start > 0 {
                shown.insert(0, '…');
                lead_prefix.push(' ');
            }
            if end < chars.len() {
                shown.push('…');
            }
            // Columns count characters; tabs are kept so the caret lines up in a terminal.
            let lead: String =
                chars[start..col0].iter().map(|c| if *c == '\t' { '\t' } else { ' ' }).collect();
            let avail = end.saturating_sub(col0).max(1);
            let carets = "^".repeat(self.width.min(avail));
            write!(f, "\n{pad} |\n{num} | {shown}\n{pad} | {lead_prefix}{lead}{carets}")?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n{pad} = help: {}", one_line(help))?;
        }
        Ok(())
    }
}

/// `text` with its control characters, newlines included, written as escapes (`\n`, `\x1b`):
/// a value quoted from an input can neither forge a line of the diagnostic nor steer a
/// terminal. The source line is shown as it is (it holds no newline); the CLI escapes the
/// terminal controls in it.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    crate::escape::escaped(text, false)
}

/// Characters of a source line shown around the column.
const WINDOW: usize = 120;

/// Every problem found in a set of files; the error type of loading and merging.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// "did you mean `x`?" for the closest of `candidates`, when one is close enough to be a typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_rustc() {
        let src = "services:\n  - name: a\n    servies: 1\n";
        let d = Diagnostic::at(
            "a.yml",
            src,
            Pos { line: 3, col: 5, width: 7 },
            "services[0].servies",
            "unknown key `servies`".into(),
        )
        .with_help(did_you_mean("servies", ["name", "services"]));
        assert_eq!(
            d.to_string(),
            "error: services[0].servies: unknown key `servies`\n --> a.yml:3:5\n  |\n3 |     servies: 1\n  |     ^^^^^^^\n  = help: did you mean `services`?"
        );
    }

    #[test]
    fn long_lines_are_cut_around_the_column() {
        let line = format!("{}BAD{}", "x".repeat(500), "y".repeat(500));
        let d =
            Diagnostic::at("a.yml", &line, Pos { line: 1, col: 501, width: 3 }, "", "bad".into());
        let text = d.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[3].chars().count() < 140, "{}", lines[3]);
        let char_col = |l: &str, pat: &str| l[..l.find(pat).unwrap()].chars().count();
        assert_eq!(char_col(lines[4], "^"), char_col(lines[3], "BAD"), "{text}");
        assert!(lines[3].contains('…'));
    }

    #[test]
    fn suggestions_need_similarity() {
        assert_eq!(did_you_mean("xyz", ["services", "kernel"]), None);
        assert_eq!(
            did_you_mean("kernal", ["services", "kernel"]).unwrap(),
            "did you mean `kernel`?"
        );
    }
}
