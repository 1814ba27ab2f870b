//! A Debian archive over plain HTTP, verified end to end: `InRelease` must carry a valid OpenPGP
//! signature by one of Debian's archive keys (shipped in `crates/pkg/keys/`, so non-Debian hosts
//! work), `Packages.xz` must match the SHA-256 that InRelease lists, and each `.deb` must match
//! the size and SHA-256 of its `Packages` entry (or of `packages.lock`).
//!
//! Downloads are cached under the cache directory keyed by SHA-256, so a rebuild with a lock file
//! is offline. An InRelease past its `Valid-Until` date is refused (apt's `Check-Valid-Until`),
//! unless the caller opts out; so is one signed for another suite (its `Codename` or `Suite`
//! must be the one asked for), one dated before the cached copy (a replay), and one over
//! [`MAX_INRELEASE`] bytes. Suite and architecture names are plain Debian names, never paths.
//! Non-goals: key-expiry checks, `by-hash` URLs, diffs (`pdiff`).

use super::resolve::Index;
use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Parsed indexes by `<arch> <sha256 of Packages.xz>`.
static INDEXES: Mutex<std::collections::BTreeMap<String, Arc<Index>>> =
    Mutex::new(std::collections::BTreeMap::new());

/// Debian's archive keys (`debian-archive-keyring.gpg` of Debian 12's `debian-archive-keyring`).
const DEBIAN_KEYRING: &[u8] = include_bytes!("../../keys/debian-archive-keyring.gpg");

/// How long a fetched InRelease is reused before asking the archive again.
const INRELEASE_MAX_AGE: Duration = Duration::from_secs(6 * 3600);

/// The largest InRelease read (bytes): Debian's are under 200 KiB; a hostile mirror streaming
/// without end must not exhaust memory.
pub const MAX_INRELEASE: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("fetching {url}: {message}")]
    Fetch { url: String, message: String },
    #[error("fetching {url}")]
    FetchIo { url: String, source: std::io::Error },
    #[error("{url}: no valid signature by {keys}")]
    Signature { url: String, keys: String, source: SignatureError },
    #[error("{url} lists no SHA256 entry for {path}")]
    NoIndex { url: String, path: String },
    #[error("{what} from {url}: SHA-256 {actual}, but {source_of_truth} says {expected}")]
    Hash { what: String, url: String, actual: String, expected: String, source_of_truth: String },
    #[error("{what} from {url}: {actual} bytes, but {source_of_truth} says {expected}")]
    Size { what: String, url: String, actual: u64, expected: u64, source_of_truth: String },
    #[error("{action} {path}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("decompressing {url}")]
    Decompress { url: String, source: std::io::Error },
    #[error("decompressing {url}: more than {limit} bytes, the most a Packages index of its size may be")]
    IndexTooLarge { url: String, limit: u64 },
    #[error("{url}: the {suite} suite's Release expired on {valid_until} (its Valid-Until); the mirror is stale or replays an old Release: use another mirror, or allow it with `check-valid-until: false` in build.yml's debian section")]
    Expired { url: String, suite: String, valid_until: String },
    #[error("package {package} is locked from suite {suite}, which build.yml does not use (debian.security); run `baleen pkg lock`")]
    UnknownSuite { package: String, suite: String },
    #[error("downloading {what}")]
    Download { what: String, source: Box<ArchiveError> },
    #[error("{url}: Valid-Until {value:?} is not a date like \"Sat, 30 Nov 2024 08:15:01 UTC\"")]
    BadDate { url: String, value: String },
    #[error("{what} {value:?} is not a Debian {what} name (lowercase letters, digits and `.+-`, starting with a letter or digit)")]
    BadName { what: &'static str, value: String },
    #[error("fetching {url}: larger than {limit} bytes, the most an InRelease may be")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: signed for suite {signed:?} (Codename/Suite), not the requested {requested}; the mirror serves another suite's Release")]
    WrongSuite { url: String, signed: String, requested: String },
    #[error("{url}: its Release is dated {date}, older than the {newest} one already seen from this mirror; the mirror replays an old Release")]
    Replayed { url: String, date: String, newest: String },
    #[error("{url}: not in the cache ({cache}) and not fetched (offline); run once with the network to cache it")]
    NotCached { url: String, cache: PathBuf },
}

