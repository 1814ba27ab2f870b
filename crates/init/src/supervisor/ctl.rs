//! `baleen-ctl`: init's control socket and its in-guest client.
//!
//! The server side answers one request line per connection (`/run/baleen/ctl.sock`) from
//! init's poll loop: `ps`, `logs [-f] NAME`, `stop NAME`, `start NAME`, `restart NAME`, and
//! `info NAME` (what `exec` needs). `logs -f` keeps the connection: every new line of the
//! container is written to it until the container exits. Answers and followed lines are
//! written at the client's pace, never blocking init ([`follow`]). NAME is the container's
//! directory name (`000-dhcpcd`, `sshd`) or the name the YAML gave it (`dhcpcd`).
//!
//! The client is the same binary called as `baleen-ctl` (or `baleen-init ctl`). `exec NAME
//! CMD…` runs CMD inside a running container, as `ctr task exec` does: the client joins the
//! container's cgroup and namespaces itself (so it needs the privileges a getty or sshd
//! container has), then starts CMD with the container's user, capabilities, no_new_privs,
//! seccomp filter and environment, and returns its exit status.
//!
//! CMD runs in a session of its own, on a new pseudo-terminal when the caller's stdio is a
//! terminal ([`tty`]).
//!
//! Non-goals: rlimits, oom_score_adj and AppArmor for `exec`.

use super::{shutdown_kill, Kind, Supervisor};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Where `baleen-ctl` connects.
pub const CTL_SOCKET: &str = "/run/baleen/ctl.sock";

const USAGE: &str = "usage: baleen-ctl ps | logs [-f] NAME | stop NAME | start NAME | \
                     restart NAME | exec NAME CMD [ARG…]";

mod auth;
mod error;
mod follow;
pub(super) use auth::bind_private;
pub(crate) use error::CtlError;
pub(super) use follow::{send as send_to_followers, Follower};

/// What the server does with a request.
enum Reply {
    /// Write this and close.
    Text(String),
    /// Write the container's log so far, then its new lines until it exits.
    Follow(String),
}

/// The one container `arg` names among `names`: the exact directory name, else the one whose
/// name without its `NNN-` order prefix is `arg` (the YAML's name).
fn resolve<'a>(arg: &str, names: impl Iterator<Item = &'a str>) -> Result<String, String> {
    let mut by_yaml = Vec::new();
    for n in names {
        if n == arg {
            return Ok(n.to_owned());
        }
        let bare = match n.split_once('-') {
            Some((num, rest)) if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) => rest,
            _ => n,
        };
        if bare == arg && !by_yaml.contains(&n) {
            by_yaml.push(n);
        }
    }
    match by_yaml.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err(format!("error: no container {arg:?}\n")),
        many => Err(format!("error: {arg:?} names several containers: {}\n", many.join(", "))),
    }
}

/// A connection whose request line has not all come yet. It must come whole within
/// [`REQUEST_BUDGET`] of the connection (a client that trickles bytes cannot keep its slot), at
/// most 4 KiB; at most [`MAX_PENDING`] wait at once.
#[derive(Debug)]
pub(super) struct Pending {
    stream: UnixStream,
    buf: Vec<u8>,
    pub(super) deadline: Instant,
}

const REQUEST_BUDGET: Duration = Duration::from_secs(1);
const MAX_PENDING: usize = 16;

/// What a pending connection has come to.
#[derive(Debug, PartialEq)]
enum Progress {
    Wait,
    Line(String),
    Drop,
}

impl Pending {
    pub(super) fn fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.stream)
    }

    /// Reads what has come, without blocking.
    fn progress(&mut self, now: Instant) -> Progress {
        let mut chunk = [0u8; 512];
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                return Progress::Line(String::from_utf8_lossy(&self.buf[..i]).into_owned());
            }
            if self.buf.len() > 4096 || now >= self.deadline {
                return Progress::Drop;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Progress::Drop,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Progress::Wait,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Progress::Drop,
            }
        }
    }
}

