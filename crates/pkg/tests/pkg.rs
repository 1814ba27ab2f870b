//! End-to-end tests of `baleen pkg` against the real Debian archive (the one the host's apt
//! sources name), with downloads cached under `target/baleen-test-cache/debian` so reruns are
//! offline-fast. Bad input: tampered content, a stale lock, an unreachable archive.

use baleen_pkg::image::{LayoutDir, Sink};
use baleen_pkg::Options;
use baleen_testkit::Chain;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

fn options() -> Options {
    let mut o = Options::new();
    o.cache = baleen_testkit::kernel::cache_dir().join("debian");
    o
}

const BUSYBOX_PKG: &str = "\
image: bb
debian:
  packages: [busybox-static]
files:
  - {path: /etc/motd, contents: \"hello\\n\"}
symlinks:
  - {target: /bin/busybox, paths: [/bin/sh]}
config:
  cmd: [/bin/sh]
label:
  readonly: true
";

/// Options reaching the archive at `http://127.0.0.1:PORT/debian`, caching in `cache`.
fn mirror_options(cache: PathBuf, port: u16) -> Options {
    let mut o = options();
    o.cache = cache;
    o.mirror = Some(format!("http://127.0.0.1:{port}/debian"));
    o
}

fn pkg_dir(root: &Path, yml: &str) -> PathBuf {
    let d = root.join("bb");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("build.yml"), yml).unwrap();
    d
}

/// Locks busybox-static, or returns None (skip) when the archive is unreachable and the suite is
/// not run under `cargo xtask test`.
/// The archive index is resolved once per test binary; each test gets a copy of the lock.
fn locked_busybox(root: &Path) -> Option<PathBuf> {
    static LOCK: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let text = LOCK.get_or_init(|| {
        let t = tempfile::tempdir().unwrap();
        let d = pkg_dir(t.path(), BUSYBOX_PKG);
        match baleen_pkg::lock(&d, &options()) {
            Ok(_) => Some(std::fs::read_to_string(d.join("packages.lock")).unwrap()),
            Err(e) if !baleen_testkit::tools_required() && e.chain().contains("fetching") => {
                eprintln!("skipping: the Debian archive is unreachable: {e}");
                None
            }
            Err(e) => panic!("{e}"),
        }
    });
    let d = pkg_dir(root, BUSYBOX_PKG);
    std::fs::write(d.join("packages.lock"), text.as_ref()?).unwrap();
    Some(d)
}

/// The path of blob `digest` (`sha256:…`) in the OCI layout `layout`.
fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
}

/// Blob `digest` of `layout`, parsed as JSON (an index, manifest or config).
fn blob_json(layout: &Path, digest: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(blob(layout, digest)).unwrap()).unwrap()
}

fn layer_listing(layout: &Path, index_digest: &str) -> Vec<String> {
    let index = blob_json(layout, index_digest);
    let m = blob_json(layout, index["manifests"][0]["digest"].as_str().unwrap());
    let cfg = blob_json(layout, m["config"]["digest"].as_str().unwrap());
    assert_eq!(cfg["config"]["Labels"]["org.mobyproject.config"], r#"{"readonly":true}"#);
    assert_eq!(cfg["config"]["Cmd"][0], "/bin/sh");
    let f = std::fs::File::open(blob(layout, m["layers"][0]["digest"].as_str().unwrap())).unwrap();
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
    a.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect()
}

#[test]
fn busybox_resolves_fetches_verified_and_builds_twice_to_the_same_digest() {
    let t = tempfile::tempdir().unwrap();
    let Some(d) = locked_busybox(t.path()) else { return };
    let lock = std::fs::read_to_string(d.join("packages.lock")).unwrap();
    assert!(lock.contains("amd64 busybox-static "), "{lock}");

    let mut a = LayoutDir::create(&t.path().join("a")).unwrap();
    let first = baleen_pkg::build(&d, &options(), &mut a, false).unwrap();
    let mut b = LayoutDir::create(&t.path().join("b")).unwrap();
    let second = baleen_pkg::build(&d, &options(), &mut b, false).unwrap();
    assert!(first.built && second.built);
    assert_eq!(first.digest, second.digest, "same inputs must give the same image");
    assert_eq!(first.tag.to_string(), baleen_pkg::show_tag(&d).unwrap());

    // Already there: not rebuilt unless forced.
    let again = baleen_pkg::build(&d, &options(), &mut a, false).unwrap();
    assert!(!again.built);
    assert_eq!(a.lookup(&first.tag.to_string()).unwrap().digest, first.digest);

    let files = layer_listing(&t.path().join("a"), &first.digest);
    for want in ["bin/busybox", "bin/sh", "etc/motd"] {
        assert!(files.iter().any(|f| f == want), "{want} missing from {files:?}");
    }
    assert!(!files.iter().any(|f| f.starts_with("usr/share/doc/")), "docs are dropped: {files:?}");
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted, "layer entries are sorted");
}

