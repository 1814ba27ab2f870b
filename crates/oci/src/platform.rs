//! Target platforms (`linux/arm64/v8`) and choosing one manifest out of an index.
//!
//! Names are normalised the way containerd does (`x86_64` → `amd64`, `aarch64` → `arm64`,
//! `arm64/v8` ≡ `arm64`, `armhf` → `arm/v7`), so `--arch aarch64` finds the `arm64` variant.

use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlatformError {
    #[error(
        "platform {0:?}: expected os/architecture[/variant] (e.g. linux/arm64) or an architecture"
    )]
    Syntax(String),
}

/// An OS/architecture/variant triple, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// Builds a normalised platform.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        let (architecture, implied) = normalise_arch(architecture);
        let variant = variant.filter(|v| !v.is_empty()).map(str::to_string).or(implied);
        // `arm64/v8` is the only arm64 variant in use; containerd treats it as no variant.
        let variant = match (architecture.as_str(), variant.as_deref()) {
            ("arm64", Some("v8")) => None,
            _ => variant,
        };
        Platform { os: os.to_ascii_lowercase(), architecture, variant }
    }

    /// The machine baleen runs on, always with os `linux` (baleen builds Linux systems).
    pub fn host() -> Platform {
        Platform::new("linux", std::env::consts::ARCH, None)
    }

    /// Parses `os/arch[/variant]`, or a bare architecture meaning `linux/<arch>`.
    pub fn parse(s: &str) -> Result<Platform, PlatformError> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(PlatformError::Syntax(s.to_string()));
        }
        match parts.as_slice() {
            [arch] => Ok(Platform::new("linux", arch, None)),
            [os, arch] => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] => Ok(Platform::new(os, arch, Some(variant))),
            _ => Err(PlatformError::Syntax(s.to_string())),
        }
    }

    /// Whether an index entry with this platform serves `self`. OS and architecture must be equal;
    /// a variant is compared only when both sides name one (LinuxKit ignores variants entirely).
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && match (&self.variant, &other.variant) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }

    /// Converts the platform of an index entry.
    pub fn from_oci(p: &oci_spec::image::Platform) -> Platform {
        Platform::new(&p.os().to_string(), &p.architecture().to_string(), p.variant().as_deref())
    }

    /// Picks the best entry for `self` among `(platform, item)` pairs: an exact variant match
    /// first, then an entry without variant, then any compatible one.
    pub fn select<'a, T>(&self, candidates: &'a [(Platform, T)]) -> Option<&'a T> {
        let exact = candidates.iter().find(|(p, _)| p == self);
        let plain = || candidates.iter().find(|(p, _)| self.matches(p) && p.variant.is_none());
        let any = || candidates.iter().find(|(p, _)| self.matches(p));
        exact.or_else(plain).or_else(any).map(|(_, t)| t)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalise_arch(a: &str) -> (String, Option<String>) {
    let a = a.to_ascii_lowercase();
    match a.as_str() {
        "x86_64" | "x86-64" => ("amd64".into(), None),
        "aarch64" => ("arm64".into(), None),
        "armhf" | "armv7l" | "armv7" => ("arm".into(), Some("v7".into())),
        "armel" | "armv6l" => ("arm".into(), Some("v6".into())),
        "i386" | "i686" | "x86" => ("386".into(), None),
        "powerpc64" | "ppc64el" => ("ppc64le".into(), None),
        _ => (a, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap(),
            Platform::new("linux", "arm64", None)
        );
        assert_eq!(Platform::parse("aarch64").unwrap().to_string(), "linux/arm64");
        assert_eq!(Platform::parse("linux/armhf").unwrap().to_string(), "linux/arm/v7");
        assert_eq!(Platform::parse("x86_64").unwrap(), Platform::parse("linux/amd64").unwrap());
        assert!(Platform::parse("linux//x").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
        if cfg!(target_arch = "x86_64") {
            assert_eq!(Platform::host().to_string(), "linux/amd64");
        }
    }

    #[test]
    fn selects_best_match() {
        let c = vec![
            (Platform::parse("linux/arm/v6").unwrap(), 1),
            (Platform::parse("linux/arm/v7").unwrap(), 2),
            (Platform::parse("linux/amd64").unwrap(), 3),
        ];
        assert_eq!(Platform::parse("linux/arm/v7").unwrap().select(&c), Some(&2));
        assert_eq!(Platform::parse("linux/amd64").unwrap().select(&c), Some(&3));
        assert_eq!(Platform::parse("linux/arm64").unwrap().select(&c), None);
        assert_eq!(Platform::parse("linux/arm").unwrap().select(&c), Some(&1));
    }
}
