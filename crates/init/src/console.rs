//! Console lines in the init↔run protocol: `[    0.412] baleen: <event> <args…>`, the bracket
//! being CLOCK_BOOTTIME seconds since boot. One `write(2)` per line so lines from init never
//! interleave mid-line with the kernel's.

use std::io::Write;

/// `e` and its causes, outermost first: `a: b: c` (every console line that shows an error).
pub use crate::chain::chain;

/// Seconds since boot (CLOCK_BOOTTIME), 0 where unavailable.
pub fn uptime() -> f64 {
    #[cfg(target_os = "linux")]
    {
        boottime()
    }
    #[cfg(not(target_os = "linux"))]
    {
        0.0
    }
}

#[cfg(target_os = "linux")]
fn boottime() -> f64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Formats one protocol line (with its newline).
pub fn line(at: f64, event: &str) -> String {
    format!("[{at:>9.3}] baleen: {event}\n")
}

/// Formats a line of a container's output echoed to the console (`baleen.debug=1`).
pub fn echo_line(at: f64, name: &str, text: &str) -> String {
    format!("[{at:>9.3}] {name}: {text}\n")
}

/// Writes a protocol event to stdout (init's console).
pub fn event(event: &str) {
    emit(&line(uptime(), event));
}

/// Writes preformatted text to the console in one call.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_match_the_protocol() {
        assert_eq!(super::line(0.4123, "init started"), "[    0.412] baleen: init started\n");
        assert_eq!(
            super::line(12345.6789, "service sshd started pid 231"),
            "[12345.679] baleen: service sshd started pid 231\n"
        );
    }
}
