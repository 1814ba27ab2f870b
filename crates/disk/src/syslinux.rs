//! Installing SYSLINUX on our FAT volumes without running its installer.
//!
//! `syslinux --install` (libinstaller) does three things: it writes `ldlinux.sys` as a file,
//! patches into that file the list of sectors where it lives plus a checksum, and merges its boot
//! sector's code with the volume's own BPB. The FAT writer lays every file out contiguously and
//! can say where a file will land before writing it ([`crate::fat::file_sectors`]), so all three
//! are done here on bytes, before the volume streams out.
//!
//! Key type: [`Syslinux`], the boot sector, `ldlinux.sys` image and matching `ldlinux.c32` taken
//! from Debian's `/usr/bin/syslinux`, which carries them as arrays (`syslinux_bootsect`,
//! `syslinux_ldlinux`, `syslinux_ldlinuxc32`, laid out one after the other by bin2c, each padded
//! to 512 bytes). [`Syslinux::from_installer`] finds them by their signatures and checks them
//! (the boot sector's 55AA and jump, the `\r\nSYSLINUX ` banner, the patch area behind
//! `LDLINUX_MAGIC` and every offset it names, the module's ELF header and length).
//! [`Syslinux::install`] then reproduces libinstaller's `syslinux_patch` for a contiguous file:
//! the first sector's address goes into the boot sector, the rest into the extent list, the two
//! ADV sectors (an empty auxiliary data vector) follow the image, and the dword checksum makes
//! the image sum to `LDLINUX_MAGIC`. The result is byte-identical to what `syslinux --install`
//! writes for the same sectors (checked in the tests).
//!
//! Non-goals: fragmented files, RAID or "stupid" mode, an install sub-directory, EXTLINUX on
//! other file systems.

/// `LDLINUX_MAGIC` (syslxint.h): the patch area's first dword, and the checksum's target.
const LDLINUX_MAGIC: u32 = 0x3eb2_02fe;
const SECTOR: usize = 512;
const SECTOR_U32: u32 = 512;
/// The ADV (auxiliary data vector) magics, syslxint.h.
const ADV_MAGIC1: u32 = 0x5a2d_2fa5;
const ADV_MAGIC2: u32 = 0xa304_1767;
const ADV_MAGIC3: u32 = 0xdd28_bf64;
/// Where the BIOS-loaded `ldlinux.sys` starts in memory: the extent generator splits runs that
/// would load 64 KiB or more at once, measured from there (syslxmod.c).
const LOAD_ADDRESS: u32 = 0x8000;
/// The banner `ldlinux.sys` starts with.
const BANNER: &[u8] = b"\r\nSYSLINUX ";

/// The name of the file SYSLINUX's boot sector loads, and of its core module.
pub const LDLINUX_SYS: &str = "LDLINUX.SYS";
pub const LDLINUX_C32: &str = "LDLINUX.C32";

#[derive(Debug, thiserror::Error)]
pub enum SyslinuxError {
    #[error("no SYSLINUX boot sector followed by ldlinux.sys (\"\\r\\nSYSLINUX \") in the installer binary")]
    NoImage,
    #[error("ldlinux.sys at offset {offset} of the installer: {what}")]
    BadImage { offset: usize, what: String },
    #[error("no ldlinux.c32 (an i386 ELF module) after ldlinux.sys in the installer binary")]
    NoModule,
    #[error("ldlinux.sys needs {needed} extents on disk, its patch area holds {room}")]
    Extents { needed: usize, room: usize },
    #[error("ldlinux.sys is {len} bytes; its header counts its sectors in 16 bits (32 MiB)")]
    TooLarge { len: usize },
}

/// The patch area's offsets into the image and the boot sector, read once.
#[derive(Debug, Clone, Copy)]
struct PatchArea {
    /// Offset of `struct patch_area` in the image.
    at: usize,
    adv_ptrs: usize,
    sector_ptrs: usize,
    sector_ptr_count: usize,
    /// Offsets into the boot sector of the first sector's LBA, low and high dwords.
    sect1_lo: usize,
    sect1_hi: usize,
}

/// SYSLINUX's parts, as its installer carries them.
#[derive(Clone)]
pub struct Syslinux {
    boot_sector: Box<[u8; 512]>,
    /// `ldlinux.sys` without its ADV sectors (a multiple of 512 bytes).
    image: Vec<u8>,
    ldlinux_c32: Vec<u8>,
    patch: PatchArea,
}

