//! The merged SBOM (spec §3 step 9) on images made by the test: an image index carrying a
//! buildkit-style attestation manifest whose in-toto layer holds an SPDX document, as LinuxKit
//! reads them. Checked field by field, for determinism, `--sbom-output` and `--no-sbom`.

use baleen_build::{build, Format, Output, Request, SbomOptions};
use baleen_oci::{Platform, Store};
use baleen_testkit::image::{sha256, ImageBuilder, OCI_INDEX, OCI_MANIFEST};
use baleen_testkit::layers::{dir, file, file_mode, tar_layer};
use baleen_testkit::Chain;
use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;

const YAML: &str = r#"
kernel:
  image: baleen/sbom-kernel:1
  cmdline: "console=ttyS0"
init:
  - baleen/sbom-init:1
onboot:
  - name: first
    image: baleen/sbom-app:1
services:
  - name: again
    image: baleen/sbom-app:1
  - name: plain
    image: baleen/sbom-plain:1
"#;

fn write_blob(at: &Path, data: &[u8]) -> String {
    let digest = sha256(data);
    let dir = at.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(&digest[7..]), data).unwrap();
    digest
}

/// An SPDX document as syft/buildkit write them (trimmed).
fn spdx(package: &str, version: &str, file: &str) -> Value {
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "sbom",
        "documentNamespace": format!("https://example.invalid/{package}"),
        "creationInfo": {"creators": ["Tool: syft"], "created": "2024-01-01T00:00:00Z"},
        "documentDescribes": [format!("SPDXRef-Package-{package}")],
        "packages": [{
            "name": package, "SPDXID": format!("SPDXRef-Package-{package}"),
            "versionInfo": version, "downloadLocation": "NOASSERTION",
        }],
        "files": [{"fileName": file, "SPDXID": format!("SPDXRef-File-{package}")}],
        "relationships": [{
            "spdxElementId": format!("SPDXRef-Package-{package}"),
            "relatedSpdxElement": format!("SPDXRef-File-{package}"),
            "relationshipType": "CONTAINS",
        }],
    })
}

/// Writes `builder`'s image under `name` as the amd64 entry of an index that also holds an
/// attestation manifest for it with one SPDX statement. Returns the digests of the statement and
/// of the (skipped) provenance layer.
fn attested(at: &Path, name: &str, builder: ImageBuilder, document: Value) -> (String, String) {
    let img = builder.build();
    img.write_layout(at, name);
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://spdx.dev/Document",
        "subject": [{"name": name, "digest": {"sha256": &img.manifest.digest[7..]}}],
        "predicate": document,
    });
    let statement = serde_json::to_vec(&statement).unwrap();
    let statement_digest = write_blob(at, &statement);
    let config = br#"{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = write_blob(at, config);
    let att = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [
            // A provenance layer LinuxKit skips.
            {"mediaType": "application/vnd.in-toto+json", "digest": config_digest, "size": config.len(),
             "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}},
            {"mediaType": "application/vnd.in-toto+json", "digest": statement_digest, "size": statement.len(),
             "annotations": {"in-toto.io/predicate-type": "https://spdx.dev/Document"}},
        ],
    }))
    .unwrap();
    let att_digest = write_blob(at, &att);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": img.manifest.digest, "size": img.manifest.data.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": att_digest, "size": att.len(),
             "platform": {"architecture": "unknown", "os": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                             "vnd.docker.reference.digest": img.manifest.digest}},
        ],
    }))
    .unwrap();
    let index_digest = write_blob(at, &index);
    // Point the name at the index instead of the bare manifest.
    let path = at.join("index.json");
    let mut top: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for m in top["manifests"].as_array_mut().unwrap() {
        if m["annotations"]["org.opencontainers.image.ref.name"] == name {
            m["mediaType"] = OCI_INDEX.into();
            m["digest"] = index_digest.clone().into();
            m["size"] = index.len().into();
        }
    }
    std::fs::write(&path, serde_json::to_vec(&top).unwrap()).unwrap();
    (statement_digest, config_digest)
}

