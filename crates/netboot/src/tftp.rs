//! Read-only TFTP for a [`Catalog`]: RFC 1350 in octet mode, with the `blksize` (RFC 2348)
//! and `tsize` (RFC 2349) options that iPXE and PXE ROMs ask for.
//!
//! Each read request gets a transfer of its own on a fresh port (the RFC's transfer ID), at
//! most `max_transfers` at a time and [`MAX_PER_PEER`] per client address (one more is
//! answered with an error). The first packet of a transfer is sent [`FIRST_SENDS`] times at
//! most, [`FIRST_TIMEOUT`] apart, since the request's source may be spoofed; once the client
//! has answered, a block not acknowledged within `timeout` is sent again, `retries` times at
//! most; then the transfer ends. Write requests are refused; so is every name the catalog does
//! not hold exactly. The listening port answers nothing but read and write requests, and at
//! most [`ERRORS_PER_SECOND`] error packets a second.

use crate::catalog::{Catalog, Opened};
use crate::{chain, printable, Log, PeerSlots, Served, Slots};
use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RRQ: u16 = 1;
const WRQ: u16 = 2;
const DATA: u16 = 3;
const ACK: u16 = 4;
const ERROR: u16 = 5;
const OACK: u16 = 6;

/// RFC 1350's block size, used when the client asks for no other.
pub const DEFAULT_BLKSIZE: usize = 512;
/// The largest block this server sends: a jumbo frame's worth, whatever a client asks (RFC 2348
/// allows 65464; a block is held in memory per transfer, and IP fragments are lost as a whole).
pub const MAX_BLKSIZE: usize = 8192;

/// Transfers one client address may hold at once: without a share, a host (or a spoofed
/// source) sending 16 unanswered requests held every slot and every other machine was refused.
pub const MAX_PER_PEER: usize = 4;
/// Sends of a transfer's first packet (OACK or block 1) before the client has answered once.
/// A read request's source may be spoofed: this bounds what a forged request reflects to its
/// victim (two packets, not six) and how long it holds a slot.
pub const FIRST_SENDS: u32 = 2;
/// How long the first packet waits for its answer (a client on the LAN answers in
/// milliseconds; one whose answer is lost asks again with a new request).
pub const FIRST_TIMEOUT: Duration = Duration::from_millis(500);
/// Error packets the listening port sends a second at most (refused requests, the busy
/// answer), so a flood of requests with a spoofed source is not answered in kind.
pub const ERRORS_PER_SECOND: u32 = 20;

/// RFC 1350's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Undefined = 0,
    NotFound = 1,
    AccessViolation = 2,
    IllegalOperation = 4,
    OptionRefused = 8,
}

/// The bounds of a [`TftpServer`].
#[derive(Debug, Clone)]
pub struct TftpLimits {
    pub max_transfers: usize,
    /// How long to wait for each acknowledgement before sending the block again.
    pub timeout: Duration,
    /// How many times a block is sent again before the transfer is given up.
    pub retries: u32,
}

impl Default for TftpLimits {
    fn default() -> TftpLimits {
        TftpLimits { max_transfers: 16, timeout: Duration::from_secs(1), retries: 5 }
    }
}

/// Starting the server failed.
#[derive(Debug, thiserror::Error)]
pub enum TftpError {
    #[error("listening for TFTP on {addr}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("reading the address the TFTP socket got")]
    LocalAddr(#[source] std::io::Error),
}

/// Why one transfer ended early (for the request log; the client got an error packet or
/// silence).
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("opening a transfer port for {peer}")]
    Socket { peer: SocketAddr, source: std::io::Error },
    #[error("not in the catalog")]
    NotFound,
    #[error("reading {name}")]
    Read { name: String, source: std::io::Error },
    #[error("sending block {block}")]
    Send { block: u16, source: std::io::Error },
    #[error("waiting for the acknowledgement of block {block}")]
    Receive { block: u16, source: std::io::Error },
    #[error("the client ended the transfer: {message}")]
    ClientError { message: String },
    #[error("block {block} not acknowledged after {sends} sends")]
    Unacknowledged { block: u16, sends: u32 },
}

/// A request answered with an error packet: its code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: ErrorCode,
    pub message: String,
}

