//! `exec`'s session and terminal: CMD, a program from the container's rootfs, never gets the
//! caller's terminal (an admin's getty or sshd shell, with every capability and the host's pid
//! namespace), from which it could inject input with TIOCSTI or which it could keep after the
//! client exits.
//!
//! CMD always starts in a session of its own (setsid), with every descriptor above 2 closed at
//! exec. When any of the caller's stdin, stdout, stderr is a terminal, CMD gets a new
//! pseudo-terminal instead (opened from the caller's /dev/ptmx before joining the container,
//! the slave by TIOCGPTPEER, never by path) as its controlling terminal on those descriptors,
//! with the caller's window size; the client relays bytes both ways (the caller's terminal in
//! raw mode meanwhile, restored after), follows SIGWINCH, and returns once CMD has exited and
//! its output is drained. Descriptors that are not terminals (pipes, files) are passed as they
//! are. The client itself is not dumpable ([`not_dumpable`]), and neither is CMD until its
//! exec, so no process of the container can ptrace either meanwhile (runc's CVE-2016-9962 fix).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};

/// PR_SET_DUMPABLE 0 for this process, inherited by its children until they exec.
#[allow(unsafe_code)]
pub fn not_dumpable() -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A pseudo-terminal pair.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

fn check(r: libc::c_int) -> std::io::Result<libc::c_int> {
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A new pseudo-terminal from /dev/ptmx; the slave is opened through the master (TIOCGPTPEER,
/// Linux 4.13), so no /dev/pts path is looked up.
#[allow(unsafe_code)]
pub fn open_pty() -> std::io::Result<Pty> {
    // SAFETY: posix_openpt returns a new descriptor or -1.
    let m = check(unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) })?;
    // SAFETY: m is a fresh descriptor nothing else owns.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    // SAFETY: unlockpt on a ptmx descriptor.
    check(unsafe { libc::unlockpt(master.as_raw_fd()) })?;
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes open flags and returns a new descriptor or -1.
    let s = check(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) })?;
    // SAFETY: s is a fresh descriptor nothing else owns.
    let slave = unsafe { OwnedFd::from_raw_fd(s) };
    Ok(Pty { master, slave })
}

#[allow(unsafe_code)]
fn is_tty(fd: RawFd) -> bool {
    // SAFETY: isatty only queries the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// Copies the window size of `from` to `to`; nothing when `from` has none.
#[allow(unsafe_code)]
fn copy_winsize(from: RawFd, to: RawFd) {
    // SAFETY: winsize is plain data that TIOCGWINSZ fills; TIOCSWINSZ only reads it.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// A duplicate of `fd` for a child's stdio.
fn dup(fd: RawFd) -> std::io::Result<Stdio> {
    // SAFETY: the caller's descriptor is open for the duration of the call.
    #[allow(unsafe_code)]
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    Ok(Stdio::from(b.try_clone_to_owned()?))
}

/// How CMD is started: its stdio and, with a pseudo-terminal, what the client relays.
pub struct Session {
    /// The caller's stdin, stdout, stderr.
    caller: [RawFd; 3],
    /// Which of them are terminals.
    tty: [bool; 3],
    master: Option<OwnedFd>,
}

/// Sets `command` up to start in a session of its own, with every descriptor above 2 closed,
/// and, when one of `caller` (stdin, stdout, stderr) is a terminal, a new pseudo-terminal in
/// its place. Call before any `pre_exec` that may forbid syscalls (a seccomp filter).
pub fn prepare(command: &mut Command, caller: [RawFd; 3]) -> std::io::Result<Session> {
    let tty = caller.map(is_tty);
    let pty = if tty.contains(&true) { Some(open_pty()?) } else { None };
    let mut stdio = Vec::new();
    for (i, fd) in caller.iter().enumerate() {
        stdio.push(match &pty {
            Some(p) if tty[i] => Stdio::from(p.slave.try_clone()?),
            _ => dup(*fd)?,
        });
    }
    let mut stdio = stdio.into_iter();
    if let (Some(i), Some(o), Some(e)) = (stdio.next(), stdio.next(), stdio.next()) {
        command.stdin(i).stdout(o).stderr(e);
    }
    // The descriptor (0, 1 or 2) that is the slave, to make it CMD's controlling terminal.
    let first = pty.as_ref().and_then(|_| tty.iter().position(|t| *t));
    let ctty: Option<RawFd> = first.and_then(|i| RawFd::try_from(i).ok());
    if let (Some(p), Some(i)) = (&pty, first) {
        copy_winsize(caller[i], p.master.as_raw_fd());
    }
    // SAFETY: the closure runs between fork and exec and only makes syscalls.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(move || {
            check(libc::setsid())?;
            if let Some(fd) = ctty {
                check(libc::ioctl(fd, libc::TIOCSCTTY, 0))?;
            }
            cloexec_above_2()
        });
    }
    Ok(Session { caller, tty, master: pty.map(|p| p.master) })
}

