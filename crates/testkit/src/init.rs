//! The baleen-init binary for boot tests: the static musl build, made once per test process.
//!
//! `BALEEN_INIT_BIN` names a prebuilt binary; otherwise `cargo build -p baleen-init --target
//! x86_64-unknown-linux-musl --profile release-init` runs with its own target directory
//! (`target/init-build`), so it does not wait on the lock of the `cargo test` that runs us.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The musl target the image's init is built for.
pub const TARGET: &str = "x86_64-unknown-linux-musl";

/// Path to a static baleen-init, building it on first use. Panics when the build fails.
pub fn init_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("BALEEN_INIT_BIN") {
            return PathBuf::from(p);
        }
        let root = crate::workspace_root();
        let target_dir = root.join("target").join("init-build");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "baleen-init", "--target", TARGET])
            .args(["--profile", "release-init", "--target-dir"])
            .arg(&target_dir)
            .current_dir(&root)
            .status()
            .expect("running cargo build for baleen-init");
        assert!(status.success(), "building baleen-init for {TARGET} failed");
        let bin = target_dir.join(TARGET).join("release-init").join("baleen-init");
        assert!(bin.is_file(), "cargo built no {}", bin.display());
        bin
    })
    .clone()
}
