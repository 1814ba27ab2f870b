//! Any text as a registry's `WWW-Authenticate` header: parsing never panics, the scheme and
//! parameter names come out lowercase.
#![no_main]

use baleen_oci::registry::auth::Challenge;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else { return };
    if let Some(c) = Challenge::parse(header) {
        assert_eq!(c.scheme, c.scheme.to_ascii_lowercase());
        for k in c.params.keys() {
            assert_eq!(*k, k.to_ascii_lowercase());
        }
    }
});