/// Marks every descriptor above 2 close-on-exec (close_range, Linux 5.11; else one by one up
/// to the descriptor limit). Not closed at once: std reports a failed exec through one.
#[allow(unsafe_code)]
fn cloexec_above_2() -> std::io::Result<()> {
    // SAFETY: close_range takes integers only.
    let r =
        unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    if r == 0 {
        return Ok(());
    }
    // SAFETY: rlimit is plain data that getrlimit fills.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        RawFd::try_from(lim.rlim_cur.min(1 << 20)).unwrap_or(1 << 16)
    } else {
        1 << 16
    };
    for fd in 3..max {
        // SAFETY: F_SETFD on a descriptor that may not exist (EBADF, ignored).
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Restores a terminal's modes when dropped.
struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    #[allow(unsafe_code)]
    fn set(fd: RawFd) -> Option<RawMode> {
        // SAFETY: termios is plain data that tcgetattr fills; tcsetattr only reads it.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut saved) != 0 {
                return None;
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(fd, libc::TCSANOW, &raw);
            Some(RawMode { fd, saved })
        }
    }
}

impl Drop for RawMode {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: restores the modes read from the same descriptor.
        unsafe { libc::tcsetattr(self.fd, libc::TCSAFLUSH, &self.saved) };
    }
}

