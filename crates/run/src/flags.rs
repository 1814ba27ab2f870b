//! Parsing LinuxKit's flag values: `--disk`, `--publish`, `--networking`, `--accel`, `--timeout`.
//!
//! Each parser accepts exactly what LinuxKit accepts (spec §8) and names the offending part of the
//! value when it refuses one.

use crate::plan::{Networking, Proto, Publish};
use std::path::PathBuf;
use std::time::Duration;

/// A flag value that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FlagError {
    #[error("--disk {value:?}: unknown key {key:?} (expected file=, size= or format=)")]
    DiskKey { value: String, key: String },
    #[error("--disk {value:?}: size {size:?} is not a number with an optional M or G suffix")]
    DiskSize { value: String, size: String },
    #[error("--disk {value:?}: names no file and no size")]
    DiskEmpty { value: String },
    #[error("--publish {value:?}: expected HOST:GUEST[/tcp|/udp] with ports 1-65535")]
    Publish { value: String },
    #[error("--networking {value:?}: expected user, none, tap,<ifname> or bridge,<bridge>")]
    Networking { value: String },
    #[error("--accel {value:?}: expected auto, kvm or tcg")]
    Accel { value: String },
    #[error("--timeout {value:?}: expected seconds, or a number with s, m or h")]
    Timeout { value: String },
}

/// `--disk [file=]path[,size=N[M|G]][,format=F]`, before defaults are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpec {
    pub path: Option<PathBuf>,
    /// MiB.
    pub size_mb: Option<u64>,
    pub format: Option<String>,
}

impl DiskSpec {
    pub fn parse(value: &str) -> Result<DiskSpec, FlagError> {
        let mut spec = DiskSpec { path: None, size_mb: None, format: None };
        for (i, part) in value.split(',').enumerate() {
            match part.split_once('=') {
                Some(("file", p)) => spec.path = Some(PathBuf::from(p)),
                Some(("size", s)) => {
                    spec.size_mb = Some(parse_size_mb(s).ok_or_else(|| FlagError::DiskSize {
                        value: value.into(),
                        size: s.into(),
                    })?)
                }
                Some(("format", f)) => spec.format = Some(f.to_owned()),
                None if i == 0 && !part.is_empty() => spec.path = Some(PathBuf::from(part)),
                Some((key, _)) => {
                    return Err(FlagError::DiskKey { value: value.into(), key: key.into() })
                }
                None => return Err(FlagError::DiskKey { value: value.into(), key: part.into() }),
            }
        }
        if spec.path.is_none() && spec.size_mb.is_none() {
            return Err(FlagError::DiskEmpty { value: value.into() });
        }
        Ok(spec)
    }
}

/// `N`, `NG` (the default unit, as LinuxKit) or `NM`, in MiB.
fn parse_size_mb(s: &str) -> Option<u64> {
    let (num, mult) = if let Some(n) = s.strip_suffix(['M', 'm']) {
        (n, 1)
    } else if let Some(n) = s.strip_suffix(['G', 'g']) {
        (n, 1024)
    } else {
        (s, 1024)
    };
    num.parse::<u64>().ok().filter(|n| *n > 0)?.checked_mul(mult)
}

/// `--publish host:guest[/tcp|udp]`.
pub fn parse_publish(value: &str) -> Result<Publish, FlagError> {
    let err = || FlagError::Publish { value: value.into() };
    let (ports, proto) = match value.rsplit_once('/') {
        Some((p, "tcp")) => (p, Proto::Tcp),
        Some((p, "udp")) => (p, Proto::Udp),
        Some(_) => return Err(err()),
        None => (value, Proto::Tcp),
    };
    let (host, guest) = ports.split_once(':').ok_or_else(err)?;
    let port = |s: &str| s.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(err);
    Ok(Publish { host: port(host)?, guest: port(guest)?, proto })
}

/// `--networking user|default|none|tap,<if>|bridge,<br>` (`default` is LinuxKit's synonym for
/// user networking).
pub fn parse_networking(value: &str) -> Result<Networking, FlagError> {
    let err = || FlagError::Networking { value: value.into() };
    match value.split_once(',') {
        None if value == "user" || value == "default" || value.is_empty() => Ok(Networking::User),
        None if value == "none" => Ok(Networking::None),
        Some(("tap", ifname)) if !ifname.is_empty() => Ok(Networking::Tap(ifname.into())),
        Some(("bridge", br)) if !br.is_empty() => Ok(Networking::Bridge(br.into())),
        _ => Err(err()),
    }
}

