//! Finding a partition by its GPT unique GUID (`root=PARTUUID=U`), for stage 1. Kernels from
//! 6.4 on put `PARTUUID=` in a partition's uevent ([`find_in_uevents`]); older ones (Debian
//! 12's 6.1) do not, so stage 1 also reads each disk's primary GPT itself
//! ([`partition_number`]) and maps the entry's number to the partition's device through sysfs.
//!
//! Non-goals: MBR disk signatures (`PARTUUID=SSSSSSSS-PP`), the backup GPT, `PARTLABEL=`.

/// The partition UUID a device name asks for: `PARTUUID=U` → `U`.
pub fn partuuid(spec: &str) -> Option<&str> {
    spec.strip_prefix("PARTUUID=").filter(|u| !u.is_empty())
}

/// The device node of the partition whose uevent (as `/sys/class/block/NAME/uevent` holds
/// it, given with its NAME) carries `PARTUUID=uuid`, compared without case.
pub fn find_in_uevents(uevents: &[(String, String)], uuid: &str) -> Option<String> {
    uevents.iter().find_map(|(name, text)| {
        let mut devname = name.as_str();
        let mut hit = false;
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("PARTUUID=") {
                hit = v.trim().eq_ignore_ascii_case(uuid);
            } else if let Some(v) = line.strip_prefix("DEVNAME=") {
                devname = v.trim();
            }
        }
        hit.then(|| format!("/dev/{devname}"))
    })
}

/// An on-disk GUID as the kernel prints it: lowercase 8-4-4-4-12, the first three fields
/// little-endian.
pub fn guid_string(g: &[u8]) -> Option<String> {
    let g: &[u8; 16] = g.try_into().ok()?;
    let u = [g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6]];
    let h: String = u.iter().chain(&g[8..]).map(|b| format!("{b:02x}")).collect();
    Some(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
}

/// Where a primary GPT's entries are, from its header (the `sector`-byte block after LBA 0):
/// (byte offset, entries, entry size). `None` when `header` is no GPT header.
pub fn entries_at(header: &[u8], sector: u64) -> Option<(u64, u32, u32)> {
    if header.get(..8)? != b"EFI PART" {
        return None;
    }
    let u32_at = |at: usize| Some(u32::from_le_bytes(header.get(at..at + 4)?.try_into().ok()?));
    let lba = u64::from_le_bytes(header.get(72..80)?.try_into().ok()?);
    let (count, size) = (u32_at(80)?, u32_at(84)?);
    if size < 128 || count > 1024 {
        return None;
    }
    Some((lba.checked_mul(sector)?, count, size))
}

/// The 1-based number of the entry in `entries` (`size` bytes each) whose unique GUID is
/// `uuid`, compared without case.
pub fn partition_number(entries: &[u8], size: u32, uuid: &str) -> Option<u32> {
    let size = usize::try_from(size).ok()?;
    entries.chunks_exact(size).enumerate().find_map(|(i, e)| {
        let used = e[..16].iter().any(|&b| b != 0);
        let hit = used && guid_string(&e[16..32]).is_some_and(|g| g.eq_ignore_ascii_case(uuid));
        hit.then(|| u32::try_from(i + 1).ok()).flatten()
    })
}

#[cfg(target_os = "linux")]
pub use real::find;

#[cfg(target_os = "linux")]
mod real {
    use super::*;
    use std::io::{Read, Seek, SeekFrom};
    use std::path::Path;

    /// `(NAME, uevent)` of every block device the kernel knows.
    fn uevents() -> Vec<(String, String)> {
        let Ok(rd) = std::fs::read_dir("/sys/class/block") else { return Vec::new() };
        rd.flatten()
            .map(|e| {
                let text = std::fs::read_to_string(e.path().join("uevent")).unwrap_or_default();
                (e.file_name().to_string_lossy().into_owned(), text)
            })
            .collect()
    }

