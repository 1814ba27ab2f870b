//! Debian changelogs (`usr/share/doc/<package>/changelog.Debian.gz`): which security advisories
//! and CVEs the entries newer than an installed version name.
//!
//! An entry starts with `source (version) distribution; urgency=…` at column 0; its text runs
//! to the next such line. Identifiers are Debian's advisories (`DSA-5678-1`, `DLA-3456-1`) and
//! CVEs (`CVE-2024-12345`). Non-goals: the security tracker's own data (not in the archive's
//! binary suites), changelogs of other packages of the same source.

use super::version::compare;
use std::io::Read;

/// The largest changelog read (bytes, decompressed): a hostile `.deb` cannot make us hold more.
const MAX_CHANGELOG: u64 = 16 << 20;

/// The advisory and CVE identifiers named by the entries of `changelog` whose version is newer
/// than `installed`, in first-seen order without repeats.
pub fn advisories_since(changelog: &str, installed: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    // Repeats are found through a set: a 16 MiB changelog of distinct identifiers would make a
    // search of `out` quadratic.
    let mut seen = std::collections::HashSet::new();
    let mut newer = false;
    for line in changelog.lines() {
        if let Some(version) = entry_version(line) {
            newer = compare(version, installed).is_gt();
            continue;
        }
        if !newer {
            continue;
        }
        for id in identifiers(line) {
            if seen.insert(id.clone()) {
                out.push(id);
            }
        }
    }
    out
}

/// The version of an entry's first line (`openssl (3.0.15-1~deb12u1) bookworm-security; …`).
fn entry_version(line: &str) -> Option<&str> {
    if line.starts_with([' ', '\t']) || line.is_empty() {
        return None;
    }
    let (_, rest) = line.split_once(" (")?;
    let (version, after) = rest.split_once(')')?;
    after.contains(';').then_some(version)
}

/// `DSA-n[-n]`, `DLA-n[-n]` and `CVE-yyyy-n` tokens of a line.
fn identifiers(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = line.as_bytes();
    for prefix in ["DSA-", "DLA-", "CVE-"] {
        let mut from = 0;
        while let Some(i) = line[from..].find(prefix) {
            let start = from + i;
            let mut end = start + prefix.len();
            let mut groups = 0;
            // Digit groups joined by single dashes: DSA-5678-1, CVE-2024-12345.
            loop {
                let digits = bytes[end..].iter().take_while(|b| b.is_ascii_digit()).count();
                if digits == 0 {
                    break;
                }
                end += digits;
                groups += 1;
                if bytes.get(end) == Some(&b'-')
                    && bytes.get(end + 1).is_some_and(u8::is_ascii_digit)
                {
                    end += 1;
                } else {
                    break;
                }
            }
            let boundary = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
            let enough = if prefix == "CVE-" { groups >= 2 } else { groups >= 1 };
            if enough && boundary {
                out.push(line[start..end].to_owned());
            }
            from = start + prefix.len();
        }
    }
    out
}

/// The changelog text of package `name` in the `.deb` at `path`: `changelog.Debian.gz`, else
/// `changelog.gz` (native packages) of `usr/share/doc/<name>/`; `None` when it has neither as a
/// regular file (a doc directory symlinked to another package's, as library packages do).
pub fn read_from_deb(path: &std::path::Path, name: &str) -> std::io::Result<Option<String>> {
    let f = std::fs::File::open(path)?;
    let mut ar = ar::Archive::new(std::io::BufReader::new(f));
    while let Some(member) = ar.next_entry() {
        let member = member?;
        let id = String::from_utf8_lossy(member.header().identifier()).into_owned();
        let data: Box<dyn Read> = match id.as_str() {
            "data.tar.xz" => Box::new(liblzma::read::XzDecoder::new(member)),
            "data.tar.zst" => Box::new(zstd::stream::read::Decoder::new(member)?),
            "data.tar.gz" => Box::new(flate2::read::GzDecoder::new(member)),
            "data.tar" => Box::new(member),
            _ => continue,
        };
        let wanted = [
            format!("usr/share/doc/{name}/changelog.Debian.gz"),
            format!("usr/share/doc/{name}/changelog.gz"),
        ];
        let mut found: Option<(usize, String)> = None;
        let mut archive = tar::Archive::new(data);
        for entry in archive.entries()? {
            let entry = entry?;
            let p =
                String::from_utf8_lossy(&entry.path_bytes()).trim_start_matches("./").to_owned();
            let Some(rank) = wanted.iter().position(|w| *w == p) else { continue };
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let text = decompress(entry)?;
            if found.as_ref().is_none_or(|(r, _)| rank < *r) {
                found = Some((rank, text));
            }
        }
        return Ok(found.map(|(_, t)| t));
    }
    Ok(None)
}

