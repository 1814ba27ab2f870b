//! Throw-away Secure Boot key pairs and the sbsigntool cross-checks, for the signing tests.
//!
//! Keys are made with the openssl CLI at test time (never at build time, never by baleen), so
//! the tests also prove that baleen reads what `openssl req` writes.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The kinds of key baleen signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa2048,
    Rsa4096,
    EcP256,
}

/// A key (`NAME.key`, PKCS#8 PEM) and a self-signed certificate (`NAME.crt`) in `dir`, or
/// `None` when openssl is missing and tools are not required.
pub fn key_pair(dir: &Path, name: &str, kind: KeyKind) -> Option<(PathBuf, PathBuf)> {
    let openssl = crate::require_tool("openssl")?;
    let (key, cert) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.crt")));
    let newkey: &[&str] = match kind {
        KeyKind::Rsa2048 => &["-newkey", "rsa:2048"],
        KeyKind::Rsa4096 => &["-newkey", "rsa:4096"],
        KeyKind::EcP256 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    };
    let out = Command::new(openssl)
        .args(["req", "-x509", "-nodes", "-days", "3650", "-subj"])
        .arg(format!("/CN=baleen test {name}"))
        .args(newkey)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("running openssl req");
    assert!(out.status.success(), "openssl req: {}", String::from_utf8_lossy(&out.stderr));
    Some((key, cert))
}

/// `openssl ARGS...`, asserting success; its stdout.
pub fn openssl<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().expect("running openssl");
    let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
    assert!(out.status.success(), "openssl {shown:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// `sbverify --cert CERT FILE`: whether it accepts, and what it printed.
pub fn sbverify(cert: &Path, file: &Path) -> Option<(bool, String)> {
    let tool = crate::require_tool("sbverify")?;
    let out =
        Command::new(tool).arg("--cert").arg(cert).arg(file).output().expect("running sbverify");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Some((out.status.success(), text))
}

/// qemu with OVMF's Secure Boot build (SMM) and Debian's snakeoil variable store, whose PK,
/// KEK and db hold `PkKek-1-snakeoil.pem`: Secure Boot is enforcing, and only binaries signed
/// by the snakeoil key (or not at all checked: none) start.
#[derive(Debug)]
pub struct SecureBootVm {
    qemu: PathBuf,
    code: PathBuf,
    vars: PathBuf,
    /// The snakeoil key (encrypted, passphrase `snakeoil`) and certificate.
    key: PathBuf,
    pub cert: PathBuf,
}

/// How long one Secure Boot VM may run (TCG with SMM is slow) before the test gives up.
const SECURE_BOOT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

impl SecureBootVm {
    /// `None` (skipped) when qemu or Debian's ovmf files are missing and tools are not required.
    pub fn find() -> Option<SecureBootVm> {
        let qemu = crate::require_tool("qemu-system-x86_64")?;
        let vm = SecureBootVm {
            qemu,
            code: "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd".into(),
            vars: "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd".into(),
            key: "/usr/share/ovmf/PkKek-1-snakeoil.key".into(),
            cert: "/usr/share/ovmf/PkKek-1-snakeoil.pem".into(),
        };
        let missing: Vec<_> =
            [&vm.code, &vm.vars, &vm.key, &vm.cert].into_iter().filter(|p| !p.is_file()).collect();
        if missing.is_empty() {
            return Some(vm);
        }
        assert!(!crate::tools_required(), "{missing:?} missing: install Debian's ovmf");
        eprintln!("skipping: {missing:?} missing (Debian's ovmf)");
        None
    }

    /// The snakeoil key decrypted into `dir` (baleen reads no encrypted keys), to sign what
    /// should boot.
    pub fn key(&self, dir: &Path) -> PathBuf {
        let plain = dir.join("snakeoil.key");
        let args = [
            "pkey".as_ref(),
            "-in".as_ref(),
            self.key.as_os_str(),
            "-passin".as_ref(),
            "pass:snakeoil".as_ref(),
            "-out".as_ref(),
            plain.as_os_str(),
        ];
        openssl(&args);
        plain
    }

    /// Boots `image` (a raw disk, or an ISO when its name ends in `.iso`; a fresh copy of the
    /// variable store in `dir`) until the console shows `until`, the VM exits, or
    /// [`SECURE_BOOT_TIMEOUT`] passes; returns the console.
    pub fn boot(&self, image: &Path, dir: &Path, until: &str) -> String {
        self.boot_with(image, dir, until, &[])
    }

    /// [`SecureBootVm::boot`] with `extra` qemu arguments (a TPM).
    pub fn boot_with(
        &self,
        image: &Path,
        dir: &Path,
        until: &str,
        extra: &[std::ffi::OsString],
    ) -> String {
        use std::io::Read;
        std::fs::create_dir_all(dir).expect("creating the VM dir");
        let vars = dir.join("vars.fd");
        std::fs::copy(&self.vars, &vars).expect("copying the variable store");
        let pflash = |unit: u8, ro: &str, file: &Path| {
            format!("if=pflash,format=raw,unit={unit}{ro},file={}", file.display())
        };
        let media = if image.extension().is_some_and(|e| e == "iso") { "cdrom" } else { "disk" };
        let mut child = Command::new(&self.qemu)
            .args(["-machine", "q35,smm=on,accel=tcg", "-m", "512", "-smp", "1"])
            .args(["-global", "driver=cfi.pflash01,property=secure,value=on"])
            .args(["-drive", &pflash(0, ",readonly=on", &self.code)])
            .args(["-drive", &pflash(1, "", &vars)])
            .args(["-drive", &format!("file={},format=raw,index=0,media={media}", image.display())])
            .args(["-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot"])
            .args(["-net", "none"])
            .args(extra)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("starting qemu");
        let mut stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + SECURE_BOOT_TIMEOUT;
        let mut console = Vec::new();
        loop {
            match rx.recv_timeout(std::time::Duration::from_millis(200)) {
                Ok(bytes) => console.extend_from_slice(&bytes),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
            let text = String::from_utf8_lossy(&console);
            if text.contains(until) || std::time::Instant::now() > deadline {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let _ = reader.join();
        while let Ok(bytes) = rx.try_recv() {
            console.extend_from_slice(&bytes);
        }
        let text = String::from_utf8_lossy(&console).into_owned();
        std::fs::write(dir.join("console.log"), &text).expect("writing the console log");
        text
    }
}
