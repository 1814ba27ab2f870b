//! HTTP/1.1 for a [`Catalog`]: GET and HEAD of whole entries or one byte range, then the
//! connection is closed (`Connection: close`; iPXE and curl open a new one per file).
//!
//! Why not a crate: what network boot needs is this small (no bodies to read, no keep-alive,
//! no TLS), and each bound a server on a LAN needs is explicit here: a cap on live connections,
//! in all and per client address (the next one gets 503 at once), a deadline for the whole request head (a client trickling
//! header bytes is dropped), a cap on its size, and a floor on the rate at which a client takes
//! the body. tiny_http, for one, grows a thread per client with no cap or head deadline.

use crate::catalog::{Catalog, Content, Opened};
use crate::{printable, Log, PeerSlots, Served, Slots};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Live connections one client address may hold: without a share, one host opening 32
/// connections (and taking the body slowly) left every other machine with 503.
pub const MAX_CONNECTIONS_PER_PEER: usize = 8;
/// The most handed to the socket in one write, so that the rate floor is checked often.
const WRITE_PIECE: usize = 16 << 10;
/// The shortest wait of one write (a write timeout cannot be zero; a client out of allowance
/// is dropped before its write, so this only rounds up the last one).
const MIN_WRITE_WAIT: Duration = Duration::from_millis(50);

/// The bounds of an [`HttpServer`].
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Live connections at most; one more is answered 503 and closed.
    pub max_connections: usize,
    /// The whole request head must arrive within this.
    pub head_deadline: Duration,
    /// The largest request head accepted (431 beyond it).
    pub max_head: usize,
    /// A client that takes no byte for this long is dropped.
    pub stall: Duration,
    /// …and one slower on average than this many bytes a second, after `stall`: it is dropped
    /// once `stall` + bytes sent / `min_rate` has passed since the body began, even in the
    /// middle of a write.
    pub min_rate: u64,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            max_connections: 32,
            head_deadline: Duration::from_secs(10),
            max_head: 8 << 10,
            stall: Duration::from_secs(30),
            min_rate: 16 << 10,
        }
    }
}

/// Starting the server failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("listening for HTTP on {addr}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("reading the address the HTTP listener got")]
    LocalAddr(#[source] std::io::Error),
}

/// A listening server; [`HttpServer::run`] answers requests until the process ends.
pub struct HttpServer {
    listener: TcpListener,
    catalog: Arc<Catalog>,
    limits: HttpLimits,
    log: Log,
    slots: Arc<Slots>,
    peers: Arc<PeerSlots>,
    /// Connections past the cap being answered 503.
    refusing: Arc<Slots>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer").field("listener", &self.listener).finish()
    }
}

impl HttpServer {
    /// Listens on `addr` (port 0: any free port; see [`HttpServer::local_addr`]).
    pub fn bind(
        addr: SocketAddr,
        catalog: Arc<Catalog>,
        limits: HttpLimits,
        log: Log,
    ) -> Result<HttpServer, HttpError> {
        let listener =
            TcpListener::bind(addr).map_err(|source| HttpError::Bind { addr, source })?;
        let (slots, peers, refusing) = (Arc::default(), Arc::default(), Arc::default());
        Ok(HttpServer { listener, catalog, limits, log, slots, peers, refusing })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, HttpError> {
        self.listener.local_addr().map_err(HttpError::LocalAddr)
    }

    /// Accepts connections forever, one thread each, at most `max_connections` at a time and
    /// [`MAX_CONNECTIONS_PER_PEER`] from one address.
    pub fn run(&self) {
        loop {
            let (stream, peer) = match self.listener.accept() {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors, or a connection reset before accept: wait, go on.
                    tracing::warn!("accepting an HTTP connection: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            let Some(peer_slot) = self.peers.take(peer.ip(), MAX_CONNECTIONS_PER_PEER) else {
                self.refuse_busy(stream);
                continue;
            };
            let Some(slot) = self.slots.take(self.limits.max_connections) else {
                self.refuse_busy(stream);
                continue;
            };
            let (catalog, limits, log) =
                (self.catalog.clone(), self.limits.clone(), self.log.clone());
            let spawned = std::thread::Builder::new().name("http".into()).spawn(move || {
                let _slots = (slot, peer_slot);
                handle(stream, &catalog, &limits, &log);
            });
            if let Err(e) = spawned {
                tracing::warn!("starting a thread for an HTTP connection: {e}");
            }
        }
    }
}

/// Connections past the cap answered 503 at a time; more are closed unanswered.
const MAX_REFUSING: usize = 8;
/// How long a connection past the cap may take to send its request head.
const REFUSE_DEADLINE: Duration = Duration::from_secs(1);

impl HttpServer {
    /// 503 to a connection over the cap, once its request head is read (closing a socket with
    /// unread bytes resets it, and the client would see the reset, not the 503), on a thread
    /// of a small pool of its own, waiting [`REFUSE_DEADLINE`] at most.
    fn refuse_busy(&self, stream: TcpStream) {
        let Some(slot) = self.refusing.take(MAX_REFUSING) else { return };
        let limits = HttpLimits { head_deadline: REFUSE_DEADLINE, ..self.limits.clone() };
        let spawned = std::thread::Builder::new().name("http-busy".into()).spawn(move || {
            let _slot = slot;
            let mut stream = stream;
            let _ = stream.set_write_timeout(Some(REFUSE_DEADLINE));
            if let Ok(Ok(_)) = read_head(&mut stream, &limits) {
                let _ = stream.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\
                      Connection: close\r\n\r\n",
                );
            }
        });
        if let Err(e) = spawned {
            tracing::warn!("starting a thread to refuse an HTTP connection: {e}");
        }
    }
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The target without its query.
    pub path: String,
    pub range: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
        }
    }
}