#[test]
fn a_stale_lock_is_refused_with_the_command_that_fixes_it() {
    let t = tempfile::tempdir().unwrap();
    let Some(d) = locked_busybox(t.path()) else { return };
    std::fs::write(
        d.join("build.yml"),
        BUSYBOX_PKG.replace("[busybox-static]", "[busybox-static, dash]"),
    )
    .unwrap();
    let mut sink = LayoutDir::create(&t.path().join("out")).unwrap();
    let err = baleen_pkg::build(&d, &options(), &mut sink, false).unwrap_err().chain();
    assert!(err.contains("packages.lock is stale") && err.contains("baleen pkg lock"), "{err}");
}

#[test]
fn an_unknown_debian_package_is_named() {
    let t = tempfile::tempdir().unwrap();
    if locked_busybox(t.path()).is_none() {
        return;
    }
    let d = pkg_dir(
        t.path(),
        "image: x\ndebian:\n  packages: [busybox-static, no-such-package-baleen]\n",
    );
    match baleen_pkg::lock(&d, &options()) {
        Err(e) if e.chain().contains("fetching") && !baleen_testkit::tools_required() => {}
        Err(e) => {
            assert!(e.chain().contains("unknown Debian package \"no-such-package-baleen\""), "{e}")
        }
        Ok(_) => panic!("locking an unknown package succeeded"),
    }
}

#[test]
fn an_unreachable_archive_names_the_url() {
    let t = tempfile::tempdir().unwrap();
    let d = pkg_dir(t.path(), BUSYBOX_PKG);
    // A port nothing listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let o = mirror_options(t.path().join("cache"), port);
    let err = baleen_pkg::lock(&d, &o).unwrap_err().chain();
    assert!(
        err.contains(&format!("http://127.0.0.1:{port}/debian/dists/bookworm/InRelease")),
        "{err}"
    );
}

/// Serves `body` for every request, once per connection, on a loopback port.
fn serve(body: Vec<u8>) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body);
        }
    });
    port
}

