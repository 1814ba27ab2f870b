//! A recording [`Sys`]: every call is appended to a transcript as one readable line, so tests
//! assert the order of mounts and the capability sets as text. Paths "exist" when the test
//! declares them or an earlier call created them; calls listed in `fail` return an error.

use super::{ms, CapSets, DevKind, Sys};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// The recording fake. `calls` is the transcript.
#[derive(Debug, Default)]
pub struct Fake {
    pub calls: Vec<String>,
    /// Known paths: `true` = directory, `false` = file.
    pub paths: BTreeMap<PathBuf, bool>,
    /// Transcript prefixes that fail with EPERM instead of being recorded as done.
    pub fail: Vec<String>,
    /// Symlinks: path → target.
    pub links: BTreeMap<PathBuf, String>,
    /// What getcwd answers after the next chdir (`None`: the directory changed to).
    pub cwd: Option<String>,
    /// The directory the last chdir named.
    pub last_chdir: Option<PathBuf>,
    /// [`Sys::pin`] records `pin PATH -> /proc/self/fd/N` and answers that path, N counting
    /// up, so a test sees which opening a mount used (off: the path itself, unrecorded).
    pub pins: bool,
}

impl Fake {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares that a directory exists.
    pub fn dir(mut self, p: &str) -> Self {
        self.paths.insert(p.into(), true);
        self
    }

    /// Declares that a file exists.
    pub fn file(mut self, p: &str) -> Self {
        self.paths.insert(p.into(), false);
        self
    }

    /// Declares a symlink.
    pub fn link(mut self, p: &str, target: &str) -> Self {
        self.links.insert(p.into(), target.into());
        self
    }

    /// Transcript lines starting with `prefix`.
    pub fn matching(&self, prefix: &str) -> Vec<&str> {
        self.calls.iter().filter(|c| c.starts_with(prefix)).map(String::as_str).collect()
    }

    fn record(&mut self, line: String) -> io::Result<()> {
        let failed = self.fail.iter().any(|f| line.starts_with(f.as_str()));
        self.calls.push(if failed { format!("{line} -> EPERM") } else { line });
        if failed {
            Err(io::Error::from_raw_os_error(1))
        } else {
            Ok(())
        }
    }
}

fn opt(s: Option<&str>) -> &str {
    s.unwrap_or("-")
}

impl Sys for Fake {
    fn mount(
        &mut self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: u64,
        data: Option<&str>,
    ) -> io::Result<()> {
        let line = format!(
            "mount {} {} {} {} {}",
            opt(source),
            target.display(),
            opt(fstype),
            ms::render(flags),
            opt(data)
        );
        self.record(line)
    }

    fn umount(&mut self, target: &Path, detach: bool) -> io::Result<()> {
        self.record(format!("umount {}{}", target.display(), if detach { " detach" } else { "" }))
    }

    fn mkdir_all(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        if self.paths.get(path) == Some(&true) {
            return Ok(());
        }
        self.record(format!("mkdir {} {mode:o}", path.display()))?;
        self.paths.insert(path.to_owned(), true);
        Ok(())
    }

    fn touch(&mut self, path: &Path) -> io::Result<()> {
        if self.paths.contains_key(path) {
            return Ok(());
        }
        self.record(format!("touch {}", path.display()))?;
        self.paths.insert(path.to_owned(), false);
        Ok(())
    }

    fn pin(&mut self, root: &Path, path: &Path) -> io::Result<super::Pinned> {
        super::inroot::under_root(root, path)?;
        if !self.pins {
            return Ok(super::Pinned::plain(path));
        }
        let n = self.calls.iter().filter(|c| c.starts_with("pin ")).count() + 3;
        let fd = format!("/proc/self/fd/{n}");
        self.record(format!("pin {} -> {fd}", path.display()))?;
        Ok(super::Pinned::plain(Path::new(&fd)))
    }

    fn probe(&mut self, path: &Path) -> Option<bool> {
        self.paths.get(path).copied()
    }

    fn mount_flags(&mut self, _path: &Path) -> u64 {
        0
    }

    fn read_link(&mut self, path: &Path) -> Option<String> {
        self.links.get(path).cloned()
    }

