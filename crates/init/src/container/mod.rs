//! Running one LinuxKit bundle (`containers/<section>/<dir>/{config.json,runtime.json,rootfs}`)
//! as a container, without runc.
//!
//! [`Bundle::load`] reads the two JSON files; [`setup`] holds the namespace-side logic behind the
//! syscall seam; [`spawn`] (Linux only) clones the process into its new namespaces, holds it on
//! a pipe while init does the parent-side work (cgroup, interfaces, bindNS), then lets it set
//! itself up and exec. A setup failure in the child comes back as text on a close-on-exec pipe.

pub mod confine;
pub mod setup;
#[cfg(target_os = "linux")]
pub mod spawn;

use crate::caps::{self, CapError};
use crate::spec::{self, Config, Runtime, SpecError};
use crate::sys::CapSets;
use std::path::{Path, PathBuf};

/// Errors loading or starting a container.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("loading bundle {bundle}")]
    Spec { bundle: PathBuf, source: SpecError },
    #[error("bundle {bundle}")]
    Caps { bundle: PathBuf, source: CapError },
    #[error("bundle {bundle}")]
    Seccomp { bundle: PathBuf, source: crate::seccomp::SeccompError },
    #[error("bundle {bundle}")]
    Devices { bundle: PathBuf, source: crate::devcg::DevcgError },
    #[error("bundle {bundle}")]
    Hooks { bundle: PathBuf, source: crate::hooks::HookError },
    #[error("bundle {bundle}: config.json has no process.args")]
    NoArgs { bundle: PathBuf },
    #[error("bundle {bundle}: linux.cgroupsPath {path:?} names the root cgroup")]
    RootCgroup { bundle: PathBuf, path: String },
    #[error("preparing {bundle}")]
    Prepare { bundle: PathBuf, source: setup::SetupError },
    #[error("starting {bundle}: {what}")]
    Start { bundle: PathBuf, what: String, source: std::io::Error },
    #[error("starting {bundle}: {message}")]
    Child { bundle: PathBuf, message: String },
}

/// A loaded bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The name used in events and logs: the directory name (`001-format`, `sshd`).
    pub name: String,
    pub dir: PathBuf,
    pub config: Config,
    pub runtime: Runtime,
    pub caps: CapSets,
    /// The compiled `linux.seccomp` filter.
    pub seccomp: Option<Vec<crate::seccomp::Insn>>,
    /// The compiled `linux.resources.devices` program (runc's default without rules; `None`
    /// only under `baleen.devices=rules`).
    pub devcg: Option<Vec<crate::devcg::Insn>>,
}

impl Bundle {
    /// Reads `dir/config.json` and `dir/runtime.json`.
    pub fn load(dir: &Path) -> Result<Bundle, ContainerError> {
        let spec_err = |source| ContainerError::Spec { bundle: dir.into(), source };
        let config = spec::load_config(dir).map_err(spec_err)?;
        let runtime = spec::load_runtime(dir).map_err(spec_err)?;
        if config.process.args.is_empty() {
            return Err(ContainerError::NoArgs { bundle: dir.into() });
        }
        let caps = caps::sets(config.process.capabilities.as_ref())
            .map_err(|source| ContainerError::Caps { bundle: dir.into(), source })?;
        let seccomp = config
            .linux
            .seccomp
            .as_ref()
            .map(crate::seccomp::compile)
            .transpose()
            .map_err(|source| ContainerError::Seccomp { bundle: dir.into(), source })?;
        if let Some(h) = &config.hooks {
            crate::hooks::check(h)
                .map_err(|source| ContainerError::Hooks { bundle: dir.into(), source })?;
        }
        let devcg = crate::devcg::compile(&config.linux.resources.devices)
            .map(Some)
            .map_err(|source| ContainerError::Devices { bundle: dir.into(), source })?;
        if let Some(p) = config.linux.cgroups_path.as_deref() {
            // Init's own cgroup: the container's limits and device program would be
            // everyone's.
            if !p.is_empty() && cgroup_under_root(p).is_empty() {
                return Err(ContainerError::RootCgroup { bundle: dir.into(), path: p.into() });
            }
        }
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Bundle { name, dir: dir.into(), config, runtime, caps, seccomp, devcg })
    }

    /// The absolute root directory (`root.path`, relative to the bundle).
    pub fn rootfs(&self) -> PathBuf {
        let p = Path::new(&self.config.root.path);
        if p.is_absolute() {
            p.into()
        } else {
            self.dir.join(p)
        }
    }

    /// The cgroup (under /sys/fs/cgroup) the container runs in: `linux.cgroupsPath`, else
    /// `baleen/<name>`; never above /sys/fs/cgroup ([`cgroup_under_root`]).
    pub fn cgroup(&self) -> String {
        match self.config.linux.cgroups_path.as_deref() {
            Some(p) if !p.is_empty() => cgroup_under_root(p),
            _ => format!("baleen/{}", self.name),
        }
    }

    /// The `CLONE_NEW*` flags for the namespaces config.json asks to be new (no path).
    pub fn clone_flags(&self) -> Result<i32, ContainerError> {
        use crate::sys::ns;
        let mut flags = 0;
        for n in &self.config.linux.namespaces {
            if n.path.as_deref().is_some_and(|p| !p.is_empty()) {
                continue;
            }
            flags |= match n.kind.as_str() {
                "pid" => ns::NEWPID,
                "network" => ns::NEWNET,
                "mount" => ns::NEWNS,
                "ipc" => ns::NEWIPC,
                "uts" => ns::NEWUTS,
                "cgroup" => ns::NEWCGROUP,
                "user" => ns::NEWUSER,
                other => {
                    return Err(ContainerError::Start {
                        bundle: self.dir.clone(),
                        what: format!("a new {other} namespace"),
                        source: std::io::ErrorKind::Unsupported.into(),
                    })
                }
            };
        }
        // pivot_root and the container's mounts need a mount namespace of its own; LinuxKit
        // always lists one, and a bundle without one would change init's mounts.
        Ok(flags | ns::NEWNS)
    }

    /// True when the container has a network namespace of its own (then init brings its
    /// loopback up, as runc does).
    pub fn new_net(&self) -> bool {
        self.config.linux.namespaces.iter().any(|n| n.kind == "network" && n.path.is_none())
    }
}

