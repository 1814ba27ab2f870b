//! Any bytes as an `org.mobyproject.config` label: parsing never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(diags) = baleen_spec::parse_label("fuzz:latest", text) {
        for d in &diags.0 {
            let _ = d.to_string();
        }
    }
});
