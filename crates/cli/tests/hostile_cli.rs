//! Hostile YAML files and image labels (issue 21): each must end in a clean error (exit 1, the
//! file or label, line:column and the limit named) rather than a stack overflow (exit 134) or an
//! allocation that kills the process, and no terminal escape they carry reaches stderr raw.

use baleen_testkit::image::ImageBuilder;
use baleen_testkit::layers::file_mode;
use std::path::Path;
use std::process::{Command, Output};

fn baleen(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baleen"))
        .current_dir(dir)
        .args(args)
        .env_remove("BALEEN_CACHE")
        .output()
        .unwrap()
}

fn failed_cleanly(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
    assert!(!stderr.contains('\x1b'), "{what}: a raw ESC reached stderr:\n{stderr}");
    stderr
}

/// `services:\n  - - - … x`, 30,000 deep: every command that reads it aborted on a stack
/// overflow (exit 134).
#[test]
fn deeply_nested_yaml_is_an_error_in_validate_and_build() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = format!("services:\n  {}x\n", "- ".repeat(30_000));
    std::fs::write(tmp.path().join("deep.yml"), yaml).unwrap();
    let cache = tmp.path().join("cache");
    let cache = cache.to_str().unwrap();
    for args in [
        &["validate", "deep.yml"][..],
        &["build", "--cache", cache, "--dry-run", "deep.yml"],
        &["build", "--cache", cache, "-f", "tar", "--o", "x.tar", "deep.yml"],
    ] {
        let stderr = failed_cleanly(&baleen(tmp.path(), args), args[0]);
        assert!(stderr.contains("deeper than 128 levels"), "{args:?}: {stderr}");
        assert!(stderr.contains("--> deep.yml:2:257"), "{args:?}: {stderr}");
        assert!(stderr.contains("error: services[0][0]"), "{args:?}: {stderr}");
    }
}

/// One 1 MiB scalar aliased 99,000 times (a 1.3 MB file) allocated until the process died: the
/// alias budget counted nodes, not bytes.
#[test]
fn aliasing_a_big_scalar_is_an_error_not_an_oom() {
    let tmp = tempfile::tempdir().unwrap();
    let big = "x".repeat(1 << 20);
    let aliases = vec!["*big"; 99_000].join(",");
    let yaml = format!(
        "files:\n  - path: a\n    contents: &big {big}\n  - path: b\n    contents: [{aliases}]\n"
    );
    std::fs::write(tmp.path().join("bomb.yml"), yaml).unwrap();
    let stderr = failed_cleanly(&baleen(tmp.path(), &["validate", "bomb.yml"]), "validate");
    assert!(stderr.contains("aliases expand to more than"), "{stderr}");
    assert!(stderr.contains("bytes of text"), "{stderr}");
    assert!(stderr.contains("--> bomb.yml:5:"), "{stderr}");
    assert!(stderr.contains("error: files[1].contents["), "{stderr}");
}

/// An error quoting an input printed its bytes raw: a key holding `ESC[2J ESC[31m` cleared the
/// terminal and printed a fake success in red.
#[test]
fn terminal_escapes_in_a_yaml_are_shown_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = "services:\n  - name: a\n    image: alpine\n    \"\x1b[2J\x1b[31mFAKE: build succeeded\": 1\n";
    std::fs::write(tmp.path().join("esc.yml"), yaml).unwrap();
    let stderr = failed_cleanly(&baleen(tmp.path(), &["validate", "esc.yml"]), "validate");
    assert!(stderr.contains("\\x1b[2J\\x1b[31mFAKE: build succeeded"), "{stderr}");
    assert!(stderr.contains("--> esc.yml:4:5"), "{stderr}");
}

/// The same three attacks from an image's `org.mobyproject.config` label, which `build` parses
/// with the same parser.
#[test]
fn hostile_labels_are_clean_errors() {
    // Block style: flow nesting past 256 levels is already refused by saphyr's scanner.
    let deep = format!("{}x\n", "- ".repeat(30_000));
    let bomb = format!(
        "{{\"env\": [&big \"{}\"], \"sysctl\": {{\"x\": [{}]}}}}",
        "x".repeat(64 << 10),
        vec!["*big"; 1000].join(",")
    );
    let escape = "{\"capabilities\": [\"\x1b[2J\x1b[31mFAKE: build succeeded\"]}".to_string();
    let cases = [
        ("deep", deep, "deeper than 128 levels"),
        ("bomb", bomb, "bytes of text"),
        ("escape", escape, "unknown capability `\\x1b[2J\\x1b[31mFAKE: build succeeded`"),
    ];
    for (name, label, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let cache = labelled_system(tmp.path(), &label);
        let out = baleen(
            tmp.path(),
            &["build", "--cache", cache.to_str().unwrap(), "-f", "tar", "--o", "x.tar", "sys.yml"],
        );
        let stderr = failed_cleanly(&out, name);
        assert!(stderr.contains(want), "{name}: {stderr}");
        assert!(stderr.contains("org.mobyproject.config label of"), "{name}: {stderr}");
        assert!(!tmp.path().join("x.tar").exists(), "{name}: an output was written");
    }
}

