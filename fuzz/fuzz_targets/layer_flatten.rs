//! Any bytes as the layers of an image (split at [`SEP`], bottom layer first, each plain, gzip
//! or zstd, sniffed as in production) through the layer reader, the flattener (whiteouts, opaque
//! directories, hard links) and LinuxKit's image filter into a sink that discards: reading
//! never panics and never hangs. The same layers go through the kernel section (with and
//! without `--decompress-kernel`) and, as one tar, through `--input-tar`'s section reader.
#![no_main]

use baleen_tree::{
    read_tar_file, Entry, EntrySink, Expansion, Image, KernelOptions, Layer, Limits, TreeWriter,
};
use libfuzzer_sys::fuzz_target;
use std::io::{self, Read};

const SEP: &[u8] = b"\n--LAYER--\n";
/// Small bounds so that a bomb trips a limit in milliseconds instead of expanding for minutes.
const LIMITS: Limits = Limits {
    max_tree_bytes: Some(16 << 20),
    expansion: Some(Expansion { ratio: 100, floor: 4 << 20 }),
};

/// Reads every entry's data (as a real sink does) and keeps nothing.
struct Discard;

impl EntrySink for Discard {
    fn add(&mut self, _entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        io::copy(data, &mut io::sink()).map(|_| ())
    }
}

fn split(data: &[u8]) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(SEP.len()).position(|w| w == SEP) {
        parts.push(rest[..i].to_vec());
        rest = &rest[i + SEP.len()..];
        if parts.len() == 7 {
            break;
        }
    }
    parts.push(rest.to_vec());
    parts
}

fn image(parts: &[Vec<u8>]) -> Image {
    const TYPES: [&str; 3] = [
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
    ];
    let layers = parts
        .iter()
        .enumerate()
        .map(|(i, p)| Layer::new(format!("layer[{i}]"), TYPES[i % 3], io::Cursor::new(p.clone())))
        .collect();
    Image { reference: "docker.io/fuzz/image:latest".into(), layers }
}

fuzz_target!(|data: &[u8]| {
    let parts = split(data);
    let mut w = TreeWriter::with_limits(Discard, LIMITS);
    if let Err(e) = w.init(0, image(&parts)) {
        let _ = e.to_string();
    }
    let _ = w.finish_init();
    for decompress in [false, true] {
        let opts = KernelOptions {
            cmdline: "console=ttyS0".into(),
            binary: String::new(),
            tar: None,
            ucode: Some("ucode.cpio".into()),
            decompress,
        };
        if let Err(e) = w.kernel(image(&parts[..1]), &opts) {
            let _ = e.to_string();
        }
    }
    let _ = w.copy_from_tar(&mut &data[..], "docker.io/fuzz/image:latest", "init[0]");
    let _ = read_tar_file(&mut &data[..], "etc/os-release");
});
