//! A YAML writer that lays out and quotes like `gopkg.in/yaml.v2` on libyaml: block mappings
//! with 2-space indent, sequences at their parent key's indentation, the scalar style libyaml's
//! `analyze_scalar` allows, and folding of long lines past 80 columns.

use super::V;

/// libyaml's default line width.
const BEST_WIDTH: usize = 80;

/// Writes `entries` as a block mapping whose keys start at column `indent`.
pub(super) fn write_map(out: &mut String, entries: &[(String, V)], indent: usize) {
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 || !out.ends_with("- ") {
            pad(out, indent);
        }
        out.push_str(&scalar_text(k, indent, col(out)));
        out.push(':');
        write_value(out, v, indent, true);
    }
}

/// Writes a block sequence; yaml.v2 puts `- ` at the parent mapping's indentation.
fn write_seq(out: &mut String, items: &[V], indent: usize) {
    for (i, v) in items.iter().enumerate() {
        if i > 0 || !out.ends_with("- ") {
            pad(out, indent);
        }
        out.push('-');
        write_value(out, v, indent, false);
    }
}

/// Writes the value after `key:` (in a mapping) or after `-` (in a sequence), ending the line.
fn write_value(out: &mut String, v: &V, indent: usize, in_map: bool) {
    match v {
        V::Seq(items) if !items.is_empty() => {
            if in_map {
                out.push('\n');
                write_seq(out, items, indent);
            } else {
                out.push(' ');
                write_seq(out, items, indent + 2);
            }
        }
        V::Map(entries) if !entries.is_empty() => {
            if in_map {
                out.push('\n');
                write_map(out, entries, indent + 2);
            } else {
                out.push(' ');
                write_map(out, entries, indent + 2);
            }
        }
        V::Seq(_) => out.push_str(" []\n"),
        V::Map(_) => out.push_str(" {}\n"),
        V::Null => out.push_str(" null\n"),
        V::Bool(b) => out.push_str(if *b { " true\n" } else { " false\n" }),
        V::Int(i) => out.push_str(&format!(" {i}\n")),
        V::Str(text) => {
            out.push(' ');
            let c = col(out);
            let t = scalar_text(text, indent + 2, c);
            out.push_str(&t);
            out.push('\n');
        }
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Column of the end of `out` (characters since the last line break).
fn col(out: &str) -> usize {
    out.rsplit('\n').next().map_or(0, |l| l.chars().count())
}

/// A string scalar as yaml.v2 writes it, starting at column `column`; continuation lines are
/// indented by `indent`.
pub(super) fn scalar_text(text: &str, indent: usize, column: usize) -> String {
    if text.contains('\n') {
        if let Some(lit) = literal(text, indent) {
            return lit;
        }
        return double_quoted(text, indent, column);
    }
    let a = analyze(text);
    if resolves_to_non_string(text) || is_base60_float(text) {
        return double_quoted(text, indent, column);
    }
    if a.block_plain {
        return folded(text, indent, column, Quote::Plain);
    }
    if a.single_quoted {
        return folded(text, indent, column, Quote::Single);
    }
    double_quoted(text, indent, column)
}

/// What libyaml's `yaml_emitter_analyze_scalar` allows for a single-line string.
struct Allowed {
    block_plain: bool,
    single_quoted: bool,
}

fn analyze(t: &str) -> Allowed {
    if t.is_empty() {
        return Allowed { block_plain: true, single_quoted: true };
    }
    let chars: Vec<char> = t.chars().collect();
    let mut block_indicators = t.starts_with("---") || t.starts_with("...");
    let mut special = false;
    for (i, &c) in chars.iter().enumerate() {
        let next_blank = chars.get(i + 1).is_none_or(|n| *n == ' ' || *n == '\t');
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' | '-' if next_blank => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if next_blank => block_indicators = true,
                '#' if chars[i - 1] == ' ' || chars[i - 1] == '\t' => block_indicators = true,
                _ => {}
            }
        }
        if !printable(c) || c == '\u{feff}' {
            special = true;
        }
    }
    let leading = chars[0] == ' ';
    let trailing = chars[chars.len() - 1] == ' ';
    Allowed {
        block_plain: !block_indicators && !special && !leading && !trailing,
        single_quoted: !special,
    }
}

