//! Any bytes as what `baleen audit` reads from an archive or an output. The first byte
//! chooses the reader: an SBOM's JSON (`components_of_spdx`), a file given to audit
//! (`spdx_of_output`: SPDX JSON or a tar, plain or gzip, holding one), a changelog
//! (`advisories_since`), a `.deb`'s changelog (`read_from_deb`), a clear-signed InRelease
//! (`verify_with`, then the Release checks), a DEP-5 copyright file (`dep5_licenses`).
//! Nothing panics or hangs.
#![no_main]

use baleen_pkg::audit::{components_of_spdx, spdx_of_output};
use baleen_pkg::deb::{archive, changelog};
use baleen_pkg::sbom::dep5_licenses;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// One file the path-taking readers read, rewritten for each input.
fn scratch() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory")).path()
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    match choice % 6 {
        0 => {
            if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(rest) {
                for c in components_of_spdx(&doc, "fuzz") {
                    let _ = (c.name, c.debs.len());
                }
            }
        }
        1 => {
            let path = scratch().join("output");
            std::fs::write(&path, rest).expect("writing the scratch file");
            if let Ok(doc) = spdx_of_output(&path) {
                let _ = components_of_spdx(&doc, "fuzz");
            }
        }
        2 => {
            for installed in ["0", "1.0-1", "3.0.15-1~deb12u1"] {
                let ids = changelog::advisories_since(&text, installed);
                let mut dedup = ids.clone();
                dedup.sort();
                dedup.dedup();
                assert_eq!(dedup.len(), ids.len(), "repeats in {ids:?}");
            }
        }
        3 => {
            let path = scratch().join("p.deb");
            std::fs::write(&path, rest).expect("writing the scratch file");
            if let Ok(Some(log)) = changelog::read_from_deb(&path, "p") {
                let _ = changelog::advisories_since(&log, "0");
            }
        }
        4 => {
            let _ = archive::verify_with(&text, &[]);
            let _ = archive::keyring_keys(rest);
            let now = std::time::SystemTime::UNIX_EPOCH;
            let _ = archive::check_valid_until(&text, now, "u", "bookworm");
            let _ = archive::check_suite(&text, "u", "bookworm");
            let _ = archive::check_not_older(&text, &text, "u");
            let _ = archive::check_not_older(&text, "Date: Sat, 30 Nov 2024 08:15:01 UTC\n", "u");
        }
        _ => {
            let _ = dep5_licenses(rest);
        }
    }
});
