//! A real registry for tests: Debian's `docker-registry` (distribution v2.8) on 127.0.0.1, with
//! its storage in a temp dir, in one of three modes: plain HTTP, htpasswd basic auth, or TLS
//! with a CA made for the test. Killed on drop. No mock of the protocol anywhere.
//!
//! ```no_run
//! let Some(reg) = baleen_testkit::registry::Registry::start(Default::default()) else { return };
//! let image_ref = format!("{}/test/app:v1", reg.host);
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How the registry is reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Mode {
    /// Plain HTTP, anonymous.
    #[default]
    Plain,
    /// Plain HTTP with htpasswd (bcrypt) basic auth for this user and password.
    Htpasswd { user: String, password: String },
    /// HTTPS with a certificate for 127.0.0.1/localhost signed by a CA made for the test
    /// ([`Registry::ca_cert`]).
    Tls,
    /// Plain HTTP with bearer-token auth (the flow Docker Hub and ghcr.io use): a token server
    /// in this process checks these basic credentials and issues RS256 JWTs the registry trusts.
    Token { user: String, password: String },
}

/// A running registry. The storage directory survives [`Registry::kill`] and
/// [`Registry::restart`], so a test can stop it mid-pull and bring it back.
#[derive(Debug)]
pub struct Registry {
    /// `127.0.0.1:<port>`, the registry part of image references.
    pub host: String,
    pub port: u16,
    pub mode: Mode,
    /// The CA certificate (PEM) that signed the server certificate, in TLS mode.
    pub ca_cert: Option<PathBuf>,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Port and request counter of the token server, in token mode.
    token: Option<(u16, std::sync::Arc<std::sync::atomic::AtomicUsize>)>,
}

impl Registry {
    /// Starts a registry, or returns `None` (skipping the test) when `docker-registry` or a
    /// tool the mode needs (`htpasswd`, `openssl`) is missing and tools are not required.
    pub fn start(mode: Mode) -> Option<Registry> {
        crate::require_tool("docker-registry")?;
        let dir = tempfile::Builder::new().prefix("baleen-registry-").tempdir().expect("temp dir");
        let mut ca_cert = None;
        match &mode {
            Mode::Plain => {}
            Mode::Htpasswd { user, password } => {
                let htpasswd = crate::require_tool("htpasswd")?;
                let out = Command::new(htpasswd)
                    .args(["-Bbn", user, password])
                    .output()
                    .expect("running htpasswd");
                assert!(
                    out.status.success(),
                    "htpasswd failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                std::fs::write(dir.path().join("htpasswd"), &out.stdout).expect("writing htpasswd");
            }
            Mode::Tls => {
                let openssl = crate::require_tool("openssl")?;
                make_certificates(&openssl, dir.path());
                ca_cert = Some(dir.path().join("ca.pem"));
            }
            Mode::Token { .. } => {}
        }
        let token = match &mode {
            Mode::Token { user, password } => {
                let openssl = crate::require_tool("openssl")?;
                Some(token::start(&openssl, dir.path(), user, password))
            }
            _ => None,
        };
        let mut reg =
            Registry { host: String::new(), port: 0, mode, ca_cert, dir, child: None, token };
        for _ in 0..5 {
            // Picking a free port then handing it over is racy; try a few.
            reg.port = crate::boot::free_port();
            reg.host = format!("127.0.0.1:{}", reg.port);
            if reg.spawn() {
                return Some(reg);
            }
        }
        panic!("docker-registry did not start; log:\n{}", reg.log());
    }

    /// A plain-HTTP anonymous registry.
    pub fn plain() -> Option<Registry> {
        Registry::start(Mode::Plain)
    }

    /// Where the registry keeps its data (`docker/registry/v2/...` below it).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The file the registry serves for a blob (`sha256:<hex>`): tests corrupt or truncate it.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.storage().join(format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }

    /// The registry's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// A `DOCKER_CONFIG`-style directory whose config.json holds these credentials for this
    /// registry.
    pub fn docker_config(&self, user: &str, password: &str) -> PathBuf {
        let d = self.dir.path().join(format!("docker-config-{user}-{}", password.len()));
        std::fs::create_dir_all(&d).expect("creating docker config dir");
        let auth = base64_encode(format!("{user}:{password}").as_bytes());
        let json = format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, self.host);
        std::fs::write(d.join("config.json"), json).expect("writing config.json");
        d
    }