/// How current an index is: the age of the InRelease it was read through, and whether it is a
/// cached copy used because the archive could not be asked (offline, or unreachable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freshness {
    pub age: Duration,
    pub offline: bool,
}

/// What a `.deb` must be: pool path, size and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebRef {
    pub name: String,
    pub version: String,
    pub filename: String,
    pub sha256: String,
    pub size: u64,
    /// The suite it comes from when not the package's main suite (`bookworm-security`).
    pub suite: Option<String>,
}

/// One suite of one archive, with a download cache.
#[derive(Debug)]
pub struct Archive {
    pub mirror: String,
    pub suite: String,
    cache: PathBuf,
    agent: ureq::Agent,
    check_valid_until: bool,
    keyring: std::borrow::Cow<'static, [u8]>,
    /// Whose keys those are, for errors: "a Debian archive key" or "a key of <file>".
    keys: String,
    /// How downloads report on stderr.
    progress: baleen_oci::Progress,
    /// Never fetch: only cached InRelease, indexes and `.deb`s.
    offline: bool,
    /// Use a cached InRelease when the archive cannot be reached (its `Valid-Until` unchecked).
    stale_ok: bool,
    /// The archive components whose indexes are read, `main` first.
    components: Vec<String>,
}

impl Archive {
    /// `mirror` is the archive root (`http://deb.debian.org/debian`), `cache` a directory such as
    /// `~/.baleen/cache/debian`. The suite names a directory of the cache: one that is not a
    /// plain Debian name ([`valid_name`]) is refused, so no suite escapes the cache.
    pub fn new(mirror: &str, suite: &str, cache: &Path) -> Result<Archive, ArchiveError> {
        if !valid_name(suite) {
            return Err(ArchiveError::BadName { what: "suite", value: suite.to_owned() });
        }
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(20)))
            .timeout_recv_body(Some(Duration::from_secs(300)))
            .build();
        Ok(Archive {
            mirror: mirror.trim_end_matches('/').to_owned(),
            suite: suite.to_owned(),
            cache: cache.to_owned(),
            agent: ureq::Agent::new_with_config(config),
            check_valid_until: true,
            keyring: std::borrow::Cow::Borrowed(DEBIAN_KEYRING),
            keys: "a Debian archive key".to_owned(),
            progress: baleen_oci::Progress::Silent,
            offline: false,
            stale_ok: false,
            components: vec!["main".to_owned()],
        })
    }

    /// Reads the `Packages` indexes of `extra` components too (`non-free-firmware`), after
    /// `main`'s. Each must be a plain Debian name.
    pub fn with_components(mut self, extra: &[String]) -> Result<Archive, ArchiveError> {
        for c in extra {
            if !valid_name(c) {
                return Err(ArchiveError::BadName { what: "component", value: c.clone() });
            }
            if !self.components.contains(c) {
                self.components.push(c.clone());
            }
        }
        Ok(self)
    }

    /// For reports on what is cached (`baleen audit`): with `offline`, nothing is fetched;
    /// without, a cached InRelease still stands in when the archive cannot be reached. Either
    /// way a cached InRelease's signature is checked and its `Valid-Until` is not: the caller
    /// states its age ([`Archive::index_with_freshness`]) instead. Never for builds.
    pub fn offline(mut self, offline: bool) -> Archive {
        self.offline = offline;
        self.stale_ok = true;
        self
    }

    /// Reports each download (an index, a `.deb`) through `progress`.
    pub fn with_progress(mut self, progress: baleen_oci::Progress) -> Archive {
        self.progress = progress;
        self
    }

    /// Trusts the keys of this binary keyring instead of Debian's (a private archive, tests);
    /// `name` says whose they are in errors (`a key of pkg/x/archive.gpg`).
    pub fn with_keyring(mut self, keyring: Vec<u8>, name: &str) -> Archive {
        self.keyring = std::borrow::Cow::Owned(keyring);
        self.keys = name.to_owned();
        self
    }

    /// Whether an InRelease past its `Valid-Until` is refused (the default, as apt).
    pub fn check_valid_until(mut self, check: bool) -> Archive {
        self.check_valid_until = check;
        self
    }

    /// The verified `Packages` index of `main` (and the components added by
    /// [`Archive::with_components`]) for `arch`. Parsed once per process for each
    /// `Packages.xz` digest: `pkg lock` of many packages reads the 40 MB index once.
    pub fn index(&self, arch: &str) -> Result<Arc<Index>, ArchiveError> {
        self.index_with_freshness(arch).map(|(idx, _)| idx)
    }

    /// [`Archive::index`] and how current it is.
    pub fn index_with_freshness(
        &self,
        arch: &str,
    ) -> Result<(Arc<Index>, Freshness), ArchiveError> {
        if !valid_name(arch) {
            return Err(ArchiveError::BadName { what: "architecture", value: arch.to_owned() });
        }
        let url = format!("{}/dists/{}/InRelease", self.mirror, self.suite);
        let (release, freshness) = self.inrelease(&url)?;
        // Every component's index, verified, then parsed as one: a package is looked up in
        // all of them.
        let mut entries = Vec::new();
        for component in &self.components {
            let path = format!("{component}/binary-{arch}/Packages.xz");
            let (sha256, size) = release_entry(&release, &path)
                .ok_or_else(|| ArchiveError::NoIndex { url: url.clone(), path: path.clone() })?;
            entries.push((path, sha256, size));
        }
        let memo_key = std::iter::once(arch.to_owned())
            .chain(entries.iter().map(|(_, sha256, _)| sha256.clone()))
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(idx) = INDEXES.lock().expect("index memo lock").get(&memo_key) {
            return Ok((idx.clone(), freshness));
        }
        let mut text = String::new();
        for (path, sha256, size) in &entries {
            let pkgs_url = format!("{}/dists/{}/{path}", self.mirror, self.suite);
            let what = format!("{} {path}", self.suite);
            let file = self.fetch_verified(&pkgs_url, &what, sha256, *size, &url)?;
            let f = std::fs::File::open(&file).map_err(|source| ArchiveError::Io {
                action: "opening",
                path: file.clone(),
                source,
            })?;
            text.push_str(&read_packages(
                std::io::BufReader::new(f),
                &pkgs_url,
                packages_limit(*size),
            )?);
            text.push('\n');
        }
        let idx = Arc::new(Index::parse(arch, &text));
        INDEXES.lock().expect("index memo lock").insert(memo_key, idx.clone());
        Ok((idx, freshness))
    }

    /// The path of the verified `.deb` in the cache, downloading it if needed.
    pub fn fetch_deb(&self, deb: &DebRef) -> Result<PathBuf, ArchiveError> {
        let url = format!("{}/{}", self.mirror, deb.filename);
        let what = format!("package {} {}", deb.name, deb.version);
        self.fetch_verified(&url, &what, &deb.sha256, deb.size, "the package index").map_err(|e| {
            match e {
                // The transfer failed: say which package it was for (a hash or size mismatch
                // already names it).
                ArchiveError::Fetch { .. } | ArchiveError::FetchIo { .. } => {
                    ArchiveError::Download { what, source: Box::new(e) }
                }
                e => e,
            }
        })
    }

    /// The signed text of InRelease, verified; reused from the cache while fresh.
    fn inrelease(&self, url: &str) -> Result<(String, Freshness), ArchiveError> {
        let cached = self
            .cache
            .join("dists")
            .join(&self.suite)
            .join(sanitize(&self.mirror))
            .join("InRelease");
        let age = std::fs::metadata(&cached)
            .and_then(|m| m.modified())
            .ok()
            .map(|t| t.elapsed().unwrap_or_default());
        if age.is_some_and(|age| age < INRELEASE_MAX_AGE) || (self.offline && age.is_some()) {
            if let Ok(text) = std::fs::read_to_string(&cached) {
                let age = age.unwrap_or_default();
                // Verified on every use, cached or not: the cache is not trusted more than the
                // network. A cached copy that expired since is fetched again.
                let checked =
                    if self.offline { self.signed(&text, url) } else { self.verified(&text, url) };
                match checked {
                    Err(ArchiveError::Expired { .. }) => {}
                    r => return r.map(|t| (t, Freshness { age, offline: self.offline })),
                }
            }
        }
        if self.offline {
            return Err(ArchiveError::NotCached { url: url.to_owned(), cache: cached });
        }
        let mut text = String::new();
        let fetched = self.get(url).and_then(|r| read_capped(r, url, MAX_INRELEASE, &mut text));
        match fetched {
            Ok(_) => {}
            Err(e @ (ArchiveError::Fetch { .. } | ArchiveError::FetchIo { .. }))
                if self.stale_ok =>
            {
                let Ok(text) = std::fs::read_to_string(&cached) else { return Err(e) };
                tracing::warn!("{}; using the cached copy", crate::chain(&e));
                let signed = self.signed(&text, url)?;
                let age = age.unwrap_or_default();
                return Ok((signed, Freshness { age, offline: true }));
            }
            Err(e) => return Err(e),
        }
        let signed = self.verified(&text, url)?;
        // The cached copy is the newest accepted: an older one now is a replay.
        if let Some(newest) =
            std::fs::read_to_string(&cached).ok().and_then(|old| self.signed(&old, url).ok())
        {
            check_not_older(&signed, &newest, url)?;
        }
        write_atomic(&cached, text.as_bytes())?;
        Ok((signed, Freshness { age: Duration::ZERO, offline: false }))
    }

    /// The signed text of an InRelease, if signed by a trusted key for this suite (whatever its
    /// dates).
    fn signed(&self, text: &str, url: &str) -> Result<String, ArchiveError> {
        let signed = verify_with(text, &self.keyring).map_err(|source| {
            ArchiveError::Signature { url: url.to_owned(), keys: self.keys.clone(), source }
        })?;
        check_suite(&signed, url, &self.suite)?;
        Ok(signed)
    }

    /// The signed text of an InRelease, if signed by a trusted key and not expired.
    fn verified(&self, text: &str, url: &str) -> Result<String, ArchiveError> {
        let signed = self.signed(text, url)?;
        if self.check_valid_until {
            check_valid_until(&signed, std::time::SystemTime::now(), url, &self.suite)?;
        }
        Ok(signed)
    }

    fn get(&self, url: &str) -> Result<impl Read, ArchiveError> {
        if self.offline {
            return Err(ArchiveError::NotCached {
                url: url.to_owned(),
                cache: self.cache.join("by-hash"),
            });
        }
        let resp = self
            .agent
            .get(url)
            .call()
            .map_err(|e| ArchiveError::Fetch { url: url.to_owned(), message: e.to_string() })?;
        Ok(resp.into_body().into_with_config().limit(u64::MAX).reader())
    }

    /// Downloads `url` into the cache under its SHA-256 unless already there, checking size and
    /// hash either way.
    fn fetch_verified(
        &self,
        url: &str,
        what: &str,
        sha256: &str,
        size: u64,
        truth: &str,
    ) -> Result<PathBuf, ArchiveError> {
        let dest = self.cache.join("by-hash").join(sha256);
        if dest.is_file() {
            let (actual, n) = hash_file(&dest)?;
            if actual == sha256 && n == size {
                return Ok(dest);
            }
            // A damaged cache entry is refetched, not trusted and not fatal.
            tracing::warn!("cached {what} at {} is damaged; fetching it again", dest.display());
        }
        let dir = dest.parent().expect("by-hash has a parent");
        std::fs::create_dir_all(dir).map_err(|source| ArchiveError::Io {
            action: "creating",
            path: dir.to_owned(),
            source,
        })?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|source| ArchiveError::Io {
            action: "creating a file in",
            path: dir.to_owned(),
            source,
        })?;
        let mut hasher = Sha256::new();
        let mut reader = self.get(url)?;
        let mut buf = vec![0u8; 1 << 16];
        let mut n: u64 = 0;
        let transfer = self.progress.transfer("downloaded", what.to_owned(), size);
        loop {
            let k = reader
                .read(&mut buf)
                .map_err(|source| ArchiveError::FetchIo { url: url.to_owned(), source })?;
            if k == 0 {
                break;
            }
            transfer.inc(k as u64);
            n += k as u64;
            if n > size {
                break; // more than announced: stop reading, report below
            }
            hasher.update(&buf[..k]);
            tmp.write_all(&buf[..k]).map_err(|source| ArchiveError::Io {
                action: "writing",
                path: tmp.path().to_owned(),
                source,
            })?;
        }
        check(what, url, truth, sha256, size, &hex::encode(hasher.finalize()), n)?;
        transfer.finish(n);
        tmp.persist(&dest).map_err(|e| ArchiveError::Io {
            action: "storing",
            path: dest.clone(),
            source: e.error,
        })?;
        Ok(dest)
    }
}

