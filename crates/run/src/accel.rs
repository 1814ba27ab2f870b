//! Choosing the accelerator: KVM when it really works, TCG otherwise.
//!
//! `/dev/kvm` opening is not enough: on some hosts (nested virtualisation, as on this project's
//! build machines) KVM accepts a VM and then crawls or hangs. So `auto` boots a 512-byte probe
//! guest under KVM — SeaBIOS, then a boot sector that enables paging and long mode and writes to
//! the `isa-debug-exit` port — and accepts KVM only when qemu exits with the expected status
//! within [`PROBE_BUDGET`]. A healthy KVM does this in a fraction of a second; TCG in ~0.2 s. The
//! verdict is cached per (qemu version, host kernel release), so the probe runs once per host.

use crate::flags::AccelChoice;
use crate::plan::{Accel, Arch};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the probe guest may take under KVM before KVM is judged unusable.
pub const PROBE_BUDGET: Duration = Duration::from_secs(3);

/// The value the probe writes to the debug-exit port; qemu then exits with `(0x2a << 1) | 1`.
const PROBE_STATUS: i32 = (0x2a << 1) | 1;

/// Choosing an accelerator failed.
#[derive(Debug, thiserror::Error)]
pub enum AccelError {
    #[error("--accel kvm: cannot open /dev/kvm")]
    NoKvm(#[source] std::io::Error),
    #[error("--accel kvm: {arch} guests cannot use KVM on this {host} host")]
    ForeignArch { arch: Arch, host: Arch },
}

/// The chosen accelerator, and the one-line notice to print when `auto` fell back to TCG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub accel: Accel,
    pub notice: Option<String>,
    /// The verdict came from the cache: the notice was printed when the probe ran.
    pub cached: bool,
}

