//! `baleen audit`: what a system's components hold, where each came from, and which of their
//! Debian packages the archive now carries a newer version of.
//!
//! Key types: [`Component`] (an image or a package directory: its origin and its pinned `.deb`s,
//! from a `packages.lock` or from the SPDX document `pkg build` attached), [`ArchiveSpec`] (the
//! archive that serves them), [`audit`] (checks every component against the signed indexes of
//! the main suite, where point releases land, and of `<suite>-security`) and [`Report`].
//!
//! The indexes are the ones `pkg lock` reads, verified the same way (signed InRelease, hashed
//! Packages.xz). When the archive cannot be reached, the cached copies are used (their signature
//! checked again, their `Valid-Until` not: an audit offline says how old its index is instead);
//! `offline` never tries the network. Advisory identifiers (DSA, DLA, CVE) come from the
//! changelog of the newer `.deb`, fetched (and verified) into the cache.
//!
//! Non-goals: `-updates` and backports suites, the security tracker's data (it is not in the
//! archive), packages that are not Debian's (Rust crates are listed, not checked).

use crate::deb::archive::{Archive, DebRef, Freshness};
use crate::deb::resolve::Index;
use crate::deb::version::compare;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The SPDX document in `bytes`, when they are one (SPDX 2.x JSON: `spdxVersion` is set).
pub fn spdx_document(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Value>(bytes).ok().filter(|v| v["spdxVersion"].is_string())
}

/// The largest SBOM read from an output.
pub const MAX_SBOM: u64 = 256 << 20;

/// The archive a component's `.deb`s come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSpec {
    pub mirror: String,
    /// The main suite (`bookworm`).
    pub suite: String,
    pub security_mirror: String,
    /// A binary keyring trusted instead of Debian's keys, and whose it is (for errors).
    pub keyring: Option<(Vec<u8>, String)>,
}

/// One pinned Debian package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    pub arch: String,
    pub name: String,
    pub version: String,
    /// The suite it was locked from (`bookworm`, `bookworm-security`).
    pub suite: String,
}

/// An image or a package directory.
#[derive(Debug, Clone)]
pub struct Component {
    /// What the user named: `pkg/init`, `docker.io/baleen/init:…`, an image of an SBOM.
    pub name: String,
    /// Where it came from: `pkg/init/packages.lock`, `docker.io/baleen/init:…@sha256:…`.
    pub origin: String,
    pub archive: Option<ArchiveSpec>,
    pub debs: Vec<Pinned>,
    /// Other pieces the SBOM lists (workspace binaries, crates): `name version`, not checked.
    pub others: Vec<String>,
    /// Why the component's contents are unknown (an image without an SBOM), if they are.
    pub unknown: Option<String>,
}

impl Component {
    /// A package directory's component: the `.deb`s of its `packages.lock`, from `archive`.
    pub fn of_lock(
        dir: &std::path::Path,
        lock: &crate::lock::Lock,
        archive: Option<ArchiveSpec>,
    ) -> Component {
        let debs = lock
            .packages
            .iter()
            .map(|l| Pinned {
                arch: l.arch.clone(),
                name: l.deb.name.clone(),
                version: l.deb.version.clone(),
                suite: l.deb.suite.clone().unwrap_or_else(|| lock.suite.clone()),
            })
            .collect();
        Component {
            name: dir.display().to_string(),
            origin: dir.join(crate::lock::LOCK_FILE).display().to_string(),
            archive,
            debs,
            others: Vec::new(),
            unknown: None,
        }
    }
}

/// A newer version of a pinned package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newer {
    pub version: String,
    pub suite: String,
    /// DSA/DLA/CVE identifiers of the changelog entries past the pinned version.
    pub advisories: Vec<String>,
    /// Why the advisories could not be read, when they could not.
    pub advisories_unknown: Option<String>,
}

/// One pinned package and what supersedes it.
#[derive(Debug, Clone)]
pub struct Finding {
    pub pinned: Pinned,
    pub newer: Option<Newer>,
    /// Why it could not be checked.
    pub unchecked: Option<String>,
}

