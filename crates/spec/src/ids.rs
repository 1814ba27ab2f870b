//! Per-container numeric ids (spec §2.5): each onboot, onshutdown and service container, in that
//! order, gets the next id from 100; a uid/gid that names a container means that id.

use crate::config::{Config, IdRef};
use std::collections::BTreeMap;

/// The first id given to a container.
pub const FIRST_ID: u32 = 100;

/// Container name → id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMap(BTreeMap<String, u32>);

impl IdMap {
    pub fn new(cfg: &Config) -> Self {
        let mut map = BTreeMap::new();
        let all = cfg.onboot.iter().chain(&cfg.onshutdown).chain(&cfg.services);
        for (id, img) in (FIRST_ID..).zip(all) {
            // A later container with the same name takes the name over, as in LinuxKit.
            map.insert(img.name.clone(), id);
        }
        IdMap(map)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn get(&self, name: &str) -> Option<u32> {
        self.0.get(name).copied()
    }

    /// `""` and `root` are 0; other names must be containers.
    pub fn resolve_name(&self, name: &str) -> Result<u32, String> {
        match name {
            "" | "root" => Ok(0),
            _ => self
                .get(name)
                .ok_or_else(|| format!("cannot find id for `{name}`: no container has that name")),
        }
    }

    pub fn resolve(&self, id: &IdRef) -> Result<u32, String> {
        match id {
            IdRef::Num(n) => {
                u32::try_from(*n).map_err(|_| format!("id {n} is out of range (0..=4294967295)"))
            }
            IdRef::Name(name) => self.resolve_name(name),
        }
    }
}
