//! `cache import` of crafted archives: a name is written only when every blob it needs is in
//! the store, verified, within limits and the size its descriptor says; docker-save layers must
//! be the ones the config's `diff_ids` describe. Before, such images were named and failed
//! later, as a network pull of `docker.io/…`.

use baleen_oci::archive::{import, import_with, ArchiveError, Expansion, ImportLimits};
use baleen_oci::Store;
use baleen_testkit::image::{sha256, BuiltImage, ImageBuilder};
use baleen_testkit::layers::{file, gzip, tar_layer};

const NAME: &str = "docker.io/test/crafted:v1";

fn image() -> BuiltImage {
    ImageBuilder::new()
        .layer(&[file("etc/one", b"one\n")])
        .layer(&[file("etc/two", b"two\n")])
        .build()
}

/// A tar of `(path, bytes)` files, plus `(path, target)` symlinks.
fn tar_of(files: &[(String, Vec<u8>)], symlinks: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, &data[..]).unwrap();
    }
    for (path, target) in symlinks {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, path, target).unwrap();
    }
    b.into_inner().unwrap()
}

fn blob_entry(digest: &str, data: &[u8]) -> (String, Vec<u8>) {
    (format!("blobs/sha256/{}", digest.strip_prefix("sha256:").unwrap()), data.to_vec())
}

/// An OCI layout tar of `img` named NAME, with `root` as index.json's descriptor, leaving out
/// the blobs with the digests in `skip`.
fn oci_tar(img: &BuiltImage, root: serde_json::Value, skip: &[&str]) -> Vec<u8> {
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [root]});
    let mut files = vec![
        ("oci-layout".to_string(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ("index.json".to_string(), serde_json::to_vec(&index).unwrap()),
    ];
    for b in img.blobs() {
        if !skip.contains(&b.digest.as_str()) {
            files.push(blob_entry(&b.digest, &b.data));
        }
    }
    tar_of(&files, &[])
}

fn root_of(img: &BuiltImage) -> serde_json::Value {
    serde_json::json!({
        "mediaType": img.manifest.media_type, "digest": img.manifest.digest,
        "size": img.manifest.data.len(),
        "annotations": {"org.opencontainers.image.ref.name": NAME},
    })
}

fn import_into_fresh(archive: &[u8]) -> (tempfile::TempDir, Store, Result<usize, ArchiveError>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let result = import(&store, archive, None).map(|names| names.len());
    (dir, store, result)
}

#[test]
fn an_oci_archive_missing_a_layer_names_nothing() {
    let img = image();
    let missing = img.layers[1].digest.clone();
    let (_dir, store, result) = import_into_fresh(&oci_tar(&img, root_of(&img), &[&missing]));
    let err =
        baleen_testkit::boot::chain(&result.expect_err("a missing layer must fail the import"));
    assert!(err.contains(&missing) && err.contains(NAME) && err.contains("layer"), "{err}");
    assert!(store.list().unwrap().is_empty(), "no name for an incomplete image");
}

#[test]
fn an_oci_archive_missing_its_config_names_nothing() {
    let img = image();
    let missing = img.config.digest.clone();
    let (_dir, store, result) = import_into_fresh(&oci_tar(&img, root_of(&img), &[&missing]));
    let err =
        baleen_testkit::boot::chain(&result.expect_err("a missing config must fail the import"));
    assert!(err.contains(&missing) && err.contains("config"), "{err}");
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn an_oci_archive_whose_descriptor_size_lies_names_nothing() {
    let img = image();
    let mut manifest: serde_json::Value = serde_json::from_slice(&img.manifest.data).unwrap();
    manifest["layers"][0]["size"] = (img.layers[0].data.len() + 7).into();
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = sha256(&bytes);
    let root = serde_json::json!({
        "mediaType": img.manifest.media_type, "digest": digest, "size": bytes.len(),
        "annotations": {"org.opencontainers.image.ref.name": NAME},
    });
    let mut archive = oci_tar(&img, root, &[]);
    // Append the lying manifest as one more blob (before the two zero blocks that end a tar).
    archive.truncate(archive.len() - 1024);
    let mut b = tar::Builder::new(archive);
    let (path, data) = blob_entry(&digest, &bytes);
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, path, &data[..]).unwrap();
    let archive = b.into_inner().unwrap();
    let (_dir, store, result) = import_into_fresh(&archive);
    let err = baleen_testkit::boot::chain(&result.expect_err("a wrong size must fail the import"));
    assert!(err.contains(&img.layers[0].digest) && err.contains("descriptor says"), "{err}");
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn an_oci_archive_past_the_manifest_or_config_limits_names_nothing() {
    let img = image();
    let mut huge_root = root_of(&img);
    huge_root["size"] = (5u64 << 20).into();
    let (_dir, store, result) = import_into_fresh(&oci_tar(&img, huge_root, &[]));
    let err = baleen_testkit::boot::chain(&result.expect_err("a 5 MiB manifest is past the limit"));
    assert!(err.contains("limit") && err.contains(&img.manifest.digest), "{err}");
    assert!(store.list().unwrap().is_empty());

    let mut manifest: serde_json::Value = serde_json::from_slice(&img.manifest.data).unwrap();
    manifest["config"]["size"] = (17u64 << 20).into();
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = sha256(&bytes);
    let root = serde_json::json!({
        "mediaType": img.manifest.media_type, "digest": digest, "size": bytes.len(),
        "annotations": {"org.opencontainers.image.ref.name": NAME},
    });
    let mut files = vec![(
        "index.json".to_string(),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [root]})).unwrap(),
    )];
    files.push(blob_entry(&digest, &bytes));
    for b in [&img.config, &img.layers[0], &img.layers[1]] {
        files.push(blob_entry(&b.digest, &b.data));
    }
    let (_dir, store, result) = import_into_fresh(&tar_of(&files, &[]));
    let err = baleen_testkit::boot::chain(&result.expect_err("a 17 MiB config is past the limit"));
    assert!(err.contains("config") && err.contains("limit"), "{err}");
    assert!(store.list().unwrap().is_empty());
}