#[test]
fn a_tampered_deb_is_rejected_naming_the_package() {
    let t = tempfile::tempdir().unwrap();
    let Some(d) = locked_busybox(t.path()) else { return };
    // Warm the shared cache, then copy the .deb, flip one byte, and serve it from a fake mirror
    // into an empty cache.
    let mut sink = LayoutDir::create(&t.path().join("warm")).unwrap();
    baleen_pkg::build(&d, &options(), &mut sink, false).unwrap();
    let lock = baleen_pkg::lock::Lock::load(&d).unwrap().unwrap();
    let deb = &lock.packages[0].deb;
    let mut bytes = std::fs::read(options().cache.join("by-hash").join(&deb.sha256)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    let port = serve(bytes);
    let o = mirror_options(t.path().join("empty-cache"), port);
    let mut sink = LayoutDir::create(&t.path().join("out")).unwrap();
    let err = baleen_pkg::build(&d, &o, &mut sink, true).unwrap_err().chain();
    assert!(
        err.contains("package busybox-static")
            && err.contains("SHA-256")
            && err.contains(&deb.sha256),
        "{err}"
    );
    // Nothing unverified was kept.
    assert!(!o.cache.join("by-hash").join(&deb.sha256).exists());
}

#[test]
fn a_tampered_inrelease_fails_verification() {
    let t = tempfile::tempdir().unwrap();
    if locked_busybox(t.path()).is_none() {
        return;
    }
    let dists = options().cache.join("dists/bookworm");
    let file = std::fs::read_dir(&dists).unwrap().next().unwrap().unwrap().path().join("InRelease");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(baleen_pkg::deb::archive::verify_inrelease(&text).is_ok());
    let tampered = text.replacen("Packages.xz", "Packages.xy", 1);
    let err = baleen_pkg::deb::archive::verify_inrelease(&tampered).unwrap_err().to_string();
    assert!(err.contains("none made by"), "{err}");
}

#[test]
fn a_platform_missing_from_the_lock_is_named() {
    let t = tempfile::tempdir().unwrap();
    let Some(d) = locked_busybox(t.path()) else { return };
    let mut o = options();
    o.arches = Some(vec!["amd64".into(), "arm64".into()]);
    let mut sink = LayoutDir::create(&t.path().join("out")).unwrap();
    let err = baleen_pkg::build(&d, &o, &mut sink, false).unwrap_err().chain();
    assert!(
        err.contains("no arm64 packages") && err.contains("baleen pkg lock --platforms"),
        "{err}"
    );
}

/// A package without Debian packages needs no network: build it into a store, push it to a
/// real registry (Debian's docker-registry on loopback) and pull it back into another store.
#[test]
fn build_into_the_store_push_and_pull_back() {
    let Some(reg) = baleen_testkit::registry::Registry::plain() else { return };
    let t = tempfile::tempdir().unwrap();
    let d = pkg_dir(t.path(), "image: hello\nfiles:\n  - {path: /etc/motd, contents: \"hi\\n\"}\nconfig:\n  cmd: [/bin/true]\nlabel:\n  readonly: true\n");
    let mut store = baleen_pkg::open_store(Some(&t.path().join("store"))).unwrap();
    let built = baleen_pkg::build(&d, &options(), &mut store, false).unwrap();
    assert!(built.built);
    let again = baleen_pkg::build(&d, &options(), &mut store, false).unwrap();
    assert!(!again.built, "the store has the tag: nothing to build");
    assert_eq!(again.digest, built.digest);

    let name = built.tag.to_string();
    let remote =
        baleen_pkg::push(&store, &name, Some(&reg.host), &[], baleen_oci::Progress::Silent)
            .unwrap();
    assert_eq!(remote, format!("{}/{name}", reg.host));

    let other = baleen_oci::Store::open(&t.path().join("other")).unwrap();
    let r = baleen_oci::Reference::parse(&remote).unwrap();
    let img = baleen_oci::pull_blocking(
        &other,
        &r,
        &baleen_oci::Platform::new("linux", "amd64", None),
        &Default::default(),
    )
    .unwrap();
    let labels = img.config.config().as_ref().unwrap().labels().clone().unwrap();
    assert_eq!(labels["org.mobyproject.config"], r#"{"readonly":true}"#);
    assert_eq!(img.layers.len(), 1);
}

/// InRelease files clear-signed by a throw-away key (tests/fixtures/release/gen.sh): one past its
/// Valid-Until, one valid until 2099. Served from a loopback "mirror" to a real `Archive`.
#[test]
fn an_expired_release_is_refused_naming_the_suite_and_the_date() {
    use baleen_pkg::deb::archive::Archive;
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release");
    let key = std::fs::read(fx.join("test-key.gpg")).unwrap();
    let t = tempfile::tempdir().unwrap();
    let index_error = |file: &str, check: bool, keyring: Option<&[u8]>| {
        let port = serve(std::fs::read(fx.join(file)).unwrap());
        let cache = t.path().join(format!("{file}-{check}-{}", keyring.is_some()));
        let mut a = Archive::new(
            &format!("http://127.0.0.1:{port}/debian-security"),
            "bookworm-security",
            &cache,
        )
        .unwrap()
        .check_valid_until(check);
        if let Some(k) = keyring {
            a = a.with_keyring(k.to_vec(), "the test key");
        }
        a.index("amd64").unwrap_err().chain()
    };
    let e = index_error("InRelease-expired", true, Some(&key));
    assert!(
        e.contains("bookworm-security suite's Release expired on Sat, 30 Nov 2024 08:15:01 UTC")
            && e.contains("/debian-security/dists/bookworm-security/InRelease"),
        "{e}"
    );
    // Past the InRelease, the fixture's Packages.xz (size 0) is what fails: the date was accepted.
    for (file, check) in [("InRelease-valid", true), ("InRelease-expired", false)] {
        let e = index_error(file, check, Some(&key));
        assert!(e.contains("Packages.xz") && e.contains("says 0"), "{file} check={check}: {e}");
    }
    // The test key is not one of Debian's: the default keyring refuses before any date check.
    let e = index_error("InRelease-valid", true, None);
    assert!(e.contains("no valid signature by a Debian archive key"), "{e}");
}

/// A genuinely signed InRelease of another suite (the fixture is `bookworm-security`, also
/// called `stable-security`) served for `bullseye-security` is refused: the signature alone
/// does not say which suite it is for.
#[test]
fn a_signed_inrelease_of_another_suite_is_refused() {
    use baleen_pkg::deb::archive::Archive;
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release");
    let key = std::fs::read(fx.join("test-key.gpg")).unwrap();
    let t = tempfile::tempdir().unwrap();
    let port = serve(std::fs::read(fx.join("InRelease-valid")).unwrap());
    let index_error = |suite: &str| {
        Archive::new(&format!("http://127.0.0.1:{port}/debian-security"), suite, t.path())
            .unwrap()
            .with_keyring(key.clone(), "the test key")
            .index("amd64")
            .unwrap_err()
            .chain()
    };
    let e = index_error("bullseye-security");
    assert!(
        e.contains("signed for suite \"bookworm-security / stable-security\"")
            && e.contains("not the requested bullseye-security")
            && e.contains("/dists/bullseye-security/InRelease"),
        "{e}"
    );
    // Either name of the suite is accepted: past the InRelease, the fixture's empty Packages.xz
    // is what fails.
    for suite in ["bookworm-security", "stable-security"] {
        let e = index_error(suite);
        assert!(e.contains("Packages.xz") && e.contains("says 0"), "{suite}: {e}");
    }
}

/// A mirror serving a signed InRelease older (by its `Date`) than one already accepted from it
/// is refused: a replay would otherwise hide the updates made since.
#[test]
fn an_inrelease_older_than_the_cached_one_is_refused() {
    use baleen_pkg::deb::archive::Archive;
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release");
    let key = std::fs::read(fx.join("test-key.gpg")).unwrap();
    let t = tempfile::tempdir().unwrap();
    let (root, cache) = (t.path().join("mirror"), t.path().join("cache"));
    let served = root.join("dists/bookworm-security/InRelease");
    std::fs::create_dir_all(served.parent().unwrap()).unwrap();
    // Dated Sat, 23 Nov 2024; the private archive's is dated Tue, 14 Nov 2023.
    std::fs::copy(fx.join("InRelease-valid"), &served).unwrap();
    let port = serve_dir(root.clone());
    let a = Archive::new(&format!("http://127.0.0.1:{port}"), "bookworm-security", &cache)
        .unwrap()
        .with_keyring(key, "the test key");
    let e = a.index("amd64").unwrap_err().chain();
    assert!(e.contains("Packages.xz"), "the newer InRelease is accepted: {e}");
    // Age the cached copy past reuse, so that the mirror is asked again.
    let dir = cache.join("dists/bookworm-security");
    let mirror_dir = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7 * 3600);
    let f = std::fs::File::options().write(true).open(mirror_dir.join("InRelease")).unwrap();
    f.set_modified(old).unwrap();
    std::fs::copy(fx.join("private/dists/bookworm-security/InRelease"), &served).unwrap();
    let e = a.index("amd64").unwrap_err().chain();
    assert!(
        e.contains("dated Tue, 14 Nov 2023 22:13:20 UTC, older than the Sat, 23 Nov 2024")
            && e.contains("/dists/bookworm-security/InRelease"),
        "{e}"
    );
}

/// With `debian.security: true`, every locked package is the newest of the two suites' versions
/// and the lock names the suite of those from `bookworm-security` (checked against both real
/// indexes, so the test holds whatever the archive holds today).
#[test]
fn security_updates_win_when_newer_and_the_lock_names_their_suite() {
    use baleen_pkg::deb::archive::Archive;
    let t = tempfile::tempdir().unwrap();
    let d = pkg_dir(
        t.path(),
        "image: sec\ndebian:\n  packages: [openssh-server, libssl3]\n  security: true\n",
    );
    let lock = match baleen_pkg::lock(&d, &options()) {
        Ok(l) => l,
        Err(e) if !baleen_testkit::tools_required() && e.chain().contains("fetching") => {
            eprintln!("skipping: the Debian archive is unreachable: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let o = options();
    let main =
        Archive::new(baleen_pkg::deb::sources::DEFAULT_MIRROR, "bookworm", &o.cache).unwrap();
    let sec =
        Archive::new(baleen_pkg::builder::DEFAULT_SECURITY_MIRROR, "bookworm-security", &o.cache)
            .unwrap();
    let (main, sec) = (main.index("amd64").unwrap(), sec.index("amd64").unwrap());
    let text = std::fs::read_to_string(d.join("packages.lock")).unwrap();
    let mut from_security = 0;
    for p in lock.for_arch("amd64") {
        let newer_in_security = sec.get(&p.name).is_some_and(|s| {
            main.get(&p.name)
                .is_none_or(|m| baleen_pkg::deb::version::compare(&s.version, &m.version).is_gt())
        });
        if newer_in_security {
            from_security += 1;
            assert_eq!(p.suite.as_deref(), Some("bookworm-security"), "{}", p.name);
            assert_eq!(p.version, sec.get(&p.name).unwrap().version);
            assert!(p.filename.starts_with("pool/updates/"), "{}", p.filename);
            assert!(text.contains(&format!("{} bookworm-security\n", p.size)), "{text}");
        } else {
            assert_eq!(p.suite, None, "{} {}", p.name, p.version);
        }
    }
    eprintln!("{from_security} of {} packages from bookworm-security", lock.packages.len());
}

/// The ELF machine of the file at `path` inside the first layer of the image `manifest`.
/// The ELF machine of `path` in the image of `manifest`, checked to be a static executable: a
/// 64-bit little-endian ELF with no `PT_INTERP` program header (no dynamic loader to find).
fn static_elf_machine(layout: &Path, manifest: &str, path: &str) -> u16 {
    let m = blob_json(layout, manifest);
    for layer in m["layers"].as_array().unwrap() {
        let f = std::fs::File::open(blob(layout, layer["digest"].as_str().unwrap())).unwrap();
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().to_str() == Some(path) {
                let mut elf = Vec::new();
                e.read_to_end(&mut elf).unwrap();
                assert_eq!(&elf[..4], b"\x7fELF", "{path} is an ELF file");
                assert_eq!(elf[4..6], [2, 1], "{path}: ELF64, little-endian");
                let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]);
                let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
                let (size, count) = (u16_at(0x36) as usize, u16_at(0x38) as usize);
                assert!(count > 0, "{path}: program headers");
                for i in 0..count {
                    let at = phoff + i * size;
                    let kind = u32::from_le_bytes(elf[at..at + 4].try_into().unwrap());
                    assert_ne!(kind, 3, "{path}: a PT_INTERP header (dynamically linked)");
                }
                return u16_at(18);
            }
        }
    }
    panic!("{path} is in no layer of {manifest}");
}

/// `--platforms linux/amd64,linux/arm64` on the real init component: Debian's arm64 busybox and
/// baleen-init cross-built for aarch64 (static musl, linked by the toolchain's lld), one image
/// per platform under one index, each `/init` and busybox a static ELF of its machine.
#[test]
fn the_init_component_builds_for_amd64_and_arm64() {
    let installed = std::process::Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("aarch64-unknown-linux-musl"))
        .unwrap_or(false);
    if !installed {
        assert!(!baleen_testkit::tools_required(), "rustup target aarch64-unknown-linux-musl");
        eprintln!("skipping: the aarch64-unknown-linux-musl target is not installed");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = baleen_testkit::workspace_root().join("pkg/init");
    let mut o = options();
    let out = t.path().join("out");
    let mut sink = LayoutDir::create(&out).unwrap();
    // First for amd64 alone; the same tag asked for both platforms is then built again, not
    // taken as up to date (the tag names the inputs, not the platforms); a third run is.
    o.arches = Some(vec!["amd64".into()]);
    assert!(baleen_pkg::build(&dir, &o, &mut sink, false).unwrap().built);
    o.arches = Some(vec!["amd64".into(), "arm64".into()]);
    let built = baleen_pkg::build(&dir, &o, &mut sink, false).unwrap();
    assert!(built.built, "an amd64-only image does not answer for amd64+arm64");
    let again = baleen_pkg::build(&dir, &o, &mut sink, false).unwrap();
    assert!(!again.built && again.digest == built.digest, "both platforms stored: up to date");
    let index = blob_json(&out, &built.digest);
    let mut seen = Vec::new();
    for m in
        index["manifests"].as_array().unwrap().iter().filter(|m| m["platform"]["os"] == "linux")
    {
        let arch = m["platform"]["architecture"].as_str().unwrap().to_owned();
        let digest = m["digest"].as_str().unwrap();
        let want = match arch.as_str() {
            "amd64" => 62,  // EM_X86_64
            "arm64" => 183, // EM_AARCH64
            other => panic!("unexpected platform {other}"),
        };
        assert_eq!(static_elf_machine(&out, digest, "init"), want, "{arch} /init");
        assert_eq!(static_elf_machine(&out, digest, "bin/busybox"), want, "{arch} busybox");
        seen.push(arch);
    }
    seen.sort();
    assert_eq!(seen, ["amd64", "arm64"]);
}

/// Every component of pkg/ built twice, each time from nothing into its own layout (`force`),
/// gives the same index digest: the library is reproducible, not only the fixture above.
#[test]
fn every_component_builds_twice_to_the_same_digest() {
    let root = baleen_testkit::workspace_root().join("pkg");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("build.yml").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 14, "the component library: {dirs:?}");
    let t = tempfile::tempdir().unwrap();
    let o = options();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let digests: Vec<String> = ["a", "b"]
            .iter()
            .map(|run| {
                let out = t.path().join(format!("{name}-{run}"));
                let mut sink = LayoutDir::create(&out).unwrap();
                let built = baleen_pkg::build(dir, &o, &mut sink, true)
                    .unwrap_or_else(|e| panic!("pkg/{name}: {e}"));
                std::fs::remove_dir_all(&out).unwrap();
                built.digest
            })
            .collect();
        assert_eq!(digests[0], digests[1], "pkg/{name} built twice differs");
    }
}

