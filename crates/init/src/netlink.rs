//! Just enough rtnetlink for init: bring a link up, create a veth pair or a link of another
//! kind, and move a link into a container's network namespace (runtime.json `interfaces`).
//!
//! Written here rather than pulled in (`rtnetlink`, `neli`) because those bring async runtimes
//! or macro-heavy stacks into a 5 MB static PID 1, and init needs four messages.
//! Non-goals: addresses, routes, bridges — containers configure their own network.

use crate::spec::Interface;
use std::io;

/// Errors talking to the kernel's routing socket.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("{what} {name}")]
    Io { what: &'static str, name: String, source: io::Error },
    #[error("interface entry has no name")]
    NoName,
    #[error("creating veth {name}: a veth pair needs a peer")]
    NoPeer { name: String },
}

const RTM_NEWLINK: u16 = 16;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_PID: u16 = 19;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFF_UP: u32 = 1;

/// A netlink request under construction: header, ifinfomsg, attributes.
#[derive(Debug)]
pub struct Msg {
    buf: Vec<u8>,
}

fn ifinfomsg(index: i32, flags: u32, change: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    // family AF_UNSPEC (0), pad, type 0
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

impl Msg {
    /// An RTM_NEWLINK request for link `index` (0 = a new link).
    pub fn new_link(flags: u16, index: i32, ifflags: u32, change: u32) -> Msg {
        let mut buf = vec![0u8; 16];
        buf[4..6].copy_from_slice(&RTM_NEWLINK.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf[8..12].copy_from_slice(&1u32.to_ne_bytes()); // sequence number
        buf.extend_from_slice(&ifinfomsg(index, ifflags, change));
        Msg { buf }
    }

    fn align(&mut self) {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }

    /// Appends one attribute.
    pub fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Self {
        self.align();
        self.buf.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self
    }

    /// Appends a NUL-terminated string attribute.
    pub fn attr_str(&mut self, kind: u16, s: &str) -> &mut Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(kind, &v)
    }

    /// Opens a nested attribute; close it with [`Msg::end`].
    pub fn begin(&mut self, kind: u16) -> usize {
        self.align();
        let at = self.buf.len();
        self.attr(kind, &[]);
        at
    }

    /// Closes the nested attribute opened at `at`.
    pub fn end(&mut self, at: usize) {
        self.align();
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// Raw bytes with the total length filled in.
    pub fn finish(mut self) -> Vec<u8> {
        self.align();
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// The request creating a veth pair `name`/`peer` (in init's namespace).
pub fn veth_request(name: &str, peer: &str) -> Vec<u8> {
    let mut m = Msg::new_link(NLM_F_CREATE | NLM_F_EXCL, 0, 0, 0);
    m.attr_str(IFLA_IFNAME, name);
    let info = m.begin(IFLA_LINKINFO);
    m.attr_str(IFLA_INFO_KIND, "veth");
    let data = m.begin(IFLA_INFO_DATA);
    let p = m.begin(VETH_INFO_PEER);
    m.buf.extend_from_slice(&ifinfomsg(0, 0, 0));
    m.attr_str(IFLA_IFNAME, peer);
    m.end(p);
    m.end(data);
    m.end(info);
    m.finish()
}

/// The request creating a link of `kind`, directly in `pid`'s namespace when `pid` is given.
pub fn link_request(name: &str, kind: &str, pid: Option<i32>) -> Vec<u8> {
    let mut m = Msg::new_link(NLM_F_CREATE | NLM_F_EXCL, 0, 0, 0);
    m.attr_str(IFLA_IFNAME, name);
    if let Some(pid) = pid {
        m.attr(IFLA_NET_NS_PID, &(pid as u32).to_ne_bytes());
    }
    let info = m.begin(IFLA_LINKINFO);
    m.attr_str(IFLA_INFO_KIND, kind);
    m.end(info);
    m.finish()
}

/// The request moving link `index` into `pid`'s network namespace.
pub fn move_request(index: i32, pid: i32) -> Vec<u8> {
    let mut m = Msg::new_link(0, index, 0, 0);
    m.attr(IFLA_NET_NS_PID, &(pid as u32).to_ne_bytes());
    m.finish()
}

/// The request setting link `index` up.
pub fn up_request(index: i32) -> Vec<u8> {
    Msg::new_link(0, index, IFF_UP, IFF_UP).finish()
}

#[cfg(target_os = "linux")]
mod socket {
    use rustix::net::{netlink, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
    use std::io;

    /// Sends one request on a fresh NETLINK_ROUTE socket and waits for its ACK.
    pub fn request(msg: &[u8]) -> io::Result<()> {
        // NETLINK_ROUTE is protocol 0: rustix takes it as `None`.
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None,
        )?;
        // pid 0, no groups: the kernel.
        let kernel = netlink::SocketAddrNetlink::new(0, 0);
        rustix::net::sendto(&fd, msg, SendFlags::empty(), &kernel)?;
        let mut buf = [0u8; 4096];
        let (_, n) = rustix::net::recv(&fd, &mut buf, RecvFlags::empty())?;
        super::parse_ack(&buf[..n.min(buf.len())])
    }

    /// if_nametoindex(3): rustix's equivalent needs a socket of the caller's; libc opens its
    /// own.
    #[allow(unsafe_code)]
    pub fn index(name: &str) -> io::Result<i32> {
        let c = crate::sys::real::cstr(name)?;
        // SAFETY: c is a NUL-terminated string alive for the call.
        let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
        if i == 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(i as i32)
        }
    }
}

/// Reads the kernel's answer: an NLMSG_ERROR with code 0 is the ACK.
pub fn parse_ack(buf: &[u8]) -> io::Result<()> {
    if buf.len() < 20 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "short netlink reply"));
    }
    let kind = u16::from_ne_bytes([buf[4], buf[5]]);
    if kind != NLMSG_ERROR {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "netlink reply is not an ACK"));
    }
    let code = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
    if code == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(-code))
    }
}

