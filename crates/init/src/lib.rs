//! baleen-init: the static PID 1 inside every baleen image. It brings the system up the way
//! LinuxKit's init + rc.init do, then runs every bundle under `/containers` as a container
//! itself — no runc, no containerd.
//!
//! Map:
//! - [`boot`]: leave the initramfs for a tmpfs, mount the API filesystems, hostname, sysctl.
//! - [`modules`]: explicit and coldplug module loading ([`modules::Index`]).
//! - [`spec`]: the `config.json` / `runtime.json` LinuxKit writes ([`spec::Config`],
//!   [`spec::Runtime`]).
//! - [`container`]: a [`container::Bundle`] and how it becomes a process: host-side prepare,
//!   clone, child-side setup ([`container::setup`]), exec.
//! - [`supervisor`]: the one-thread poll loop — onboot in order, services concurrently, logs,
//!   reaping, `baleen-ctl`, shutdown.
//! - [`sys`]: the syscall seam ([`sys::Sys`]) with a recording fake for tests.
//! - [`console`]: the init↔`baleen run` protocol lines.
//! - [`acpi`]: the ACPI power button over generic netlink.
//! - [`stage1`]: the small initrd of `kernel+squashfs|erofs|iso` — mount `root=` under an
//!   overlay and exec its init.
//! - [`volumes`]: `containers/volumes/*` made ready for binds before any container starts.
//!
//! - [`seccomp`]: OCI seccomp profiles compiled to BPF (x86_64).
//! - [`devcg`]: `linux.resources.devices` compiled to an eBPF device-cgroup program.
//! - [`hooks`]: OCI lifecycle hooks run around a container.
//!
//! Non-goals: cgroup v1, restarting services, anything async or networked beyond rtnetlink.

pub mod acpi;
pub mod boot;
pub mod caps;
/// The error chain on one line: `baleen-spec`'s file, included so that the rule has one home
/// (init may depend on no host crate).
#[path = "../../spec/src/chain.rs"]
mod chain;
pub mod cmdline;
pub mod console;
pub mod container;
pub mod devcg;
pub mod dm;
pub mod hooks;
pub mod lexical;
pub mod logs;
pub mod modules;
pub mod mountopts;
pub mod netlink;
pub mod partuuid;
pub mod seccomp;
pub mod shutdown;
pub mod spec;
pub mod stage1;
#[cfg(target_os = "linux")]
pub mod supervisor;
pub mod sys;
pub mod sysctl;
pub mod tpm;
pub mod volumes;

#[cfg(target_os = "linux")]
mod init;
#[cfg(target_os = "linux")]
pub use init::run;
