//! Device-mapper's `verity` target for stage 1, set up through the ioctls of
//! `/dev/mapper/control` (`linux/dm-ioctl.h`), as `veritysetup open` would but with no tool in
//! the initrd: DM_DEV_CREATE names a device, DM_TABLE_LOAD gives it one read-only `verity`
//! target, DM_DEV_SUSPEND without the suspend flag makes that table live. The device node is
//! devtmpfs's `/dev/dm-N` (no udev makes `/dev/mapper/NAME`). The ioctls go through
//! [`crate::sys::Sys::dm_ioctl`], so the recording fake shows their order and contents
//! ([`describe`]).
//!
//! The root hash, data size and salt come from the kernel command line that `baleen build
//! --verity` wrote (`roothash=`, `baleen.verity_data_blocks=`, `baleen.verity_salt=`); the hash
//! tree lies in the same device right after the data (crates/build's `verity` module), or, with
//! `baleen.verity_hash=DEVICE` (the EFI disks' `--root`), at the start of that separate device
//! (its own partition). Nothing is read from the on-disk superblock, which the root hash does
//! not cover.
//!
//! Non-goals: other targets, removing devices, signed root hashes, FEC, `/dev/mapper` names.

/// The data and hash block size `baleen build --verity` writes.
pub const BLOCK: u64 = 4096;
/// The mapped device's name.
pub const NAME: &str = "baleen-root";

const DM_NAME_LEN: usize = 128;
/// `sizeof(struct dm_ioctl)` and `sizeof(struct dm_target_spec)`.
pub const IOCTL_SIZE: usize = 312;
const SPEC_SIZE: usize = 40;
pub const READONLY_FLAG: u32 = 1;

/// `_IOWR(0xfd, nr, struct dm_ioctl)`.
const fn iowr(nr: u32) -> u32 {
    (3 << 30) | ((IOCTL_SIZE as u32) << 16) | (0xfd << 8) | nr
}
pub const DEV_CREATE: u32 = iowr(3);
pub const DEV_SUSPEND: u32 = iowr(6);
pub const TABLE_LOAD: u32 = iowr(9);

/// What the kernel command line says about a verity root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityArgs {
    pub root_hash: String,
    pub data_blocks: u64,
    pub salt: String,
    /// `baleen.verity_hash=`: the hash device (`PARTUUID=…` or a path) when it is not the data
    /// device.
    pub hash_device: Option<String>,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The verity words of `cmdline` (the last of each wins): `None` without `roothash=`, an error
/// when it is there but the rest is missing or malformed.
pub fn verity_args(cmdline: &str) -> Result<Option<VerityArgs>, String> {
    let mut root = None;
    let mut blocks = None;
    let mut salt = None;
    let mut hash_device = None;
    for w in cmdline.split_whitespace() {
        if let Some(v) = w.strip_prefix("roothash=") {
            root = Some(v);
        } else if let Some(v) = w.strip_prefix("baleen.verity_data_blocks=") {
            blocks = Some(v);
        } else if let Some(v) = w.strip_prefix("baleen.verity_salt=") {
            salt = Some(v);
        } else if let Some(v) = w.strip_prefix("baleen.verity_hash=") {
            hash_device = Some(v).filter(|v| !v.is_empty()).map(str::to_owned);
        }
    }
    let Some(root) = root else { return Ok(None) };
    if !is_hex(root, 64) {
        return Err(format!("roothash={root} is not 64 hex digits (a SHA-256)"));
    }
    let blocks = blocks
        .ok_or("roothash= without baleen.verity_data_blocks=")?
        .parse::<u64>()
        .ok()
        .filter(|&n| n > 0 && n.checked_mul(BLOCK).is_some())
        .ok_or("baleen.verity_data_blocks= is not a positive block count")?;
    let salt = salt.ok_or("roothash= without baleen.verity_salt=")?;
    if !is_hex(salt, 64) {
        return Err(format!("baleen.verity_salt={salt} is not 64 hex digits"));
    }
    Ok(Some(VerityArgs {
        root_hash: root.to_owned(),
        data_blocks: blocks,
        salt: salt.to_owned(),
        hash_device,
    }))
}

impl VerityArgs {
    /// 512-byte sectors of the mapped device.
    pub fn sectors(&self) -> u64 {
        self.data_blocks * (BLOCK / 512)
    }

    /// What stage 1 puts before an error reading or mounting the mapped root `dev`: with verity,
    /// a read error is a block that does not match the root hash.
    pub fn blame(&self, dev: &str) -> String {
        format!("verity: {dev} does not match roothash={} (or cannot be read): ", self.root_hash)
    }

    /// The `verity` target's parameters over data device `dev`. With `hash` the hash area is
    /// that device from its start: superblock in block 0, tree from block 1. Without, `dev` is
    /// both: the superblock is block `data_blocks`, the tree starts one block later.
    pub fn table(&self, dev: &str, hash: Option<&str>) -> String {
        let (hash_dev, hash_start) = match hash {
            Some(h) => (h, 1),
            None => (dev, self.data_blocks + 1),
        };
        format!(
            "1 {dev} {hash_dev} {BLOCK} {BLOCK} {} {hash_start} sha256 {} {}",
            self.data_blocks, self.root_hash, self.salt
        )
    }
}

