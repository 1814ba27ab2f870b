//! Tests of the Debian archive client: index limits, Release checks.

use super::*;
use baleen_testkit::Chain;

/// A verified `Packages.xz` is bounded compressed (InRelease gives its size), but xz turns
/// a few KiB of zeros into gigabytes: decompressing must stop at a limit, not fill memory.
#[test]
fn a_packages_xz_bomb_is_refused_past_the_limit() {
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..8 {
        std::io::Write::write_all(&mut xz, &zeros).unwrap();
    }
    let bomb = xz.finish().unwrap();
    assert!(bomb.len() < 4096, "{} bytes", bomb.len());
    let url = "http://mirror/dists/bookworm/main/binary-amd64/Packages.xz";
    let err = read_packages(&bomb[..], url, 1 << 20).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "decompressing {url}: more than 1048576 bytes, the most a Packages index of its \
                 size may be"
        )
    );
    // Under the limit, the same text comes back.
    assert_eq!(read_packages(&bomb[..], url, 8 << 20).unwrap().len(), 8 << 20);
    // Debian's bookworm main/amd64 index, 9.6 MB compressed and 47 MB plain, fits.
    assert!(packages_limit(9_600_000) >= 400_000_000);
    assert!(packages_limit(4000) >= 64 << 20, "a small index still gets room");
    assert_eq!(packages_limit(u64::MAX), 1 << 30);
}

#[test]
fn release_entries() {
    let r = "Origin: Debian\nSHA256:\n 0123 100 main/binary-amd64/Packages\n abcd 42 main/binary-amd64/Packages.xz\n";
    assert_eq!(release_entry(r, "main/binary-amd64/Packages.xz"), Some(("abcd".into(), 42)));
    assert_eq!(release_entry(r, "main/binary-arm64/Packages.xz"), None);
}

#[test]
fn valid_until_in_the_past_is_refused_naming_suite_and_date() {
    use std::time::{Duration, UNIX_EPOCH};
    let r = "Suite: bookworm\nValid-Until: Sat, 30 Nov 2024 08:15:01 UTC\nSHA256:\n aa 1 x\n";
    let before = UNIX_EPOCH + Duration::from_secs(1_732_954_500); // 08:15:00 that day
    let after = UNIX_EPOCH + Duration::from_secs(1_732_954_502);
    check_valid_until(r, before, "http://m/dists/bookworm/InRelease", "bookworm").unwrap();
    let e = check_valid_until(r, after, "http://m/dists/bookworm/InRelease", "bookworm")
        .unwrap_err()
        .chain();
    assert!(e.contains("bookworm suite") && e.contains("Sat, 30 Nov 2024 08:15:01 UTC"), "{e}");
    assert!(e.contains("check-valid-until: false"), "the opt-out is named: {e}");
    // No field: never expires (Debian's main suites carry none; -security and -updates do).
    check_valid_until("Suite: bookworm\n", after, "u", "bookworm").unwrap();
    let e = check_valid_until("Valid-Until: tomorrow\n", after, "u", "s").unwrap_err();
    assert!(e.chain().contains("\"tomorrow\""), "{e}");
    assert_eq!(
        parse_release_date("Sat, 30 Nov 2024 08:15:01 +0000"),
        parse_release_date("Sat, 30 Nov 2024 08:15:01 UTC")
    );
    assert_eq!(parse_release_date("Sat, 30 Nov 2024 08:15:01 CET"), None);
}

#[test]
fn a_suite_or_arch_escaping_the_cache_is_refused() {
    let cache = Path::new("/cache");
    for bad in ["../x", "..", "/home/u/.config", "a/b", "", ".hidden", "Bookworm", "a b"] {
        let e = Archive::new("http://m", bad, cache).unwrap_err().chain();
        assert!(e.contains(&format!("suite {bad:?} is not a Debian suite name")), "{e}");
    }
    for good in ["bookworm", "bookworm-security", "stable-updates", "1.0+b2"] {
        assert!(Archive::new("http://m", good, cache).is_ok(), "{good}");
    }
    let a = Archive::new("http://m", "bookworm", cache).unwrap().offline(true);
    let e = a.index("../amd64").unwrap_err().chain();
    assert!(e.contains("architecture \"../amd64\" is not a Debian architecture name"), "{e}");
}

#[test]
fn an_endless_inrelease_is_cut_off_at_the_limit() {
    use std::io::Write;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // Streams a little more than the limit, without a length, then closes: a bounded
    // stand-in for a mirror streaming forever.
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        let chunk = vec![b'a'; 1 << 16];
        let mut sent = 0u64;
        while sent <= MAX_INRELEASE + (1 << 20) {
            if s.write_all(&chunk).is_err() {
                break; // the client stopped reading: what the cap is for
            }
            sent += chunk.len() as u64;
        }
    });
    let t = tempfile::tempdir().unwrap();
    let a = Archive::new(&format!("http://127.0.0.1:{port}/debian"), "bookworm", t.path()).unwrap();
    let e = a.index("amd64").unwrap_err().chain();
    server.join().unwrap();
    assert!(
        e.contains(&format!("http://127.0.0.1:{port}/debian/dists/bookworm/InRelease"))
            && e.contains("larger than 16777216 bytes"),
        "{e}"
    );
}

#[test]
fn a_release_must_be_signed_for_the_requested_suite() {
    let r = "Origin: Debian\nSuite: stable-security\nCodename: bookworm-security\n";
    check_suite(r, "u", "bookworm-security").unwrap();
    check_suite(r, "u", "stable-security").unwrap();
    let e = check_suite(r, "http://m/dists/bullseye-security/InRelease", "bullseye-security")
        .unwrap_err()
        .chain();
    assert!(e.contains("\"bookworm-security / stable-security\"") && e.contains("bullseye"), "{e}");
    // A Release naming no suite at all is not for the requested one either.
    assert!(check_suite("Origin: x\n", "u", "bookworm").is_err());
}

#[test]
fn the_shipped_keyring_parses() {
    let keys: Vec<_> =
        SignedPublicKey::from_bytes_many(DEBIAN_KEYRING).unwrap().filter_map(Result::ok).collect();
    assert!(keys.len() >= 6, "{} keys", keys.len());
}

#[test]
fn unsigned_or_tampered_text_is_rejected() {
    let err = verify_inrelease("Origin: Debian\n").unwrap_err();
    assert!(matches!(err, SignatureError::NotClearSigned(_)), "{err}");
}

#[test]
fn size_before_hash() {
    let e = check("package x 1", "http://a/x.deb", "packages.lock", "aa", 10, "bb", 9)
        .unwrap_err()
        .chain();
    assert!(
        e.contains("package x 1") && e.contains("9 bytes") && e.contains("packages.lock"),
        "{e}"
    );
    let e = check("package x 1", "http://a/x.deb", "packages.lock", "aa", 10, "bb", 10)
        .unwrap_err()
        .chain();
    assert!(e.contains("SHA-256 bb") && e.contains("says aa"), "{e}");
}
