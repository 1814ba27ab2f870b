//! `baleen run --netboot URL`: an empty VM whose NIC's iPXE ROM fetches URL.
//!
//! qemu's user network (slirp) answers the ROM's DHCP request with URL as the boot file name
//! (`-netdev user,bootfile=URL`), and iPXE fetches a boot file named by a URL itself. The
//! guest reaches the host's loopback at 10.0.2.2, so a URL on 127.0.0.1 or localhost (as
//! `baleen serve` prints it) is rewritten to that address.
//!
//! Debian's `ipxe-qemu` (1.0.0+git-20190125) has HTTP and TFTP, not HTTPS: `https://` is
//! refused before qemu starts.

use std::path::{Path, PathBuf};

/// The address of the host as qemu's user network shows it to the guest.
pub const USER_NET_HOST: &str = "10.0.2.2";

/// Where qemu (Debian's build) finds the virtio-net iPXE ROM it loads for `virtio-net-pci`.
const VIRTIO_ROMS: &[&str] =
    &["/usr/share/qemu/efi-virtio.rom", "/usr/lib/ipxe/qemu/efi-virtio.rom"];

/// A `--netboot` URL that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum NetbootError {
    #[error(
        "--netboot {url}: only http:// and tftp:// URLs can be fetched (the iPXE ROM of Debian's \
         ipxe-qemu has no HTTPS)"
    )]
    Scheme { url: String },
    #[error("--netboot {url}: {reason}")]
    Malformed { url: String, reason: &'static str },
    #[error(
        "--netboot {url}: qemu's user network reaches the host's IPv4 loopback only; serve on \
         127.0.0.1"
    )]
    Ipv6Loopback { url: String },
    #[error(
        "--netboot needs user networking (got --networking {networking}): its DHCP server is \
         what hands the URL to the iPXE ROM"
    )]
    NeedsUserNetworking { networking: String },
    #[error(
        "--netboot: no iPXE ROM for virtio-net (looked for {searched}); install Debian's \
         ipxe-qemu"
    )]
    NoRom { searched: String },
}

/// The URL as the guest must use it: a host on the host's loopback (127.0.0.0/8, `localhost`,
/// `0.0.0.0`) becomes [`USER_NET_HOST`], the port and path kept.
pub fn guest_url(url: &str) -> Result<String, NetbootError> {
    let malformed = |reason| Err(NetbootError::Malformed { url: url.to_string(), reason });
    if url.chars().any(|c| c.is_control() || c == ' ') {
        return malformed("a URL has no spaces or control characters");
    }
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("tftp") => (s, r),
        Some(_) => return Err(NetbootError::Scheme { url: url.to_string() }),
        None => return malformed("expected http://HOST[:PORT]/PATH"),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return malformed("credentials in the URL would be shown to the guest and in logs");
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            if p.parse::<u16>().is_err() && !authority.starts_with('[') {
                return malformed("the port is not a number");
            }
            (h, Some(p))
        }
        _ => (authority, None),
    };
    if host.is_empty() {
        return malformed("no host");
    }
    if host.starts_with('[') {
        if host == "[::1]" {
            return Err(NetbootError::Ipv6Loopback { url: url.to_string() });
        }
        return Ok(url.to_string());
    }
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host == "0.0.0.0"
        || host.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.is_loopback());
    if !loopback {
        return Ok(url.to_string());
    }
    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!("{scheme}://{USER_NET_HOST}{port}{path}"))
}

/// The ROM qemu will load, or why there is none.
pub fn find_rom() -> Result<PathBuf, NetbootError> {
    VIRTIO_ROMS
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| NetbootError::NoRom { searched: VIRTIO_ROMS.join(", ") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_become_the_user_network_host() {
        for (url, want) in [
            ("http://127.0.0.1:8080/sys.ipxe", "http://10.0.2.2:8080/sys.ipxe"),
            ("http://localhost/sys.ipxe", "http://10.0.2.2/sys.ipxe"),
            ("http://127.1.2.3:80", "http://10.0.2.2:80"),
            ("tftp://0.0.0.0:6969/sys.ipxe", "tftp://10.0.2.2:6969/sys.ipxe"),
            ("HTTP://LOCALHOST:1/a", "HTTP://10.0.2.2:1/a"),
            ("http://boot.example:8080/sys.ipxe", "http://boot.example:8080/sys.ipxe"),
            ("http://192.168.1.5/a.ipxe", "http://192.168.1.5/a.ipxe"),
            ("http://[fe80::1]:80/a", "http://[fe80::1]:80/a"),
        ] {
            assert_eq!(guest_url(url).unwrap(), want, "{url}");
        }
    }

    #[test]
    fn urls_the_rom_cannot_fetch_are_refused_with_why() {
        for (url, want) in [
            ("https://127.0.0.1/a", "no HTTPS"),
            ("127.0.0.1:8080/a", "expected http://"),
            ("http://u:p@127.0.0.1/a", "credentials"),
            ("http://127.0.0.1:x/a", "port"),
            ("http:///a", "no host"),
            ("http://[::1]:8080/a", "IPv4 loopback"),
            ("http://127.0.0.1/a b", "spaces"),
        ] {
            let err = guest_url(url).unwrap_err().to_string();
            assert!(err.contains(want), "{url}: {err}");
        }
    }
}
