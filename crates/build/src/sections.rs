//! The sections of the image tree, in LinuxKit's order, into one tree writer: each copied from
//! `--input-tar` when unchanged, or taken whole from the initrd's segment cache when its key is
//! there ([`crate::segments`]), or built from its image.

use crate::files;
use crate::images;
use crate::pipeline::{BuildError, Prepared, Request};
use crate::segments::{SectionKey, SegmentCache};
use baleen_tree::{Bundle, EntrySink, KernelOptions, TreeWriter};
use tracing::info;

/// The sections of the image tree, in LinuxKit's order, into `tw` (no SBOM).
pub(crate) fn assemble_sections<S: EntrySink>(
    req: &Request<'_>,
    prep: &Prepared,
    tw: &mut TreeWriter<S>,
    cache: &mut dyn SegmentCache<S>,
) -> Result<(), BuildError> {
    let Prepared {
        images,
        containers,
        ids,
        previous,
        sbom: _,
        oci_volumes,
        signer: _,
        measured: _,
        segments: _,
    } = prep;
    let limits = format!("{:?}", req.limits);
    let key = |name: &str| SectionKey::new(name, req.compression, &limits);
    let previous = previous.as_ref();
    let cfg = req.config;
    let tree = |source| BuildError::Tree { format: req.formats[0], source };
    let open = |reference: &str, location: &str| {
        images::open_for_tree(req.store, &images[reference], location)
            .map_err(|e| BuildError::Images(vec![e]))
    };
    // A damaged layer explains whatever the tree made of it: its error comes first.
    let checked = |checks: images::Checks, result: Result<(), baleen_tree::TreeError>| {
        checks.finish().map_err(|source| BuildError::Damaged { format: req.formats[0], source })?;
        result.map_err(tree)
    };
    // Copies a section from the previous build when it did not change; false when it must be
    // built: also when the input tar holds no entry of it (a tar not made from this config's
    // previous version), which copies nothing. (LinuxKit logs the same line.)
    let copy = |tw: &mut TreeWriter<S>, image: &str, location: &str, unchanged: bool| {
        let Some(prev) = previous.filter(|_| unchanged) else { return Ok(false) };
        let source = images[image].reference.to_string();
        let section = prev
            .section(&source, location)
            .map_err(|e| BuildError::Io { format: req.formats[0], source: e })?;
        let copied = match section {
            Some(mut tar) => tw.copy_from_tar(&mut tar, &source, location).map_err(tree)?,
            None => 0,
        };
        if copied == 0 {
            info!("{location} is not in the input tar: building it");
        } else {
            info!("copied {location} from the input tar ({copied} entries)");
        }
        Ok::<bool, BuildError>(copied > 0)
    };
    if let Some(k) = &cfg.kernel {
        let unchanged = previous.is_some_and(|p| p.kernel_unchanged());
        if let Some(image) = k.image.as_deref().filter(|s| !s.is_empty()) {
            if !copy(tw, image, "kernel", unchanged)? {
                let opts = KernelOptions {
                    cmdline: k.cmdline.clone().unwrap_or_default(),
                    binary: k.binary.clone().unwrap_or_default(),
                    tar: k.tar.clone(),
                    ucode: k.ucode.clone(),
                    decompress: req.decompress_kernel,
                };
                let mut kernel_key = key("kernel");
                kernel_key.image(&images[image]);
                kernel_key.bytes("options", format!("{opts:?}").as_bytes());
                if !cache.reuse(tw, &kernel_key)? {
                    cache.begin(tw, kernel_key)?;
                    let (image, checks) = open(image, "kernel")?;
                    checked(checks, tw.kernel(image, &opts))?;
                    cache.end(tw)?;
                }
            }
        }
    }
    let mut init_key = key("init");
    for reference in &cfg.init {
        init_key.image(&images[reference]);
    }
    if cfg.init.is_empty() || !cache.reuse(tw, &init_key)? {
        cache.begin(tw, init_key)?;
        for (i, reference) in cfg.init.iter().enumerate() {
            let location = format!("init[{i}]");
            let unchanged = previous.is_some_and(|p| p.init_unchanged(i));
            if !copy(tw, reference, &location, unchanged)? {
                let (image, checks) = open(reference, &location)?;
                checked(checks, tw.init(i, image))?;
            }
        }
        tw.finish_init().map_err(tree)?;
        cache.end(tw)?;
    }
    for (i, v) in cfg.volumes.iter().enumerate() {
        if let (Some(layout), Some(image)) = (&oci_volumes[i], v.image.as_deref()) {
            let unchanged = previous.is_some_and(|p| p.volume_unchanged(i));
            if copy(tw, image, &format!("volume[{i}]"), unchanged)? {
                tw.volume_dirs(i, &v.name).map_err(tree)?;
                continue;
            }
            let mut open = |d: &str| layout.open(req.store, d);
            let layout = baleen_tree::OciLayout {
                reference: layout.reference.clone(),
                blobs: layout.blobs.clone(),
                index_json: layout.index_json.clone(),
                open: &mut open,
            };
            tw.oci_volume(i, &v.name, layout).map_err(tree)?;
            continue;
        }
        let image = v.image.as_deref().filter(|s| !s.is_empty());
        let unchanged = previous.is_some_and(|p| p.volume_unchanged(i));
        if let Some(r) = image.filter(|_| unchanged) {
            if copy(tw, r, &format!("volume[{i}]"), true)? {
                tw.volume_dirs(i, &v.name).map_err(tree)?;
                continue;
            }
        }
        let mut volume_key = key(&format!("volume[{i}]"));
        volume_key.bytes("name", v.name.as_bytes());
        if let Some(r) = image {
            volume_key.image(&images[r]);
        }
        if cache.reuse(tw, &volume_key)? {
            continue;
        }
        cache.begin(tw, volume_key)?;
        match image {
            Some(r) => {
                let (image, checks) = open(r, &format!("volumes[{i}]"))?;
                checked(checks, tw.volume(i, &v.name, Some(image)))?;
            }
            None => tw.volume(i, &v.name, None).map_err(tree)?,
        }
        cache.end(tw)?;
    }
    for c in containers {
        let prefix = c.section.bundle_path(c.index, &c.name);
        let mut runtime_json = |root: &str| -> Vec<u8> {
            let rt =
                baleen_spec::runtime::runtime_json(c.runtime.clone(), &prefix, root, c.readonly);
            baleen_spec::oci::to_go_json(&rt).into_bytes()
        };
        let location = format!("{}[{}]", c.section.name(), c.index);
        let unchanged = previous.is_some_and(|p| p.container_unchanged(c.section.name(), c.index));
        if copy(tw, &c.image, &location, unchanged)? {
            let root = if c.readonly { "rootfs" } else { "lower" };
            let prefix = c.section.bundle_path(c.index, &c.name);
            tw.note_copied_bundle(
                &images[&c.image].reference.to_string(),
                format!("{prefix}/{root}"),
            );
            continue;
        }
        // Where the image's root is: this bundle's, or the one an earlier bundle extracted.
        let reference = images[&c.image].reference.to_string();
        let previous_root = tw.extracted_root(&reference).map(String::from);
        let root = previous_root
            .clone()
            .unwrap_or_else(|| format!("{prefix}/{}", if c.readonly { "rootfs" } else { "lower" }));
        let mut bundle_key = key(&location);
        bundle_key.image(&images[&c.image]);
        bundle_key.bytes("prefix", prefix.as_bytes());
        bundle_key.bytes("readonly", &[u8::from(c.readonly)]);
        bundle_key.bytes("root", root.as_bytes());
        bundle_key.bytes("shared", &[u8::from(previous_root.is_some())]);
        bundle_key.bytes("config.json", &c.config_json);
        bundle_key.bytes("runtime.json", &runtime_json(&root));
        if cache.reuse(tw, &bundle_key)? {
            tw.note_copied_bundle(&reference, root);
            continue;
        }
        cache.begin(tw, bundle_key)?;
        let (image, checks) = open(&c.image, &location)?;
        let result = tw.bundle(Bundle {
            section: c.section,
            index: c.index,
            name: &c.name,
            image,
            readonly: c.readonly,
            config_json: &c.config_json,
            runtime_json: &mut runtime_json,
        });
        checked(checks, result)?;
        cache.end(tw)?;
    }
    let items = files::resolve(cfg, ids)?;
    tw.files(items).map_err(tree)?;
    Ok(())
}
