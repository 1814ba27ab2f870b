//! The merged SBOM (spec §3 step 9): every SPDX document attested for the images of a build,
//! merged into one SPDX 2.3 JSON file written into the tree (`sbom.spdx.json`, or
//! `--sbom-output`), as LinuxKit does unless `--no-sbom`.
//!
//! Key types: [`SbomOptions`] (the three flags), [`Input`] (one attested document and where its
//! image is extracted in the tree), [`find`] (an image's SPDX attestations in the store: the
//! image index's in-toto attestation manifest for the platform manifest, buildkit's layout),
//! [`merge`] (the one document).
//!
//! Deterministic where LinuxKit is not: `created` is LinuxKit's fixed epoch unless
//! `--sbom-current-time`; the `documentNamespace` is a UUID (version 5) derived from the inputs'
//! digests and prefixes instead of a random one; packages, files and relationships are sorted
//! and exact duplicates dropped. Like LinuxKit, paths are prefixed with the image's place in the
//! tree, and the file is written even when no image has an SBOM.
//!
//! Non-goals: generating SBOMs (scanning images), SPDX tag-value or SPDX 3, CycloneDX, OCI 1.1
//! referrers (`subject`) — LinuxKit reads buildkit's attestation manifests only.

use baleen_oci::{Digest, Image, Store};
use baleen_tree::{Civil, DEFAULT_MTIME};
use serde_json::{Map, Value};

/// `--sbom-output`'s default: the file's path in the tree.
pub const DEFAULT_PATH: &str = "sbom.spdx.json";
/// BuildKit's attestation layout (annotations, predicate and media types): `baleen-oci`'s names.
pub use baleen_oci::attestation::{
    ATTESTATION_MANIFEST, IN_TOTO_MEDIA_TYPE, PREDICATE_TYPE, REFERENCE_DIGEST, REFERENCE_TYPE,
    SPDX_PREDICATE,
};
/// An attestation statement is JSON text; this bounds what a hostile image can make us parse.
const MAX_STATEMENT_BYTES: u64 = 256 << 20;
const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// What to do about the SBOM. `Default` writes none (for library callers); the CLI turns it on
/// unless `--no-sbom`, as LinuxKit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SbomOptions {
    pub enabled: bool,
    /// Path of the file in the tree (`--sbom-output`); [`DEFAULT_PATH`] when `None`.
    pub path: Option<String>,
    /// `--sbom-current-time`: the build time instead of the fixed epoch (not reproducible).
    pub current_time: bool,
}

impl SbomOptions {
    /// The file's path in the tree, without a leading `/`.
    pub fn tree_path(&self) -> String {
        self.path.as_deref().unwrap_or(DEFAULT_PATH).trim_start_matches('/').to_string()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error("{location}: image {reference}: reading the SBOM attestation {digest}: {message}")]
    Attestation { location: String, reference: String, digest: String, message: String },
    #[error("--sbom-output {0:?}: not a file path inside the image")]
    BadPath(String),
}

/// One attested SPDX document, with the tree prefix of its image (`""` for kernel and init,
/// `containers/onboot/000-x/lower/` for a container).
#[derive(Debug, Clone)]
pub struct Input {
    pub prefix: String,
    /// The attestation layer's digest: what names this document in the namespace UUID.
    pub digest: Digest,
    pub document: Value,
}

/// The SPDX documents attested for `image` (its platform manifest) in the store's copy of its
/// index, each with the digest of the attestation layer that held it. None when the image is
/// not from an index, has no attestation manifest, or when the attestation was never pulled into
/// the store.
pub fn find(
    store: &Store,
    image: &Image,
    location: &str,
) -> Result<Vec<(Digest, Value)>, SbomError> {
    let err = |digest: &Digest, message: String| SbomError::Attestation {
        location: location.to_string(),
        reference: image.reference.to_string(),
        digest: digest.to_string(),
        message,
    };
    let Some(root) = store.lookup(&image.reference).ok().flatten() else { return Ok(vec![]) };
    let Ok(root_digest) = Digest::parse(root.digest().as_ref()) else { return Ok(vec![]) };
    let damaged = |d: &Digest| {
        let d = d.clone();
        move |e: baleen_oci::StoreError| err(&d, e.to_string())
    };
    let Some(index) =
        read_json(store, &root_digest, MAX_MANIFEST_BYTES).map_err(damaged(&root_digest))?
    else {
        return Ok(vec![]);
    };
    let manifest = image.manifest_digest.to_string();
    let attestations: Vec<&Value> = index["manifests"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter(|d| {
                    d["annotations"][REFERENCE_TYPE] == ATTESTATION_MANIFEST
                        && d["annotations"][REFERENCE_DIGEST] == manifest.as_str()
                })
                .collect()
        })
        .unwrap_or_default();
    if attestations.len() > 1 {
        return Err(err(
            &root_digest,
            format!("the index has several attestation manifests for {manifest}"),
        ));
    }
    let Some(att) = attestations.first() else { return Ok(vec![]) };
    let Some(att_digest) = att["digest"].as_str().and_then(|d| Digest::parse(d).ok()) else {
        return Err(err(&root_digest, "an attestation manifest without a valid digest".into()));
    };
    let Some(att_manifest) =
        read_json(store, &att_digest, MAX_MANIFEST_BYTES).map_err(damaged(&att_digest))?
    else {
        tracing::debug!(reference = %image.reference, "attestation manifest not in the store");
        return Ok(vec![]);
    };
    let mut out = Vec::new();
    for layer in att_manifest["layers"].as_array().into_iter().flatten() {
        if layer["annotations"][PREDICATE_TYPE] != SPDX_PREDICATE
            || layer["mediaType"] != IN_TOTO_MEDIA_TYPE
        {
            continue;
        }
        let Some(d) = layer["digest"].as_str().and_then(|d| Digest::parse(d).ok()) else {
            return Err(err(&att_digest, "an attestation layer without a valid digest".into()));
        };
        let Some(statement) = read_json(store, &d, MAX_STATEMENT_BYTES).map_err(damaged(&d))?
        else {
            tracing::debug!(reference = %image.reference, digest = %d, "SBOM layer not in the store");
            continue;
        };
        if statement["predicateType"] != SPDX_PREDICATE {
            return Err(err(
                &d,
                format!("unexpected predicate type {}", statement["predicateType"]),
            ));
        }
        match statement.get("predicate") {
            Some(p @ Value::Object(_)) => out.push((d, p.clone())),
            _ => return Err(err(&d, "the in-toto statement has no SPDX document".into())),
        }
    }
    Ok(out)
}

