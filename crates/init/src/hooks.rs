//! OCI lifecycle hooks (`hooks` in config.json), run as the runtime spec says: each hook is a
//! program run in init's namespaces with the container's state JSON on its stdin, its `args`
//! (`args[0]` as argv[0]), only its `env`, and its `timeout` in seconds.
//!
//! When they run: `prestart` and `createRuntime` after the container's namespaces, cgroup and
//! interfaces exist, before its setup and program; `createContainer` by the container's
//! process, in its namespaces, after its mounts and before pivot_root (paths as init sees
//! them); `startContainer` by the container's process right before its program, inside the
//! container (its paths, ids, capabilities and seccomp filter) — a failure of any of these
//! aborts the start; `poststart` once the program runs; `poststop` after it exited and its
//! mounts are gone (a failure of these two is a warning, and the remaining hooks still run).
//! Every hook but `startContainer` is run in init's namespaces.
//!
//! Key items: [`Hook`], [`State`], the [`Runner`] seam ([`Exec`] runs processes; tests record),
//! [`run_all`] and [`run_all_warn`].
//!
//! LinuxKit's YAML has no hooks; they come from hand-written or converted bundles. Non-goals:
//! `process`-less (`runc create` only) lifecycles: a container is created and started at once.

use serde::Deserialize;
use std::time::Duration;

/// `config.json` `hooks`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Hooks {
    pub prestart: Vec<Hook>,
    pub create_runtime: Vec<Hook>,
    pub create_container: Vec<Hook>,
    pub start_container: Vec<Hook>,
    pub poststart: Vec<Hook>,
    pub poststop: Vec<Hook>,
}

/// One hook.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Hook {
    pub path: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// Seconds; must be positive when given.
    pub timeout: Option<i64>,
}

/// A hook that failed, or hooks a bundle may not carry.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{phase} hook {path}")]
    Failed { phase: &'static str, path: String, source: RunError },
    #[error("{phase} hook {path}: timeout {timeout} must be positive")]
    Timeout { phase: &'static str, path: String, timeout: i64 },
}

/// Why one run of a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("starting")]
    Start(#[source] std::io::Error),
    #[error("exited with {0}")]
    Exit(std::process::ExitStatus),
    #[error("timed out after {0} s, killed")]
    TimedOut(u64),
    #[error("waiting")]
    Wait(#[source] std::io::Error),
}

/// How long a hook without a `timeout` may run. The spec sets no limit, but a hook that never
/// returns would stop PID 1 for good.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The container state a hook reads on stdin (runtime spec "State").
#[derive(Debug, Clone)]
pub struct State<'a> {
    pub id: &'a str,
    /// `creating`, `created`, `running` or `stopped`.
    pub status: &'static str,
    pub pid: Option<i32>,
    pub bundle: &'a str,
}

impl State<'_> {
    /// The JSON, keys in the spec's order; `pid` only while there is a process.
    pub fn json(&self) -> Vec<u8> {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let pid = self.pid.map(|p| format!(",\"pid\":{p}")).unwrap_or_default();
        format!(
            "{{\"ociVersion\":\"1.2.1\",\"id\":{},\"status\":\"{}\"{pid},\"bundle\":{},\"annotations\":{{}}}}",
            q(self.id),
            self.status,
            q(self.bundle)
        )
        .into_bytes()
    }
}

/// Runs one hook with `stdin` for at most `timeout`; `Err` says why it failed.
pub trait Runner {
    fn run(&mut self, hook: &Hook, stdin: &[u8], timeout: Duration) -> Result<(), RunError>;
}

/// Refuses a non-positive `timeout` (the spec requires one greater than zero).
pub fn check(h: &Hooks) -> Result<(), HookError> {
    for (phase, list) in [
        ("prestart", &h.prestart),
        ("createRuntime", &h.create_runtime),
        ("createContainer", &h.create_container),
        ("startContainer", &h.start_container),
        ("poststart", &h.poststart),
        ("poststop", &h.poststop),
    ] {
        for hook in list {
            if let Some(t) = hook.timeout.filter(|t| *t <= 0) {
                return Err(HookError::Timeout { phase, path: hook.path.clone(), timeout: t });
            }
        }
    }
    Ok(())
}

