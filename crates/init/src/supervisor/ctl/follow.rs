//! `baleen-ctl` answers and `logs -f` clients, served at their own pace without ever holding
//! PID 1 (before, a client that did not read blocked init's loop on a `logs` answer larger than
//! the socket buffer, or for 200 ms per line it followed).
//!
//! A client's socket is non-blocking: a line goes into the follower's own queue and as much
//! of the queue as the socket takes is written at once; the rest waits for the socket to be
//! writable (the poll loop watches it, [`Follower::wants_write`]). A queue is bounded by
//! [`QUEUE_BYTES`]: lines that would not fit are skipped and counted, and one marker line
//! (`baleen-ctl: N lines skipped: the reader was too slow`) takes their place once there is
//! room again. A follower whose client has gone (an error, a hang-up) is dropped.
//!
//! Non-goal: back-pressure on the container (its output is never held for a reader).

use std::io::{ErrorKind, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;

/// What one follower may have queued: past it, new lines are skipped for that follower.
pub const QUEUE_BYTES: usize = 64 * 1024;

/// How many followers init serves at once; one more is refused.
pub const MAX_FOLLOWERS: usize = 16;

/// One client: the container it follows (`None` once there is nothing more to follow: it is
/// closed when its queue is written), its socket and what it has not read yet.
#[derive(Debug)]
pub struct Follower {
    pub follows: Option<String>,
    stream: UnixStream,
    queue: Vec<u8>,
    skipped: u64,
}

impl Follower {
    /// A client on `stream` following `follows`, with `backlog` (the answer, the lines so far)
    /// written as far as the socket takes and the rest queued. `None` when the socket cannot be
    /// made non-blocking or is gone.
    pub fn new<'a>(
        follows: Option<String>,
        stream: UnixStream,
        backlog: impl Iterator<Item = &'a str>,
    ) -> Option<Follower> {
        stream.set_nonblocking(true).ok()?;
        let mut f = Follower { follows, stream, queue: Vec::new(), skipped: 0 };
        for line in backlog {
            f.push(line);
            // Written as it goes: a client that reads gets all of a long answer.
            if !f.flush() {
                return None;
            }
        }
        if f.follows.is_none() {
            f.end();
        }
        f.flush().then_some(f)
    }

    /// Nothing more to follow: the queue is written, with a marker for the lines skipped at
    /// its end, then the client is closed.
    pub fn end(&mut self) {
        self.follows = None;
        if self.skipped > 0 {
            let marker = self.marker();
            self.queue.extend_from_slice(marker.as_bytes());
            self.skipped = 0;
        }
    }

    fn marker(&self) -> String {
        format!("baleen-ctl: {} lines skipped: the reader was too slow\n", self.skipped)
    }

    /// Whether the client is still to be served: following, or with an answer queued.
    pub fn live(&self) -> bool {
        self.follows.is_some() || self.wants_write()
    }

    /// Queues `line`, or skips it (counted) when the queue is full.
    pub fn push(&mut self, line: &str) {
        let marker = if self.skipped > 0 { self.marker() } else { String::new() };
        if self.queue.len() + marker.len() + line.len() + 1 > QUEUE_BYTES {
            self.skipped += 1;
            return;
        }
        self.skipped = 0;
        self.queue.extend_from_slice(marker.as_bytes());
        self.queue.extend_from_slice(line.as_bytes());
        self.queue.push(b'\n');
    }

    /// Writes what the socket takes now. False when the client is gone.
    pub fn flush(&mut self) -> bool {
        while !self.queue.is_empty() {
            match self.stream.write(&self.queue) {
                Ok(0) => return false,
                Ok(n) => {
                    self.queue.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Whether lines wait for the socket to be writable.
    pub fn wants_write(&self) -> bool {
        !self.queue.is_empty()
    }

    pub fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}

/// Queues `line` for every follower of `name` and writes what each socket takes; a follower
/// whose client is gone is dropped. Never blocks.
pub fn send(followers: &mut Vec<Follower>, name: &str, line: &str) {
    followers.retain_mut(|f| {
        if f.follows.as_deref() != Some(name) {
            return true;
        }
        f.push(line);
        f.flush()
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// The bug: a follower that read slowly held PID 1 for up to 200 ms per line and was then
    /// dropped, silently, for good. Now nothing blocks, the queue stays bounded, the follower
    /// is kept, and what it missed is said in one marker line.
    #[test]
    fn a_follower_that_does_not_read_never_blocks_and_skips_with_a_marker() {
        let (mut client, server) = UnixStream::pair().unwrap();
        let mut v =
            vec![Follower::new(Some("svc".into()), server, ["backlog"].into_iter()).unwrap()];
        let pad = "x".repeat(100);
        // About 1 MB: far more than the socket buffer and the queue hold together.
        for i in 0..10_000 {
            send(&mut v, "svc", &format!("{i} {pad}"));
            send(&mut v, "other", "not for this follower");
        }
        assert_eq!(v.len(), 1, "a slow follower is kept");
        assert!(v[0].queue.len() <= QUEUE_BYTES, "queue {} bytes", v[0].queue.len());
        assert!(v[0].skipped > 0, "lines past the bound are skipped");

        let reader = std::thread::spawn(move || {
            let mut got = String::new();
            client.read_to_string(&mut got).unwrap();
            got
        });
        // The client reads again: the queue empties, and the next line comes after a marker.
        let drain = |f: &mut Follower| {
            while f.wants_write() {
                assert!(f.flush(), "the client is still there");
                std::thread::yield_now();
            }
        };
        drain(&mut v[0]);
        send(&mut v, "svc", "last");
        let mut f = v.pop().unwrap();
        // The container exits: what is queued is still written, then the client is closed.
        f.end();
        drain(&mut f);
        assert!(!f.live());
        drop(f);
        let got = reader.join().unwrap();
        assert!(got.starts_with("backlog\n0 x"), "{}", &got[..40]);
        assert!(!got.contains("not for this follower"));
        let markers: Vec<&str> = got.lines().filter(|l| l.starts_with("baleen-ctl:")).collect();
        assert_eq!(markers.len(), 1, "{markers:?}");
        assert!(markers[0].ends_with("lines skipped: the reader was too slow"), "{markers:?}");
        assert!(got.ends_with("\nlast\n"), "the line after the gap arrives");
        // Every line arrives whole: the marker replaces lines, never parts of one.
        assert!(got.lines().all(|l| l == "backlog"
            || l == "last"
            || l.starts_with("baleen-ctl:")
            || l.ends_with(&pad)));
    }

    /// The bug: a `logs NAME` answer larger than the socket buffer, to a client that did not
    /// read, blocked PID 1 for good. Now what the socket does not take is queued.
    #[test]
    fn a_long_answer_to_a_client_that_does_not_read_is_queued_not_blocking() {
        let (mut client, server) = UnixStream::pair().unwrap();
        let line = "y".repeat(4000);
        let answer: Vec<&str> = std::iter::repeat_n(line.as_str(), 200).collect();
        let mut f = Follower::new(None, server, answer.iter().copied()).unwrap();
        assert!(f.live(), "the rest waits for the socket");
        let reader = std::thread::spawn(move || {
            let mut got = String::new();
            client.read_to_string(&mut got).unwrap();
            got
        });
        while f.live() {
            assert!(f.flush());
            std::thread::yield_now();
        }
        drop(f);
        let got = reader.join().unwrap();
        let (whole, rest): (Vec<&str>, Vec<&str>) = got.lines().partition(|l| *l == line);
        // What did not fit is said at the end, in one line that counts it.
        let [marker] = rest.as_slice() else { panic!("{rest:?}") };
        let n: usize = marker
            .strip_prefix("baleen-ctl: ")
            .and_then(|m| m.strip_suffix(" lines skipped: the reader was too slow"))
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert_eq!(whole.len() + n, 200);
        assert!(got.ends_with("too slow\n"));
    }

    #[test]
    fn a_follower_whose_client_has_gone_is_dropped() {
        let (client, server) = UnixStream::pair().unwrap();
        let mut v = vec![Follower::new(Some("svc".into()), server, std::iter::empty()).unwrap()];
        drop(client);
        send(&mut v, "svc", "line");
        assert!(v.is_empty());
    }
}
