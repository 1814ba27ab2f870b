//! `baleen push oci PATH… REF` of systems of two architectures against Debian's
//! docker-registry: one artifact each under an image index; `baleen pull --arch` and
//! `baleen run oci://` pick the entry for their architecture; the same systems give the same
//! index digest in any order; a platform the index lacks, two systems of one architecture and
//! hostile indexes are refused, and nothing is written.
//!
//! The systems are synthetic kernel+initrd pairs whose kernels carry just the header bytes
//! `baleen run` reads their architecture from (x86's bzImage `HdrS` at 0x202, arm64's `ARMd` at
//! 0x38), so no arm64 build is needed.

use crate::push_pull_cli::{failed, ok};
use baleen_testkit::registry::Registry;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn baleen(store: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_baleen"))
        .current_dir(cwd)
        .args(args)
        .env("BALEEN_CACHE", store)
        .env("DOCKER_CONFIG", cwd.join("no-docker-config"))
        .env("XDG_CACHE_HOME", cwd.join("xdg"))
        .output()
        .unwrap()
}

fn pushed_digest(stdout: &str) -> String {
    stdout.split_whitespace().nth(1).expect("REF  DIGEST").to_string()
}

/// `dir/sys-kernel` (a kernel header of `arch`), `dir/sys-initrd.img`, `dir/sys-cmdline`.
fn system(dir: &Path, arch: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut kernel = format!("{arch} kernel ").repeat(512).into_bytes();
    match arch {
        "amd64" => kernel[0x202..0x206].copy_from_slice(b"HdrS"),
        _ => kernel[0x38..0x3c].copy_from_slice(b"ARMd"),
    }
    std::fs::write(dir.join("sys-kernel"), kernel).unwrap();
    std::fs::write(dir.join("sys-initrd.img"), format!("{arch} initrd")).unwrap();
    std::fs::write(dir.join("sys-cmdline"), "console=ttyS0").unwrap();
    dir.join("sys")
}

fn json(reg: &Registry, digest: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(reg.blob_data(digest)).unwrap()).unwrap()
}

/// Pushes an amd64 and an arm64 system under `name`; returns the index digest.
fn push_two(tmp: &Path, name: &str) -> String {
    let (amd, arm) = (system(&tmp.join("amd64"), "amd64"), system(&tmp.join("arm64"), "arm64"));
    let (amd, arm) = (amd.to_str().unwrap(), arm.to_str().unwrap());
    pushed_digest(&ok(&baleen(&tmp.join("cache"), tmp, &["push", "oci", amd, arm, name])))
}