impl Supervisor {
    /// Accepts every waiting connection and answers every request that has come whole. Nothing
    /// here blocks: a request still coming waits for the next round of the loop.
    pub(super) fn serve_ctl(&mut self) {
        if let Some(l) = &self.ctl {
            while let Ok((s, _)) = l.accept() {
                if let Err(e) = auth::client_allowed(&s) {
                    // Best effort, never blocking: the client learns why it is refused.
                    let _ = s.set_nonblocking(true);
                    let e = crate::console::chain(&e);
                    let _ = (&s).write_all(format!("error: {e}\n").as_bytes());
                    continue;
                }
                if self.requests.len() < MAX_PENDING && s.set_nonblocking(true).is_ok() {
                    let deadline = Instant::now() + REQUEST_BUDGET;
                    self.requests.push(Pending { stream: s, buf: Vec::new(), deadline });
                }
            }
        }
        let now = Instant::now();
        let mut ready = Vec::new();
        for mut p in std::mem::take(&mut self.requests) {
            match p.progress(now) {
                Progress::Wait => self.requests.push(p),
                Progress::Line(req) => ready.push((p.stream, req)),
                Progress::Drop => {}
            }
        }
        for (s, req) in ready {
            self.answer(s, req.trim());
        }
    }

    fn answer(&mut self, s: UnixStream, req: &str) {
        if self.followers.len() >= follow::MAX_FOLLOWERS {
            // Clients that do not read hold their slots: no more queues for now.
            let _ = (&s).write_all(b"error: too many baleen-ctl clients at once\n");
            return;
        }
        let client = match self.ctl_reply(req) {
            // Split at newlines only: a log line's own `\r` stays.
            Reply::Text(t) => Follower::new(None, s, t.split_terminator('\n')),
            Reply::Follow(name) => {
                let log = self.logs.get(&name);
                Follower::new(Some(name), s, log.into_iter().flat_map(|l| l.lines()))
            }
        };
        // Kept while it follows or has an answer still to write; the poll loop writes the rest.
        self.followers.extend(client.filter(Follower::live));
    }