/// Checks a download against what a signed source says; size first, as it explains most hash
/// mismatches (truncation).
pub fn check(
    what: &str,
    url: &str,
    truth: &str,
    sha256: &str,
    size: u64,
    actual: &str,
    n: u64,
) -> Result<(), ArchiveError> {
    if n != size {
        return Err(ArchiveError::Size {
            what: what.to_owned(),
            url: url.to_owned(),
            actual: n,
            expected: size,
            source_of_truth: truth.to_owned(),
        });
    }
    if actual != sha256 {
        return Err(ArchiveError::Hash {
            what: what.to_owned(),
            url: url.to_owned(),
            actual: actual.to_owned(),
            expected: sha256.to_owned(),
            source_of_truth: truth.to_owned(),
        });
    }
    Ok(())
}

/// SHA-256 and length of a file.
pub fn hash_file(path: &Path) -> Result<(String, u64), ArchiveError> {
    let mut f = std::fs::File::open(path).map_err(|source| ArchiveError::Io {
        action: "opening",
        path: path.to_owned(),
        source,
    })?;
    let mut h = Sha256::new();
    let n = std::io::copy(&mut f, &mut h).map_err(|source| ArchiveError::Io {
        action: "reading",
        path: path.to_owned(),
        source,
    })?;
    Ok((hex::encode(h.finalize()), n))
}

