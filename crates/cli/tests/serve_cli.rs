//! `baleen serve` as a user runs it, without booting: the URLs it prints, the iPXE script and
//! the files it serves byte for byte, nothing else from the output directory, and outputs a
//! network boot cannot start refused with the reason.

use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(url: &str) -> (String, Vec<u8>) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes()).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let end = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (String::from_utf8_lossy(&resp[..end]).into_owned(), resp[end + 4..].to_vec())
}

fn write_system(dir: &Path) {
    std::fs::write(dir.join("sys-kernel"), b"kernel bytes").unwrap();
    std::fs::write(dir.join("sys-initrd.img"), b"initrd bytes").unwrap();
    std::fs::write(dir.join("sys-cmdline"), "console=ttyS0 quiet\n").unwrap();
    std::fs::write(dir.join("sys.yml"), "not served").unwrap();
}

#[test]
fn serve_prints_the_script_url_and_serves_only_the_systems_files() {
    let tmp = tempfile::tempdir().unwrap();
    write_system(tmp.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_baleen"))
        .current_dir(tmp.path())
        .args(["serve", "--addr", "127.0.0.1:0", "sys"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _serving = Serving(child);
    let url = std::io::BufReader::new(stdout).lines().next().unwrap().unwrap();
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/sys.ipxe"), "{url}");

    let (head, script) = get(&url);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(
        String::from_utf8(script).unwrap(),
        "#!ipxe\n# sys, served by `baleen serve`\n\
         kernel sys-kernel initrd=sys-initrd.img console=ttyS0 quiet\n\
         initrd sys-initrd.img\nboot\n"
    );
    let base = url.trim_end_matches("sys.ipxe");
    for (name, bytes) in [
        ("sys-kernel", &b"kernel bytes"[..]),
        ("sys-initrd.img", b"initrd bytes"),
        ("sys-cmdline", b"console=ttyS0 quiet\n"),
    ] {
        let (head, body) = get(&format!("{base}{name}"));
        assert!(head.starts_with("HTTP/1.1 200"), "{name}: {head}");
        assert_eq!(body, bytes, "{name}");
    }
    for other in ["sys.yml", "../sys.yml", "", "sys-state/mac-addr"] {
        let (head, _) = get(&format!("{base}{other}"));
        assert!(head.starts_with("HTTP/1.1 404"), "{other:?}: {head}");
    }
}

#[test]
fn serve_refuses_what_a_network_boot_cannot_start() {
    let tmp = tempfile::tempdir().unwrap();
    for suffix in ["-kernel", "-squashfs.img", "-root-initrd.img"] {
        std::fs::write(tmp.path().join(format!("root{suffix}")), b"x").unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_baleen"))
        .current_dir(tmp.path())
        .args(["serve", "--addr", "127.0.0.1:0", "root"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("serving root") && err.contains("build kernel+initrd"), "{err}");

    write_system(tmp.path());
    std::fs::write(tmp.path().join("sys-cmdline"), "console=ttyS0 ${x}").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_baleen"))
        .current_dir(tmp.path())
        .args(["serve", "--addr", "127.0.0.1:0", "sys"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot go into an iPXE script"), "{err}");
}
