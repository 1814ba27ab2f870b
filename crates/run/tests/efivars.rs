//! The enrolled variable store against virt-firmware, the reference writer: `virt-fw-vars`
//! reads our store and lists PK, KEK and db with our certificate, and writes the same variables
//! itself from the same certificate and owner GUID (all but the timestamps, which it takes from
//! the clock).

use baleen_run::efivars::{enroll, owner_guid, read_certificate};
use baleen_testkit::signing::{key_pair, virt_fw_vars, KeyKind};
use std::path::Path;

const EMPTY_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// `virt-fw-vars --input STORE --output-json`: name → (attr, data hex).
fn variables(store: &Path, json: &Path) -> Option<Vec<(String, u64, String)>> {
    let out = virt_fw_vars()?.arg("--input").arg(store).arg("--output-json").arg(json).output();
    let out = out.expect("running virt-fw-vars");
    assert!(out.status.success(), "virt-fw-vars: {}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    let mut vars: Vec<_> = doc["variables"]
        .as_array()
        .expect("a variables list")
        .iter()
        .map(|v| {
            let name = v["name"].as_str().unwrap().to_owned();
            (name, v["attr"].as_u64().unwrap(), v["data"].as_str().unwrap().to_owned())
        })
        .collect();
    vars.sort();
    Some(vars)
}

#[test]
fn virt_fw_vars_reads_our_store_and_writes_the_same_variables_from_the_same_certificate() {
    if !Path::new(EMPTY_VARS).is_file() {
        assert!(!baleen_testkit::tools_required(), "{EMPTY_VARS} missing: install Debian's ovmf");
        eprintln!("skipping: {EMPTY_VARS} missing (Debian's ovmf)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some((_, cert)) = key_pair(tmp.path(), "db", KeyKind::Rsa2048) else { return };
    let der = read_certificate(&cert).unwrap();
    let ours = tmp.path().join("ours.fd");
    std::fs::write(&ours, enroll(&std::fs::read(EMPTY_VARS).unwrap(), &der).unwrap()).unwrap();

    let Some(mut print) = virt_fw_vars() else { return };
    let out = print.arg("--input").arg(&ours).args(["--print", "--verbose"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    assert!(out.status.success(), "virt-fw-vars --print: {}", String::from_utf8_lossy(&out.stderr));
    for name in ["PK", "KEK", "db"] {
        let entry = text.split("\n\n").find(|e| e.starts_with(&format!("name={name} ")));
        let entry = entry.unwrap_or_else(|| panic!("{name} is not listed:\n{text}"));
        assert!(
            entry.contains("siglist type=guid:EfiCertX509 count=1")
                && entry.contains("subject CN=baleen test db"),
            "{name} does not hold our certificate:\n{entry}"
        );
    }
    assert!(text.contains("name=SecureBootEnable") && text.contains("bool: ON"), "{text}");

    let theirs = tmp.path().join("theirs.fd");
    let guid = owner_guid(&der).to_string();
    let out = virt_fw_vars()
        .unwrap()
        .arg("--input")
        .arg(EMPTY_VARS)
        .arg("--output")
        .arg(&theirs)
        .arg("--set-pk")
        .args([&guid, cert.to_str().unwrap()])
        .arg("--add-kek")
        .args([&guid, cert.to_str().unwrap()])
        .arg("--add-db")
        .args([&guid, cert.to_str().unwrap()])
        .arg("--secure-boot")
        .output()
        .unwrap();
    assert!(out.status.success(), "virt-fw-vars: {}", String::from_utf8_lossy(&out.stderr));
    let ours = variables(&ours, &tmp.path().join("ours.json")).unwrap();
    let theirs = variables(&theirs, &tmp.path().join("theirs.json")).unwrap();
    assert_eq!(ours, theirs, "the same variables, attributes and data as virt-fw-vars writes");
}