/// What `--accel` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelChoice {
    /// KVM when a real probe boot works, TCG otherwise (with a one-line notice).
    Auto,
    /// KVM, failing when `/dev/kvm` cannot be opened. No probe: the user asked for it.
    Kvm,
    /// Software emulation; never touches `/dev/kvm`.
    Tcg,
}

/// `auto`, `kvm`, `tcg`; LinuxKit's `kvm:tcg` (kvm with fallback) means `auto`.
pub fn parse_accel(value: &str) -> Result<AccelChoice, FlagError> {
    match value {
        "auto" | "kvm:tcg" | "" => Ok(AccelChoice::Auto),
        "kvm" => Ok(AccelChoice::Kvm),
        "tcg" => Ok(AccelChoice::Tcg),
        _ => Err(FlagError::Accel { value: value.into() }),
    }
}

/// `90`, `90s`, `5m`, `1h`.
pub fn parse_timeout(value: &str) -> Result<Duration, FlagError> {
    let err = || FlagError::Timeout { value: value.into() };
    let (num, mult) = match value.char_indices().last() {
        Some((i, 's')) => (&value[..i], 1),
        Some((i, 'm')) => (&value[..i], 60),
        Some((i, 'h')) => (&value[..i], 3600),
        _ => (value, 1),
    };
    let n: u64 = num.parse().map_err(|_| err())?;
    if n == 0 {
        return Err(err());
    }
    Ok(Duration::from_secs(n.checked_mul(mult).ok_or_else(err)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_specs_follow_linuxkit() {
        assert_eq!(
            DiskSpec::parse("disk.qcow2").unwrap(),
            DiskSpec { path: Some("disk.qcow2".into()), size_mb: None, format: None }
        );
        assert_eq!(
            DiskSpec::parse("file=d.img,size=2,format=raw").unwrap(),
            DiskSpec {
                path: Some("d.img".into()),
                size_mb: Some(2048),
                format: Some("raw".into())
            }
        );
        assert_eq!(
            DiskSpec::parse("size=512M").unwrap(),
            DiskSpec { path: None, size_mb: Some(512), format: None }
        );
        assert_eq!(
            DiskSpec::parse("d.img,size=1G").unwrap(),
            DiskSpec { path: Some("d.img".into()), size_mb: Some(1024), format: None }
        );
    }

    #[test]
    fn disk_specs_refuse_unknown_keys_and_bad_sizes() {
        assert!(matches!(
            DiskSpec::parse("d.img,bus=virtio"),
            Err(FlagError::DiskKey { key, .. }) if key == "bus"
        ));
        assert!(matches!(
            DiskSpec::parse("d.img,size=lots"),
            Err(FlagError::DiskSize { size, .. }) if size == "lots"
        ));
        assert!(matches!(DiskSpec::parse("size=0"), Err(FlagError::DiskSize { .. })));
        assert!(matches!(DiskSpec::parse("format=raw"), Err(FlagError::DiskEmpty { .. })));
        // A bare path is only accepted as the first element.
        assert!(matches!(DiskSpec::parse("size=1,d.img"), Err(FlagError::DiskKey { .. })));
    }

    #[test]
    fn publish_values() {
        assert_eq!(
            parse_publish("8080:80").unwrap(),
            Publish { host: 8080, guest: 80, proto: Proto::Tcp }
        );
        assert_eq!(
            parse_publish("5353:53/udp").unwrap(),
            Publish { host: 5353, guest: 53, proto: Proto::Udp }
        );
        for bad in ["80", "0:80", "80:70000", "80:80/sctp", "a:b", ""] {
            assert!(parse_publish(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn networking_values() {
        assert_eq!(parse_networking("user").unwrap(), Networking::User);
        assert_eq!(parse_networking("default").unwrap(), Networking::User);
        assert_eq!(parse_networking("none").unwrap(), Networking::None);
        assert_eq!(parse_networking("tap,tap0").unwrap(), Networking::Tap("tap0".into()));
        assert_eq!(parse_networking("bridge,br0").unwrap(), Networking::Bridge("br0".into()));
        for bad in ["tap", "tap,", "vde", "bridge,"] {
            assert!(parse_networking(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn accel_and_timeout_values() {
        assert_eq!(parse_accel("kvm:tcg").unwrap(), AccelChoice::Auto);
        assert_eq!(parse_accel("tcg").unwrap(), AccelChoice::Tcg);
        assert!(parse_accel("hvf").is_err());
        assert_eq!(parse_timeout("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_timeout("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_timeout("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_timeout("1h").unwrap(), Duration::from_secs(3600));
        for bad in ["", "0", "5d", "m", "-3"] {
            assert!(parse_timeout(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
