//! Generated images for the benchmark, streamed into an OCI layout: a big service image is
//! never held in memory. Each layer goes tar → SHA-256 (diff_id) → gzip → SHA-256 (digest) →
//! a temporary blob file, renamed to its digest at the end.
//!
//! The data is seeded and deterministic: half pseudo-random 64-byte runs, half runs copied from a
//! fixed text table, so gzip finds matches and does real work (ratio about 0.55), as on real
//! binaries and libraries, unlike zeros (free) or pure noise (stored as is).

use anyhow::{Context, Result};
use sha2::{Digest as _, Sha256};
use std::io::{self, Write};
use std::path::Path;

/// One file of a generated layer holds at most this much.
const FILE_SIZE: u64 = 16 << 20;
/// One layer holds at most this much: a 2 GiB image has 8 layers, as big images often do.
const LAYER_SIZE: u64 = 256 << 20;
const MTIME: u64 = 1_600_000_000;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Seeded bytes: xorshift64* for the noise, a fixed table for the text.
struct Data {
    state: u64,
    text: Vec<u8>,
}

impl Data {
    fn new(seed: u64) -> Data {
        let phrase = b"the image tree is the spine: layers in, formats out. ";
        let text = phrase.iter().cycle().take(4096 + 64).copied().collect();
        Data { state: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, text }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Fills `buf` (a multiple of 64 bytes long) run by run.
    fn fill(&mut self, buf: &mut [u8]) {
        for run in buf.chunks_mut(64) {
            let r = self.next();
            if r & 1 == 0 {
                let at = (r >> 8) as usize % 4096;
                run.copy_from_slice(&self.text[at..at + run.len()]);
            } else {
                for word in run.chunks_mut(8) {
                    let x = self.next().to_le_bytes();
                    word.copy_from_slice(&x[..word.len()]);
                }
            }
        }
    }
}

/// A writer that hashes and counts what passes through.
struct Hashing<W: Write> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing { inner, hash: Sha256::new(), len: 0 }
    }
    fn finish(self) -> (W, String, u64) {
        (self.inner, format!("sha256:{}", hex(&self.hash.finalize())), self.len)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn tar_header(path: &str, size: u64, dir: bool) -> Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).with_context(|| format!("tar name {path}"))?;
    h.set_size(size);
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_entry_type(if dir { tar::EntryType::Directory } else { tar::EntryType::Regular });
    h.set_mtime(MTIME);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    Ok(h)
}

/// A blob as the manifest names it.
struct Desc {
    media_type: &'static str,
    digest: String,
    size: u64,
}

