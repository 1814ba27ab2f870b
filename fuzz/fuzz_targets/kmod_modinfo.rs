//! Any bytes as a kernel module: decompression by extension (`.ko.xz`, `.ko.zst`, `.ko.gz`),
//! the ELF `.modinfo` lookup and its `key=value` parsing. Nothing panics.
#![no_main]

use baleen_pkg::kmod;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for path in ["fuzz.ko", "fuzz.ko.xz", "fuzz.ko.zst", "fuzz.ko.gz"] {
        if let Ok(elf) = kmod::decompress(path, data.to_vec()) {
            let _ = kmod::modinfo(path, &elf);
        }
    }
    let _ = kmod::parse_modinfo(data);
});
