//! Output files that appear whole or not at all, and no `.partial` file left behind.
//!
//! Each output is written to a temporary file in its destination directory,
//! `.NAME.XXXXXX.partial`, and renamed over the destination only when the whole build succeeded:
//! a failed or interrupted build leaves the previous good output in place, and no truncated file
//! where it was. The temporary file goes away when the build fails ([`Outputs`] is dropped),
//! when the process is told to stop ([`abandon_all`], which the CLI calls on SIGINT/SIGTERM), and
//! otherwise (kill -9, a crash, a power cut) at the next build into that directory: a `.partial`
//! file is locked (`flock`) by the build writing it from the moment it has that name, so a file
//! whose lock is free belongs to no live build and is removed ([`remove_stale`]). The lock is
//! taken under a `.locking` name and the file renamed to `.partial` only then, so no build can
//! see a live build's file unlocked (a build killed between the two leaves an empty `.locking`
//! file, which is not swept: its lock cannot prove anything).
//!
//! The one piece of process-wide state is the list of pending files that [`abandon_all`] removes
//! (a signal handler cannot reach the `Outputs` on the stack of the thread it interrupted). No
//! signal handler is installed here.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tempfile::{NamedTempFile, TempPath};
use tracing::info;

const PARTIAL: &str = ".partial";
const LOCKING: &str = ".locking";
/// tempfile's random part: six letters and digits.
const RANDOM_LEN: usize = 6;

/// Every pending temporary file of the process, and whether [`abandon_all`] ran.
struct Registry {
    paths: Vec<PathBuf>,
    abandoned: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { paths: Vec::new(), abandoned: false });

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    // A panic while holding it leaves a list that is still right: keep using it.
    REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Removes every pending output of the process and refuses new ones: for a signal handler, just
/// before the process exits. A commit in progress finishes first (it holds the same lock), so
/// each output is either in place or gone. Returns the files removed.
pub fn abandon_all() -> Vec<PathBuf> {
    let mut reg = registry();
    reg.abandoned = true;
    let mut removed = Vec::new();
    for path in reg.paths.drain(..) {
        if std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

fn interrupted() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "the build was interrupted")
}

/// One output being written.
#[derive(Debug)]
struct Pending {
    /// Holds the lock that tells other builds this file is alive.
    file: File,
    /// `.NAME.XXXXXX.partial`, next to `dest`.
    path: PathBuf,
    dest: PathBuf,
    /// Renamed into place: nothing to remove.
    done: bool,
    /// `dest` is a device, a FIFO…: written in place, never renamed over ([`Outputs::create`]).
    direct: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.direct {
            return;
        }
        let mut reg = registry();
        reg.paths.retain(|p| p != &self.path);
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Files being written; committed together by [`Outputs::commit`], discarded on drop.
#[derive(Debug, Default)]
pub struct Outputs {
    pending: Vec<Pending>,
    /// Directories already swept of stale `.partial` files.
    swept: HashSet<PathBuf>,
}

/// A writer for one pending output.
pub type OutputWriter = BufWriter<File>;

impl Outputs {
    /// Starts the output `dest`, returning a writer to its temporary file. Files are created
    /// with mode 0644 (LinuxKit's), whatever the umask. The first output in a directory removes
    /// the `.partial` files there that no live build holds.
    ///
    /// A `dest` that exists and is not a regular file (`/dev/null`, a block device, a FIFO) is
    /// opened and written in place: renaming a temporary file over it would replace a device
    /// node with a regular file (`--o /dev/null` run as root did, after writing the whole
    /// output into the RAM of devtmpfs). Such an output is not atomic; a directory is an error.
    pub fn create(&mut self, dest: &Path) -> io::Result<OutputWriter> {
        if let Some(file) = open_special(dest)? {
            let writer = file.try_clone()?;
            let (path, dest) = (dest.to_path_buf(), dest.to_path_buf());
            self.pending.push(Pending { file, path, dest, done: true, direct: true });
            return Ok(BufWriter::with_capacity(1 << 20, writer));
        }
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir)?;
        if self.swept.insert(dir.to_path_buf()) {
            for path in remove_stale(dir)? {
                info!(path = %path.display(), "removed a partial output of a build that is gone");
            }
        }
        let name = dest.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        let tmp: NamedTempFile = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .rand_bytes(RANDOM_LEN)
            .suffix(LOCKING)
            .tempfile_in(dir)?;
        set_mode_0644(tmp.as_file())?;
        // A new file: nobody else can hold its lock.
        try_lock(tmp.as_file())?;
        let (file, locking) = tmp.into_parts();
        let path = partial_name(&locking);
        let writer = file.try_clone()?;
        let mut reg = registry();
        if reg.abandoned {
            return Err(interrupted());
        }
        persist_noclobber(locking, &path)?;
        reg.paths.push(path.clone());
        drop(reg);
        self.pending.push(Pending {
            file,
            path,
            dest: dest.to_path_buf(),
            done: false,
            direct: false,
        });
        Ok(BufWriter::with_capacity(1 << 20, writer))
    }