/// A cgroup path from a bundle made relative to the cgroup root and cleaned as if it were
/// rooted there, as runc cleans it: `..` cannot climb out of /sys/fs/cgroup (`../../../tmp/x`
/// made `/tmp/x` on the host, with memory.max and cgroup.procs files in it). Empty: the root.
pub fn cgroup_under_root(path: &str) -> String {
    crate::lexical::clean_components(path).join("/")
}

/// Unmounts what [`setup::prepare_host`] mounted for a finished container (best effort, as
/// LinuxKit's cleanup).
pub fn cleanup(sys: &mut dyn crate::sys::Sys, b: &Bundle) {
    let rootfs = b.rootfs();
    let mut seen = Vec::new();
    for m in b.runtime.mounts.iter().rev() {
        // Resolved as prepare_host resolved it: `rootfs.join` would follow the image's
        // `etc -> /` and unmount init's own /etc.
        let d = if m.destination.starts_with('/') {
            PathBuf::from(&m.destination)
        } else {
            match sys.resolve_in_root(&rootfs, &m.destination) {
                Ok(d) => d,
                Err(_) => continue,
            }
        };
        if !seen.contains(&d) {
            let _ = sys.umount(&d, true);
            seen.push(d);
        }
    }
}

/// What init would do for a bundle, as the fake's transcript: the host-side steps, the clone
/// flags, then the child's steps up to exec. `baleen-init plan DIR` prints it, so a bundle can
/// be checked on any machine without booting it. Paths are not looked at (the fake knows none).
pub fn plan(dir: &Path) -> Result<Vec<String>, ContainerError> {
    let b = Bundle::load(dir)?;
    let mut f = crate::sys::fake::Fake::new();
    let rootfs = b.rootfs();
    setup::prepare_host(&mut f, &rootfs, &b.runtime)
        .map_err(|source| ContainerError::Prepare { bundle: dir.into(), source })?;
    let mut out: Vec<String> = f.calls.drain(..).map(|c| format!("host: {c}")).collect();
    if let Some(p) = setup::pid_ns_path(&b.config) {
        out.push(format!("join pid namespace {} around the clone", p.display()));
    }
    out.push(format!("clone {:#x} cgroup {}", b.clone_flags()?, b.cgroup()));
    if let Some(p) = &b.devcg {
        out.push(format!("device cgroup program {} insns", p.len()));
    }
    for i in &b.runtime.interfaces {
        out.push(format!("interface {} add {:?} peer {:?}", i.name, i.add, i.peer));
    }
    for (ns, path) in b.runtime.bind_ns.entries() {
        out.push(format!("bindNS {ns} {path}"));
    }
    let child = setup::join_namespaces(&mut f, &b.config).and_then(|_| {
        let state = crate::hooks::State {
            id: &b.name,
            status: "creating",
            pid: None,
            bundle: &b.dir.to_string_lossy(),
        };
        setup::setup_child(&mut f, &b.config, &rootfs, &b.caps, b.seccomp.as_deref(), &state)
    });
    out.extend(f.calls.drain(..).map(|c| format!("child: {c}")));
    if let Err(e) = child {
        out.push(format!("child: error: {}", crate::console::chain(&e)));
    }
    out.push(format!("exec {:?}", b.config.process.args));
    Ok(out)
}