/// [`find`]'s documents as merge inputs under `prefix`.
pub fn find_inputs(
    store: &Store,
    image: &Image,
    location: &str,
    prefix: &str,
) -> Result<Vec<Input>, SbomError> {
    Ok(find(store, image, location)?
        .into_iter()
        .map(|(digest, document)| Input { prefix: prefix.to_string(), digest, document })
        .collect())
}

/// A stored JSON blob; `None` when absent or unreadable (an image without a usable SBOM), but
/// an error when it is damaged: a statement that changed on disk must not ship, nor vanish.
fn read_json(
    store: &Store,
    d: &Digest,
    limit: u64,
) -> Result<Option<Value>, baleen_oci::StoreError> {
    if !store.has_blob(d) {
        return Ok(None);
    }
    match store.read_blob(d, limit) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(e @ baleen_oci::StoreError::Damaged { .. }) => Err(e),
        Err(_) => Ok(None),
    }
}

/// The merged SPDX 2.3 document, as JSON text (Go's escaping and 4-space indent).
pub fn merge(inputs: &[Input], created: &str) -> Vec<u8> {
    let mut packages = Vec::new();
    let mut files = Vec::new();
    let mut licenses = Vec::new();
    let mut relationships = Vec::new();
    let mut annotations = Vec::new();
    let mut external = Vec::new();
    for input in inputs {
        let doc = &input.document;
        for f in doc["files"].as_array().into_iter().flatten() {
            let mut f = f.clone();
            let name = f["fileName"].as_str().unwrap_or_default();
            f["fileName"] = Value::String(go_join(&input.prefix, name));
            files.push(f);
        }
        for p in doc["packages"].as_array().into_iter().flatten() {
            let mut p = p.clone();
            let joined = go_join(&input.prefix, p["packageFileName"].as_str().unwrap_or_default());
            if let Some(obj) = p.as_object_mut() {
                if joined.is_empty() {
                    obj.remove("packageFileName");
                } else {
                    obj.insert("packageFileName".into(), Value::String(joined));
                }
            }
            packages.push(p);
        }
        // SPDX's JSON form may list described elements at the top; SPDX readers (LinuxKit's
        // tools-golang) turn them into DESCRIBES relationships, and so do we.
        for described in doc["documentDescribes"].as_array().into_iter().flatten() {
            let mut r = Map::new();
            r.insert("spdxElementId".into(), "SPDXRef-DOCUMENT".into());
            r.insert("relatedSpdxElement".into(), described.clone());
            r.insert("relationshipType".into(), "DESCRIBES".into());
            relationships.push(Value::Object(r));
        }
        let all = |key: &str| doc[key].as_array().cloned().unwrap_or_default();
        relationships.extend(all("relationships"));
        licenses.extend(all("hasExtractedLicensingInfos"));
        annotations.extend(all("annotations"));
        external.extend(all("externalDocumentRefs"));
    }
    sort_dedup(&mut packages, &["SPDXID", "name", "versionInfo"]);
    sort_dedup(&mut files, &["fileName", "SPDXID"]);
    sort_dedup(&mut relationships, &["spdxElementId", "relationshipType", "relatedSpdxElement"]);
    sort_dedup(&mut licenses, &["licenseId"]);
    sort_dedup(&mut annotations, &[]);
    sort_dedup(&mut external, &["externalDocumentId"]);

    // Field order of an SPDX 2.3 document as LinuxKit's writer (spdx/tools-golang) emits it.
    let mut doc = Map::new();
    doc.insert("spdxVersion".into(), "SPDX-2.3".into());
    doc.insert("dataLicense".into(), "CC0-1.0".into());
    doc.insert("SPDXID".into(), "SPDXRef-DOCUMENT".into());
    doc.insert("name".into(), "sbom".into());
    doc.insert("documentNamespace".into(), format!("urn:uuid:{}", namespace_uuid(inputs)).into());
    if !external.is_empty() {
        doc.insert("externalDocumentRefs".into(), external.into());
    }
    let mut creation = Map::new();
    creation.insert("licenseListVersion".into(), "3.20".into());
    creation.insert(
        "creators".into(),
        Value::Array(vec!["Organization: LinuxKit".into(), "Tool: baleen".into()]),
    );
    creation.insert("created".into(), created.into());
    doc.insert("creationInfo".into(), Value::Object(creation));
    for (key, list) in [
        ("packages", packages),
        ("files", files),
        ("hasExtractedLicensingInfos", licenses),
        ("relationships", relationships),
        ("annotations", annotations),
    ] {
        if !list.is_empty() {
            doc.insert(key.into(), list.into());
        }
    }
    baleen_spec::oci::to_go_json(&Value::Object(doc)).into_bytes()
}