    /// Gives up the pending output `dest` (one that turned out empty): its temporary file is
    /// removed and whatever was at `dest` before stays.
    pub fn discard(&mut self, dest: &Path) {
        self.pending.retain(|p| p.dest != dest);
    }

    /// Each pending output's file name and size so far (for `--budget`).
    pub fn sizes(&self) -> io::Result<Vec<(String, u64)>> {
        self.pending
            .iter()
            .map(|p| {
                let name = p.dest.file_name().map_or_else(
                    || p.dest.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                );
                Ok((name, p.file.metadata()?.len()))
            })
            .collect()
    }

    /// Flushes and renames every pending output into place; returns the destinations.
    pub fn commit(mut self) -> io::Result<Vec<PathBuf>> {
        let mut done = Vec::with_capacity(self.pending.len());
        for p in self.pending.iter().filter(|p| !p.direct) {
            p.file.sync_all()?;
        }
        let reg = registry();
        if reg.abandoned {
            return Err(interrupted());
        }
        for p in &mut self.pending {
            if p.direct {
                done.push(p.dest.clone());
                continue;
            }
            std::fs::rename(&p.path, &p.dest)?;
            p.done = true;
            done.push(p.dest.clone());
        }
        drop(reg);
        Ok(done)
    }
}

/// `dest` opened for writing in place when it exists and is no regular file (following a
/// symlink, as writing to it would); `None` for a regular file or nothing (the atomic path).
fn open_special(dest: &Path) -> io::Result<Option<File>> {
    let meta = match std::fs::metadata(dest) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if meta.is_file() {
        return Ok(None);
    }
    if meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            format!("{} is a directory (--dir names the output directory)", dest.display()),
        ));
    }
    std::fs::OpenOptions::new().write(true).open(dest).map(Some)
}

/// Whether the output behind `w` is a regular file: only there may zeros become holes
/// (a block device written in place must get its zeros).
pub fn is_regular(w: &OutputWriter) -> bool {
    w.get_ref().metadata().is_ok_and(|m| m.is_file())
}

/// `.NAME.XXXXXX.locking` → `.NAME.XXXXXX.partial`.
fn partial_name(locking: &Path) -> PathBuf {
    let name = locking.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let stem = name.strip_suffix(LOCKING).unwrap_or(&name);
    locking.with_file_name(format!("{stem}{PARTIAL}"))
}

/// Renames without replacing anything (the random part makes a clash unlikely, not impossible).
fn persist_noclobber(from: TempPath, to: &Path) -> io::Result<()> {
    from.persist_noclobber(to).map_err(|e| e.error)
}

/// Whether `name` is one of our temporary outputs: `.NAME.XXXXXX.partial`.
fn is_partial(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(PARTIAL)) else {
        return false;
    };
    match rest.rsplit_once('.') {
        Some((stem, random)) => {
            !stem.is_empty()
                && random.len() == RANDOM_LEN
                && random.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        None => false,
    }
}

/// Removes the `.NAME.XXXXXX.partial` files in `dir` whose lock is free: their build died
/// (a live build holds the lock until it commits or gives up). Returns the files removed.
pub fn remove_stale(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        if !item.file_name().to_str().is_some_and(is_partial) {
            continue;
        }
        let path = item.path();
        // Gone meanwhile (its build finished), or not ours to open: leave it.
        let Ok(file) = File::open(&path) else { continue };
        if try_lock(&file).is_ok() && std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    Ok(removed)
}

/// An exclusive `flock` on the open file, without waiting: held until every descriptor of this
/// open file is closed (including at process death). `File::try_lock` needs Rust 1.89.
fn try_lock(file: &File) -> io::Result<()> {
    rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .map_err(io::Error::from)
}

