//! Per-container logs: every line a container writes goes to `/var/log/<name>.log` (capped at
//! [`MAX_FILE`] bytes, then rotated once to `<name>.log.1`) and into an in-memory ring of the
//! last [`RING_LINES`] lines that `baleen-ctl logs` and failure reports read.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Log file size at which it is rotated.
pub const MAX_FILE: u64 = 1 << 20;
/// Lines kept in memory per container.
pub const RING_LINES: usize = 200;

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One container's log.
#[derive(Debug)]
pub struct Log {
    path: Option<PathBuf>,
    file: Option<std::fs::File>,
    written: u64,
    ring: VecDeque<String>,
    /// The last [`TAIL_LINES`] of each stream, apart from the ring: a chatty stdout cannot push
    /// the stderr lines of a failure report out.
    tails: [VecDeque<String>; 2],
    partial: [Vec<u8>; 2],
}

/// Lines kept per stream for [`Log::tail`].
pub const TAIL_LINES: usize = 3;

impl Log {
    /// A log written to `dir/<name>.log` (`dir` = None keeps it in memory only).
    pub fn new(dir: Option<&Path>, name: &str) -> Log {
        let path = dir.map(|d| d.join(format!("{name}.log")));
        Log {
            path,
            file: None,
            written: 0,
            ring: VecDeque::new(),
            tails: Default::default(),
            partial: [vec![], vec![]],
        }
    }

    /// Feeds raw bytes from a stream; returns the complete lines they finished.
    pub fn feed(&mut self, stream: Stream, bytes: &[u8]) -> Vec<String> {
        let buf = &mut self.partial[stream as usize];
        buf.extend_from_slice(bytes);
        let mut lines = Vec::new();
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            lines.push(String::from_utf8_lossy(&line[..i]).into_owned());
        }
        // A line longer than 4 KiB without a newline is flushed as is.
        if buf.len() > 4096 {
            lines.push(String::from_utf8_lossy(buf).into_owned());
            buf.clear();
        }
        for l in &lines {
            self.push(stream, l.clone());
        }
        lines
    }

    /// Flushes unterminated output (at exit).
    pub fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for s in [Stream::Stdout, Stream::Stderr] {
            let buf = std::mem::take(&mut self.partial[s as usize]);
            if !buf.is_empty() {
                let l = String::from_utf8_lossy(&buf).into_owned();
                self.push(s, l.clone());
                out.push(l);
            }
        }
        out
    }

    fn push(&mut self, stream: Stream, line: String) {
        self.write_file(&line);
        if self.ring.len() == RING_LINES {
            self.ring.pop_front();
        }
        let tail = &mut self.tails[stream as usize];
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.clone());
        self.ring.push_back(line);
    }

    fn write_file(&mut self, line: &str) {
        let Some(path) = &self.path else { return };
        if self.written + line.len() as u64 + 1 > MAX_FILE {
            self.file = None;
            let mut old = path.clone().into_os_string();
            old.push(".1");
            let _ = std::fs::rename(path, old);
            self.written = 0;
        }
        if self.file.is_none() {
            self.file = std::fs::OpenOptions::new().create(true).append(true).open(path).ok();
        }
        if let Some(f) = &mut self.file {
            if f.write_all(line.as_bytes()).and_then(|_| f.write_all(b"\n")).is_ok() {
                self.written += line.len() as u64 + 1;
            }
        }
    }

    /// The last [`TAIL_LINES`] lines of one stream (for failure reports), whatever the other
    /// stream wrote since.
    pub fn tail(&self, stream: Stream) -> Vec<&str> {
        self.tails[stream as usize].iter().map(String::as_str).collect()
    }

    /// Every line in the ring, oldest first.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.ring.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_across_reads_and_keeps_stderr_tail() {
        let mut log = Log::new(None, "x");
        assert!(log.feed(Stream::Stdout, b"hel").is_empty());
        assert_eq!(log.feed(Stream::Stdout, b"lo\nwor"), ["hello"]);
        log.feed(Stream::Stderr, b"e0\ne1\ne2\ne3\n");
        assert_eq!(log.finish(), ["wor"]);
        assert_eq!(log.tail(Stream::Stderr), ["e1", "e2", "e3"]);
        assert_eq!(log.lines().count(), 6);
    }

    #[test]
    fn a_chatty_stdout_keeps_the_stderr_tail() {
        let mut log = Log::new(None, "x");
        log.feed(Stream::Stderr, b"mkfs: no disk found\n");
        for _ in 0..2 * RING_LINES {
            log.feed(Stream::Stdout, b"progress\n");
        }
        assert_eq!(log.tail(Stream::Stderr), ["mkfs: no disk found"]);
        assert_eq!(log.lines().count(), RING_LINES, "the ring itself stays bounded");
    }

    #[test]
    fn rotates_at_the_cap() {
        let dir = std::env::temp_dir().join(format!("baleen-init-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut log = Log::new(Some(&dir), "svc");
        let line = vec![b'a'; 1023];
        for _ in 0..1100 {
            log.feed(Stream::Stdout, &[&line[..], b"\n"].concat());
        }
        let cur = std::fs::metadata(dir.join("svc.log")).unwrap().len();
        let old = std::fs::metadata(dir.join("svc.log.1")).unwrap().len();
        assert!(cur <= MAX_FILE && old <= MAX_FILE, "{cur} {old}");
        assert_eq!(cur + old, 1100 * 1024);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
