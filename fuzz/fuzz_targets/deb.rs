//! Any bytes as a `.deb` (an ar archive whose `data.tar{,.xz,.zst,.gz}` member is unpacked into
//! a package layer): reading never panics, never hangs, and a layer that was read writes out.
#![no_main]

use baleen_pkg::layer::LayerBuilder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let drop = ["usr/share/doc/**".to_string()];
    let mut layer = LayerBuilder::new(&drop).expect("a spool file");
    match layer.add_deb_from(data, "fuzz.deb") {
        Ok(()) => {
            layer.write_tar(std::io::sink()).expect("a read layer writes");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
