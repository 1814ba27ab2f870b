//! The BIOS boot pieces of an ISOLINUX ISO, as `genisoimage -b … -no-emul-boot
//! -boot-load-size 4 -boot-info-table` and syslinux's `isohybrid` make them:
//! [`bios_catalog`] (an El Torito catalog with one x86 no-emulation entry),
//! [`patch_boot_info_table`] (the table ISOLINUX reads at offset 8 of itself to find its own
//! sectors), and [`isohybrid_mbr`] (`isohdpfx.bin`'s code, the boot file's LBA, and one active
//! partition covering the image, so that the same file also boots as a disk).
//!
//! Pure functions over bytes: the ISO writer ([`crate::iso::IsoTree::write`]) places them.
//! Non-goals: GPT or EFI entries in the hybrid table (`isohybrid -u`), Mac partition maps.

/// The alignment `isohybrid` pads the image to: one cylinder of its default 64 heads × 32
/// sectors of 512 bytes.
pub const HYBRID_ALIGN: u64 = 64 * 32 * 512;
/// How much of `isohdpfx.bin` is boot code (the rest of the sector is the table we write).
pub const MBR_CODE: usize = 432;

#[derive(Debug, thiserror::Error)]
pub enum IsolinuxError {
    #[error("the hybrid MBR template is {len} bytes; isohdpfx.bin holds at least {MBR_CODE}")]
    ShortTemplate { len: usize },
    #[error("the boot image is {len} bytes; ISOLINUX's boot info table needs at least 64")]
    ShortImage { len: usize },
    #[error(
        "the boot image is {len} bytes; ISOLINUX's boot info table says its length in 32 bits"
    )]
    LargeImage { len: usize },
    #[error(
        "a hybrid ISO of {bytes} bytes is past its MBR partition's 32-bit sector count (2 TiB)"
    )]
    TooLarge { bytes: u64 },
    #[error("the boot file at ISO sector {image_lba} is past the hybrid MBR's 32-bit 512-byte sector (2 TiB)")]
    BootPastMbr { image_lba: u32 },
}

/// An El Torito boot catalog (one 2048-byte sector): a validation entry for platform x86 and a
/// bootable no-emulation default entry loading `load_sectors` 512-byte sectors from `image_lba`
/// at the default segment (0x7c0).
pub fn bios_catalog(image_lba: u32, load_sectors: u16) -> Vec<u8> {
    crate::iso::catalog(crate::iso::PLATFORM_X86, b"", load_sectors, image_lba)
}

/// Writes the boot info table into `image` (the whole boot file) as `-boot-info-table` does:
/// at offset 8 the primary volume descriptor's LBA, the file's LBA, its length, and the 32-bit
/// sum of its little-endian words from offset 64; then 40 zero bytes.
pub fn patch_boot_info_table(
    image: &mut [u8],
    pvd_lba: u32,
    image_lba: u32,
) -> Result<(), IsolinuxError> {
    if image.len() < 64 {
        return Err(IsolinuxError::ShortImage { len: image.len() });
    }
    let sum = image[64..].chunks(4).fold(0u32, |s, w| {
        let mut word = [0u8; 4];
        word[..w.len()].copy_from_slice(w);
        s.wrapping_add(u32::from_le_bytes(word))
    });
    image[8..12].copy_from_slice(&pvd_lba.to_le_bytes());
    image[12..16].copy_from_slice(&image_lba.to_le_bytes());
    let len =
        u32::try_from(image.len()).map_err(|_| IsolinuxError::LargeImage { len: image.len() })?;
    image[16..20].copy_from_slice(&len.to_le_bytes());
    image[20..24].copy_from_slice(&sum.to_le_bytes());
    image[24..64].fill(0);
    Ok(())
}

