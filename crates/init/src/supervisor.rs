//! The PID 1 loop: one thread, one poll(2) over a signalfd, the containers' output pipes and
//! the `baleen-ctl` socket. It runs onboot containers one at a time to completion, starts the
//! services, reaps every child (containers and orphans alike), and on a shutdown signal stops
//! services, runs onshutdown containers and powers off.
//!
//! Invariants: no threads (so clone in [`crate::container::spawn`] is safe); no restarts
//! (LinuxKit semantics); every protocol line goes through [`crate::console::event`].

use crate::cmdline::{Knobs, OnbootFailure};
use crate::console;
use crate::container::{self, setup, spawn, Bundle};
use crate::logs::{Log, Stream};
use crate::shutdown::{self, Action};
use crate::spec::RESTART_ANNOTATION;
use crate::sys::real::Real;
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod ctl;
pub use ctl::{ctl_main, CTL_SOCKET};

/// The three kinds of container, as named in protocol lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Onboot,
    Service,
    Onshutdown,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Onboot => "onboot",
            Kind::Service => "service",
            Kind::Onshutdown => "onshutdown",
        }
    }
}

#[derive(Debug)]
struct Child {
    name: String,
    kind: Kind,
    bundle: Bundle,
    fds: Vec<(OwnedFd, Stream)>,
    exit: Option<i32>,
    kill_at: Option<Instant>,
    started: Instant,
    /// The back-off that preceded this start, for the next one.
    delay: Option<Duration>,
    /// An onboot or onshutdown container stopped on purpose (a shutdown requested while it
    /// ran, `baleen-ctl stop`): how it ends is not a failure of the boot.
    stopped: bool,
    /// `baleen-ctl restart`: started again as soon as it has exited.
    restart_requested: bool,
    /// `baleen-ctl stop`: stays down whatever its restart policy says.
    held: bool,
}

impl Child {
    /// A container just started: running, no restart pending, not held down.
    fn new(name: String, kind: Kind, bundle: Bundle, fds: Vec<(OwnedFd, Stream)>) -> Child {
        Child {
            name,
            kind,
            bundle,
            fds,
            exit: None,
            kill_at: None,
            started: Instant::now(),
            delay: None,
            stopped: false,
            restart_requested: false,
            held: false,
        }
    }
}

/// A container that ran and exited, for `baleen-ctl ps` and `start`.
#[derive(Debug, Clone)]
struct Finished {
    kind: Kind,
    code: i32,
    dir: PathBuf,
}

/// The supervisor's state.
#[derive(Debug)]
pub struct Supervisor {
    knobs: Knobs,
    sigfd: OwnedFd,
    ctl: Option<UnixListener>,
    acpi: Option<crate::acpi::Listener>,
    children: BTreeMap<i32, Child>,
    logs: BTreeMap<String, Log>,
    /// Set by a shutdown signal (or an onboot failure under `onboot_failure=poweroff`).
    pub shutdown: Option<Action>,
    pub onboot_failed: bool,
    /// Services waiting to be started again (their [`RESTART_ANNOTATION`]).
    restarts: Vec<Restart>,
    /// Containers that exited, by name (the latest run of each).
    finished: BTreeMap<String, Finished>,
    /// `baleen-ctl` clients still being answered: `logs -f` ones and answers not yet written.
    followers: Vec<ctl::Follower>,
    /// `baleen-ctl` connections whose request line is still coming.
    requests: Vec<ctl::Pending>,
}

/// A service to start again at `at`; `delay` is the back-off that led there.
#[derive(Debug)]
struct Restart {
    dir: PathBuf,
    name: String,
    at: Instant,
    delay: Duration,
}

/// The first back-off and its cap: 1 s, doubling while the service keeps failing fast.
const RESTART_FIRST: Duration = Duration::from_secs(1);
const RESTART_MAX: Duration = Duration::from_secs(30);
/// A service that ran this long before exiting starts again after [`RESTART_FIRST`].
const RESTART_RESET: Duration = Duration::from_secs(10);

/// Whether a service that exited with `code` is started again under `policy`.
fn restarts(policy: Option<&str>, code: i32) -> bool {
    match policy {
        Some("always") => true,
        Some("on-failure") => code != 0,
        _ => false,
    }
}

