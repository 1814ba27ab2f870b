//! Any bytes as a bundle's `config.json` and `runtime.json`, as init reads them: the spec parses
//! or not; the seccomp profile compiles for both architectures (or is refused) and the program
//! it yields stays in bounds when run; the device cgroup rules compile; every mount's options
//! parse. Nothing panics.
#![no_main]

use baleen_init::seccomp::{self, Arch};
use baleen_init::spec::{Config, Runtime};
use baleen_init::{devcg, mountopts};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<Runtime>(data);
    // A bare profile too, so the fuzzer need not find the `linux.seccomp` nesting first.
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        compile_and_run(&v);
    }
    let Ok(config) = serde_json::from_slice::<Config>(data) else { return };
    if let Some(profile) = &config.linux.seccomp {
        compile_and_run(profile);
    }
    if let Err(e) = devcg::compile(&config.linux.resources.devices) {
        let _ = e.to_string();
    }
    for m in &config.mounts {
        let _ = mountopts::parse(&m.options);
    }
});

fn compile_and_run(profile: &serde_json::Value) {
    for arch in [Arch::X86_64, Arch::Aarch64] {
        match seccomp::compile_for(profile, arch) {
            Ok(prog) => {
                for nr in [0, 1, 59, 221, 0x4000_0000] {
                    let _ = seccomp::run(&prog, arch.audit(), nr, [0, 1, u64::MAX, 0, 0, 0]);
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}
