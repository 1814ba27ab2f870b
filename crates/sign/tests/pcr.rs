//! `.pcrsig` against systemd's own tool: Debian bookworm's `systemd-measure sign` (systemd 252)
//! computes the policy in a TPM trial session, here swtpm's, and signs it with the same openssl
//! key; baleen's JSON must be the same bytes.

use baleen_sign::pcr::{pcr11, pcrsig_json, public_key_pem, SectionDigest, PHASE_PATHS};
use baleen_sign::KeyPair;
use baleen_testkit::signing::{key_pair, KeyKind};
use sha2::{Digest as _, Sha256};
use std::path::Path;
use std::process::{Child, Command};

const SYSTEMD_MEASURE: &str = "/usr/lib/systemd/systemd-measure";

/// Kills swtpm when the test ends, however it ends.
struct Swtpm(Child);
impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn pcrsig_is_byte_identical_to_systemd_measure_sign() {
    let Some(swtpm) = baleen_testkit::require_tool("swtpm") else { return };
    if !Path::new(SYSTEMD_MEASURE).exists()
        || !Path::new("/usr/lib/x86_64-linux-gnu/libtss2-tcti-swtpm.so.0").exists()
    {
        assert!(
            !baleen_testkit::tools_required(),
            "{SYSTEMD_MEASURE} (systemd) or libtss2-tcti-swtpm0 is missing"
        );
        eprintln!("skipping: {SYSTEMD_MEASURE} or libtss2-tcti-swtpm0 is missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some((key, cert)) = key_pair(dir.path(), "pcr", KeyKind::Rsa2048) else { return };
    let pair = KeyPair::from_pem(
        &std::fs::read_to_string(&key).unwrap(),
        &std::fs::read_to_string(&cert).unwrap(),
    )
    .unwrap();
    let spki = pair.public_key_der().unwrap();
    let pem = public_key_pem(&spki);
    let files: [(&str, &str, &[u8]); 4] = [
        (".linux", "linux", b"a kernel, or so"),
        (".osrel", "osrel", b"ID=baleen\n"),
        (".cmdline", "cmdline", b"console=ttyS0"),
        (".pcrpkey", "pcrpkey", pem.as_bytes()),
    ];
    let mut digests = Vec::new();
    for (name, file, bytes) in files {
        std::fs::write(dir.path().join(file), bytes).unwrap();
        digests.push(SectionDigest { name, digest: Sha256::digest(bytes).into() });
    }

    let state = dir.path().join("tpm");
    std::fs::create_dir(&state).unwrap();
    // A port of this process's own, so that parallel runs do not meet.
    let port = 20000 + (std::process::id() % 20000) as u16 * 2;
    let _tpm = Swtpm(
        Command::new(swtpm)
            .args(["socket", "--tpm2", "--flags", "not-need-init,startup-clear", "--tpmstate"])
            .arg(format!("dir={}", state.display()))
            .arg("--server")
            .arg(format!("type=tcp,port={port}"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={}", port + 1))
            .spawn()
            .expect("starting swtpm"),
    );
    let sign = |phase: Option<&str>| {
        // swtpm listens within a moment; systemd-measure fails fast until it does.
        for _ in 0..50 {
            let o = Command::new(SYSTEMD_MEASURE)
                .current_dir(dir.path())
                .args(["sign", "--linux=linux", "--osrel=osrel", "--cmdline=cmdline"])
                .args(["--pcrpkey=pcrpkey", "--bank=sha256"])
                .args(phase)
                .arg(format!("--private-key={}", key.display()))
                .arg(format!("--tpm2-device=swtpm:host=127.0.0.1,port={port}"))
                .output()
                .expect("running systemd-measure");
            if o.status.success() {
                return String::from_utf8(o.stdout).unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("systemd-measure sign never succeeded");
    };
    let ours = pcrsig_json(&pair.key, &spki, &[pcr11(&digests, &[])]).unwrap();
    assert_eq!(ours, sign(Some("--phase=")));
    // Without --phase, systemd-measure signs its default phase paths: what baleen signs.
    let values: Vec<[u8; 32]> = PHASE_PATHS.iter().map(|p| pcr11(&digests, p)).collect();
    let ours = pcrsig_json(&pair.key, &spki, &values).unwrap();
    assert_eq!(ours, sign(None));
}

#[test]
fn an_ecdsa_key_signs_no_pcr_policy() {
    let dir = tempfile::tempdir().unwrap();
    let Some((key, cert)) = key_pair(dir.path(), "ec", KeyKind::EcP256) else { return };
    let pair = KeyPair::from_pem(
        &std::fs::read_to_string(&key).unwrap(),
        &std::fs::read_to_string(&cert).unwrap(),
    )
    .unwrap();
    let err = pcrsig_json(&pair.key, &pair.public_key_der().unwrap(), &[[0; 32]]).unwrap_err();
    assert!(err.to_string().contains("RSA keys only"), "{err}");
}
