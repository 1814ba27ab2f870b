//! Any bytes as an archive to `baleen import` (an OCI image-layout tar or a `docker save` tar)
//! into an empty store in a fresh temporary directory: importing never panics, never hangs and
//! never writes outside the store; every image it names resolves (or says why not) for both
//! platforms baleen builds for.
#![no_main]

use baleen_oci::{archive, Platform, Reference, Store};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(&dir.path().join("store")).expect("an empty store opens");
    let name = Reference::parse("fuzz/imported:latest").expect("a valid reference");
    let named = if data.first().is_some_and(|b| b & 1 == 1) { Some(&name) } else { None };
    match archive::import(&store, data, named) {
        Ok(refs) => {
            for r in &refs {
                for p in
                    [Platform::new("linux", "amd64", None), Platform::new("linux", "arm64", None)]
                {
                    match store.resolve(r, &p) {
                        Ok(Some(img)) => {
                            let _ = img.layer_digests();
                        }
                        Ok(None) => {}
                        Err(e) => {
                            let _ = e.to_string();
                        }
                    }
                }
            }
            let _ = store.verify(false);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let outside: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(outside, ["store"], "import wrote outside the store");
});