/// Starts `command` as `session` prepared it, relays its terminal if it has one, and returns
/// its exit status (128 + signal when killed).
pub fn run(mut command: Command, session: Session) -> std::io::Result<i32> {
    let mut child = command.spawn()?;
    // Our copies of the slave and of the caller's descriptors go: the master reads EIO once
    // CMD and what it started have closed theirs.
    drop(command);
    if let Some(master) = &session.master {
        let pid = i32::try_from(child.id()).map_err(|_| std::io::Error::other("pid too large"))?;
        let pidfd = super::exec::pidfd_open(pid)?;
        relay(&session, master, &pidfd)?;
    }
    let status = child.wait()?;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

#[allow(unsafe_code)]
fn read_fd(fd: RawFd, buf: &mut [u8]) -> std::io::Result<usize> {
    // SAFETY: buf is writable for its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
}

#[allow(unsafe_code)]
fn write_fd(fd: RawFd, buf: &[u8]) -> std::io::Result<usize> {
    // SAFETY: buf is readable for its length.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
}

fn write_all(fd: RawFd, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        match write_fd(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// After CMD has exited, how long its terminal may stay quiet before the client stops
/// reading it (when a process CMD left behind still holds it).
const DRAIN_QUIET_MS: libc::c_int = 200;

/// A signalfd for SIGWINCH (blocked from now on in this process; CMD is already started).
#[allow(unsafe_code)]
fn winch_fd() -> Option<OwnedFd> {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGWINCH);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        (fd >= 0).then(|| OwnedFd::from_raw_fd(fd))
    }
}

/// Copies the caller's input to the master and the master's output to the caller until the
/// child behind `pidfd` has exited, then drains what it wrote.
#[allow(unsafe_code)]
fn relay(s: &Session, master: &OwnedFd, pidfd: &OwnedFd) -> std::io::Result<()> {
    let m = master.as_raw_fd();
    // SAFETY: fcntl flag manipulation on a descriptor we own.
    unsafe { libc::fcntl(m, libc::F_SETFL, libc::fcntl(m, libc::F_GETFL) | libc::O_NONBLOCK) };
    let out = if s.tty[1] { s.caller[1] } else { s.caller[2] };
    let mut input = s.tty[0].then_some(s.caller[0]);
    let _raw = input.and_then(RawMode::set);
    let winch = winch_fd();
    let size_from = s.caller[s.tty.iter().position(|t| *t).unwrap_or(0)];
    // The size may have changed between the copy in `prepare` and the signalfd.
    copy_winsize(size_from, m);
    let mut pending: Vec<u8> = Vec::new();
    let mut master_open = true;
    let mut buf = [0u8; 8192];
    let pollin = |fd: RawFd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    loop {
        let mut fds = [
            pollin(pidfd.as_raw_fd()),
            libc::pollfd {
                fd: if master_open { m } else { -1 },
                events: libc::POLLIN | if pending.is_empty() { 0 } else { libc::POLLOUT },
                revents: 0,
            },
            pollin(match input {
                Some(fd) if pending.is_empty() => fd,
                _ => -1,
            }),
            pollin(winch.as_ref().map_or(-1, |w| w.as_raw_fd())),
        ];
        // SAFETY: fds is a valid array of pollfd for its length.
        if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) } < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if fds[1].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            match read_fd(m, &mut buf) {
                Ok(n) if n > 0 => write_all(out, &buf[..n])?,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                // EIO or EOF: every slave is closed; the child may still run.
                _ => master_open = false,
            }
        }
        if fds[1].revents & libc::POLLOUT != 0 {
            match write_fd(m, &pending) {
                Ok(n) => drop(pending.drain(..n)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => pending.clear(),
            }
        }
        if fds[2].revents != 0 {
            match input.map(|fd| read_fd(fd, &mut buf)) {
                Some(Ok(n)) if n > 0 => pending.extend_from_slice(&buf[..n]),
                _ => input = None,
            }
        }
        if fds[3].revents != 0 {
            if let Some(w) = &winch {
                let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
                while read_fd(w.as_raw_fd(), &mut info).is_ok_and(|n| n > 0) {}
            }
            copy_winsize(size_from, m);
        }
        if fds[0].revents != 0 {
            // The child has exited: what it wrote may still be on its way to the master (the
            // kernel moves it asynchronously). Read until every slave is closed (EIO), or until
            // it stays quiet for DRAIN_QUIET when a process it left behind holds one.
            while master_open {
                let mut p = [pollin(m)];
                // SAFETY: p is a valid array of one pollfd.
                let ready = unsafe { libc::poll(p.as_mut_ptr(), 1, DRAIN_QUIET_MS) };
                match read_fd(m, &mut buf) {
                    Ok(n) if ready > 0 && n > 0 => write_all(out, &buf[..n])?,
                    _ => master_open = false,
                }
            }
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Everything readable on `fd` until `end` has come (a watchdog of 20 s turns a hang into
    /// a failure).
    fn read_until(fd: RawFd, end: &str) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains(end) {
            let mut p = [libc::pollfd { fd, events: libc::POLLIN, revents: 0 }];
            #[allow(unsafe_code)]
            // SAFETY: p is a valid array of one pollfd.
            let ready = unsafe { libc::poll(p.as_mut_ptr(), 1, 20_000) };
            assert!(ready > 0, "no {end:?} within 20 s; got {:?}", String::from_utf8_lossy(&got));
            let n = read_fd(fd, &mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    /// A descriptor of this process without close-on-exec, as a caller might hold one.
    #[allow(unsafe_code)]
    fn leaked(fd: &OwnedFd) -> OwnedFd {
        // SAFETY: dup returns a new descriptor (without FD_CLOEXEC) that nothing else owns.
        unsafe { OwnedFd::from_raw_fd(libc::dup(fd.as_raw_fd())) }
    }

    const PROBE: &str = "read -r _ _ _ _ _ sid _ < /proc/$$/stat; \
        [ \"$sid\" = $$ ] && echo own-session; \
        [ -e /proc/$$/fd/$LEAK ] && echo LEAKED || echo no-leak;";

    /// The bug: CMD (a program from the container) got the admin's terminal, in the admin's
    /// session, with the client's other descriptors: it could TIOCSTI into the admin's shell
    /// or keep the terminal. Now it gets a pseudo-terminal of its own as its controlling
    /// terminal, with the caller's window size, in a session of its own, with nothing above 2;
    /// bytes are relayed both ways and its exit status is returned.
    #[test]
    #[allow(unsafe_code)]
    fn cmd_gets_a_terminal_and_a_session_of_its_own() {
        // The caller's terminal: a pseudo-terminal of the test's own.
        let admin = open_pty().unwrap();
        let ws = libc::winsize { ws_row: 33, ws_col: 101, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCSWINSZ reads a valid winsize.
        assert_eq!(unsafe { libc::ioctl(admin.slave.as_raw_fd(), libc::TIOCSWINSZ, &ws) }, 0);
        let admin_tty =
            std::fs::read_link(format!("/proc/self/fd/{}", admin.slave.as_raw_fd())).unwrap();
        let leak = leaked(&admin.master);
        let mut cmd = Command::new("sh");
        cmd.env("LEAK", leak.as_raw_fd().to_string()).arg("-c").arg(format!(
            "read line; echo got-$line; [ -t 0 ] && [ -t 1 ] && echo on-a-tty; \
             echo size $(stty size); echo tty $(readlink /proc/$$/fd/0); {PROBE} echo END; exit 5"
        ));
        let s = admin.slave.as_raw_fd();
        let session = prepare(&mut cmd, [s, s, s]).unwrap();
        write_all(admin.master.as_raw_fd(), b"hello\n").unwrap();
        assert_eq!(run(cmd, session).unwrap(), 5, "CMD's exit status");
        let out = read_until(admin.master.as_raw_fd(), "END");
        for want in ["got-hello", "on-a-tty", "size 33 101", "own-session", "no-leak"] {
            assert!(out.contains(want), "{want} missing from {out:?}");
        }
        let theirs = out.lines().find_map(|l| l.trim().strip_prefix("tty ")).unwrap();
        assert!(theirs.starts_with("/dev/pts/"), "{out:?}");
        assert_ne!(Path::new(theirs), admin_tty, "CMD got the caller's own terminal");
    }

    /// Without a terminal, CMD gets the caller's descriptors as they are, still in a session
    /// of its own and with nothing above 2.
    #[test]
    fn without_a_terminal_cmd_keeps_the_pipes_in_a_session_of_its_own() {
        let (r, w) = std::io::pipe().unwrap();
        let (r, w): (OwnedFd, OwnedFd) = (r.into(), w.into());
        let leak = leaked(&w);
        let null = std::fs::File::open("/dev/null").unwrap();
        let mut cmd = Command::new("sh");
        cmd.env("LEAK", leak.as_raw_fd().to_string())
            .arg("-c")
            .arg(format!("[ -t 0 ] || [ -t 1 ] || echo no-tty; {PROBE} exit 3"));
        let session = prepare(&mut cmd, [null.as_raw_fd(), w.as_raw_fd(), w.as_raw_fd()]).unwrap();
        assert!(session.master.is_none());
        assert_eq!(run(cmd, session).unwrap(), 3);
        drop((w, leak));
        let mut out = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut out).unwrap();
        assert_eq!(out, "no-tty\nown-session\nno-leak\n");
    }
}
