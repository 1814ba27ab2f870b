//! A `Packages` index and the dependency closure of a set of package names.
//!
//! The resolver follows `Pre-Depends` and `Depends` (not `Recommends`/`Suggests`), takes the first
//! alternative of `a | b` whose own dependencies can be met (backtracking to the next when not),
//! the highest version that meets a constraint, and a virtual package's first provider by name
//! when no real package has the name. It does not check
//! `Conflicts`/`Breaks`: an image is assembled from one archive snapshot, where they hold. It is
//! deterministic: same index, same request, same closure.

use super::version::{compare, Op};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// How many second-choice alternatives one resolution may try (see `Index::run`).
const BACKTRACK_BUDGET: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("unknown Debian package {name:?}: the archive index for {arch} has no package or provider of that name")]
    UnknownPackage { name: String, arch: String },
    #[error("cannot satisfy {package}'s dependency \"{dependency}\": {why}")]
    Unsatisfiable { package: String, dependency: String, why: String },
}

impl ResolveError {
    /// The error once the backtracking budget ran out: other choices were left untried.
    fn gave_up(self) -> ResolveError {
        match self {
            ResolveError::Unsatisfiable { package, dependency, why } if !why.contains(GAVE_UP) => {
                let why = format!(
                    "{why}{GAVE_UP} {BACKTRACK_BUDGET} other alternatives of earlier `a | b` \
                     dependencies (name the one you want in packages, or exclude the others)"
                );
                ResolveError::Unsatisfiable { package, dependency, why }
            }
            e => e,
        }
    }
}

const GAVE_UP: &str = "; gave up after trying";

/// One `name [(op version)]` of a dependency field; `:any`/`:native` qualifiers are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub name: String,
    pub constraint: Option<(Op, String)>,
}

/// Alternatives: `a | b | c`.
pub type Clause = Vec<Relation>;

/// One binary package of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// `Pre-Depends` then `Depends`, unparsed: parsed only for the packages a resolution
    /// reaches (see [`Package::depends`]), which keeps reading a 63 000-package index cheap.
    pub depends_raw: String,
    /// (virtual name, provided version)
    pub provides: Vec<(String, Option<String>)>,
    /// Pool path relative to the archive root.
    pub filename: String,
    pub sha256: String,
    pub size: u64,
    /// The suite whose index listed this version when it is not the main one (e.g.
    /// `bookworm-security`, see [`Index::overlay`]); `None` for the main suite.
    pub suite: Option<String>,
}

impl Package {
    /// The parsed `Pre-Depends` and `Depends` clauses.
    pub fn depends(&self) -> Vec<Clause> {
        parse_relations(&self.depends_raw)
    }
}

/// Packages by name (highest version first) and virtual names by provider.
#[derive(Debug, Default, Clone)]
pub struct Index {
    pub arch: String,
    packages: HashMap<String, Vec<Package>>,
    providers: HashMap<String, Vec<(String, Option<String>)>>,
}

/// Parses a dependency field: `a (>= 1) | b, c:any`.
pub fn parse_relations(field: &str) -> Vec<Clause> {
    field
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|clause| clause.split('|').map(parse_relation).collect())
        .collect()
}

fn parse_relation(s: &str) -> Relation {
    let s = s.trim();
    // Drop build-profile `<…>` and arch `[…]` restrictions: binary Packages files carry neither.
    let mut depth = 0;
    let cut = s
        .char_indices()
        .find(|(_, c)| {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            depth == 0 && (*c == '[' || *c == '<')
        })
        .map_or(s.len(), |(i, _)| i);
    let s = &s[..cut];
    let (name, constraint) = match s.split_once('(') {
        Some((n, rest)) => {
            let inner = rest.trim_end().trim_end_matches(')').trim();
            let split = inner.find(|c: char| !"<>=".contains(c)).unwrap_or(inner.len());
            let (op, ver) = inner.split_at(split);
            (n.trim(), Op::parse(op.trim()).map(|op| (op, ver.trim().to_owned())))
        }
        None => (s.trim(), None),
    };
    let name = name.split(':').next().unwrap_or(name);
    Relation { name: name.to_owned(), constraint }
}