/// Sets a link up in the caller's network namespace.
#[cfg(target_os = "linux")]
pub fn link_up(name: &str) -> Result<(), NetlinkError> {
    let io = |what, source| NetlinkError::Io { what, name: name.into(), source };
    let i = socket::index(name).map_err(|e| io("finding interface", e))?;
    socket::request(&up_request(i)).map_err(|e| io("setting up", e))
}

/// One runtime.json `interfaces` entry for the container whose process is `pid`, with
/// LinuxKit's semantics: a `peer` implies a veth; veths and `createInRoot` links are created in
/// init's namespace and the named end is moved; without `add` an existing link is moved.
#[cfg(target_os = "linux")]
pub fn apply_interface(i: &Interface, pid: i32) -> Result<(), NetlinkError> {
    if i.name.is_empty() {
        return Err(NetlinkError::NoName);
    }
    let io = |what, source| NetlinkError::Io { what, name: i.name.clone(), source };
    let add = if i.add.is_empty() && !i.peer.is_empty() { "veth" } else { i.add.as_str() };
    let create_in_root = i.create_in_root || add == "veth";
    if add == "veth" {
        if i.peer.is_empty() {
            return Err(NetlinkError::NoPeer { name: i.name.clone() });
        }
        socket::request(&veth_request(&i.name, &i.peer)).map_err(|e| io("creating veth", e))?;
    } else if !add.is_empty() {
        let target = (!create_in_root).then_some(pid);
        socket::request(&link_request(&i.name, add, target)).map_err(|e| io("creating link", e))?;
        if !create_in_root {
            return Ok(());
        }
    }
    let idx = socket::index(&i.name).map_err(|e| io("finding interface", e))?;
    socket::request(&move_request(idx, pid)).map_err(|e| io("moving into the container", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_ne_bytes([b[at], b[at + 1]])
    }

    #[test]
    fn veth_request_nests_the_peer() {
        let b = veth_request("veth0", "veth1");
        assert_eq!(b.len() % 4, 0);
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize, b.len());
        assert_eq!(u16_at(&b, 4), RTM_NEWLINK);
        // First attribute after the 16-byte header and 16-byte ifinfomsg: IFLA_IFNAME "veth0\0".
        assert_eq!(u16_at(&b, 32), 10);
        assert_eq!(u16_at(&b, 34), IFLA_IFNAME);
        assert_eq!(&b[36..42], b"veth0\0");
        // Then IFLA_LINKINFO spanning to the end of the message.
        assert_eq!(u16_at(&b, 46), IFLA_LINKINFO);
        assert_eq!(u16_at(&b, 44) as usize, b.len() - 44);
        let tail = &b[b.len() - 8..];
        assert_eq!(&tail[..6], b"veth1\0");
    }

    #[test]
    fn ack_codes_become_errors() {
        let mut b = vec![0u8; 36];
        b[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        assert!(parse_ack(&b).is_ok());
        b[16..20].copy_from_slice(&(-17i32).to_ne_bytes());
        assert_eq!(parse_ack(&b).unwrap_err().raw_os_error(), Some(17));
    }
}
