//! Image layers made in memory for tests: a list of entries → tar bytes (optionally gzip or
//! zstd). Names are written raw, so hostile layers (`../x`, `/abs`) can be made too.

use std::io::Write;

/// One entry of a test layer.
#[derive(Debug, Clone)]
pub enum TestEntry {
    File { path: String, data: Vec<u8>, mode: u32 },
    Dir { path: String, mode: u32 },
    Symlink { path: String, target: String },
    HardLink { path: String, target: String },
    Char { path: String, major: u32, minor: u32 },
    Fifo { path: String },
}

pub fn file(path: &str, data: &[u8]) -> TestEntry {
    TestEntry::File { path: path.into(), data: data.to_vec(), mode: 0o644 }
}
pub fn file_mode(path: &str, data: &[u8], mode: u32) -> TestEntry {
    TestEntry::File { path: path.into(), data: data.to_vec(), mode }
}
pub fn dir(path: &str) -> TestEntry {
    TestEntry::Dir { path: path.into(), mode: 0o755 }
}
pub fn symlink(path: &str, target: &str) -> TestEntry {
    TestEntry::Symlink { path: path.into(), target: target.into() }
}
pub fn hardlink(path: &str, target: &str) -> TestEntry {
    TestEntry::HardLink { path: path.into(), target: target.into() }
}
/// A `.wh.` whiteout of `path` (an empty regular file named `dir/.wh.base`).
pub fn whiteout(path: &str) -> TestEntry {
    let (dir, base) = path.rsplit_once('/').map_or(("", path), |(d, b)| (d, b));
    let name = if dir.is_empty() { format!(".wh.{base}") } else { format!("{dir}/.wh.{base}") };
    TestEntry::File { path: name, data: Vec::new(), mode: 0o644 }
}
/// The opaque marker of directory `dir`.
pub fn opaque(dir: &str) -> TestEntry {
    TestEntry::File { path: format!("{dir}/.wh..wh..opq"), data: Vec::new(), mode: 0o644 }
}

/// Fixed mtime of test entries, so layers are byte-stable.
pub const TEST_MTIME: u64 = 1_600_000_000;

/// Builds an uncompressed tar layer. Names up to 100 bytes go into the header verbatim.
pub fn tar_layer(entries: &[TestEntry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(TEST_MTIME);
        h.set_uid(0);
        h.set_gid(0);
        let (path, data): (&str, &[u8]) = match e {
            TestEntry::File { path, data, mode } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                (path, data)
            }
            TestEntry::Dir { path, mode } => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                (path, &[])
            }
            TestEntry::Symlink { path, target } | TestEntry::HardLink { path, target } => {
                let kind = if matches!(e, TestEntry::Symlink { .. }) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                h.set_entry_type(kind);
                h.set_mode(0o777);
                h.set_size(0);
                let raw = &mut h.as_old_mut().linkname;
                raw[..target.len()].copy_from_slice(target.as_bytes());
                (path, &[])
            }
            TestEntry::Char { path, major, minor } => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o666);
                h.set_size(0);
                h.set_device_major(*major).expect("ustar header");
                h.set_device_minor(*minor).expect("ustar header");
                (path, &[])
            }
            TestEntry::Fifo { path } => {
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_mode(0o644);
                h.set_size(0);
                (path, &[])
            }
        };
        if path.len() > 100 {
            // Long names go through the tar crate's GNU long-name extension (no `..` allowed).
            b.append_data(&mut h, path, data).expect("writing to a Vec");
            continue;
        }
        let raw = &mut h.as_old_mut().name;
        raw[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, data).expect("writing to a Vec");
    }
    b.into_inner().expect("writing to a Vec")
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("writing to a Vec");
    enc.finish().expect("writing to a Vec")
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).expect("compressing in memory")
}
