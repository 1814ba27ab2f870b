//! Running a [`QemuPlan`]: spawning qemu, teeing the serial console, enforcing `--timeout`,
//! stopping cleanly on SIGINT/SIGTERM, and mapping the end to an exit status ([`Verdict`]).
//!
//! qemu runs with `-nographic`, so the serial console (muxed with qemu's monitor, as LinuxKit) is
//! qemu's stdout. A reader thread copies it to our stdout and to the console log as it arrives
//! (byte by byte, so a `login: ` prompt without a newline shows at once), keeps it for
//! [`Vm::wait_for`], and feeds complete lines to a [`ConsoleWatch`].
//!
//! Stopping, gently first: [`Vm::powerdown`] presses the ACPI power button through qemu's QMP
//! socket, so baleen-init runs the onshutdown containers and powers off; [`Vm::stop`] sends qemu
//! SIGTERM, on which it quits at once but cleanly (disk caches flushed); SIGKILL follows only when
//! it does not exit within [`STOP_GRACE`]. At a terminal, Ctrl-C is a byte for the guest (the
//! console is muxed with `signal=off`) and `Ctrl-A X` quits qemu; SIGINT/SIGTERM sent to baleen
//! press the power button and wait [`SHUTDOWN_GRACE`].

use crate::console::{verdict, ConsoleWatch, Event, QemuEnd, Verdict};
use crate::plan::QemuPlan;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long qemu gets to exit after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// How long a panicked guest may keep printing (the panic's backtrace) before baleen stops it.
pub const PANIC_GRACE: Duration = Duration::from_secs(2);

/// How long the guest gets to power off after the ACPI power button (SIGINT, SIGTERM) before
/// qemu is stopped. A second signal stops it at once.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// The console kept in memory is capped; past this the oldest half is dropped (the log file keeps
/// everything).
const MAX_CONSOLE_IN_MEMORY: usize = 16 << 20;

/// What qemu's stdin is connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdinMode {
    /// The user's terminal: type into the guest's serial console (Ctrl-A X quits qemu).
    Inherit,
    Null,
    /// Written by [`Vm::send`] (boot tests driving a shell).
    Piped,
}

/// How to supervise the VM.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Copy the console to our stdout.
    pub echo: bool,
    /// The console log; default `<state>/console.log`.
    pub console_file: Option<PathBuf>,
    pub stdin: StdinMode,
    /// Stop the VM after this long ([`QemuEnd::TimedOut`], exit 124).
    pub timeout: Option<Duration>,
    /// Turn SIGINT/SIGTERM to baleen into a clean stop of the VM (the CLI; not tests).
    pub handle_signals: bool,
    /// Print the boot timeline on stderr once services started (or at the end).
    pub measure: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            echo: true,
            console_file: None,
            stdin: StdinMode::Inherit,
            timeout: None,
            handle_signals: false,
            measure: false,
        }
    }
}

/// Running a VM failed (as opposed to the VM failing, which is a [`Verdict`]).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("starting {program} (Debian package qemu-system-x86 or qemu-system-arm)")]
    Spawn { program: String, source: io::Error },
    #[error("opening the console log {path}")]
    ConsoleFile { path: PathBuf, source: io::Error },
    #[error("waiting for qemu (pid {pid})")]
    Wait { pid: u32, source: io::Error },
    #[error("pressing the power button of qemu (pid {pid}) through its QMP socket")]
    Qmp { pid: u32, source: io::Error },
    #[error("starting the VM's TPM")]
    Tpm(#[source] crate::tpm::TpmError),
}

/// How the run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub end: QemuEnd,
    pub verdict: Verdict,
    pub watch: ConsoleWatch,
    pub console_file: PathBuf,
}

#[derive(Default)]
struct ConsoleState {
    bytes: Vec<u8>,
    partial: Vec<u8>,
    watch: ConsoleWatch,
    eof: bool,
    measured: bool,
    /// Host time from qemu's start to init's first line (firmware + kernel, as the host sees it).
    host_to_init: Option<Duration>,
}

struct Shared {
    state: Mutex<ConsoleState>,
    cond: Condvar,
}

/// A running VM. Dropping it kills qemu.
pub struct Vm {
    child: Child,
    stdin: Option<ChildStdin>,
    shared: Arc<Shared>,
    reader: Option<JoinHandle<()>>,
    config: RunConfig,
    console_file: PathBuf,
    started: Instant,
    saved_termios: Option<rustix::termios::Termios>,
    finished: bool,
    qmp: Option<PathBuf>,
    /// The full command line, for logs and error messages.
    pub command: Vec<OsString>,
    /// swtpm with `--tpm`; dropped (stopped) after qemu.
    tpm: Option<crate::tpm::Swtpm>,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm").field("pid", &self.child.id()).field("command", &self.command).finish()
    }
}