    /// A `DOCKER_CONFIG`-style directory whose config.json holds an identity token (OAuth2
    /// refresh token) for this registry; in token mode the password is accepted as one.
    pub fn docker_config_identity_token(&self, token: &str) -> PathBuf {
        let d = self.dir.path().join(format!("docker-config-identity-{}", token.len()));
        std::fs::create_dir_all(&d).expect("creating docker config dir");
        let json = format!(r#"{{"auths":{{"{}":{{"identitytoken":"{token}"}}}}}}"#, self.host);
        std::fs::write(d.join("config.json"), json).expect("writing config.json");
        d
    }

    /// How many tokens the token server issued (token mode; 0 otherwise).
    pub fn tokens_issued(&self) -> usize {
        self.token.as_ref().map_or(0, |t| t.1.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Stops the registry (SIGKILL), keeping its storage.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn(),
            "docker-registry did not restart on port {}; log:\n{}",
            self.port,
            self.log()
        );
    }

    fn config(&self) -> String {
        let d = self.dir.path().display();
        let mut c = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {d}/data\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{}\n  secret: baleen-test-secret\n",
            self.port
        );
        match &self.mode {
            Mode::Plain => {}
            Mode::Htpasswd { .. } => c.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: baleen-test\n    path: {d}/htpasswd\n"
            )),
            Mode::Tls => c.push_str(&format!(
                "  tls:\n    certificate: {d}/server.pem\n    key: {d}/server.key\n"
            )),
            Mode::Token { .. } => {
                let port = self.token.as_ref().map_or(0, |t| t.0);
                c.push_str(&format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{port}/token\n    \
                     service: {}\n    issuer: {}\n    rootcertbundle: {d}/token.pem\n",
                    token::SERVICE,
                    token::ISSUER
                ));
            }
        }
        c
    }

    /// Spawns the registry and waits (bounded) until it accepts connections. False when it
    /// exited (port taken) or never answered.
    fn spawn(&mut self) -> bool {
        let cfg = self.dir.path().join("config.yml");
        std::fs::write(&cfg, self.config()).expect("writing registry config");
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("registry.log"))
            .expect("opening registry log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("spawning docker-registry");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return false;
            }
            if self.answers() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        false
    }

    /// For plain HTTP: `GET /v2/` gets an HTTP answer. For TLS: the port accepts connections
    /// (the Go server listens only once it is ready to serve).
    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        if self.mode == Mode::Tls {
            return true;
        }
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

fn make_certificates(openssl: &Path, dir: &Path) {
    let run = |args: &[&str]| {
        let out =
            Command::new(openssl).current_dir(dir).args(args).output().expect("running openssl");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "3",
        "-subj",
        "/CN=baleen test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
    run(&csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("writing ext.cnf");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "3",
        "-extfile",
        "ext.cnf",
    ]);
}

/// Standard base64, enough for one config.json line (testkit keeps its dependencies few).
fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_known_values() {
        assert_eq!(super::base64_encode(b"me:secret"), "bWU6c2VjcmV0");
        assert_eq!(super::base64_encode(b"a"), "YQ==");
        assert_eq!(super::base64_encode(b"ab"), "YWI=");
    }
}

/// A TCP proxy in front of a registry that can "kill" it mid-transfer: once one connection has
/// carried `cut_after` bytes from the registry, that connection is dropped and every later
/// connection is closed at once, which is what a client sees when the registry dies. Reset it
/// with [`Proxy::heal`].
#[derive(Debug)]
pub struct Proxy {
    /// `127.0.0.1:<port>` of the proxy.
    pub host: String,
    state: std::sync::Arc<ProxyState>,
}

