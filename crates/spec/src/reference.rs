//! Image references: LinuxKit's `ReferenceExpand` (spec §1.6) and a syntax check with the
//! grammar of the distribution reference parser that LinuxKit uses after expansion.
//!
//! Non-goal: resolving or fetching anything (that is `baleen-oci`).

/// Longest repository name the reference grammar allows.
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a reference does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("image reference is empty")]
    Empty,
    #[error("repository name `{0}` must be lowercase")]
    Uppercase(String),
    #[error("`{component}` is not a valid repository path component in `{reference}`")]
    BadComponent { reference: String, component: String },
    #[error("`{host}` is not a valid registry host in `{reference}`")]
    BadDomain { reference: String, host: String },
    #[error(
        "`{tag}` is not a valid tag in `{reference}` (letters, digits, `_`, `.`, `-`; at most 128)"
    )]
    BadTag { reference: String, tag: String },
    #[error("`{digest}` is not a valid digest in `{reference}` (expected sha256:<64 hex digits>)")]
    BadDigest { reference: String, digest: String },
    #[error("repository name in `{0}` is longer than 255 characters")]
    TooLong(String),
}

/// LinuxKit's `ReferenceExpand`: `alpine` → `docker.io/library/alpine`, `linuxkit/init:x` →
/// `docker.io/linuxkit/init:x`; anything with a registry host is unchanged. No `:latest` added.
pub fn expand(reference: &str) -> String {
    let parts: Vec<&str> = reference.split('/').collect();
    match parts.as_slice() {
        [_] => format!("docker.io/library/{reference}"),
        [first, _] if !first.contains(['.', ':']) && *first != "localhost" => {
            format!("docker.io/{reference}")
        }
        _ => reference.to_string(),
    }
}

/// A reference split into its parts (after [`expand`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host, with port if any (`docker.io`, `localhost:5000`).
    pub domain: String,
    /// Repository path (`library/alpine`).
    pub path: String,
    pub tag: Option<String>,
    /// `algorithm:hex`.
    pub digest: Option<String>,
}

impl Reference {
    /// `domain/path`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }
}

/// Expands `reference` as LinuxKit does and checks it against the reference grammar.
pub fn parse(reference: &str) -> Result<Reference, RefError> {
    if reference.is_empty() {
        return Err(RefError::Empty);
    }
    let full = expand(reference);
    let err_ref = reference.to_string();
    let (rest, digest) = match full.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (full.as_str(), None),
    };
    if let Some(d) = digest {
        check_digest(d)
            .map_err(|()| RefError::BadDigest { reference: err_ref.clone(), digest: d.into() })?;
    }
    // A tag is after the last `:` that comes after the last `/` (a `:` before it is a port).
    let last_slash = rest.rfind('/').unwrap_or(0);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return Err(RefError::BadTag { reference: err_ref, tag: t.into() });
        }
    }
    if name.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(RefError::TooLong(err_ref));
    }
    let (domain, path) = name.split_once('/').ok_or(RefError::Empty)?;
    check_domain(domain)
        .map_err(|()| RefError::BadDomain { reference: err_ref.clone(), host: domain.into() })?;
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(RefError::Uppercase(err_ref));
    }
    for component in path.split('/') {
        if !path_component_ok(component) {
            return Err(RefError::BadComponent { reference: err_ref, component: component.into() });
        }
    }
    Ok(Reference {
        domain: domain.to_string(),
        path: path.to_string(),
        tag: tag.map(str::to_string),
        digest: digest.map(str::to_string),
    })
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn path_component_ok(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__`, or any number of `-`.
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.chars().all(|ch| ch == '-')) {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Host components `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?` joined by `.`, optional `:port`.
fn check_domain(d: &str) -> Result<(), ()> {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
            return Err(());
        }
    }
    let ok = !host.is_empty()
        && host.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(())
    }
}

fn check_digest(d: &str) -> Result<(), ()> {
    let (algo, hex) = d.split_once(':').ok_or(())?;
    let want = match algo {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(()),
    };
    if hex.len() == want && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_linuxkit() {
        assert_eq!(expand("alpine:3.20"), "docker.io/library/alpine:3.20");
        assert_eq!(expand("linuxkit/init:abc"), "docker.io/linuxkit/init:abc");
        assert_eq!(expand("localhost/foo"), "localhost/foo");
        assert_eq!(expand("localhost:5000/foo"), "localhost:5000/foo");
        assert_eq!(expand("quay.io/a/b"), "quay.io/a/b");
        assert_eq!(expand("a/b/c"), "a/b/c");
    }

    #[test]
    fn parses_tags_digests_and_ports() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = parse(&format!("localhost:5000/x/y:1.0@{d}")).unwrap();
        assert_eq!(r.domain, "localhost:5000");
        assert_eq!(r.path, "x/y");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.digest, Some(d));
        assert_eq!(parse("nginx").unwrap().name(), "docker.io/library/nginx");
    }

    #[test]
    fn rejects_bad_references() {
        assert!(matches!(parse("Alpine"), Err(RefError::Uppercase(_))));
        assert!(matches!(parse("alpine:"), Err(RefError::BadTag { .. })));
        assert!(matches!(parse("alpine:a b"), Err(RefError::BadTag { .. })));
        assert!(matches!(parse("alpine@sha256:abc"), Err(RefError::BadDigest { .. })));
        assert!(matches!(parse("a//b"), Err(RefError::BadComponent { .. })));
        assert!(matches!(parse("foo/-bar"), Err(RefError::BadComponent { .. })));
        assert!(matches!(parse("bad_host.x:po/b/c"), Err(RefError::BadDomain { .. })));
        assert!(matches!(parse(""), Err(RefError::Empty)));
        assert!(parse("a__b/c.d-e--f:tag_1.x").is_ok());
    }
}