fn console_path(plan: &QemuPlan, config: &RunConfig) -> PathBuf {
    config.console_file.clone().unwrap_or_else(|| plan.state_dir.join("console.log"))
}

/// The full qemu command line as one shell-like string, for `-v` logs.
pub fn display_command(plan: &QemuPlan) -> String {
    std::iter::once(plan.qemu_binary().to_owned())
        .chain(plan.argv().iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Starts qemu in its own process group, console to the log file, and returns its pid without
/// waiting (`--detached`). Stop it with `kill <pid>` (also in `<state>/qemu.pid`).
pub fn start_detached(plan: &QemuPlan, console_file: Option<&Path>) -> Result<u32, RunError> {
    use std::os::unix::process::CommandExt;
    let log =
        console_file.map(Path::to_owned).unwrap_or_else(|| plan.state_dir.join("console.log"));
    let open = |p: &Path| {
        std::fs::File::create(p)
            .map_err(|source| RunError::ConsoleFile { path: p.to_owned(), source })
    };
    let out = open(&log)?;
    let err = open(&plan.state_dir.join("qemu.log"))?;
    if let Some(q) = plan.qmp_socket() {
        let _ = std::fs::remove_file(q);
    }
    // swtpm ends by itself when qemu, the only one who connects, closes the socket.
    let tpm = plan.tpm.then(|| crate::tpm::Swtpm::start(&plan.state_dir)).transpose();
    let tpm = tpm.map_err(RunError::Tpm)?;
    let child = Command::new(plan.qemu_binary())
        .args(plan.argv())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group: Ctrl-C in this terminal must not reach it.
        .process_group(0)
        .spawn()
        .map_err(|source| RunError::Spawn { program: plan.qemu_binary().into(), source })?;
    if let Some(tpm) = tpm {
        tpm.detach();
    }
    Ok(child.id())
}

impl Vm {
    /// Starts qemu for `plan`.
    pub fn start(plan: &QemuPlan, config: RunConfig) -> Result<Vm, RunError> {
        let console_file = console_path(plan, &config);
        // A socket left by a VM that was killed would make qemu's bind fail.
        if let Some(q) = plan.qmp_socket() {
            let _ = std::fs::remove_file(q);
        }
        let log = std::fs::File::create(&console_file)
            .map_err(|source| RunError::ConsoleFile { path: console_file.clone(), source })?;
        let argv = plan.argv();
        tracing::info!("{}", display_command(plan));
        let tpm = plan.tpm.then(|| crate::tpm::Swtpm::start(&plan.state_dir)).transpose();
        let tpm = tpm.map_err(RunError::Tpm)?;

        let saved_termios = if config.stdin == StdinMode::Inherit {
            let stdin = io::stdin();
            let fd = stdin.as_fd();
            rustix::termios::isatty(fd).then(|| rustix::termios::tcgetattr(fd).ok()).flatten()
        } else {
            None
        };
        let mut child = Command::new(plan.qemu_binary())
            .args(&argv)
            .stdin(match config.stdin {
                StdinMode::Inherit => Stdio::inherit(),
                StdinMode::Null => Stdio::null(),
                StdinMode::Piped => Stdio::piped(),
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| RunError::Spawn { program: plan.qemu_binary().into(), source })?;
        let started = Instant::now();
        let shared =
            Arc::new(Shared { state: Mutex::new(ConsoleState::default()), cond: Condvar::new() });
        let stdout = child.stdout.take().expect("stdout was piped");
        let reader = {
            let shared = Arc::clone(&shared);
            let (echo, measure) = (config.echo, config.measure);
            std::thread::spawn(move || pump(stdout, log, echo, measure, started, &shared))
        };
        let mut command = vec![OsString::from(plan.qemu_binary())];
        command.extend(argv);
        Ok(Vm {
            qmp: plan.qmp_socket(),
            stdin: child.stdin.take(),
            child,
            shared,
            reader: Some(reader),
            config,
            console_file,
            started,
            saved_termios,
            finished: false,
            command,
            tpm,
        })
    }

    /// qemu's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The console log file.
    pub fn console_file(&self) -> &Path {
        &self.console_file
    }

    /// The console so far (lossy UTF-8, `\r` removed).
    pub fn console(&self) -> String {
        let st = self.shared.state.lock().expect("console lock");
        String::from_utf8_lossy(&st.bytes).replace('\r', "")
    }

    /// What the console's protocol lines said so far.
    pub fn watch(&self) -> ConsoleWatch {
        self.shared.state.lock().expect("console lock").watch.clone()
    }

    /// Waits until the console contains `marker`; returns the console so far. `Err` carries the
    /// console too, when the time ran out or the VM ended first.
    pub fn wait_for(&self, marker: &str, timeout: Duration) -> Result<String, WaitError> {
        let deadline = Instant::now() + timeout;
        let needle = marker.as_bytes();
        let mut st = self.shared.state.lock().expect("console lock");
        loop {
            if st.bytes.windows(needle.len().max(1)).any(|w| w == needle) {
                return Ok(String::from_utf8_lossy(&st.bytes).replace('\r', ""));
            }
            let console = || String::from_utf8_lossy(&st.bytes).replace('\r', "");
            if st.eof {
                return Err(WaitError::Ended { marker: marker.into(), console: console() });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(WaitError::TimedOut {
                    marker: marker.into(),
                    secs: timeout.as_secs_f64(),
                    console: console(),
                });
            }
            st = self.shared.cond.wait_timeout(st, deadline - now).expect("console lock").0;
        }
    }

    /// Types `bytes` into the serial console ([`StdinMode::Piped`] only).
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.stdin {
            Some(s) => s.write_all(bytes).and_then(|_| s.flush()),
            None => Err(io::Error::other("the VM's stdin is not piped (StdinMode::Piped)")),
        }
    }

    /// Presses the guest's ACPI power button (QMP `system_powerdown`); baleen-init then runs
    /// the onshutdown containers and powers off. Returns at once; see [`Vm::shutdown`].
    pub fn powerdown(&self) -> io::Result<()> {
        match &self.qmp {
            Some(sock) => qmp_execute(sock, "system_powerdown"),
            None => Err(io::Error::other("no QMP socket (the state dir path is too long)")),
        }
    }

    /// Presses the power button and waits up to `grace` for the guest to power off; a guest that
    /// does not is stopped ([`QemuEnd::TimedOut`]).
    pub fn shutdown(&mut self, grace: Duration) -> Result<RunOutcome, RunError> {
        let pid = self.child.id();
        self.powerdown().map_err(|source| RunError::Qmp { pid, source })?;
        self.config.timeout = Some(self.started.elapsed() + grace);
        self.wait()
    }

    /// Asks qemu to quit (SIGTERM), then kills it after [`STOP_GRACE`]. Returns how it ended.
    pub fn stop(&mut self) -> io::Result<std::process::ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Ok(status);
        }
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                return self.child.wait();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the VM to end (enforcing the timeout and, when configured, turning SIGINT or
    /// SIGTERM into a clean stop) and maps the end to a [`Verdict`].
    pub fn wait(&mut self) -> Result<RunOutcome, RunError> {
        let interrupted = Arc::new(AtomicBool::new(false));
        let mut hooks = Vec::new();
        if self.config.handle_signals {
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                if let Ok(id) = signal_hook::flag::register(sig, Arc::clone(&interrupted)) {
                    hooks.push(id);
                }
            }
        }
        let pid = self.child.id();
        let wait_err = |source| RunError::Wait { pid, source };
        let mut panic_seen: Option<Instant> = None;
        let mut powerdown_at: Option<Instant> = None;
        let end = loop {
            if let Some(status) = self.child.try_wait().map_err(wait_err)? {
                break if interrupted.load(Ordering::SeqCst) {
                    // A SIGINT that reached qemu too (its process group) and made it quit.
                    QemuEnd::Interrupted
                } else if powerdown_at.is_some() {
                    // The guest powered off after the power button: its own status counts,
                    // but the user did ask to stop it.
                    match end_of(status) {
                        QemuEnd::Exited(0) => QemuEnd::Interrupted,
                        other => other,
                    }
                } else {
                    end_of(status)
                };
            }
            if interrupted.swap(false, Ordering::SeqCst) {
                // First signal: the power button, so onshutdown runs; a second one, or a guest
                // that does not power off in time, or no QMP socket: stop qemu now.
                if powerdown_at.is_none() && self.powerdown().is_ok() {
                    // \r: qemu may have the terminal in raw mode, where \n does not return.
                    eprint!(
                        "\r\nbaleen run: pressed the VM's power button; waiting up to {} s for \
                         it to power off (a second SIGINT or SIGTERM stops it now)\r\n",
                        SHUTDOWN_GRACE.as_secs()
                    );
                    powerdown_at = Some(Instant::now());
                } else {
                    self.stop().map_err(wait_err)?;
                    break QemuEnd::Interrupted;
                }
            }
            if powerdown_at.is_some_and(|t| t.elapsed() >= SHUTDOWN_GRACE) {
                self.stop().map_err(wait_err)?;
                break QemuEnd::Interrupted;
            }
            if let Some(t) = self.config.timeout {
                if self.started.elapsed() >= t {
                    self.stop().map_err(wait_err)?;
                    break QemuEnd::TimedOut { secs: t.as_secs() };
                }
            }
            if panic_seen.is_none() && self.watch_panicked() {
                panic_seen = Some(Instant::now());
            }
            if self.watch_found_no_boot_device() {
                self.stop().map_err(wait_err)?;
                break QemuEnd::NoBootDevice;
            }
            // With `panic=N` the kernel reboots and -no-reboot ends qemu by itself; without it
            // the guest would sit there until the timeout.
            if panic_seen.is_some_and(|t| t.elapsed() >= PANIC_GRACE) {
                self.stop().map_err(wait_err)?;
                break QemuEnd::KernelPanicked;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        for id in hooks {
            signal_hook::low_level::unregister(id);
        }
        self.finish();
        let st = self.shared.state.lock().expect("console lock");
        if self.config.measure && !st.measured {
            eprint!("{}", measure_report(&st));
        }
        Ok(RunOutcome {
            end,
            verdict: verdict(end, &st.watch),
            watch: st.watch.clone(),
            console_file: self.console_file.clone(),
        })
    }

    fn watch_panicked(&self) -> bool {
        self.shared.state.lock().expect("console lock").watch.panic.is_some()
    }

    fn watch_found_no_boot_device(&self) -> bool {
        self.shared.state.lock().expect("console lock").watch.no_boot_device.is_some()
    }

    /// Joins the reader (qemu has exited, so its stdout reaches EOF) and restores the terminal.
    fn finish(&mut self) {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        if let Some(t) = self.saved_termios.take() {
            let _ = rustix::termios::tcsetattr(
                io::stdin().as_fd(),
                rustix::termios::OptionalActions::Now,
                &t,
            );
        }
        // SeaBIOS's first bytes include ESC[?7l, which turns off line wrapping in the user's
        // terminal for good; turn it back on.
        let stdout = io::stdout();
        if self.config.echo && rustix::termios::isatty(stdout.as_fd()) {
            let mut out = stdout.lock();
            let _ = out.write_all(b"\x1b[?7h").and_then(|_| out.flush());
        }
        // qemu is gone: stop its TPM.
        self.tpm = None;
        self.finished = true;
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.finish();
        }
    }
}

/// A marker did not show up.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("{marker:?} did not appear on the console within {secs} s")]
    TimedOut { marker: String, secs: f64, console: String },
    #[error("the VM ended before {marker:?} appeared on the console")]
    Ended { marker: String, console: String },
}

impl WaitError {
    /// The console up to the failure.
    pub fn console(&self) -> &str {
        match self {
            WaitError::TimedOut { console, .. } | WaitError::Ended { console, .. } => console,
        }
    }
}

/// Runs one QMP command: read the greeting, negotiate capabilities, execute, and wait for the
/// reply (skipping asynchronous events such as `POWERDOWN`).
fn qmp_execute(sock: &Path, command: &str) -> io::Result<()> {
    use std::io::BufRead;
    let stream = std::os::unix::net::UnixStream::connect(sock)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = io::BufReader::new(stream);
    let mut reply = || -> io::Result<String> {
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "QMP socket closed"));
            }
            if line.contains("\"return\"") || line.contains("\"error\"") || line.contains("\"QMP\"")
            {
                return Ok(line);
            }
        }
    };
    reply()?; // the greeting
    for cmd in ["qmp_capabilities", command] {
        writer.write_all(format!("{{\"execute\":\"{cmd}\"}}\n").as_bytes())?;
        let line = reply()?;
        if line.contains("\"error\"") {
            return Err(io::Error::other(format!("QMP {cmd}: {}", line.trim())));
        }
    }
    Ok(())
}