#[derive(Debug)]
struct ProxyState {
    upstream: std::sync::atomic::AtomicU16,
    cut_after: std::sync::atomic::AtomicU64,
    down: std::sync::atomic::AtomicBool,
    /// Bytes sent by the registry through the proxy, all connections.
    forwarded: std::sync::atomic::AtomicU64,
    /// The next this-many connections get `503 Service Unavailable` instead of the registry.
    fail_next: std::sync::atomic::AtomicUsize,
    /// After a cut, keep serving new connections (a dropped connection, not a dead registry).
    cut_once: std::sync::atomic::AtomicBool,
    /// Once a connection has carried this many bytes from the registry, it stops forwarding
    /// (or trickles, with `trickle_ms`) while keeping the connection open. 0: never.
    stall_after: std::sync::atomic::AtomicU64,
    /// After `stall_after`: one byte every this many milliseconds; 0 means none at all.
    trickle_ms: std::sync::atomic::AtomicU64,
    /// A connection whose request holds these bytes gets no answer (headers included).
    stall_requests: std::sync::Mutex<Option<Vec<u8>>>,
}

impl Proxy {
    /// Starts a proxy to `127.0.0.1:upstream_port`. `cut_after` 0 means never cut.
    pub fn start(upstream_port: u16, cut_after: u64) -> Proxy {
        use std::sync::atomic::*;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding proxy port");
        let host = format!("127.0.0.1:{}", listener.local_addr().expect("addr").port());
        let state = std::sync::Arc::new(ProxyState {
            upstream: AtomicU16::new(upstream_port),
            cut_after: AtomicU64::new(cut_after),
            down: AtomicBool::new(false),
            forwarded: AtomicU64::new(0),
            fail_next: AtomicUsize::new(0),
            cut_once: AtomicBool::new(false),
            stall_after: AtomicU64::new(0),
            trickle_ms: AtomicU64::new(0),
            stall_requests: std::sync::Mutex::new(None),
        });
        let st = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if st.down.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let failing = st
                    .fail_next
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
                if failing.is_ok() {
                    // Answer after the request head, as a server would (hyper rejects a
                    // response that arrives before its request).
                    let mut client = client;
                    let _ = client.set_read_timeout(Some(Duration::from_millis(300)));
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
                        match client.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => break,
                        }
                    }
                    let _ = client.write_all(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let Ok(upstream) =
                    TcpStream::connect(("127.0.0.1", st.upstream.load(Ordering::SeqCst)))
                else {
                    continue;
                };
                let st = st.clone();
                std::thread::spawn(move || pipe(client, upstream, st));
            }
        });
        Proxy { host, state }
    }

    /// Undoes a cut: new connections go through, no more cutting, to `upstream_port`.
    pub fn heal(&self, upstream_port: u16) {
        use std::sync::atomic::Ordering;
        self.state.upstream.store(upstream_port, Ordering::SeqCst);
        self.state.cut_after.store(0, Ordering::SeqCst);
        self.state.down.store(false, Ordering::SeqCst);
    }

    /// Makes the cut drop only the one connection: later connections go through (a flaky
    /// network rather than a dead registry).
    pub fn cut_once(&self) {
        self.state.cut_once.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Makes every connection go silent, open, once it has carried `bytes` from the registry:
    /// a stalled registry.
    pub fn stall_after(&self, bytes: u64) {
        use std::sync::atomic::Ordering;
        self.state.trickle_ms.store(0, Ordering::SeqCst);
        self.state.stall_after.store(bytes, Ordering::SeqCst);
    }

    /// Like [`Proxy::stall_after`], but then sends one byte every `every`: a registry that
    /// never quite stalls.
    pub fn trickle_after(&self, bytes: u64, every: Duration) {
        use std::sync::atomic::Ordering;
        let ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX).max(1);
        self.state.trickle_ms.store(ms, Ordering::SeqCst);
        self.state.stall_after.store(bytes, Ordering::SeqCst);
    }

    /// Leaves every request whose text holds `pattern` (e.g. `/manifests/`) unanswered, the
    /// connection open: a registry that accepts a request and never replies.
    pub fn stall_requests(&self, pattern: &str) {
        *self.state.stall_requests.lock().expect("lock") = Some(pattern.as_bytes().to_vec());
    }

    /// Answers the next `n` connections with a 503, as an overloaded registry would.
    pub fn fail_next(&self, n: usize) {
        self.state.fail_next.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether a cut happened.
    pub fn tripped(&self) -> bool {
        self.state.down.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Bytes the registry sent through the proxy so far.
    pub fn forwarded(&self) -> u64 {
        self.state.forwarded.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn pipe(client: TcpStream, upstream: TcpStream, st: std::sync::Arc<ProxyState>) {
    use std::sync::atomic::Ordering;
    let (mut c_read, mut u_write) =
        (client.try_clone().expect("clone"), upstream.try_clone().expect("clone"));
    let muted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (up_st, up_muted) = (st.clone(), muted.clone());
    let up = std::thread::spawn(move || {
        let mut buf = [0u8; 16 << 10];
        loop {
            let n = match c_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let pattern = up_st.stall_requests.lock().expect("lock").clone();
            if pattern.is_some_and(|p| buf[..n].windows(p.len()).any(|w| w == p.as_slice())) {
                // Before forwarding, so the answer cannot slip through first.
                up_muted.store(true, Ordering::SeqCst);
            }
            if u_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = u_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut u_read, mut c_write) = (upstream, client);
    let mut buf = [0u8; 16 << 10];
    let mut sent = 0u64;
    loop {
        let n = match u_read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let limit = st.cut_after.load(Ordering::SeqCst);
        if st.down.load(Ordering::SeqCst) || (limit > 0 && sent + n as u64 > limit) {
            if st.cut_once.load(Ordering::SeqCst) {
                st.cut_after.store(0, Ordering::SeqCst);
            } else {
                st.down.store(true, Ordering::SeqCst);
            }
            break;
        }
        if muted.load(Ordering::SeqCst) {
            // Unanswered: drop what the registry says, until the client gives up.
            continue;
        }
        let stall = st.stall_after.load(Ordering::SeqCst);
        let mut now = n;
        if stall > 0 && sent + n as u64 > stall {
            now = usize::try_from(stall.saturating_sub(sent)).unwrap_or(n).min(n);
        }
        if c_write.write_all(&buf[..now]).is_err() {
            break;
        }
        sent += now as u64;
        st.forwarded.fetch_add(now as u64, Ordering::SeqCst);
        if now < n && !slow_drip(&mut c_write, &buf[now..n], &st) {
            break;
        }
    }
    let _ = c_write.shutdown(std::net::Shutdown::Both);
    let _ = u_read.shutdown(std::net::Shutdown::Both);
    let _ = up.join();
}

/// Past the stall point: sends `rest` one byte per `trickle_ms`, or nothing (then waits for the
/// client to give up). Returns whether the client is still there.
fn slow_drip(c_write: &mut TcpStream, rest: &[u8], st: &ProxyState) -> bool {
    use std::sync::atomic::Ordering;
    let ms = st.trickle_ms.load(Ordering::SeqCst);
    if ms == 0 {
        // Silent: hold the connection open until the client closes it.
        let mut probe = c_write.try_clone().expect("clone");
        let _ = probe.set_read_timeout(None);
        let mut byte = [0u8; 1];
        while matches!(probe.read(&mut byte), Ok(n) if n > 0) {}
        return false;
    }
    for b in rest {
        std::thread::sleep(Duration::from_millis(ms));
        if c_write.write_all(std::slice::from_ref(b)).is_err() {
            return false;
        }
        st.forwarded.fetch_add(1, Ordering::SeqCst);
    }
    true
}

/// The token server of [`Mode::Token`]: `GET /token?service=…&scope=…` with basic auth answers
/// `{"token": JWT}` granting exactly the requested scopes. JWTs are RS256, signed by `openssl`
/// with a key whose self-signed certificate (`token.pem`) the registry trusts; the certificate
/// rides in the `x5c` header, which is how distribution finds the key.
mod token {
    use std::io::{BufRead, BufReader, Write};
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    pub const SERVICE: &str = "baleen-test";
    pub const ISSUER: &str = "baleen-test-issuer";

    pub fn start(
        openssl: &Path,
        dir: &Path,
        user: &str,
        password: &str,
    ) -> (u16, Arc<AtomicUsize>) {
        let run = |args: &[&str]| {
            let out = Command::new(openssl).current_dir(dir).args(args).output().expect("openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "token.key",
            "-out",
            "token.pem",
            "-days",
            "3",
            "-subj",
            "/CN=baleen token issuer",
        ]);
        run(&["x509", "-in", "token.pem", "-outform", "DER", "-out", "token.der"]);
        let der = std::fs::read(dir.join("token.der")).expect("token.der");
        let x5c = super::base64_encode(&der);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("token port");
        let port = listener.local_addr().expect("addr").port();
        let count = Arc::new(AtomicUsize::new(0));
        let expected =
            format!("Basic {}", super::base64_encode(format!("{user}:{password}").as_bytes()));
        let password = password.to_string();
        let (openssl, dir, user, issued) =
            (openssl.to_path_buf(), dir.to_path_buf(), user.to_string(), count.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut request_line = String::new();
                let _ = reader.read_line(&mut request_line);
                let mut authorized = false;
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("authorization") && v.trim() == expected {
                            authorized = true;
                        }
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                // OAuth2 (an identity token): POST grant_type=refresh_token; the password
                // doubles as the refresh token.
                let mut target = request_line.split(' ').nth(1).unwrap_or("").to_string();
                let oauth = request_line.starts_with("POST ");
                if oauth {
                    let mut body = vec![0u8; length.min(65536)];
                    let _ = std::io::Read::read_exact(&mut reader, &mut body);
                    let form = String::from_utf8_lossy(&body).into_owned();
                    let field = |name: &str| {
                        form.split('&')
                            .filter_map(|p| p.split_once('='))
                            .find(|(k, _)| *k == name)
                            .map(|(_, v)| percent_decode(v))
                    };
                    authorized = field("grant_type").as_deref() == Some("refresh_token")
                        && field("refresh_token").as_deref() == Some(password.as_str());
                    target = format!("/token?{form}");
                }
                let (status, body) = if authorized {
                    let jwt = issue(&openssl, &dir, &x5c, &user, &scopes(&target));
                    issued.fetch_add(1, Ordering::SeqCst);
                    let key = if oauth { "access_token" } else { "token" };
                    ("200 OK", format!(r#"{{"{key}":"{jwt}"}}"#))
                } else {
                    ("401 Unauthorized", r#"{"details":"bad credentials"}"#.to_string())
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (port, count)
    }

    fn percent_decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'%' if i + 2 < b.len() => {
                    let h = std::str::from_utf8(&b[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    out.push(h.unwrap_or(b'%'));
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The `access` claim for every `scope=repository:NAME:ACTIONS` in the request target.
    fn scopes(target: &str) -> String {
        let query = target.split_once('?').map_or("", |(_, q)| q);
        let mut access = Vec::new();
        for pair in query.split('&') {
            let Some(("scope", v)) = pair.split_once('=') else { continue };
            for scope in percent_decode(v).split(' ') {
                let mut parts = scope.splitn(3, ':');
                let (Some(kind), Some(name), Some(actions)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let actions: Vec<String> = actions.split(',').map(|a| format!("\"{a}\"")).collect();
                access.push(format!(
                    r#"{{"type":"{kind}","name":"{name}","actions":[{}]}}"#,
                    actions.join(",")
                ));
            }
        }
        format!("[{}]", access.join(","))
    }

    fn b64url(data: &[u8]) -> String {
        super::base64_encode(data)
            .replace('+', "-")
            .replace('/', "_")
            .trim_end_matches('=')
            .to_string()
    }

    fn issue(openssl: &PathBuf, dir: &Path, x5c: &str, user: &str, access: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let header = format!(r#"{{"alg":"RS256","typ":"JWT","x5c":["{x5c}"]}}"#);
        let claims = format!(
            r#"{{"iss":"{ISSUER}","sub":"{user}","aud":"{SERVICE}","exp":{},"nbf":{},"iat":{},"jti":"{now}-{}","access":{access}}}"#,
            now + 600,
            now - 60,
            now - 60,
            access.len()
        );
        let input = format!("{}.{}", b64url(header.as_bytes()), b64url(claims.as_bytes()));
        let mut child = Command::new(openssl)
            .current_dir(dir)
            .args(["dgst", "-sha256", "-sign", "token.key"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("openssl dgst");
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("writing to openssl");
        let out = child.wait_with_output().expect("openssl dgst");
        assert!(out.status.success(), "openssl dgst failed");
        format!("{input}.{}", b64url(&out.stdout))
    }
}
