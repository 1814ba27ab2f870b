//! Hostile layers (issue 21): what they may expand to, hard links that cannot be made, and paths
//! the kernel cannot create. Each error names the image, the layer and the entry.

use baleen_testkit::layers::*;
use baleen_tree::*;
use std::io::Cursor;

fn image(layers: Vec<Vec<u8>>) -> Image {
    Image {
        reference: "docker.io/evil/bomb:1".into(),
        layers: layers
            .into_iter()
            .enumerate()
            .map(|(i, b)| Layer::new(format!("sha256:layer{i}"), "", Cursor::new(b)))
            .collect(),
    }
}

/// The init section of `image` through a tree writer within `limits`.
fn init(limits: Limits, image: Image) -> Result<Collect, TreeError> {
    let mut c = Collect::default();
    let mut w = TreeWriter::with_limits(&mut c, limits);
    w.init(0, image)?;
    Ok(c)
}

/// 4 MiB of zeros, gzipped to a few KiB: a bomb under a 1 MiB floor.
fn zeros_layer() -> Vec<u8> {
    gzip(&tar_layer(&[file("zeros", &vec![0u8; 4 << 20])]))
}

const SMALL_FLOOR: Expansion = Expansion { ratio: 100, floor: 1 << 20 };

#[test]
fn a_layer_expanding_past_the_ratio_is_refused_naming_image_layer_and_limit() {
    let limits = Limits { max_tree_bytes: None, expansion: Some(SMALL_FLOOR) };
    let err = init(limits, image(vec![tar_layer(&[file("a", b"a")]), zeros_layer()])).unwrap_err();
    assert!(matches!(err.limit(), Some(LimitError::Expands { ratio: 100, .. })), "{err:?}");
    let text = err.to_string();
    for want in ["init[0]", "docker.io/evil/bomb:1", "sha256:layer1", "more than 100 times"] {
        assert!(text.contains(want), "{want:?} missing from: {text}");
    }
}

#[test]
fn the_expansion_check_can_be_turned_off_and_spares_ordinary_layers() {
    let off = Limits { max_tree_bytes: None, expansion: None };
    let c = init(off, image(vec![zeros_layer()])).unwrap();
    assert_eq!(c.get("zeros").unwrap().1.len(), 4 << 20);
    // Incompressible data expands by about 1×, whatever its size.
    let noise = gzip(&tar_layer(&[file("noise", &baleen_testkit::noise(3 << 20, 7))]));
    let on = Limits { max_tree_bytes: None, expansion: Some(SMALL_FLOOR) };
    assert!(init(on, image(vec![noise])).is_ok());
}

#[test]
fn a_tree_past_max_size_is_refused_before_the_entry_is_written() {
    let layer = tar_layer(&[file("one", &[1u8; 600 << 10]), file("two", &[2u8; 600 << 10])]);
    let limits = Limits { max_tree_bytes: Some(1 << 20), expansion: None };
    let mut c = Collect::default();
    let mut w = TreeWriter::with_limits(&mut c, limits);
    let err = w.init(0, image(vec![layer])).unwrap_err();
    assert!(matches!(err.limit(), Some(LimitError::TreeTooLarge { limit: 1048576, .. })));
    let text = err.to_string();
    for want in ["docker.io/evil/bomb:1", "sha256:layer0", "\"two\"", "limit of 1 MiB"] {
        assert!(text.contains(want), "{want:?} missing from: {text}");
    }
    drop(w);
    assert_eq!(c.paths(), ["one"], "nothing of the entry over the limit reached the sink");
}

#[test]
fn max_size_counts_every_section_and_none_lifts_it() {
    let files = |n: usize| {
        vec![FileItem {
            index: 3,
            path: "etc/big".into(),
            kind: FileKind::Contents(FileData::Bytes(vec![0; n])),
            mode: None,
            uid: 0,
            gid: 0,
        }]
    };
    let limits = Limits { max_tree_bytes: Some(1000), expansion: None };
    let mut w = TreeWriter::with_limits(Collect::default(), limits);
    let err = w.files(files(1001)).unwrap_err();
    assert!(matches!(err.limit(), Some(LimitError::TreeTooLarge { .. })), "{err}");
    assert!(err.to_string().contains("files[3]"), "{err}");
    let mut w = TreeWriter::with_limits(Collect::default(), Limits::NONE);
    w.files(files(1001)).unwrap();
}