/// Whether `name` is a plain Debian suite or architecture name: `[a-z0-9][a-z0-9.+-]*`. Such a
/// name never holds `/` and never starts with `.`, so it is one directory of the cache, never
/// `..` nor an absolute path.
pub fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

/// Reads at most `limit` bytes of `r` into `text`; more is an error naming `url` and the limit.
fn read_capped(r: impl Read, url: &str, limit: u64, text: &mut String) -> Result<(), ArchiveError> {
    let n = r
        .take(limit.saturating_add(1))
        .read_to_string(text)
        .map_err(|source| ArchiveError::FetchIo { url: url.to_owned(), source })?;
    if u64::try_from(n).map_or(true, |n| n > limit) {
        return Err(ArchiveError::TooLarge { url: url.to_owned(), limit });
    }
    Ok(())
}

/// The most any `Packages` index is decompressed to (Debian's largest is under 100 MB).
pub const MAX_PACKAGES: u64 = 1 << 30;

/// The most a `Packages.xz` of `xz_size` bytes may decompress to: 100 times its size (Debian's
/// compress about 5:1), at least 64 MiB, at most [`MAX_PACKAGES`].
pub fn packages_limit(xz_size: u64) -> u64 {
    xz_size.saturating_mul(100).clamp(64 << 20, MAX_PACKAGES)
}

