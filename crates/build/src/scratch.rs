//! Anonymous scratch files for a build's large intermediates: the kernel and initrd read back by
//! the disk formats, the UKI, raw disks before conversion, spilled modules.
//!
//! They go to `$TMPDIR` when it is set, else to `/var/tmp`, else the system's temporary
//! directory. Not `/tmp` first: it is often a RAM-backed tmpfs (Debian's default since trixie),
//! and a big system's initrd, UKI and raw disk come to gigabytes; podman keeps its image copies
//! in `/var/tmp` for the same reason. Each file is unnamed (`O_TMPFILE`, or unlinked at once),
//! so nothing is left behind when a build stops.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// The directory scratch files go to.
pub fn dir() -> PathBuf {
    let from_env = std::env::var_os("TMPDIR").is_some_and(|d| !d.is_empty());
    let var_tmp = Path::new("/var/tmp");
    if !from_env && var_tmp.is_dir() {
        return var_tmp.into();
    }
    std::env::temp_dir() // $TMPDIR, else /tmp
}

/// A new, empty, unnamed scratch file in [`dir`] (the system's temporary directory when
/// `/var/tmp` is chosen but refuses it, as a read-only one would).
pub fn file() -> io::Result<File> {
    let dir = dir();
    let fallback = std::env::temp_dir();
    let made = tempfile::tempfile_in(&dir).or_else(|e| {
        if dir == fallback {
            return Err(e);
        }
        tempfile::tempfile_in(&fallback)
    });
    made.map_err(|e| {
        io::Error::new(e.kind(), format!("creating a scratch file in {}: {e}", dir.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[test]
    fn scratch_files_go_to_tmpdir_else_var_tmp() {
        match std::env::var_os("TMPDIR").filter(|d| !d.is_empty()) {
            Some(t) => assert_eq!(dir(), PathBuf::from(t)),
            None if std::path::Path::new("/var/tmp").is_dir() => {
                assert_eq!(dir(), PathBuf::from("/var/tmp"))
            }
            None => assert_eq!(dir(), std::env::temp_dir()),
        }
        let mut f = file().unwrap();
        f.write_all(b"scratch").unwrap();
        f.rewind().unwrap();
        let mut back = String::new();
        f.read_to_string(&mut back).unwrap();
        assert_eq!(back, "scratch");
    }
}
