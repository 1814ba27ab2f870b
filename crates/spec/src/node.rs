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
//! expanded (with a budget in nodes and in bytes of text, so a "billion laughs" document is an
//! error, not an OOM), and `<<` merge keys are applied like yaml.v3 does. Nesting is bounded
//! ([`MAX_DEPTH`]), so that nothing walking the tree can overflow the stack.

use crate::decode::{index_path, key_path};
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

/// A YAML syntax error, or a document past one of the limits below, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    /// Key path of the offending node (`services[0][0]`); empty when the scanner failed.
    pub path: String,
    pub message: String,
}

/// How deep sequences and mappings may nest, aliases included. LinuxKit files nest about 6
/// levels; every consumer of the tree (decoding, cloning, dropping) recurses, so an unbounded
/// depth is a stack overflow waiting for a hostile file or image label.
pub const MAX_DEPTH: usize = 128;

/// Upper bound on nodes created by alias expansion; far beyond any real config.
const ALIAS_NODES: usize = 100_000;
/// Upper bound on scalar text created by alias expansion: this many times the document's size,
/// but at least [`ALIAS_BYTES_FLOOR`] and at most [`ALIAS_BYTES_CAP`]. Counting nodes alone lets
/// one 1 MiB scalar aliased 99,999 times through.
const ALIAS_BYTES_PER_INPUT_BYTE: usize = 16;
const ALIAS_BYTES_FLOOR: usize = 1 << 20;
const ALIAS_BYTES_CAP: usize = 64 << 20;

/// Key path components shown in a limit error before `…` (a path at the depth limit is long).
const PATH_SHOWN: usize = 8;

enum Frame {
    Seq { pos: Pos, anchor: usize, items: Vec<Node>, height: usize },
    Map { pos: Pos, anchor: usize, pairs: Vec<(Node, Node)>, key: Option<Node>, height: usize },
}

/// What alias expansion may still create.
struct AliasBudget {
    nodes: usize,
    bytes: usize,
    bytes_limit: usize,
}

/// Parses the first document of `text`. `Ok(None)` for an empty stream or a document that is
/// only comments.
pub fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut stack: Vec<Frame> = Vec::new();
    // Each anchored node with its height (nesting levels it spans).
    let mut anchors: HashMap<usize, (Node, usize)> = HashMap::new();
    let bytes_limit = text
        .len()
        .saturating_mul(ALIAS_BYTES_PER_INPUT_BYTE)
        .clamp(ALIAS_BYTES_FLOOR, ALIAS_BYTES_CAP);
    let mut budget = AliasBudget { nodes: ALIAS_NODES, bytes: bytes_limit, bytes_limit };
    let mut root: Option<Node> = None;
    let mut seen_doc = false;
    for ev in Parser::new_from_str(text) {
        let (ev, span) = ev.map_err(|e| SyntaxError {
            pos: Pos { line: e.marker().line(), col: e.marker().col() + 1, width: 1 },
            path: String::new(),
            message: e.info().to_string(),
        })?;
        let pos = Pos::from_span(&span);
        let finished: Option<(Node, usize, usize)> = match ev {
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
                    0,
                ))
            }
            Event::Alias(id) => {
                let Some((node, height)) = anchors.get(&id) else {
                    return Err(at(pos, &stack, "alias to an unknown anchor".into()));
                };
                let height = *height;
                if stack.len() + height > MAX_DEPTH {
                    return Err(too_deep(pos, &stack));
                }
                spend(&mut budget, node, "aliases expand to").map_err(|m| at(pos, &stack, m))?;
                let mut node = node.clone();
                node.pos = pos;
                Some((node, 0, height))
            }
            Event::SequenceStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(too_deep(pos, &stack));
                }
                stack.push(Frame::Seq { pos, anchor, items: Vec::new(), height: 0 });
                None
            }
            Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(too_deep(pos, &stack));
                }
                stack.push(Frame::Map { pos, anchor, pairs: Vec::new(), key: None, height: 0 });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq { pos, anchor, items, height }) => {
                    Some((Node { pos, kind: Kind::Seq(items) }, anchor, height + 1))
                }
                Some(Frame::Map { pos, anchor, pairs, height, .. }) => Some((
                    Node { pos, kind: Kind::Map(apply_merge_keys(pairs)) },
                    anchor,
                    height + 1,
                )),
                None => None,
            },
            Event::StreamStart | Event::Nothing => None,
        };
        let Some((node, anchor, height)) = finished else { continue };
        if anchor != 0 {
            // The stored copy costs as much as an expansion: anchors nested 127 deep around one
            // big scalar would otherwise copy it 127 times.
            let what = "anchors nested in anchors copy";
            spend(&mut budget, &node, what).map_err(|m| at(node.pos, &stack, m))?;
            anchors.insert(anchor, (node.clone(), height));
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { items, height: h, .. }) => {
                *h = (*h).max(height);
                items.push(node);
            }
            Some(Frame::Map { pairs, key, height: h, .. }) => {
                *h = (*h).max(height);
                match key.take() {
                    None => *key = Some(node),
                    Some(k) => pairs.push((k, node)),
                }
            }
        }
    }
    Ok(root.filter(|n| n.scalar() != Some(Value::Null)))
}

/// An error at `pos`, the node about to be added under `stack`.
fn at(pos: Pos, stack: &[Frame], message: String) -> SyntaxError {
    SyntaxError { pos, path: stack_path(stack), message }
}

