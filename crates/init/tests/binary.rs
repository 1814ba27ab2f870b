//! The init binary as it ships in pkg/init: static (no program interpreter, so no dynamic
//! loader or libc is needed in the image), stripped, and near the size docs/init.md, README
//! and ARCHITECTURE.md give (≈ 1.2 MB; the budget was 5 MB).

#[test]
fn the_init_is_static_stripped_and_about_the_documented_size() {
    let path = baleen_testkit::init::init_binary();
    let elf = std::fs::read(&path).unwrap();
    assert!(
        elf.len() <= 1_500_000,
        "{}: {} bytes: update the docs' 1.2 MB",
        path.display(),
        elf.len()
    );
    assert_eq!(&elf[..5], b"\x7fELF\x02", "a 64-bit ELF file");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    assert!(phnum > 0, "program headers");
    for i in 0..phnum {
        let kind = u32::from_le_bytes(elf[phoff + i * phentsize..][..4].try_into().unwrap());
        const PT_INTERP: u32 = 3;
        assert_ne!(kind, PT_INTERP, "{} asks for a dynamic loader", path.display());
    }
    let symtab = elf.windows(7).any(|w| w == b".symtab");
    assert!(!symtab, "{} is not stripped", path.display());
}