/// A legacy `docker save` tar: `manifest.json`, `<id>.json`, `<id>/layer.tar`.
fn docker_save(config: &serde_json::Value, layers: &[Vec<u8>], links: &[(&str, &str)]) -> Vec<u8> {
    let config = serde_json::to_vec(config).unwrap();
    let paths: Vec<String> = (0..layers.len()).map(|i| format!("l{i}/layer.tar")).collect();
    let manifest = serde_json::json!([{"Config": "cfg.json", "RepoTags": [NAME], "Layers": paths}]);
    let mut files = vec![
        ("manifest.json".to_string(), serde_json::to_vec(&manifest).unwrap()),
        ("cfg.json".to_string(), config),
    ];
    for (path, data) in paths.iter().zip(layers) {
        if !links.iter().any(|(p, _)| p == path) {
            files.push((path.clone(), data.clone()));
        }
    }
    tar_of(&files, links)
}

fn config_with(diff_ids: &[String]) -> serde_json::Value {
    serde_json::json!({"architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}})
}

#[test]
fn a_docker_save_whose_layers_are_not_the_configs_diff_ids_names_nothing() {
    let (one, two) = (tar_layer(&[file("a", b"a")]), tar_layer(&[file("b", b"b")]));
    // Gzip'd layers are unpacked to check: the diff_id is the uncompressed tar's digest.
    let good =
        docker_save(&config_with(&[sha256(&one), sha256(&two)]), &[gzip(&one), two.clone()], &[]);
    let (_dir, store, result) = import_into_fresh(&good);
    assert_eq!(result.unwrap(), 1);
    assert_eq!(store.list().unwrap().len(), 1);

    let swapped =
        docker_save(&config_with(&[sha256(&two), sha256(&one)]), &[one.clone(), two.clone()], &[]);
    let (_dir, store, result) = import_into_fresh(&swapped);
    let err = baleen_testkit::boot::chain(&result.expect_err("layers in the wrong order"));
    assert!(err.contains("diff_ids[0]") && err.contains(&sha256(&two)), "{err}");
    assert!(store.list().unwrap().is_empty());

    let short = docker_save(&config_with(&[sha256(&one)]), &[one, two], &[]);
    let (_dir, store, result) = import_into_fresh(&short);
    let err = baleen_testkit::boot::chain(&result.expect_err("one diff_id for two layers"));
    assert!(err.contains("1 rootfs.diff_ids for 2 layers"), "{err}");
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn a_docker_save_layer_that_is_a_symlink_out_of_the_archive_says_so() {
    let one = tar_layer(&[file("a", b"a")]);
    let archive = docker_save(
        &config_with(&[sha256(&one)]),
        &[one],
        &[("l0/layer.tar", "../../../etc/passwd")],
    );
    let (_dir, store, result) = import_into_fresh(&archive);
    let err = baleen_testkit::boot::chain(&result.expect_err("an escaping symlink"));
    assert!(
        err.contains("l0/layer.tar")
            && err.contains("symlink to ../../../etc/passwd")
            && err.contains("outside the archive"),
        "{err}"
    );
    assert!(!err.contains("does not contain"), "{err}");
    assert!(store.list().unwrap().is_empty());
}

/// A blob entry for each of `blobs`, as `(digest, bytes)`.
fn blob_entries(blobs: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
    blobs.iter().map(|(d, data)| blob_entry(d, data)).collect()
}

#[test]
fn an_index_naming_one_manifest_thousands_of_times_is_read_once() {
    // The hostile shape at small scale: index.json names one image index under 20 names; the
    // index lists one manifest 300 times; the manifest lists one layer 300 times. Checked per
    // reference, that was 20 × 300 reads of the manifest and 20 × 300 × 302 stats.
    let img = image();
    let layer = &img.layers[0];
    let layer_desc = serde_json::json!({
        "mediaType": layer.media_type, "digest": layer.digest, "size": layer.data.len()});
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": img.manifest.media_type,
        "config": {"mediaType": img.config.media_type, "digest": img.config.digest,
                   "size": img.config.data.len()},
        "layers": vec![layer_desc; 300],
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let child = serde_json::json!({
        "mediaType": img.manifest.media_type, "digest": sha256(&manifest),
        "size": manifest.len(), "platform": {"os": "linux", "architecture": "amd64"}});
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": vec![child; 300]});
    let index = serde_json::to_vec(&index).unwrap();
    let roots: Vec<_> = (0..20)
        .map(|i| serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": sha256(&index), "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": format!("docker.io/test/many:v{i}")},
        }))
        .collect();
    let layout = serde_json::json!({"schemaVersion": 2, "manifests": roots});
    let mut files = vec![("index.json".to_string(), serde_json::to_vec(&layout).unwrap())];
    files.extend(blob_entries(&[
        (&sha256(&index), &index),
        (&sha256(&manifest), &manifest),
        (&img.config.digest, &img.config.data),
        (&layer.digest, &layer.data),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let imported =
        import_with(&store, &tar_of(&files, &[])[..], None, ImportLimits::default()).unwrap();
    assert_eq!(imported.names.len(), 20);
    // Each of the four blobs looked up once; the index and the manifest read once.
    assert_eq!(imported.work.stats, 4, "{:?}", imported.work);
    assert_eq!(imported.work.reads, 2, "{:?}", imported.work);
}

/// A legacy `docker save` tar whose manifest.json lists the one layer `times` times.
fn docker_save_repeating(layer: &[u8], diff_id: &str, times: usize) -> Vec<u8> {
    let config = config_with(&vec![diff_id.to_string(); times]);
    let manifest = serde_json::json!([{"Config": "cfg.json", "RepoTags": [NAME],
        "Layers": vec!["l0/layer.tar"; times]}]);
    let files = vec![
        ("manifest.json".to_string(), serde_json::to_vec(&manifest).unwrap()),
        ("cfg.json".to_string(), serde_json::to_vec(&config).unwrap()),
        ("l0/layer.tar".to_string(), layer.to_vec()),
    ];
    tar_of(&files, &[])
}

#[test]
fn a_docker_save_layer_listed_many_times_is_unpacked_once() {
    let tar = tar_layer(&[file("etc/one", b"one\n")]);
    let archive = docker_save_repeating(&gzip(&tar), &sha256(&tar), 200);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let imported = import_with(&store, &archive[..], None, ImportLimits::default()).unwrap();
    assert_eq!(imported.names.len(), 1);
    assert_eq!(imported.work.decompressions, 1, "{:?}", imported.work);
    assert_eq!(imported.work.unpacked_bytes, tar.len() as u64, "{:?}", imported.work);
}

/// 16 MiB of zeros in one file, gzip'd at its best to about 16 KiB; its tar and the gzip.
fn gzip_bomb() -> (Vec<u8>, Vec<u8>) {
    use std::io::Write;
    let tar = tar_layer(&[file("zeros", &vec![0u8; 16 << 20])]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < (16 << 20) / 200, "a bomb: {} bytes", bomb.len());
    (tar, bomb)
}

#[test]
fn a_docker_save_gzip_bomb_is_refused_naming_the_layer_and_the_limit() {
    let (tar, bomb) = gzip_bomb();
    let archive = docker_save_repeating(&bomb, &sha256(&tar), 50);
    let limits = ImportLimits {
        max_unpacked_bytes: None,
        expansion: Some(Expansion { ratio: 100, floor: 1 << 20 }),
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let err = import_with(&store, &archive[..], None, limits).expect_err("a bomb is refused");
    let msg = baleen_testkit::boot::chain(&err);
    assert!(matches!(err, ArchiveError::Expands { ratio: 100, .. }), "{msg}");
    assert!(msg.contains(&sha256(&bomb)) && msg.contains("100 times"), "{msg}");
    assert!(msg.contains("decompression bomb"), "{msg}");
    assert!(store.list().unwrap().is_empty(), "no name for a refused image");

    // The overall bound: layers that may expand, but not past --max-size.
    let limits = ImportLimits { max_unpacked_bytes: Some(4 << 20), expansion: None };
    let err = import_with(&store, &archive[..], None, limits).expect_err("past the size bound");
    let msg = baleen_testkit::boot::chain(&err);
    assert!(matches!(err, ArchiveError::UnpacksTooMuch { limit: 0x40_0000, .. }), "{msg}");
    assert!(msg.contains(&sha256(&bomb)) && msg.contains("limit of 4194304 bytes"), "{msg}");
    assert!(store.list().unwrap().is_empty());

    // Allowed, it is unpacked once, not 50 times.
    let imported = import_with(&store, &archive[..], None, ImportLimits::NONE).unwrap();
    assert_eq!(imported.work.decompressions, 1, "{:?}", imported.work);
}
