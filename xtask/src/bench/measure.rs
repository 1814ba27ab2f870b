//! Timing and peak memory of child processes, medians, and a description of the machine.
//!
//! Every figure comes from a child process waited for with `wait4(2)` on its own pid: the
//! rusage it returns is that child's alone. `getrusage(RUSAGE_CHILDREN)` would report the
//! largest of all children so far, so a small build after a big one would inherit its peak.
//!
//! A child's peak RSS also starts at its parent's: `posix_spawn` shares the parent's memory
//! until `exec`, and the kernel folds that memory's high-water mark into the child's
//! `ru_maxrss`. The bench process holds tens of MiB (it made the images), so with a launcher set
//! ([`use_launcher`]) each child is started by a fresh, small `xtask bench --rusage-child`
//! that waits for it and reports its rusage: the figures then include ~2 MiB of that launcher,
//! not the bench's memory.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static LAUNCHER: OnceLock<PathBuf> = OnceLock::new();

/// Starts every later child through `xtask` (this binary): `xtask bench --rusage-child FILE --
/// PROGRAM ARGS…`.
pub fn use_launcher(xtask: PathBuf) {
    let _ = LAUNCHER.set(xtask);
}

/// The launcher side: runs `PROGRAM ARGS…` with our stdio, writes `<exit code> <peak RSS KiB>`
/// to FILE, and exits with the program's code.
pub fn rusage_child(args: &[String]) -> Result<()> {
    let [file, dashdash, program, rest @ ..] = args else {
        bail!("usage: xtask bench --rusage-child FILE -- PROGRAM [ARGS...]")
    };
    if dashdash != "--" {
        bail!("usage: xtask bench --rusage-child FILE -- PROGRAM [ARGS...]");
    }
    let child =
        Command::new(program).args(rest).spawn().with_context(|| format!("starting {program}"))?;
    let (code, rss) = wait4(child.id())?;
    std::fs::write(file, format!("{code} {rss}\n")).with_context(|| format!("writing {file}"))?;
    std::process::exit(code.min(255));
}

