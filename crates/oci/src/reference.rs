//! Image references with Docker/LinuxKit normalisation: `alpine` is
//! `docker.io/library/alpine:latest`, `user/app` is `docker.io/user/app:latest`, a first component
//! with a `.` or `:` or equal to `localhost` is a registry host (with an optional port), and a
//! reference may carry a tag, a digest, or both (`name:tag@sha256:…`).
//!
//! Unlike LinuxKit's `ReferenceExpand`, a reference without tag or digest always gets `:latest`
//! (LinuxKit adds it only in `cache pull`); the cache names are the same either way because
//! LinuxKit resolves untagged names to `:latest` when it pulls them.

use crate::digest::{Digest, DigestError};
use std::fmt;
use std::str::FromStr;

/// Why a reference string was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("image reference is empty")]
    Empty,
    #[error("image reference {reference:?}")]
    Digest { reference: String, source: DigestError },
    #[error("image reference {reference:?}: repository {repository:?} must be lowercase letters, digits and separators (. _ __ -), one or more components separated by /")]
    Repository { reference: String, repository: String },
    #[error("image reference {reference:?}: tag {tag:?} must be 1-128 characters of letters, digits, _ . - and not start with . or -")]
    Tag { reference: String, tag: String },
    #[error(
        "image reference {reference:?}: registry host {registry:?} is not a valid host[:port]"
    )]
    Registry { reference: String, registry: String },
}

/// The registry Docker Hub images live on, as written in canonical references.
pub const DOCKER_HUB: &str = "docker.io";

/// A normalised image reference. Displays canonically, e.g. `docker.io/library/alpine:3.20`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// Registry host with optional port, e.g. `docker.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// Repository path, e.g. `library/alpine`.
    pub repository: String,
    /// Tag; `latest` when the input named neither tag nor digest.
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises a reference.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (
                n,
                Some(Digest::parse(d).map_err(|source| ReferenceError::Digest {
                    reference: s.to_string(),
                    source,
                })?),
            ),
            None => (s, None),
        };
        // The tag is after the last ':' of the last path component (a ':' before a '/' is a port).
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => {
                (&name_tag[..last_slash + i], Some(name_tag[last_slash + i + 1..].to_string()))
            }
            None => (name_tag, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
            _ => registry,
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if !valid_host(&registry) {
            return Err(ReferenceError::Registry { reference: s.to_string(), registry });
        }
        if !valid_repository(&repository) {
            return Err(ReferenceError::Repository { reference: s.to_string(), repository });
        }
        if let Some(t) = &tag {
            if !valid_tag(t) {
                return Err(ReferenceError::Tag { reference: s.to_string(), tag: t.clone() });
            }
        }
        let tag = if tag.is_none() && digest.is_none() { Some("latest".to_string()) } else { tag };
        Ok(Reference { registry, repository, tag, digest })
    }

    /// `registry/repository` without tag or digest (LinuxKit's "locator").
    pub fn locator(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What to ask the registry's manifest endpoint for: the digest when there is one (it pins
    /// the content), else the tag.
    pub fn manifest_key(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The same repository with another digest and no tag.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference { tag: None, digest: Some(digest), ..self.clone() }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

fn valid_host(h: &str) -> bool {
    let (host, port) = match h.rsplit_once(':') {
        // An IPv6 literal keeps its colons inside brackets.
        Some((host, port)) if !host.is_empty() && !port.contains(']') => (host, Some(port)),
        _ => (h, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err() {
            return false;
        }
    }
    if host.starts_with('[') && host.ends_with(']') {
        return host[1..host.len() - 1].parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn valid_repository(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 255
        && r.split('/').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|&x| x.is_ascii_lowercase() || x.is_ascii_digit() || b"._-".contains(&x))
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && !c.contains("..")
                && !c.contains("___")
        })
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || b"_.-".contains(&x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(canon("alpine"), "docker.io/library/alpine:latest");
        assert_eq!(canon("alpine:3.20"), "docker.io/library/alpine:3.20");
        assert_eq!(canon("linuxkit/init:v1.0"), "docker.io/linuxkit/init:v1.0");
        assert_eq!(canon("index.docker.io/library/alpine"), "docker.io/library/alpine:latest");
        assert_eq!(canon("localhost/foo"), "localhost/foo:latest");
        assert_eq!(canon("127.0.0.1:5000/a/b:t"), "127.0.0.1:5000/a/b:t");
        assert_eq!(canon("ghcr.io/o/r"), "ghcr.io/o/r:latest");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(canon(&format!("alpine@{d}")), format!("docker.io/library/alpine@{d}"));
        assert_eq!(canon(&format!("alpine:3@{d}")), format!("docker.io/library/alpine:3@{d}"));
        let r = Reference::parse("localhost:5000/x").unwrap();
        assert_eq!((r.registry.as_str(), r.repository.as_str()), ("localhost:5000", "x"));
        assert_eq!(r.manifest_key(), "latest");
    }

    proptest::proptest! {
        #[test]
        fn canonical_form_parses_back_to_itself(
            host in proptest::option::of(proptest::sample::select(vec!["ghcr.io", "localhost:5000", "127.0.0.1:1234", "index.docker.io", "a.b.c"])),
            repo in "[a-z0-9]{1,8}([._-][a-z0-9]{1,4})?(/[a-z0-9]{1,8}){0,2}",
            tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
            digest in proptest::option::of("[0-9a-f]{64}"),
        ) {
            let mut s = match host { Some(h) => format!("{h}/{repo}"), None => repo };
            if let Some(t) = tag { s = format!("{s}:{t}"); }
            if let Some(d) = digest { s = format!("{s}@sha256:{d}"); }
            let r = Reference::parse(&s).unwrap();
            let again = Reference::parse(&r.to_string()).unwrap();
            proptest::prop_assert_eq!(&again, &r);
            proptest::prop_assert_eq!(again.to_string(), r.to_string());
        }

        #[test]
        fn never_panics(s in ".{0,80}") {
            let _ = Reference::parse(&s);
        }
    }

    #[test]
    fn rejects_bad_references() {
        assert_eq!(Reference::parse(""), Err(ReferenceError::Empty));
        assert!(matches!(Reference::parse("Alpine"), Err(ReferenceError::Repository { .. })));
        assert!(matches!(Reference::parse("alpine:-x"), Err(ReferenceError::Tag { .. })));
        assert!(matches!(Reference::parse("alpine@sha256:zz"), Err(ReferenceError::Digest { .. })));
        assert!(matches!(Reference::parse("host:99999/x"), Err(ReferenceError::Registry { .. })));
        assert!(Reference::parse("a//b").is_err());
        assert!(Reference::parse("docker.io/../etc").is_err());
    }
}