impl Index {
    /// Builds an index from `Packages` paragraphs. Packages of other architectures than `arch`
    /// and `all` are skipped.
    pub fn from_paragraphs(
        arch: &str,
        paragraphs: impl IntoIterator<Item = super::control::Paragraph>,
    ) -> Index {
        let mut idx = Index { arch: arch.to_owned(), ..Index::default() };
        for p in paragraphs {
            let (Some(name), Some(version)) = (p.get("Package"), p.get("Version")) else {
                continue;
            };
            let parch = p.get("Architecture").unwrap_or("all");
            if parch != arch && parch != "all" {
                continue;
            }
            let depends_raw = format!(
                "{}, {}",
                p.get("Pre-Depends").unwrap_or(""),
                p.get("Depends").unwrap_or("")
            );
            let provides: Vec<(String, Option<String>)> =
                parse_relations(p.get("Provides").unwrap_or(""))
                    .into_iter()
                    .flatten()
                    .map(|r| (r.name, r.constraint.map(|(_, v)| v)))
                    .collect();
            let pkg = Package {
                name: name.to_owned(),
                version: version.to_owned(),
                arch: parch.to_owned(),
                depends_raw,
                provides,
                filename: p.get("Filename").unwrap_or("").to_owned(),
                sha256: p.get("SHA256").unwrap_or("").to_owned(),
                size: p.get("Size").and_then(|s| s.parse().ok()).unwrap_or(0),
                suite: None,
            };
            idx.add(pkg);
        }
        idx.sort();
        idx
    }

    fn sort(&mut self) {
        // Stable: at equal versions the package added first (the main suite's) stays first.
        for list in self.packages.values_mut() {
            list.sort_by(|a, b| compare(&b.version, &a.version));
        }
        for list in self.providers.values_mut() {
            list.sort();
            list.dedup();
        }
    }

    /// This index with the packages of `other` (another suite of the same release, such as its
    /// `-security` updates) added and marked with `suite`. Every version of a name is a
    /// candidate, so the resolver takes the newest one meeting a constraint from either suite,
    /// as apt does with sources of equal priority; at equal versions the main suite's wins.
    pub fn overlay(&self, other: &Index, suite: &str) -> Index {
        let mut idx = self.clone();
        let mut extra: Vec<&Package> = other.packages.values().flatten().collect();
        // HashMap order is random: add in a fixed order so equal versions tie the same way.
        extra.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        for p in extra {
            idx.add(Package { suite: Some(suite.to_owned()), ..p.clone() });
        }
        idx.sort();
        idx
    }

    /// Parses `Packages` text.
    pub fn parse(arch: &str, text: &str) -> Index {
        const FIELDS: &[&str] = &[
            "Package",
            "Version",
            "Architecture",
            "Pre-Depends",
            "Depends",
            "Provides",
            "Filename",
            "SHA256",
            "Size",
        ];
        Self::from_paragraphs(arch, super::control::parse_only(text, FIELDS))
    }

    fn add(&mut self, pkg: Package) {
        for (virt, ver) in &pkg.provides {
            self.providers.entry(virt.clone()).or_default().push((pkg.name.clone(), ver.clone()));
        }
        self.packages.entry(pkg.name.clone()).or_default().push(pkg);
    }

    /// Number of distinct package names.
    pub fn len(&self) -> usize {
        self.packages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
    }

    /// The highest version of `name`.
    pub fn get(&self, name: &str) -> Option<&Package> {
        self.packages.get(name).and_then(|l| l.first())
    }

    /// The closure of `roots` under `Pre-Depends`/`Depends`, minus `exclude`, sorted by name.
    pub fn resolve(
        &self,
        roots: &[String],
        exclude: &[String],
    ) -> Result<Vec<Package>, ResolveError> {
        let mut chosen: BTreeMap<String, &Package> = BTreeMap::new();
        let mut queue: VecDeque<(&Package, Clause)> = VecDeque::new();
        for root in roots {
            if exclude.contains(root) {
                continue;
            }
            let pkg =
                self.get(root).or_else(|| self.first_provider(root, None)).ok_or_else(|| {
                    ResolveError::UnknownPackage { name: root.clone(), arch: self.arch.clone() }
                })?;
            self.choose(pkg, &mut chosen, &mut queue);
        }
        let mut budget = BACKTRACK_BUDGET;
        let chosen = self.run(chosen, queue, exclude, &mut budget)?;
        Ok(chosen.into_values().cloned().collect())
    }