fn set_mode_0644(file: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn uncommitted_outputs_leave_the_old_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("img.tar");
        std::fs::write(&dest, b"good").unwrap();
        {
            let mut outs = Outputs::default();
            let mut w = outs.create(&dest).unwrap();
            w.write_all(b"half").unwrap();
            // dropped without commit: a failed build
        }
        assert_eq!(std::fs::read(&dest).unwrap(), b"good");
        assert_eq!(names(dir.path()), ["img.tar"], "the temporary file is removed");
    }

    #[test]
    fn a_discarded_output_is_not_committed() {
        let dir = tempfile::tempdir().unwrap();
        let (kept, empty) = (dir.path().join("x-initrd.img"), dir.path().join("x-kernel"));
        std::fs::write(&empty, b"old kernel").unwrap();
        let mut outs = Outputs::default();
        outs.create(&kept).unwrap().write_all(b"initrd").unwrap();
        drop(outs.create(&empty).unwrap());
        outs.discard(&empty);
        assert_eq!(outs.commit().unwrap(), vec![kept.clone()]);
        assert_eq!(std::fs::read(&empty).unwrap(), b"old kernel");
        assert_eq!(names(dir.path()), ["x-initrd.img", "x-kernel"], "no temporary file left");
    }

    #[test]
    fn committed_outputs_replace_and_are_0644() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x-kernel");
        let mut outs = Outputs::default();
        let mut w = outs.create(&dest).unwrap();
        w.write_all(b"new").unwrap();
        w.flush().unwrap();
        drop(w);
        assert_eq!(outs.commit().unwrap(), vec![dest.clone()]);
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert_eq!(std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777, 0o644);
    }

    /// `--o /dev/null` as root renamed a regular file over the device node (every later
    /// `> /dev/null` then filled a file in RAM). A device or a FIFO is written in place, and
    /// nothing is created beside it.
    #[test]
    fn devices_and_fifos_are_written_in_place_never_renamed_over() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        // A null device of the test's own (making one needs root), never the machine's.
        let null = dir.path().join("null");
        let (dev, mode) = (rustix::fs::makedev(1, 3), rustix::fs::Mode::from_raw_mode(0o666));
        let char_dev = rustix::fs::FileType::CharacterDevice;
        if rustix::fs::mknodat(rustix::fs::CWD, &null, char_dev, mode, dev).is_ok() {
            let mut outs = Outputs::default();
            let mut w = outs.create(&null).unwrap();
            assert!(!is_regular(&w));
            w.write_all(&[0u8; 70_000]).unwrap();
            w.flush().unwrap();
            drop(w);
            assert_eq!(outs.commit().unwrap(), std::slice::from_ref(&null));
            assert!(std::fs::metadata(&null).unwrap().file_type().is_char_device());
            assert_eq!(names(dir.path()), ["null"], "a file was left beside the device");
            std::fs::remove_file(&null).unwrap();
        }

        let fifo = dir.path().join("out.fifo");
        let reader = baleen_testkit::fifo_reader(&fifo);
        let mut outs = Outputs::default();
        let mut w = outs.create(&fifo).unwrap();
        w.write_all(b"streamed").unwrap();
        w.flush().unwrap();
        drop(w);
        outs.commit().unwrap();
        assert_eq!(reader.join().unwrap(), b"streamed");
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
        assert_eq!(names(dir.path()), ["out.fifo"]);

        // A directory is a clear error, not a rename onto it.
        let e = Outputs::default().create(dir.path()).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
    }

    #[test]
    fn partial_names_are_recognised_exactly() {
        assert!(is_partial(".sys.tar.Ab12Cd.partial"));
        assert!(is_partial(".a.b.c.xxxxxx.partial"));
        assert!(!is_partial("sys.tar.Ab12Cd.partial"), "not hidden");
        assert!(!is_partial(".sys.tar.Ab12.partial"), "not tempfile's random part");
        assert!(!is_partial(".Ab12Cd.partial"));
        assert!(!is_partial(".sys.tar.Ab12Cd.locking"));
    }

    /// Issue 21: an interrupted build left `.NAME.XXXX.partial` files of hundreds of MB in the
    /// output directory forever. A file whose lock is free (what a dead build leaves) is removed
    /// by the next build into the directory; one a live build holds is not.
    #[test]
    fn the_next_build_removes_dead_partials_and_keeps_live_ones() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join(".old.tar.Ab12Cd.partial");
        std::fs::write(&dead, vec![0u8; 4096]).unwrap();
        let mut live = Outputs::default();
        live.create(&dir.path().join("other.tar")).unwrap();
        let live_name = names(dir.path()).into_iter().find(|n| n.starts_with(".other")).unwrap();
        let mut outs = Outputs::default();
        outs.create(&dir.path().join("sys.tar")).unwrap();
        let now = names(dir.path());
        assert!(!now.contains(&".old.tar.Ab12Cd.partial".to_string()), "{now:?}");
        assert!(now.contains(&live_name), "the live build's file is kept: {now:?}");
        assert!(now.iter().any(|n| n.starts_with(".sys.tar.") && n.ends_with(".partial")));
        assert!(!now.iter().any(|n| n.ends_with(LOCKING)), "{now:?}");
        drop((live, outs));
        assert!(names(dir.path()).is_empty());
    }
}
