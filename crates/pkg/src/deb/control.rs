//! deb822 control data: paragraphs of `Field: value` lines, continuation lines starting with a
//! space or tab, paragraphs separated by blank lines. Used for `Packages`, `Release` and apt's
//! `.sources` files.

/// One paragraph: fields in file order. Field names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paragraph {
    pub fields: Vec<(String, String)>,
    /// 1-based line of the paragraph's first field, for messages.
    pub line: usize,
}

impl Paragraph {
    /// The value of `name`, continuation lines joined with `\n`, trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Parses deb822 text. Lines starting with `#` are comments (apt sources); a line that is neither
/// a field, a continuation nor blank is skipped, as apt does with junk in Packages files.
pub fn parse(text: &str) -> Vec<Paragraph> {
    let mut out = Vec::new();
    let mut cur = Paragraph::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            if !cur.fields.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = cur.fields.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            if cur.fields.is_empty() {
                cur.line = i + 1;
            }
            cur.fields.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    if !cur.fields.is_empty() {
        out.push(cur);
    }
    out
}

/// Like [`parse`], lazily, keeping only the named fields: a 50 MB `Packages` file is mostly
/// descriptions, and copying them is most of the cost of reading it.
pub fn parse_only<'a>(
    text: &'a str,
    fields: &'a [&'a str],
) -> impl Iterator<Item = Paragraph> + 'a {
    let mut lines = text.lines().enumerate();
    std::iter::from_fn(move || {
        let mut cur = Paragraph::default();
        let mut keeping = false;
        for (i, line) in lines.by_ref() {
            if line.trim().is_empty() {
                if cur.line != 0 {
                    return Some(cur);
                }
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            if cur.line == 0 {
                cur.line = i + 1;
            }
            if line.starts_with([' ', '\t']) {
                if keeping {
                    if let Some((_, v)) = cur.fields.last_mut() {
                        v.push('\n');
                        v.push_str(line.trim());
                    }
                }
                continue;
            }
            keeping = false;
            if let Some((k, v)) = line.split_once(':') {
                let k = k.trim();
                if fields.iter().any(|f| f.eq_ignore_ascii_case(k)) {
                    cur.fields.push((k.to_owned(), v.trim().to_owned()));
                    keeping = true;
                }
            }
        }
        (cur.line != 0).then_some(cur)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_fields_and_continuations() {
        let text = "Package: a\nVersion: 1\nDescription: short\n long line\n .\n more\n\n\n# comment\nPackage: b\ndepends: c\n";
        let ps = parse(text);
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].get("package"), Some("a"));
        assert_eq!(ps[0].get("Description"), Some("short\nlong line\n.\nmore"));
        assert_eq!(ps[1].get("Depends"), Some("c"));
        assert_eq!(ps[1].line, 10);
        assert_eq!(ps[1].get("Version"), None);
    }

    #[test]
    fn parse_only_keeps_the_named_fields() {
        let text = "Package: a\nDescription: x\n long\nDepends: b,\n c\n\nPackage: b\n";
        let ps: Vec<_> = parse_only(text, &["Package", "Depends"]).collect();
        assert_eq!(ps.len(), 2);
        assert_eq!(
            ps[0].fields,
            [("Package".to_owned(), "a".to_owned()), ("Depends".to_owned(), "b,\nc".to_owned())]
        );
        assert_eq!(ps[1].get("package"), Some("b"));
        assert_eq!(ps[1].line, 7);
    }

    #[test]
    fn values_with_colons_and_no_trailing_newline() {
        let ps = parse("URIs: http://deb.debian.org/debian\nSuites: bookworm");
        assert_eq!(ps[0].get("URIs"), Some("http://deb.debian.org/debian"));
        assert_eq!(ps[0].get("Suites"), Some("bookworm"));
    }
}
