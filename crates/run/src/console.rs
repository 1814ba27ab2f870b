//! Reading the serial console: baleen-init's protocol lines, the boot timeline, and what the
//! console says about how the VM ended.
//!
//! init prints one event per line, `[    0.412] baleen: <event> <args…>` (the bracket is
//! CLOCK_BOOTTIME seconds). init writes each line in one `write(2)`, but the kernel's printk
//! reaches the UART directly while init's bytes wait in the tty buffer, so a kernel message can
//! land anywhere in init's line: in front of it (no newline between), at its end (before init's
//! `\r\n`), or in its middle (init's line then resumes after the kernel's `\r\n`). So
//! [`parse_line`] looks for `] baleen: ` anywhere, reads the bracket before it and cuts the event
//! at a printk timestamp (`[    7.678532]`: six decimals, where init prints three); and
//! [`ConsoleWatch`] keeps the head of a line a kernel message split, and joins it with the next
//! line that is not the kernel's before reading it.

use std::fmt::Write as _;

/// One protocol event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    InitStarted,
    /// `phase mounts done`, `phase services started`…: the words after `phase`.
    Phase(String),
    OnbootStarted {
        dir: String,
        pid: u32,
    },
    /// `onboot DIR exited CODE`, or for a failure `onboot DIR exited CODE: LAST STDERR LINES`.
    OnbootExited {
        dir: String,
        code: i32,
        message: Option<String>,
    },
    /// `onboot DIR failed: MESSAGE`: the second line older inits printed after a failure.
    OnbootFailed {
        dir: String,
        message: String,
    },
    ServiceStarted {
        name: String,
        pid: u32,
    },
    ServiceExited {
        name: String,
        code: i32,
    },
    OnshutdownExited {
        dir: String,
        code: i32,
    },
    ShutdownBegin,
    PoweroffStatus(i32),
    /// A `baleen:` line this version does not know; kept so a newer init does not break `run`.
    Unknown(String),
}

/// A protocol line: the guest's timestamp in seconds and the event.
pub fn parse_line(line: &str) -> Option<(f64, Event)> {
    let at = line.find("] baleen: ")?;
    let open = line[..at].rfind('[')?;
    let time: f64 = line[open + 1..at].trim().parse().ok()?;
    let rest = line[at + "] baleen: ".len()..].trim_end_matches(['\r', '\n']);
    // A kernel message that arrived before init's line end is not part of the event.
    let rest = match kernel_stamp_after(rest, 0) {
        Some(k) => &rest[..k],
        None => rest,
    };
    let words: Vec<&str> = rest.split(' ').collect();
    let num = |s: &str| s.parse::<i32>().ok();
    let pid = |s: &str| s.parse::<u32>().ok();
    let event = match words.as_slice() {
        ["init", "started", ..] => Event::InitStarted,
        ["phase", ..] => Event::Phase(words[1..].join(" ")),
        ["onboot", dir, "started", "pid", p] => {
            Event::OnbootStarted { dir: (*dir).into(), pid: pid(p)? }
        }
        ["onboot", dir, "exited", c] => {
            Event::OnbootExited { dir: (*dir).into(), code: num(c)?, message: None }
        }
        ["onboot", dir, "exited", c, ..] if c.ends_with(':') => {
            let message = rest.split_once(": ").map(|(_, m)| m.to_owned());
            Event::OnbootExited { dir: (*dir).into(), code: num(&c[..c.len() - 1])?, message }
        }
        ["onboot", dir, "failed:", ..] => {
            let message = rest.split_once(" failed: ").map(|(_, m)| m).unwrap_or("").to_owned();
            Event::OnbootFailed { dir: (*dir).into(), message }
        }
        ["service", name, "started", "pid", p] => {
            Event::ServiceStarted { name: (*name).into(), pid: pid(p)? }
        }
        ["service", name, "exited", c] => {
            Event::ServiceExited { name: (*name).into(), code: num(c)? }
        }
        ["onshutdown", dir, "exited", c] => {
            Event::OnshutdownExited { dir: (*dir).into(), code: num(c)? }
        }
        ["shutdown", "begin"] => Event::ShutdownBegin,
        ["poweroff", "status", n] => Event::PoweroffStatus(num(n)?),
        _ => Event::Unknown(rest.to_owned()),
    };
    Some((time, event))
}