/// The next back-off after one of `prev` for a service that ran `ran`.
fn next_delay(prev: Option<Duration>, ran: Duration) -> Duration {
    match prev {
        Some(d) if ran < RESTART_RESET => (d * 2).min(RESTART_MAX),
        _ => RESTART_FIRST,
    }
}

#[allow(unsafe_code)]
fn sigset(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    for &s in signals {
        // SAFETY: set is a valid sigset_t and s a signal number.
        unsafe { libc::sigaddset(&mut set, s) };
    }
    set
}

const HANDLED: [i32; 7] = [
    libc::SIGCHLD,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGPWR,
    libc::SIGHUP,
];

/// Blocks the signals init handles and returns a signalfd for them. Called first thing, so
/// no SIGCHLD or shutdown request is lost during early boot. Blocked signals are queued even
/// for PID 1, which the kernel otherwise shields from signals without a handler.
#[allow(unsafe_code)]
pub fn signal_fd() -> std::io::Result<OwnedFd> {
    let set = sigset(&HANDLED);
    // SAFETY: set is a valid sigset_t; the old mask is not needed.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    // SAFETY: creates a new descriptor from a valid sigset_t.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[allow(unsafe_code)]
fn set_nonblocking(fd: &OwnedFd) {
    // SAFETY: fcntl flag manipulation on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

/// Reads what is available; `None` at EOF or on error, `Some(empty)` when it would block.
#[allow(unsafe_code)]
fn read_some(fd: &OwnedFd, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: buf is writable for its length.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n > 0 {
        Some(n as usize)
    } else if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock {
        Some(0)
    } else {
        None
    }
}

fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

impl Supervisor {
    pub fn new(knobs: Knobs, sigfd: OwnedFd) -> Supervisor {
        let ctl = match ctl::bind_private(Path::new(CTL_SOCKET)) {
            Ok(l) => Some(l),
            Err(e) => {
                console::event(&format!("warning baleen-ctl: binding {CTL_SOCKET}: {e}"));
                None
            }
        };
        Supervisor {
            knobs,
            sigfd,
            ctl,
            acpi: crate::acpi::Listener::open().ok(),
            children: BTreeMap::new(),
            logs: BTreeMap::new(),
            shutdown: None,
            onboot_failed: false,
            restarts: Vec::new(),
            finished: BTreeMap::new(),
            followers: Vec::new(),
            requests: Vec::new(),
        }
    }

    fn start(&mut self, kind: Kind, dir: &Path) -> Result<i32, container::ContainerError> {
        let mut bundle = Bundle::load(dir)?;
        if !self.knobs.strict_devices && bundle.config.linux.resources.devices.is_empty() {
            // `baleen.devices=rules`: the old leniency for bundles without rules.
            bundle.devcg = None;
        }
        let mut sys = Real;
        if let Err(e) = setup::prepare_host(&mut sys, &bundle.rootfs(), &bundle.runtime) {
            container::cleanup(&mut sys, &bundle);
            return Err(container::ContainerError::Prepare { bundle: dir.into(), source: e });
        }
        let started = match spawn::spawn(&bundle) {
            Ok(s) => s,
            Err(e) => {
                container::cleanup(&mut sys, &bundle);
                return Err(e);
            }
        };
        set_nonblocking(&started.stdout);
        set_nonblocking(&started.stderr);
        let name = bundle.name.clone();
        self.logs.insert(name.clone(), Log::new(Some(Path::new("/var/log")), &name));
        let fds = vec![(started.stdout, Stream::Stdout), (started.stderr, Stream::Stderr)];
        self.children.insert(started.pid, Child::new(name, kind, bundle, fds));
        Ok(started.pid)
    }

    /// Runs every bundle in `dir` (sorted) to completion. Returns false when the boot must stop.
    pub fn run_sequence(&mut self, kind: Kind, dir: &Path) -> bool {
        for d in sorted_dirs(dir) {
            // A poweroff requested during boot skips the rest of it (onshutdown always runs).
            if kind == Kind::Onboot && self.shutdown.is_some() {
                return false;
            }
            let name = d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let w = kind.word();
            let (code, stopped) = match self.start(kind, &d) {
                Ok(pid) => {
                    console::event(&format!("{w} {name} started pid {pid}"));
                    while self.children.get(&pid).is_some_and(|c| c.exit.is_none()) {
                        if kind == Kind::Onboot && self.shutdown.is_some() {
                            // A poweroff asked for during boot (pkg/poweroff as the last onboot
                            // step, the power button): the boot is over, this step with it.
                            self.stop_for_shutdown(pid);
                        }
                        self.poll(Duration::from_millis(500));
                    }
                    let stopped = self.children.get(&pid).is_some_and(|c| c.stopped);
                    (self.finish(pid), stopped)
                }
                Err(e) => {
                    if kind == Kind::Onboot {
                        console::event(&format!("{w} {name} exited 127: {}", console::chain(&e)));
                        self.onboot_failed = true;
                    } else {
                        console::event(&format!("{w} {name} exited 127"));
                        console::event(&format!("warning {}", console::chain(&e)));
                    }
                    (127, false)
                }
            };
            // A container stopped on purpose (shutdown, `baleen-ctl stop`) did not fail.
            if !stopped && stops_boot(kind, code, self.knobs.onboot_failure) {
                self.shutdown.get_or_insert(Action::Poweroff);
                return false;
            }
        }
        true
    }

    /// Whether a container of that name runs now.
    fn is_running(&self, name: &str) -> bool {
        self.children.values().any(|c| c.name == name && c.exit.is_none())
    }

    /// SIGTERM to a running onboot container once a shutdown is requested, SIGKILL after the
    /// grace, as for services.
    fn stop_for_shutdown(&mut self, pid: i32) {
        let grace = Duration::from_secs(self.knobs.shutdown_grace);
        let Some(c) = self.children.get_mut(&pid) else { return };
        if c.stopped {
            return;
        }
        c.stopped = true;
        c.kill_at = Some(Instant::now() + grace);
        console::event(&format!("stopping onboot {} for the shutdown", c.name));
        let _ = shutdown_kill(pid, libc::SIGTERM);
    }

    /// Starts every service (sorted); they then run concurrently.
    pub fn start_services(&mut self, dir: &Path) {
        for d in sorted_dirs(dir) {
            let name = d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            self.start_service(&d, &name);
        }
    }

    /// Starts one service with its console lines; its pid, or None when it could not start.
    fn start_service(&mut self, dir: &Path, name: &str) -> Option<i32> {
        match self.start(Kind::Service, dir) {
            Ok(pid) => {
                console::event(&format!("service {name} started pid {pid}"));
                Some(pid)
            }
            Err(e) => {
                console::event(&format!("service {name} exited 127"));
                console::event(&format!("warning {}", console::chain(&e)));
                None
            }
        }
    }

    /// Supervises until a shutdown is requested.
    pub fn wait_for_shutdown(&mut self) -> Action {
        loop {
            if let Some(a) = self.shutdown {
                return a;
            }
            let now = Instant::now();
            let wait = self.restarts.iter().map(|r| r.at.saturating_duration_since(now)).min();
            self.poll(wait.unwrap_or(Duration::from_secs(5)).min(Duration::from_secs(5)));
            let done: Vec<i32> = self
                .children
                .iter()
                .filter(|(_, c)| c.exit.is_some() && c.kind == Kind::Service)
                .map(|(p, _)| *p)
                .collect();
            for pid in done {
                let Some(c) = self.children.get(&pid) else { continue };
                let policy = c.bundle.config.annotations.get(RESTART_ANNOTATION).cloned();
                let (dir, name) = (c.bundle.dir.clone(), c.name.clone());
                let (ran, prev) = (c.started.elapsed(), c.delay);
                let (asked, held) = (c.restart_requested, c.held);
                let code = self.finish(pid);
                if self.shutdown.is_none() && asked {
                    self.start_service(&dir, &name);
                } else if self.shutdown.is_none() && !held && restarts(policy.as_deref(), code) {
                    let delay = next_delay(prev, ran);
                    console::event(&format!(
                        "service {name} restarting in {} s ({RESTART_ANNOTATION}={})",
                        delay.as_secs(),
                        policy.unwrap_or_default()
                    ));
                    self.restarts.push(Restart { dir, name, at: Instant::now() + delay, delay });
                }
            }
            self.start_due_restarts();
        }
    }

    /// Starts the services whose restart back-off is over.
    fn start_due_restarts(&mut self) {
        let now = Instant::now();
        let (due, later): (Vec<Restart>, Vec<Restart>) =
            std::mem::take(&mut self.restarts).into_iter().partition(|r| r.at <= now);
        self.restarts = later;
        // A service `baleen-ctl start` ran meanwhile is not started a second time.
        let due: Vec<Restart> = due.into_iter().filter(|r| !self.is_running(&r.name)).collect();
        for r in due {
            if let Some(c) =
                self.start_service(&r.dir, &r.name).and_then(|p| self.children.get_mut(&p))
            {
                c.delay = Some(r.delay);
            }
        }
    }

    /// Collects a finished child: drains its pipes, prints the protocol lines, unmounts its
    /// root. Returns the exit code.
    fn finish(&mut self, pid: i32) -> i32 {
        let Some(mut c) = self.children.remove(&pid) else { return 0 };
        let code = c.exit.unwrap_or(0);
        self.drain(&mut c, true);
        if let Some(log) = self.logs.get_mut(&c.name) {
            let rest = log.finish();
            if self.knobs.debug {
                for l in rest {
                    console::emit(&console::echo_line(console::uptime(), &c.name, &l));
                }
            }
        }
        if c.stopped {
            // Not `exited`: `baleen run` counts a non-zero `onboot … exited` as a failure.
            console::event(&format!("{} {} stopped {code}", c.kind.word(), c.name));
        } else if c.kind == Kind::Onboot && code != 0 {
            // One line that says it all: `onboot 001-format exited 1: <last stderr lines>`.
            self.onboot_failed = true;
            let why = self.logs.get(&c.name).map_or_else(String::new, |l| {
                let mut t = l.tail(Stream::Stderr);
                if t.is_empty() {
                    t = l.tail(Stream::Stdout);
                }
                t.join(" | ")
            });
            let why = if why.is_empty() { "no output".to_owned() } else { why };
            console::event(&format!("onboot {} exited {code}: {why}", c.name));
        } else {
            console::event(&format!("{} {} exited {code}", c.kind.word(), c.name));
        }
        self.finished
            .insert(c.name.clone(), Finished { kind: c.kind, code, dir: c.bundle.dir.clone() });
        // Followers of this container get what is queued, then EOF: it is over.
        for f in &mut self.followers {
            if f.follows.as_deref() == Some(c.name.as_str()) {
                f.end();
            }
        }
        self.followers.retain(ctl::Follower::live);
        container::cleanup(&mut Real, &c.bundle);
        if let Some(h) = &c.bundle.config.hooks {
            let state = spawn::hook_state(&c.bundle, "stopped", None);
            let state = state.as_state();
            let mut exec = crate::hooks::Exec;
            for e in crate::hooks::run_all_warn(&mut exec, "poststop", &h.poststop, &state) {
                console::event(&format!("warning {}: {}", c.name, console::chain(&e)));
            }
        }
        code
    }

    /// Moves pending output of `c` into its log; with `to_eof`, reads until the pipes are
    /// empty and closes them (the process has exited; orphans holding them are ignored).
    fn drain(&mut self, c: &mut Child, to_eof: bool) {
        let mut buf = [0u8; 16384];
        let log = self.logs.get_mut(&c.name);
        let Some(log) = log else { return };
        c.fds.retain(|(fd, stream)| loop {
            match read_some(fd, &mut buf) {
                Some(0) => return !to_eof,
                Some(n) => {
                    for l in log.feed(*stream, &buf[..n]) {
                        if self.knobs.debug {
                            console::emit(&console::echo_line(console::uptime(), &c.name, &l));
                        }
                        ctl::send_to_followers(&mut self.followers, &c.name, &l);
                    }
                    if !to_eof {
                        return true;
                    }
                }
                None => return false,
            }
        });
    }

    /// One round of the loop: waits up to `timeout` for a signal, output or a ctl client.
    #[allow(unsafe_code)]
    pub fn poll(&mut self, timeout: Duration) {
        let pollin = |fd: i32| libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // Slots 0..3: signals, the ctl socket, ACPI events (-1 = absent, ignored by poll).
        let mut fds = vec![
            pollin(self.sigfd.as_raw_fd()),
            pollin(self.ctl.as_ref().map_or(-1, |l| l.as_raw_fd())),
            pollin(self.acpi.as_ref().map_or(-1, |a| a.fd.as_raw_fd())),
        ];
        for c in self.children.values() {
            for (fd, _) in &c.fds {
                fds.push(pollin(fd.as_raw_fd()));
            }
        }
        // Then the ctl clients: writable when they have something queued; a hang-up or an
        // error is reported whatever the events asked.
        let first_client = fds.len();
        for f in &self.followers {
            let events = if f.wants_write() { libc::POLLOUT } else { 0 };
            fds.push(libc::pollfd { fd: f.fd(), events, revents: 0 });
        }
        // Then the connections whose request is still coming.
        fds.extend(self.requests.iter().map(|p| pollin(p.fd())));
        let mut timeout = timeout;
        // A request still coming is given up at its deadline.
        let now = Instant::now();
        if let Some(d) =
            self.requests.iter().map(|p| p.deadline.saturating_duration_since(now)).min()
        {
            timeout = timeout.min(d);
        }
        if self.children.values().any(|c| c.kill_at.is_some()) {
            timeout = timeout.min(Duration::from_millis(200));
        }
        // SAFETY: fds is a valid array of pollfd for its length.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as _, timeout.as_millis() as i32) };
        // Before anything can add or drop clients, so the slots still match.
        let mut slots = fds[first_client..].iter();
        self.followers.retain_mut(|f| {
            let r = slots.next().map_or(0, |p| p.revents);
            if r & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                return false;
            }
            (r & libc::POLLOUT == 0 || f.flush()) && f.live()
        });
        if fds[0].revents != 0 {
            self.read_signals();
        }
        if fds[1].revents != 0 || !self.requests.is_empty() {
            self.serve_ctl();
        }
        if fds[2].revents != 0 && self.acpi.as_ref().is_some_and(|a| a.power_pressed()) {
            if self.shutdown.is_none() {
                console::event("shutdown requested: acpi power button (poweroff)");
            }
            self.shutdown.get_or_insert(Action::Poweroff);
        }
        let pids: Vec<i32> = self.children.keys().copied().collect();
        for pid in pids {
            if let Some(mut c) = self.children.remove(&pid) {
                self.drain(&mut c, false);
                if c.kill_at.is_some_and(|t| Instant::now() >= t) && c.exit.is_none() {
                    let _ = shutdown_kill(pid, libc::SIGKILL);
                    c.kill_at = None;
                }
                self.children.insert(pid, c);
            }
        }
    }

    #[allow(unsafe_code)]
    fn read_signals(&mut self) {
        // SAFETY: signalfd_siginfo is plain data that read() fills.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        loop {
            // SAFETY: info is writable for `size` bytes.
            let n = unsafe {
                libc::read(
                    self.sigfd.as_raw_fd(),
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    size,
                )
            };
            if n != size as isize {
                break;
            }
            let sig = info.ssi_signo as i32;
            if sig == libc::SIGCHLD {
                self.reap();
            } else if let Some(a) = Action::from_signal(sig) {
                if self.shutdown.is_none() {
                    console::event(&format!("shutdown requested: signal {sig} ({})", a.word()));
                }
                self.shutdown.get_or_insert(a);
            }
        }
        // SIGCHLD coalesces: reap on every wake-up to be sure.
        self.reap();
    }

    /// Reaps every exited child; records exit codes of containers, drops orphans.
    fn reap(&mut self) {
        while let Some((pid, code)) = reap_any() {
            if let Some(c) = self.children.get_mut(&pid) {
                c.exit = Some(code);
            }
        }
    }

    fn running_services(&self) -> Vec<i32> {
        self.children
            .iter()
            .filter(|(_, c)| c.kind == Kind::Service && c.exit.is_none())
            .map(|(p, _)| *p)
            .collect()
    }

    /// Stops services, runs onshutdown containers, then `hooks` (/etc/shutdown.d), tears down,
    /// powers off. Never returns.
    pub fn shutdown(mut self, action: Action, onshutdown: &Path, hooks: impl FnOnce()) -> ! {
        console::event("shutdown begin");
        let pids = self.running_services();
        let grace = Duration::from_secs(self.knobs.shutdown_grace);
        let mut real = Real;
        shutdown::stop_services(&mut real, &pids, grace, &mut |d| {
            let until = Instant::now() + d;
            loop {
                let left = self.running_services();
                if left.is_empty() || Instant::now() >= until {
                    return left;
                }
                self.poll(Duration::from_millis(100));
            }
        });
        let done: Vec<i32> = self.children.keys().copied().collect();
        for pid in done {
            if self.children.get(&pid).is_some_and(|c| c.exit.is_some()) {
                self.finish(pid);
            }
        }
        self.run_sequence(Kind::Onshutdown, onshutdown);
        hooks();
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        shutdown::teardown(&mut real, &mounts);
        let status = shutdown::status(self.onboot_failed);
        console::event(&format!("poweroff status {status}"));
        shutdown::power(action, status)
    }
}