/// The status line a request that cannot be served gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal(pub u16, pub &'static str);

/// Reads a request head: `METHOD TARGET HTTP/1.x`, then headers (only `Range` matters).
pub fn parse_request(head: &[u8]) -> Result<Request, Refusal> {
    const BAD: Refusal = Refusal(400, "Bad Request");
    let text = std::str::from_utf8(head).map_err(|_| BAD)?;
    let mut lines = text.split("\r\n");
    let line = lines.next().ok_or(BAD)?;
    let mut parts = line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) => (m, t, v),
        _ => return Err(BAD),
    };
    if !version.starts_with("HTTP/1.") {
        return Err(Refusal(505, "HTTP Version Not Supported"));
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        _ => return Err(Refusal(405, "Method Not Allowed")),
    };
    let path = target.split('?').next().unwrap_or_default().to_string();
    let mut range = None;
    for h in lines.filter(|l| !l.is_empty()) {
        let (name, value) = h.split_once(':').ok_or(BAD)?;
        if name.eq_ignore_ascii_case("range") {
            range = Some(value.trim().to_string());
        }
    }
    Ok(Request { method, path, range })
}

/// What a `Range` header asks of an entry of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// The whole entry (no Range, or one this server does not do: several ranges, other units).
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// A range that starts past the end: 416.
    Unsatisfiable,
}

/// RFC 9110's `bytes=a-b`, `bytes=a-` and `bytes=-n`, one range only.
pub fn parse_range(header: Option<&str>, len: u64) -> Span {
    let Some(spec) = header.and_then(|h| h.strip_prefix("bytes=")) else { return Span::Whole };
    if spec.contains(',') {
        return Span::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return Span::Whole };
    let num = |s: &str| s.trim().parse::<u64>().ok();
    match (a.trim().is_empty(), num(a), num(b)) {
        // A suffix: the last n bytes.
        (true, _, Some(n)) if n > 0 && len > 0 => {
            Span::Part { start: len.saturating_sub(n), end: len - 1 }
        }
        (true, _, _) => Span::Unsatisfiable,
        (false, Some(start), _) if start >= len => Span::Unsatisfiable,
        (false, Some(start), None) if b.trim().is_empty() => Span::Part { start, end: len - 1 },
        (false, Some(start), Some(end)) if end >= start => {
            Span::Part { start, end: end.min(len - 1) }
        }
        _ => Span::Whole,
    }
}

fn content_type(name: &str) -> &'static str {
    if name.ends_with(".ipxe") || name.ends_with("-cmdline") {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

/// One connection: read the head within the deadline, answer, close.
fn handle(mut stream: TcpStream, catalog: &Catalog, limits: &HttpLimits, log: &Log) {
    let Ok(peer) = stream.peer_addr() else { return };
    let mut served =
        Served { peer, method: "?", name: String::new(), status: 0, bytes: 0, error: None };
    let result = answer(&mut stream, catalog, limits, &mut served);
    if let Err(e) = result {
        served.error = Some(e.to_string());
    }
    log(&served);
}

fn answer(
    stream: &mut TcpStream,
    catalog: &Catalog,
    limits: &HttpLimits,
    served: &mut Served,
) -> std::io::Result<()> {
    stream.set_write_timeout(Some(limits.stall))?;
    let head = match read_head(stream, limits)? {
        Ok(head) => head,
        Err(refusal) => return refuse(stream, refusal, served),
    };
    let req = match parse_request(&head) {
        Ok(r) => r,
        Err(refusal) => {
            served.name = printable(head.split(|b| *b == b'\r').next().unwrap_or_default());
            return refuse(stream, refusal, served);
        }
    };
    served.method = req.method.as_str();
    served.name = printable(req.path.as_bytes());
    let Some((name, content)) = catalog.lookup(&req.path) else {
        return refuse(stream, Refusal(404, "Not Found"), served);
    };
    let Opened { len, mut body } = match Catalog::open(content) {
        Ok(o) => o,
        Err(e) => {
            let what = match content {
                Content::File(p) => p.display().to_string(),
                Content::Text(_) => name.to_string(),
            };
            served.error = Some(format!("opening {what}: {e}"));
            return refuse(stream, Refusal(500, "Internal Server Error"), served);
        }
    };
    let (status, start, count, range_line) = match parse_range(req.range.as_deref(), len) {
        Span::Whole => ((200, "OK"), 0, len, String::new()),
        Span::Part { start, end } => (
            (206, "Partial Content"),
            start,
            end - start + 1,
            format!("Content-Range: bytes {start}-{end}/{len}\r\n"),
        ),
        Span::Unsatisfiable => {
            let head = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            );
            served.status = 416;
            return stream.write_all(head.as_bytes());
        }
    };
    served.status = status.0;
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {count}\r\nAccept-Ranges: bytes\r\n\
         {range_line}Connection: close\r\n\r\n",
        status.0,
        status.1,
        content_type(name),
    );
    stream.write_all(head.as_bytes())?;
    if req.method == Method::Head {
        return Ok(());
    }
    body.seek(SeekFrom::Start(start))?;
    served.bytes = send_body(stream, &mut body.take(count), limits)?;
    Ok(())
}