use baleen_testkit::http::serve_dir;

/// A package directory using the private archive of tests/fixtures/release/private (signed by
/// the fixture's test key, trusted through `debian.keyring`), served from loopback.
fn private_archive_pkg(root: &Path, debian: &str) -> PathBuf {
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release");
    let port = serve_dir(fx.join("private"));
    let d = pkg_dir(
        root,
        &format!(
            "image: private\ndebian:\n  {debian}\n  mirror: http://127.0.0.1:{port}\n  keyring: test-key.gpg\n"
        ),
    );
    std::fs::copy(fx.join("test-key.gpg"), d.join("test-key.gpg")).unwrap();
    d
}

fn private_options(root: &Path) -> Options {
    let mut o = options();
    o.cache = root.join("cache");
    o
}

/// A private mirror whose InRelease is signed by the key build.yml names: locked, fetched,
/// verified and built end to end, with no Debian key involved.
#[test]
fn a_private_archive_signed_by_the_keyring_named_in_build_yml() {
    let t = tempfile::tempdir().unwrap();
    let d = private_archive_pkg(t.path(), "packages: [baleen-hello]");
    let o = private_options(t.path());
    let lock = baleen_pkg::lock(&d, &o).unwrap();
    assert_eq!(lock.packages.len(), 1);
    assert_eq!(
        (lock.packages[0].deb.name.as_str(), lock.packages[0].deb.version.as_str()),
        ("baleen-hello", "1.0")
    );
    let mut sink = LayoutDir::create(&t.path().join("out")).unwrap();
    let built = baleen_pkg::build(&d, &o, &mut sink, false).unwrap();
    let greetings = file_per_platform(&t.path().join("out"), &built.digest, "greeting");
    assert_eq!(
        greetings,
        [("amd64".into(), "hello from a private archive\n".into())],
        "one platform, the .deb's file in its layer"
    );

    // A keyring of other keys (Debian's) is refused, naming it; one that holds no binary key
    // (armored text) is refused before any download.
    let relock = |name: &str| {
        let o = private_options(&t.path().join(name));
        baleen_pkg::lock(&d, &o).unwrap_err().chain()
    };
    let debian_keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys/debian-archive-keyring.gpg");
    std::fs::copy(&debian_keys, d.join("test-key.gpg")).unwrap();
    let err = relock("other-keys");
    assert!(
        err.contains(&format!(
            "no valid signature by a key of {}",
            d.join("test-key.gpg").display()
        )),
        "{err}"
    );
    std::fs::write(d.join("test-key.gpg"), "-----BEGIN PGP PUBLIC KEY BLOCK-----\n").unwrap();
    let err = relock("armored");
    assert!(err.contains("debian.keyring") && err.contains("no OpenPGP public key"), "{err}");

    // Without the keyring, Debian's keys are trusted, and they did not sign this archive.
    let yml = std::fs::read_to_string(d.join("build.yml")).unwrap();
    std::fs::write(d.join("build.yml"), yml.replace("  keyring: test-key.gpg\n", "")).unwrap();
    let err = relock("2");
    assert!(err.contains("no valid signature by a Debian archive key"), "{err}");
}

