//! Typed reads from the located tree: each one checks the JSON-schema type LinuxKit's schema
//! demands, and on failure records a [`Diagnostic`] with the key path instead of stopping, so one
//! run reports every problem in a file.

use crate::config::{IdRef, Origin};
use crate::diag::{did_you_mean, Diagnostic};
use crate::node::{Kind, Node, Pos, Value};
use std::collections::BTreeMap;

/// `parent.key`, or `key` at the top.
pub(crate) fn key_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[i]`.
pub(crate) fn index_path(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// The keys of one mapping that passed the unknown/duplicate-key checks.
pub(crate) struct Fields<'n> {
    pub pos: Pos,
    entries: Vec<(&'n str, &'n Node)>,
}

impl<'n> Fields<'n> {
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

/// Collects diagnostics while decoding one document of one file.
pub(crate) struct Decoder<'s> {
    pub file: &'s str,
    pub src: &'s str,
    pub diags: Vec<Diagnostic>,
    /// Byte offset of each line start, so that cutting out a source line is O(1): every image
    /// entry keeps its line, and a config may have thousands.
    line_starts: Vec<usize>,
}

impl<'s> Decoder<'s> {
    pub fn new(file: &'s str, src: &'s str) -> Self {
        let line_starts =
            std::iter::once(0).chain(src.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Decoder { file, src, diags: Vec::new(), line_starts }
    }

    /// The text of 1-based line `line`, without its line break.
    fn line(&self, line: usize) -> Option<&'s str> {
        let start = *self.line_starts.get(line.checked_sub(1)?)?;
        let end = self.line_starts.get(line).map_or(self.src.len(), |e| e - 1);
        Some(self.src[start..end].trim_end_matches('\r'))
    }

    fn diag(&self, pos: Pos, path: &str, message: String) -> Diagnostic {
        let mut d = Diagnostic::at(self.file, "", pos, path, message);
        d.source_line = self.line(pos.line).map(str::to_string);
        d
    }

    pub fn error(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        let d = self.diag(pos, path, message.into());
        self.diags.push(d);
    }

    pub fn error_help(
        &mut self,
        pos: Pos,
        path: &str,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        let d = self.diag(pos, path, message.into()).with_help(help);
        self.diags.push(d);
    }

    pub fn origin(&self, pos: Pos, path: &str) -> Origin {
        Origin {
            file: self.file.to_string(),
            line: pos.line,
            col: pos.col,
            width: pos.width,
            path: path.to_string(),
            source_line: self.line(pos.line).map(str::to_string),
        }
    }

    fn type_error(&mut self, node: &Node, path: &str, expected: &str) {
        let given = node.type_name();
        let article = |w: &str| if w.starts_with(['a', 'i', 'o']) { "an" } else { "a" };
        let mut help = None;
        if expected == "string" {
            if let Kind::Scalar { text, .. } = &node.kind {
                // The classic: `mode: 0644` is an (octal) integer to YAML; LinuxKit wants text.
                help = Some(format!("quote it to make it a string: \"{text}\""));
            }
        }
        if given == "null" {
            help = Some(format!("give it a value, or remove the key (an empty key is null, not an empty {expected})"));
        }
        self.error_help(
            node.pos,
            path,
            format!("expected {} {expected}, found {} {given}", article(expected), article(given)),
            help,
        );
    }

    /// A mapping whose keys are all in `allowed`. Unknown keys get a "did you mean".
    pub fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        allowed: &[&str],
    ) -> Option<Fields<'n>> {
        let Kind::Map(pairs) = &node.kind else {
            self.type_error(node, path, "object");
            return None;
        };
        let mut entries: Vec<(&'n str, &'n Node)> = Vec::new();
        let mut first_seen: Vec<(&'n str, Pos)> = Vec::new();
        for (k, v) in pairs {
            let key = match (&k.kind, k.scalar()) {
                (Kind::Scalar { text, .. }, Some(_)) => text.as_str(),
                _ => {
                    self.error(k.pos, path, "mapping keys must be plain strings");
                    continue;
                }
            };
            let kpath = key_path(path, key);
            if let Some((_, first)) = first_seen.iter().find(|(s, _)| *s == key) {
                let msg = format!("duplicate key `{key}` (first at line {})", first.line);
                self.error(k.pos, &kpath, msg);
                continue;
            }
            first_seen.push((key, k.pos));
            if !allowed.contains(&key) {
                let help = did_you_mean(key, allowed.iter().copied())
                    .or_else(|| {
                        // A key valid elsewhere is usually an indentation slip.
                        let homes = crate::schema::homes_of(key);
                        (!homes.is_empty()).then(|| {
                            format!(
                                "`{key}` belongs in {}: check its indentation",
                                homes.join(" or ")
                            )
                        })
                    })
                    .or_else(|| Some(format!("valid keys here: {}", allowed.join(", "))));
                self.error_help(k.pos, &kpath, format!("unknown key `{key}`"), help);
                continue;
            }
            entries.push((key, v));
        }
        Some(Fields { pos: node.pos, entries })
    }

    /// A required key of a mapping; an error at the mapping when it is missing.
    pub fn required<'n>(&mut self, f: &Fields<'n>, path: &str, key: &str) -> Option<&'n Node> {
        let v = f.get(key);
        if v.is_none() {
            self.error(f.pos, path, format!("missing required key `{key}`"));
        }
        v
    }

    pub fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match node.scalar() {
            Some(Value::Str(s)) => Some(s.to_string()),
            _ => {
                self.type_error(node, path, "string");
                None
            }
        }
    }

    pub fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match node.scalar() {
            Some(Value::Bool(b)) => Some(b),
            Some(Value::Str(s)) if matches!(s, "yes" | "no" | "on" | "off" | "y" | "n") => {
                self.error_help(
                    node.pos,
                    path,
                    format!("expected a boolean, found the string `{s}`"),
                    Some("write `true` or `false`".into()),
                );
                None
            }
            _ => {
                self.type_error(node, path, "boolean");
                None
            }
        }
    }

    pub fn int(&mut self, node: &Node, path: &str) -> Option<i64> {
        match node.scalar() {
            Some(Value::Int(i)) => i64::try_from(i).ok(),
            _ => {
                self.type_error(node, path, "integer");
                None
            }
        }
    }

    /// A list whose items are read by `item`; `None` if it is not a list.
    pub fn list<T>(
        &mut self,
        node: &Node,
        path: &str,
        mut item: impl FnMut(&mut Self, &Node, &str) -> Option<T>,
    ) -> Option<Vec<T>> {
        let Kind::Seq(items) = &node.kind else {
            self.type_error(node, path, "array");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, n) in items.iter().enumerate() {
            if let Some(v) = item(self, n, &index_path(path, i)) {
                out.push(v);
            }
        }
        Some(out)
    }

    pub fn strings(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        self.list(node, path, |d, n, p| d.string(n, p))
    }

    /// A uid/gid: schema `anyOf: [string, integer]`.
    pub fn id_ref(&mut self, node: &Node, path: &str) -> Option<IdRef> {
        match node.scalar() {
            Some(Value::Str(s)) => Some(IdRef::Name(s.to_string())),
            Some(Value::Int(i)) => match i64::try_from(i) {
                Ok(i) => Some(IdRef::Num(i)),
                Err(_) => {
                    self.error(node.pos, path, "id out of range");
                    None
                }
            },
            _ => {
                self.type_error(node, path, "string or integer");
                None
            }
        }
    }

    /// An object of string values (`sysctl`, `annotations`). Sorted, as Go maps marshal.
    pub fn str_map(&mut self, node: &Node, path: &str) -> Option<BTreeMap<String, String>> {
        let Kind::Map(pairs) = &node.kind else {
            self.type_error(node, path, "object");
            return None;
        };
        let mut out = BTreeMap::new();
        for (k, v) in pairs {
            let Some(Value::Str(key)) = k.scalar() else {
                // Keys like `1` or `true` are still map keys to yaml.v3 (stringified).
                let Kind::Scalar { text, .. } = &k.kind else {
                    self.error(k.pos, path, "mapping keys must be plain strings");
                    continue;
                };
                let p = key_path(path, text);
                if let Some(s) = self.string(v, &p) {
                    out.insert(text.clone(), s);
                }
                continue;
            };
            let p = key_path(path, key);
            if out.contains_key(key) {
                self.error(k.pos, &p, format!("duplicate key `{key}`"));
                continue;
            }
            if let Some(s) = self.string(v, &p) {
                out.insert(key.to_string(), s);
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_lines_by_number() {
        let d = Decoder::new("f", "a: 1\r\nb: 2\n\nlast");
        assert_eq!(d.line(1), Some("a: 1"));
        assert_eq!(d.line(2), Some("b: 2"));
        assert_eq!(d.line(3), Some(""));
        assert_eq!(d.line(4), Some("last"));
        assert_eq!(d.line(5), None);
        assert_eq!(d.line(0), None);
    }
}
