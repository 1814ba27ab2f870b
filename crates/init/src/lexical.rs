//! Lexical path cleaning: `.`, empty components and `..` resolved on the text alone, never
//! through a filesystem; a `..` at the top stays at the top (`/dev/../..` is `/`).
//!
//! This file has no dependencies: baleen-init keeps a bundle's cgroup path under the cgroup
//! root with it, and the `baleen-spec` crate includes the same file (`#[path]`) to see a bind
//! of `/` through any spelling, so the rule has one home.

/// The components of `path` with `.`, empty components and `..` resolved lexically.
pub fn clean_components(path: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts
}
