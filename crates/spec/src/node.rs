//! A located YAML tree: every node remembers where it starts (and ends) in the source.
//!
//! Why our own tree instead of deserializing straight into structs with `serde-saphyr`: LinuxKit
//! validates a *generic* decode of the document against a JSON schema, so its notion of a type
//! error is "this scalar resolves to an integer where the schema wants a string" (`mode: 0644`).
//! A serde `String` field happily accepts `0644`, and a serde error carries a location but not the
//! key path (`services[2].capabilities[0]`) nor the list of valid keys for a suggestion. Walking a
//! located tree gives all three for schema errors *and* for the semantic checks that come after
//! (duplicate names, capabilities, binds), with one error type.
//!
//! Only the first document of a stream is read, as `yaml.v3`'s `Unmarshal` does. Aliases are
//! expanded (with a budget, so a "billion laughs" document is an error, not an OOM), and `<<`
//! merge keys are applied like yaml.v3 does.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;

/// A position in the source: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
    /// Width of the token on its line, for the caret underline (at least 1).
    pub width: usize,
}

impl Pos {
    fn from_span(span: &Span) -> Self {
        let (s, e) = (span.start, span.end);
        let width = if e.line() == s.line() && e.col() > s.col() { e.col() - s.col() } else { 1 };
        Pos { line: s.line(), col: s.col() + 1, width }
    }
}

/// How a scalar was written, which decides its type (quoted scalars are always strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
    Block,
}

/// One YAML node with its source position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A scalar: its text, style and core-schema tag suffix (`str`, `int`…) if one was given.
    Scalar {
        text: String,
        style: Style,
        tag: Option<String>,
    },
    Seq(Vec<Node>),
    /// Key/value pairs in source order (duplicates are kept; the decoder reports them).
    Map(Vec<(Node, Node)>),
}

/// What a scalar means under yaml.v3's resolution rules (YAML 1.1-style octals `0644`).
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Int(i128),
    Float,
    Str(&'a str),
}

impl Node {
    /// The JSON-schema type name of this node, as gojsonschema words it in its messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Seq(_) => "array",
            Kind::Map(_) => "object",
            Kind::Scalar { .. } => match self.scalar() {
                Some(Value::Null) => "null",
                Some(Value::Bool(_)) => "boolean",
                Some(Value::Int(_)) => "integer",
                Some(Value::Float) => "number",
                _ => "string",
            },
        }
    }

    /// Resolves a scalar node; `None` for collections.
    pub fn scalar(&self) -> Option<Value<'_>> {
        let Kind::Scalar { text, style, tag } = &self.kind else { return None };
        if let Some(tag) = tag {
            return Some(match tag.as_str() {
                "null" => Value::Null,
                "bool" => match resolve_plain(text) {
                    v @ Value::Bool(_) => v,
                    _ => Value::Str(text),
                },
                "int" => match resolve_plain(text) {
                    v @ Value::Int(_) => v,
                    _ => Value::Str(text),
                },
                "float" => Value::Float,
                _ => Value::Str(text),
            });
        }
        Some(if *style == Style::Plain { resolve_plain(text) } else { Value::Str(text) })
    }
}

/// yaml.v3's resolution of an untagged plain scalar.
fn resolve_plain(s: &str) -> Value<'_> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => return Value::Float,
        _ => {}
    }
    let first = s.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.')) {
        return Value::Str(s);
    }
    if let Some(i) = parse_go_int(&s.replace('_', "")) {
        return Value::Int(i);
    }
    if looks_like_float(s) {
        return Value::Float;
    }
    Value::Str(s)
}

/// Go's `strconv.ParseInt(s, 0, 64)`: optional sign, then `0x`, `0o`, `0b` or a leading-zero
/// octal, or decimal.
fn parse_go_int(s: &str) -> Option<i128> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i128::from_str_radix(digits, radix).ok()?;
    let v = if neg { -v } else { v };
    (i64::MIN as i128..=i64::MAX as i128).contains(&v).then_some(v)
}

/// yaml.v3's float pattern: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn looks_like_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// A YAML syntax error (or an alias bomb) with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Upper bound on nodes created by alias expansion; far beyond any real config.
const ALIAS_BUDGET: usize = 100_000;

enum Frame {
    Seq { pos: Pos, anchor: usize, items: Vec<Node> },
    Map { pos: Pos, anchor: usize, pairs: Vec<(Node, Node)>, key: Option<Node> },
}