/// For each platform of the image index `digest` in the layout: its architecture and the
/// contents of the first file of its first layer whose name ends with `suffix`.
fn file_per_platform(layout: &Path, digest: &str, suffix: &str) -> Vec<(String, String)> {
    let index = blob_json(layout, digest);
    let mut out = Vec::new();
    // The platform images, not their SBOMs' attestation manifests (`unknown/unknown`).
    for m in
        index["manifests"].as_array().unwrap().iter().filter(|m| m["platform"]["os"] == "linux")
    {
        let arch = m["platform"]["architecture"].as_str().unwrap().to_owned();
        let manifest = blob_json(layout, m["digest"].as_str().unwrap());
        let layer = manifest["layers"][0]["digest"].as_str().unwrap();
        let f = std::fs::File::open(blob(layout, layer)).unwrap();
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let mut text = String::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().to_str().is_some_and(|p| p.ends_with(suffix)) {
                e.read_to_string(&mut text).unwrap();
                break;
            }
        }
        out.push((arch, text));
    }
    out
}

/// `debian.arch-packages`: a package asked for on one architecture only is locked and
/// installed for that one, each platform from its own architecture's index and `.deb`s.
#[test]
fn arch_packages_are_locked_and_installed_per_platform() {
    let t = tempfile::tempdir().unwrap();
    let d = private_archive_pkg(
        t.path(),
        "arch-packages:\n    amd64: [baleen-hello]\n    arm64: [baleen-greeting-arm64]",
    );
    let mut o = private_options(t.path());
    o.arches = Some(vec!["amd64".into(), "arm64".into()]);
    let lock = baleen_pkg::lock(&d, &o).unwrap();
    let names =
        |arch: &str| -> Vec<String> { lock.for_arch(arch).map(|p| p.name.clone()).collect() };
    assert_eq!(names("amd64"), ["baleen-hello"]);
    assert_eq!(names("arm64"), ["baleen-greeting-arm64"]);
    let mut sink = LayoutDir::create(&t.path().join("out")).unwrap();
    let built = baleen_pkg::build(&d, &o, &mut sink, false).unwrap();
    // A platform that arch-packages leaves without any package is an error, not an empty image.
    let mut riscv = o.clone();
    riscv.arches = Some(vec!["riscv64".into()]);
    let err = baleen_pkg::lock(&d, &riscv).unwrap_err().chain();
    assert!(err.contains("no package for riscv64"), "{err}");
    let got = file_per_platform(&t.path().join("out"), &built.digest, "greeting");
    assert_eq!(
        got,
        [
            ("amd64".into(), "hello from a private archive\n".into()),
            ("arm64".into(), "hello from arm64\n".into())
        ]
    );
}