fn too_deep(pos: Pos, stack: &[Frame]) -> SyntaxError {
    at(
        pos,
        stack,
        format!(
            "sequences and mappings nest deeper than {MAX_DEPTH} levels (aliases included); \
             refusing to parse"
        ),
    )
}

/// Charges one copy of `node` (an alias expansion, or an anchor's stored copy) to the budget.
fn spend(budget: &mut AliasBudget, node: &Node, what: &str) -> Result<(), String> {
    let (nodes, bytes) = size(node);
    if nodes > budget.nodes {
        return Err(format!("{what} more than {ALIAS_NODES} nodes; refusing to expand"));
    }
    if bytes > budget.bytes {
        return Err(format!(
            "{what} more than {} bytes of text ({ALIAS_BYTES_PER_INPUT_BYTE} times the \
             document's size, at least {ALIAS_BYTES_FLOOR} and at most {ALIAS_BYTES_CAP}); \
             refusing to expand",
            budget.bytes_limit
        ));
    }
    budget.nodes -= nodes;
    budget.bytes -= bytes;
    Ok(())
}

/// Nodes and bytes of scalar text in `node`. Recursive, but every stored node is at most
/// [`MAX_DEPTH`] deep.
fn size(node: &Node) -> (usize, usize) {
    match &node.kind {
        Kind::Scalar { text, .. } => (1, text.len()),
        Kind::Seq(items) => items.iter().map(size).fold((1, 0), add),
        Kind::Map(pairs) => pairs.iter().map(|(k, v)| add(size(k), size(v))).fold((1, 0), add),
    }
}

fn add(a: (usize, usize), b: (usize, usize)) -> (usize, usize) {
    (a.0.saturating_add(b.0), a.1.saturating_add(b.1))
}

/// The key path of the node about to be added under `stack`, cut after [`PATH_SHOWN`] steps.
fn stack_path(stack: &[Frame]) -> String {
    let mut path = String::new();
    for (i, frame) in stack.iter().enumerate() {
        if i == PATH_SHOWN {
            path.push('…');
            break;
        }
        path = match frame {
            Frame::Seq { items, .. } => index_path(&path, items.len()),
            Frame::Map { key: Some(k), .. } => match &k.kind {
                Kind::Scalar { text, .. } => key_path(&path, text),
                _ => key_path(&path, "?"),
            },
            // The node is a key: the path ends at its mapping.
            Frame::Map { key: None, .. } => break,
        };
    }
    path
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

    /// `services:\n  - - - … x` nested 30,000 deep overflowed the stack (exit 134) in every
    /// command; it is now an error at the first sequence past the limit.
    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = format!("services:\n  {}x\n", "- ".repeat(30_000));
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("deeper than 128 levels"), "{err:?}");
        assert_eq!((err.pos.line, err.pos.col), (2, 3 + 2 * (MAX_DEPTH - 1)), "{err:?}");
        assert!(err.path.starts_with("services[0][0][0]") && err.path.ends_with('…'), "{err:?}");
        // Flow collections count the same way.
        let flow = format!("a: {}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse(&flow).unwrap_err().message.contains("deeper than"));
    }

    #[test]
    fn nesting_up_to_the_limit_is_fine() {
        let ok = format!("{}x{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let over = format!("[{ok}]");
        assert!(parse(&over).is_err());
    }

    /// Each anchor may nest 127 levels and contain an alias to the previous one: depth grows by
    /// 127 per line without ever opening a deep collection.
    #[test]
    fn aliases_cannot_nest_past_the_depth_limit() {
        let deep = |inner: &str| format!("{}{inner}{}", "[".repeat(100), "]".repeat(100));
        let mut s = format!("a0: &a0 {}\n", deep("x"));
        for i in 1..40 {
            s.push_str(&format!("a{i}: &a{i} {}\n", deep(&format!("*a{}", i - 1))));
        }
        let err = parse(&s).unwrap_err();
        assert!(err.message.contains("aliases included"), "{err:?}");
        assert_eq!(err.pos.line, 2, "{err:?}");
    }

    /// A budget in nodes let one big scalar aliased thousands of times allocate until the
    /// process died (1 MiB × 99,000 in the report; 64 KiB × 40 here, past the 1 MiB floor).
    #[test]
    fn aliasing_one_big_scalar_is_budgeted_in_bytes() {
        let big = "x".repeat(64 << 10);
        let aliases = vec!["*big"; 40].join(", ");
        let text = format!("big: &big {big}\ncopies: [{aliases}]\n");
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("bytes of text"), "{err:?}");
        assert!(err.message.contains(&format!("{ALIAS_BYTES_FLOOR}")), "{err:?}");
        assert_eq!(err.pos.line, 2, "{err:?}");
        assert!(err.path.starts_with("copies["), "{err:?}");
        // Anchors nested around one big scalar copy it once per anchor.
        let big_inside = format!("{}&a {big}{}\n", "&a [".repeat(100), "]".repeat(100));
        let err = parse(&big_inside).unwrap_err();
        assert!(err.message.contains("anchors nested in anchors copy more than"), "{err:?}");
        // A few copies of a small anchor, as real files use them, are fine.
        let small = format!("b: &b [{}]\nc: [*b, *b, *b, *b, *b]\n", "CAP_SYS_ADMIN, ".repeat(20));
        assert!(parse(&small).is_ok());
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