/// Parses the first document of `text`. `Ok(None)` for an empty stream or a document that is
/// only comments.
pub fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut budget = ALIAS_BUDGET;
    let mut root: Option<Node> = None;
    let mut seen_doc = false;
    for ev in Parser::new_from_str(text) {
        let (ev, span) = ev.map_err(|e| SyntaxError {
            pos: Pos { line: e.marker().line(), col: e.marker().col() + 1, width: 1 },
            message: e.info().to_string(),
        })?;
        let pos = Pos::from_span(&span);
        let finished: Option<(Node, usize)> = match ev {
            Event::DocumentStart(_) => {
                if seen_doc {
                    break;
                }
                seen_doc = true;
                None
            }
            Event::DocumentEnd => {
                if root.is_some() || seen_doc {
                    break;
                }
                None
            }
            Event::StreamEnd => break,
            Event::Scalar(text, style, anchor, tag) => {
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
                    _ => Style::Block,
                };
                let tag = tag.and_then(|t| {
                    if t.is_yaml_core_schema() {
                        Some(t.suffix.clone())
                    } else {
                        None
                    }
                });
                Some((
                    Node { pos, kind: Kind::Scalar { text: text.into_owned(), style, tag } },
                    anchor,
                ))
            }
            Event::Alias(id) => {
                let Some(node) = anchors.get(&id) else {
                    return Err(SyntaxError { pos, message: "alias to an unknown anchor".into() });
                };
                let n = count(node);
                if n > budget {
                    return Err(SyntaxError {
                        pos,
                        message: format!(
                            "aliases expand to more than {ALIAS_BUDGET} nodes; refusing to expand"
                        ),
                    });
                }
                budget -= n;
                let mut node = node.clone();
                node.pos = pos;
                Some((node, 0))
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq { pos, anchor, items: Vec::new() });
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map { pos, anchor, pairs: Vec::new(), key: None });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq { pos, anchor, items }) => {
                    Some((Node { pos, kind: Kind::Seq(items) }, anchor))
                }
                Some(Frame::Map { pos, anchor, pairs, .. }) => {
                    Some((Node { pos, kind: Kind::Map(apply_merge_keys(pairs)) }, anchor))
                }
                None => None,
            },
            Event::StreamStart | Event::Nothing => None,
        };
        let Some((node, anchor)) = finished else { continue };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { pairs, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => pairs.push((k, node)),
            },
        }
    }
    Ok(root.filter(|n| n.scalar() != Some(Value::Null)))
}

fn count(node: &Node) -> usize {
    match &node.kind {
        Kind::Scalar { .. } => 1,
        Kind::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
        Kind::Map(pairs) => 1 + pairs.iter().map(|(k, v)| count(k) + count(v)).sum::<usize>(),
    }
}

/// yaml.v3 merge keys: `<<: *base` (or a list of them) adds the keys the mapping lacks.
fn apply_merge_keys(pairs: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
    let is_merge = |k: &Node| matches!(&k.kind, Kind::Scalar { text, style: Style::Plain, .. } if text == "<<");
    if !pairs.iter().any(|(k, _)| is_merge(k)) {
        return pairs;
    }
    let mut own: Vec<(Node, Node)> = Vec::new();
    let mut inherited: Vec<(Node, Node)> = Vec::new();
    for (k, v) in pairs {
        if !is_merge(&k) {
            own.push((k, v));
            continue;
        }
        let sources = match v.kind {
            Kind::Seq(items) => items,
            _ => vec![v],
        };
        for src in sources {
            match src.kind {
                Kind::Map(src_pairs) => inherited.extend(src_pairs),
                // Not a mapping: keep it as an ordinary key so the decoder reports it.
                _ => own.push((k.clone(), src)),
            }
        }
    }
    let key_text = |n: &Node| match &n.kind {
        Kind::Scalar { text, .. } => Some(text.clone()),
        _ => None,
    };
    for (k, v) in inherited {
        let t = key_text(&k);
        if t.is_none() || !own.iter().any(|(o, _)| key_text(o) == t) {
            own.push((k, v));
        }
    }
    own
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(s: &str) -> Node {
        parse(s).unwrap().unwrap()
    }

    #[test]
    fn scalars_resolve_like_yaml_v3() {
        let n = root("[0644, '0644', 12, 1.5, true, yes, ~, 0x1f, 08, -3, abc]");
        let Kind::Seq(items) = n.kind else { panic!() };
        let types: Vec<_> = items.iter().map(Node::type_name).collect();
        assert_eq!(
            types,
            [
                "integer", "string", "integer", "number", "boolean", "string", "null", "integer",
                "number", "integer", "string"
            ]
        );
        assert_eq!(items[0].scalar(), Some(Value::Int(0o644)));
    }

    #[test]
    fn positions_are_one_based() {
        let n = root("a:\n  b: hello\n");
        let Kind::Map(pairs) = n.kind else { panic!() };
        let Kind::Map(inner) = &pairs[0].1.kind else { panic!() };
        assert_eq!(inner[0].1.pos, Pos { line: 2, col: 6, width: 5 });
    }

    #[test]
    fn merge_keys_and_aliases() {
        let n = root("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n");
        let Kind::Map(pairs) = n.kind else { panic!() };
        let Kind::Map(c) = &pairs[1].1.kind else { panic!() };
        let keys: Vec<_> = c
            .iter()
            .map(|(k, v)| match (&k.kind, v.scalar()) {
                (Kind::Scalar { text, .. }, Some(Value::Int(i))) => (text.clone(), i),
                _ => panic!(),
            })
            .collect();
        assert_eq!(keys, [("y".to_string(), 3), ("x".to_string(), 1)]);
    }

    #[test]
    fn alias_bomb_is_an_error() {
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            s.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let err = parse(&s).unwrap_err();
        assert!(err.message.contains("refusing"), "{err:?}");
    }

    #[test]
    fn empty_and_comment_only_documents_are_none() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("# nothing\n").unwrap(), None);
        assert_eq!(parse("---\n...\n").unwrap(), None);
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let err = parse("a: [1, 2\nb: c\n").unwrap_err();
        assert!(err.pos.line >= 1, "{err:?}");
    }
}
