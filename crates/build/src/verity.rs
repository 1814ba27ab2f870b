//! `--verity`: a dm-verity hash tree appended to the root image of `kernel+squashfs` and
//! `kernel+erofs`, or written to a partition of its own beside the root partition of the EFI
//! disks built with `--root` (crate::root_partition), and the command-line words stage 1 sets
//! the `verity` target up from.
//!
//! Layout of `NAME-squashfs.img` / `NAME-erofs.img` with `--verity`: the filesystem (its writers
//! pad it to 4 KiB, so its size is `data_blocks` × 4096), then veritysetup's hash area at that
//! offset: the superblock's 4 KiB block, then the tree (crates/formats' `write_verity_tree`). One
//! file is both the data and the hash device: `veritysetup verify IMG IMG ROOTHASH
//! --hash-offset=BYTES` checks it. The salt is SHA-256 of the filesystem image.
//!
//! The data is read twice from the page cache right after it is written: once for the salt, once
//! for the tree (the filesystem writers seek back to write their superblocks last, so a
//! hash of what they write is not a hash of the image).

use crate::format::Format;
use baleen_formats::{content_salt, write_verity_tree, VerityError, VerityTree, VERITY_BLOCK};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

/// The kernel command-line words of a verity root; crates/init's stage 1 reads the same names.
pub const ROOTHASH: &str = "roothash";
pub const DATA_BLOCKS: &str = "baleen.verity_data_blocks";
pub const SALT: &str = "baleen.verity_salt";
/// The hash device, when it is not the data device (`PARTUUID=…` of the root-verity partition).
pub const HASH_DEVICE: &str = "baleen.verity_hash";

/// Whether `--verity` applies to `f`, in a build with `--root` (`root`) or without.
pub fn applies_to(f: Format, root: bool) -> bool {
    matches!(f.family(), crate::format::Family::RootImage(_))
        || (root && crate::root_partition::applies_to(f))
}

#[derive(Debug, thiserror::Error)]
pub enum VerityFormatsError {
    #[error(
        "--verity protects a separate root filesystem: kernel+squashfs and kernel+erofs write \
         one, and so do the EFI disk formats ({disks}) given --root squashfs|erofs; not {formats}",
        disks = crate::root_partition::names()
    )]
    Unsupported { formats: String },
}

/// An error naming the formats of the build that `--verity` cannot apply to; `root`: the
/// build has `--root`.
pub fn check_formats(formats: &[Format], root: bool) -> Result<(), VerityFormatsError> {
    let other: Vec<&str> =
        formats.iter().filter(|f| !applies_to(**f, root)).map(|f| f.name()).collect();
    if other.is_empty() {
        return Ok(());
    }
    Err(VerityFormatsError::Unsupported { formats: other.join(", ") })
}

/// The words `-cmdline` gets: the root hash, and the data size and salt the table needs (the
/// hash area starts at `data_blocks` × 4096 in the same device, the tree one block later).
pub fn cmdline_words(tree: &VerityTree) -> String {
    format!(
        "{ROOTHASH}={} {DATA_BLOCKS}={} {SALT}={}",
        tree.root_hex(),
        tree.layout.data_blocks,
        tree.salt_hex()
    )
}

/// Reads a file from an offset without moving a shared position.
struct ReadAt<'a> {
    file: &'a File,
    at: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// Writes a file from `base` on, positions relative to `base`.
struct WriteAt<'a> {
    file: &'a File,
    base: u64,
    at: u64,
}

impl Write for WriteAt<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write_at(buf, self.base + self.at)?;
        self.at += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for WriteAt<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let to = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.at.checked_add_signed(d),
            SeekFrom::End(_) => None,
        };
        self.at = to.ok_or_else(|| io::Error::other("seek outside the hash area"))?;
        Ok(self.at)
    }
}

/// Appends the hash area of the first `data_len` bytes of `file` at `data_len` rounded up to
/// 4 KiB, and returns the tree.
pub fn append(file: &File, data_len: u64) -> Result<VerityTree, VerityError> {
    let salt = content_salt(ReadAt { file, at: 0 }.take(data_len))?;
    let base = data_len.next_multiple_of(VERITY_BLOCK);
    let out = WriteAt { file, base, at: 0 };
    write_verity_tree(ReadAt { file, at: 0 }.take(data_len), data_len, salt, out)
}

/// Writes the hash area of the first `data_len` bytes of `file` to `hash` from its first byte
/// (superblock, then the tree: the root-verity partition), and returns the tree.
pub fn write_separate(file: &File, data_len: u64, hash: &File) -> Result<VerityTree, VerityError> {
    let salt = content_salt(ReadAt { file, at: 0 }.take(data_len))?;
    let out = WriteAt { file: hash, base: 0, at: 0 };
    write_verity_tree(ReadAt { file, at: 0 }.take(data_len), data_len, salt, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_root_image_formats_take_verity_and_the_error_names_the_others() {
        assert!(check_formats(&[Format::KernelSquashfs, Format::KernelErofs], false).is_ok());
        let e = check_formats(&[Format::KernelErofs, Format::Tar, Format::KernelIso], false)
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.ends_with("not tar, kernel+iso"), "{msg}");
        assert!(msg.contains("kernel+squashfs and kernel+erofs"), "{msg}");
        let e = check_formats(&[Format::RawEfi], false).unwrap_err().to_string();
        assert!(e.contains("given --root squashfs|erofs; not raw-efi"), "{e}");
        assert!(check_formats(&[Format::RawEfi, Format::Qcow2Efi], true).is_ok());
        let e = check_formats(&[Format::RawEfi, Format::Uki], true).unwrap_err().to_string();
        assert!(e.ends_with("not uki"), "a UKI alone has no root partition: {e}");
    }

    #[test]
    fn appended_after_the_data_with_words_for_the_command_line() {
        let mut f = tempfile::tempfile().unwrap();
        let data = vec![5u8; 3 * 4096];
        f.write_all(&data).unwrap();
        let t = append(&f, data.len() as u64).unwrap();
        let len = f.metadata().unwrap().len();
        assert_eq!(len, 3 * 4096 + t.layout.hash_len(), "data, then the hash area");
        let mut head = [0u8; 8];
        f.read_exact_at(&mut head, 3 * 4096).unwrap();
        assert_eq!(&head, b"verity\0\0");
        let words = cmdline_words(&t);
        assert!(words.starts_with(&format!("roothash={} ", t.root_hex())), "{words}");
        assert!(words.contains(" baleen.verity_data_blocks=3 "), "{words}");
        assert_eq!(t.salt, content_salt(&data[..]).unwrap(), "the salt is SHA-256 of the data");
    }
}
