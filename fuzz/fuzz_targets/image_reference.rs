//! Any string as an image reference: parsing never panics, and what parses re-parses to itself
//! once expanded.
#![no_main]

use baleen_spec::reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(r) = reference::parse(s) {
        let expanded = reference::expand(s);
        let again = reference::parse(&expanded).expect("an expanded valid reference stays valid");
        assert_eq!(again, r);
    }
});
