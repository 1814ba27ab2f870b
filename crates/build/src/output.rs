//! Output files that appear whole or not at all.
//!
//! Each output is written to a temporary file in its destination directory and renamed over the
//! destination only when the whole build succeeded: a failed or interrupted build leaves the
//! previous good output in place, and no truncated file where it was.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// Files being written; committed together by [`Outputs::commit`], discarded on drop.
#[derive(Debug, Default)]
pub struct Outputs {
    pending: Vec<(NamedTempFile, PathBuf)>,
}

/// A writer for one pending output.
pub type OutputWriter = BufWriter<File>;

impl Outputs {
    /// Starts the output `dest`, returning a writer to its temporary file. Files are created
    /// with mode 0644 (LinuxKit's), whatever the umask.
    pub fn create(&mut self, dest: &Path) -> io::Result<OutputWriter> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir)?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!(
                ".{}.",
                dest.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
            ))
            .suffix(".partial")
            .tempfile_in(dir)?;
        set_mode_0644(tmp.as_file())?;
        let file = tmp.reopen()?;
        self.pending.push((tmp, dest.to_path_buf()));
        Ok(BufWriter::with_capacity(1 << 20, file))
    }

    /// Gives up the pending output `dest` (one that turned out empty): its temporary file is
    /// removed and whatever was at `dest` before stays.
    pub fn discard(&mut self, dest: &Path) {
        self.pending.retain(|(_, d)| d != dest);
    }

    /// Flushes and renames every pending output into place; returns the destinations.
    pub fn commit(self) -> io::Result<Vec<PathBuf>> {
        let mut done = Vec::with_capacity(self.pending.len());
        for (tmp, dest) in self.pending {
            tmp.as_file().sync_all()?;
            tmp.persist(&dest).map_err(|e| e.error)?;
            done.push(dest);
        }
        Ok(done)
    }
}

fn set_mode_0644(file: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "the temporary file is removed");
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
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no temporary file left");
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
}