/// The text of a `Packages.xz` (verified against InRelease), decompressed up to `limit` bytes:
/// a verified file is bounded compressed, but a few KiB of xz can expand to gigabytes.
fn read_packages(xz: impl Read, url: &str, limit: u64) -> Result<String, ArchiveError> {
    let mut text = String::new();
    let n = liblzma::read::XzDecoder::new(xz)
        .take(limit.saturating_add(1))
        .read_to_string(&mut text)
        .map_err(|source| ArchiveError::Decompress { url: url.to_owned(), source })?;
    if u64::try_from(n).map_or(true, |n| n > limit) {
        return Err(ArchiveError::IndexTooLarge { url: url.to_owned(), limit });
    }
    Ok(text)
}

/// Refuses a (verified) Release text signed for another suite: a mirror could otherwise serve a
/// genuinely signed Release of `bullseye-security` for `bookworm-security`. Debian's Release
/// carries both `Codename` (`bookworm-security`) and `Suite` (`stable-security`); either may
/// match, as a suite may be asked for by either name.
pub fn check_suite(release: &str, url: &str, suite: &str) -> Result<(), ArchiveError> {
    let para = super::control::parse(release).into_iter().next().unwrap_or_default();
    let names: Vec<&str> =
        ["Codename", "Suite"].iter().filter_map(|k| para.get(k).map(str::trim)).collect();
    if names.contains(&suite) {
        return Ok(());
    }
    Err(ArchiveError::WrongSuite {
        url: url.to_owned(),
        signed: names.join(" / "),
        requested: suite.to_owned(),
    })
}

