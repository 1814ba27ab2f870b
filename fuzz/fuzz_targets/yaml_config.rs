//! Any bytes as a config file, alone and merged with a valid one: loading never panics, never
//! hangs on aliases, and every diagnostic renders (carets, multi-byte characters, tabs). A config
//! that loads prints (as `--dry-run` does) to YAML that loads back to the same config.
#![no_main]

use baleen_spec::{load_all, Source};
use libfuzzer_sys::fuzz_target;

const BASE: &str = "kernel:\n  image: linuxkit/kernel:6.12\ninit:\n  - linuxkit/init:v1\nservices:\n  - name: getty\n    image: linuxkit/getty:v1\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let one = Source { name: "fuzz.yml", text, template_dir: None };
    let base = Source { name: "base.yml", text: BASE, template_dir: None };
    for sources in [&[one][..], &[base, one][..]] {
        match load_all(sources, None) {
            Ok(cfg) => {
                let _ = cfg.with_expanded_refs();
                let _ = baleen_spec::IdMap::new(&cfg);
                let printed = serde_saphyr::to_string(&cfg).expect("a loaded config serializes");
                let again = Source { name: "printed.yml", text: &printed, template_dir: None };
                let back = load_all(&[again], None)
                    .unwrap_or_else(|d| panic!("printed config does not load:\n{printed}\n{d}"));
                let json = |c: &baleen_spec::Config| serde_json::to_value(c).unwrap();
                assert_eq!(json(&back), json(&cfg), "printed:\n{printed}");
            }
            Err(diags) => {
                assert!(!diags.0.is_empty());
                for d in &diags.0 {
                    assert!(d.line >= 1 && d.col >= 1);
                    let _ = d.to_string();
                }
            }
        }
    }
});
