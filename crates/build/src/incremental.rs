//! `--input-tar` (LinuxKit §3.3): a rebuild copies every section whose YAML entry did not change
//! from the previous build's tar instead of extracting its image again. The previous config is
//! read back from the tar's metadata file (the `files` entry with `metadata: yaml|json`), so the
//! config must have one. Sections are matched by their `LINUXKIT.source` and `LINUXKIT.location`
//! records. The tar's headers are indexed once ([`baleen_tree::SectionIndex`]), and each copied
//! section reads only its own bytes; nothing is held in memory.

use baleen_spec::{Config, Image};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum IncrementalError {
    #[error("--input-tar needs a `files` entry with `metadata: yaml` or `json`: it is how the previous build's config is found")]
    NoMetadata,
    #[error("--input-tar {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error(
        "--input-tar {path}: it has no {file} (the previous build had no metadata file there)"
    )]
    MissingMetadata { path: PathBuf, file: String },
    #[error("--input-tar {path}: its {file} is not a valid config:\n{message}")]
    BadMetadata { path: PathBuf, file: String, message: String },
}

/// The previous build: its tar and its config.
#[derive(Debug)]
pub struct Previous {
    path: PathBuf,
    /// Where each section lies in the tar.
    index: baleen_tree::SectionIndex,
    /// The previous build's config, as its metadata file recorded it (references expanded).
    config: Config,
    /// This build's config with references expanded, once, to compare section by section.
    now: Config,
}

impl Previous {
    /// Reads the previous config out of `path`, at the metadata file `cfg` names.
    pub fn load(path: &Path, cfg: &Config) -> Result<Previous, IncrementalError> {
        let file = cfg
            .files
            .iter()
            .find(|f| f.metadata.is_some())
            .map(|f| f.path.trim_start_matches('/').to_string())
            .ok_or(IncrementalError::NoMetadata)?;
        let read = |message: String| IncrementalError::Read { path: path.to_path_buf(), message };
        let mut tar = std::fs::File::open(path).map_err(|e| read(baleen_spec::chain(&e)))?;
        let bytes = baleen_tree::read_tar_file(&mut tar, &file)
            .map_err(|e| read(baleen_spec::chain(&e)))?
            .ok_or_else(|| IncrementalError::MissingMetadata {
                path: path.to_path_buf(),
                file: file.clone(),
            })?;
        let text = String::from_utf8_lossy(&bytes);
        let name = format!("{}:{file}", path.display());
        let src = baleen_spec::Source { name: &name, text: &text, template_dir: None };
        let config = baleen_spec::load(src, None).map_err(|d| IncrementalError::BadMetadata {
            path: path.to_path_buf(),
            file,
            message: d.to_string(),
        })?;
        let file = std::fs::File::open(path).map_err(|e| read(baleen_spec::chain(&e)))?;
        let index = baleen_tree::SectionIndex::build(std::io::BufReader::new(file))
            .map_err(|e| read(baleen_spec::chain(&e)))?;
        Ok(Previous {
            path: path.to_path_buf(),
            index,
            config: config.with_expanded_refs(),
            now: cfg.with_expanded_refs(),
        })
    }

    /// The entries of section `location` of image `source`, as a tar stream of their own, or
    /// `None` when the tar holds none of them.
    pub fn section(
        &self,
        source: &str,
        location: &str,
    ) -> std::io::Result<Option<impl std::io::Read>> {
        let Some(range) = self.index.range(source, location) else { return Ok(None) };
        let file = std::io::BufReader::new(std::fs::File::open(&self.path)?);
        baleen_tree::section_reader(file, range).map(Some)
    }

    /// The kernel section (image, cmdline, binary, tar, ucode) is the same.
    pub fn kernel_unchanged(&self) -> bool {
        self.now.kernel == self.config.kernel
    }

    pub fn init_unchanged(&self, i: usize) -> bool {
        self.config.init.get(i) == self.now.init.get(i)
    }

    pub fn volume_unchanged(&self, i: usize) -> bool {
        let strip = |v: &baleen_spec::Volume| baleen_spec::Volume {
            origin: Default::default(),
            ..v.clone()
        };
        let old = self.config.volumes.get(i).map(strip);
        old.is_some() && old == self.now.volumes.get(i).map(strip)
    }

    /// Container `i` of `section` can be copied: its whole YAML entry is the same, and so is the
    /// container whose extraction of the image it uses. A bundle whose image an earlier container
    /// also uses holds only its config and points at that container's root (§3.2), so when the
    /// owner of the image moved or changed, the copy would point at the wrong root, or keep its
    /// own where a full build now shares one: it is built again instead.
    pub fn container_unchanged(&self, section: &str, i: usize) -> bool {
        let (Some(old), Some(now)) =
            (entry(&self.config, section, i), entry(&self.now, section, i))
        else {
            return false;
        };
        if old != now {
            return false;
        }
        let (old_owner, now_owner) =
            (owner(&self.config, &old.image), owner(&self.now, &now.image));
        old_owner.is_some()
            && old_owner == now_owner
            && old_owner.and_then(|(s, j)| entry(&self.config, s, j))
                == now_owner.and_then(|(s, j)| entry(&self.now, s, j))
    }
}

fn section<'a>(c: &'a Config, section: &str) -> &'a [Image] {
    match section {
        "onboot" => &c.onboot,
        "onshutdown" => &c.onshutdown,
        _ => &c.services,
    }
}

/// Container `i` of `section` without its source position, to compare across configs.
fn entry(c: &Config, name: &str, i: usize) -> Option<Image> {
    section(c, name).get(i).map(|img| Image { origin: Default::default(), ..img.clone() })
}

/// The first container, in build order, that uses `image`: the one whose bundle holds its root.
fn owner(c: &Config, image: &str) -> Option<(&'static str, usize)> {
    ["onboot", "onshutdown", "services"].into_iter().find_map(|name| {
        section(c, name).iter().position(|img| img.image == image).map(|i| (name, i))
    })
}
