//! Any bytes as a manifest (under every media-type hint), an index (platform selection) and an
//! image config: parsing never panics; every descriptor of a parsed manifest has a valid digest.
#![no_main]

use baleen_oci::manifest::{media_type_of, Manifest};
use baleen_oci::{Digest, ImageConfiguration, Platform};
use libfuzzer_sys::fuzz_target;

const HINTS: [Option<&str>; 5] = [
    None,
    Some("application/vnd.oci.image.index.v1+json"),
    Some("application/vnd.oci.image.manifest.v1+json"),
    Some("application/vnd.docker.distribution.manifest.list.v2+json"),
    Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
];

fuzz_target!(|data: &[u8]| {
    let digest = Digest::sha256_of(data);
    for hint in HINTS {
        match Manifest::parse(data, &digest, hint) {
            Ok(m) => {
                for d in m.children() {
                    assert!(Digest::from_oci(d.digest()).is_ok(), "parse let a bad digest through");
                }
                let _ = media_type_of(&m, data);
                if let Manifest::Index(i) = &m {
                    for p in ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"] {
                        let p = Platform::parse(p).expect("a valid platform");
                        if let Err(e) = Manifest::select(i, "fuzz:latest", &p) {
                            let _ = e.to_string();
                        }
                    }
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    let _ = serde_json::from_slice::<ImageConfiguration>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Platform::parse(text);
        let _ = Digest::parse(text);
    }
});