/// What the console has told so far; fed line by line.
#[derive(Debug, Clone, Default)]
pub struct ConsoleWatch {
    pub events: Vec<(f64, Event)>,
    /// The last `poweroff status n`.
    pub poweroff_status: Option<i32>,
    /// Onboot containers that exited non-zero, with their failure message when init gave one.
    pub failed_onboot: Vec<(String, String)>,
    /// The kernel's `Kernel panic - not syncing: …` line.
    pub panic: Option<String>,
    /// The firmware's line saying it found nothing to boot (SeaBIOS, OVMF), or that Secure
    /// Boot refused what it was to boot (OVMF's `… Access Denied`).
    pub no_boot_device: Option<String>,
    /// The head of a line that a kernel message cut (everything before its printk stamp), until
    /// the next line that is not the kernel's brings the rest.
    split: Option<Split>,
}

/// A line cut by a kernel message, see [`ConsoleWatch::feed`].
#[derive(Debug, Clone)]
struct Split {
    head: String,
    /// Where the head's own reading sits in `events`, when it read as an event: replaced once
    /// the rest arrives, kept if it never does (the guest powered off, the rest was only `\r`).
    provisional: Option<usize>,
}

impl ConsoleWatch {
    /// Takes one console line (with or without its `\r\n`).
    ///
    /// A line in which a kernel message starts after column 0 was cut by it: its head is read
    /// at once (an event at the very end of the output must not be lost) but kept, and the next
    /// line that is not a kernel message, when it has text, is its rest: the joined line is read
    /// again and replaces that first reading.
    pub fn feed(&mut self, line: &str) {
        if let Some(pos) = line.find("Kernel panic - not syncing") {
            if self.panic.is_none() {
                self.panic = Some(line[pos..].trim_end().to_owned());
            }
        }
        if self.no_boot_device.is_none() {
            if let Some(pos) = NO_BOOT_DEVICE.iter().find_map(|m| line.find(m)) {
                self.no_boot_device = Some(line[pos..].trim_end().to_owned());
            } else if let Some(pos) = line.find(SECURE_BOOT_REFUSAL.0) {
                if line.contains(SECURE_BOOT_REFUSAL.1) {
                    self.no_boot_device = Some(line[pos..].trim_end().to_owned());
                }
            }
        }
        let text = line.trim_end_matches(['\r', '\n']);
        if let Some(split) = self.split.take() {
            if kernel_stamp_at(text, 0).is_some() {
                // Another kernel message between the two halves: still waiting.
                self.split = Some(split);
            } else if text.starts_with('[') && parse_line(text).is_some() {
                // A whole protocol line of its own: the head was not a cut protocol line (a
                // shell prompt, escape codes), or its rest is lost; the head's reading stands.
                self.read(text);
                return;
            } else {
                if !text.is_empty() {
                    if let Some(i) = split.provisional {
                        self.events.remove(i);
                        self.replay();
                    }
                    let joined = split.head + text;
                    self.read(&joined);
                }
                return;
            }
        }
        self.read(text);
    }

    /// Reads one line of text (no line end), holding its head when a kernel message cut it.
    fn read(&mut self, text: &str) {
        if let Some(k) = kernel_stamp_after(text, 1) {
            let head = &text[..k];
            // A head ending in `\r` was a whole line: the kernel wrote between `\r` and `\n`.
            if !head.ends_with('\r') {
                let provisional = self.record(head).then(|| self.events.len() - 1);
                self.split = Some(Split { head: head.to_owned(), provisional });
                return;
            }
        }
        self.record(text);
    }

    /// Parses `line` and, when it is a protocol line, appends its event. True if it was.
    fn record(&mut self, line: &str) -> bool {
        let Some((t, event)) = parse_line(line) else { return false };
        self.apply(&event);
        self.events.push((t, event));
        true
    }

    /// Rebuilds what the events imply after one of them was replaced.
    fn replay(&mut self) {
        self.poweroff_status = None;
        self.failed_onboot.clear();
        let events = std::mem::take(&mut self.events);
        for (_, e) in &events {
            self.apply(e);
        }
        self.events = events;
    }

