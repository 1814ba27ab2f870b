//! Golden config.json / runtime.json files: for every `golden/NAME.yml`, each container's
//! generated files must equal `golden/NAME.CONTAINER.config.json` and `.runtime.json` byte for
//! byte. `NAME.label.yml` (the `org.mobyproject.config` label of every image in that file) and
//! `NAME.image.json` (the image's own OCI config) are optional inputs.
//!
//! `BALEEN_REGEN_GOLDEN=1` rewrites the expected files (see golden/regen.sh); review the diff
//! against spec §2 before committing it.

use baleen_spec::runtime::{config_to_oci, is_readonly, runtime_json, ImageDefaults};
use baleen_spec::{load, oci::to_go_json, parse_label, IdMap, Source};
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn image_defaults(path: &Path) -> ImageDefaults {
    let Ok(text) = std::fs::read_to_string(path) else { return ImageDefaults::default() };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let list = |k: &str| -> Option<Vec<String>> {
        v.get(k).map(|a| {
            a.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
        })
    };
    ImageDefaults {
        entrypoint: list("Entrypoint").unwrap_or_default(),
        cmd: list("Cmd").unwrap_or_default(),
        env: list("Env"),
        working_dir: v.get("WorkingDir").and_then(|s| s.as_str()).unwrap_or_default().to_string(),
    }
}

/// Every (file name, bytes) this case produces.
fn generate(yml: &Path) -> Vec<(String, String)> {
    let stem = yml.file_stem().unwrap().to_str().unwrap().to_string();
    let text = std::fs::read_to_string(yml).unwrap();
    let cfg = load(Source { name: &stem, text: &text, template_dir: None }, None)
        .unwrap_or_else(|d| panic!("{d}"));
    let label_text = std::fs::read_to_string(yml.with_file_name(format!("{stem}.label.yml"))).ok();
    let label = label_text.map(|t| parse_label("golden", &t).unwrap_or_else(|d| panic!("{d}")));
    let defaults = image_defaults(&yml.with_file_name(format!("{stem}.image.json")));
    let ids = IdMap::new(&cfg);
    let mut out = Vec::new();
    let sections =
        [("onboot", &cfg.onboot), ("onshutdown", &cfg.onshutdown), ("services", &cfg.services)];
    for (section, images) in sections {
        for (i, img) in images.iter().enumerate() {
            let (spec, rt) = config_to_oci(&img.name, &img.config, label.as_ref(), &defaults, &ids)
                .unwrap_or_else(|e| panic!("{stem}: {e}"));
            // Bundle layout of LinuxKit's build: onboot/onshutdown entries are numbered.
            let prefix = if section == "services" {
                format!("containers/{section}/{}", img.name)
            } else {
                format!("containers/{section}/{i:03}-{}", img.name)
            };
            let readonly = is_readonly(&img.config, label.as_ref());
            let root = format!("{prefix}/{}", if readonly { "rootfs" } else { "lower" });
            let rt = runtime_json(rt, &prefix, &root, readonly);
            out.push((format!("{stem}.{}.config.json", img.name), to_go_json(&spec)));
            out.push((format!("{stem}.{}.runtime.json", img.name), to_go_json(&rt)));
        }
    }
    out
}

#[test]
fn generated_runtime_configs_match_the_golden_files() {
    let regen = std::env::var_os("BALEEN_REGEN_GOLDEN").is_some_and(|v| v == "1");
    let dir = golden_dir();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.ends_with(".yml") && !n.ends_with(".label.yml")
        })
        .collect();
    cases.sort();
    assert!(cases.len() >= 8, "{cases:?}");
    let mut mismatches = Vec::new();
    let mut produced = Vec::new();
    for case in &cases {
        for (name, bytes) in generate(case) {
            let path = dir.join(&name);
            produced.push(name.clone());
            if regen {
                std::fs::write(&path, &bytes).unwrap();
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(want) if want == bytes => {}
                Ok(want) => {
                    mismatches.push(format!("{name} differs:\n--- want\n{want}\n--- got\n{bytes}"))
                }
                Err(_) => mismatches.push(format!("{name} is missing (run golden/regen.sh)")),
            }
        }
    }
    // No stale expected files either.
    for e in std::fs::read_dir(&dir).unwrap() {
        let n = e.unwrap().file_name().into_string().unwrap();
        if (n.ends_with(".config.json") || n.ends_with(".runtime.json")) && !produced.contains(&n) {
            mismatches.push(format!("{n} is not produced by any case"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}
