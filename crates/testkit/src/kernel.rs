//! A real Linux kernel for boot tests: Debian's cloud kernel, fetched once with apt and cached
//! under `target/baleen-test-cache/kernel/`.
//!
//! The `linux-image-cloud-amd64` metapackage names the versioned package; `apt-get download`
//! fetches its `.deb` and `dpkg-deb -x` unpacks it. Concurrent test binaries race safely: each
//! unpacks into its own temporary directory and renames it into place; the loser throws its copy
//! away.

use std::path::{Path, PathBuf};
use std::process::Command;

/// An unpacked Debian kernel package.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The bzImage (`boot/vmlinuz-<release>`).
    pub vmlinuz: PathBuf,
    /// `lib/modules/<release>`: `kernel/**/*.ko`, modules.order, modules.builtin. No modules.dep
    /// or modules.alias: Debian generates them in postinst.
    pub modules: PathBuf,
    /// The kernel release, e.g. `6.1.0-56-cloud-amd64`.
    pub release: String,
    /// The unpacked package root (holds `boot/` and `lib/`).
    pub root: PathBuf,
}

/// Where slow test artifacts are cached: `target/baleen-test-cache/`.
pub fn cache_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"));
    target.join("baleen-test-cache")
}

/// Returns Debian's cloud kernel, downloading it on first use. `None` (test skipped) when apt is
/// unavailable and tools are not required.
pub fn debian_cloud_kernel() -> Option<Kernel> {
    let dir = cache_dir().join("kernel");
    if let Some(k) = find_unpacked(&dir) {
        return Some(k);
    }
    crate::require_tool("apt-get")?;
    crate::require_tool("dpkg-deb")?;
    std::fs::create_dir_all(cache_dir()).expect("creating the test cache");
    let work = tempdir_in(&cache_dir());
    let pkg = versioned_package();
    let download = |work: &Path| {
        Command::new("apt-get")
            .args(["download", "-q", &pkg])
            .current_dir(work)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !download(&work) {
        // A fresh machine may have no package lists yet.
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
        assert!(download(&work), "apt-get download {pkg} failed");
    }
    let deb = std::fs::read_dir(&work)
        .expect("reading the download dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("apt-get download left no .deb");
    let root = work.join("root");
    let ok = Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root).status();
    assert!(ok.is_ok_and(|s| s.success()), "dpkg-deb -x {} failed", deb.display());
    std::fs::remove_file(&deb).ok();
    // Publish atomically; another test binary may have won the race.
    if std::fs::rename(&work, &dir).is_err() {
        std::fs::remove_dir_all(&work).ok();
    }
    Some(find_unpacked(&dir).expect("the unpacked kernel has boot/vmlinuz-*"))
}

fn versioned_package() -> String {
    let out = Command::new("apt-cache")
        .args(["depends", "linux-image-cloud-amd64"])
        .output()
        .expect("running apt-cache");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-"))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let _ = Command::new("apt-get").args(["update", "-q"]).status();
            let out = Command::new("apt-cache")
                .args(["depends", "linux-image-cloud-amd64"])
                .output()
                .expect("running apt-cache");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.trim().strip_prefix("Depends: "))
                .find(|p| p.starts_with("linux-image-"))
                .map(str::to_owned)
                .expect("apt-cache knows no linux-image-cloud-amd64")
        })
}

fn find_unpacked(dir: &Path) -> Option<Kernel> {
    let root = dir.join("root");
    let boot = std::fs::read_dir(root.join("boot")).ok()?;
    let vmlinuz = boot
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-")))?;
    let release = vmlinuz.file_name()?.to_string_lossy().trim_start_matches("vmlinuz-").to_owned();
    let modules = root.join("lib/modules").join(&release);
    modules.is_dir().then_some(Kernel { vmlinuz, modules, release, root })
}

fn tempdir_in(parent: &Path) -> PathBuf {
    let unique = format!(
        ".kernel-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    );
    let p = parent.join(unique);
    std::fs::create_dir_all(&p).expect("creating a temp dir in the test cache");
    p
}
