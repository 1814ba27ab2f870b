//! The ACPI power button, heard without acpid: the kernel's `button` driver reports presses on
//! the generic-netlink family `acpi_event` (multicast group `acpi_mc_group`) as an event of
//! device class `button/power`. init joins that group and treats a press as `poweroff`.
//!
//! Non-goals: sleep/lid buttons, the input-layer (evdev) route, ACPI events other than power.

use std::io;

const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const CTRL_ATTR_MCAST_GROUPS: u16 = 7;
const CTRL_ATTR_MCAST_GRP_NAME: u16 = 1;
const CTRL_ATTR_MCAST_GRP_ID: u16 = 2;
const ACPI_GENL_ATTR_EVENT: u16 = 1;
const NLM_F_REQUEST: u16 = 1;
const NLA_TYPE_MASK: u16 = 0x3fff;

/// The CTRL_CMD_GETFAMILY request for `acpi_event`.
pub fn family_request() -> Vec<u8> {
    let name = b"acpi_event\0";
    let attr_len = 4 + name.len();
    let total = 16 + 4 + attr_len.next_multiple_of(4);
    let mut b = Vec::with_capacity(total);
    b.extend_from_slice(&(total as u32).to_ne_bytes());
    b.extend_from_slice(&GENL_ID_CTRL.to_ne_bytes());
    b.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    b.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    b.extend_from_slice(&0u32.to_ne_bytes()); // port id
    b.extend_from_slice(&[CTRL_CMD_GETFAMILY, 1, 0, 0]); // genlmsghdr: cmd, version
    b.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    b.extend_from_slice(&CTRL_ATTR_FAMILY_NAME.to_ne_bytes());
    b.extend_from_slice(name);
    b.resize(total, 0);
    b
}

/// Netlink attributes in `buf`: (type, payload).
fn attrs(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > buf.len() {
            break;
        }
        out.push((kind, &buf[4..len]));
        buf = &buf[len.next_multiple_of(4).min(buf.len())..];
    }
    out
}

/// From the controller's reply: the family id and the id of its `acpi_mc_group` group.
pub fn parse_family(reply: &[u8]) -> Option<(u16, u32)> {
    if reply.len() < 20 || u16::from_ne_bytes([reply[4], reply[5]]) != GENL_ID_CTRL {
        return None;
    }
    let len = (u32::from_ne_bytes(reply[0..4].try_into().ok()?) as usize).min(reply.len());
    let mut family = None;
    let mut group = None;
    for (kind, data) in attrs(&reply[20..len]) {
        match kind {
            CTRL_ATTR_FAMILY_ID if data.len() >= 2 => {
                family = Some(u16::from_ne_bytes([data[0], data[1]]))
            }
            CTRL_ATTR_MCAST_GROUPS => {
                for (_, grp) in attrs(data) {
                    let a = attrs(grp);
                    let name = a.iter().find(|(k, _)| *k == CTRL_ATTR_MCAST_GRP_NAME);
                    let id = a.iter().find(|(k, _)| *k == CTRL_ATTR_MCAST_GRP_ID);
                    if let (Some((_, n)), Some((_, id))) = (name, id) {
                        if n.starts_with(b"acpi_mc_group") && id.len() >= 4 {
                            group = Some(u32::from_ne_bytes([id[0], id[1], id[2], id[3]]));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Some((family?, group?))
}

/// True when a message from the `acpi_event` family (`family`) is a power-button press.
pub fn is_power_button(msg: &[u8], family: u16) -> bool {
    if msg.len() < 20 || u16::from_ne_bytes([msg[4], msg[5]]) != family {
        return false;
    }
    attrs(&msg[20..])
        .iter()
        .any(|(k, d)| *k == ACPI_GENL_ATTR_EVENT && d.starts_with(b"button/power"))
}

/// A socket subscribed to ACPI events.
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub struct Listener {
    pub fd: std::os::fd::OwnedFd,
    family: u16,
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
impl Listener {
    /// Joins the ACPI event group; `Err` when the kernel has no ACPI event family.
    pub fn open() -> io::Result<Listener> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let flags = libc::SOCK_RAW | libc::SOCK_CLOEXEC;
        // SAFETY: socket() with constant arguments.
        let raw = unsafe { libc::socket(libc::AF_NETLINK, flags, libc::NETLINK_GENERIC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let req = family_request();
        // SAFETY: req is valid for its length; the socket is unbound, so the kernel is the peer.
        if unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = [0u8; 4096];
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let (family, group) = parse_family(&buf[..n as usize])
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no acpi_event family"))?;
        // SAFETY: setsockopt reads a u32 group id from a local variable.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_NETLINK,
                libc::NETLINK_ADD_MEMBERSHIP,
                (&group as *const u32).cast(),
                4,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fcntl flag manipulation on a descriptor we own.
        unsafe {
            let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        Ok(Listener { fd, family })
    }

    /// Reads pending events; true when one was a power-button press.
    pub fn power_pressed(&self) -> bool {
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 4096];
        let mut pressed = false;
        loop {
            // SAFETY: buf is writable for its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n <= 0 {
                return pressed;
            }
            pressed |= is_power_button(&buf[..n as usize], self.family);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut v = ((4 + data.len()) as u16).to_ne_bytes().to_vec();
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(data);
        v.resize(v.len().next_multiple_of(4), 0);
        v
    }

    fn msg(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut v = ((20 + body.len()) as u32).to_ne_bytes().to_vec();
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(&[0; 10]);
        v.extend_from_slice(&[1, 1, 0, 0]);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn request_names_the_family() {
        let r = family_request();
        assert_eq!(r.len() % 4, 0);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()) as usize, r.len());
        assert!(r.windows(11).any(|w| w == b"acpi_event\0"));
    }

    #[test]
    fn finds_family_and_group() {
        let grp = [
            attr(CTRL_ATTR_MCAST_GRP_NAME, b"acpi_mc_group\0"),
            attr(CTRL_ATTR_MCAST_GRP_ID, &5u32.to_ne_bytes()),
        ]
        .concat();
        let groups = attr(CTRL_ATTR_MCAST_GROUPS, &attr(1, &grp));
        let body = [
            attr(CTRL_ATTR_FAMILY_ID, &23u16.to_ne_bytes()),
            attr(CTRL_ATTR_FAMILY_NAME, b"acpi_event\0"),
            groups,
        ]
        .concat();
        assert_eq!(parse_family(&msg(GENL_ID_CTRL, &body)), Some((23, 5)));
        assert_eq!(parse_family(&msg(2, &body)), None);
    }

    #[test]
    fn recognises_power_button() {
        let mut ev = b"button/power".to_vec();
        ev.resize(20, 0);
        ev.extend_from_slice(b"LNXPWRBN:00\0\0\0\0\0");
        ev.extend_from_slice(&[0x80, 0, 0, 0, 1, 0, 0, 0]);
        assert!(is_power_button(&msg(23, &attr(ACPI_GENL_ATTR_EVENT, &ev)), 23));
        assert!(!is_power_button(&msg(24, &attr(ACPI_GENL_ATTR_EVENT, &ev)), 23));
        let mut lid = b"button/lid".to_vec();
        lid.resize(44, 0);
        assert!(!is_power_button(&msg(23, &attr(ACPI_GENL_ATTR_EVENT, &lid)), 23));
    }
}
