//! Why a `baleen-ctl` request failed on the client's side, or why the server refused a
//! client. Each message names this step only; the cause is the source, and the client prints
//! the whole chain once ([`crate::console::chain`]).

use super::auth::CONTAINERS;
use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("connecting to {sock}")]
    Connect { sock: &'static str, source: io::Error },
    #[error("talking to init")]
    Talk(#[source] io::Error),
    #[error("stdout")]
    Stdout(#[source] io::Error),
    /// Init's `error: …` answer, as it said it.
    #[error("{0}")]
    Answer(String),
    #[error("init answered {0:?}")]
    Unexpected(String),
    #[error("reading {who}'s credentials")]
    Credentials { who: String, source: io::Error },
    #[error("baleen-ctl needs uid 0 (this client is uid {uid})")]
    NotRoot { uid: u32 },
    #[error(
        "{sock} is served by pid {pid} uid {uid}, not by init (pid 1, uid 0): refusing to trust it"
    )]
    NotInit { sock: String, pid: i32, uid: u32 },
    #[error("init named the bundle {dir:?}, not a directory under {CONTAINERS}/")]
    BundleDir { dir: String },
    #[error("opening process {pid}")]
    Pidfd { pid: i32, source: io::Error },
    #[error("it restarted meanwhile (pid {pid}, now {now}); try again")]
    Restarted { pid: i32, now: i32 },
    /// Every `cgroup.procs` tried, each with its own error (several causes, so listed here).
    #[error("joining its cgroup ({})", .tried.join("; "))]
    Cgroup { tried: Vec<String> },
    #[error("PR_SET_DUMPABLE")]
    Dumpable(#[source] io::Error),
    #[error("preparing CMD's terminal")]
    Terminal(#[source] io::Error),
    #[error("loading the container's bundle")]
    Bundle(#[source] crate::container::ContainerError),
    #[error("reading {path}")]
    Namespace { path: PathBuf, source: io::Error },
    #[error("joining its namespaces{}", if *.old_kernel { " (needs Linux 5.8)" } else { "" })]
    Setns { old_kernel: bool, source: io::Error },
    #[error("running {cmd}")]
    Run { cmd: String, source: io::Error },
}