/// A read request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    pub name: String,
    /// The block size asked for, already bounded to 8..=[`MAX_BLKSIZE`].
    pub blksize: Option<usize>,
    pub tsize: bool,
}

/// Reads an RRQ: `01 name 0 mode 0 [option 0 value 0]…`. Unknown options are ignored (RFC
/// 2347: the server leaves out of its OACK what it does not do).
pub fn parse_request(packet: &[u8]) -> Result<ReadRequest, Refused> {
    let refused = |code, message: String| Refused { code, message };
    let illegal = |m: &str| refused(ErrorCode::IllegalOperation, m.to_string());
    let op = packet.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    match op {
        Some(RRQ) => {}
        Some(WRQ) => {
            return Err(refused(ErrorCode::AccessViolation, "this server is read-only".into()))
        }
        _ => return Err(illegal("expected a read request")),
    }
    let rest = &packet[2..];
    let Some(body) = rest.strip_suffix(&[0]) else {
        return Err(illegal("the request does not end with a zero byte"));
    };
    let mut fields = body.split(|b| *b == 0);
    let name = fields.next().ok_or_else(|| illegal("no file name"))?;
    let mode = fields.next().ok_or_else(|| illegal("no transfer mode"))?;
    if !mode.eq_ignore_ascii_case(b"octet") {
        let message = format!("only octet mode is served, not {:?}", printable(mode));
        return Err(refused(ErrorCode::Undefined, message));
    }
    let name = std::str::from_utf8(name)
        .map_err(|_| refused(ErrorCode::NotFound, "file not found".to_string()))?
        .to_string();
    let mut req = ReadRequest { name, blksize: None, tsize: false };
    while let (Some(opt), Some(value)) = (fields.next(), fields.next()) {
        let value = std::str::from_utf8(value).ok();
        if opt.eq_ignore_ascii_case(b"blksize") {
            let Some(n) = value.and_then(|v| v.parse::<usize>().ok()).filter(|n| *n >= 8) else {
                let message = "blksize must be 8 or more".to_string();
                return Err(refused(ErrorCode::OptionRefused, message));
            };
            req.blksize = Some(n.min(MAX_BLKSIZE));
        } else if opt.eq_ignore_ascii_case(b"tsize") {
            req.tsize = true;
        }
    }
    Ok(req)
}

/// A bound socket; [`TftpServer::run`] answers read requests until the process ends.
pub struct TftpServer {
    socket: UdpSocket,
    catalog: Arc<Catalog>,
    limits: TftpLimits,
    log: Log,
    slots: Arc<Slots>,
    peers: Arc<PeerSlots>,
}

impl std::fmt::Debug for TftpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TftpServer").field("socket", &self.socket).finish()
    }
}