/// `pkg lock` of a package whose dependency no version in the archive meets: the error names
/// the package, the dependency, and what the archive has for each alternative.
#[test]
fn an_unsatisfiable_dependency_is_named_by_pkg_lock() {
    let t = tempfile::tempdir().unwrap();
    let d = private_archive_pkg(t.path(), "packages: [baleen-app]");
    let err = baleen_pkg::lock(&d, &private_options(t.path())).unwrap_err().chain();
    assert!(
        err.contains(
            r#"cannot satisfy baleen-app 2.0's dependency "libbaleen (>= 2.0) | baleen-compat""#
        ) && err.contains("the archive has libbaleen 1.5")
            && err.contains("no package or provider named baleen-compat"),
        "{err}"
    );
    assert!(err.starts_with(&format!("package {}", d.display())), "{err}");
    assert!(!d.join("packages.lock").exists(), "no lock is written for a failed resolution");
}

/// A locked package whose archive cannot be reached at build time: the error names the package
/// and the URL, and the cache keeps nothing.
#[test]
fn an_unreachable_archive_at_build_time_names_the_package() {
    let t = tempfile::tempdir().unwrap();
    let Some(d) = locked_busybox(t.path()) else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let o = mirror_options(t.path().join("empty-cache"), port);
    let mut sink = LayoutDir::create(&t.path().join("out")).unwrap();
    let err = baleen_pkg::build(&d, &o, &mut sink, true).unwrap_err().chain();
    assert!(
        err.contains("downloading package busybox-static ")
            && err.contains(&format!("http://127.0.0.1:{port}/debian/pool/main/b/busybox/")),
        "{err}"
    );
    let kept = std::fs::read_dir(o.cache.join("by-hash")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(kept, 0);
}

/// docs/pkg.md's table of the component library names every directory of `pkg/` (it once left
/// out httpd) and nothing that is not there.
#[test]
fn docs_list_every_component_of_the_library() {
    let root = baleen_testkit::workspace_root();
    let doc = std::fs::read_to_string(root.join("docs/pkg.md")).unwrap();
    let start = doc.find("## The component library\n").expect("docs/pkg.md has the section");
    let section = &doc[start + 3..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    // The first cell of each row past the header: one component, or several joined by commas.
    let mut documented: Vec<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .skip(1)
        .filter_map(|row| row.split(" |").next())
        .flat_map(|cell| cell.split(',').map(|s| s.trim().to_owned()))
        .collect();
    documented.sort();
    let mut dirs: Vec<String> = std::fs::read_dir(root.join("pkg"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("build.yml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(documented, dirs, "docs/pkg.md's component list");
}

/// pkg/ca-certificates ships a bundle made by its bundle.sh, since update-ca-certificates is a
/// maintainer script: the bundle must be exactly the image's own Mozilla certificates, in
/// C-locale name order, each ending in a newline (as update-ca-certificates writes it). A lock
/// moved to a new ca-certificates without rerunning bundle.sh fails here.
#[test]
fn ca_certificates_bundle_is_the_locked_debs_certificates() {
    let dir = baleen_testkit::workspace_root().join("pkg/ca-certificates");
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let mut sink = LayoutDir::create(&out).unwrap();
    let built = baleen_pkg::build(&dir, &options(), &mut sink, true).unwrap();
    let index = blob_json(&out, &built.digest);
    let m = blob_json(&out, index["manifests"][0]["digest"].as_str().unwrap());
    let f = std::fs::File::open(blob(&out, m["layers"][0]["digest"].as_str().unwrap())).unwrap();
    let mut certs = std::collections::BTreeMap::new();
    let mut bundle = None;
    for e in tar::Archive::new(flate2::read::GzDecoder::new(f)).entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if path == "etc/ssl/certs/ca-certificates.crt" {
            bundle = Some(data);
        } else if path.starts_with("usr/share/ca-certificates/mozilla/") && path.ends_with(".crt") {
            certs.insert(path, data);
        }
    }
    assert!(certs.len() > 100, "Mozilla's certificates in the image: {}", certs.len());
    let mut want = Vec::new();
    for mut c in certs.into_values() {
        if c.last() != Some(&b'\n') {
            c.push(b'\n');
        }
        want.extend(c);
    }
    let bundle = bundle.expect("the image has /etc/ssl/certs/ca-certificates.crt");
    assert!(bundle == want, "the bundle is not the image's certificates: rerun bundle.sh");
}