    /// Every container name init knows: running, finished, or with a log.
    fn known_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.children.values().map(|c| c.name.clone()).collect();
        v.extend(self.finished.keys().cloned());
        v.extend(self.logs.keys().cloned());
        v.sort();
        v.dedup();
        v
    }

    fn ctl_reply(&mut self, req: &str) -> Reply {
        let words: Vec<&str> = req.split_whitespace().collect();
        let names = self.known_names();
        let name = |arg: &str| resolve(arg, names.iter().map(String::as_str));
        let text = match words.as_slice() {
            ["ps"] => self.ps(),
            ["logs", "-f", arg] | ["logs", "--follow", arg] => match name(arg) {
                Ok(n) if self.running_pid(&n).is_some() => return Reply::Follow(n),
                Ok(n) => self.ring(&n),
                Err(e) => e,
            },
            ["logs", arg] => match name(arg) {
                Ok(n) => self.ring(&n),
                Err(e) => e,
            },
            ["stop", arg] => match name(arg) {
                Ok(n) => self.ctl_stop(&n, false),
                Err(e) => e,
            },
            ["restart", arg] => match name(arg) {
                Ok(n) if self.running_pid(&n).is_some() => self.ctl_stop(&n, true),
                Ok(n) => self.ctl_start(&n),
                Err(e) => e,
            },
            ["start", arg] => match name(arg) {
                Ok(n) => self.ctl_start(&n),
                Err(e) => e,
            },
            ["info", arg] => match name(arg) {
                Ok(n) => match self.running_pid(&n) {
                    Some(pid) => {
                        let c = &self.children[&pid];
                        format!(
                            "pid {pid} dir {} cgroup {}\n",
                            c.bundle.dir.display(),
                            c.bundle.cgroup()
                        )
                    }
                    None => format!("error: {n} is not running\n"),
                },
                Err(e) => e,
            },
            _ => format!("error: {USAGE}\n"),
        };
        Reply::Text(text)
    }

    /// `NAME KIND PID STATE`: running containers, then finished ones with their exit code.
    fn ps(&self) -> String {
        let mut out = String::from("NAME KIND PID STATE\n");
        for (pid, c) in &self.children {
            let state = c.exit.map_or("running".to_owned(), |e| format!("exited {e}"));
            out += &format!("{} {} {pid} {state}\n", c.name, c.kind.word());
        }
        for (name, f) in &self.finished {
            if !self.children.values().any(|c| &c.name == name) {
                out += &format!("{name} {} - exited {}\n", f.kind.word(), f.code);
            }
        }
        out
    }

    fn ring(&self, name: &str) -> String {
        self.logs
            .get(name)
            .map_or_else(String::new, |l| l.lines().map(|l| format!("{l}\n")).collect())
    }

    fn running_pid(&self, name: &str) -> Option<i32> {
        self.children.iter().find(|(_, c)| c.name == name && c.exit.is_none()).map(|(p, _)| *p)
    }

    /// SIGTERM, then SIGKILL after the grace; with `again`, started once it has exited.
    fn ctl_stop(&mut self, name: &str, again: bool) -> String {
        let grace = Duration::from_secs(self.knobs.shutdown_grace);
        let Some(pid) = self.running_pid(name) else {
            return format!("error: {name} is not running\n");
        };
        let Some(c) = self.children.get_mut(&pid) else { return String::new() };
        if again && c.kind != Kind::Service {
            return format!(
                "error: {name} is an {} container; only services restart\n",
                c.kind.word()
            );
        }
        let _ = shutdown_kill(pid, libc::SIGTERM);
        c.kill_at = Some(Instant::now() + grace);
        c.restart_requested = again;
        // Stopped by hand: not brought back by its restart policy either, and not a failed
        // onboot step (`baleen run` would count its SIGTERM status as one).
        c.held = !again;
        c.stopped = !again && c.kind != Kind::Service;
        let verb = if again { "restarting" } else { "stopping" };
        format!("{verb} {name} (pid {pid})\n")
    }

    /// Starts a service that is not running (one that exited, or was stopped).
    fn ctl_start(&mut self, name: &str) -> String {
        if self.running_pid(name).is_some() {
            return format!("error: {name} is running\n");
        }
        if self.shutdown.is_some() {
            return "error: the system is shutting down\n".to_owned();
        }
        let Some(f) = self.finished.get(name).cloned() else {
            return format!("error: {name} has not run yet\n");
        };
        if f.kind != Kind::Service {
            return format!(
                "error: {name} is an {} container; only services start\n",
                f.kind.word()
            );
        }
        // Started now, not again when a pending restart back-off ends.
        self.restarts.retain(|r| r.name != name);
        match self.start_service(&f.dir, name) {
            Some(pid) => format!("started {name} (pid {pid})\n"),
            None => format!("error: {name} could not start; see the console\n"),
        }
    }
}

/// The in-guest client. Returns the exit code.
pub fn ctl_main(args: &[String]) -> i32 {
    match args.first().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => {
            eprintln!("{USAGE}");
            2
        }
        Some("exec") => match args {
            [_, name, cmd @ ..] if !cmd.is_empty() => exec::run(name, cmd),
            _ => {
                eprintln!("{USAGE}");
                2
            }
        },
        Some(_) => match request(&args.join(" ")) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("baleen-ctl: {}", crate::console::chain(&e));
                1
            }
        },
    }
}

