//! The SPDX 2.3 document `pkg build` attaches to each platform image it builds: what the image
//! holds and where each piece came from.
//!
//! Key types: [`DebPackage`] (a locked `.deb` with what its control and copyright files say),
//! [`RustBinary`] (a workspace binary and the crates of `Cargo.lock` it is built from),
//! [`document`] (the JSON bytes). [`crate::image`] wraps the document in an in-toto statement
//! and an attestation manifest, as BuildKit does, which is where `baleen build`'s merged SBOM
//! and LinuxKit's tooling look for it.
//!
//! Deterministic: no clock (`created` is the layers' epoch), no random namespace (a UUID derived
//! from the document's content), SPDX IDs derived from content hashes, packages in a fixed order.
//! The download location of a `.deb` is the archive build.yml names, else Debian's own
//! (`deb.debian.org`), never the `--mirror` or host apt source a build happened to use: those do
//! not enter the tag, so they must not enter the image either.
//!
//! Non-goals: file lists (`filesAnalyzed: false`), licences of Rust crates (Cargo.lock has none),
//! licences from copyright files that are not machine-readable (DEP-5): those are `NOASSERTION`.

use crate::deb::control;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// SPDX `created`: the mtime of every layer entry ([`crate::layer::EPOCH`]).
pub const CREATED: &str = "1970-01-01T00:00:00Z";

/// One Debian package of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebPackage {
    pub name: String,
    pub version: String,
    /// The package's own architecture (`amd64`, or `all`).
    pub arch: String,
    /// The source package, `Source:` of its control file (its own name when absent), with the
    /// source version when it differs from the binary's (`glibc 2.36-9`).
    pub source: String,
    /// The suite it was locked from (`bookworm`, `bookworm-security`).
    pub suite: String,
    /// Where the `.deb` is: archive root + pool path.
    pub download: String,
    pub sha256: String,
    /// The `License:` names of a DEP-5 copyright file; `None` when it is not machine-readable.
    pub licenses: Option<Vec<String>>,
}

/// One workspace binary of the image and the crates it is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RustBinary {
    pub package: String,
    pub version: String,
    /// Its path in the image (`/init`).
    pub path: String,
    /// Its dependencies from Cargo.lock (see [`crate::rust_inputs::locked_crates`]).
    pub crates: Vec<crate::rust_inputs::LockedCrate>,
}

/// The metadata of a `.deb` that its data archive alone does not give.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DebMeta {
    /// `Package`, `Version`, `Architecture` and `Source` of `control`.
    pub package: String,
    pub version: String,
    pub architecture: String,
    pub source: Option<String>,
    /// `usr/share/doc/<package>/copyright`, when a regular file in the package.
    pub copyright: Option<Vec<u8>>,
}

impl DebMeta {
    /// The source package as SPDX's `sourceInfo` names it: `busybox`, or `glibc 2.36-9` when
    /// the source version differs from the binary's.
    pub fn source_package(&self) -> String {
        match self.source.as_deref().map(str::trim) {
            None | Some("") => self.package.clone(),
            Some(s) => match s.split_once('(') {
                Some((name, ver)) => {
                    format!("{} {}", name.trim(), ver.trim_end_matches(')').trim())
                }
                None => s.to_owned(),
            },
        }
    }
}

