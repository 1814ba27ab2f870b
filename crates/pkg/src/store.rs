//! The content store of `baleen-oci` as an image [`Sink`]: `pkg build` output lands where
//! `baleen build` looks for images, under the canonical name (`docker.io/baleen/init:<tag>`).

use crate::image::{Desc, ImageError, Sink};
use baleen_oci::{Descriptor, Digest, MediaType, Reference, Store};
use std::io::Read;

fn store_err(what: &str, e: &dyn std::error::Error) -> ImageError {
    ImageError::Store { what: what.to_owned(), message: crate::chain(e) }
}

impl Sink for Store {
    fn put_blob(&mut self, digest: &str, size: u64, r: &mut dyn Read) -> Result<(), ImageError> {
        let d = Digest::parse(digest).map_err(|e| store_err(digest, &e))?;
        if self.has_blob(&d) {
            return Ok(());
        }
        let blob = self.write_blob(r, Some(&d)).map_err(|e| store_err(digest, &e))?;
        if blob.size != size {
            let message = format!("{} bytes stored, {size} expected", blob.size);
            return Err(ImageError::Store { what: digest.to_owned(), message });
        }
        Ok(())
    }

    fn tag(&mut self, name: &str, root: &Desc) -> Result<(), ImageError> {
        let r = Reference::parse(name).map_err(|e| store_err(name, &e))?;
        let d = Digest::parse(&root.digest).map_err(|e| store_err(name, &e))?;
        let desc =
            Descriptor::new(MediaType::from(root.media_type.as_str()), root.size, d.to_oci());
        Store::tag(self, &r, desc).map_err(|e| store_err(name, &e))
    }

    fn lookup(&self, name: &str) -> Option<Desc> {
        let r = Reference::parse(name).ok()?;
        let d = Store::lookup(self, &r).ok()??;
        // Only a complete image counts: a name whose blobs were collected is rebuilt.
        let digest = Digest::parse(d.digest().as_ref()).ok()?;
        self.has_blob(&digest).then(|| Desc {
            media_type: d.media_type().to_string(),
            digest: d.digest().to_string(),
            size: d.size(),
        })
    }

    fn architectures(&self, root: &Desc) -> Option<Vec<String>> {
        let digest = Digest::parse(&root.digest).ok()?;
        crate::image::index_architectures(&std::fs::read(self.blob_path(&digest)).ok()?)
    }
}

/// Opens the content store at `dir`, or the default one (`$BALEEN_CACHE`, `~/.baleen/cache`).
pub fn open_store(dir: Option<&std::path::Path>) -> Result<Store, ImageError> {
    let dir = dir.map(std::path::Path::to_path_buf).unwrap_or_else(Store::default_dir);
    Store::open(&dir).map_err(|e| store_err(&format!("opening the store {}", dir.display()), &e))
}

/// Pushes the built image `name` (`org/image:tag`) from the store to `registry` (a host, e.g.
/// `127.0.0.1:5000`; `None`: the registry the name implies) and returns the remote reference.
pub fn push(
    store: &Store,
    name: &str,
    registry: Option<&str>,
    insecure: &[String],
    progress: baleen_oci::Progress,
) -> Result<String, ImageError> {
    let local = Reference::parse(name).map_err(|e| store_err(name, &e))?;
    let remote_name = match registry {
        Some(host) => format!("{host}/{name}"),
        None => name.to_owned(),
    };
    let remote = Reference::parse(&remote_name).map_err(|e| store_err(&remote_name, &e))?;
    let mut opts = baleen_oci::PushOptions::default();
    opts.registry.insecure = insecure.to_vec();
    opts.progress = progress;
    baleen_oci::push_blocking(store, &local, &remote, &opts)
        .map_err(|e| store_err(&format!("pushing {name}"), &e))?;
    Ok(remote.to_string())
}
