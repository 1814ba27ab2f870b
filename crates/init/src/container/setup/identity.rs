//! Who the container's process is: root of its user namespace while it sets up
//! ([`become_namespace_root`], first of all), its hostname (before pivot_root), then — in the
//! new root — its limits and working directory ([`process_state`]), and last its identity and
//! confinement ([`drop_privileges`]: bounding set, ids, capabilities, no_new_privs, with the
//! seccomp filter at the one point where it can still be installed and binds the most).

use super::{step, unsupported, SetupError};
use crate::spec::Config;
use crate::sys::{CapSets, Sys};
use std::path::Path;

/// In a user namespace, becomes its uid/gid 0. Runs before anything is made: init's uid 0 is
/// not mapped there, and files made on the container's own mounts (the /dev tmpfs) would fail
/// with EOVERFLOW.
pub(super) fn become_namespace_root(sys: &mut dyn Sys, cfg: &Config) -> Result<(), SetupError> {
    if cfg.linux.namespaces.iter().any(|n| n.kind == "user") {
        step("becoming root of the user namespace", Path::new("/"), sys.set_ids(0, 0, &[]))?;
    }
    Ok(())
}

/// config.json's hostname, set only in a new UTS namespace of the container's own (never in
/// init's, nor in one joined by path).
pub(super) fn hostname(sys: &mut dyn Sys, cfg: &Config) -> Result<(), SetupError> {
    if let Some(h) = cfg.hostname.as_deref().filter(|h| !h.is_empty()) {
        if cfg.linux.namespaces.iter().any(|n| n.kind == "uts" && n.path.is_none()) {
            step("setting hostname", Path::new(h), sys.sethostname(h))?;
        }
    }
    Ok(())
}

/// rlimits, oom_score_adj, and the working directory, checked to be inside the new root. Runs
/// after pivot_root (the cwd is the container's) and while still privileged (raising a hard
/// limit needs CAP_SYS_RESOURCE).
pub(super) fn process_state(sys: &mut dyn Sys, cfg: &Config) -> Result<(), SetupError> {
    for rl in &cfg.process.rlimits {
        let Some(res) = super::rlimit_number(&rl.kind) else {
            return Err(unsupported("setting rlimit", &rl.kind));
        };
        step("setting rlimit", Path::new(&rl.kind), sys.setrlimit(res, rl.soft, rl.hard))?;
    }
    if let Some(adj) = cfg.process.oom_score_adj {
        let p = Path::new("/proc/self/oom_score_adj");
        step("setting", p, sys.write_file(p, adj.to_string().as_bytes()))?;
    }
    let cwd = cfg.process.cwd.as_deref().unwrap_or("/");
    step("changing directory to", Path::new(cwd), sys.chdir(Path::new(cwd)))?;
    // runc's check for CVE-2024-21626: a cwd reached through a descriptor that leaked from
    // outside (`/proc/self/fd/N`) lies outside the new root, and getcwd says so.
    step("checking the working directory", Path::new(cwd), sys.getcwd())?;
    Ok(())
}

/// The process's final identity, in runc's order: the bounding set dropped (needs
/// CAP_SETPCAP, so before the uid changes), uid/gid/groups, the capability sets, then
/// no_new_privs. The seccomp filter goes in as late as it can: without no_new_privs only a
/// privileged process may install one, so before the capabilities are dropped; with it, last
/// of all, so the filter need not allow the setup calls above.
pub(super) fn drop_privileges(
    sys: &mut dyn Sys,
    cfg: &Config,
    caps: &CapSets,
    seccomp: Option<&[crate::seccomp::Insn]>,
) -> Result<(), SetupError> {
    let root = Path::new("/");
    let nnp = cfg.process.no_new_privileges;
    if let (Some(prog), false) = (seccomp, nnp) {
        install_seccomp(sys, prog)?;
    }
    step("dropping bounding capabilities", root, sys.drop_bounding(caps.bounding))?;
    let u = &cfg.process.user;
    let r = sys.set_ids(u.uid, u.gid, &u.additional_gids);
    step("switching to uid", Path::new(&u.uid.to_string()), r)?;
    step("setting capabilities", root, sys.set_caps(caps))?;
    if nnp {
        step("setting no_new_privs", root, sys.no_new_privs())?;
        if let Some(prog) = seccomp {
            install_seccomp(sys, prog)?;
        }
    }
    Ok(())
}

/// The seccomp filter; every syscall after this one is filtered.
fn install_seccomp(sys: &mut dyn Sys, prog: &[crate::seccomp::Insn]) -> Result<(), SetupError> {
    step("installing the seccomp filter", Path::new("/"), sys.seccomp(prog))
}