    fn write_file(&mut self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.record(format!("write {} {}", path.display(), String::from_utf8_lossy(data)))
    }

    fn symlink(&mut self, target: &str, link: &Path) -> io::Result<()> {
        self.record(format!("symlink {} -> {target}", link.display()))
    }

    fn mknod(
        &mut self,
        path: &Path,
        kind: DevKind,
        mode: u32,
        major: u64,
        minor: u64,
    ) -> io::Result<()> {
        let k = match kind {
            DevKind::Char => 'c',
            DevKind::Block => 'b',
            DevKind::Fifo => 'p',
        };
        self.record(format!("mknod {} {k} {major}:{minor} {mode:o}", path.display()))
    }

    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        self.record(format!("chown {} {uid}:{gid}", path.display()))
    }

    fn chdir(&mut self, path: &Path) -> io::Result<()> {
        self.last_chdir = Some(path.to_owned());
        self.record(format!("chdir {}", path.display()))
    }

    fn getcwd(&mut self) -> io::Result<PathBuf> {
        let cwd = match &self.cwd {
            Some(c) => c.clone(),
            None => self.last_chdir.as_ref().map_or("/".into(), |p| p.display().to_string()),
        };
        if !cwd.starts_with('/') {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("{cwd:?} is outside")));
        }
        Ok(cwd.into())
    }

    fn open_dir(&mut self, path: &Path) -> io::Result<std::fs::File> {
        self.record(format!("open_dir {}", path.display()))?;
        // Any directory serves: the fake only records which one was asked for.
        std::fs::File::open(std::env::temp_dir())
    }

    fn fchdir(&mut self, _dir: &std::fs::File) -> io::Result<()> {
        self.record("fchdir".to_owned())
    }

    fn pivot_root(&mut self, new_root: &Path, put_old: &Path) -> io::Result<()> {
        self.record(format!("pivot_root {} {}", new_root.display(), put_old.display()))
    }

    fn chroot(&mut self, path: &Path) -> io::Result<()> {
        self.record(format!("chroot {}", path.display()))
    }

    fn sethostname(&mut self, name: &str) -> io::Result<()> {
        self.record(format!("sethostname {name}"))
    }

    fn setns(&mut self, path: &Path, nstype: i32) -> io::Result<()> {
        self.record(format!("setns {} {nstype:#x}", path.display()))
    }

    fn setrlimit(&mut self, resource: u32, soft: u64, hard: u64) -> io::Result<()> {
        self.record(format!("setrlimit {resource} {soft} {hard}"))
    }

    fn set_ids(&mut self, uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
        self.record(format!("set_ids {uid}:{gid} groups {groups:?}"))
    }

    fn drop_bounding(&mut self, keep: u64) -> io::Result<()> {
        self.record(format!("drop_bounding keep={keep:#x}"))
    }

    fn set_caps(&mut self, c: &CapSets) -> io::Result<()> {
        self.record(format!(
            "set_caps eff={:#x} prm={:#x} inh={:#x} amb={:#x}",
            c.effective, c.permitted, c.inheritable, c.ambient
        ))
    }

    fn no_new_privs(&mut self) -> io::Result<()> {
        self.record("no_new_privs".into())
    }

    fn seccomp(&mut self, prog: &[crate::seccomp::Insn]) -> io::Result<()> {
        self.record(format!("seccomp {} insns", prog.len()))
    }

    fn run_hooks(
        &mut self,
        phase: &'static str,
        hooks: &[crate::hooks::Hook],
        _state: &[u8],
    ) -> io::Result<()> {
        let paths: Vec<&str> = hooks.iter().map(|h| h.path.as_str()).collect();
        self.record(format!("hooks {phase} {}", paths.join(" ")))
    }

    fn sync(&mut self) {
        self.calls.push("sync".into());
    }

    fn kill(&mut self, pid: i32, sig: i32) -> io::Result<()> {
        self.record(format!("kill {pid} {sig}"))
    }

    fn dm_ioctl(&mut self, request: u32, buf: &mut [u8]) -> io::Result<()> {
        // The kernel's answer to DM_DEV_CREATE: dev stays 0, so the node is /dev/dm-0.
        self.record(crate::dm::describe(request, buf))
    }
}