/// One suite's index as the audit read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexUsed {
    pub url: String,
    pub arch: String,
    pub freshness: Freshness,
}

#[derive(Debug)]
pub struct ComponentReport {
    pub component: Component,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub components: Vec<ComponentReport>,
    pub indexes: Vec<IndexUsed>,
    /// Archives that could not be read at all, with the reason.
    pub problems: Vec<String>,
}

/// How the audit reaches archives.
#[derive(Debug, Clone)]
pub struct Options {
    /// The download cache of `pkg` (`~/.baleen/cache/debian`).
    pub cache: PathBuf,
    /// Never use the network: cached indexes only.
    pub offline: bool,
    pub progress: baleen_oci::Progress,
}

impl Report {
    /// How many pinned packages have a newer version.
    pub fn superseded(&self) -> usize {
        self.components.iter().flat_map(|c| &c.findings).filter(|f| f.newer.is_some()).count()
    }

    /// Whether anything could not be checked: an archive, a package, or a component's contents.
    pub fn incomplete(&self) -> bool {
        !self.problems.is_empty()
            || self.components.iter().any(|c| {
                c.component.unknown.is_some() || c.findings.iter().any(|f| f.unchecked.is_some())
            })
    }

    /// 1 when something is superseded, else 2 when something could not be checked, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.superseded() > 0 {
            1
        } else if self.incomplete() {
            2
        } else {
            0
        }
    }

    /// The report for a person: each component, its origin, each package and its state, then
    /// the indexes used and their age.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for c in &self.components {
            let comp = &c.component;
            s.push_str(&format!("{}\n  origin: {}\n", comp.name, comp.origin));
            if let Some(why) = &comp.unknown {
                s.push_str(&format!("  contents unknown: {why}\n"));
            }
            for f in &c.findings {
                let p = &f.pinned;
                s.push_str(&format!("  {} {} {} ({})", p.arch, p.name, p.version, p.suite));
                match (&f.newer, &f.unchecked) {
                    (Some(n), _) => {
                        s.push_str(&format!(": SUPERSEDED by {} in {}", n.version, n.suite));
                        if !n.advisories.is_empty() {
                            s.push_str(&format!(" [{}]", n.advisories.join(", ")));
                        } else if let Some(why) = &n.advisories_unknown {
                            s.push_str(&format!(" (advisories unknown: {why})"));
                        }
                    }
                    (None, Some(why)) => s.push_str(&format!(": not checked: {why}")),
                    (None, None) => s.push_str(": up to date"),
                }
                s.push('\n');
            }
            for o in &comp.others {
                s.push_str(&format!("  {o}\n"));
            }
        }
        for i in &self.indexes {
            s.push_str(&format!("index {} ({}): {}\n", i.url, i.arch, age_text(&i.freshness)));
        }
        for p in &self.problems {
            s.push_str(&format!("could not check: {p}\n"));
        }
        let n = self.superseded();
        s.push_str(&match (n, self.incomplete()) {
            (0, false) => "nothing superseded\n".to_owned(),
            (0, true) => {
                "nothing found superseded, but not everything could be checked\n".to_owned()
            }
            (n, _) => format!("{n} package(s) superseded\n"),
        });
        s
    }

    /// The report as JSON (`--json`): stable keys, for CI.
    pub fn json(&self) -> Value {
        let components: Vec<Value> = self
            .components
            .iter()
            .map(|c| {
                let packages: Vec<Value> = c
                    .findings
                    .iter()
                    .map(|f| {
                        let p = &f.pinned;
                        json!({
                            "arch": p.arch, "name": p.name, "version": p.version, "suite": p.suite,
                            "superseded_by": f.newer.as_ref().map(|n| json!({
                                "version": n.version, "suite": n.suite,
                                "advisories": n.advisories,
                                "advisories_unknown": n.advisories_unknown,
                            })),
                            "unchecked": f.unchecked,
                        })
                    })
                    .collect();
                json!({
                    "name": c.component.name,
                    "origin": c.component.origin,
                    "contents_unknown": c.component.unknown,
                    "debian_packages": packages,
                    "other": c.component.others,
                })
            })
            .collect();
        let indexes: Vec<Value> = self
            .indexes
            .iter()
            .map(|i| {
                json!({
                    "url": i.url, "arch": i.arch,
                    "age_seconds": i.freshness.age.as_secs(),
                    "from_cache_offline": i.freshness.offline,
                })
            })
            .collect();
        json!({
            "components": components,
            "indexes": indexes,
            "problems": self.problems,
            "superseded": self.superseded(),
            "complete": !self.incomplete(),
            "exit_code": self.exit_code(),
        })
    }
}