/// A `struct dm_ioctl` for device `name` with `flags`, followed (for DM_TABLE_LOAD) by one
/// `struct dm_target_spec` of `len` sectors from 0 and its NUL-terminated parameters.
pub fn ioctl_buffer(name: &str, flags: u32, target: Option<(u64, &str, &str)>) -> Vec<u8> {
    let mut buf = vec![0u8; IOCTL_SIZE];
    if let Some((len, kind, params)) = target {
        let next = (SPEC_SIZE + params.len() + 1).next_multiple_of(8);
        let mut spec = vec![0u8; next];
        spec[8..16].copy_from_slice(&len.to_ne_bytes());
        spec[20..24].copy_from_slice(&(next as u32).to_ne_bytes());
        let k = kind.as_bytes();
        spec[24..24 + k.len().min(15)].copy_from_slice(&k[..k.len().min(15)]);
        spec[SPEC_SIZE..SPEC_SIZE + params.len()].copy_from_slice(params.as_bytes());
        buf.extend_from_slice(&spec);
    }
    let put =
        |buf: &mut Vec<u8>, at: usize, v: u32| buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    // Interface version 4.0.0: the kernel accepts any 4.x caller.
    put(&mut buf, 0, 4);
    let size = buf.len() as u32;
    put(&mut buf, 12, size); // data_size
    put(&mut buf, 16, IOCTL_SIZE as u32); // data_start
    put(&mut buf, 20, u32::from(target.is_some())); // target_count
    put(&mut buf, 28, flags);
    let n = name.as_bytes();
    let n = &n[..n.len().min(DM_NAME_LEN - 1)];
    buf[48..48 + n.len()].copy_from_slice(n);
    buf
}

/// The minor number in a `dev` the kernel returned (`huge_encode_dev`).
pub fn minor(dev: u64) -> u64 {
    (dev & 0xff) | ((dev >> 12) & !0xff)
}

/// One line for an ioctl buffer, as the recording fake writes it:
/// `dm CMD NAME flags=F [TARGET START+LEN PARAMS]`.
pub fn describe(request: u32, buf: &[u8]) -> String {
    let cmd = match request {
        DEV_CREATE => "DEV_CREATE",
        TABLE_LOAD => "TABLE_LOAD",
        DEV_SUSPEND => "DEV_SUSPEND",
        _ => "?",
    };
    let text = |b: &[u8]| {
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        String::from_utf8_lossy(&b[..end]).into_owned()
    };
    let word =
        |at: usize| buf.get(at..at + 4).map_or(0, |w| u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    let name = buf.get(48..48 + DM_NAME_LEN).map(text).unwrap_or_default();
    let mut line = format!("dm {cmd} {name} flags={}", word(28));
    if word(20) == 1 {
        if let Some(spec) = buf.get(IOCTL_SIZE..) {
            let len = spec.get(8..16).map_or(0, |w| {
                u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]])
            });
            let kind = spec.get(24..SPEC_SIZE).map(text).unwrap_or_default();
            let params = spec.get(SPEC_SIZE..).map(text).unwrap_or_default();
            line.push_str(&format!(" {kind} 0+{len} {params}"));
        }
    }
    line
}

/// A device-mapper ioctl of [`open_verity`] that failed; the kernel's answer is the source.
#[derive(Debug, thiserror::Error)]
pub enum DmError {
    #[error("DM_DEV_CREATE {NAME} on /dev/mapper/control (is dm_mod loaded?)")]
    Create { source: std::io::Error },
    #[error("DM_TABLE_LOAD {NAME} (verity {table})")]
    Load { table: String, source: std::io::Error },
    #[error("DM_DEV_SUSPEND (resume) {NAME}")]
    Resume { source: std::io::Error },
}