fn store(at: &Path) -> Store {
    let _ = attested(
        at,
        "docker.io/baleen/sbom-kernel:1",
        ImageBuilder::new()
            .layer(&[file("kernel", b"KERNEL"), file("kernel.tar", &tar_layer(&[]))]),
        spdx("linux", "6.6", "/kernel"),
    );
    let _ = attested(
        at,
        "docker.io/baleen/sbom-init:1",
        ImageBuilder::new().layer(&[file_mode("init", b"#!/bin/sh\n", 0o755)]),
        spdx("init", "1.0", "/init"),
    );
    let _ = attested(
        at,
        "docker.io/baleen/sbom-app:1",
        ImageBuilder::new()
            .layer(&[dir("bin"), file_mode("bin/app", b"app", 0o755)])
            .config(json!({"Cmd": ["/bin/app"]})),
        spdx("app", "2.1", "./bin/app"),
    );
    ImageBuilder::new()
        .layer(&[file("bin/plain", b"plain")])
        .config(json!({"Cmd": ["/bin/plain"]}))
        .build()
        .write_layout(at, "docker.io/baleen/sbom-plain:1");
    Store::open(at).unwrap()
}

fn config() -> baleen_spec::Config {
    let src = baleen_spec::Source { name: "sbom.yml", text: YAML, template_dir: None };
    baleen_spec::load_all(&[src], None).unwrap_or_else(|d| panic!("{d}"))
}

fn tar_build(store: &Store, out: &Path, sbom: SbomOptions) -> Vec<u8> {
    let cfg = config();
    build(&Request {
        sbom,
        ..Request::new(
            &cfg,
            store,
            vec![Format::Tar],
            Output::File(out.to_path_buf()),
            Platform::new("linux", "amd64", None),
        )
    })
    .unwrap();
    std::fs::read(out).unwrap()
}

/// (path, mode, mtime, number of PAX records, data) of every entry.
fn entries(tar_bytes: &[u8]) -> Vec<(String, u32, u64, usize, Vec<u8>)> {
    let mut out = Vec::new();
    let mut ar = tar::Archive::new(tar_bytes);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let pax = e.pax_extensions().unwrap().map_or(0, |x| x.count());
        let (mode, mtime) = (e.header().mode().unwrap(), e.header().mtime().unwrap());
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((path, mode, mtime, pax, data));
    }
    out
}

fn on() -> SbomOptions {
    SbomOptions { enabled: true, ..SbomOptions::default() }
}

#[test]
fn attested_documents_are_merged_with_tree_prefixes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    let tar = tar_build(&store, &tmp.path().join("a.tar"), on());
    let all = entries(&tar);
    let (path, mode, mtime, pax, data) = all.last().unwrap().clone();
    assert_eq!(path, "sbom.spdx.json", "the SBOM is the last entry");
    assert_eq!(
        (mode, mtime, pax),
        (0o644, 1_492_533_000, 0),
        "mode, fixed epoch, no LINUXKIT records"
    );
    assert_eq!(all.iter().filter(|e| e.0 == "sbom.spdx.json").count(), 1);

    let doc: Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["dataLicense"], "CC0-1.0");
    assert_eq!(doc["SPDXID"], "SPDXRef-DOCUMENT");
    assert_eq!(doc["name"], "sbom");
    assert_eq!(doc["creationInfo"]["created"], "2017-04-18T16:30:00Z");
    let ns = doc["documentNamespace"].as_str().unwrap();
    assert!(ns.starts_with("urn:uuid:") && &ns[23..24] == "5", "a v5 UUID: {ns}");
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "spdxVersion",
            "dataLicense",
            "SPDXID",
            "name",
            "documentNamespace",
            "creationInfo",
            "packages",
            "files",
            "relationships"
        ],
    );

    // The app image is extracted once, under the first bundle (writable: lower/); the service
    // sharing it adds nothing; the plain image has no attestation.
    let packages: Vec<(&str, &str, Option<&str>)> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["versionInfo"].as_str().unwrap(),
                p["packageFileName"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        packages,
        [
            ("app", "2.1", Some("containers/onboot/000-first/lower")),
            ("init", "1.0", None),
            ("linux", "6.6", None),
        ],
        "sorted by SPDXID, packageFileName prefixed (Go's filepath.Join)"
    );
    let files: Vec<&str> =
        doc["files"].as_array().unwrap().iter().map(|f| f["fileName"].as_str().unwrap()).collect();
    assert_eq!(files, ["/init", "/kernel", "containers/onboot/000-first/lower/bin/app"]);
    let rels: Vec<String> = doc["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["spdxElementId"].as_str().unwrap(),
                r["relationshipType"].as_str().unwrap(),
                r["relatedSpdxElement"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        rels,
        [
            "SPDXRef-DOCUMENT DESCRIBES SPDXRef-Package-app",
            "SPDXRef-DOCUMENT DESCRIBES SPDXRef-Package-init",
            "SPDXRef-DOCUMENT DESCRIBES SPDXRef-Package-linux",
            "SPDXRef-Package-app CONTAINS SPDXRef-File-app",
            "SPDXRef-Package-init CONTAINS SPDXRef-File-init",
            "SPDXRef-Package-linux CONTAINS SPDXRef-File-linux",
        ],
        "documentDescribes became DESCRIBES relationships; sorted"
    );
}

