//! The kernel section (LinuxKit's `kernelFilter`): from a kernel image keep the entry named
//! `binary` (default `kernel`) as `boot/kernel`, write `boot/cmdline`, expand the entry named
//! `tar` (default `kernel.tar`) into `/`, and keep the entry named `ucode` as `boot/ucode.cpio`.
//! Everything else in the image is ignored.

use crate::entry::{Entry, EntryKind, Mtime, DEFAULT_MTIME, PAX_LOCATION, PAX_SOURCE};
use crate::image::{image_tar, Emit, Image, ImageError};
use crate::layer::for_each_entry;
use crate::limits::{LimitError, Limits};
use std::io::{self, Read};

/// The `kernel:` section of the YAML, minus the image.
#[derive(Debug, Clone, Default)]
pub struct KernelOptions {
    /// Written verbatim to `boot/cmdline` (no newline added).
    pub cmdline: String,
    /// Name of the kernel file in the image; empty means `kernel`.
    pub binary: String,
    /// Name of the modules tar; `None` means `kernel.tar`, `Some("none")`/`Some("")` means none.
    pub tar: Option<String>,
    /// Name of the microcode cpio; `None` or empty means none.
    pub ucode: Option<String>,
    /// `--decompress-kernel`: gunzip the kernel, or the gzip payload of a bzImage.
    pub decompress: bool,
}

impl KernelOptions {
    fn names(&self) -> (String, String, String) {
        let binary =
            if self.binary.is_empty() { "kernel".to_string() } else { self.binary.clone() };
        let tar = match self.tar.as_deref() {
            None => "kernel.tar".to_string(),
            Some("none") => String::new(),
            Some(t) => t.to_string(),
        };
        (binary, tar, self.ucode.clone().unwrap_or_default())
    }
}

struct State {
    found_kernel: bool,
    found_tar: bool,
    found_ucode: bool,
}

pub(crate) fn kernel_section(
    image: Image,
    opts: &KernelOptions,
    limits: Limits,
    emit: &mut Emit<'_>,
) -> Result<(), ImageError> {
    let (binary, tar_name, ucode) = opts.names();
    let reference = image.reference.clone();
    let mut st = State { found_kernel: false, found_tar: false, found_ucode: false };
    let mut filter = |entry: &Entry, data: &mut dyn Read| -> Result<(), ImageError> {
        let origin: Vec<(String, String)> = entry.pax.clone();
        let boot = |path: &str, kind: EntryKind, mode: u32| {
            let mut e = Entry::new(path, kind, mode);
            e.pax = origin.clone();
            e
        };
        if entry.path == binary {
            if st.found_kernel {
                return Err(ImageError::Other(format!("found more than one kernel {binary:?}")));
            }
            // LinuxKit would write an empty boot/kernel for a link; say what to name instead.
            match &entry.kind {
                EntryKind::File { .. } => {}
                EntryKind::Symlink { target } | EntryKind::HardLink { target } => {
                    return Err(ImageError::Other(format!(
                        "kernel {binary:?} is a link to {target:?}: name the file itself with `kernel.binary`"
                    )))
                }
                other => return Err(ImageError::Other(format!("kernel {binary:?} is not a regular file ({other:?})"))),
            }
            st.found_kernel = true;
            if !st.found_ucode {
                emit(&boot("boot", EntryKind::Dir, 0o755), &mut io::empty())?;
            }
            let cmdline = opts.cmdline.as_bytes();
            emit(
                &boot("boot/cmdline", EntryKind::File { size: cmdline.len() as u64 }, 0o644),
                &mut &cmdline[..],
            )?;
            if opts.decompress {
                let mut raw = Vec::new();
                data.read_to_end(&mut raw)
                    .map_err(|e| ImageError::Other(format!("reading kernel {binary:?}: {e}")))?;
                let payload = gzip_payload(&raw).map_err(|e| {
                    ImageError::Other(format!("decompressing kernel {binary:?}: {e}"))
                })?;
                let size = gunzipped_size(payload, limits).map_err(|e| match e {
                    Gunzip::Limit(source) => {
                        ImageError::Limit { what: format!("kernel {binary:?}"), source }
                    }
                    Gunzip::Io(e) => {
                        ImageError::Other(format!("decompressing kernel {binary:?}: gunzip: {e}"))
                    }
                })?;
                // Streamed a second time rather than held: a kernel may be as large as the
                // limits allow, and memory stays flat.
                let k = boot("boot/kernel", EntryKind::File { size }, entry.mode);
                return emit(&k, &mut flate2::read::GzDecoder::new(payload));
            }
            let k = boot("boot/kernel", EntryKind::File { size: entry.size() }, entry.mode);
            return emit(&k, data);
        }
        if !tar_name.is_empty() && entry.path == tar_name {
            st.found_tar = true;
            let id = format!("{tar_name} in {reference}");
            return for_each_entry(
                &id,
                data,
                |mut inner: Entry, inner_data| -> Result<(), ImageError> {
                    inner.set_pax(PAX_SOURCE, &reference);
                    inner.set_pax(PAX_LOCATION, "kernel");
                    emit(&inner, inner_data)
                },
            );
        }
        if !ucode.is_empty() && entry.path == ucode {
            st.found_ucode = true;
            if !st.found_kernel {
                emit(&boot("boot", EntryKind::Dir, 0o755), &mut io::empty())?;
            }
            let mut u = boot("boot/ucode.cpio", EntryKind::File { size: entry.size() }, entry.mode);
            u.mtime = Mtime::secs(DEFAULT_MTIME);
            return emit(&u, data);
        }
        Ok(())
    };
    image_tar("kernel", Some(image), "", None, limits.expansion, &mut filter)?;
    if !st.found_kernel {
        return Err(ImageError::Other(format!(
            "did not find kernel {binary:?} in the kernel image"
        )));
    }
    if !tar_name.is_empty() && !st.found_tar {
        return Err(ImageError::Other(format!(
            "did not find kernel tar {tar_name:?} in the kernel image"
        )));
    }
    Ok(())
}