/// Maps `dev` through a read-only `verity` target, its tree in `hash` (a device node) or else
/// after the data, and returns the mapped node (`/dev/dm-N`). The error names the step and
/// the table.
pub fn open_verity(
    sys: &mut dyn crate::sys::Sys,
    dev: &str,
    hash: Option<&str>,
    args: &VerityArgs,
) -> Result<String, DmError> {
    let mut create = ioctl_buffer(NAME, 0, None);
    sys.dm_ioctl(DEV_CREATE, &mut create).map_err(|source| DmError::Create { source })?;
    let mut d = [0u8; 8];
    d.copy_from_slice(&create[40..48]);
    let node = format!("/dev/dm-{}", minor(u64::from_ne_bytes(d)));
    let table = args.table(dev, hash);
    let mut load = ioctl_buffer(NAME, READONLY_FLAG, Some((args.sectors(), "verity", &table)));
    if let Err(source) = sys.dm_ioctl(TABLE_LOAD, &mut load) {
        return Err(DmError::Load { table, source });
    }
    let mut resume = ioctl_buffer(NAME, 0, None);
    sys.dm_ioctl(DEV_SUSPEND, &mut resume).map_err(|source| DmError::Resume { source })?;
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "ab00000000000000000000000000000000000000000000000000000000000001";

    #[test]
    fn verity_words_from_the_command_line() {
        let line = format!(
            "console=ttyS0 roothash={H} baleen.verity_data_blocks=300 baleen.verity_salt={H}"
        );
        let a = verity_args(&line).unwrap().unwrap();
        assert_eq!((a.data_blocks, a.sectors()), (300, 2400));
        assert_eq!(
            a.table("/dev/sda", None),
            format!("1 /dev/sda /dev/sda 4096 4096 300 301 sha256 {H} {H}"),
            "the tree starts one block after the superblock at the data's end"
        );
        assert_eq!(a.hash_device, None);
        assert_eq!(
            a.table("/dev/sda2", Some("/dev/sda3")),
            format!("1 /dev/sda2 /dev/sda3 4096 4096 300 1 sha256 {H} {H}"),
            "a separate hash device: superblock in its block 0, the tree from block 1"
        );
        let sep = verity_args(&format!("{line} baleen.verity_hash=PARTUUID=ab-cd")).unwrap();
        assert_eq!(sep.unwrap().hash_device.as_deref(), Some("PARTUUID=ab-cd"));
        let blame = a.blame("/dev/sda");
        assert!(blame.starts_with("verity: /dev/sda does not match roothash=ab0"), "{blame}");
        assert_eq!(verity_args("root=/dev/sda").unwrap(), None, "no verity without roothash=");
        let e = verity_args(&format!("roothash={H}")).unwrap_err();
        assert!(e.contains("baleen.verity_data_blocks"), "{e}");
        let e = verity_args("roothash=xyz baleen.verity_data_blocks=1").unwrap_err();
        assert!(e.contains("roothash=xyz"), "{e}");
        let bad = format!("roothash={H} baleen.verity_data_blocks=0 baleen.verity_salt={H}");
        assert!(verity_args(&bad).is_err(), "zero blocks");
    }

    #[test]
    fn ioctl_numbers_and_buffer_layout_match_dm_ioctl_h() {
        assert_eq!(DEV_CREATE, 0xc138_fd03);
        assert_eq!(DEV_SUSPEND, 0xc138_fd06);
        assert_eq!(TABLE_LOAD, 0xc138_fd09);
        let plain = ioctl_buffer("baleen-root", 0, None);
        assert_eq!(plain.len(), IOCTL_SIZE);
        assert_eq!(plain[0..4], 4u32.to_ne_bytes(), "version 4");
        assert_eq!(plain[12..16], (IOCTL_SIZE as u32).to_ne_bytes(), "data_size");
        assert_eq!(&plain[48..59], b"baleen-root");
        let b = ioctl_buffer("r", READONLY_FLAG, Some((2400, "verity", "1 a b")));
        assert_eq!(b.len(), IOCTL_SIZE + 48, "40-byte spec + params + NUL, 8-aligned");
        assert_eq!(b[12..16], (b.len() as u32).to_ne_bytes());
        assert_eq!(b[20..24], 1u32.to_ne_bytes(), "one target");
        assert_eq!(b[28..32], READONLY_FLAG.to_ne_bytes());
        let spec = &b[IOCTL_SIZE..];
        assert_eq!(spec[8..16], 2400u64.to_ne_bytes(), "length in sectors");
        assert_eq!(&spec[24..30], b"verity");
        assert_eq!(&spec[40..46], b"1 a b\0");
    }

    #[test]
    fn verity_is_created_loaded_read_only_then_resumed() {
        use crate::sys::fake::Fake;
        let line = format!("roothash={H} baleen.verity_data_blocks=300 baleen.verity_salt={H}");
        let args = verity_args(&line).unwrap().unwrap();
        let mut f = Fake::new();
        assert_eq!(open_verity(&mut f, "/dev/sda", None, &args).unwrap(), "/dev/dm-0");
        assert_eq!(
            f.calls,
            [
                "dm DEV_CREATE baleen-root flags=0".to_owned(),
                format!(
                    "dm TABLE_LOAD baleen-root flags=1 verity 0+2400 \
                     1 /dev/sda /dev/sda 4096 4096 300 301 sha256 {H} {H}"
                ),
                "dm DEV_SUSPEND baleen-root flags=0".to_owned(),
            ]
        );
        let mut f = Fake::new();
        f.fail.push("dm TABLE_LOAD".into());
        let e = open_verity(&mut f, "/dev/sda", None, &args).unwrap_err().to_string();
        assert!(e.starts_with("DM_TABLE_LOAD baleen-root (verity 1 /dev/sda"), "{e}");
        assert_eq!(f.matching("dm DEV_SUSPEND").len(), 0, "no resume without a table");
    }

    #[test]
    fn minor_from_the_encoded_dev() {
        // huge_encode_dev(MKDEV(254, 0)) and (254, 0x1234).
        assert_eq!(minor(254 << 8), 0);
        assert_eq!(minor((254 << 8) | 0x34 | (0x1200 << 12)), 0x1234);
    }
}