/// A gzipped changelog as text: old entries are often Latin-1 (maintainers' names), so bytes
/// that are not UTF-8 become U+FFFD rather than failing the read.
fn decompress(r: impl Read) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(r).take(MAX_CHANGELOG).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
openssl (3.0.15-1~deb12u1) bookworm-security; urgency=medium

  * Import 3.0.15 (DSA-5800-1).
    - CVE-2024-5535, CVE-2024-9143 (see also DLA-4000-2).

 -- Sebastian Andrzej Siewior <sebastian@breakpoint.cc>  Sat, 12 Oct 2024 10:00:00 +0200

openssl (3.0.14-1~deb12u2) bookworm; urgency=medium

  * CVE-2024-4741.

 -- Someone <x@y>  Mon, 1 Jul 2024 10:00:00 +0200

openssl (3.0.11-1~deb12u2) bookworm-security; urgency=medium

  * Fix CVE-2023-5678 (DSA-5532-1).
";

    #[test]
    fn identifiers_of_the_entries_newer_than_the_installed_version() {
        assert_eq!(
            advisories_since(LOG, "3.0.14-1~deb12u2"),
            ["DSA-5800-1", "DLA-4000-2", "CVE-2024-5535", "CVE-2024-9143"]
        );
        // `~` sorts before the end: 3.0.14-1~deb12u1 is older than 3.0.14-1~deb12u2.
        let older = advisories_since(LOG, "3.0.14-1~deb12u1");
        assert!(older.contains(&"CVE-2024-4741".to_owned()), "{older:?}");
        assert!(!older.contains(&"DSA-5532-1".to_owned()), "{older:?}");
        assert!(advisories_since(LOG, "3.0.15-1~deb12u1").is_empty());
    }

    /// libpam0g's changelog has a Latin-1 name in an old entry: reading it failed with
    /// "stream did not contain valid UTF-8" and its advisories were lost.
    #[test]
    fn a_changelog_that_is_not_utf8_is_still_read() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"pam (1.5.2-6+deb12u3) bookworm-security; urgency=medium\n\n  * CVE-2025-6020.\n\n -- Steve Langasek\n\npam (0.1) unstable; urgency=low\n\n  * Jos\xe9\n").unwrap();
        let text = decompress(&gz.finish().unwrap()[..]).unwrap();
        assert_eq!(advisories_since(&text, "1.5.2-6+deb12u2"), ["CVE-2025-6020"]);
        assert!(text.contains("Jos\u{fffd}"), "{text}");
    }

    /// Repeats were found by searching the output: a changelog near the 16 MiB cap naming
    /// distinct identifiers took quadratic time (200 000 of them: minutes; the watchdog makes
    /// that a failure rather than a hang). First-seen order is kept.
    #[test]
    fn many_distinct_identifiers_are_deduplicated_in_linear_time() {
        let n = 200_000;
        let mut log = String::from("x (2) bookworm; urgency=low\n");
        for i in 0..n {
            log.push_str(&format!("  * CVE-2024-{i} and again CVE-2024-{i}.\n"));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(advisories_since(&log, "1")));
        let ids = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("deduplicating 200 000 identifiers did not finish: quadratic?");
        assert_eq!(ids.len(), n);
        assert_eq!((ids[0].as_str(), ids[n - 1].as_str()), ("CVE-2024-0", "CVE-2024-199999"));
    }

    #[test]
    fn tokens_need_digits_and_a_boundary() {
        assert_eq!(identifiers("XDSA-1 DSA- CVE-2024- DSA-12"), ["DSA-12"]);
    }
}