/// Sends one request and copies the answer to stdout as it comes (`logs -f` streams until
/// the container exits). Exit code 1 when the answer is an error.
fn request(req: &str) -> Result<i32, CtlError> {
    let mut s = connect()?;
    s.write_all(format!("{req}\n").as_bytes()).map_err(CtlError::Talk)?;
    let mut out = std::io::stdout().lock();
    let mut buf = [0u8; 8192];
    let mut first = Vec::new();
    loop {
        let n = s.read(&mut buf).map_err(CtlError::Talk)?;
        if n == 0 {
            break;
        }
        if first.len() < 6 {
            first.extend_from_slice(&buf[..n.min(6 - first.len())]);
        }
        out.write_all(&buf[..n]).and_then(|_| out.flush()).map_err(CtlError::Stdout)?;
    }
    Ok(i32::from(first.starts_with(b"error:")))
}

/// A connection to init's socket, checked to be init's (pid 1, uid 0).
fn connect() -> Result<UnixStream, CtlError> {
    let s = UnixStream::connect(CTL_SOCKET)
        .map_err(|source| CtlError::Connect { sock: CTL_SOCKET, source })?;
    auth::served_by_init(&s, CTL_SOCKET)?;
    Ok(s)
}

/// One request's whole answer (for `exec`'s `info`).
fn ask(req: &str) -> Result<String, CtlError> {
    let mut s = connect()?;
    let mut reply = String::new();
    s.write_all(format!("{req}\n").as_bytes())
        .and_then(|_| s.read_to_string(&mut reply))
        .map_err(CtlError::Talk)?;
    match reply.strip_prefix("error: ") {
        Some(e) => Err(CtlError::Answer(e.trim().to_owned())),
        None => Ok(reply),
    }
}

#[cfg(target_os = "linux")]
mod exec;
#[cfg(target_os = "linux")]
mod tty;
#[cfg(not(target_os = "linux"))]
mod exec {
    pub fn run(_: &str, _: &[String]) -> i32 {
        eprintln!("baleen-ctl exec: Linux only");
        1
    }
}

#[cfg(test)]
mod tests {
    use super::resolve;
    use crate::supervisor::{Finished, Kind, Restart, Supervisor};
    use std::os::unix::process::ExitStatusExt;
    use std::time::{Duration, Instant};

    /// A supervisor with no socket, children or signals of its own.
    fn supervisor() -> Supervisor {
        let sigfd = std::fs::File::open("/dev/null").unwrap().into();
        Supervisor {
            knobs: crate::cmdline::Knobs::default(),
            sigfd,
            ctl: None,
            acpi: None,
            children: Default::default(),
            logs: Default::default(),
            shutdown: None,
            onboot_failed: false,
            restarts: Vec::new(),
            finished: Default::default(),
            followers: Vec::new(),
            requests: Vec::new(),
        }
    }

    /// A running container of `kind` named `name`, as a real `sleep` process (its pid is what
    /// `stop` signals); the bundle has no mounts or hooks, so `finish` touches nothing.
    fn sleeping_child(s: &mut Supervisor, kind: Kind, name: &str) -> std::process::Child {
        let proc = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        let bundle = crate::container::Bundle {
            name: name.into(),
            dir: std::env::temp_dir().join("baleen-no-such-bundle").join(name),
            config: Default::default(),
            runtime: Default::default(),
            caps: Default::default(),
            seccomp: None,
            devcg: None,
        };
        let child = crate::supervisor::Child::new(name.into(), kind, bundle, Vec::new());
        s.children.insert(i32::try_from(proc.id()).unwrap(), child);
        s.logs.insert(name.into(), crate::logs::Log::new(None, name));
        proc
    }