/// The `License:` names of a DEP-5 (machine-readable) copyright file, in file order without
/// repeats; `None` when the file is not DEP-5 (no `Format:` naming copyright-format in its
/// first paragraph).
pub fn dep5_licenses(copyright: &[u8]) -> Option<Vec<String>> {
    let text = String::from_utf8_lossy(copyright);
    let paragraphs = control::parse(&text);
    let header = paragraphs.first()?;
    let format = header.get("Format")?;
    if !format.contains("copyright-format") && !format.contains("dep5") {
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    for p in paragraphs.iter().filter(|p| p.get("Files").is_some()) {
        let Some(l) = p.get("License") else { continue };
        let first = l.lines().next().unwrap_or_default().trim();
        if !first.is_empty() && !out.iter().any(|o| o == first) {
            out.push(first.to_owned());
        }
    }
    Some(out)
}

/// Debian's short licence names and their SPDX identifiers.
const SPDX_NAMES: &[(&str, &str)] = &[
    ("Apache-2.0", "Apache-2.0"),
    ("Artistic", "Artistic-1.0-Perl"),
    ("Artistic-2.0", "Artistic-2.0"),
    ("BSD-2-clause", "BSD-2-Clause"),
    ("BSD-3-clause", "BSD-3-Clause"),
    ("BSD-4-clause", "BSD-4-Clause"),
    ("CC0-1.0", "CC0-1.0"),
    ("Expat", "MIT"),
    ("GPL-1", "GPL-1.0-only"),
    ("GPL-1+", "GPL-1.0-or-later"),
    ("GPL-2", "GPL-2.0-only"),
    ("GPL-2+", "GPL-2.0-or-later"),
    ("GPL-3", "GPL-3.0-only"),
    ("GPL-3+", "GPL-3.0-or-later"),
    ("ISC", "ISC"),
    ("LGPL-2", "LGPL-2.0-only"),
    ("LGPL-2+", "LGPL-2.0-or-later"),
    ("LGPL-2.1", "LGPL-2.1-only"),
    ("LGPL-2.1+", "LGPL-2.1-or-later"),
    ("LGPL-3", "LGPL-3.0-only"),
    ("LGPL-3+", "LGPL-3.0-or-later"),
    ("MIT", "MIT"),
    ("MPL-2.0", "MPL-2.0"),
    ("Zlib", "Zlib"),
];

/// A DEP-5 licence expression (`GPL-2+ or Artistic`) in SPDX (`GPL-2.0-or-later OR
/// Artistic-1.0-Perl`); `None` when a name has no SPDX identifier in [`SPDX_NAMES`] or an
/// exception is attached (`with OpenSSL exception`).
fn spdx_expression(dep5: &str) -> Option<String> {
    let mut out = Vec::new();
    let words: Vec<&str> = dep5.split(|c: char| c.is_whitespace() || c == ',').collect();
    let words: Vec<&str> = words.into_iter().filter(|w| !w.is_empty()).collect();
    for (i, w) in words.iter().enumerate() {
        let is_op = i % 2 == 1;
        match (is_op, w.to_ascii_lowercase().as_str()) {
            (true, "or") => out.push("OR".to_owned()),
            (true, "and") => out.push("AND".to_owned()),
            (true, _) => return None,
            (false, _) => {
                let (_, spdx) = SPDX_NAMES.iter().find(|(d, _)| d.eq_ignore_ascii_case(w))?;
                out.push((*spdx).to_owned());
            }
        }
    }
    (!out.is_empty() && out.len() % 2 == 1).then(|| out.join(" "))
}

/// The SPDX `licenseDeclared` of DEP-5 licence names: each translated, joined by `AND`
/// (every file's licence applies to the package); `NOASSERTION` unless all translate.
pub fn declared_license(licenses: Option<&[String]>) -> String {
    let Some(list) = licenses.filter(|l| !l.is_empty()) else {
        return "NOASSERTION".to_owned();
    };
    let parts: Option<Vec<String>> = list.iter().map(|l| spdx_expression(l)).collect();
    match parts {
        Some(p) if p.len() == 1 => p[0].clone(),
        Some(p) => p
            .iter()
            .map(|e| if e.contains(' ') { format!("({e})") } else { e.clone() })
            .collect::<Vec<_>>()
            .join(" AND "),
        None => "NOASSERTION".to_owned(),
    }
}

/// An SPDX ID: `SPDXRef-<kind>-<name>-<12 hex digits of key>` (letters, digits, `.`, `-`).
fn spdx_id(kind: &str, name: &str, key: &str) -> String {
    let clean: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect();
    let h = hex::encode(Sha256::digest(key.as_bytes()));
    format!("SPDXRef-{kind}-{clean}-{}", &h[..12])
}

/// A purl's version: `:` and `+` percent-encoded (`1%3A1.35.0-4%2Bb1`).
fn purl_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            c if c.is_ascii_alphanumeric() || "-._~".contains(c) => c.to_string(),
            c => format!("%{:02X}", u32::from(c)),
        })
        .collect()
}