fn refuse(stream: &mut TcpStream, r: Refusal, served: &mut Served) -> std::io::Result<()> {
    served.status = r.0;
    let allow = if r.0 == 405 { "Allow: GET, HEAD\r\n" } else { "" };
    let text = format!("{} {}\n", r.0, r.1);
    let head = format!(
        "HTTP/1.1 {} {}\r\n{allow}Content-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{text}",
        r.0,
        r.1,
        text.len()
    );
    stream.write_all(head.as_bytes())
}

/// The request head, through the blank line; a refusal when it is too large. Each read waits
/// only for what is left of the head deadline, so a trickling client cannot hold the slot.
fn read_head(
    stream: &mut TcpStream,
    limits: &HttpLimits,
) -> std::io::Result<Result<Vec<u8>, Refusal>> {
    let deadline = Instant::now() + limits.head_deadline;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            head.truncate(end);
            return Ok(Ok(head));
        }
        if head.len() > limits.max_head {
            return Ok(Err(Refusal(431, "Request Header Fields Too Large")));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no complete request within {:?}", limits.head_deadline),
            ));
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
}

/// Copies `body` to the client; drops a client slower than the rate floor. Each write waits
/// at most what is left of the client's allowance (and `stall`), so a client taking a few bytes
/// now and then cannot stretch one write past the floor.
fn send_body(
    stream: &mut TcpStream,
    body: &mut impl Read,
    limits: &HttpLimits,
) -> std::io::Result<u64> {
    let started = Instant::now();
    let rate = u128::from(limits.min_rate.max(1));
    let mut buf = vec![0u8; WRITE_PIECE];
    let mut sent: u64 = 0;
    loop {
        let n = body.read(&mut buf)?;
        if n == 0 {
            return Ok(sent);
        }
        let mut piece = &buf[..n];
        while !piece.is_empty() {
            let earned = u128::from(sent) * 1000 / rate;
            let allowed =
                limits.stall + Duration::from_millis(u64::try_from(earned).unwrap_or(u64::MAX));
            let left = allowed.saturating_sub(started.elapsed());
            let too_slow = || {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "client took {sent} bytes in {:?}, under {} B/s",
                        started.elapsed(),
                        limits.min_rate
                    ),
                )
            };
            if left.is_zero() {
                return Err(too_slow());
            }
            stream.set_write_timeout(Some(left.min(limits.stall).max(MIN_WRITE_WAIT)))?;
            match stream.write(piece) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(k) => {
                    piece = &piece[k..];
                    sent += u64::try_from(k).unwrap_or(u64::MAX);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if started.elapsed() >= allowed {
                        return Err(too_slow());
                    }
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("client took no data for {:?}", limits.stall),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_to_method_path_and_range() {
        let r =
            parse_request(b"GET /sys.ipxe?x=1 HTTP/1.1\r\nHost: a\r\nrange: bytes=0-9").unwrap();
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.path, "/sys.ipxe");
        assert_eq!(r.range.as_deref(), Some("bytes=0-9"));
        assert_eq!(parse_request(b"PUT /x HTTP/1.1").unwrap_err().0, 405);
        assert_eq!(parse_request(b"GET /x HTTP/2").unwrap_err().0, 505);
        assert_eq!(parse_request(b"GET /x").unwrap_err().0, 400);
        assert_eq!(parse_request(b"GET  /x HTTP/1.1").unwrap_err().0, 400);
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        let r = |h: &str| parse_range(Some(h), 100);
        assert_eq!(parse_range(None, 100), Span::Whole);
        assert_eq!(r("bytes=0-9"), Span::Part { start: 0, end: 9 });
        assert_eq!(r("bytes=90-"), Span::Part { start: 90, end: 99 });
        assert_eq!(r("bytes=90-500"), Span::Part { start: 90, end: 99 });
        assert_eq!(r("bytes=-10"), Span::Part { start: 90, end: 99 });
        assert_eq!(r("bytes=-500"), Span::Part { start: 0, end: 99 });
        assert_eq!(r("bytes=100-"), Span::Unsatisfiable);
        assert_eq!(r("bytes=-0"), Span::Unsatisfiable);
        assert_eq!(r("bytes=0-1,5-6"), Span::Whole);
        assert_eq!(r("items=0-1"), Span::Whole);
        assert_eq!(r("bytes=9-1"), Span::Whole);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Span::Unsatisfiable);
    }
}