/// "fetched now", "cached 3 h ago (offline: the archive could not be reached)".
fn age_text(f: &Freshness) -> String {
    let secs = f.age.as_secs();
    let age = if secs < 120 {
        format!("{secs} s")
    } else if secs < 2 * 3600 {
        format!("{} min", secs / 60)
    } else if secs < 2 * 86_400 {
        format!("{} h", secs / 3600)
    } else {
        format!("{} days", secs / 86_400)
    };
    match (f.offline, secs) {
        (true, _) => format!("cached copy from {age} ago (offline: not refreshed)"),
        (false, 0..=59) => "fetched now".to_owned(),
        (false, _) => format!("cached copy from {age} ago (still fresh)"),
    }
}

/// One suite of one archive, its indexes by architecture (or why it could not be read).
struct Suite {
    archive: Archive,
    indexes: BTreeMap<String, Result<Arc<Index>, String>>,
}

impl Suite {
    fn new(mirror: &str, suite: &str, spec: &ArchiveSpec, opts: &Options) -> Result<Suite, String> {
        let mut archive = Archive::new(mirror, suite, &opts.cache)
            .map_err(|e| crate::chain(&e))?
            .offline(opts.offline)
            .with_progress(opts.progress.clone());
        if let Some((keys, whose)) = &spec.keyring {
            archive = archive.with_keyring(keys.clone(), whose);
        }
        Ok(Suite { archive, indexes: BTreeMap::new() })
    }

    fn index(&mut self, arch: &str, report: &mut Report) -> Result<Arc<Index>, String> {
        if let Some(r) = self.indexes.get(arch) {
            return r.clone();
        }
        let r = match self.archive.index_with_freshness(arch) {
            Ok((idx, freshness)) => {
                report.indexes.push(IndexUsed {
                    url: format!("{}/dists/{}", self.archive.mirror, self.archive.suite),
                    arch: arch.to_owned(),
                    freshness,
                });
                Ok(idx)
            }
            Err(e) => {
                let unreachable = matches!(
                    e,
                    crate::deb::archive::ArchiveError::Fetch { .. }
                        | crate::deb::archive::ArchiveError::FetchIo { .. }
                );
                let note = if unreachable { "; no cached copy to fall back on" } else { "" };
                let suite = &self.archive.suite;
                let msg = format!("the {suite} index for {arch}: {}{note}", crate::chain(&e));
                report.problems.push(msg.clone());
                Err(msg)
            }
        };
        self.indexes.insert(arch.to_owned(), r.clone());
        r
    }
}