    fn apply(&mut self, event: &Event) {
        match event {
            Event::PoweroffStatus(n) => self.poweroff_status = Some(*n),
            Event::OnbootExited { dir, code, message }
                if *code != 0 && !self.failed_onboot.iter().any(|(d, _)| d == dir) =>
            {
                let message = message.clone().unwrap_or_else(|| format!("exited {code}"));
                self.failed_onboot.push((dir.clone(), message));
            }
            Event::OnbootFailed { dir, message } => {
                match self.failed_onboot.iter_mut().find(|(d, _)| d == dir) {
                    Some(entry) => entry.1 = message.clone(),
                    None => self.failed_onboot.push((dir.clone(), message.clone())),
                }
            }
            _ => {}
        }
    }

    /// True once init said every service was started.
    pub fn services_started(&self) -> bool {
        self.events.iter().any(|(_, e)| matches!(e, Event::Phase(p) if p == "services started"))
    }

    /// The boot timeline for `--measure`, or `None` when init printed nothing.
    pub fn timeline(&self) -> Option<Timeline> {
        let init = self.events.iter().find(|(_, e)| *e == Event::InitStarted)?.0;
        let mut tl = Timeline { kernel_to_init: init, steps: Vec::new(), total: init };
        for (t, e) in &self.events {
            let label = match e {
                Event::Phase(p) => format!("phase {p}"),
                Event::OnbootExited { dir, code, .. } => format!("onboot {dir} exited {code}"),
                Event::ServiceStarted { name, .. } => format!("service {name} started"),
                _ => continue,
            };
            tl.steps.push((label, t - init));
            tl.total = tl.total.max(*t);
        }
        Some(tl)
    }
}

/// Where a printk timestamp (`[` spaces digits `.` six digits `]`) starts in `text`, at or after
/// byte `from`. init's own stamps have three decimals, so they never match.
fn kernel_stamp_after(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    (from..bytes.len()).find(|&i| bytes[i] == b'[' && kernel_stamp_at(text, i).is_some())
}

/// The length of the printk timestamp starting at byte `at` of `text`, if one does.
fn kernel_stamp_at(text: &str, at: usize) -> Option<usize> {
    let b = text.as_bytes().get(at..)?;
    if b.first() != Some(&b'[') {
        return None;
    }
    let mut i = 1;
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    let int = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    i += int;
    if int == 0 || b.get(i) != Some(&b'.') {
        return None;
    }
    i += 1;
    let frac = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    i += frac;
    (frac == 6 && b.get(i) == Some(&b']')).then_some(i + 1)
}

/// `--measure` output: guest seconds from kernel start to init, init to each step, and total.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub kernel_to_init: f64,
    /// (label, seconds since `init started`).
    pub steps: Vec<(String, f64)>,
    /// Seconds since kernel start of the last step seen.
    pub total: f64,
}

impl Timeline {
    /// A small table, one step a line, for humans and for the benchmark's parser.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "boot timeline (guest clock, seconds)");
        let _ = writeln!(s, "  {:>8.3}  kernel -> init", self.kernel_to_init);
        for (label, dt) in &self.steps {
            let _ = writeln!(s, "  {dt:>8.3}  init -> {label}");
        }
        let _ = writeln!(s, "  {:>8.3}  total", self.total);
        s
    }
}

/// How a run ended, mapped to baleen's exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub code: i32,
    /// Why the code is not zero, for the user; `None` on a clean poweroff.
    pub message: Option<String>,
}

/// What firmware prints when nothing it was given boots: SeaBIOS, then OVMF's boot manager.
/// Seeing one, the VM would only sit there (SeaBIOS retries every minute) until the timeout.
const NO_BOOT_DEVICE: [&str; 2] = ["No bootable device", "No bootable option or device was found"];

/// OVMF's line when Secure Boot refuses a boot option's EFI binary (not signed by a key in db,
/// or changed since): `BdsDxe: failed to load Boot0001 "…" from …: Access Denied`. Nothing else
/// the VM was given would boot either, so it counts as nothing to boot.
const SECURE_BOOT_REFUSAL: (&str, &str) = ("BdsDxe: failed to load", ": Access Denied");

/// Exit status when `--timeout` killed the VM (as timeout(1)).
pub const EXIT_TIMEOUT: i32 = 124;
/// Exit status when the user interrupted the run (128 + SIGINT).
pub const EXIT_INTERRUPTED: i32 = 130;

