//! baleen-netboot: serving built systems to machines that boot from the network.
//!
//! Key types:
//! - [`Catalog`]: the files served, each under one plain, URL-safe name. Nothing else is
//!   reachable: a request names an entry of the catalog exactly or gets "not found", so no
//!   request path is ever joined to a host directory.
//! - [`ipxe::script`]: the iPXE script of one system (kernel+initrd, an EFI binary, or a SAN
//!   image), with names relative to the script's own URL, so it works whichever address the
//!   machine reached the server by.
//! - [`http::HttpServer`]: HTTP/1.1 GET and HEAD, one byte range, bounded connections (in all
//!   and per client address), a deadline for the request head and a floor on the transfer rate.
//! - [`tftp::TftpServer`]: read-only TFTP (RFC 1350, octet mode) with the `blksize` (RFC 2348)
//!   and `tsize` (RFC 2349) options, bounded transfers (in all and per client address) and
//!   retransmissions; the listening port answers requests only.
//!
//! Non-goals: directory listings, uploads (TFTP write requests are refused), TLS, DHCP
//! (the machine's DHCP server, or qemu's user network, hands out the script's URL).

pub mod catalog;
pub mod http;
pub mod ipxe;
pub mod tftp;

/// The error chain on one line: `baleen-spec`'s file, included so that it has one home.
#[path = "../../spec/src/chain.rs"]
mod chain;
use chain::chain;

pub use catalog::{Catalog, CatalogError, Content};

/// One answered request, for the caller's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub peer: std::net::SocketAddr,
    /// `GET`, `HEAD`, `RRQ`.
    pub method: &'static str,
    /// The path or file name asked for, control characters escaped.
    pub name: String,
    /// The HTTP status, or 0 for TFTP (`error` says why a TFTP transfer failed).
    pub status: u16,
    pub bytes: u64,
    pub error: Option<String>,
}

/// Where a server reports each request; the CLI prints them, tests collect them.
pub type Log = std::sync::Arc<dyn Fn(&Served) + Send + Sync>;

/// A request's text as a log line shows it: control characters escaped, at most 200 chars.
pub(crate) fn printable(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.chars().take(200).flat_map(char::escape_default).collect()
}

/// Counts the live connections or transfers of a server; a slot is given back when dropped.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    active: std::sync::atomic::AtomicUsize,
}

pub(crate) struct Slot(std::sync::Arc<Slots>);

impl Slots {
    /// A slot when fewer than `max` are taken.
    pub(crate) fn take(self: &std::sync::Arc<Self>, max: usize) -> Option<Slot> {
        use std::sync::atomic::Ordering;
        let prev = self.active.fetch_add(1, Ordering::SeqCst);
        if prev >= max {
            self.active.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot(self.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Counts the live connections or transfers of each peer address, so that one host cannot
/// take every slot of a server; a slot is given back when dropped.
#[derive(Debug, Default)]
pub(crate) struct PeerSlots {
    active: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

pub(crate) struct PeerSlot(std::sync::Arc<PeerSlots>, std::net::IpAddr);

impl PeerSlots {
    /// A slot when `ip` holds fewer than `max`.
    pub(crate) fn take(
        self: &std::sync::Arc<Self>,
        ip: std::net::IpAddr,
        max: usize,
    ) -> Option<PeerSlot> {
        let mut active = self.active.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let held = active.entry(ip).or_insert(0);
        if *held >= max {
            return None;
        }
        *held += 1;
        Some(PeerSlot(self.clone(), ip))
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut active = self.0.active.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(held) = active.get_mut(&self.1) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                active.remove(&self.1);
            }
        }
    }
}