fn timeout_of(h: &Hook) -> Duration {
    h.timeout.filter(|t| *t > 0).map_or(DEFAULT_TIMEOUT, |t| Duration::from_secs(t as u64))
}

/// Runs `hooks` in order; the first failure stops them and is returned.
pub fn run_all(
    runner: &mut dyn Runner,
    phase: &'static str,
    hooks: &[Hook],
    state: &State,
) -> Result<(), HookError> {
    run_stdin(runner, phase, hooks, &state.json())
}

/// [`run_all`] with the state already rendered ([`State::json`]).
pub fn run_stdin(
    runner: &mut dyn Runner,
    phase: &'static str,
    hooks: &[Hook],
    stdin: &[u8],
) -> Result<(), HookError> {
    for h in hooks {
        runner.run(h, stdin, timeout_of(h)).map_err(|source| HookError::Failed {
            phase,
            path: h.path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Runs every hook of `hooks`, failures or not; returns the failures (to be printed as
/// warnings).
pub fn run_all_warn(
    runner: &mut dyn Runner,
    phase: &'static str,
    hooks: &[Hook],
    state: &State,
) -> Vec<HookError> {
    let stdin = state.json();
    hooks
        .iter()
        .filter_map(|h| {
            runner.run(h, &stdin, timeout_of(h)).err().map(|source| HookError::Failed {
                phase,
                path: h.path.clone(),
                source,
            })
        })
        .collect()
}

/// Runs hooks as processes: stdout to /dev/null, stderr to init's (the console).
#[derive(Debug, Default)]
pub struct Exec;

#[cfg(target_os = "linux")]
impl Runner for Exec {
    fn run(&mut self, hook: &Hook, stdin: &[u8], timeout: Duration) -> Result<(), RunError> {
        use std::io::Write;
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};
        let mut cmd = Command::new(&hook.path);
        if let Some((argv0, rest)) = hook.args.split_first() {
            cmd.arg0(argv0).args(rest);
        }
        cmd.env_clear();
        for e in &hook.env {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            cmd.env(k, v);
        }
        let mut child =
            cmd.stdin(Stdio::piped()).stdout(Stdio::null()).spawn().map_err(RunError::Start)?;
        if let Some(mut pipe) = child.stdin.take() {
            // A hook that does not read its state closes the pipe: not an error.
            let _ = pipe.write_all(stdin);
        }
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(s)) if s.success() => return Ok(()),
                Ok(Some(s)) => return Err(RunError::Exit(s)),
                Ok(None) if std::time::Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(RunError::TimedOut(timeout.as_secs()));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(RunError::Wait(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records each run as `path args stdin` and fails the paths listed in `fail`.
    #[derive(Default)]
    struct Record {
        runs: Vec<String>,
        fail: Vec<&'static str>,
    }

    impl Runner for Record {
        fn run(&mut self, h: &Hook, stdin: &[u8], timeout: Duration) -> Result<(), RunError> {
            use std::os::unix::process::ExitStatusExt;
            let s = String::from_utf8_lossy(stdin);
            self.runs.push(format!("{} {:?} {}s {s}", h.path, h.args, timeout.as_secs()));
            if self.fail.contains(&h.path.as_str()) {
                Err(RunError::Exit(std::process::ExitStatus::from_raw(1 << 8)))
            } else {
                Ok(())
            }
        }
    }

    fn hook(path: &str, timeout: Option<i64>) -> Hook {
        Hook { path: path.into(), args: vec![path.into(), "x".into()], env: vec![], timeout }
    }

    const STATE: State = State { id: "sshd", status: "creating", pid: Some(42), bundle: "/b" };

    #[test]
    fn state_json_is_the_runtime_spec_state() {
        assert_eq!(
            String::from_utf8(STATE.json()).unwrap(),
            r#"{"ociVersion":"1.2.1","id":"sshd","status":"creating","pid":42,"bundle":"/b","annotations":{}}"#
        );
        let v: serde_json::Value = serde_json::from_slice(&STATE.json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"ociVersion": "1.2.1", "id": "sshd", "status": "creating",
                               "pid": 42, "bundle": "/b", "annotations": {}})
        );
        let stopped = State { status: "stopped", pid: None, ..STATE };
        let v: serde_json::Value = serde_json::from_slice(&stopped.json()).unwrap();
        assert!(v.get("pid").is_none());
    }

    #[test]
    fn hooks_run_in_order_with_state_and_the_first_failure_stops_them() {
        let hooks = [hook("/a", Some(5)), hook("/b", None), hook("/c", None)];
        let mut r = Record { fail: vec!["/b"], ..Record::default() };
        let e = run_all(&mut r, "createRuntime", &hooks, &STATE).unwrap_err();
        assert_eq!(e.to_string(), "createRuntime hook /b");
        let chain = crate::console::chain(&e);
        assert_eq!(chain, "createRuntime hook /b: exited with exit status: 1");
        let json = String::from_utf8(STATE.json()).unwrap();
        assert_eq!(
            r.runs,
            [format!("/a [\"/a\", \"x\"] 5s {json}"), format!("/b [\"/b\", \"x\"] 120s {json}")]
        );
        // poststart/poststop: every hook runs; failures come back as warnings.
        let mut r = Record { fail: vec!["/a", "/c"], ..Record::default() };
        let w = run_all_warn(&mut r, "poststop", &hooks, &STATE);
        assert_eq!(r.runs.len(), 3);
        let w: Vec<String> = w.iter().map(|e| crate::console::chain(e)).collect();
        assert_eq!(w.len(), 2);
        assert!(w[0].starts_with("poststop hook /a:") && w[1].starts_with("poststop hook /c:"));
    }

    #[test]
    fn bad_timeouts_are_refused() {
        let h = Hooks { start_container: vec![hook("/x", Some(-1))], ..Hooks::default() };
        let e = check(&h).unwrap_err().to_string();
        assert!(e.contains("startContainer hook /x") && e.contains("positive"), "{e}");
        let h = Hooks { poststop: vec![hook("/x", Some(0))], ..Hooks::default() };
        assert!(check(&h).unwrap_err().to_string().contains("must be positive"));
        let h = Hooks { prestart: vec![hook("/x", Some(3))], ..Hooks::default() };
        check(&h).unwrap();
    }

    /// The real runner: argv[0], env and stdin reach the program; a hang is killed.
    #[cfg(target_os = "linux")]
    #[test]
    fn exec_feeds_stdin_sets_argv0_and_env_and_kills_at_the_timeout() {
        let dir = std::env::temp_dir().join(format!("baleen-hooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let h = Hook {
            path: "/bin/sh".into(),
            args: vec![
                "hook-sh".into(),
                "-c".into(),
                format!("{{ echo \"$0 $FOO\"; cat; }} > {}", out.display()),
            ],
            env: vec!["FOO=bar".into()],
            timeout: Some(10),
        };
        run_all(&mut Exec, "prestart", &[h], &STATE).unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        let json = String::from_utf8(STATE.json()).unwrap();
        assert_eq!(got, format!("hook-sh bar\n{json}"));

        let fails = Hook { args: vec!["sh".into(), "-c".into(), "exit 3".into()], ..h_sh() };
        let e = run_all(&mut Exec, "prestart", &[fails], &STATE).unwrap_err();
        let e = crate::console::chain(&e);
        assert!(e.contains("exit status: 3"), "{e}");
        let hangs = Hook {
            args: vec!["sh".into(), "-c".into(), "sleep 30".into()],
            timeout: Some(1),
            ..h_sh()
        };
        let e = run_all(&mut Exec, "prestart", &[hangs], &STATE).unwrap_err();
        let e = crate::console::chain(&e);
        assert!(e.contains("timed out"), "{e}");
        let missing = Hook { path: "/nonexistent/hook".into(), ..h_sh() };
        let e = run_all(&mut Exec, "prestart", &[missing], &STATE).unwrap_err();
        let e = crate::console::chain(&e);
        assert!(e.contains("starting: "), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(target_os = "linux")]
    fn h_sh() -> Hook {
        Hook { path: "/bin/sh".into(), ..Hook::default() }
    }
}