#[test]
fn two_builds_are_byte_identical_and_the_namespace_follows_the_content() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    let a = tar_build(&store, &tmp.path().join("a.tar"), on());
    let b = tar_build(&store, &tmp.path().join("b.tar"), on());
    assert!(a == b, "two builds with an SBOM differ");

    // Another SBOM content → another namespace.
    let other = tmp.path().join("other");
    store_with_other_app(&other);
    let c = tar_build(&Store::open(&other).unwrap(), &tmp.path().join("c.tar"), on());
    let ns = |t: &[u8]| -> String {
        let doc: Value = serde_json::from_slice(&entries(t).last().unwrap().4).unwrap();
        doc["documentNamespace"].as_str().unwrap().to_string()
    };
    assert_ne!(ns(&a), ns(&c));
}

fn store_with_other_app(at: &Path) {
    store(at);
    let _ = attested(
        at,
        "docker.io/baleen/sbom-app:1",
        ImageBuilder::new()
            .layer(&[dir("bin"), file_mode("bin/app", b"app", 0o755)])
            .config(json!({"Cmd": ["/bin/app"]})),
        spdx("app", "2.2", "./bin/app"),
    );
}

#[test]
fn no_sbom_leaves_none_and_output_path_and_current_time_are_honoured() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    let none = tar_build(&store, &tmp.path().join("n.tar"), SbomOptions::default());
    assert!(!entries(&none).iter().any(|e| e.0.contains("spdx")), "--no-sbom writes no SBOM");

    let opts = SbomOptions {
        enabled: true,
        path: Some("/usr/share/sbom/system.spdx.json".into()),
        current_time: true,
    };
    let t = tar_build(&store, &tmp.path().join("p.tar"), opts);
    let last = entries(&t).pop().unwrap();
    assert_eq!(last.0, "usr/share/sbom/system.spdx.json", "--sbom-output, leading / dropped");
    let doc: Value = serde_json::from_slice(&last.4).unwrap();
    let created = doc["creationInfo"]["created"].as_str().unwrap();
    assert!(
        created.len() == 20 && created.ends_with('Z') && created.as_bytes()[4] == b'-',
        "{created}"
    );
    assert!(created > "2020", "--sbom-current-time uses the clock: {created}");
}

#[test]
fn images_without_attestations_still_get_an_empty_sbom() {
    let tmp = tempfile::tempdir().unwrap();
    let at = tmp.path().join("store");
    ImageBuilder::new()
        .layer(&[file("bin/plain", b"plain")])
        .build()
        .write_layout(&at, "docker.io/baleen/sbom-plain:1");
    let store = Store::open(&at).unwrap();
    let src = baleen_spec::Source {
        name: "p.yml",
        text: "onboot:\n  - name: p\n    image: baleen/sbom-plain:1\n",
        template_dir: None,
    };
    let cfg = baleen_spec::load_all(&[src], None).unwrap();
    let out = tmp.path().join("p.tar");
    build(&Request {
        sbom: on(),
        ..Request::new(
            &cfg,
            &store,
            vec![Format::Tar],
            Output::File(out.clone()),
            Platform::new("linux", "amd64", None),
        )
    })
    .unwrap();
    let last = entries(&std::fs::read(out).unwrap()).pop().unwrap();
    assert_eq!(last.0, "sbom.spdx.json");
    let doc: Value = serde_json::from_slice(&last.4).unwrap();
    assert!(doc.get("packages").is_none() && doc.get("files").is_none(), "{doc}");
    assert_eq!(doc["creationInfo"]["creators"], json!(["Organization: LinuxKit", "Tool: baleen"]));
}