/// One finished child: wall time, its own peak RSS, and what it printed.
#[derive(Debug, Clone)]
pub struct Sample {
    pub wall: Duration,
    pub max_rss_kib: u64,
    /// Read by the tests; the sections send bulky stdout to files instead.
    #[cfg_attr(not(test), allow(dead_code))]
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion, its stdout and stderr going to files in `scratch` (pipes could fill
/// and stall a chatty child while we sit in `wait4`). Fails when it exits non-zero.
pub fn run(cmd: &mut Command, scratch: &Path) -> Result<Sample> {
    run_to(cmd, scratch, None)
}

/// As [`run`], with stdout going to `stdout` when given (then [`Sample::stdout`] is empty).
pub fn run_to(cmd: &mut Command, scratch: &Path, stdout: Option<&Path>) -> Result<Sample> {
    spawn_and_wait(cmd, scratch, stdout, None)
}

/// Spawns `cmd` (through the launcher when set), hands its stdin pipe to `stdin` when given
/// (else stdin is /dev/null), and waits for it with `wait4`.
fn spawn_and_wait(
    cmd: &mut Command,
    scratch: &Path,
    stdout: Option<&Path>,
    stdin: Option<std::sync::mpsc::Sender<std::process::ChildStdin>>,
) -> Result<Sample> {
    std::fs::create_dir_all(scratch)?;
    let err_path = scratch.join("child.stderr");
    let out_path = stdout.map_or_else(|| scratch.join("child.stdout"), Path::to_path_buf);
    let out = std::fs::File::create(&out_path)?;
    let err = std::fs::File::create(&err_path)?;
    let rusage_file = scratch.join("child.rusage");
    let mut launched;
    let cmd = match LAUNCHER.get() {
        None => cmd,
        Some(launcher) => {
            launched = Command::new(launcher);
            launched.args(["bench", "--rusage-child"]).arg(&rusage_file).arg("--");
            launched.arg(cmd.get_program()).args(cmd.get_args());
            if let Some(dir) = cmd.get_current_dir() {
                launched.current_dir(dir);
            }
            for (k, v) in cmd.get_envs() {
                match v {
                    Some(v) => launched.env(k, v),
                    None => launched.env_remove(k),
                };
            }
            &mut launched
        }
    };
    let _ = std::fs::remove_file(&rusage_file);
    let start = Instant::now();
    let mut child = cmd
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    if let (Some(tx), Some(pipe)) = (&stdin, child.stdin.take()) {
        let _ = tx.send(pipe);
    }
    let waited = wait4(child.id());
    drop(stdin); // tells the typist the child is gone
    let (mut status, mut max_rss_kib) = waited?;
    let wall = start.elapsed();
    if LAUNCHER.get().is_some() {
        let text = std::fs::read_to_string(&rusage_file).unwrap_or_default();
        let mut it = text.split_whitespace().map(str::parse::<u64>);
        match (it.next(), it.next()) {
            (Some(Ok(code)), Some(Ok(rss))) => {
                status = i32::try_from(code).unwrap_or(i32::MAX);
                max_rss_kib = rss;
            }
            _ if status == 0 => bail!("the launcher wrote no rusage for {cmd:?}"),
            _ => {} // the launcher failed: its own status and message say why
        }
    }
    let stdout = match stdout {
        Some(_) => String::new(),
        None => std::fs::read_to_string(&out_path).unwrap_or_default(),
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    if status != 0 {
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{cmd:?} failed (wait status {status:#x}):\n{}", tail.join("\n"));
    }
    Ok(Sample { wall, max_rss_kib, stdout, stderr })
}

/// As [`run`], with stdin a pipe: once the child's stdout (a file in `scratch`) shows `cue`,
/// `answer` is written to its stdin, as a person at the console would type it. Used to power
/// off an example whose shell never exits by itself.
pub fn run_answering(cmd: &mut Command, scratch: &Path, cue: &str, answer: &str) -> Result<Sample> {
    let stdout = scratch.join("answering.stdout");
    let (tx, rx) = std::sync::mpsc::channel::<std::process::ChildStdin>();
    let (cue, answer, watched) = (cue.to_owned(), answer.to_owned(), stdout.clone());
    // The typist: waits for the cue in the child's output, then types; stops when the child
    // is gone (the sender side closes).
    let typist = std::thread::spawn(move || {
        let Ok(mut stdin) = rx.recv() else { return };
        loop {
            if std::fs::read(&watched)
                .is_ok_and(|b| String::from_utf8_lossy(&b).contains(cue.as_str()))
            {
                use std::io::Write;
                let _ = stdin.write_all(answer.as_bytes()).and_then(|()| stdin.flush());
                // Keep the pipe open until the child exits: an EOF on the console is not ours
                // to send.
                let _ = rx.recv();
                return;
            }
            match rx.recv_timeout(Duration::from_millis(200)) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        }
    });
    let result = spawn_and_wait(cmd, scratch, Some(&stdout), Some(tx));
    let _ = typist.join();
    result
}

/// Waits for `pid` and returns (its exit code, or 0x100 + signal; its peak RSS in KiB).
#[allow(unsafe_code)]
fn wait4(pid: u32) -> Result<(i32, u64)> {
    let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is a plain C struct of integers and timevals; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are live, exclusively borrowed locals of the right types
        // for the duration of the call; `pid` is our own unreaped child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("wait4 on a benchmark child");
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        0x100 + libc::WTERMSIG(status)
    };
    // Linux reports ru_maxrss in KiB.
    Ok((code, u64::try_from(usage.ru_maxrss).unwrap_or(0)))
}

/// Median, min and max of a series.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Stats {
    pub fn of(values: &[f64]) -> Stats {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => v[n / 2],
            _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        };
        Stats {
            median,
            min: *v.first().unwrap_or(&f64::NAN),
            max: *v.last().unwrap_or(&f64::NAN),
            n,
        }
    }

    /// `1.23 s (1.10–1.40)`, with the unit and precision given.
    pub fn show(&self, unit: &str, precision: usize) -> String {
        if self.n == 1 {
            return format!("{:.*} {unit} (1 run)", precision, self.median);
        }
        format!("{:.p$} {unit} ({:.p$}–{:.p$})", self.median, self.min, self.max, p = precision)
    }
}

/// Seconds of each sample's wall time.
pub fn secs(samples: &[Sample]) -> Vec<f64> {
    samples.iter().map(|s| s.wall.as_secs_f64()).collect()
}

/// Peak RSS of each sample in MiB.
pub fn rss_mib(samples: &[Sample]) -> Vec<f64> {
    samples.iter().map(|s| s.max_rss_kib as f64 / 1024.0).collect()
}

/// `12.3 MiB`, `1.20 GiB`, `512 B`.
pub fn bytes(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let f = n as f64;
    if f >= 1024.0 * MIB {
        format!("{:.2} GiB", f / (1024.0 * MIB))
    } else if f >= MIB {
        format!("{:.1} MiB", f / MIB)
    } else if f >= 1024.0 {
        format!("{:.1} KiB", f / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// The machine, for the heading: cores, RAM, kernel, CPU model.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|v| v.split_once(':'))
        .map_or("unknown CPU".to_string(), |(_, m)| m.trim().to_string());
    format!(
        "{cores} cores, {:.1} GiB RAM, Linux {kernel}, {cpu}",
        ram_kib as f64 / (1024.0 * 1024.0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_series() {
        let s = Stats::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        assert_eq!(Stats::of(&[4.0, 1.0, 2.0, 3.0]).median, 2.5);
    }

    #[test]
    fn wait4_reports_the_childs_own_peak() {
        let tmp = std::env::temp_dir().join(format!("xtask-measure-{}", std::process::id()));
        // A child that touches ~150 MB, then one that touches almost nothing: the second must
        // not inherit the first's peak (what RUSAGE_CHILDREN would report). Both start from a
        // fork of this test process, whose own RSS (tens of MiB after the image-generating
        // tests) is their floor, so the bound is relative to the big one, not absolute.
        let big = run(
            Command::new("sh")
                .args(["-c", "x=$(head -c 150000000 /dev/zero | tr '\\0' a); echo ${#x}"]),
            &tmp,
        )
        .unwrap();
        let small = run(&mut Command::new("true"), &tmp).unwrap();
        std::fs::remove_dir_all(&tmp).ok();
        assert_eq!(big.stdout.trim(), "150000000");
        assert!(big.max_rss_kib > 140 * 1024, "the shell held 150 MB in {} KiB", big.max_rss_kib);
        assert!(
            small.max_rss_kib < big.max_rss_kib / 2,
            "true used {} KiB after a child of {} KiB",
            small.max_rss_kib,
            big.max_rss_kib
        );
        assert!(small.max_rss_kib > 0);
    }

    #[test]
    fn a_failing_child_is_an_error() {
        let tmp = std::env::temp_dir().join(format!("xtask-measure-f-{}", std::process::id()));
        let err = run(Command::new("sh").args(["-c", "echo oops >&2; exit 3"]), &tmp).unwrap_err();
        std::fs::remove_dir_all(&tmp).ok();
        assert!(err.to_string().contains("oops"), "{err}");
    }
}