impl Desc {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// Streams one layer of `files` (path, size) into `blobs/sha256/`; returns (descriptor, diff_id).
fn write_layer(layout: &Path, files: &[(String, u64)], data: &mut Data) -> Result<(Desc, String)> {
    let blobs = layout.join("blobs/sha256");
    let tmp = blobs.join(format!(".gen-{}", std::process::id()));
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let gz = flate2::write::GzEncoder::new(
        Hashing::new(io::BufWriter::with_capacity(1 << 20, file)),
        flate2::Compression::fast(),
    );
    let mut tar = Hashing::new(gz);
    tar.write_all(tar_header("data/", 0, true)?.as_bytes())?;
    let mut buf = vec![0u8; 1 << 20];
    for (path, size) in files {
        tar.write_all(tar_header(path, *size, false)?.as_bytes())?;
        let mut left = *size;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            let chunk = &mut buf[..n.next_multiple_of(64)];
            data.fill(chunk);
            tar.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        let pad = (512 - size % 512) % 512;
        tar.write_all(&vec![0u8; pad as usize])?;
    }
    tar.write_all(&[0u8; 1024])?;
    let (gz, diff_id, _) = tar.finish();
    let (file, digest, size) = gz.finish()?.finish();
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let hex = digest.trim_start_matches("sha256:");
    std::fs::rename(&tmp, blobs.join(hex))?;
    Ok((Desc { media_type: OCI_LAYER_GZIP, digest, size }, diff_id))
}

fn put_blob(layout: &Path, media_type: &'static str, bytes: &[u8]) -> Result<Desc> {
    let digest = format!("sha256:{}", hex(&Sha256::digest(bytes)));
    let path = layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(Desc { media_type, digest, size: bytes.len() as u64 })
}

/// True when the layout's index.json names `name`.
pub fn has_image(layout: &Path, name: &str) -> bool {
    read_index(layout)["manifests"].as_array().is_some_and(|m| {
        m.iter().any(|d| d["annotations"]["org.opencontainers.image.ref.name"] == name)
    })
}

fn read_index(layout: &Path) -> serde_json::Value {
    std::fs::read(layout.join("index.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| serde_json::json!({"schemaVersion": 2, "manifests": []}))
}

/// Writes a linux/amd64 image of `total` bytes of generated files (in layers of up to 256 MiB)
/// into the OCI layout at `layout`, named `name` (a full reference, `docker.io/bench/x:v1`).
pub fn write_image(layout: &Path, name: &str, total: u64, seed: u64) -> Result<()> {
    std::fs::create_dir_all(layout.join("blobs/sha256"))?;
    std::fs::write(layout.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut data = Data::new(seed);
    let (mut layers, mut diff_ids) = (Vec::new(), Vec::new());
    let mut written = 0u64;
    let mut file_no = 0;
    while written < total || layers.is_empty() {
        let mut files = Vec::new();
        let mut in_layer = 0;
        while in_layer < LAYER_SIZE && written < total {
            let size = FILE_SIZE.min(total - written);
            files.push((format!("data/f{file_no:05}"), size));
            file_no += 1;
            in_layer += size;
            written += size;
        }
        let (desc, diff_id) = write_layer(layout, &files, &mut data)?;
        layers.push(desc);
        diff_ids.push(diff_id);
    }
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = put_blob(layout, OCI_CONFIG, &serde_json::to_vec(&config)?)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.json(),
        "layers": layers.iter().map(Desc::json).collect::<Vec<_>>(),
    });
    let manifest = put_blob(layout, OCI_MANIFEST, &serde_json::to_vec(&manifest)?)?;
    let mut index = read_index(layout);
    let list = index["manifests"].as_array_mut().context("index.json has no manifests array")?;
    list.retain(|d| d["annotations"]["org.opencontainers.image.ref.name"] != name);
    let mut entry = manifest.json();
    entry["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": name});
    list.push(entry);
    // Renamed into place so an interrupted run never leaves a half-written index.
    let tmp = layout.join(".index.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&index)?)?;
    std::fs::rename(&tmp, layout.join("index.json"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_generated_image_is_a_valid_layout_with_matching_digests() {
        let dir = std::env::temp_dir().join(format!("xtask-gen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        write_image(&dir, "docker.io/bench/t:v1", (FILE_SIZE * 3) / 2 + 100, 7).unwrap();
        assert!(has_image(&dir, "docker.io/bench/t:v1"));
        assert!(!has_image(&dir, "docker.io/bench/other:v1"));
        let index = read_index(&dir);
        let blob = |d: &serde_json::Value| {
            std::fs::read(
                dir.join("blobs/sha256").join(d.as_str().unwrap().trim_start_matches("sha256:")),
            )
            .unwrap()
        };
        let manifest: serde_json::Value =
            serde_json::from_slice(&blob(&index["manifests"][0]["digest"])).unwrap();
        let config: serde_json::Value =
            serde_json::from_slice(&blob(&manifest["config"]["digest"])).unwrap();
        let layer = blob(&manifest["layers"][0]["digest"]);
        assert_eq!(
            format!("sha256:{}", hex(&Sha256::digest(&layer))),
            manifest["layers"][0]["digest"]
        );
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&layer[..]).read_to_end(&mut tar).unwrap();
        assert_eq!(
            format!("sha256:{}", hex(&Sha256::digest(&tar))),
            config["rootfs"]["diff_ids"][0]
        );
        let mut sizes = Vec::new();
        for e in tar::Archive::new(&tar[..]).entries().unwrap() {
            let e = e.unwrap();
            sizes.push((
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().size().unwrap(),
            ));
        }
        assert_eq!(
            sizes,
            [
                ("data/".into(), 0),
                ("data/f00000".into(), FILE_SIZE),
                ("data/f00001".into(), FILE_SIZE / 2 + 100)
            ]
        );
        // Compressible, but not trivially: gzip does real work.
        let ratio = layer.len() as f64 / tar.len() as f64;
        assert!((0.3..0.8).contains(&ratio), "ratio {ratio}");
        // Deterministic: the same seed gives the same layer.
        let again = std::env::temp_dir().join(format!("xtask-gen2-{}", std::process::id()));
        write_image(&again, "docker.io/bench/t:v1", (FILE_SIZE * 3) / 2 + 100, 7).unwrap();
        assert!(again
            .join("blobs/sha256")
            .join(manifest["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:"))
            .is_file());
        std::fs::remove_dir_all(&dir).ok();
        std::fs::remove_dir_all(&again).ok();
    }
}
