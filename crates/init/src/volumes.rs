//! `containers/volumes/<name>` (YAML `volumes`; docs/init.md, "Containers", and docs/compat.md,
//! "Volume `tmp` and `merged` directories"): before any container starts, each volume's
//! `merged/` becomes what binds see — an overlay of `lower/` with a tmpfs upper when the volume
//! has a `tmp/` directory (LinuxKit's build always writes one), else a read-only bind of
//! `lower/`. As LinuxKit's `005-volumes` step.

use crate::sys::{ms, Sys};
use std::path::{Path, PathBuf};

/// One volume directory as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub dir: PathBuf,
    pub has_lower: bool,
    pub has_tmp: bool,
    pub has_merged: bool,
}

/// The volumes under `root` (`/containers/volumes`), sorted by name.
pub fn scan(root: &Path) -> Vec<Volume> {
    let mut v: Vec<Volume> = std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .map(|dir| Volume {
                    has_lower: dir.join("lower").is_dir(),
                    has_tmp: dir.join("tmp").is_dir(),
                    has_merged: dir.join("merged").is_dir(),
                    dir,
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| a.dir.cmp(&b.dir));
    v
}

/// Mounts each volume's `merged/`; returns one line per volume that could not be set up.
pub fn setup(sys: &mut dyn Sys, vols: &[Volume]) -> Vec<String> {
    let mut errors = Vec::new();
    for v in vols {
        let name = v.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !v.has_lower || !v.has_merged {
            errors.push(format!("volume {name} has no lower/ or merged/ directory"));
            continue;
        }
        let (lower, merged) = (v.dir.join("lower"), v.dir.join("merged"));
        let r = if v.has_tmp {
            let tmp = v.dir.join("tmp");
            let (upper, work) = (tmp.join("upper"), tmp.join("work"));
            let data = format!(
                "lowerdir={},upperdir={},workdir={}",
                lower.display(),
                upper.display(),
                work.display()
            );
            sys.mount(Some("tmpfs"), &tmp, Some("tmpfs"), ms::RELATIME, None)
                .and_then(|_| sys.mkdir_all(&upper, 0o755))
                .and_then(|_| sys.mkdir_all(&work, 0o755))
                .and_then(|_| {
                    sys.mount(Some("overlay"), &merged, Some("overlay"), ms::RELATIME, Some(&data))
                })
        } else {
            let src = lower.to_string_lossy();
            sys.mount(Some(&src), &merged, None, ms::BIND, None).and_then(|_| {
                sys.mount(None, &merged, None, ms::REMOUNT | ms::BIND | ms::RDONLY, None)
            })
        };
        if let Err(e) = r {
            errors.push(format!("setting up volume {name}: {e}"));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::Fake;

    fn vol(name: &str, tmp: bool) -> Volume {
        Volume {
            dir: Path::new("/containers/volumes").join(name),
            has_lower: true,
            has_tmp: tmp,
            has_merged: true,
        }
    }

    #[test]
    fn writable_volumes_overlay_readonly_ones_bind() {
        let mut f = Fake::new();
        let broken = Volume { has_merged: false, ..vol("c", false) };
        let errors = setup(&mut f, &[vol("a", true), vol("b", false), broken]);
        assert_eq!(errors, ["volume c has no lower/ or merged/ directory"]);
        assert_eq!(
            f.calls,
            [
                "mount tmpfs /containers/volumes/a/tmp tmpfs relatime -",
                "mkdir /containers/volumes/a/tmp/upper 755",
                "mkdir /containers/volumes/a/tmp/work 755",
                "mount overlay /containers/volumes/a/merged overlay relatime \
                 lowerdir=/containers/volumes/a/lower,upperdir=/containers/volumes/a/tmp/upper,\
                 workdir=/containers/volumes/a/tmp/work",
                "mount /containers/volumes/b/lower /containers/volumes/b/merged - bind -",
                "mount - /containers/volumes/b/merged - bind|remount|ro -",
            ]
        );
    }
}