impl TftpServer {
    pub fn bind(
        addr: SocketAddr,
        catalog: Arc<Catalog>,
        limits: TftpLimits,
        log: Log,
    ) -> Result<TftpServer, TftpError> {
        let socket = UdpSocket::bind(addr).map_err(|source| TftpError::Bind { addr, source })?;
        let (slots, peers) = (Arc::default(), Arc::default());
        Ok(TftpServer { socket, catalog, limits, log, slots, peers })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, TftpError> {
        self.socket.local_addr().map_err(TftpError::LocalAddr)
    }

    /// Answers read requests forever, each transfer on a thread and a port of its own.
    pub fn run(&self) {
        let mut buf = [0u8; 1024];
        let mut errors = ErrorBudget { second: Instant::now(), sent: 0 };
        loop {
            let (n, peer) = match self.socket.recv_from(&mut buf) {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("reading a TFTP request: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            // Only requests are answered here: an error for an ERROR, ACK, DATA or garbage
            // packet could bounce between two servers forever (CVE-2024-2169).
            let op = buf.get(..2).filter(|_| n >= 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
            if !matches!(op, Some(RRQ | WRQ)) {
                continue;
            }
            let mut served = Served {
                peer,
                method: "RRQ",
                name: String::new(),
                status: 0,
                bytes: 0,
                error: None,
            };
            let req = match parse_request(&buf[..n]) {
                Ok(r) => r,
                Err(Refused { code, message }) => {
                    if errors.allow() {
                        send_error(&self.socket, peer, code, &message);
                    }
                    served.error = Some(message);
                    (self.log)(&served);
                    continue;
                }
            };
            served.name = printable(req.name.as_bytes());
            let Some(peer_slot) = self.peers.take(peer.ip(), MAX_PER_PEER) else {
                let msg = "too many transfers from your address at once; try again";
                if errors.allow() {
                    send_error(&self.socket, peer, ErrorCode::Undefined, msg);
                }
                served.error = Some(msg.into());
                (self.log)(&served);
                continue;
            };
            let Some(slot) = self.slots.take(self.limits.max_transfers) else {
                let msg = "too many transfers at once; try again";
                if errors.allow() {
                    send_error(&self.socket, peer, ErrorCode::Undefined, msg);
                }
                served.error = Some(msg.into());
                (self.log)(&served);
                continue;
            };
            let local = match self.socket.local_addr() {
                Ok(a) => SocketAddr::new(a.ip(), 0),
                Err(e) => {
                    tracing::warn!("reading the TFTP socket's address: {e}");
                    continue;
                }
            };
            let (catalog, limits, log) =
                (self.catalog.clone(), self.limits.clone(), self.log.clone());
            let spawned = std::thread::Builder::new().name("tftp".into()).spawn(move || {
                let _slots = (slot, peer_slot);
                let result = transfer(local, peer, &req, &catalog, &limits, &mut served);
                if let Err(e) = result {
                    served.error = Some(chain(&e));
                }
                log(&served);
            });
            if let Err(e) = spawned {
                tracing::warn!("starting a thread for a TFTP transfer: {e}");
            }
        }
    }
}

/// Counts the error packets of the current second.
struct ErrorBudget {
    second: Instant,
    sent: u32,
}

impl ErrorBudget {
    /// Whether one more error packet may be sent this second.
    fn allow(&mut self) -> bool {
        self.allow_at(Instant::now())
    }

    fn allow_at(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.second) >= Duration::from_secs(1) {
            *self = ErrorBudget { second: now, sent: 0 };
        }
        self.sent += 1;
        self.sent <= ERRORS_PER_SECOND
    }
}

fn send_error(socket: &UdpSocket, peer: SocketAddr, code: ErrorCode, msg: &str) {
    let mut p = Vec::with_capacity(5 + msg.len());
    p.extend_from_slice(&ERROR.to_be_bytes());
    p.extend_from_slice(&(code as u16).to_be_bytes());
    p.extend_from_slice(msg.as_bytes());
    p.push(0);
    let _ = socket.send_to(&p, peer);
}

/// One transfer from a fresh port connected to `peer`: the OACK when options were asked for,
/// then the blocks in lock step. Returns why it stopped early, if it did.
fn transfer(
    local: SocketAddr,
    peer: SocketAddr,
    req: &ReadRequest,
    catalog: &Catalog,
    limits: &TftpLimits,
    served: &mut Served,
) -> Result<(), TransferError> {
    let socket = UdpSocket::bind(local)
        .and_then(|s| s.connect(peer).map(|()| s))
        .map_err(|source| TransferError::Socket { peer, source })?;
    let Some((_, content)) = catalog.lookup(&req.name) else {
        send_error(&socket, peer, ErrorCode::NotFound, "file not found");
        return Err(TransferError::NotFound);
    };
    let Opened { len, mut body } = match Catalog::open(content) {
        Ok(o) => o,
        Err(e) => {
            send_error(&socket, peer, ErrorCode::Undefined, "cannot read the file");
            return Err(TransferError::Read { name: req.name.clone(), source: e });
        }
    };
    let blksize = req.blksize.unwrap_or(DEFAULT_BLKSIZE);
    // Whether the client has answered once (see FIRST_SENDS).
    let mut answered = false;
    if req.blksize.is_some() || req.tsize {
        let mut oack = OACK.to_be_bytes().to_vec();
        if let Some(b) = req.blksize {
            oack.extend_from_slice(format!("blksize\0{b}\0").as_bytes());
        }
        if req.tsize {
            oack.extend_from_slice(format!("tsize\0{len}\0").as_bytes());
        }
        // The client acknowledges the OACK as block 0 (or declines it with an error).
        exchange(&socket, &oack, 0, limits, answered)?;
        answered = true;
    }
    let mut block: u16 = 1;
    let mut data = vec![0u8; 4 + blksize];
    loop {
        data[..2].copy_from_slice(&DATA.to_be_bytes());
        data[2..4].copy_from_slice(&block.to_be_bytes());
        let n = read_full(&mut body, &mut data[4..])
            .map_err(|source| TransferError::Read { name: req.name.clone(), source })?;
        exchange(&socket, &data[..4 + n], block, limits, answered)?;
        answered = true;
        served.bytes += u64::try_from(n).unwrap_or(u64::MAX);
        if n < blksize {
            return Ok(());
        }
        // Past block 65535 the number wraps to 0, as iPXE, PXE ROMs and tftp-hpa expect.
        block = block.wrapping_add(1);
    }
}

/// Sends `packet` until block `block` is acknowledged; gives up after `retries` resends, or
/// after [`FIRST_SENDS`] sends [`FIRST_TIMEOUT`] apart when the client has not `answered` yet.
/// A duplicate acknowledgement of an earlier block is ignored, not answered with a resend
/// (the Sorcerer's Apprentice bug of RFC 1350).
fn exchange(
    socket: &UdpSocket,
    packet: &[u8],
    block: u16,
    limits: &TftpLimits,
    answered: bool,
) -> Result<(), TransferError> {
    let (sends, timeout) = if answered {
        (limits.retries.saturating_add(1), limits.timeout)
    } else {
        (FIRST_SENDS.min(limits.retries.saturating_add(1)), FIRST_TIMEOUT.min(limits.timeout))
    };
    let mut buf = [0u8; 516];
    for _ in 0..sends {
        socket.send(packet).map_err(|source| TransferError::Send { block, source })?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            socket
                .set_read_timeout(Some(left))
                .map_err(|source| TransferError::Receive { block, source })?;
            let n = match socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(e) => return Err(TransferError::Receive { block, source: e }),
            };
            let op = buf.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
            let num = buf.get(2..4).map(|b| u16::from_be_bytes([b[0], b[1]]));
            match (op, num) {
                (Some(ACK), Some(n)) if n == block => return Ok(()),
                (Some(ERROR), _) => {
                    let msg = printable(
                        buf.get(4..n)
                            .unwrap_or_default()
                            .split(|b| *b == 0)
                            .next()
                            .unwrap_or_default(),
                    );
                    return Err(TransferError::ClientError { message: msg });
                }
                _ => {}
            }
        }
    }
    Err(TransferError::Unacknowledged { block, sends })
}

/// Fills `buf` unless the reader ends first; the number of bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_requests_parse_with_their_options() {
        let r = parse_request(b"\0\x01sys.ipxe\0octet\0blksize\x001432\0tsize\x000\0").unwrap();
        assert_eq!(r, ReadRequest { name: "sys.ipxe".into(), blksize: Some(1432), tsize: true });
        let big = parse_request(b"\0\x01k\0OCTET\0blksize\x0065464\0").unwrap();
        assert_eq!(big.blksize, Some(MAX_BLKSIZE), "bounded");
        let err = parse_request(b"\0\x02k\0octet\0").unwrap_err();
        assert_eq!(err.code, ErrorCode::AccessViolation, "write requests are refused");
        assert_eq!(parse_request(b"\0\x01k\0netascii\0").unwrap_err().code, ErrorCode::Undefined);
        assert_eq!(
            parse_request(b"\0\x01k\0octet\0blksize\x004\0").unwrap_err().code,
            ErrorCode::OptionRefused
        );
        assert_eq!(parse_request(b"\0\x01k\0octet").unwrap_err().code, ErrorCode::IllegalOperation);
        assert_eq!(parse_request(b"\0").unwrap_err().code, ErrorCode::IllegalOperation);
    }

    #[test]
    fn error_replies_are_capped_per_second() {
        let start = Instant::now();
        let mut budget = ErrorBudget { second: start, sent: 0 };
        let sent = (0..100).filter(|_| budget.allow_at(start)).count();
        assert_eq!(sent, usize::try_from(ERRORS_PER_SECOND).unwrap());
        let later = start + Duration::from_millis(999);
        assert!(!budget.allow_at(later), "still the same second");
        assert!(budget.allow_at(start + Duration::from_secs(1)), "a new second");
    }
}
