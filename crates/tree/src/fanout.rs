//! [`Fanout`]: one pass of the tree into several sinks at once (`-f tar,kernel+initrd`), each
//! sink on its own thread. Entry data is read once, in 256 KiB chunks shared by every branch;
//! bounded channels keep memory at a few MiB per branch whatever the file sizes.

use crate::entry::{Entry, EntrySink};
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

const CHUNK: usize = 256 * 1024;
const QUEUE: usize = 16;

enum Msg {
    Entry(Box<Entry>),
    Chunk(Arc<[u8]>),
    /// The source failed mid-entry: the branch's reader reports an error.
    Abort(String),
    Section(String),
    End,
}

/// A sink that copies every entry to all its branches.
#[derive(Debug, Default)]
pub struct Fanout {
    branches: Vec<(SyncSender<Msg>, Arc<AtomicBool>)>,
}

/// The far end of a branch: gives the sink back when the tree is done.
#[derive(Debug)]
pub struct Branch<S> {
    handle: JoinHandle<io::Result<S>>,
}

impl<S> Branch<S> {
    /// Waits for the branch to consume everything ([`Fanout::close`] first) and returns its sink,
    /// or the first error it met.
    pub fn join(self) -> io::Result<S> {
        self.handle.join().map_err(|_| io::Error::other("a fan-out branch panicked"))?
    }
}

struct ChunkReader<'a> {
    rx: &'a Receiver<Msg>,
    remaining: u64,
    cur: Option<Arc<[u8]>>,
    pos: usize,
    aborted: Option<String>,
}

impl ChunkReader<'_> {
    /// Receives (and drops) what the sink did not read of the current entry.
    fn drain(&mut self) {
        if let Some(cur) = self.cur.take() {
            self.remaining = self.remaining.saturating_sub((cur.len() - self.pos) as u64);
            self.pos = 0;
        }
        while self.remaining > 0 && self.aborted.is_none() {
            match self.rx.recv() {
                Ok(Msg::Chunk(c)) => self.remaining = self.remaining.saturating_sub(c.len() as u64),
                Ok(Msg::Abort(why)) => self.aborted = Some(why),
                _ => return,
            }
        }
    }
}

impl Read for ChunkReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(why) = &self.aborted {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, why.clone()));
        }
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        if self.cur.as_ref().is_none_or(|c| self.pos == c.len()) {
            match self.rx.recv() {
                Ok(Msg::Chunk(c)) => {
                    self.cur = Some(c);
                    self.pos = 0;
                }
                Ok(Msg::Abort(why)) => {
                    self.aborted = Some(why.clone());
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, why));
                }
                _ => return Err(io::Error::other("the fan-out source stopped mid-entry")),
            }
        }
        let Some(cur) = &self.cur else { return Ok(0) };
        let n = buf.len().min(cur.len() - self.pos);
        buf[..n].copy_from_slice(&cur[self.pos..self.pos + n]);
        self.pos += n;
        self.remaining -= n as u64;
        if self.pos == cur.len() {
            self.cur = None;
            self.pos = 0;
        }
        Ok(n)
    }
}

fn run_branch<S: EntrySink>(
    mut sink: S,
    rx: Receiver<Msg>,
    failed: Arc<AtomicBool>,
) -> io::Result<S> {
    let mut error: Option<io::Error> = None;
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Entry(e) => {
                let mut r =
                    ChunkReader { rx: &rx, remaining: e.size(), cur: None, pos: 0, aborted: None };
                if error.is_none() {
                    if let Err(err) = sink.add(&e, &mut r) {
                        failed.store(true, Ordering::SeqCst);
                        error =
                            Some(io::Error::new(err.kind(), format!("entry {:?}: {err}", e.path)));
                    }
                }
                r.drain();
            }
            Msg::Section(name) => {
                if error.is_none() {
                    if let Err(err) = sink.section(&name) {
                        failed.store(true, Ordering::SeqCst);
                        error = Some(io::Error::new(err.kind(), format!("section {name}: {err}")));
                    }
                }
            }
            Msg::End => break,
            Msg::Chunk(_) | Msg::Abort(_) => {}
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(sink),
    }
}

impl Fanout {
    pub fn new() -> Self {
        Fanout::default()
    }

    /// Adds a branch running `sink` on its own thread.
    pub fn spawn<S: EntrySink + Send + 'static>(&mut self, sink: S) -> Branch<S> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let failed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&failed);
        let handle = std::thread::spawn(move || run_branch(sink, rx, flag));
        self.branches.push((tx, failed));
        Branch { handle }
    }

    fn send_all(&self, msg: impl Fn() -> Msg) -> io::Result<()> {
        for (tx, _) in &self.branches {
            tx.send(msg()).map_err(|_| io::Error::other("a fan-out branch stopped"))?;
        }
        Ok(())
    }

    /// Tells every branch the tree is complete; then [`Branch::join`] each.
    pub fn close(self) {
        let _ = self.send_all(|| Msg::End);
    }
}

impl EntrySink for Fanout {
    fn add(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        if self.branches.iter().any(|(_, f)| f.load(Ordering::SeqCst)) {
            return Err(io::Error::other(
                "a fan-out branch failed (its error comes when it is joined)",
            ));
        }
        self.send_all(|| Msg::Entry(Box::new(entry.clone())))?;
        let mut left = entry.size();
        while left > 0 {
            let mut buf = vec![0u8; CHUNK.min(left as usize)];
            let mut filled = 0;
            while filled < buf.len() {
                match data.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let why = format!("reading entry {:?}: {e}", entry.path);
                        self.send_all(|| Msg::Abort(why.clone()))?;
                        return Err(e);
                    }
                }
            }
            if filled == 0 {
                let why = format!("entry {:?}: the source ended {left} bytes early", entry.path);
                self.send_all(|| Msg::Abort(why.clone()))?;
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, why));
            }
            buf.truncate(filled);
            let chunk: Arc<[u8]> = buf.into();
            self.send_all(|| Msg::Chunk(Arc::clone(&chunk)))?;
            left -= filled as u64;
        }
        Ok(())
    }
    fn section(&mut self, name: &str) -> io::Result<()> {
        self.send_all(|| Msg::Section(name.to_string()))
    }
}