/// Whether a finished container ends the boot: only a failed onboot container, and only under
/// `baleen.onboot_failure=poweroff` (LinuxKit goes on).
fn stops_boot(kind: Kind, code: i32, policy: OnbootFailure) -> bool {
    kind == Kind::Onboot && code != 0 && policy == OnbootFailure::Poweroff
}

fn shutdown_kill(pid: i32, sig: i32) -> std::io::Result<()> {
    crate::sys::Sys::kill(&mut Real, pid, sig)
}

/// One exited child of init, whichever it is (`waitpid(-1, WNOHANG)`): its pid and exit code,
/// 128 + the signal for one killed. `None` when no child has exited.
fn reap_any() -> Option<(i32, i32)> {
    // rustix's `wait` is waitpid(-1): any child. (Its `waitpid(None)` is waitpid(0), only the
    // children in init's own process group, which every container leaves by setsid.)
    use rustix::process::{wait, WaitOptions};
    let (pid, status) = wait(WaitOptions::NOHANG).ok()??;
    let code = match status.exit_status() {
        Some(code) => code,
        None => 128 + status.terminating_signal().unwrap_or(0),
    };
    Some((pid.as_raw_nonzero().get(), code))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bug: reaping asked for waitpid(0), the children of init's own process group; a
    /// container leaves it by setsid, so its exit was never seen and the boot hung. Run in a
    /// forked child so that reaping "any child" cannot take another test's.
    #[test]
    #[allow(unsafe_code)]
    fn a_child_in_another_process_group_is_reaped() {
        // SAFETY: the forked child only makes syscalls (fork, setpgid, wait4, nanosleep) and
        // leaves with _exit, never returning into the test harness.
        let child = unsafe { libc::fork() };
        if child == 0 {
            // SAFETY: as above; the grandchild leaves init-like process group 0 and exits 7.
            let grandchild = unsafe { libc::fork() };
            if grandchild == 0 {
                // SAFETY: integer-only calls in the forked grandchild.
                unsafe {
                    libc::setpgid(0, 0);
                    libc::_exit(7)
                }
            }
            let mut verdict = 2; // nothing reaped within 5 s
            for _ in 0..500 {
                if let Some((pid, code)) = reap_any() {
                    verdict = if pid == grandchild && code == 7 { 0 } else { 1 };
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            // SAFETY: leaves the forked child without running the harness's code.
            unsafe { libc::_exit(verdict) }
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above, writing a local integer.
        assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
        assert!(libc::WIFEXITED(status), "status {status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), 0, "0: reaped; 1: wrong pid or code; 2: none");
    }

    #[test]
    fn restart_policy_and_back_off() {
        assert!(!restarts(None, 1), "LinuxKit's default: a service stays down");
        assert!(!restarts(Some("no"), 1));
        assert!(restarts(Some("on-failure"), 1) && !restarts(Some("on-failure"), 0));
        assert!(restarts(Some("always"), 0));
        let s = Duration::from_secs;
        assert_eq!(next_delay(None, s(0)), s(1));
        assert_eq!(next_delay(Some(s(1)), s(0)), s(2), "failing fast doubles");
        assert_eq!(next_delay(Some(s(16)), s(0)), s(30), "capped");
        assert_eq!(next_delay(Some(s(30)), s(60)), s(1), "a long run resets it");
    }

    #[test]
    fn only_a_failed_onboot_under_poweroff_policy_stops_the_boot() {
        use OnbootFailure::*;
        assert!(stops_boot(Kind::Onboot, 1, Poweroff));
        assert!(!stops_boot(Kind::Onboot, 1, Continue));
        assert!(!stops_boot(Kind::Onboot, 0, Poweroff));
        assert!(!stops_boot(Kind::Onshutdown, 1, Poweroff));
    }
}