impl std::fmt::Debug for Syslinux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syslinux")
            .field("image", &self.image.len())
            .field("ldlinux_c32", &self.ldlinux_c32.len())
            .finish()
    }
}

fn u16_at(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes([b[at], b[at + 1]]) as usize
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// The length of an ELF32 file from its header: section headers come last in the modules
/// SYSLINUX builds.
fn elf32_len(b: &[u8]) -> Option<usize> {
    if b.len() < 52 || &b[..7] != b"\x7fELF\x01\x01\x01" || u16_at(b, 18) != 3 {
        return None; // not a little-endian ELF32 for i386
    }
    let shoff = u32_at(b, 32) as usize;
    let (shentsize, shnum) = (u16_at(b, 46), u16_at(b, 48));
    let len = shoff.checked_add(shentsize * shnum)?;
    (shentsize == 40 && shnum > 0 && len <= b.len()).then_some(len)
}

impl Syslinux {
    /// Finds the boot sector, `ldlinux.sys` and `ldlinux.c32` in the bytes of Debian's
    /// `/usr/bin/syslinux` (or any binary that embeds them the same way), and checks them.
    pub fn from_installer(bin: &[u8]) -> Result<Syslinux, SyslinuxError> {
        let mut last = Err(SyslinuxError::NoImage);
        let mut from = 0;
        while let Some(pos) = find(&bin[from..], BANNER) {
            let start = from + pos;
            from = start + 1;
            if start < SECTOR
                || bin[start - 2..start] != [0x55, 0xaa]
                || bin[start - SECTOR] != 0xeb
            {
                continue;
            }
            last = Self::at(bin, start);
            if last.is_ok() {
                break;
            }
        }
        last
    }

    fn at(bin: &[u8], start: usize) -> Result<Syslinux, SyslinuxError> {
        let bad = |what: &str| SyslinuxError::BadImage { offset: start, what: what.into() };
        let rest = &bin[start..];
        // libinstaller scans the image dword by dword for the magic.
        let at = (0..rest.len().min(64 * 1024) / 4)
            .map(|i| i * 4)
            .find(|&i| u32_at(rest, i) == LDLINUX_MAGIC)
            .ok_or_else(|| bad("no LDLINUX_MAGIC patch area"))?;
        if at + 24 > SECTOR || at + 24 > rest.len() {
            return Err(bad("the patch area is not in the first sector"));
        }
        let epa = u16_at(rest, at + 22);
        if epa + 20 > rest.len() {
            return Err(bad("the extended patch area lies outside the binary"));
        }
        let field = |i: usize| u16_at(rest, epa + 2 * i);
        let patch = PatchArea {
            at,
            adv_ptrs: field(0),
            sector_ptrs: field(5),
            sector_ptr_count: field(6),
            sect1_lo: field(7),
            sect1_hi: field(8),
        };
        for off in [patch.sect1_lo, patch.sect1_hi] {
            if !(90..=506).contains(&off) {
                return Err(bad("the boot sector's sector pointer is outside its code area"));
            }
        }
        // The image ends where the module starts: the first sector boundary that begins an
        // i386 ELF of consistent length (ldlinux.sys itself holds an unaligned ELF inside).
        let (len, module_len) = (1..)
            .map(|n| n * SECTOR)
            .take_while(|&len| len < rest.len())
            .find_map(|len| elf32_len(&rest[len..]).map(|m| (len, m)))
            .ok_or(SyslinuxError::NoModule)?;
        let end_of_ptrs = patch.sector_ptrs + 10 * patch.sector_ptr_count;
        if end_of_ptrs > len || patch.adv_ptrs + 16 > len || epa + 20 > len {
            return Err(bad("a patch-area offset points past the image"));
        }
        let image = rest[..len].to_vec();
        if image[patch.at + 8..patch.at + 20].iter().any(|b| *b != 0) {
            return Err(bad("the patch area is already filled in (an installed copy?)"));
        }
        let mut boot_sector = Box::new([0u8; 512]);
        boot_sector.copy_from_slice(&bin[start - SECTOR..start]);
        Ok(Syslinux {
            boot_sector,
            image,
            ldlinux_c32: rest[len..len + module_len].to_vec(),
            patch,
        })
    }

    /// The length of `ldlinux.sys` as installed: the image and two ADV sectors.
    pub fn ldlinux_sys_len(&self) -> u64 {
        (self.image.len() + 2 * SECTOR) as u64
    }

    /// `ldlinux.c32`, the core module `ldlinux.sys` loads, from the same build.
    pub fn ldlinux_c32(&self) -> &[u8] {
        &self.ldlinux_c32
    }

    /// `ldlinux.sys` patched to live contiguously from `first_sector` (counted from the start
    /// of the FAT volume, as the boot sector counts), and the boot sector whose jump and code
    /// go over the volume's own ([`crate::fat::FatOptions::boot_code`]).
    pub fn install(&self, first_sector: u64) -> Result<(Vec<u8>, Box<[u8; 512]>), SyslinuxError> {
        let p = self.patch;
        let mut image = self.image.clone();
        let mut boot = self.boot_sector.clone();
        let total = self.image.len() / SECTOR + 2; // with the two ADV sectors
        let sectors: Vec<u64> = (first_sector..first_sector + total as u64).collect();
        let sect1 = sectors[0].to_le_bytes();
        boot[p.sect1_lo..p.sect1_lo + 4].copy_from_slice(&sect1[..4]);
        boot[p.sect1_hi..p.sect1_hi + 4].copy_from_slice(&sect1[4..]);
        let too_large = |_| SyslinuxError::TooLarge { len: image.len() };
        let dwords = u32::try_from(image.len() / 4).map_err(too_large)?;
        let image_sectors = u16::try_from(total - 2).map_err(too_large)?;
        image[p.at + 8..p.at + 10].copy_from_slice(&image_sectors.to_le_bytes());
        image[p.at + 10..p.at + 12].copy_from_slice(&2u16.to_le_bytes());
        image[p.at + 12..p.at + 16].copy_from_slice(&dwords.to_le_bytes());

        // Sector 0 is loaded by the boot sector, the last two are the ADVs.
        let extents = extents(&sectors[1..total - 2]);
        if extents.len() > p.sector_ptr_count {
            return Err(SyslinuxError::Extents { needed: extents.len(), room: p.sector_ptr_count });
        }
        image[p.sector_ptrs..p.sector_ptrs + 10 * p.sector_ptr_count].fill(0);
        for (i, (lba, len)) in extents.iter().enumerate() {
            let e = p.sector_ptrs + 10 * i;
            image[e..e + 8].copy_from_slice(&lba.to_le_bytes());
            image[e + 8..e + 10].copy_from_slice(&len.to_le_bytes());
        }
        image[p.adv_ptrs..p.adv_ptrs + 8].copy_from_slice(&sectors[total - 2].to_le_bytes());
        image[p.adv_ptrs + 8..p.adv_ptrs + 16].copy_from_slice(&sectors[total - 1].to_le_bytes());

        // A negative checksum: every dword of the image sums to the magic.
        image[p.at + 16..p.at + 20].fill(0);
        let sum = image.chunks_exact(4).fold(0u32, |s, d| s.wrapping_add(u32_at(d, 0)));
        image[p.at + 16..p.at + 20].copy_from_slice(&LDLINUX_MAGIC.wrapping_sub(sum).to_le_bytes());

        image.extend_from_slice(&empty_adv());
        image.extend_from_slice(&empty_adv());
        Ok((image, boot))
    }
}

/// libinstaller's `generate_extents`: runs of consecutive sectors, each under 64 KiB. (Its
/// 64 KiB-boundary test compares addresses that never straddle one; kept as written so that
/// the extents match the installer's.)
fn extents(sectors: &[u64]) -> Vec<(u64, u16)> {
    let mut out = Vec::new();
    let (mut addr, mut base, mut lba, mut len) = (LOAD_ADDRESS, LOAD_ADDRESS, 0u64, 0u32);
    for &sect in sectors {
        if len > 0 {
            let bytes = (len + 1) * SECTOR_U32;
            if sect == lba + u64::from(len)
                && bytes < 65_536
                && (addr ^ (base + bytes - 1)) & 0xffff_0000 == 0
            {
                len += 1;
                addr += SECTOR_U32;
                continue;
            }
            out.push((lba, extent_len(len)));
        }
        base = addr;
        lba = sect;
        len = 1;
        addr += SECTOR_U32;
    }
    if len > 0 {
        out.push((lba, extent_len(len)));
    }
    out
}

/// An extent's sector count: `extents` keeps each under 64 KiB, 128 sectors.
#[allow(clippy::cast_possible_truncation)]
fn extent_len(len: u32) -> u16 {
    len as u16
}

/// An ADV sector with no data: head magic, checksum, tail magic (syslinux_reset_adv).
fn empty_adv() -> [u8; 512] {
    let mut adv = [0u8; 512];
    adv[..4].copy_from_slice(&ADV_MAGIC1.to_le_bytes());
    adv[4..8].copy_from_slice(&ADV_MAGIC2.to_le_bytes()); // minus the all-zero payload
    adv[508..].copy_from_slice(&ADV_MAGIC3.to_le_bytes());
    adv
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic installer: padding, boot sector, a two-sector image with a patch area, and
    /// a minimal ELF32 module.
    fn fake_installer() -> Vec<u8> {
        let mut bin = vec![0u8; 100];
        let mut bs = [0u8; 512];
        bs[..3].copy_from_slice(&[0xeb, 0x58, 0x90]);
        bs[510] = 0x55;
        bs[511] = 0xaa;
        bin.extend_from_slice(&bs);
        let mut img = vec![0u8; 3 * 512];
        img[..BANNER.len()].copy_from_slice(BANNER);
        img[32..36].copy_from_slice(&LDLINUX_MAGIC.to_le_bytes());
        img[54..56].copy_from_slice(&600u16.to_le_bytes()); // epa
        let epa = [700u16, 0, 0, 0, 0, 800, 4, 0x11a, 0x11e, 0];
        for (i, v) in epa.iter().enumerate() {
            img[600 + 2 * i..602 + 2 * i].copy_from_slice(&v.to_le_bytes());
        }
        bin.extend_from_slice(&img);
        let mut elf = vec![0u8; 52 + 40];
        elf[..7].copy_from_slice(b"\x7fELF\x01\x01\x01");
        elf[18] = 3;
        elf[32..36].copy_from_slice(&52u32.to_le_bytes());
        elf[46] = 40;
        elf[48] = 1;
        bin.extend_from_slice(&elf);
        bin.extend_from_slice(b"trailing data");
        bin
    }

    #[test]
    fn finds_and_patches_a_synthetic_image() {
        let s = Syslinux::from_installer(&fake_installer()).unwrap();
        assert_eq!(s.image.len(), 3 * 512);
        assert_eq!(s.ldlinux_c32().len(), 92);
        let (sys, boot) = s.install(1000).unwrap();
        assert_eq!(sys.len() as u64, s.ldlinux_sys_len());
        assert_eq!(u32_at(&boot[..], 0x11a), 1000, "first sector in the boot sector");
        assert_eq!(u32_at(&boot[..], 0x11e), 0);
        // Sectors 1001..1002 hold the rest of the image, 1003/1004 the ADVs.
        assert_eq!(&sys[800..810], &[0xe9, 3, 0, 0, 0, 0, 0, 0, 2, 0]);
        assert_eq!(u32_at(&sys, 700), 1003);
        assert_eq!(u32_at(&sys, 708), 1004);
        let sum = sys[..3 * 512].chunks_exact(4).fold(0u32, |s, d| s.wrapping_add(u32_at(d, 0)));
        assert_eq!(sum, LDLINUX_MAGIC, "the checksum balances the image");
        assert_eq!(u32_at(&sys, 3 * 512), ADV_MAGIC1);
        assert_eq!(&sys[3 * 512..4 * 512], &sys[4 * 512..]);
    }

    #[test]
    fn refuses_binaries_without_the_parts() {
        assert!(matches!(Syslinux::from_installer(b"nothing here"), Err(SyslinuxError::NoImage)));
        let mut bin = fake_installer();
        let module = bin.len() - 92 - 13;
        bin[module] = 0; // no ELF after the image
        assert!(matches!(Syslinux::from_installer(&bin), Err(SyslinuxError::NoModule)));
        let mut bin = fake_installer();
        bin[100 + 512 + 600 + 14..100 + 512 + 600 + 16].copy_from_slice(&20u16.to_le_bytes());
        assert!(matches!(Syslinux::from_installer(&bin), Err(SyslinuxError::BadImage { .. })));
    }

    #[test]
    fn cut_or_corrupted_binaries_give_errors_not_panics() {
        let bin = fake_installer();
        for cut in 0..bin.len() {
            let _ = Syslinux::from_installer(&bin[..cut]);
        }
        for at in (0..bin.len()).step_by(7) {
            let mut bad = bin.clone();
            bad[at] ^= 0xff;
            if let Ok(s) = Syslinux::from_installer(&bad) {
                s.install(123).unwrap();
            }
        }
    }

    #[test]
    fn extents_split_at_gaps_and_64k() {
        assert_eq!(extents(&[5, 6, 7, 9]), [(5, 3), (9, 1)]);
        let long: Vec<u64> = (0..200).collect();
        let e = extents(&long);
        assert_eq!(e, [(0, 127), (127, 73)], "each run stays under 64 KiB");
    }
}