    /// The bug: `baleen-ctl stop` on an onboot container did not mark it stopped, so its
    /// SIGTERM status (143) counted as a failed boot (`onboot … exited 143`, non-zero
    /// poweroff status).
    #[test]
    fn stopping_an_onboot_container_is_no_boot_failure() {
        let mut s = supervisor();
        let mut proc = sleeping_child(&mut s, Kind::Onboot, "000-wait");
        let pid = i32::try_from(proc.id()).unwrap();
        let super::Reply::Text(t) = s.ctl_reply("stop wait") else { panic!("not a text reply") };
        assert_eq!(t, format!("stopping 000-wait (pid {pid})\n"));
        let status = proc.wait().unwrap();
        s.children.get_mut(&pid).unwrap().exit = Some(128 + status.signal().unwrap());
        assert_eq!(s.finish(pid), 128 + libc::SIGTERM);
        assert!(!s.onboot_failed, "a stopped onboot container is not a failed boot");
        assert_eq!(s.finished["000-wait"].code, 143, "ps still shows how it ended");
    }
    /// The bug: init served any client that reached its socket. A client that is not uid 0
    /// (uid 65534, connecting from a child process) is refused: its `start svc` does nothing,
    /// while root's same request is served.
    #[test]
    #[allow(unsafe_code)]
    fn a_client_that_is_not_root_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        let dir = std::env::temp_dir().join(format!("baleen-ctl-uid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let sock = dir.join("ctl.sock");
        let mut s = supervisor();
        let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        l.set_nonblocking(true).unwrap();
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).unwrap();
        s.ctl = Some(l);
        let bundle = std::env::temp_dir().join("baleen-no-such-bundle/svc");
        let kind = Kind::Service;
        s.finished.insert("svc".into(), Finished { kind, code: 1, dir: bundle.clone() });
        let (at, delay) = (Instant::now() + Duration::from_secs(30), Duration::from_secs(30));
        s.restarts.push(Restart { dir: bundle, name: "svc".into(), at, delay });

        // SAFETY: sockaddr_un is plain data, filled below within its bounds.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let path = sock.as_os_str().as_encoded_bytes();
        assert!(path.len() < addr.sun_path.len());
        for (d, b) in addr.sun_path.iter_mut().zip(path) {
            *d = *b as libc::c_char;
        }
        let mut nobody = std::process::Command::new("true");
        nobody.uid(65534).gid(65534);
        // SAFETY: only syscalls between fork and exec; std runs this after setuid/setgid.
        unsafe {
            nobody.pre_exec(move || {
                let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
                let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
                if fd < 0 || libc::connect(fd, (&addr as *const libc::sockaddr_un).cast(), len) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                let req = b"start svc\n";
                libc::write(fd, req.as_ptr().cast(), req.len());
                Ok(())
            });
        }
        assert!(nobody.status().unwrap().success(), "uid 65534 connected and asked");
        s.serve_ctl();
        s.serve_ctl();
        assert_eq!(s.restarts.len(), 1, "uid 65534's `start svc` was not served");

        let mut root = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        std::io::Write::write_all(&mut root, b"start svc\n").unwrap();
        s.serve_ctl();
        assert!(s.restarts.is_empty(), "root's `start svc` was served");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// An answer goes out byte for byte through the client's queue: a log line's own `\r`
    /// (a CRLF-writing program) stays, every line ends with one newline.
    #[test]
    fn an_answer_keeps_its_bytes() {
        use std::io::{Read, Write};
        let dir = std::env::temp_dir().join(format!("baleen-ctl-answer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("ctl.sock");
        let mut s = supervisor();
        let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        l.set_nonblocking(true).unwrap(); // as Supervisor::new makes it
        s.ctl = Some(l);
        let mut log = crate::logs::Log::new(None, "svc");
        log.feed(crate::logs::Stream::Stdout, b"crlf\r\nplain\n");
        s.logs.insert("svc".into(), log);
        let mut c = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        c.write_all(b"logs svc\n").unwrap();
        s.serve_ctl();
        assert!(s.followers.is_empty(), "a short answer is written at once and closed");
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        assert_eq!(got, "crlf\r\nplain\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The bug: init read a request with blocking reads for up to 1 s, so a client that
    /// connected and was slow to ask held PID 1's loop (signals, reaping, every other client)
    /// and was then dropped. Now connections wait in the loop, each read as its bytes come.
    #[test]
    fn a_client_slow_to_ask_holds_nothing_and_is_answered() {
        use std::io::{Read, Write};
        let dir = std::env::temp_dir().join(format!("baleen-ctl-slow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("ctl.sock");
        let mut s = supervisor();
        let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        l.set_nonblocking(true).unwrap();
        s.ctl = Some(l);
        let mut slow = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        let mut quick = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        quick.write_all(b"ps\n").unwrap();
        s.serve_ctl();
        s.serve_ctl();
        slow.write_all(b"ps\n").unwrap();
        s.serve_ctl();
        for c in [&mut quick, &mut slow] {
            let mut got = String::new();
            c.read_to_string(&mut got).unwrap();
            assert_eq!(got, "NAME KIND PID STATE\n");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `baleen-ctl start` during a restart back-off starts the service now and cancels the
    /// pending restart, which would otherwise start it a second time when the back-off ends.
    #[test]
    fn start_cancels_a_pending_restart() {
        let mut s = supervisor();
        let dir = std::env::temp_dir().join("baleen-no-such-bundle/svc");
        let kind = Kind::Service;
        s.finished.insert("svc".into(), Finished { kind, code: 1, dir: dir.clone() });
        s.finished.insert("other".into(), Finished { kind, code: 1, dir: dir.clone() });
        let at = Instant::now() + Duration::from_secs(30);
        let delay = Duration::from_secs(30);
        for name in ["svc", "other"] {
            s.restarts.push(Restart { dir: dir.clone(), name: name.into(), at, delay });
        }
        let super::Reply::Text(t) = s.ctl_reply("start svc") else { panic!("not a text reply") };
        // The bundle does not exist, so the start itself fails, and says so.
        assert_eq!(t, "error: svc could not start; see the console\n");
        let pending: Vec<&str> = s.restarts.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(pending, ["other"], "only the started service's restart is cancelled");
    }

    /// A request must come whole, within the budget and 4 KiB; until then it waits.
    #[test]
    fn a_request_must_arrive_whole_within_the_budget() {
        use super::{Pending, Progress};
        use std::io::Write;
        let (mut client, server) = std::os::unix::net::UnixStream::pair().unwrap();
        server.set_nonblocking(true).unwrap();
        let now = Instant::now();
        let deadline = now + Duration::from_secs(5);
        let mut p = Pending { stream: server, buf: Vec::new(), deadline };
        assert_eq!(p.progress(now), Progress::Wait);
        client.write_all(b"logs no-newline").unwrap();
        assert_eq!(p.progress(now), Progress::Wait, "an unfinished line is no request yet");
        assert_eq!(p.progress(deadline), Progress::Drop, "and none at all past the budget");
        client.write_all(b"\n").unwrap();
        assert_eq!(p.progress(now), Progress::Line("logs no-newline".into()));
        let (mut client, server) = std::os::unix::net::UnixStream::pair().unwrap();
        server.set_nonblocking(true).unwrap();
        let mut p = Pending { stream: server, buf: Vec::new(), deadline };
        client.write_all(&[b'x'; 5000]).unwrap();
        assert_eq!(p.progress(now), Progress::Drop, "too long");
    }

    #[test]
    fn names_resolve_as_the_directory_or_the_yaml_name() {
        let names = ["000-dhcpcd", "001-format", "getty", "sshd", "000-bye", "002-12"];
        let r = |a: &str| resolve(a, names.iter().copied());
        assert_eq!(r("000-dhcpcd").unwrap(), "000-dhcpcd");
        assert_eq!(r("dhcpcd").unwrap(), "000-dhcpcd", "the YAML's name");
        assert_eq!(r("getty").unwrap(), "getty");
        assert_eq!(r("12").unwrap(), "002-12");
        assert!(r("nope").unwrap_err().contains("no container \"nope\""));
        // An onboot and an onshutdown container may share a YAML name: say which exist.
        let two = ["000-bye", "003-bye"];
        let e = resolve("bye", two.iter().copied()).unwrap_err();
        assert!(e.contains("000-bye, 003-bye"), "{e}");
    }
}
