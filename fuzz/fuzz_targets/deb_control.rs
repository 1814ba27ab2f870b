//! Any text as Debian metadata: a control file / `Packages` index (paragraphs, relations,
//! version comparison, dependency resolution), `sources.list` in both syntaxes and a `Release`
//! file's checksum lines. Nothing panics or hangs; version comparison is antisymmetric.
#![no_main]

use baleen_pkg::deb::{archive, control, resolve, sources, version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let paragraphs = control::parse(text);
    let mut versions = Vec::new();
    for p in &paragraphs {
        for (_, value) in &p.fields {
            let _ = resolve::parse_relations(value);
        }
        if let Some(v) = p.get("Version") {
            versions.push(v);
        }
    }
    for pair in versions.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert_eq!(version::compare(a, b), version::compare(b, a).reverse(), "{a:?} vs {b:?}");
    }
    let index = resolve::Index::parse("amd64", text);
    let roots: Vec<String> =
        paragraphs.iter().filter_map(|p| p.get("Package")).take(4).map(String::from).collect();
    if let Err(e) = index.resolve(&roots, &[]) {
        let _ = e.to_string();
    }
    let _ = sources::parse_one_line(text);
    let _ = sources::parse_deb822(text);
    let _ = archive::release_entry(text, "main/binary-amd64/Packages.xz");
});