/// Refuses a (verified) Release whose `Date` is before that of `newest`, the newest Release
/// accepted so far from the same mirror and suite. Without a parsable `Date` on either side,
/// nothing is compared.
pub fn check_not_older(release: &str, newest: &str, url: &str) -> Result<(), ArchiveError> {
    let date = |text: &str| {
        let para = super::control::parse(text).into_iter().next()?;
        let value = para.get("Date")?.trim().to_owned();
        parse_release_date(&value).map(|t| (t, value))
    };
    match (date(release), date(newest)) {
        (Some((t, value)), Some((newest_t, newest))) if t < newest_t => {
            Err(ArchiveError::Replayed { url: url.to_owned(), date: value, newest })
        }
        _ => Ok(()),
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ArchiveError> {
    let dir = path.parent().expect("cache paths have parents");
    std::fs::create_dir_all(dir).map_err(|source| ArchiveError::Io {
        action: "creating",
        path: dir.to_owned(),
        source,
    })?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|source| ArchiveError::Io {
        action: "creating a file in",
        path: dir.to_owned(),
        source,
    })?;
    tmp.write_all(bytes).map_err(|source| ArchiveError::Io {
        action: "writing",
        path: path.to_owned(),
        source,
    })?;
    tmp.persist(path).map_err(|e| ArchiveError::Io {
        action: "storing",
        path: path.to_owned(),
        source: e.error,
    })?;
    Ok(())
}

fn sanitize(url: &str) -> String {
    url.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect()
}

/// Why an InRelease's signature was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("not a clear-signed message")]
    NotClearSigned(#[source] Box<pgp::errors::Error>),
    #[error("reading the keyring")]
    Keyring(#[source] Box<pgp::errors::Error>),
    #[error("{signatures} signature(s), none made by one of {keys} trusted keys")]
    Untrusted { signatures: usize, keys: usize },
}

/// Verifies a clear-signed InRelease against Debian's archive keys (primary keys and subkeys) and
/// returns the signed text. Any one valid signature suffices, as with apt.
pub fn verify_inrelease(text: &str) -> Result<String, SignatureError> {
    verify_with(text, DEBIAN_KEYRING)
}

/// Debian's archive keys as a binary keyring: what an archive is checked with unless given
/// another (`baleen audit --keyring` trusts more keys beside them).
pub fn debian_keyring() -> &'static [u8] {
    DEBIAN_KEYRING
}

/// How many OpenPGP public keys a binary keyring holds (0 for an armored or foreign file).
pub fn keyring_keys(keyring: &[u8]) -> usize {
    SignedPublicKey::from_bytes_many(keyring).map_or(0, |keys| keys.filter(Result::is_ok).count())
}

/// [`verify_inrelease`] with another binary keyring (tests).
pub fn verify_with(text: &str, keyring: &[u8]) -> Result<String, SignatureError> {
    let (msg, _) = CleartextSignedMessage::from_string(text)
        .map_err(|e| SignatureError::NotClearSigned(Box::new(e)))?;
    let keys: Vec<SignedPublicKey> = SignedPublicKey::from_bytes_many(keyring)
        .map_err(|e| SignatureError::Keyring(Box::new(e)))?
        .filter_map(Result::ok)
        .collect();
    for key in &keys {
        if msg.verify(key).is_ok() {
            return Ok(msg.signed_text().replace("\r\n", "\n"));
        }
        for sub in &key.public_subkeys {
            if msg.verify(sub).is_ok() {
                return Ok(msg.signed_text().replace("\r\n", "\n"));
            }
        }
    }
    Err(SignatureError::Untrusted { signatures: msg.signatures().len(), keys: keys.len() })
}

/// Refuses a (verified) Release text whose `Valid-Until` is before `now`. A Release without the
/// field never expires, as with apt. A signature alone does not stop a mirror from serving an old
/// Release forever (and with it old, vulnerable packages): the date does.
pub fn check_valid_until(
    release: &str,
    now: std::time::SystemTime,
    url: &str,
    suite: &str,
) -> Result<(), ArchiveError> {
    let Some(para) = super::control::parse(release).into_iter().next() else { return Ok(()) };
    let Some(value) = para.get("Valid-Until").map(str::trim) else { return Ok(()) };
    let until = parse_release_date(value)
        .ok_or_else(|| ArchiveError::BadDate { url: url.to_owned(), value: value.to_owned() })?;
    if now > until {
        return Err(ArchiveError::Expired {
            url: url.to_owned(),
            suite: suite.to_owned(),
            valid_until: value.to_owned(),
        });
    }
    Ok(())
}

/// A Release date: RFC 2822 as Debian writes it, `Sat, 30 Nov 2024 08:15:01 UTC` (`UTC`, `GMT`
/// or `+0000`). httpdate parses the same layout with `GMT`.
fn parse_release_date(value: &str) -> Option<std::time::SystemTime> {
    let (stamp, zone) = value.rsplit_once(' ')?;
    if !matches!(zone, "UTC" | "GMT" | "+0000" | "Z") {
        return None;
    }
    httpdate::parse_http_date(&format!("{stamp} GMT")).ok()
}

/// The `(sha256, size)` of `path` in a Release file's `SHA256:` list.
pub fn release_entry(release: &str, path: &str) -> Option<(String, u64)> {
    let para = super::control::parse(release).into_iter().next()?;
    para.get("SHA256")?.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        let (hash, size, p) = (w.next()?, w.next()?, w.next()?);
        (p == path).then(|| (hash.to_owned(), size.parse().unwrap_or(0)))
    })
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;