fn printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0A
        || (0x20..=0x7E).contains(&u)
        || u == 0x85
        || (0xA0..=0xD7FF).contains(&u)
        || (0xE000..=0xFFFD).contains(&u)
        || (0x10000..=0x10FFFF).contains(&u)
}

/// yaml.v2's `resolve`: would this text, written plain, read back as something else?
fn resolves_to_non_string(t: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N",
        "no", "No", "NO", "off", "Off", "OFF", "true", "True", "TRUE", "false", "False", "FALSE",
        ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF", "<<",
    ];
    if SPECIAL.contains(&t) {
        return true;
    }
    let first = t.as_bytes()[0];
    if first == b'.' {
        return t.parse::<f64>().is_ok();
    }
    if !(first.is_ascii_digit() || first == b'+' || first == b'-') {
        return false;
    }
    if looks_like_timestamp(t) {
        return true;
    }
    let plain = t.replace('_', "");
    let digits = plain.trim_start_matches(['+', '-']);
    let int = if let Some(h) = digits.strip_prefix("0x") {
        !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit())
    } else if let Some(b) = digits.strip_prefix("0b") {
        !b.is_empty() && b.chars().all(|c| c == '0' || c == '1')
    } else if let Some(o) = digits.strip_prefix("0o") {
        !o.is_empty() && o.chars().all(|c| ('0'..='7').contains(&c))
    } else if digits.len() > 1 && digits.starts_with('0') {
        digits.chars().all(|c| ('0'..='7').contains(&c))
    } else {
        !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
    };
    int || (is_yaml_float(&plain) && plain.parse::<f64>().is_ok())
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let m_ok = match mantissa.split_once('.') {
        Some(("", f)) => !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()),
        Some((i, f)) => {
            !i.is_empty()
                && i.chars().all(|c| c.is_ascii_digit())
                && f.chars().all(|c| c.is_ascii_digit())
        }
        None => !mantissa.is_empty() && mantissa.chars().all(|c| c.is_ascii_digit()),
    };
    let e_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
    });
    m_ok && e_ok
}

/// `2006-1-2` optionally followed by a time (`T`, `t` or space).
fn looks_like_timestamp(t: &str) -> bool {
    let b = t.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let rest = &t[5..];
    let mut parts = rest.splitn(2, '-');
    let month = parts.next().unwrap_or("");
    let Some(day_rest) = parts.next() else { return false };
    let day: String = day_rest.chars().take_while(char::is_ascii_digit).collect();
    let after = &day_rest[day.len()..];
    (1..=2).contains(&month.len())
        && month.chars().all(|c| c.is_ascii_digit())
        && (1..=2).contains(&day.len())
        && (after.is_empty() || after.starts_with(['T', 't', ' ']))
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
fn is_base60_float(t: &str) -> bool {
    let s = t.strip_prefix(['+', '-']).unwrap_or(t);
    let (main, frac) = match s.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (s, None),
    };
    let mut parts = main.split(':');
    let head = parts.next().unwrap_or("");
    let tail: Vec<&str> = parts.collect();
    head.starts_with(|c: char| c.is_ascii_digit())
        && head.chars().all(|c| c.is_ascii_digit() || c == '_')
        && !tail.is_empty()
        && tail.iter().all(|p| {
            (1..=2).contains(&p.len())
                && p.chars().all(|c| c.is_ascii_digit())
                && (p.len() == 1 || p.as_bytes()[0] <= b'5')
        })
        && frac.is_none_or(|f| f.chars().all(|c| c.is_ascii_digit() || c == '_'))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    Plain,
    Single,
}

