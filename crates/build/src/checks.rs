//! What a build refuses before it pulls an image or writes a file: formats that cannot be
//! written together or to the requested output, and an `--input-tar` that is also an output.

use crate::format::Format;
use crate::pipeline::{BuildError, Output, Request};
use std::path::PathBuf;

/// `--input-tar` must not be combined with `--pull`, nor be one of this build's outputs.
pub(crate) fn input_tar(req: &Request<'_>, path: &std::path::Path) -> Result<(), BuildError> {
    if req.pull.always {
        return Err(BuildError::InputTarWithPull);
    }
    let same = |out: &std::path::Path| {
        std::fs::canonicalize(out).ok().is_some_and(|o| std::fs::canonicalize(path).ok() == Some(o))
    };
    let outputs: Vec<PathBuf> = match &req.output {
        Output::Stdout => vec![],
        Output::File(p) => vec![p.clone()],
        Output::Base { dir, name } => req
            .formats
            .iter()
            .flat_map(|f| f.outputs().iter().map(|s| dir.join(format!("{name}{s}"))))
            .collect(),
    };
    match outputs.into_iter().find(|o| same(o)) {
        Some(o) => Err(BuildError::InputTarIsOutput(o)),
        None => Ok(()),
    }
}

pub(crate) fn formats(req: &Request<'_>) -> Result<(), BuildError> {
    for &f in &req.formats {
        if f.streamable() && req.formats.len() > 1 {
            return Err(BuildError::NotAlone(f));
        }
        if !f.streamable() && !matches!(req.output, Output::Base { .. }) {
            return Err(BuildError::NotStreamable(f));
        }
    }
    same_output(&req.formats)
}

/// Refuses two formats that would write different contents to one file (`iso-bios` and
/// `kernel+iso` both write `B.iso`, `vhd` and `dynamic-vhd` both `B.vhd`): the later one would
/// silently replace the earlier. The kernel, command line and stage-1 initrd that several
/// formats share are the same bytes whichever writes them.
fn same_output(formats: &[Format]) -> Result<(), BuildError> {
    const SHARED: &[&str] = &["-kernel", "-cmdline", crate::rootfs::ROOT_INITRD];
    for (i, &first) in formats.iter().enumerate() {
        for &second in &formats[i + 1..] {
            if first == second {
                continue;
            }
            let clash = first
                .outputs()
                .iter()
                .find(|s| !SHARED.contains(s) && second.outputs().contains(s));
            if let Some(&suffix) = clash {
                return Err(BuildError::SameOutput { first, second, suffix });
            }
        }
    }
    Ok(())
}