    fn read_at(f: &mut std::fs::File, at: u64, len: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; len];
        f.seek(SeekFrom::Start(at)).ok()?;
        f.read_exact(&mut buf).ok()?;
        Some(buf)
    }

    /// The partition of whole disk `disk` (a name under `/sys/block`) with unique GUID `uuid`.
    fn in_disk(disk: &str, uuid: &str) -> Option<String> {
        let sys = Path::new("/sys/block").join(disk);
        let sector = std::fs::read_to_string(sys.join("queue/logical_block_size"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(512);
        let mut f = std::fs::File::open(Path::new("/dev").join(disk)).ok()?;
        let header = read_at(&mut f, sector, usize::try_from(sector).ok()?)?;
        let (at, count, size) = entries_at(&header, sector)?;
        let len = usize::try_from(u64::from(count) * u64::from(size)).ok()?;
        let n = partition_number(&read_at(&mut f, at, len)?, size, uuid)?;
        let want = n.to_string();
        std::fs::read_dir(&sys).ok()?.flatten().find_map(|e| {
            let number = std::fs::read_to_string(e.path().join("partition")).ok()?;
            (number.trim() == want).then(|| format!("/dev/{}", e.file_name().to_string_lossy()))
        })
    }

    /// The node of the partition with unique GUID `uuid`: from the uevents when the kernel puts
    /// it there, else from each disk's GPT.
    pub fn find(uuid: &str) -> Option<String> {
        if let Some(node) = find_in_uevents(&uevents(), uuid) {
            return Some(node);
        }
        let rd = std::fs::read_dir("/sys/block").ok()?;
        let mut disks: Vec<String> =
            rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        disks.sort();
        disks.iter().find_map(|d| in_disk(d, uuid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partuuid_names_the_partition_whose_uevent_says_so() {
        let ev = |name: &str, text: &str| (name.to_owned(), text.to_owned());
        let uevents = [
            ev("sda", "MAJOR=8\nMINOR=0\nDEVNAME=sda\nDEVTYPE=disk\n"),
            ev("sda1", "DEVNAME=sda1\nDEVTYPE=partition\nPARTN=1\nPARTUUID=aaaa-01\n"),
            ev("sda2", "DEVNAME=sda2\nPARTN=2\nPARTUUID=4f68bce3-0000-4db1-96e7-fbcaf984b709\n"),
            ev("vdb3", "PARTUUID=cafe\n"),
        ];
        let upper = "4F68BCE3-0000-4DB1-96E7-FBCAF984B709";
        assert_eq!(partuuid(&format!("PARTUUID={upper}")), Some(upper));
        assert_eq!(partuuid("/dev/sda"), None);
        assert_eq!(partuuid("PARTUUID="), None);
        assert_eq!(
            find_in_uevents(&uevents, upper).as_deref(),
            Some("/dev/sda2"),
            "compared without case"
        );
        assert_eq!(find_in_uevents(&uevents, "cafe").as_deref(), Some("/dev/vdb3"));
        assert_eq!(find_in_uevents(&uevents, "aaaa"), None, "a whole UUID, not a prefix");
    }

    /// Regression: Debian 12's 6.1 kernel puts no PARTUUID= in uevents, so a root given as
    /// `PARTUUID=` was never found (found booting `raw-efi --root`); the GPT is read instead.
    #[test]
    fn partition_number_from_the_gpt_entries() {
        let mut header = vec![0u8; 512];
        header[..8].copy_from_slice(b"EFI PART");
        header[72..80].copy_from_slice(&2u64.to_le_bytes());
        header[80..84].copy_from_slice(&128u32.to_le_bytes());
        header[84..88].copy_from_slice(&128u32.to_le_bytes());
        assert_eq!(entries_at(&header, 512), Some((1024, 128, 128)));
        assert_eq!(entries_at(&[0u8; 512], 512), None, "no GPT");
        let mut entries = vec![0u8; 3 * 128];
        // Entry 2: type set, unique GUID 4f68bce3-e8cd-4db1-96e7-fbcaf984b709 on disk.
        entries[128] = 1;
        entries[128 + 16..128 + 32].copy_from_slice(&[
            0xe3, 0xbc, 0x68, 0x4f, 0xcd, 0xe8, 0xb1, 0x4d, 0x96, 0xe7, 0xfb, 0xca, 0xf9, 0x84,
            0xb7, 0x09,
        ]);
        let uuid = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709";
        assert_eq!(guid_string(&entries[144..160]).unwrap(), uuid.to_lowercase());
        assert_eq!(partition_number(&entries, 128, uuid), Some(2));
        entries[128] = 0;
        assert_eq!(partition_number(&entries, 128, uuid), None, "an unused entry never matches");
    }
}