#[test]
fn attestations_are_pulled_with_the_image_and_cached() {
    let Some(mut reg) = baleen_testkit::registry::Registry::plain() else { return };
    let name = format!("{}/test/sbom-app:1", reg.host);
    let src = tempfile::tempdir().unwrap();
    let (statement, provenance) = attested(
        src.path(),
        &name,
        ImageBuilder::new().layer(&[file_mode("bin/app", b"app", 0o755)]),
        spdx("app", "3.0", "/bin/app"),
    );
    let r = baleen_oci::Reference::parse(&name).unwrap();
    let push = baleen_oci::PushOptions::default();
    baleen_oci::push_blocking(&Store::open(src.path()).unwrap(), &r, &r, &push).unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let yaml = format!("onboot:\n  - name: app\n    image: {name}\n");
    let src = baleen_spec::Source { name: "p.yml", text: &yaml, template_dir: None };
    let cfg = baleen_spec::load_all(&[src], None).unwrap();
    let run = |out: &Path| {
        build(&Request {
            sbom: on(),
            ..Request::new(
                &cfg,
                &store,
                vec![Format::Tar],
                Output::File(out.to_path_buf()),
                Platform::new("linux", "amd64", None),
            )
        })
        .unwrap();
        entries(&std::fs::read(out).unwrap()).pop().unwrap().4
    };
    let first = run(&tmp.path().join("a.tar"));
    let doc: Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(doc["packages"][0]["name"], "app", "{doc}");
    assert_eq!(doc["files"][0]["fileName"], "containers/onboot/000-app/lower/bin/app");
    let has = |d: &str| store.has_blob(&baleen_oci::Digest::parse(d).unwrap());
    assert!(has(&statement), "the SPDX statement is cached in the store");
    assert!(!has(&provenance), "other attestations are not fetched");

    // From the store alone: the registry is gone, the SBOM is the same.
    reg.kill();
    assert!(run(&tmp.path().join("b.tar")) == first);
}

#[test]
fn docker_format_writes_the_dockerfile_then_the_sbom() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    let cfg = config();
    let out = tmp.path().join("d.docker");
    build(&Request {
        sbom: on(),
        ..Request::new(
            &cfg,
            &store,
            vec![Format::Docker],
            Output::File(out.clone()),
            Platform::new("linux", "amd64", None),
        )
    })
    .unwrap();
    let all = entries(&std::fs::read(out).unwrap());
    let last: Vec<&str> = all[all.len() - 2..].iter().map(|e| e.0.as_str()).collect();
    assert_eq!(last, ["Dockerfile", "sbom.spdx.json"], "LinuxKit's order");
}

#[test]
fn a_statement_damaged_in_the_store_fails_the_build_instead_of_vanishing_from_the_sbom() {
    let tmp = tempfile::tempdir().unwrap();
    let at = tmp.path().join("store");
    let store = store(&at);
    let blobs = at.join("blobs/sha256");
    let statement = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            text.contains("in-toto.io/Statement") && text.contains("\"2.1\"")
        })
        .expect("the app's SPDX statement");
    let text = std::fs::read_to_string(&statement).unwrap().replace("\"2.1\"", "\"6.6\"");
    std::fs::write(&statement, text).unwrap();
    let cfg = config();
    let out = tmp.path().join("a.tar");
    let err = build(&Request {
        sbom: on(),
        ..Request::new(
            &cfg,
            &store,
            vec![Format::Tar],
            Output::File(out.clone()),
            Platform::new("linux", "amd64", None),
        )
    })
    .expect_err("a damaged statement must fail the build")
    .chain();
    let hex = statement.file_name().unwrap().to_string_lossy().into_owned();
    assert!(err.contains(&hex) && err.contains("damaged"), "{err}");
    assert!(err.contains("baleen/sbom-app:1"), "names the image: {err}");
    assert!(!out.exists());
}
