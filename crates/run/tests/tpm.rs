//! `--tpm`'s swtpm: started with its state in the state directory, its socket there when
//! `start` returns, and gone once dropped (after qemu, in `Vm`).

use baleen_run::tpm::{socket, Swtpm};

#[test]
fn swtpm_keeps_its_state_in_the_state_dir_and_stops_when_dropped() {
    if baleen_testkit::require_tool("swtpm").is_none() {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let tpm = Swtpm::start(state.path()).expect("starting swtpm");
    let pid = tpm.pid();
    assert!(socket(state.path()).exists(), "no control socket when start returned");
    assert!(state.path().join("tpm").is_dir(), "no TPM state directory");
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    assert!(proc_dir.exists(), "swtpm is not running");
    drop(tpm);
    // Killed and reaped: the pid is gone (bounded wait, in case /proc lags).
    let gone = (0..100).any(|_| {
        let alive =
            std::fs::read_to_string(proc_dir.join("stat")).is_ok_and(|s| !s.contains(") Z "));
        if alive {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        !alive
    });
    assert!(gone, "swtpm {pid} still runs after the drop");
}

#[test]
fn a_state_dir_too_long_for_a_socket_is_refused_before_swtpm_starts() {
    let state = std::path::PathBuf::from(format!("/tmp/{}", "x".repeat(120)));
    let err = Swtpm::start(&state).unwrap_err();
    assert!(!state.exists(), "the state dir was made");
    assert!(err.to_string().contains("shorter --state"), "{err}");
}