/// Checks every component's pinned packages against its archive's main and security suites.
pub fn audit(components: Vec<Component>, opts: &Options) -> Report {
    let mut report = Report::default();
    let mut suites: BTreeMap<(String, String), Suite> = BTreeMap::new();
    for comp in components {
        let mut findings = Vec::new();
        for p in &comp.debs {
            let Some(spec) = &comp.archive else {
                findings.push(Finding {
                    pinned: p.clone(),
                    newer: None,
                    unchecked: Some("the archive it came from is not known".into()),
                });
                continue;
            };
            if let Some(why) = refused(p, spec) {
                findings.push(Finding { pinned: p.clone(), newer: None, unchecked: Some(why) });
                continue;
            }
            let security = format!("{}-security", spec.suite);
            let mut best: Option<(crate::deb::resolve::Package, String)> = None;
            let mut unchecked = None;
            for (mirror, suite) in [(&spec.mirror, &spec.suite), (&spec.security_mirror, &security)]
            {
                let key = (mirror.clone(), suite.clone());
                if !suites.contains_key(&key) {
                    match Suite::new(mirror, suite, spec, opts) {
                        Ok(s) => suites.insert(key.clone(), s),
                        Err(e) => {
                            unchecked = Some(e);
                            continue;
                        }
                    };
                }
                let Some(s) = suites.get_mut(&key) else { continue };
                match s.index(&p.arch, &mut report) {
                    Ok(idx) => {
                        if let Some(have) = idx.get(&p.name) {
                            let newer = best
                                .as_ref()
                                .is_none_or(|(b, _)| compare(&have.version, &b.version).is_gt());
                            if newer {
                                best = Some((have.clone(), suite.clone()));
                            }
                        }
                    }
                    Err(e) => unchecked = Some(e),
                }
            }
            let newer = match best {
                Some((pkg, suite)) if compare(&pkg.version, &p.version).is_gt() => {
                    let s = &suites[&(
                        if suite == spec.suite {
                            spec.mirror.clone()
                        } else {
                            spec.security_mirror.clone()
                        },
                        suite.clone(),
                    )];
                    Some(advisories(&s.archive, &pkg, p, &suite))
                }
                _ => None,
            };
            // A newer version found in one suite is a finding even when the other could not
            // be read; "up to date" needs both.
            let unchecked = if newer.is_some() { None } else { unchecked };
            findings.push(Finding { pinned: p.clone(), newer, unchecked });
        }
        report.components.push(ComponentReport { component: comp, findings });
    }
    report
}

/// Why a pinned package is not looked up, if it is not: an SBOM is input like any other, and
/// its suite and architecture name cache directories and URLs, its mirror what is asked.
fn refused(p: &Pinned, spec: &ArchiveSpec) -> Option<String> {
    use crate::deb::archive::valid_name;
    for (what, name) in [("suite", &p.suite), ("suite", &spec.suite), ("architecture", &p.arch)] {
        if !valid_name(name) {
            return Some(format!("its {what} {name:?} is not a Debian {what} name"));
        }
    }
    [&spec.mirror, &spec.security_mirror]
        .into_iter()
        .find(|m| !is_http(m))
        .map(|m| format!("its mirror {m:?} is not an http:// or https:// URL"))
}