/// Resolves `--accel` for a guest of `arch`. `cache_dir` holds the probe's verdict (and its
/// scratch disk); without one the probe runs every time.
pub fn resolve(choice: AccelChoice, arch: Arch, cache_dir: &Path) -> Result<Resolved, AccelError> {
    let host = Arch::host();
    let tcg = |notice: Option<String>| Ok(Resolved { accel: Accel::Tcg, notice, cached: false });
    match choice {
        AccelChoice::Tcg => tcg(None),
        AccelChoice::Kvm => {
            if arch != host {
                return Err(AccelError::ForeignArch { arch, host });
            }
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/kvm")
                .map_err(AccelError::NoKvm)?;
            Ok(Resolved { accel: Accel::Kvm, notice: None, cached: false })
        }
        AccelChoice::Auto => {
            if arch != host {
                return tcg(None);
            }
            if std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_err() {
                // No KVM at all is normal (containers, CI): no notice.
                return tcg(None);
            }
            if arch != Arch::X86_64 {
                // The probe payload is x86 code; trust KVM elsewhere.
                return Ok(Resolved { accel: Accel::Kvm, notice: None, cached: false });
            }
            let key = cache_key(arch);
            if let Some(cached) = read_cache(cache_dir, &key, now_secs()) {
                // Said once, when the probe ran: a cached verdict's notice is for -v only.
                return Ok(Resolved { cached: true, ..from_verdict(cached) });
            }
            let verdict = match probe(arch.qemu_binary(), cache_dir, Accel::Kvm, PROBE_BUDGET) {
                Ok(()) => Verdict::Works,
                Err(why) => Verdict::Unusable(why),
            };
            write_cache(cache_dir, &key, &verdict, now_secs());
            Ok(from_verdict(verdict))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Works,
    Unusable(String),
}

fn from_verdict(v: Verdict) -> Resolved {
    match v {
        Verdict::Works => Resolved { accel: Accel::Kvm, notice: None, cached: false },
        Verdict::Unusable(why) => Resolved {
            accel: Accel::Tcg,
            cached: false,
            notice: Some(format!(
                "note: KVM is not usable here ({why}); using TCG emulation (slower). \
                 --accel tcg skips this check"
            )),
        },
    }
}

fn cache_key(arch: Arch) -> String {
    let version = Command::new(arch.qemu_binary())
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown qemu".into());
    let uname = rustix::system::uname();
    format!("{version} / {}", uname.release().to_string_lossy())
}

const CACHE_FILE: &str = "accel-probe";

/// How long a "KVM unusable" verdict is trusted. A probe that lost to a momentarily overloaded
/// host must not condemn KVM forever; a healthy verdict stays until qemu or the kernel changes.
const NEGATIVE_TTL: Duration = Duration::from_secs(24 * 3600);

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One line per verdict, `key \t kvm|tcg \t unix-seconds \t reason`; the last line for a key
/// wins.
fn read_cache(dir: &Path, key: &str, now: u64) -> Option<Verdict> {
    let text = std::fs::read_to_string(dir.join(CACHE_FILE)).ok()?;
    let line = text.lines().rev().find(|l| l.split('\t').next() == Some(key))?;
    let mut parts = line.splitn(4, '\t').skip(1);
    let verdict = parts.next()?;
    let at: u64 = parts.next()?.parse().ok()?;
    match verdict {
        "kvm" => Some(Verdict::Works),
        "tcg" if now.saturating_sub(at) < NEGATIVE_TTL.as_secs() => {
            Some(Verdict::Unusable(parts.next().unwrap_or("cached verdict").into()))
        }
        _ => None,
    }
}

fn write_cache(dir: &Path, key: &str, v: &Verdict, now: u64) {
    // A cache that cannot be written only means the probe runs again next time.
    let _ = std::fs::create_dir_all(dir);
    let line = match v {
        Verdict::Works => format!("{key}\tkvm\t{now}\t\n"),
        Verdict::Unusable(why) => format!("{key}\ttcg\t{now}\t{why}\n"),
    };
    if let Ok(mut f) =
        std::fs::OpenOptions::new().create(true).append(true).open(dir.join(CACHE_FILE))
    {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Boots the probe guest under `accel` and returns `Err(reason)` unless it wrote its status to
/// the debug-exit port within `budget`.
pub fn probe(qemu: &str, work_dir: &Path, accel: Accel, budget: Duration) -> Result<(), String> {
    std::fs::create_dir_all(work_dir)
        .map_err(|e| format!("creating {}: {e}", work_dir.display()))?;
    let disk = probe_disk_path(work_dir);
    write_probe_disk(&disk).map_err(|e| format!("writing {}: {e}", disk.display()))?;
    let start = Instant::now();
    let mut child = Command::new(qemu)
        .args(["-nodefaults", "-display", "none", "-m", "32", "-no-reboot"])
        .args(["-machine", &format!("q35,accel={}", accel.as_str())])
        .arg("-drive")
        .arg(format!("file={},format=raw,if=ide", disk.display()))
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {qemu}: {e}"))?;
    let result = loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                break match status.code() {
                    Some(PROBE_STATUS) => Ok(()),
                    other => {
                        let mut err = String::new();
                        if let Some(mut e) = child.stderr.take() {
                            let _ = std::io::Read::read_to_string(&mut e, &mut err);
                        }
                        let last = err.lines().last().unwrap_or("").trim().to_owned();
                        Err(format!("probe guest ended with status {other:?}: {last}"))
                    }
                };
            }
            Ok(None) if start.elapsed() > budget => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("a probe guest did not finish within {} s", budget.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => break Err(format!("waiting for the probe guest: {e}")),
        }
    };
    let _ = std::fs::remove_file(&disk);
    result
}

fn probe_disk_path(dir: &Path) -> PathBuf {
    dir.join(format!("accel-probe-{}.img", std::process::id()))
}

/// The probe's boot sector: the program, then the 0x55aa signature.
fn boot_sector() -> [u8; 512] {
    let mut sector = [0u8; 512];
    sector[..PROBE_CODE.len()].copy_from_slice(&PROBE_CODE);
    sector[510] = 0x55;
    sector[511] = 0xaa;
    sector
}

/// Writes the probe disk: the boot sector, sparse-padded to 1 MiB because SeaBIOS will not boot
/// a disk smaller than one CHS cylinder (a 64 KiB one fails with "could not read the boot disk").
fn write_probe_disk(path: &Path) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(&boot_sector())?;
    f.set_len(1 << 20)
}

/// The probe's boot sector (GNU as, `.code16` at 0x7c00, `objcopy -O binary`):
///
/// ```text
///   cli; zero ds/es/ss; sp = 0x7c00
///   zero 0x1000..0x4000; PML4[0] = 0x2003; PDPT[0] = 0x3003; PD[0] = 0x83 (2 MiB page)
///   lgdt gdtr; cr4 |= PAE; cr3 = 0x1000; EFER |= LME (rdmsr/wrmsr 0xc0000080)
///   cr0 |= PG | PE; ljmpl $0x08, long
/// long (.code64): ds = ss = 0x10; al = 0x2a; out %al, $0xf4; 1: hlt; jmp 1b
/// gdt: null, 0x00af9a000000ffff (64-bit code), 0x00cf92000000ffff (data); gdtr at 0x98
/// ```
const PROBE_CODE: [u8; 156] = [
    0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0, 0xbc, 0x00, 0x7c, //
    0xbf, 0x00, 0x10, 0xb9, 0x00, 0x18, 0x31, 0xc0, 0xf3, 0xab, 0x66, 0xc7, //
    0x06, 0x00, 0x10, 0x03, 0x20, 0x00, 0x00, 0x66, 0xc7, 0x06, 0x00, 0x20, //
    0x03, 0x30, 0x00, 0x00, 0x66, 0xc7, 0x06, 0x00, 0x30, 0x83, 0x00, 0x00, //
    0x00, 0x0f, 0x01, 0x16, 0x98, 0x7c, 0x0f, 0x20, 0xe0, 0x66, 0x83, 0xc8, //
    0x20, 0x0f, 0x22, 0xe0, 0x66, 0xb8, 0x00, 0x10, 0x00, 0x00, 0x0f, 0x22, //
    0xd8, 0x66, 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32, 0x66, 0x0d, 0x00, //
    0x01, 0x00, 0x00, 0x0f, 0x30, 0x0f, 0x20, 0xc0, 0x66, 0x0d, 0x01, 0x00, //
    0x00, 0x80, 0x0f, 0x22, 0xc0, 0x66, 0xea, 0x6d, 0x7c, 0x00, 0x00, 0x08, //
    0x00, 0x66, 0xb8, 0x10, 0x00, 0x8e, 0xd8, 0x8e, 0xd0, 0xb0, 0x2a, 0xe6, //
    0xf4, 0xf4, 0xeb, 0xfd, 0x0f, 0x1f, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xaf, 0x00, //
    0xff, 0xff, 0x00, 0x00, 0x00, 0x92, 0xcf, 0x00, 0x17, 0x00, 0x80, 0x7c, //
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_round_trips_and_prefers_the_latest_line() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(read_cache(d, "k", 1000), None);
        write_cache(d, "k", &Verdict::Unusable("slow".into()), 1000);
        assert_eq!(read_cache(d, "k", 1000), Some(Verdict::Unusable("slow".into())));
        write_cache(d, "other", &Verdict::Works, 1000);
        assert_eq!(read_cache(d, "k", 1000), Some(Verdict::Unusable("slow".into())));
        write_cache(d, "k", &Verdict::Works, 1001);
        assert_eq!(read_cache(d, "k", 1001), Some(Verdict::Works));
        // A key that is a prefix of another is not confused with it.
        assert_eq!(read_cache(d, "k2", 1001), None);
    }

    #[test]
    fn a_negative_verdict_expires_and_a_positive_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let day = NEGATIVE_TTL.as_secs();
        write_cache(d, "no", &Verdict::Unusable("hung".into()), 1000);
        write_cache(d, "yes", &Verdict::Works, 1000);
        assert!(read_cache(d, "no", 1000 + day - 1).is_some());
        assert_eq!(read_cache(d, "no", 1000 + day), None, "re-probed after a day");
        assert_eq!(read_cache(d, "yes", 1000 + 100 * day), Some(Verdict::Works));
    }

    #[test]
    fn fallback_notice_is_one_line_and_says_how_to_skip() {
        let r = from_verdict(Verdict::Unusable("a probe guest did not finish within 3 s".into()));
        assert_eq!(r.accel, Accel::Tcg);
        let n = r.notice.unwrap();
        assert!(!n.contains('\n') && n.contains("--accel tcg") && n.contains("3 s"), "{n}");
    }

    #[test]
    fn tcg_is_chosen_without_touching_kvm() {
        let dir = tempfile::tempdir().unwrap();
        let r = resolve(AccelChoice::Tcg, Arch::X86_64, dir.path()).unwrap();
        assert_eq!(r, Resolved { accel: Accel::Tcg, notice: None, cached: false });
        assert!(!dir.path().join(CACHE_FILE).exists());
    }

    /// The probe payload itself must be right, or every healthy KVM host would fall back: run it
    /// under TCG, which needs no KVM.
    #[test]
    fn probe_guest_reaches_long_mode_and_exits_under_tcg() {
        let Some(qemu) = baleen_testkit::require_tool("qemu-system-x86_64") else { return };
        let dir = tempfile::tempdir().unwrap();
        let r = probe(qemu.to_str().unwrap(), dir.path(), Accel::Tcg, Duration::from_secs(60));
        assert_eq!(r, Ok(()));
    }
}