    /// Works through `queue` until every clause holds. At a clause with several alternatives the
    /// archive can give, each is tried in order with the rest of the resolution (a copy of the
    /// state), and the first that completes wins: `a | b` where `a` needs something missing
    /// resolves with `b`. `budget` caps the alternatives tried, against pathological indexes;
    /// when everything fails, the error is the first alternative's (the one apt would take).
    fn run<'a>(
        &'a self,
        mut chosen: BTreeMap<String, &'a Package>,
        mut queue: VecDeque<(&'a Package, Clause)>,
        exclude: &[String],
        budget: &mut usize,
    ) -> Result<BTreeMap<String, &'a Package>, ResolveError> {
        while let Some((from, clause)) = queue.pop_front() {
            let satisfied = clause.iter().any(|r| {
                exclude.contains(&r.name)
                    || chosen.get(&r.name).is_some_and(|p| meets(&p.version, &r.constraint))
                    || chosen.values().any(|p| provides(p, r))
            });
            if satisfied {
                continue;
            }
            let picks: Vec<&Package> = clause
                .iter()
                .filter_map(|r| {
                    let real = self
                        .packages
                        .get(&r.name)
                        .and_then(|l| l.iter().find(|p| meets(&p.version, &r.constraint)));
                    // A real package already chosen at a version that fails the constraint
                    // cannot be replaced by another version: only one version of a name is
                    // installed.
                    if real.is_some() && chosen.contains_key(&r.name) {
                        return None;
                    }
                    real.or_else(|| self.first_provider(&r.name, r.constraint.as_ref()))
                })
                .collect();
            match picks.as_slice() {
                [] => {
                    return Err(ResolveError::Unsatisfiable {
                        package: format!("{} {}", from.name, from.version),
                        dependency: clause_text(&clause),
                        why: self.why(&clause, &chosen),
                    })
                }
                [only] => self.choose(only, &mut chosen, &mut queue),
                [first, rest @ ..] => {
                    let attempt = |p: &'a Package, budget: &mut usize| {
                        let (mut c, mut q) = (chosen.clone(), queue.clone());
                        self.choose(p, &mut c, &mut q);
                        self.run(c, q, exclude, budget)
                    };
                    let first_error = match attempt(first, budget) {
                        Ok(done) => return Ok(done),
                        Err(e) => e,
                    };
                    for p in rest {
                        if *budget == 0 {
                            return Err(first_error.gave_up());
                        }
                        *budget -= 1;
                        if let Ok(done) = attempt(p, budget) {
                            return Ok(done);
                        }
                    }
                    return Err(first_error);
                }
            }
        }
        Ok(chosen)
    }

    fn choose<'a>(
        &'a self,
        pkg: &'a Package,
        chosen: &mut BTreeMap<String, &'a Package>,
        queue: &mut VecDeque<(&'a Package, Clause)>,
    ) {
        if chosen.insert(pkg.name.clone(), pkg).is_none() {
            queue.extend(pkg.depends().into_iter().map(|c| (pkg, c)));
        }
    }

    fn first_provider(&self, virt: &str, constraint: Option<&(Op, String)>) -> Option<&Package> {
        self.providers.get(virt)?.iter().find_map(|(name, ver)| {
            let ok = match (constraint, ver) {
                (None, _) => true,
                (Some((op, want)), Some(have)) => op.holds(have, want),
                (Some(_), None) => false, // an unversioned Provides never satisfies a versioned dependency
            };
            ok.then(|| self.get(name)).flatten()
        })
    }

    /// Says what the archive has for each alternative of an unsatisfiable clause.
    fn why(&self, clause: &Clause, chosen: &BTreeMap<String, &Package>) -> String {
        clause
            .iter()
            .map(|r| match (chosen.get(&r.name), self.packages.get(&r.name)) {
                (Some(p), _) => format!("{} {} is already chosen", p.name, p.version),
                (None, Some(list)) => {
                    let versions: Vec<&str> = list.iter().map(|p| p.version.as_str()).collect();
                    format!("the archive has {} {}", r.name, versions.join(", "))
                }
                (None, None) => format!("the archive has no package or provider named {}", r.name),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn meets(have: &str, constraint: &Option<(Op, String)>) -> bool {
    constraint.as_ref().is_none_or(|(op, want)| op.holds(have, want))
}

fn provides(p: &Package, r: &Relation) -> bool {
    p.provides.iter().any(|(virt, ver)| {
        virt == &r.name
            && match (&r.constraint, ver) {
                (None, _) => true,
                (Some((op, want)), Some(have)) => op.holds(have, want),
                (Some(_), None) => false,
            }
    })
}

fn clause_text(clause: &Clause) -> String {
    clause
        .iter()
        .map(|r| match &r.constraint {
            Some((op, v)) => format!("{} ({} {v})", r.name, op_text(*op)),
            None => r.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn op_text(op: Op) -> &'static str {
    match op {
        Op::Lt => "<<",
        Op::Le => "<=",
        Op::Eq => "=",
        Op::Ge => ">=",
        Op::Gt => ">>",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baleen_testkit::Chain;

    const PACKAGES: &str = "\
Package: app
Version: 1.0
Architecture: amd64
Pre-Depends: libc6 (>= 2.36)
Depends: mail-transport-agent | nullmailer, libssl3 (>= 3.0), perl:any
Filename: pool/main/a/app/app_1.0_amd64.deb
SHA256: aa
Size: 10

Package: libc6
Version: 2.36-9+deb12u9
Architecture: amd64
Filename: pool/main/g/glibc/libc6_2.36-9+deb12u9_amd64.deb
SHA256: bb
Size: 20

Package: libc6
Version: 2.36-9+deb12u10
Architecture: amd64
Filename: pool/main/g/glibc/libc6_2.36-9+deb12u10_amd64.deb
SHA256: cc
Size: 21

Package: libc6
Version: 2.36-9
Architecture: arm64
Filename: pool/main/g/glibc/libc6_2.36-9_arm64.deb

Package: exim4-daemon-light
Version: 4.96
Architecture: amd64
Provides: mail-transport-agent
Depends: libc6

Package: postfix
Version: 3.7
Architecture: amd64
Provides: mail-transport-agent

Package: nullmailer
Version: 1
Architecture: amd64

Package: openssl-provider
Version: 3.0.15
Architecture: amd64
Provides: libssl3 (= 3.0.15)

Package: perl
Version: 5.36
Architecture: all

Package: old
Version: 1
Architecture: amd64
Depends: libc6 (>= 3.0)
";

    fn names(v: &[Package]) -> Vec<String> {
        v.iter().map(|p| format!("{}={}", p.name, p.version)).collect()
    }

    #[test]
    fn parses_relations() {
        let c = parse_relations("a (>= 1.0) | b:any, c (<<2), d [amd64] <!nocheck>");
        assert_eq!(c.len(), 3);
        assert_eq!(
            c[0][0],
            Relation { name: "a".into(), constraint: Some((Op::Ge, "1.0".into())) }
        );
        assert_eq!(c[0][1], Relation { name: "b".into(), constraint: None });
        assert_eq!(c[1][0].constraint, Some((Op::Lt, "2".into())));
        assert_eq!(c[2][0], Relation { name: "d".into(), constraint: None });
    }

    #[test]
    fn closure_with_alternatives_virtuals_and_versions() {
        let idx = Index::parse("amd64", PACKAGES);
        let got = idx.resolve(&["app".into()], &[]).unwrap();
        assert_eq!(
            names(&got),
            [
                "app=1.0",
                "exim4-daemon-light=4.96", // first provider by name of mail-transport-agent
                "libc6=2.36-9+deb12u10",   // highest version, arm64 one ignored
                "openssl-provider=3.0.15", // versioned Provides meets (>= 3.0)
                "perl=5.36"                // :any dropped, arch all accepted
            ]
        );
        assert_eq!(got[2].filename, "pool/main/g/glibc/libc6_2.36-9+deb12u10_amd64.deb");
        assert_eq!(got[2].size, 21);
    }

    #[test]
    fn an_alternative_already_chosen_wins() {
        let idx = Index::parse("amd64", PACKAGES);
        let got = idx.resolve(&["nullmailer".into(), "app".into()], &[]).unwrap();
        let n = names(&got);
        assert!(n.contains(&"nullmailer=1".to_owned()), "{n:?}");
        assert!(!n.iter().any(|p| p.starts_with("exim4")), "{n:?}");
    }

    #[test]
    fn exclude_removes_from_the_closure() {
        let idx = Index::parse("amd64", PACKAGES);
        let got =
            idx.resolve(&["app".into()], &["perl".into(), "mail-transport-agent".into()]).unwrap();
        let n = names(&got);
        assert!(!n.iter().any(|p| p.starts_with("perl") || p.starts_with("exim")), "{n:?}");
    }

    #[test]
    fn unknown_package_is_named() {
        let idx = Index::parse("amd64", PACKAGES);
        let err = idx.resolve(&["app".into(), "no-such-pkg".into()], &[]).unwrap_err().chain();
        assert!(err.contains("unknown Debian package \"no-such-pkg\""), "{err}");
    }

    #[test]
    fn an_alternative_whose_dependencies_fail_gives_way_to_the_next() {
        let idx = Index::parse(
            "amd64",
            "\
Package: app
Version: 1
Architecture: amd64
Depends: first | second, tail

Package: first
Version: 1
Architecture: amd64
Depends: base, gone (>= 2)

Package: gone
Version: 1
Architecture: amd64

Package: second
Version: 1
Architecture: amd64
Depends: base

Package: base
Version: 1
Architecture: amd64

Package: tail
Version: 1
Architecture: amd64
Depends: first | second
",
        );
        let got = idx.resolve(&["app".into()], &[]).unwrap();
        assert_eq!(names(&got), ["app=1", "base=1", "second=1", "tail=1"]);
        // With no way out, the error is about the first alternative, as without backtracking.
        let err = idx.resolve(&["first".into()], &[]).unwrap_err().chain();
        assert!(err.contains("first 1's dependency \"gone (>= 2)\""), "{err}");
    }

    #[test]
    fn backtracking_stops_at_its_budget_and_says_so() {
        // 12 choices of two alternatives, every one failing: 4096 combinations.
        let mut text = String::from("Package: app\nVersion: 1\nArchitecture: amd64\nDepends: ");
        let clauses: Vec<String> = (0..12).map(|i| format!("a{i} | b{i}")).collect();
        text.push_str(&clauses.join(", "));
        text.push_str(", last\n\n");
        for i in 0..12 {
            for p in ["a", "b"] {
                text.push_str(&format!("Package: {p}{i}\nVersion: 1\nArchitecture: amd64\n\n"));
            }
        }
        text.push_str("Package: last\nVersion: 1\nArchitecture: amd64\nDepends: gone\n");
        let idx = Index::parse("amd64", &text);
        let err = idx.resolve(&["app".into()], &[]).unwrap_err().chain();
        assert!(err.contains("last 1's dependency \"gone\""), "{err}");
        assert!(err.contains("gave up after trying 1000 other alternatives"), "{err}");
    }

    #[test]
    fn unsatisfiable_dependency_names_package_and_versions() {
        let idx = Index::parse("amd64", PACKAGES);
        let err = idx.resolve(&["old".into()], &[]).unwrap_err().chain();
        assert!(err.contains("old 1"), "{err}");
        assert!(err.contains("libc6 (>= 3.0)"), "{err}");
        assert!(err.contains("2.36-9+deb12u10"), "{err}");
    }

    #[test]
    fn the_newest_version_of_either_suite_wins_and_names_its_suite() {
        let security = "\
Package: libc6
Version: 2.36-9+deb12u11
Architecture: amd64
Filename: pool/updates/main/g/glibc/libc6_2.36-9+deb12u11_amd64.deb
SHA256: 11
Size: 5

Package: perl
Version: 5.30
Architecture: all
Filename: pool/updates/main/p/perl/perl_5.30_all.deb

Package: exim4-daemon-light
Version: 4.96
Architecture: amd64
Provides: mail-transport-agent
Filename: pool/updates/main/e/exim4/exim4-daemon-light_4.96_amd64.deb
";
        let main = Index::parse("amd64", PACKAGES);
        let idx = main.overlay(&Index::parse("amd64", security), "bookworm-security");
        let got = idx.resolve(&["app".into()], &[]).unwrap();
        let by = |n: &str| got.iter().find(|p| p.name == n).unwrap().clone();
        let libc = by("libc6");
        assert_eq!(libc.version, "2.36-9+deb12u11", "the security update is newer");
        assert_eq!(libc.suite.as_deref(), Some("bookworm-security"));
        assert_eq!(libc.filename, "pool/updates/main/g/glibc/libc6_2.36-9+deb12u11_amd64.deb");
        // An older version in the security suite does not win.
        assert_eq!((by("perl").version.as_str(), by("perl").suite), ("5.36", None));
        // The same version in both: the main suite's.
        assert_eq!(by("exim4-daemon-light").suite, None);
        // The overlay left the main index alone.
        assert_eq!(main.get("libc6").unwrap().version, "2.36-9+deb12u10");
    }

    #[test]
    fn a_chosen_version_is_not_replaced() {
        let text = format!("{PACKAGES}\nPackage: pin\nVersion: 1\nArchitecture: amd64\nDepends: libc6 (= 2.36-9+deb12u9)\n");
        let idx = Index::parse("amd64", &text);
        let err = idx.resolve(&["libc6".into(), "pin".into()], &[]).unwrap_err().chain();
        assert!(err.contains("already chosen"), "{err}");
    }
}