fn is_http(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// The newer version with the advisories its changelog names past the pinned version.
fn advisories(
    archive: &Archive,
    pkg: &crate::deb::resolve::Package,
    pinned: &Pinned,
    suite: &str,
) -> Newer {
    let deb = DebRef {
        name: pkg.name.clone(),
        version: pkg.version.clone(),
        filename: pkg.filename.clone(),
        sha256: pkg.sha256.clone(),
        size: pkg.size,
        suite: None,
    };
    let mut newer = Newer {
        version: pkg.version.clone(),
        suite: suite.to_owned(),
        advisories: Vec::new(),
        advisories_unknown: None,
    };
    let log = archive.fetch_deb(&deb).map_err(|e| crate::chain(&e)).and_then(|path| {
        crate::deb::changelog::read_from_deb(&path, &pkg.name)
            .map_err(|e| format!("reading {}: {}", path.display(), crate::chain(&e)))
    });
    match log {
        Ok(Some(text)) => {
            newer.advisories = crate::deb::changelog::advisories_since(&text, &pinned.version)
        }
        Ok(None) => newer.advisories_unknown = Some("the package ships no changelog".into()),
        Err(e) => newer.advisories_unknown = Some(e),
    }
    newer
}

/// The components of an SPDX document: one per image package (`primaryPackagePurpose:
/// CONTAINER`) with the Debian packages and other packages it `CONTAINS` (and their
/// dependencies), found by their purls. `origin` says where the document came from.
pub fn components_of_spdx(doc: &Value, origin: &str) -> Vec<Component> {
    let packages: Vec<&Value> =
        doc["packages"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    let by_id: BTreeMap<&str, &Value> =
        packages.iter().filter_map(|p| Some((p["SPDXID"].as_str()?, *p))).collect();
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in doc["relationships"].as_array().into_iter().flatten() {
        if matches!(r["relationshipType"].as_str(), Some("CONTAINS" | "DEPENDS_ON")) {
            if let (Some(a), Some(b)) =
                (r["spdxElementId"].as_str(), r["relatedSpdxElement"].as_str())
            {
                children.entry(a).or_default().push(b);
            }
        }
    }
    let images: Vec<&Value> =
        packages.iter().copied().filter(|p| p["primaryPackagePurpose"] == "CONTAINER").collect();
    let mut out = Vec::new();
    let mut claimed: std::collections::BTreeSet<&str> = Default::default();
    let mut component = |name: String, ids: Vec<&str>| {
        let mut c = Component {
            name,
            origin: origin.to_owned(),
            archive: None,
            debs: Vec::new(),
            others: Vec::new(),
            unknown: None,
        };
        for id in ids {
            let Some(p) = by_id.get(id) else { continue };
            match deb_of(p) {
                Some((pinned, spec)) => {
                    // A package naming a suite or mirror that is refused is listed, and not
                    // checked (see `refused`); it never names the component's archive.
                    if refused(&pinned, &spec).is_none() {
                        c.archive.get_or_insert(spec);
                    }
                    c.debs.push(pinned);
                }
                None => c.others.push(format!(
                    "{} {}",
                    p["name"].as_str().unwrap_or("?"),
                    p["versionInfo"].as_str().unwrap_or("?")
                )),
            }
        }
        c.debs.sort_by(|a, b| (&a.arch, &a.name).cmp(&(&b.arch, &b.name)));
        c.debs.dedup();
        out.push(c);
    };
    for img in &images {
        let id = img["SPDXID"].as_str().unwrap_or_default();
        // Everything reachable from the image: its packages, then their dependencies.
        let mut ids = Vec::new();
        let mut stack = children.get(id).cloned().unwrap_or_default();
        while let Some(c) = stack.pop() {
            if ids.contains(&c) {
                continue;
            }
            ids.push(c);
            stack.extend(children.get(c).cloned().unwrap_or_default());
        }
        claimed.extend(ids.iter().copied());
        let name = format!(
            "{}:{}",
            img["name"].as_str().unwrap_or("image"),
            img["versionInfo"].as_str().unwrap_or("")
        );
        component(name, ids);
    }
    // Packages no image claims (SBOMs from other tools): one component of their own.
    let rest: Vec<&str> = packages
        .iter()
        .filter(|p| p["primaryPackagePurpose"] != "CONTAINER")
        .filter_map(|p| p["SPDXID"].as_str())
        .filter(|id| !claimed.contains(id))
        .collect();
    if !rest.is_empty() {
        component("packages of no baleen image".to_owned(), rest);
    }
    out
}

/// A Debian package of an SPDX document: its purl `pkg:deb/debian/NAME@VERSION?arch=…&distro=SUITE`
/// and the archive root its download location names.
fn deb_of(p: &Value) -> Option<(Pinned, ArchiveSpec)> {
    let purl = p["externalRefs"]
        .as_array()?
        .iter()
        .find_map(|r| r["referenceLocator"].as_str().filter(|l| l.starts_with("pkg:deb/")))?;
    let query = purl.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let qual =
        |k: &str| query.split('&').find_map(|kv| kv.strip_prefix(&format!("{k}=")).map(unescape));
    let suite = qual("distro")?;
    let arch = qual("arch")?;
    let location = p["downloadLocation"].as_str()?;
    let (mirror, _) = location.split_once("/pool/")?;
    let main = suite.strip_suffix("-security").unwrap_or(&suite).to_owned();
    let from_security = suite.ends_with("-security");
    let spec = ArchiveSpec {
        mirror: if from_security {
            crate::deb::sources::DEFAULT_MIRROR.to_owned()
        } else {
            mirror.to_owned()
        },
        suite: main,
        // An SBOM names where each package came from, not where its suite's security updates
        // are: a Debian mirror's (`…/debian`) are Debian's; another archive (a private one) is
        // asked for its own `-security` suite.
        security_mirror: if from_security || !mirror.trim_end_matches('/').ends_with("/debian") {
            mirror.to_owned()
        } else {
            crate::builder::DEFAULT_SECURITY_MIRROR.to_owned()
        },
        keyring: None,
    };
    let pinned = Pinned {
        arch,
        name: p["name"].as_str()?.to_owned(),
        version: p["versionInfo"].as_str()?.to_owned(),
        suite,
    };
    Some((pinned, spec))
}

/// Undoes a purl's percent-encoding.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An SPDX document of one Debian package with this purl and download location.
    fn one_deb(purl: &str, location: &str) -> Value {
        serde_json::json!({
            "packages": [{
                "SPDXID": "SPDXRef-x",
                "name": "libssl3",
                "versionInfo": "3.0.15-1",
                "downloadLocation": location,
                "externalRefs": [{ "referenceLocator": purl }],
            }],
        })
    }

    #[test]
    fn an_sbom_suite_or_mirror_escaping_the_cache_is_not_checked() {
        let t = tempfile::tempdir().unwrap();
        let cache = t.path().join("cache");
        let opts =
            Options { cache: cache.clone(), offline: true, progress: baleen_oci::Progress::Silent };
        let http = "http://deb.example/debian/pool/main/o/openssl/libssl3.deb";
        let escape = t.path().join("outside");
        let cases = [
            ("pkg:deb/debian/libssl3@3.0.15-1?arch=amd64&distro=..%2Fx", http, "suite \"../x\""),
            (
                &format!("pkg:deb/debian/libssl3@3.0.15-1?arch=amd64&distro={}", escape.display()),
                http,
                "is not a Debian suite name",
            ),
            ("pkg:deb/debian/libssl3@3.0.15-1?arch=..%2Fa&distro=bookworm", http, "architecture"),
            (
                "pkg:deb/debian/libssl3@3.0.15-1?arch=amd64&distro=bookworm",
                "file:///etc/pool/main/x.deb",
                "mirror \"file:///etc\" is not an http:// or https:// URL",
            ),
        ];
        for (purl, location, why) in cases {
            let comps = components_of_spdx(&one_deb(purl, location), "sbom.spdx.json");
            assert_eq!(comps[0].debs.len(), 1, "{purl}: listed");
            assert_eq!(comps[0].archive, None, "{purl}: names no archive");
            // Even with an archive taken from elsewhere, the package itself is refused.
            let mut comp = comps[0].clone();
            let spec = deb_of(&one_deb(purl, location)["packages"][0]).unwrap().1;
            comp.archive = Some(spec);
            let report = audit(vec![comp], &opts);
            let f = &report.components[0].findings[0];
            let unchecked = f.unchecked.as_deref().unwrap_or_default();
            assert!(unchecked.contains(why), "{purl} {location}: {unchecked}");
            assert!(report.incomplete());
        }
        assert!(!escape.exists() && !t.path().join("x").exists());
    }

    #[test]
    fn debian_packages_of_an_spdx_document_by_image() {
        let debs = [crate::sbom::DebPackage {
            name: "libssl3".into(),
            version: "3.0.15-1~deb12u1".into(),
            arch: "amd64".into(),
            source: "openssl".into(),
            suite: "bookworm-security".into(),
            download:
                "http://security.example/debian-security/pool/updates/main/o/openssl/libssl3.deb"
                    .into(),
            sha256: "ab".repeat(32),
            licenses: None,
        }];
        let doc = crate::sbom::document("baleen/sshd:1234", "amd64", &debs, &[]);
        let comps = components_of_spdx(&doc, "sbom.spdx.json");
        assert_eq!(comps.len(), 1);
        let c = &comps[0];
        assert_eq!(c.name, "baleen/sshd:1234");
        assert_eq!(
            c.debs,
            [Pinned {
                arch: "amd64".into(),
                name: "libssl3".into(),
                version: "3.0.15-1~deb12u1".into(),
                suite: "bookworm-security".into()
            }]
        );
        let spec = c.archive.as_ref().unwrap();
        assert_eq!(spec.suite, "bookworm");
        assert_eq!(spec.security_mirror, "http://security.example/debian-security");
    }
}