/// What every kind of input carries below: a forged line and a terminal escape.
const FORGED: &str = "x\nFAKE: build succeeded\x1b[31m";

/// Whether the rendered error shows `FORGED` (or the part of it that the error quotes) escaped,
/// inside its own line, never a line it forged; else what went wrong.
fn forged_line_stays_inside(stderr: &str, what: &str) -> Result<(), String> {
    if stderr.contains("\nFAKE") {
        return Err(format!("{what}: a newline from the input reached stderr:\n{stderr}"));
    }
    if stderr.contains('\x1b') {
        return Err(format!("{what}: a raw ESC reached stderr:\n{stderr}"));
    }
    if !stderr.contains("x\\nFAKE") {
        return Err(format!("{what}: not shown escaped:\n{stderr}"));
    }
    Ok(())
}

/// A docker-save tar whose manifest.json names a config entry the archive lacks.
fn docker_save_naming(config: &str) -> Vec<u8> {
    let manifest = serde_json::json!([{"Config": config, "RepoTags": ["a:1"], "Layers": []}]);
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(bytes.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "manifest.json", &bytes[..]).unwrap();
    b.into_inner().unwrap()
}

/// A registry on loopback that answers every request but the probe with 400 and `body`; its
/// `host:port`.
fn registry_answering(body: &'static str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            // One read: a request's head comes in one segment, and a TLS hello (baleen tries
            // https first) must be answered too, not waited on for a blank line.
            let mut req = [0u8; 4096];
            let n = conn.read(&mut req).unwrap_or(0);
            // `/v2/` answers 200 (a registry that speaks plain HTTP); the rest, 400 and `body`.
            let body = if req[..n].starts_with(b"GET /v2/ ") { "" } else { body };
            let status = if body.is_empty() { "200 OK" } else { "400 Bad Request" };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).and_then(|()| conn.write_all(body.as_bytes()));
        }
    });
    host
}

/// Issue 21 follow-up: control characters were escaped, but newlines were kept (messages are
/// multi-line on purpose), so a value from an input could forge a line of the error —
/// `FAKE: build succeeded` on a line of its own. Each kind of input is tried: a YAML value, an
/// image label, an archive's entry name, a registry's answer.
#[test]
fn newlines_from_every_kind_of_input_stay_inside_their_line() {
    let tmp = tempfile::tempdir().unwrap();
    let mut wrong = Vec::new();
    let mut check = |out: Output, what: &str| {
        assert_eq!(out.status.code(), Some(1), "{what}");
        wrong.extend(forged_line_stays_inside(&String::from_utf8_lossy(&out.stderr), what).err());
    };
    // A YAML value (YAML's own escapes make the newline and ESC).
    let yaml = "services:\n  - name: a\n    image: alpine\n    binds: [\"x\\nFAKE: build succeeded\\e[31m\"]\n";
    std::fs::write(tmp.path().join("bind.yml"), yaml).unwrap();
    check(baleen(tmp.path(), &["validate", "bind.yml"]), "yaml value");

    // An image's org.mobyproject.config label.
    let label = serde_json::json!({"capabilities": [FORGED]}).to_string();
    let cache = labelled_system(tmp.path(), &label);
    let cache_arg = cache.to_str().unwrap();
    let args = ["build", "--cache", cache_arg, "-f", "tar", "--o", "x.tar", "sys.yml"];
    check(baleen(tmp.path(), &args), "label");

    // An entry name in an archive (`cache import` of a docker-save tar).
    std::fs::write(tmp.path().join("save.tar"), docker_save_naming(FORGED)).unwrap();
    let args = ["cache", "import", "--cache", cache_arg, "save.tar"];
    check(baleen(tmp.path(), &args), "archive entry name");

    // A registry's answer.
    let host = registry_answering("x\nFAKE: build succeeded\x1b[31m");
    let image = format!("{host}/evil/answer:1");
    let args = ["cache", "pull", "--cache", cache_arg, "--platform", "linux/amd64", &image];
    check(baleen(tmp.path(), &args), "registry answer");
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// In `dir`: a cache holding `baleen/hostile:1` whose `org.mobyproject.config` label is `label`,
/// and `sys.yml` running it as a service. Returns the cache.
fn labelled_system(dir: &std::path::Path, label: &str) -> std::path::PathBuf {
    let cache = dir.join("cache");
    ImageBuilder::new()
        .layer(&[file_mode("bin/svc", b"svc", 0o755)])
        .config(serde_json::json!({"Labels": {"org.mobyproject.config": label}}))
        .build()
        .write_layout(&cache, "docker.io/baleen/hostile:1");
    let yaml = "services:\n  - name: svc\n    image: baleen/hostile:1\n";
    std::fs::write(dir.join("sys.yml"), yaml).unwrap();
    cache
}
