//! The boot sequence, start to power-off. Each phase ends with a protocol line, which is also
//! the boot timeline the benchmarks read.

use crate::boot;
use crate::cmdline;
use crate::console::event;
use crate::modules;
use crate::supervisor::{self, Kind, Supervisor};
use crate::sys::real::Real;
use crate::sys::Sys;
use crate::volumes;
use std::path::Path;

fn warn(msg: &str) {
    event(&format!("warning {msg}"));
}

/// Ctrl-Alt-Del then arrives as SIGINT to PID 1.
fn disable_ctrl_alt_del() {
    let _ = rustix::system::reboot(rustix::system::RebootCommand::CadOff);
}

/// Runs PID 1. Never returns: the machine powers off or reboots at the end.
pub fn run() -> ! {
    event("init started");
    if std::process::id() != 1 {
        eprintln!("baleen-init: must run as PID 1 (use `baleen-init ctl …` as a client)");
        std::process::exit(1);
    }
    let sigfd = match supervisor::signal_fd() {
        Ok(fd) => fd,
        Err(e) => {
            warn(&format!("creating the signalfd: {e}; cannot supervise"));
            crate::shutdown::power(crate::shutdown::Action::Poweroff, 1)
        }
    };
    disable_ctrl_alt_del();
    let mut sys = Real;
    enter_root(&mut sys);
    for w in boot::early_mounts(&mut sys) {
        warn(&w);
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let (knobs, unknown) = cmdline::parse(&cmdline);
    for w in unknown {
        warn(&w);
    }
    system_settings(&mut sys);
    event("phase mounts done");

    load_modules(&knobs);
    // The boot phases systemd-pcrphase measures, now that the TPM driver is loaded: baleen has
    // no initrd stage that unlocks anything (stage 1 only mounts the root), so the initrd's
    // words come here, in their order, then sysinit; ready once the services are started.
    measure_phases(&["enter-initrd", "leave-initrd", "sysinit"]);
    let etc = std::fs::read_to_string("/etc/hostname").ok();
    let mac = std::fs::read_to_string("/sys/class/net/eth0/address").ok();
    if let Some(h) = boot::hostname(etc.as_deref(), mac.as_deref()) {
        if let Err(e) = sys.sethostname(&h) {
            warn(&format!("setting hostname {h}: {e}"));
        }
    }
    event("phase modules done");

    for e in volumes::setup(&mut sys, &volumes::scan(Path::new("/containers/volumes"))) {
        warn(&e);
    }
    run_scripts(Path::new("/etc/init.d"));
    let mut sup = Supervisor::new(knobs, sigfd);
    let go_on = sup.run_sequence(Kind::Onboot, Path::new("/containers/onboot"));
    event("phase onboot done");
    if go_on && sup.shutdown.is_none() {
        sup.start_services(Path::new("/containers/services"));
        event("phase services started");
        measure_phases(&["ready"]);
        log_pcr11();
    }
    let action = sup.wait_for_shutdown();
    sup.shutdown(action, Path::new("/containers/onshutdown"), || {
        run_scripts(Path::new("/etc/shutdown.d"))
    })
}

/// Where the system runs from: stage 1's real root (exec'd, never returns here) when the
/// initramfs is marked for it, else the initramfs moved to a tmpfs; /proc mounted either way.
fn enter_root(sys: &mut Real) {
    if let Err(e) = boot::mount_proc(sys) {
        warn(&format!("mounting /proc: {e}"));
    }
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    // The small initrd of kernel+squashfs/erofs/iso: mount the real root and exec its init.
    let proc_cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let marker = Path::new(crate::stage1::MARKER).exists();
    if crate::stage1::wanted(boot::root_is_initramfs(&mounts), marker, &proc_cmdline) {
        crate::stage1::run(sys, &proc_cmdline);
    }
    if boot::root_is_initramfs(&mounts) {
        let _ = sys.umount(Path::new("/proc"), true);
        if let Err(e) = boot::switch_to_tmpfs(sys) {
            warn(&format!("moving the initramfs to a tmpfs: {e}; containers may not start"));
        }
        if let Err(e) = boot::mount_proc(sys) {
            warn(&format!("mounting /proc: {e}"));
        }
    }
}

/// LinuxKit's rc.init settings once the API filesystems are up: rlimits, resolv.conf,
/// /etc/sysctl.d, loopback.
fn system_settings(sys: &mut Real) {
    // LinuxKit's rc.init limits: NOFILE 1048576, NPROC unlimited (numbers as in rlimit_number).
    let _ = sys.setrlimit(7, 1_048_576, 1_048_576);
    let _ = sys.setrlimit(6, u64::MAX, u64::MAX);
    resolv_conf();
    for f in sysctl_files() {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for (path, value) in boot::sysctl_lines(&text) {
            if let Err(e) = sys.write_file(Path::new(&path), value.as_bytes()) {
                warn(&format!("sysctl {path} from {}: {e}", f.display()));
            }
        }
    }
    if let Err(e) = crate::netlink::link_up("lo") {
        warn(&format!("bringing up lo: {}", crate::console::chain(&e)));
    }
}

/// Runs each executable regular file in `dir`, in name order, to completion, with the console
/// as stdout/stderr — LinuxKit's rc.init/rc.shutdown hooks, for scripts an image adds with
/// `files:` (init runs onboot/onshutdown itself, so LinuxKit's own `010-onboot`-style links are
/// not expected here).
fn run_scripts(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut files: Vec<_> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .collect();
    files.sort();
    for f in files {
        // std resets the signal mask and SIGPIPE for the child.
        match std::process::Command::new(&f).stdin(std::process::Stdio::null()).status() {
            Ok(st) if st.success() => {}
            Ok(st) => warn(&format!("{} exited {}", f.display(), st.code().unwrap_or(128))),
            Err(e) => warn(&format!("running {}: {e}", f.display())),
        }
    }
}

fn resolv_conf() {
    // Containers such as dhcpcd write resolv.conf through the symlink LinuxKit images carry.
    let Ok(target) = std::fs::read_link("/etc/resolv.conf") else { return };
    let target = if target.is_absolute() { target } else { Path::new("/etc").join(target) };
    if let Some(d) = target.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    if !target.exists() {
        let _ = std::fs::write(&target, "");
    }
}

fn sysctl_files() -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    if Path::new("/etc/sysctl.conf").is_file() {
        v.push("/etc/sysctl.conf".into());
    }
    if let Ok(rd) = std::fs::read_dir("/etc/sysctl.d") {
        let mut d: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        d.sort();
        v.extend(d.into_iter().filter(|p| p.extension().is_some_and(|e| e == "conf")));
    }
    v
}

