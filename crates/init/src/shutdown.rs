//! Shutdown: what triggers it, how services are stopped, and the teardown before power-off.
//! The sequence runs through [`Sys`] and an injected wait, so it is unit-tested without
//! processes or time passing.

use crate::sys::{ms, Sys};
use std::path::Path;
use std::time::Duration;

/// What the system does at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Poweroff,
    Reboot,
    Halt,
}

pub const SIGINT: i32 = 2;
pub const SIGKILL: i32 = 9;
pub const SIGUSR1: i32 = 10;
pub const SIGUSR2: i32 = 12;
pub const SIGTERM: i32 = 15;
pub const SIGPWR: i32 = 30;

impl Action {
    /// The signals busybox's `poweroff`/`reboot`/`halt` send to PID 1 (USR2/TERM/USR1), the
    /// kernel's ctrl-alt-del (INT, once CAD is handed to init) and SIGPWR.
    pub fn from_signal(sig: i32) -> Option<Action> {
        match sig {
            SIGUSR2 | SIGPWR => Some(Action::Poweroff),
            SIGTERM | SIGINT => Some(Action::Reboot),
            SIGUSR1 => Some(Action::Halt),
            _ => None,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Action::Poweroff => "poweroff",
            Action::Reboot => "reboot",
            Action::Halt => "halt",
        }
    }
}

/// SIGTERM to every service, up to `grace` for them to exit, SIGKILL to the rest. `wait`
/// waits up to the given time and returns the pids still running.
pub fn stop_services(
    sys: &mut dyn Sys,
    pids: &[i32],
    grace: Duration,
    wait: &mut dyn FnMut(Duration) -> Vec<i32>,
) {
    if pids.is_empty() {
        return;
    }
    for &pid in pids {
        let _ = sys.kill(pid, SIGTERM);
    }
    let left = wait(grace);
    if left.is_empty() {
        return;
    }
    for &pid in &left {
        let _ = sys.kill(pid, SIGKILL);
    }
    wait(Duration::from_secs(2));
}

/// Filesystems whose data must reach a disk before power-off (LinuxKit's list), plus the
/// network ones, which are detached so an unreachable server cannot hang the shutdown.
fn must_unmount(fstype: &str) -> Option<bool> {
    match fstype {
        "ext2" | "ext3" | "ext4" | "btrfs" | "xfs" | "vfat" | "msdos" | "overlay" | "f2fs"
        | "erofs" | "squashfs" | "iso9660" => Some(false),
        "nfs" | "nfs4" | "cifs" => Some(true),
        _ => None,
    }
}

/// After the onshutdown containers: kill what is left, sync, unmount disk filesystems
/// innermost first, make / read-only, sync again.
pub fn teardown(sys: &mut dyn Sys, proc_mounts: &str) {
    let _ = sys.kill(-1, SIGKILL);
    sys.sync();
    let mounts: Vec<(&str, &str)> = proc_mounts
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (_, target, fstype) = (w.next(), w.next()?, w.next()?);
            Some((target, fstype))
        })
        .collect();
    for (target, fstype) in mounts.iter().rev() {
        if let Some(detach) = must_unmount(fstype) {
            if *target != "/" {
                let _ = sys.umount(Path::new(target), detach);
            }
        }
    }
    let _ = sys.mount(None, Path::new("/"), None, ms::REMOUNT | ms::RDONLY, None);
    sys.sync();
}

/// The status reported to the host: 0 when every onboot container exited 0, else 1.
pub fn status(onboot_failed: bool) -> u8 {
    u8::from(onboot_failed)
}

/// Powers off / reboots / halts. A non-zero status on poweroff is written to qemu's
/// isa-debug-exit port first (qemu then exits with `(n << 1) | 1`); without that device the
/// write does nothing and the normal power-off follows.
#[cfg(target_os = "linux")]
pub fn power(action: Action, status: u8) -> ! {
    use rustix::system::RebootCommand;
    if action == Action::Poweroff && status != 0 {
        debug_exit(status);
    }
    let cmd = match action {
        Action::Poweroff => RebootCommand::PowerOff,
        Action::Reboot => RebootCommand::Restart,
        Action::Halt => RebootCommand::Halt,
    };
    // It returns only on failure.
    let _ = rustix::system::reboot(cmd);
    // PID 1 must not exit (the kernel would panic); wait for the power to go.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[allow(unsafe_code)]
fn debug_exit(status: u8) {
    const PORT: u16 = 0xf4;
    // SAFETY: ioperm grants this process access to one I/O port; no memory is involved.
    if unsafe { libc::ioperm(PORT.into(), 4, 1) } != 0 {
        return;
    }
    // SAFETY: an `out` to the isa-debug-exit port; on hardware without it the write is lost.
    unsafe {
        std::arch::asm!("out dx, al", in("dx") PORT, in("al") status, options(nomem, nostack))
    };
}

#[cfg(all(target_os = "linux", not(target_arch = "x86_64")))]
fn debug_exit(_status: u8) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::Fake;

    #[test]
    fn signals_map_like_busybox_init() {
        assert_eq!(Action::from_signal(SIGUSR2), Some(Action::Poweroff));
        assert_eq!(Action::from_signal(SIGTERM), Some(Action::Reboot));
        assert_eq!(Action::from_signal(SIGINT), Some(Action::Reboot));
        assert_eq!(Action::from_signal(SIGUSR1), Some(Action::Halt));
        assert_eq!(Action::from_signal(17), None);
    }

    #[test]
    fn services_get_term_then_kill_after_grace() {
        let mut f = Fake::new();
        let mut waits = Vec::new();
        stop_services(&mut f, &[10, 11], Duration::from_secs(5), &mut |d| {
            waits.push(d);
            if waits.len() == 1 {
                vec![11]
            } else {
                vec![]
            }
        });
        assert_eq!(f.calls, ["kill 10 15", "kill 11 15", "kill 11 9"]);
        assert_eq!(waits, [Duration::from_secs(5), Duration::from_secs(2)]);
    }

    #[test]
    fn services_that_exit_in_time_are_not_killed() {
        let mut f = Fake::new();
        stop_services(&mut f, &[10], Duration::from_secs(5), &mut |_| vec![]);
        assert_eq!(f.calls, ["kill 10 15"]);
    }

    #[test]
    fn teardown_unmounts_disks_innermost_first() {
        let mut f = Fake::new();
        let mounts = "rootfs / rootfs rw 0 0\n\
                      /dev/vda1 /var/lib ext4 rw 0 0\n\
                      tmpfs /run tmpfs rw 0 0\n\
                      overlay /containers/services/x/rootfs overlay rw 0 0\n\
                      srv:/x /mnt/nfs nfs4 rw 0 0\n";
        teardown(&mut f, mounts);
        assert_eq!(
            f.calls,
            [
                "kill -1 9",
                "sync",
                "umount /mnt/nfs detach",
                "umount /containers/services/x/rootfs",
                "umount /var/lib",
                "mount - / - remount|ro -",
                "sync"
            ]
        );
        assert_eq!(status(false), 0);
        assert_eq!(status(true), 1);
    }
}