/// Plain or single-quoted text, folded at a space once the line is past 80 columns.
fn folded(text: &str, indent: usize, mut column: usize, q: Quote) -> String {
    let mut out = String::new();
    if q == Quote::Single {
        out.push('\'');
        column += 1;
    }
    let chars: Vec<char> = text.chars().collect();
    let mut spaces = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let next_space = chars.get(i + 1) == Some(&' ');
            let edge = q == Quote::Single && (i == 0 || i == chars.len() - 1);
            if !spaces && column > BEST_WIDTH && !next_space && !edge {
                out.push('\n');
                out.extend(std::iter::repeat_n(' ', indent));
                column = indent;
            } else {
                out.push(c);
                column += 1;
            }
            spaces = true;
        } else {
            if q == Quote::Single && c == '\'' {
                out.push('\'');
                column += 1;
            }
            out.push(c);
            column += 1;
            spaces = false;
        }
    }
    if q == Quote::Single {
        out.push('\'');
    }
    out
}

fn double_quoted(text: &str, indent: usize, mut column: usize) -> String {
    let mut out = String::from("\"");
    column += 1;
    let chars: Vec<char> = text.chars().collect();
    let mut spaces = false;
    for (i, &c) in chars.iter().enumerate() {
        let esc: Option<String> = match c {
            '\0' => Some("\\0".into()),
            '\u{7}' => Some("\\a".into()),
            '\u{8}' => Some("\\b".into()),
            '\t' => Some("\\t".into()),
            '\n' => Some("\\n".into()),
            '\u{b}' => Some("\\v".into()),
            '\u{c}' => Some("\\f".into()),
            '\r' => Some("\\r".into()),
            '\u{1b}' => Some("\\e".into()),
            '"' => Some("\\\"".into()),
            '\\' => Some("\\\\".into()),
            '\u{85}' => Some("\\N".into()),
            '\u{a0}' => Some("\\_".into()),
            '\u{2028}' => Some("\\L".into()),
            '\u{2029}' => Some("\\P".into()),
            c if !printable(c) || c == '\u{feff}' => Some(match c as u32 {
                u @ 0..=0xFF => format!("\\x{u:02X}"),
                u @ 0..=0xFFFF => format!("\\u{u:04X}"),
                u => format!("\\U{u:08X}"),
            }),
            _ => None,
        };
        if let Some(e) = esc {
            column += e.chars().count();
            out.push_str(&e);
            spaces = false;
        } else if c == ' ' {
            if !spaces && column > BEST_WIDTH && i != 0 && i != chars.len() - 1 {
                out.push('\n');
                out.extend(std::iter::repeat_n(' ', indent));
                column = indent;
                if chars.get(i + 1) == Some(&' ') {
                    out.push('\\');
                    column += 1;
                }
            } else {
                out.push(' ');
                column += 1;
            }
            spaces = true;
        } else {
            out.push(c);
            column += 1;
            spaces = false;
        }
    }
    out.push('"');
    out
}

/// A literal block (`|`, `|-`, `|+`, with an indentation indicator for a leading space), or
/// `None` where libyaml refuses one (trailing spaces, a space before a line break, special
/// characters).
fn literal(text: &str, indent: usize) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let space_break = chars.windows(2).any(|w| w[0] == ' ' && w[1] == '\n');
    let trailing_space = chars.last() == Some(&' ');
    let special = chars.iter().any(|c| !printable(*c) || *c == '\u{feff}');
    if space_break || trailing_space || special {
        return None;
    }
    let mut out = String::from("|");
    if text.starts_with(' ') || text.starts_with('\n') {
        out.push('2');
    }
    let trailing_breaks = text.len() - text.trim_end_matches('\n').len();
    match trailing_breaks {
        0 => out.push('-'),
        1 => {}
        _ => out.push('+'),
    }
    let body = text.strip_suffix('\n').unwrap_or(text);
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.extend(std::iter::repeat_n(' ', indent));
            out.push_str(line);
        }
    }
    Some(out)
}