/// The first 512 bytes of a hybrid image of `total_bytes` (a multiple of [`HYBRID_ALIGN`]),
/// as `isohybrid` writes them with its defaults (entry 1, offset 0, type 0x17, 64 heads, 32
/// sectors): the template's code, at 432 the boot file's LBA in 512-byte sectors, at 440 the
/// disk id, at 446 one active partition from sector 0 to the end of the image, and 0x55aa.
pub fn isohybrid_mbr(
    template: &[u8],
    image_lba: u32,
    total_bytes: u64,
    id: u32,
) -> Result<[u8; 512], IsolinuxError> {
    const HEADS: u64 = 64;
    const SECTORS: u64 = 32;
    if template.len() < MBR_CODE {
        return Err(IsolinuxError::ShortTemplate { len: template.len() });
    }
    let mut m = [0u8; 512];
    m[..MBR_CODE].copy_from_slice(&template[..MBR_CODE]);
    let image_sector = image_lba.checked_mul(4).ok_or(IsolinuxError::BootPastMbr { image_lba })?;
    m[432..436].copy_from_slice(&image_sector.to_le_bytes());
    m[440..444].copy_from_slice(&id.to_le_bytes());
    let cylinders = total_bytes.div_ceil(HEADS * SECTORS * 512).clamp(1, 1024);
    let sectors = u32::try_from(total_bytes / 512)
        .map_err(|_| IsolinuxError::TooLarge { bytes: total_bytes })?;
    let p = &mut m[446..462];
    p[0] = 0x80;
    // Start: CHS 0/0/1.
    p[1] = 0;
    p[2] = 1;
    p[3] = 0;
    p[4] = 0x17;
    // End: last head, last sector of the last cylinder (its top two bits in the sector byte).
    let c = cylinders - 1;
    // Head 63, sector 32, and the cylinder (under 1024) masked into its two bytes.
    #[allow(clippy::cast_possible_truncation)]
    let chs = [(HEADS - 1) as u8, (SECTORS as u8) | (((c & 0x300) >> 2) as u8), (c & 0xff) as u8];
    p[5..8].copy_from_slice(&chs);
    p[8..12].copy_from_slice(&0u32.to_le_bytes());
    p[12..16].copy_from_slice(&sectors.to_le_bytes());
    m[510] = 0x55;
    m[511] = 0xaa;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_validation_entry_sums_to_zero() {
        let c = bios_catalog(40, 4);
        let sum =
            c[..32].chunks(2).fold(0u16, |s, w| s.wrapping_add(u16::from_le_bytes([w[0], w[1]])));
        assert_eq!(sum, 0);
        assert_eq!(c[32], 0x88);
        assert_eq!(u16::from_le_bytes([c[38], c[39]]), 4);
        assert_eq!(u32::from_le_bytes(c[40..44].try_into().unwrap()), 40);
    }

    #[test]
    fn boot_info_table_sums_words_after_offset_64() {
        let mut img = vec![0xffu8; 64];
        img.extend_from_slice(&[1, 0, 0, 0, 2, 0, 0, 0, 3]);
        patch_boot_info_table(&mut img, 16, 33).unwrap();
        assert_eq!(&img[8..24], &[16, 0, 0, 0, 33, 0, 0, 0, 73, 0, 0, 0, 6, 0, 0, 0]);
        assert!(img[24..64].iter().all(|b| *b == 0));
        assert!(patch_boot_info_table(&mut [0u8; 10], 16, 1).is_err());
    }

    #[test]
    fn hybrid_mbr_covers_the_image() {
        let tpl = vec![0xaau8; 512];
        let m = isohybrid_mbr(&tpl, 35, 3 * HYBRID_ALIGN, 0x1234_5678).unwrap();
        assert_eq!(&m[..432], &tpl[..432]);
        assert_eq!(u32::from_le_bytes(m[432..436].try_into().unwrap()), 140);
        assert_eq!(&m[436..440], &[0; 4]);
        assert_eq!(u32::from_le_bytes(m[440..444].try_into().unwrap()), 0x1234_5678);
        assert_eq!(&m[446..454], &[0x80, 0, 1, 0, 0x17, 63, 32, 2]);
        assert_eq!(u32::from_le_bytes(m[458..462].try_into().unwrap()), 3 * 2048);
        assert_eq!(&m[462..510], &[0; 48]);
        assert_eq!(&m[510..], &[0x55, 0xaa]);
        assert!(isohybrid_mbr(&[0; 100], 1, HYBRID_ALIGN, 0).is_err());
    }

    /// Issue 23: the partition's sector count was `(total_bytes / 512) as u32` and the boot
    /// file's sector `image_lba.wrapping_mul(4)`, so a hybrid ISO of 2 TiB or more got an MBR
    /// that wrapped both (a 2 TiB image claimed a 0-sector partition).
    #[test]
    fn a_hybrid_iso_past_2_tib_is_refused_not_wrapped() {
        let tpl = vec![0u8; 512];
        let big = (1u64 << 32) * 512;
        let err = isohybrid_mbr(&tpl, 35, big, 0).unwrap_err();
        assert!(matches!(err, IsolinuxError::TooLarge { bytes } if bytes == big), "{err}");
        let late = 1u32 << 30;
        let err = isohybrid_mbr(&tpl, late, 3 * HYBRID_ALIGN, 0).unwrap_err();
        assert!(matches!(err, IsolinuxError::BootPastMbr { image_lba } if image_lba == late));
        assert!(isohybrid_mbr(&tpl, late - 1, big - HYBRID_ALIGN, 0).is_ok());
    }
}