/// How qemu itself ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QemuEnd {
    Exited(i32),
    Signalled(i32),
    /// Killed by baleen after `--timeout`.
    TimedOut {
        secs: u64,
    },
    /// Stopped because baleen got SIGINT or SIGTERM.
    Interrupted,
    /// Stopped by baleen after the console showed a kernel panic (a kernel without `panic=N`
    /// would otherwise sit there until the timeout).
    KernelPanicked,
    /// Stopped by baleen after the firmware said it found nothing to boot.
    NoBootDevice,
}

/// Maps qemu's end and the console to baleen's exit status, per the init↔run protocol:
/// qemu 0 → 0; qemu (n<<1)|1 → n; a `poweroff status n` line wins over both; a timeout → 124.
pub fn verdict(end: QemuEnd, watch: &ConsoleWatch) -> Verdict {
    let failures = || {
        watch
            .failed_onboot
            .iter()
            .map(|(dir, msg)| format!("onboot container {dir} failed: {msg}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let with_failures = |code: i32, fallback: String| {
        let f = failures();
        Verdict { code, message: Some(if f.is_empty() { fallback } else { f }) }
    };
    match end {
        QemuEnd::TimedOut { secs } => Verdict {
            code: EXIT_TIMEOUT,
            message: Some(format!(
                "the VM was still running after {secs} s (--timeout); baleen stopped it"
            )),
        },
        QemuEnd::Interrupted => Verdict {
            code: EXIT_INTERRUPTED,
            message: Some("interrupted; the VM was stopped".into()),
        },
        QemuEnd::KernelPanicked => Verdict {
            code: 1,
            message: Some(format!(
                "the guest kernel panicked: {}; baleen stopped the VM",
                watch.panic.as_deref().unwrap_or("Kernel panic")
            )),
        },
        QemuEnd::NoBootDevice
            if watch.no_boot_device.as_deref().is_some_and(|l| l.contains("Access Denied")) =>
        {
            Verdict {
                code: 1,
                message: Some(format!(
                    "the firmware refused to start PATH ({:?}): Secure Boot starts only EFI \
                     binaries signed by a certificate in db and unchanged since; baleen stopped \
                     the VM",
                    watch.no_boot_device.as_deref().unwrap_or_default()
                )),
            }
        }
        QemuEnd::NoBootDevice => Verdict {
            code: 1,
            message: Some(format!(
                "the firmware found nothing to boot ({:?}); baleen stopped the VM — is PATH a \
                 bootable output of `baleen build` (and under --secure-boot, signed by a \
                 certificate in db)?",
                watch.no_boot_device.as_deref().unwrap_or("No bootable device")
            )),
        },
        QemuEnd::Signalled(sig) => {
            Verdict { code: 128 + sig, message: Some(format!("qemu was killed by signal {sig}")) }
        }
        QemuEnd::Exited(qemu) => {
            if let Some(n) = watch.poweroff_status {
                if n == 0 {
                    return Verdict { code: 0, message: None };
                }
                return with_failures(n, format!("init powered off with status {n}"));
            }
            if qemu == 0 {
                if let Some(p) = &watch.panic {
                    return Verdict {
                        code: 1,
                        message: Some(format!("the guest kernel panicked: {p}")),
                    };
                }
                return Verdict { code: 0, message: None };
            }
            if qemu > 1 && qemu & 1 == 1 {
                let n = qemu >> 1;
                return with_failures(n, format!("the guest reported status {n} (isa-debug-exit)"));
            }
            Verdict {
                code: if qemu == 0 { 1 } else { qemu },
                message: Some(format!("qemu exited with status {qemu}; see its messages above")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(lines: &[&str]) -> ConsoleWatch {
        let mut w = ConsoleWatch::default();
        for l in lines {
            w.feed(l);
        }
        w
    }

    #[test]
    fn parses_every_protocol_event() {
        let cases: Vec<(&str, Event)> = vec![
            ("[    0.412] baleen: init started", Event::InitStarted),
            ("[    0.500] baleen: phase mounts done", Event::Phase("mounts done".into())),
            (
                "[    0.600] baleen: onboot 000-sysctl started pid 42",
                Event::OnbootStarted { dir: "000-sysctl".into(), pid: 42 },
            ),
            (
                "[    0.700] baleen: onboot 001-broken exited 2",
                Event::OnbootExited { dir: "001-broken".into(), code: 2, message: None },
            ),
            (
                "[    0.700] baleen: onboot 001-format exited 1: mkfs: no disk | exit 1",
                Event::OnbootExited {
                    dir: "001-format".into(),
                    code: 1,
                    message: Some("mkfs: no disk | exit 1".into()),
                },
            ),
            (
                "[    0.701] baleen: onboot 001-broken failed: no such file | exit 2",
                Event::OnbootFailed {
                    dir: "001-broken".into(),
                    message: "no such file | exit 2".into(),
                },
            ),
            (
                "[    0.800] baleen: service getty started pid 77",
                Event::ServiceStarted { name: "getty".into(), pid: 77 },
            ),
            (
                "[    9.000] baleen: service getty exited 0",
                Event::ServiceExited { name: "getty".into(), code: 0 },
            ),
            (
                "[    9.100] baleen: onshutdown 000-bye exited 0",
                Event::OnshutdownExited { dir: "000-bye".into(), code: 0 },
            ),
            ("[    9.200] baleen: shutdown begin", Event::ShutdownBegin),
            ("[    9.300] baleen: poweroff status 1", Event::PoweroffStatus(1)),
            ("[    9.300] baleen: frobnicated", Event::Unknown("frobnicated".into())),
        ];
        for (line, want) in cases {
            let (_, got) = parse_line(line).unwrap_or_else(|| panic!("{line:?} did not parse"));
            assert_eq!(got, want, "{line:?}");
        }
    }

    #[test]
    fn tolerates_carriage_returns_and_glued_kernel_text() {
        let (t, e) =
            parse_line("[    1.000] random: crng init done[   12.345] baleen: init started\r")
                .unwrap();
        assert_eq!(e, Event::InitStarted);
        assert!((t - 12.345).abs() < 1e-9);
        assert_eq!(parse_line("[    1.000] virtio_net: baleen: nope"), None);
        assert_eq!(parse_line("baleen: init started"), None);
        assert_eq!(parse_line("[  x.y] baleen: init started"), None);
    }

    /// A real transcript (a webserver example boot): the kernel's message arrived between init's
    /// text and its `\r\n`, which then came alone.
    #[test]
    fn a_kernel_message_before_inits_line_end_is_not_part_of_the_event() {
        let w = watch(&[
            "[    7.718] baleen: service httpd exited 127\r\n",
            "[    7.741] baleen: warning starting /containers/services/httpd: bind-mounting onto /containers/services/httpd/rootfs/www: No such file or directory (os error 2)[    7.678532] IPv6: ADDRCONF(NETDEV_CHANGE): eth0: link becomes ready\r\n",
            "\r\n",
            "[    7.771] baleen: phase services started\r\n",
        ]);
        let got: Vec<&Event> = w.events.iter().map(|(_, e)| e).collect();
        assert_eq!(
            got,
            [
                &Event::ServiceExited { name: "httpd".into(), code: 127 },
                &Event::Unknown("warning starting /containers/services/httpd: bind-mounting onto /containers/services/httpd/rootfs/www: No such file or directory (os error 2)".into()),
                &Event::Phase("services started".into()),
            ]
        );
        // The same with the event the timeline needs: before, `started[` was not `started`.
        let w = watch(&[
            "[    3.358] baleen: init started[    3.353806] tsc: Refined TSC clocksource calibration: 2445.405 MHz\r\n",
            "\r\n",
            "[    3.420] baleen: phase services started[    3.364178] clocksource: Switched to clocksource tsc\r\n",
        ]);
        assert!(w.services_started());
        assert!((w.timeline().unwrap().kernel_to_init - 3.358).abs() < 1e-9);
    }

    /// The kernel lines that print around init's start under TCG (from a bench boot's console),
    /// cutting init's `init started` and `phase services started` in the middle, as the UART
    /// interleaves them: init's line resumes after the kernel's `\r\n`. Before, `--measure`
    /// printed nothing for such a boot. Every event is read, in order, at init's times.
    #[test]
    fn a_line_cut_in_the_middle_by_kernel_messages_is_joined_again() {
        let transcript = "[    3.308101] Run /init as init process\r\n\
[    3.41[    3.353806] tsc: Refined TSC clocksource calibration: 2445.405 MHz\r\n\
[    3.356797] clocksource: tsc: mask: 0xffffffffffffffff max_cycles: 0x233fc3b4c22, max_idle_ns: 440795229441 ns\r\n\
5] baleen: init started\r\n\
[    3.547] baleen: phase mounts done\r\n\
[    3.912] baleen: service shell started pid 82\r\n\
[    3.927] baleen: phase services sta[    3.364178] clocksource: Switched to clocksource tsc\r\n\
rted\r\n\
[    4.940] baleen: shutdown begin\r\n\
[    5.101] baleen: poweroff status 0[    5.172473] reboot: Power down\r\n";
        let w = watch(&transcript.split_inclusive('\n').collect::<Vec<_>>());
        let got: Vec<(f64, Event)> = w.events.clone();
        assert_eq!(
            got,
            vec![
                (3.415, Event::InitStarted),
                (3.547, Event::Phase("mounts done".into())),
                (3.912, Event::ServiceStarted { name: "shell".into(), pid: 82 }),
                (3.927, Event::Phase("services started".into())),
                (4.940, Event::ShutdownBegin),
                // The last line's rest never came (the guest powered off): its head stands.
                (5.101, Event::PoweroffStatus(0)),
            ]
        );
        assert_eq!(w.poweroff_status, Some(0));
        let tl = w.timeline().unwrap();
        assert!((tl.kernel_to_init - 3.415).abs() < 1e-9);
        assert_eq!(tl.steps[1].0, "service shell started");
    }

    #[test]
    fn a_provisional_reading_is_replaced_with_its_side_effects() {
        // `poweroff status 1` was the head of `poweroff status 12`.
        let w = watch(&[
            "[    9.000] baleen: poweroff status 1[    9.000100] reboot: Power down\r\n",
            "2\r\n",
        ]);
        assert_eq!(w.events, vec![(9.0, Event::PoweroffStatus(12))]);
        assert_eq!(w.poweroff_status, Some(12));
        // Other text cut by the kernel (a shell prompt) does not make up events.
        let w = watch(&[
            "linuxkit-4e48d863f53d:~# \u{1b}[6n[    8.739581] IPv6: ADDRCONF(NETDEV_CHANGE): eth0: link becomes ready\r\n",
            "\r\n",
        ]);
        assert!(w.events.is_empty());
        // A whole protocol line after a cut head is read on its own, not glued to the head.
        let w = watch(&[
            "[    9.000] baleen: shutdown begin[    9.000100] reboot: Power down\r\n",
            "[    9.100] baleen: poweroff status 3\r\n",
        ]);
        assert_eq!(w.events, vec![(9.0, Event::ShutdownBegin), (9.1, Event::PoweroffStatus(3))]);
        assert_eq!(kernel_stamp_after("[    3.415] baleen: x", 0), None);
        assert_eq!(kernel_stamp_after("ab[ 12.000001] k", 0), Some(2));
        assert_eq!(kernel_stamp_at("[12.000001]", 0), Some(11));
        assert_eq!(kernel_stamp_at("[12.0000011]", 0), None);
    }

    #[test]
    fn clean_poweroff_is_zero() {
        let w = watch(&["[ 1.0] baleen: poweroff status 0"]);
        assert_eq!(verdict(QemuEnd::Exited(0), &w), Verdict { code: 0, message: None });
        // A guest that is not baleen's (busybox poweroff) also ends cleanly.
        assert_eq!(verdict(QemuEnd::Exited(0), &ConsoleWatch::default()).code, 0);
    }

    #[test]
    fn a_failed_onboot_container_is_named() {
        let w = watch(&[
            "[ 0.7] baleen: onboot 001-broken exited 3: sh: nope: not found",
            "[ 0.9] baleen: poweroff status 1",
        ]);
        let v = verdict(QemuEnd::Exited(3), &w);
        assert_eq!(v.code, 1);
        let msg = v.message.unwrap();
        assert!(msg.contains("001-broken") && msg.contains("nope: not found"), "{msg}");
        // The two lines an older init printed say the same.
        let old = watch(&[
            "[ 0.7] baleen: onboot 001-broken exited 3",
            "[ 0.7] baleen: onboot 001-broken failed: sh: nope: not found",
            "[ 0.9] baleen: poweroff status 1",
        ]);
        assert_eq!(verdict(QemuEnd::Exited(3), &old).message, Some(msg));
    }

    #[test]
    fn debug_exit_status_is_decoded_when_the_console_is_silent() {
        let v = verdict(QemuEnd::Exited((5 << 1) | 1), &ConsoleWatch::default());
        assert_eq!(v.code, 5);
        // The console's status line wins over qemu's code.
        let w = watch(&["[ 0.9] baleen: poweroff status 2"]);
        assert_eq!(verdict(QemuEnd::Exited((5 << 1) | 1), &w).code, 2);
        // qemu's own failure (status 1) is not a guest status.
        let v = verdict(QemuEnd::Exited(1), &ConsoleWatch::default());
        assert_eq!(v.code, 1);
        assert!(v.message.unwrap().contains("qemu exited with status 1"));
    }

    #[test]
    fn panics_timeouts_and_interrupts_are_not_success() {
        let w = watch(&["[ 3.0] Kernel panic - not syncing: Attempted to kill init!"]);
        let v = verdict(QemuEnd::Exited(0), &w);
        assert_eq!(v.code, 1);
        assert!(v.message.unwrap().contains("Attempted to kill init"));
        let v = verdict(QemuEnd::TimedOut { secs: 5 }, &ConsoleWatch::default());
        assert_eq!(v.code, EXIT_TIMEOUT);
        assert!(v.message.unwrap().contains("5 s"));
        assert_eq!(verdict(QemuEnd::Interrupted, &ConsoleWatch::default()).code, 130);
        let v = verdict(QemuEnd::KernelPanicked, &w);
        assert_eq!(v.code, 1);
        assert!(v.message.unwrap().contains("Attempted to kill init"));
        assert_eq!(verdict(QemuEnd::Signalled(9), &ConsoleWatch::default()).code, 137);
    }

    /// SeaBIOS's and OVMF's "nothing to boot" lines are noticed, and the stop they lead to
    /// is a failure that says so, not a timeout.
    #[test]
    fn the_firmware_finding_nothing_to_boot_is_a_failure() {
        for line in [
            "No bootable device.  Retrying in 60 seconds.\r",
            "BdsDxe: No bootable option or device was found.",
        ] {
            let w = watch(&[line]);
            assert!(w.no_boot_device.is_some(), "{line}");
            let v = verdict(QemuEnd::NoBootDevice, &w);
            assert_eq!(v.code, 1);
            assert!(v.message.unwrap().contains("found nothing to boot"), "{line}");
        }
        assert!(watch(&["[ 1.0] baleen: init started"]).no_boot_device.is_none());
    }

    /// Under Secure Boot, OVMF refusing the disk's UKI ends the run at once with a failure
    /// that says why; other load failures (an empty DVD drive) do not.
    #[test]
    fn secure_boot_refusing_the_boot_file_is_a_failure_that_says_so() {
        let refused = "BdsDxe: failed to load Boot0002 \"UEFI QEMU HARDDISK QM00001 \" from \
                       PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x0,0xFFFF,0x0): Access Denied\r";
        let w = watch(&["\x1b[2J\x1b[01;01H", refused]);
        let line = w.no_boot_device.as_deref().expect("the refusal is noticed");
        assert!(line.starts_with("BdsDxe: failed to load Boot0002") && !line.ends_with('\r'));
        let v = verdict(QemuEnd::NoBootDevice, &w);
        assert_eq!(v.code, 1);
        let msg = v.message.unwrap();
        assert!(msg.contains("refused") && msg.contains("Access Denied"), "{msg}");
        let not_found = "BdsDxe: failed to load Boot0001 \"UEFI QEMU DVD-ROM QM00005 \" from \
                         PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x2,0xFFFF,0x0): Not Found";
        assert!(watch(&[not_found]).no_boot_device.is_none());
    }

    #[test]
    fn timeline_is_relative_to_init() {
        let w = watch(&[
            "[    0.400] baleen: init started",
            "[    0.450] baleen: phase mounts done",
            "[    0.700] baleen: service getty started pid 9",
            "[    0.750] baleen: phase services started",
        ]);
        assert!(w.services_started());
        let tl = w.timeline().unwrap();
        assert!((tl.kernel_to_init - 0.4).abs() < 1e-9);
        assert_eq!(tl.steps.len(), 3);
        assert_eq!(tl.steps[1].0, "service getty started");
        assert!((tl.steps[1].1 - 0.3).abs() < 1e-9);
        assert!((tl.total - 0.75).abs() < 1e-9);
        let text = tl.render();
        assert!(text.contains("kernel -> init") && text.contains("init -> service getty started"));
        assert!(ConsoleWatch::default().timeline().is_none());
    }
}