/// Why a kernel could not be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("unsupported bzImage boot protocol {major}.{minor:02}")]
    Protocol { major: u16, minor: u16 },
    #[error("the bzImage payload runs past the end of the image")]
    PastEnd,
    #[error("unsupported bzImage payload format at offset {offset}")]
    PayloadFormat { offset: u64 },
    #[error("not a gzip kernel nor a bzImage with a gzip payload")]
    NotGzip,
    #[error("gunzip")]
    Gunzip(#[source] io::Error),
    #[error("gunzip")]
    Limit(#[source] LimitError),
}

/// Decompresses a gzip kernel, or the gzip payload of an x86 bzImage (boot protocol ≥ 2.08),
/// within `limits` (see [`gunzipped_size`]).
pub fn decompress_kernel(raw: &[u8], limits: Limits) -> Result<Vec<u8>, KernelError> {
    let payload = gzip_payload(raw)?;
    let size = gunzipped_size(payload, limits).map_err(|e| match e {
        Gunzip::Limit(l) => KernelError::Limit(l),
        Gunzip::Io(e) => KernelError::Gunzip(e),
    })?;
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    flate2::read::GzDecoder::new(payload).read_to_end(&mut out).map_err(KernelError::Gunzip)?;
    Ok(out)
}

enum Gunzip {
    Limit(LimitError),
    Io(io::Error),
}

/// The size `payload` gunzips to, counted without keeping it, and refused as soon as it goes
/// past the layers' bounds: more than `expansion.ratio` times the gzip stream once past the
/// floor (a gzip bomb as the kernel), or more than the whole tree may hold.
fn gunzipped_size(payload: &[u8], limits: Limits) -> Result<u64, Gunzip> {
    let compressed = u64::try_from(payload.len()).unwrap_or(u64::MAX);
    let mut gz = flate2::read::GzDecoder::new(payload);
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = match gz.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Gunzip::Io(e)),
        };
        total = total.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        if let Some(b) = limits.expansion {
            if total > b.floor && total > compressed.saturating_mul(b.ratio) {
                let (ratio, floor) = (b.ratio, b.floor);
                return Err(Gunzip::Limit(LimitError::Expands {
                    expanded: total,
                    compressed,
                    ratio,
                    floor,
                }));
            }
        }
        if let Some(limit) = limits.max_tree_bytes.filter(|&m| total > m) {
            return Err(Gunzip::Limit(LimitError::TreeTooLarge { total, limit }));
        }
    }
}

/// The gzip stream of a kernel: the whole image, or the payload of a bzImage.
fn gzip_payload(raw: &[u8]) -> Result<&[u8], KernelError> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let le16 = |o: usize| u16::from_le_bytes([raw[o], raw[o + 1]]);
    let le32 = |o: usize| u32::from_le_bytes([raw[o], raw[o + 1], raw[o + 2], raw[o + 3]]);
    if raw.len() > 0x250 && le16(0x1fe) == 0xaa55 && &raw[0x202..0x206] == b"HdrS" {
        let version = le16(0x206);
        if version < 0x0208 {
            return Err(KernelError::Protocol { major: version >> 8, minor: version & 0xff });
        }
        let setup_sectors = u64::from(raw[0x1f1]);
        let offset = u64::from(le32(0x248)) + (setup_sectors + 1) * 512;
        let len = u64::from(le32(0x24c));
        let end = offset + len;
        let past = |n: u64| usize::try_from(n).ok().filter(|&n| n <= raw.len());
        let (Some(start), Some(end)) = (past(offset), past(end)) else {
            return Err(KernelError::PastEnd);
        };
        let payload = &raw[start..end];
        if payload.starts_with(&[0x1f, 0x8b]) {
            return Ok(payload);
        }
        return Err(KernelError::PayloadFormat { offset });
    }
    Err(KernelError::NotGzip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn bzimage_gzip_payload_is_extracted() {
        let payload = gz(b"vmlinux bytes");
        let mut img = vec![0u8; 1024];
        img[0x1f1] = 1; // one setup sector: the payload offset counts from 2 * 512
        img[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
        img[0x202..0x206].copy_from_slice(b"HdrS");
        img[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        img[0x248..0x24c].copy_from_slice(&0u32.to_le_bytes());
        img[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        img.extend_from_slice(&payload);
        assert_eq!(decompress_kernel(&img, Limits::default()).unwrap(), b"vmlinux bytes");
        img[0x206..0x208].copy_from_slice(&0x0204u16.to_le_bytes());
        assert!(decompress_kernel(&img, Limits::default())
            .unwrap_err()
            .to_string()
            .contains("2.04"));
        assert!(decompress_kernel(b"not a kernel", Limits::default()).is_err());
    }
}