/// The purl of a Debian package: `pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=SUITE`, with
/// `upstream=SOURCE` when the source package has another name.
pub fn deb_purl(d: &DebPackage) -> String {
    let mut q = format!("arch={}", purl_escape(&d.arch));
    let source = d.source.split(' ').next().unwrap_or_default();
    if source != d.name && !source.is_empty() {
        q.push_str(&format!("&upstream={}", purl_escape(source)));
    }
    q.push_str(&format!("&distro={}", purl_escape(&d.suite)));
    format!("pkg:deb/debian/{}@{}?{q}", d.name, purl_escape(&d.version))
}

fn purl_ref(locator: String) -> Value {
    json!([{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": locator}])
}

/// The SPDX 2.3 document of one platform image `name` (`baleen/init:<tag>`) for OCI
/// architecture `arch`.
pub fn document(name: &str, arch: &str, debs: &[DebPackage], rust: &[RustBinary]) -> Value {
    let image_id =
        spdx_id("image", name.split(':').next().unwrap_or(name), &format!("{name} {arch}"));
    let (repo, tag) = name.rsplit_once(':').unwrap_or((name, ""));
    let mut packages = vec![json!({
        "name": repo,
        "SPDXID": image_id,
        "versionInfo": tag,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "comment": format!("The {arch} image built by `baleen pkg build`."),
        "primaryPackagePurpose": "CONTAINER",
    })];
    let mut relationships = Vec::new();
    let mut sorted: Vec<&DebPackage> = debs.iter().collect();
    sorted.sort_by(|a, b| (&a.name, &a.version, &a.sha256).cmp(&(&b.name, &b.version, &b.sha256)));
    for d in sorted {
        let id = spdx_id("deb", &d.name, &d.sha256);
        let mut p = Map::new();
        p.insert("name".into(), d.name.clone().into());
        p.insert("SPDXID".into(), id.clone().into());
        p.insert("versionInfo".into(), d.version.clone().into());
        p.insert("supplier".into(), "NOASSERTION".into());
        p.insert("downloadLocation".into(), d.download.clone().into());
        p.insert("filesAnalyzed".into(), false.into());
        p.insert("checksums".into(), json!([{"algorithm": "SHA256", "checksumValue": d.sha256}]));
        p.insert(
            "sourceInfo".into(),
            format!("built from Debian source package {}", d.source).into(),
        );
        p.insert("licenseConcluded".into(), "NOASSERTION".into());
        p.insert("licenseDeclared".into(), declared_license(d.licenses.as_deref()).into());
        let comment = match &d.licenses {
            Some(l) => format!("DEP-5 copyright file: License: {}", l.join("; ")),
            None => "copyright file not machine-readable (DEP-5): licence not asserted".to_owned(),
        };
        p.insert("licenseComments".into(), comment.into());
        p.insert("copyrightText".into(), "NOASSERTION".into());
        p.insert("externalRefs".into(), purl_ref(deb_purl(d)));
        packages.push(Value::Object(p));
        relationships.push(rel(&image_id, "CONTAINS", &id));
    }
    for b in rust {
        let id = spdx_id("rust", &b.package, &format!("{} {} {}", b.package, b.version, b.path));
        packages.push(json!({
            "name": b.package,
            "SPDXID": id,
            "versionInfo": b.version,
            "packageFileName": b.path,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "externalRefs": purl_ref(format!("pkg:cargo/{}@{}", b.package, purl_escape(&b.version))),
            "comment": "A workspace binary built by `baleen pkg build` (static: musl).",
            "primaryPackagePurpose": "APPLICATION",
        }));
        relationships.push(rel(&image_id, "CONTAINS", &id));
        for c in &b.crates {
            let cid = spdx_id("crate", &c.name, &format!("{} {} {}", c.name, c.version, c.source));
            let mut p = Map::new();
            p.insert("name".into(), c.name.clone().into());
            p.insert("SPDXID".into(), cid.clone().into());
            p.insert("versionInfo".into(), c.version.clone().into());
            let download =
                if c.source.starts_with("registry+https://github.com/rust-lang/crates.io-index") {
                    format!("https://crates.io/api/v1/crates/{}/{}/download", c.name, c.version)
                } else {
                    "NOASSERTION".to_owned()
                };
            p.insert("downloadLocation".into(), download.into());
            p.insert("filesAnalyzed".into(), false.into());
            if !c.checksum.is_empty() {
                p.insert(
                    "checksums".into(),
                    json!([{"algorithm": "SHA256", "checksumValue": c.checksum}]),
                );
            }
            p.insert("licenseConcluded".into(), "NOASSERTION".into());
            p.insert("licenseDeclared".into(), "NOASSERTION".into());
            p.insert("copyrightText".into(), "NOASSERTION".into());
            p.insert(
                "externalRefs".into(),
                purl_ref(format!("pkg:cargo/{}@{}", c.name, purl_escape(&c.version))),
            );
            if !c.source.is_empty() {
                p.insert("sourceInfo".into(), format!("Cargo.lock source {}", c.source).into());
            }
            packages.push(Value::Object(p));
            relationships.push(rel(&id, "DEPENDS_ON", &cid));
        }
    }
    let body = json!({"packages": packages, "relationships": relationships});
    let namespace =
        format!("urn:uuid:{}", content_uuid(&serde_json::to_vec(&body).unwrap_or_default()));
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{name} ({arch})"),
        "documentNamespace": namespace,
        "creationInfo": {"creators": ["Tool: baleen"], "created": CREATED},
        "documentDescribes": [image_id],
        "packages": body["packages"],
        "relationships": body["relationships"],
    })
}

fn rel(from: &str, kind: &str, to: &str) -> Value {
    json!({"spdxElementId": from, "relationshipType": kind, "relatedSpdxElement": to})
}

/// A UUID (RFC 9562 version 8: custom) made of the first 16 bytes of SHA-256 of `bytes`.
fn content_uuid(bytes: &[u8]) -> String {
    let h = Sha256::digest(bytes);
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP5: &str = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
Upstream-Name: x\n\nFiles: *\nCopyright: 2020 A\nLicense: GPL-2+\n\nFiles: lib/*\nCopyright: B\n\
License: BSD-3-clause or Expat\n\nFiles: debian/*\nLicense: GPL-2+\n\nLicense: GPL-2+\n This program is free software\n";

    #[test]
    fn dep5_licences_are_read_and_translated() {
        let l = dep5_licenses(DEP5.as_bytes()).unwrap();
        assert_eq!(l, ["GPL-2+", "BSD-3-clause or Expat"]);
        assert_eq!(declared_license(Some(&l)), "GPL-2.0-or-later AND (BSD-3-Clause OR MIT)");
        // Free text, as busybox's copyright file: not machine-readable.
        assert_eq!(dep5_licenses(b"This package was debianized by...\n\nLicense: GPL\n"), None);
        assert_eq!(declared_license(None), "NOASSERTION");
        // An exception or an unknown name is not guessed at.
        let odd = ["GPL-2+ with OpenSSL exception".to_owned()];
        assert_eq!(declared_license(Some(&odd)), "NOASSERTION");
        assert_eq!(declared_license(Some(&["public-domain".to_owned()])), "NOASSERTION");
    }

    #[test]
    fn source_package_and_purl() {
        let m = DebMeta {
            package: "libc6".into(),
            source: Some("glibc (2.36-9)".into()),
            ..Default::default()
        };
        assert_eq!(m.source_package(), "glibc 2.36-9");
        let m = DebMeta { package: "busybox-static".into(), source: None, ..Default::default() };
        assert_eq!(m.source_package(), "busybox-static");
        let d = DebPackage {
            name: "busybox-static".into(),
            version: "1:1.35.0-4+b3".into(),
            arch: "amd64".into(),
            source: "busybox".into(),
            suite: "bookworm".into(),
            download: "http://deb.debian.org/debian/pool/x.deb".into(),
            sha256: "ab".repeat(32),
            licenses: None,
        };
        assert_eq!(
            deb_purl(&d),
            "pkg:deb/debian/busybox-static@1%3A1.35.0-4%2Bb3?arch=amd64&upstream=busybox&distro=bookworm"
        );
    }

    #[test]
    fn ids_are_spdx_safe_and_the_document_is_deterministic() {
        let id = spdx_id("deb", "libstdc++6", "x");
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'), "{id}");
        let a = document("baleen/x:1", "amd64", &[], &[]);
        assert_eq!(a, document("baleen/x:1", "amd64", &[], &[]));
        assert_ne!(a, document("baleen/x:2", "amd64", &[], &[]));
        let v = a;
        assert_eq!(v["spdxVersion"], "SPDX-2.3");
        assert_eq!(v["creationInfo"]["created"], CREATED);
    }
}