#[test]
fn two_architectures_under_one_index_pull_back_by_arch_with_a_stable_digest() {
    let Some(reg) = Registry::plain() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let name = format!("{}/systems/multi:1", reg.host);
    let digest = push_two(t, &name);

    // The other order, from an empty store: the same index.
    let (amd, arm) = (t.join("amd64/sys"), t.join("arm64/sys"));
    let args = ["push", "oci", arm.to_str().unwrap(), amd.to_str().unwrap(), &name];
    let again = ok(&baleen(&t.join("cache2"), t, &args));
    assert_eq!(pushed_digest(&again), digest, "same systems, same index digest");

    let index = json(&reg, &digest);
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json", "{index}");
    let entries = index["manifests"].as_array().unwrap();
    let platforms: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| {
            assert_eq!(e["mediaType"], "application/vnd.oci.image.manifest.v1+json");
            (
                e["platform"]["os"].as_str().unwrap(),
                e["platform"]["architecture"].as_str().unwrap(),
                e["annotations"]["org.baleen.system.format"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        platforms,
        [("linux", "amd64", "kernel+initrd"), ("linux", "arm64", "kernel+initrd")]
    );
    for e in entries {
        let m = json(&reg, e["digest"].as_str().unwrap());
        assert_eq!(m["artifactType"], "application/vnd.baleen.system.v1");
        assert_eq!(
            m["annotations"]["org.baleen.system.architecture"],
            e["platform"]["architecture"]
        );
    }

    for arch in ["amd64", "arm64"] {
        let dest = t.join(format!("pulled-{arch}"));
        let d = dest.to_str().unwrap();
        let out = baleen(
            &t.join(format!("fresh-{arch}")),
            t,
            &["pull", &name, "--dir", d, "--arch", arch],
        );
        ok(&out);
        for f in ["sys-kernel", "sys-initrd.img", "sys-cmdline"] {
            let pulled = std::fs::read(dest.join(f)).unwrap();
            assert_eq!(pulled, std::fs::read(t.join(arch).join(f)).unwrap(), "{arch} {f}");
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("linux/{arch} of index {digest}")), "{stderr}");
    }
    // Without --arch: this machine's.
    let host = if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" };
    let dest = t.join("pulled-host");
    ok(&baleen(&t.join("fresh-host"), t, &["pull", &name, "--dir", dest.to_str().unwrap()]));
    assert_eq!(
        std::fs::read(dest.join("sys-initrd.img")).unwrap(),
        format!("{host} initrd").into_bytes()
    );

    // A platform the index lacks: the error lists what it has, and nothing is written.
    let dest = t.join("pulled-riscv");
    let d = dest.to_str().unwrap();
    let err =
        failed(&baleen(&t.join("fresh-r"), t, &["pull", &name, "--dir", d, "--arch", "riscv64"]));
    assert!(
        err.contains("no system for linux/riscv64")
            && err.contains("linux/amd64 (kernel+initrd), linux/arm64 (kernel+initrd)"),
        "{err}"
    );
    assert!(!dest.exists(), "nothing written");
}

#[test]
fn two_systems_of_one_architecture_or_arch_with_several_paths_are_refused() {
    let Some(reg) = Registry::plain() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (a, b) = (system(&t.join("a"), "amd64"), system(&t.join("b"), "amd64"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let name = format!("{}/systems/twice:1", reg.host);
    let err = failed(&baleen(&t.join("cache"), t, &["push", "oci", a, b, &name]));
    assert!(err.contains(a) && err.contains(b) && err.contains("both for linux/amd64"), "{err}");
    let err =
        failed(&baleen(&t.join("cache"), t, &["push", "oci", a, b, &name, "--arch", "arm64"]));
    assert!(err.contains("--arch names the architecture of one PATH"), "{err}");
    // A system whose bytes do not say their architecture cannot go into an index.
    std::fs::write(t.join("c-kernel"), b"no header").unwrap();
    std::fs::write(t.join("c-initrd.img"), b"initrd").unwrap();
    let c = t.join("c");
    let err = failed(&baleen(&t.join("cache"), t, &["push", "oci", a, c.to_str().unwrap(), &name]));
    assert!(err.contains("cannot tell which architecture") && err.contains("--arch"), "{err}");
    let repos = reg.storage().join("docker/registry/v2/repositories/systems");
    assert!(!repos.join("twice").exists(), "nothing pushed");
}

/// A registry that serves a hostile index in place of the one pushed: too many entries, an
/// index nested in it, an entry that is no manifest, an entry claiming a huge size, or no
/// entry for the platform asked. `pull` and `run oci://` refuse each before fetching an entry,
/// and nothing is written.
#[test]
fn hostile_indexes_are_refused_and_run_picks_by_its_arch() {
    let Some(reg) = Registry::plain() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let name = format!("{}/systems/hostile:1", reg.host);
    let digest = push_two(t, &name);
    let good = json(&reg, &digest);
    let entry = good["manifests"][0].clone();
    let with = |entries: Vec<serde_json::Value>| {
        let mut index = good.clone();
        index["manifests"] = entries.into();
        serde_json::to_vec(&index).unwrap()
    };
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut e = entry.clone();
        f(&mut e);
        with(vec![e])
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("too many", with(vec![entry.clone(); 65]), "lists 65 manifests, more than the 64"),
        (
            "nested",
            edit(&|e| e["mediaType"] = "application/vnd.oci.image.index.v1+json".into()),
            "is itself an index",
        ),
        (
            "media type",
            edit(&|e| e["mediaType"] = "application/vnd.oci.image.layer.v1.tar".into()),
            "not an image manifest",
        ),
        ("huge", edit(&|e| e["size"] = (1u64 << 40).into()), "more than the 4194304-byte"),
        (
            "no platform",
            edit(&|e| e["platform"]["architecture"] = "riscv64".into()),
            "no system for linux/amd64 in the index; it has: linux/riscv64 (kernel+initrd)",
        ),
    ];
    let stored = reg.blob_data(&digest);
    for (what, bytes, want) in cases {
        std::fs::write(&stored, &bytes).unwrap();
        let dest = t.join("pulled");
        let d = dest.to_str().unwrap();
        let err =
            failed(&baleen(&t.join("fresh"), t, &["pull", &name, "--dir", d, "--arch", "amd64"]));
        assert!(err.contains(want), "{what}: {err}");
        assert!(!dest.exists(), "{what}: nothing written");
    }
    // `run oci://` takes the host's entry without --arch, --arch's with it.
    let uri = format!("oci://{name}");
    let host = if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" };
    let err = failed(&baleen(&t.join("fresh"), t, &["run", &uri]));
    assert!(err.contains(&format!("no system for linux/{host} in the index")), "{err}");
    let err = failed(&baleen(&t.join("fresh"), t, &["run", "--arch", "aarch64", &uri]));
    assert!(err.contains("no system for linux/arm64 in the index"), "{err}");
    assert!(!t.join("xdg/baleen/systems").read_dir().is_ok_and(|mut d| d.next().is_some()));
}
