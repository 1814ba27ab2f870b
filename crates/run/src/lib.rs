//! baleen-run: booting baleen outputs locally under qemu.
//!
//! The flow is options → plan → argv → supervised process:
//! - [`RunOptions`] (what the user asked; LinuxKit's `run qemu` flags, parsed by [`flags`]) is
//!   turned by [`prepare()`] into a [`QemuPlan`]: boot type detected from PATH, firmware chosen,
//!   missing disks created, the metadata CD-ROM written ([`iso`]), the MAC kept in the state
//!   directory, the accelerator resolved ([`accel`]: KVM only when a probe guest really runs).
//! - [`QemuPlan::argv`] is a pure function of the plan, in LinuxKit's argument order.
//! - [`Vm`] spawns qemu, tees the serial console, enforces the timeout, stops cleanly on Ctrl-C,
//!   and maps the end to a [`Verdict`] through the init↔run protocol ([`console`]): a clean
//!   poweroff is 0, `poweroff status n` / isa-debug-exit `(n<<1)|1` is n, a timeout is 124.
//!
//! - [`netboot`]: `--netboot URL`, an empty VM booted by its NIC's iPXE ROM from URL.
//! - [`tpm`]: `--tpm`, a swtpm TPM 2.0 beside qemu, started before it and stopped after.
//!
//! Non-goals: building images (this crate only boots them), cloud backends (later), hyperkit,
//! virtiofs and `--usb`.

pub mod accel;
pub mod budget;
pub mod console;
pub mod efivars;
pub mod flags;
pub mod guest_arch;
pub mod iso;
pub mod netboot;
pub mod plan;
pub mod prepare;
pub mod runner;
pub mod secure_boot;
pub mod tpm;

pub use console::{
    ConsoleWatch, Event, QemuEnd, Timeline, Verdict, EXIT_INTERRUPTED, EXIT_TIMEOUT,
};
pub use flags::{AccelChoice, DiskSpec, FlagError};
pub use plan::{Accel, Arch, BootSource, Disk, Firmware, Networking, Proto, Publish, QemuPlan};
pub use prepare::{prepare, BootKind, DataSource, PrepareError, Prepared, RunOptions};
pub use runner::{start_detached, RunConfig, RunError, RunOutcome, StdinMode, Vm, WaitError};
pub use secure_boot::{SecureBoot, SecureBootError};