#[cfg(test)]
mod tests {
    /// Cleanup unmounts a relative runtime.json mount where prepare_host made it: inside the
    /// rootfs, not through the image's `etc -> /` at init's own /etc.
    #[test]
    fn cleanup_resolves_relative_mounts_inside_the_rootfs() {
        let dir = std::path::Path::new("/containers/services/x");
        let runtime: crate::spec::Runtime = serde_json::from_str(
            r#"{"mounts": [{"type": "tmpfs", "source": "tmpfs", "destination": "etc/x"},
                           {"source": "/a", "destination": "/abs", "options": ["bind"]}]}"#,
        )
        .unwrap();
        let config: crate::spec::Config =
            serde_json::from_str(r#"{"process": {"args": ["x"]}, "root": {"path": "rootfs"}}"#)
                .unwrap();
        let b = super::Bundle {
            name: "x".into(),
            dir: dir.into(),
            config,
            runtime,
            caps: Default::default(),
            seccomp: None,
            devcg: None,
        };
        let mut f = crate::sys::fake::Fake::new().link("/containers/services/x/rootfs/etc", "/");
        super::cleanup(&mut f, &b);
        assert_eq!(
            f.calls,
            ["umount /abs detach", "umount /containers/services/x/rootfs/x detach"]
        );
    }

    /// The bug: `linux.cgroupsPath` (an image label may set it) was joined to /sys/fs/cgroup
    /// as given, so `../../../tmp/x` placed the container's cgroup files in the host's /tmp,
    /// and `/` or `baleen/..` put it, and its device program, on init's own root cgroup.
    #[test]
    fn a_cgroup_path_cannot_leave_the_cgroup_tree_or_name_its_root() {
        use super::cgroup_under_root as c;
        assert_eq!(c("../../../tmp/x"), "tmp/x");
        assert_eq!(c("/baleen/./a/../b/"), "baleen/b");
        assert_eq!(c("baleen/.."), "");
        let dir = std::env::temp_dir().join(format!("baleen-cgpath-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let load = |cg: &str| {
            std::fs::write(
                dir.join("config.json"),
                format!(r#"{{"process": {{"args": ["x"]}}, "linux": {{"cgroupsPath": "{cg}"}}}}"#),
            )
            .unwrap();
            super::Bundle::load(&dir)
        };
        assert_eq!(load("../../../tmp/x").unwrap().cgroup(), "tmp/x");
        for root in ["/", "baleen/..", "../.."] {
            let e = load(root).unwrap_err().to_string();
            assert!(
                e.ends_with(&format!("linux.cgroupsPath {root:?} names the root cgroup")),
                "{e}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn plan_lists_host_then_child_steps() {
        let dir = std::env::temp_dir().join(format!("baleen-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        std::fs::write(
            dir.join("config.json"),
            r#"{"process": {"args": ["/bin/true"]}, "root": {"path": "rootfs", "readonly": true},
                "linux": {"namespaces": [{"type": "network"}, {"type": "mount"}]}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("runtime.json"),
            format!(r#"{{"mounts": [{{"source": "{d}/rootfs", "destination": "{d}/rootfs", "options": ["bind"]}}],
                         "bindNS": {{"net": "/run/netns/x"}}}}"#),
        )
        .unwrap();
        let plan = super::plan(&dir).unwrap();
        let name = dir.file_name().unwrap().to_string_lossy();
        assert_eq!(plan[0], format!("host: mkdir {d}/rootfs 755"));
        assert_eq!(plan[1], format!("host: mount {d}/rootfs {d}/rootfs - bind -"));
        assert_eq!(plan[2], format!("clone 0x40020000 cgroup baleen/{name}"));
        // No device rules: runc's default deny and its built-ins (6 loads, 2 mknod-only
        // rules of 6, 8 rwm nodes of 5, pts/* of 4, the default of 2).
        assert_eq!(plan[3], format!("device cgroup program {} insns", 6 + 12 + 40 + 4 + 2));
        assert_eq!(plan[4], "bindNS net /run/netns/x");
        assert_eq!(plan[5], "child: mount - / - rec|slave -");
        assert!(plan.contains(&"child: drop_bounding keep=0x0".to_owned()), "{plan:#?}");
        assert_eq!(plan.last().unwrap(), "exec [\"/bin/true\"]");

        // A pid namespace by path is joined around the clone; device rules make a program.
        std::fs::write(
            dir.join("config.json"),
            r#"{"process": {"args": ["/bin/true"]},
                "linux": {"namespaces": [{"type": "pid", "path": "/run/pidns/a"}],
                          "resources": {"devices": [{"allow": true, "type": "c", "major": 1,
                                                     "minor": 11, "access": "rw"}]}}}"#,
        )
        .unwrap();
        let plan = super::plan(&dir).unwrap();
        assert_eq!(plan[2], "join pid namespace /run/pidns/a around the clone");
        assert_eq!(plan[3], format!("clone 0x20000 cgroup baleen/{name}"));
        // Loads (6); runc's defaults: two mknod-only rules with an access test (6 each), eight
        // rwm nodes (5 each), pts/* (4); the bundle's rule with an access test (8); default (2).
        let insns = 6 + 2 * 6 + 8 * 5 + 4 + 8 + 2;
        assert_eq!(plan[4], format!("device cgroup program {insns} insns"));
        assert!(!plan.iter().any(|l| l.contains("setns")), "{plan:#?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