/// `created`: LinuxKit's fixed epoch, or now with `--sbom-current-time`.
pub fn created(current_time: bool) -> String {
    if !current_time {
        return format_utc(DEFAULT_MTIME);
    }
    // The one clock read of a build, asked for by the user.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    format_utc(secs)
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time.
fn format_utc(secs: i64) -> String {
    let c = Civil::of(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Sorts by the given fields, then by the whole text; drops exact duplicates.
fn sort_dedup(list: &mut Vec<Value>, keys: &[&str]) {
    let key = |v: &Value| -> (Vec<String>, String) {
        let fields = keys.iter().map(|k| v[*k].as_str().unwrap_or_default().to_string()).collect();
        (fields, v.to_string())
    };
    let mut keyed: Vec<_> = list.drain(..).map(|v| (key(&v), v)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.dedup_by(|a, b| a.0 .1 == b.0 .1);
    list.extend(keyed.into_iter().map(|(_, v)| v));
}

/// RFC 4122 version 5 UUID (SHA-1, URL namespace) of the inputs' prefixes and digests, in a
/// fixed order: the same attested content at the same places gives the same namespace. Written
/// here (a dozen lines over `sha1`) rather than pulling in the `uuid` crate for one function.
fn namespace_uuid(inputs: &[Input]) -> String {
    use sha1::Digest as _;
    let mut names: Vec<String> =
        inputs.iter().map(|i| format!("{}\t{}\n", i.prefix, i.digest)).collect();
    names.sort();
    // The URL namespace UUID, 6ba7b811-9dad-11d1-80b4-00c04fd430c8.
    const URL_NS: [u8; 16] = [
        0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30,
        0xc8,
    ];
    let mut h = sha1::Sha1::new();
    h.update(URL_NS);
    h.update(b"baleen-sbom:");
    for n in &names {
        h.update(n.as_bytes());
    }
    let hash = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&hash[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// Go's `filepath.Join` on Unix: the non-empty parts joined by `/`, then cleaned (`//`, `.`,
/// `..` and a trailing `/` resolved); `""` when every part is empty.
pub fn go_join(prefix: &str, name: &str) -> String {
    let joined = match (prefix.is_empty(), name.is_empty()) {
        (true, true) => return String::new(),
        (true, false) => name.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) => format!("{prefix}/{name}"),
    };
    let rooted = joined.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_string(),
        (false, false) => body,
    }
}

/// Checks `--sbom-output`: a relative or absolute path naming a file, with no `..`.
pub fn check_path(path: &str) -> Result<(), SbomError> {
    let p = path.trim_start_matches('/');
    if p.is_empty() || p.ends_with('/') || p.split('/').any(|c| c == ".." || c == ".") {
        return Err(SbomError::BadPath(path.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_join_matches_filepath_join() {
        assert_eq!(go_join("", ""), "");
        assert_eq!(go_join("", "/usr/bin/x"), "/usr/bin/x");
        assert_eq!(
            go_join("containers/onboot/000-a/lower/", "/usr/bin/x"),
            "containers/onboot/000-a/lower/usr/bin/x"
        );
        assert_eq!(go_join("containers/a/lower/", ""), "containers/a/lower");
        assert_eq!(go_join("a/", "./b/../c"), "a/c");
        assert_eq!(go_join("", "../x"), "../x");
        assert_eq!(go_join("", "/../x"), "/x");
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(DEFAULT_MTIME), "2017-04-18T16:30:00Z");
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn namespace_is_a_v5_uuid_of_the_inputs() {
        let a = namespace_uuid(&[]);
        assert_eq!(a, namespace_uuid(&[]));
        assert_eq!(&a[14..15], "5", "{a}");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        let input =
            Input { prefix: "".into(), digest: Digest::sha256_of(b"x"), document: Value::Null };
        assert_ne!(a, namespace_uuid(&[input]));
    }

    #[test]
    fn bad_output_paths_are_refused() {
        for bad in ["", "/", "a/../b", "dir/"] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
        check_path("/sbom.spdx.json").unwrap();
        check_path("etc/sbom.json").unwrap();
    }
}