fn end_of(status: std::process::ExitStatus) -> QemuEnd {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => QemuEnd::Exited(code),
        (None, Some(sig)) => QemuEnd::Signalled(sig),
        (None, None) => QemuEnd::Exited(1),
    }
}

fn measure_report(st: &ConsoleState) -> String {
    match st.watch.timeline() {
        None => "measure: init printed no `baleen: init started` line on the console\n".into(),
        Some(tl) => {
            let mut s = tl.render();
            if let Some(h) = st.host_to_init {
                s.push_str(&format!(
                    "  {:>8.3}  host: qemu start -> init (includes firmware)\n",
                    h.as_secs_f64()
                ));
            }
            s
        }
    }
}

/// The reader thread: console bytes → stdout, log, memory, line watcher.
fn pump(
    mut from: impl Read,
    log: std::fs::File,
    echo: bool,
    measure: bool,
    started: Instant,
    shared: &Shared,
) {
    let mut log = io::BufWriter::new(log);
    let mut buf = [0u8; 8192];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        if echo {
            let mut out = io::stdout().lock();
            // A closed stdout (`baleen run | head`) must not stop the VM's supervision.
            let _ = out.write_all(chunk).and_then(|_| out.flush());
        }
        let _ = log.write_all(chunk).and_then(|_| log.flush());
        let mut st = shared.state.lock().expect("console lock");
        st.bytes.extend_from_slice(chunk);
        if st.bytes.len() > MAX_CONSOLE_IN_MEMORY {
            st.bytes.drain(..MAX_CONSOLE_IN_MEMORY / 2);
        }
        st.partial.extend_from_slice(chunk);
        while let Some(pos) = st.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = st.partial.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            st.watch.feed(&line);
            if st.host_to_init.is_none()
                && st.watch.events.last().is_some_and(|(_, e)| *e == Event::InitStarted)
            {
                st.host_to_init = Some(started.elapsed());
            }
            if measure && !st.measured && st.watch.services_started() {
                st.measured = true;
                eprint!("{}", measure_report(&st));
            }
        }
        drop(st);
        shared.cond.notify_all();
    }
    let mut st = shared.state.lock().expect("console lock");
    if !st.partial.is_empty() {
        let line = String::from_utf8_lossy(&std::mem::take(&mut st.partial)).into_owned();
        st.watch.feed(&line);
    }
    st.eof = true;
    drop(st);
    shared.cond.notify_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out its chunks one `read` at a time, as a pipe would.
    struct Chunks(Vec<Vec<u8>>);

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let c = self.0.remove(0);
            buf[..c.len()].copy_from_slice(&c);
            Ok(c.len())
        }
    }

    fn shared() -> Shared {
        Shared { state: Mutex::new(ConsoleState::default()), cond: Condvar::new() }
    }

    #[test]
    fn lines_split_across_reads_are_joined_and_logged_verbatim() {
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("console.log");
        let chunks = vec![
            b"SeaBIOS\r\n[    0.40".to_vec(),
            b"0] baleen: init started\r\n[    0.5] baleen: poweroff sta".to_vec(),
            b"tus 2\r\nlogin: ".to_vec(),
        ];
        let sh = shared();
        pump(
            Chunks(chunks.clone()),
            std::fs::File::create(&log_path).unwrap(),
            false,
            false,
            Instant::now(),
            &sh,
        );
        let st = sh.state.lock().unwrap();
        assert!(st.eof);
        assert_eq!(st.bytes, chunks.concat());
        assert_eq!(std::fs::read(&log_path).unwrap(), chunks.concat(), "the log is byte-exact");
        assert_eq!(st.watch.events.first().map(|e| &e.1), Some(&Event::InitStarted));
        assert_eq!(st.watch.poweroff_status, Some(2));
        assert!(st.host_to_init.is_some());
    }

    #[test]
    fn a_last_line_without_newline_is_still_seen() {
        let dir = tempfile::tempdir().unwrap();
        let sh = shared();
        pump(
            Chunks(vec![b"[ 1.0] baleen: poweroff status 4".to_vec()]),
            std::fs::File::create(dir.path().join("log")).unwrap(),
            false,
            false,
            Instant::now(),
            &sh,
        );
        assert_eq!(sh.state.lock().unwrap().watch.poweroff_status, Some(4));
    }

    #[test]
    fn measure_report_names_what_is_missing() {
        let st = ConsoleState::default();
        assert!(measure_report(&st).contains("no `baleen: init started`"));
        let mut st = ConsoleState::default();
        st.watch.feed("[    0.300] baleen: init started");
        st.host_to_init = Some(Duration::from_millis(2500));
        let r = measure_report(&st);
        assert!(r.contains("0.300  kernel -> init") && r.contains("2.500  host"), "{r}");
    }
}