/// Where the kernel shows PCR 11 of the SHA-256 bank (TPM 2.0; kernel 5.12 and later).
const PCR11: &str = "/sys/class/tpm/tpm0/pcr-sha256/11";

/// Extends PCR 11 with each boot phase word (crate::tpm); quiet when there is no TPM.
fn measure_phases(words: &[&str]) {
    for word in words {
        if let Err(e) = crate::tpm::measure(word) {
            let e = crate::console::chain(&e);
            warn(&format!("tpm: measuring boot phase {word} into PCR 11: {e}"));
            return;
        }
    }
}

/// Logs PCR 11 after `ready` (systemd-stub's measurements of the UKI, then the boot phases), in
/// lower-case hex like the value `baleen build` predicts for a signed UKI; nothing when the
/// machine has no TPM 2.0.
fn log_pcr11() {
    if let Ok(value) = std::fs::read_to_string(PCR11) {
        event(&pcr11_event(&value));
    }
}

fn pcr11_event(sysfs: &str) -> String {
    format!("tpm pcr11 sha256 {}", sysfs.trim().to_ascii_lowercase())
}

fn load_modules(knobs: &cmdline::Knobs) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let dir = Path::new("/lib/modules").join(release.trim());
    let mut names: Vec<String> = std::fs::read_to_string("/etc/baleen/modules")
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    names.extend(knobs.modules.iter().cloned());
    if !dir.is_dir() {
        if !names.is_empty() {
            warn(&format!("no {}: modules {} not loaded", dir.display(), names.join(",")));
        }
        return;
    }
    let ix = modules::Index::load(&dir);
    let mut loader = modules::Kernel;
    for r in modules::load(&ix, &names, &mut loader) {
        warn(&r);
    }
    // The ACPI power button driver, so a host's "power off" reaches init (see acpi.rs);
    // quietly, as a kernel may build it in or leave it out.
    let by_name: Vec<String> = modules::BY_NAME.iter().map(|m| (*m).to_owned()).collect();
    for r in modules::load(&ix, &by_name, &mut loader) {
        if knobs.debug && !r.ends_with("not found") {
            warn(&r);
        }
    }
    if ix.has_alias {
        // Loading a bus driver adds devices with aliases of their own (virtio_pci → virtio0 →
        // virtio_net), so probe again until a pass finds nothing new.
        let mut tried = std::collections::BTreeSet::new();
        for _ in 0..4 {
            let mut wanted: Vec<String> = modules::device_aliases(Path::new("/sys/devices"))
                .iter()
                .flat_map(|a| ix.match_alias(a))
                .filter(|m| !tried.contains(m))
                .collect();
            wanted.sort();
            wanted.dedup();
            if wanted.is_empty() {
                break;
            }
            tried.extend(wanted.iter().cloned());
            // Coldplug failures are normal (aliases of absent hardware variants): debug only.
            let report = modules::load(&ix, &wanted, &mut loader);
            if knobs.debug {
                for r in report {
                    warn(&r);
                }
            }
        }
    } else {
        warn(&format!("no modules.alias in {}: hardware modules not probed", dir.display()));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pcr11_is_logged_in_the_lower_case_hex_the_build_prints() {
        // The kernel's sysfs shows upper-case hex and a newline.
        let sysfs = "4E54C253592FEB61CD004F68102A607EB6AB0BCDAEE7A6320E7CB76EFE87F178\n";
        assert_eq!(
            super::pcr11_event(sysfs),
            "tpm pcr11 sha256 4e54c253592feb61cd004f68102a607eb6ab0bcdaee7a6320e7cb76efe87f178"
        );
    }
}
