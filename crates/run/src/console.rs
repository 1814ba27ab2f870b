//! Reading the serial console: baleen-init's protocol lines, the boot timeline, and what the
//! console says about how the VM ended.
//!
//! init prints one event per line, `[    0.412] baleen: <event> <args…>` (the bracket is
//! CLOCK_BOOTTIME seconds). Lines may arrive with `\r\n`, and kernel messages may be glued in
//! front of a line, so the parser looks for `] baleen: ` anywhere and reads the bracket before it.

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
    OnbootExited {
        dir: String,
        code: i32,
    },
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
    let words: Vec<&str> = rest.split(' ').collect();
    let num = |s: &str| s.parse::<i32>().ok();
    let pid = |s: &str| s.parse::<u32>().ok();
    let event = match words.as_slice() {
        ["init", "started", ..] => Event::InitStarted,
        ["phase", ..] => Event::Phase(words[1..].join(" ")),
        ["onboot", dir, "started", "pid", p] => {
            Event::OnbootStarted { dir: (*dir).into(), pid: pid(p)? }
        }
        ["onboot", dir, "exited", c] => Event::OnbootExited { dir: (*dir).into(), code: num(c)? },
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
}

impl ConsoleWatch {
    pub fn feed(&mut self, line: &str) {
        if let Some(pos) = line.find("Kernel panic - not syncing") {
            if self.panic.is_none() {
                self.panic = Some(line[pos..].trim_end().to_owned());
            }
        }
        let Some((t, event)) = parse_line(line) else { return };
        match &event {
            Event::PoweroffStatus(n) => self.poweroff_status = Some(*n),
            Event::OnbootExited { dir, code }
                if *code != 0 && !self.failed_onboot.iter().any(|(d, _)| d == dir) =>
            {
                self.failed_onboot.push((dir.clone(), format!("exited {code}")));
            }
            Event::OnbootFailed { dir, message } => {
                match self.failed_onboot.iter_mut().find(|(d, _)| d == dir) {
                    Some(entry) => entry.1 = message.clone(),
                    None => self.failed_onboot.push((dir.clone(), message.clone())),
                }
            }
            _ => {}
        }
        self.events.push((t, event));
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
                Event::OnbootExited { dir, code } => format!("onboot {dir} exited {code}"),
                Event::ServiceStarted { name, .. } => format!("service {name} started"),
                _ => continue,
            };
            tl.steps.push((label, t - init));
            tl.total = tl.total.max(*t);
        }
        Some(tl)
    }
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
    /// Stopped because the user pressed Ctrl-C (or baleen got SIGTERM).
    Interrupted,
    /// Stopped by baleen after the console showed a kernel panic (a kernel without `panic=N`
    /// would otherwise sit there until the timeout).
    KernelPanicked,
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
                Event::OnbootExited { dir: "001-broken".into(), code: 2 },
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
            "[ 0.7] baleen: onboot 001-broken exited 3",
            "[ 0.7] baleen: onboot 001-broken failed: sh: nope: not found",
            "[ 0.9] baleen: poweroff status 1",
        ]);
        let v = verdict(QemuEnd::Exited(3), &w);
        assert_eq!(v.code, 1);
        let msg = v.message.unwrap();
        assert!(msg.contains("001-broken") && msg.contains("nope: not found"), "{msg}");
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
