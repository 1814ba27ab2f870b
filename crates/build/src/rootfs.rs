//! `kernel+squashfs` and `kernel+erofs`: the image tree minus `boot/` as a root filesystem image
//! (LinuxKit's rule), `B-kernel` and `B-cmdline` from `boot/`, and — baleen's addition —
//! `B-root-initrd.img`, the small stage-1 initrd that mounts that root.
//!
//! Why the extra initrd: LinuxKit's kernels build in the disk drivers and filesystems, so
//! `linuxkit run` boots these formats with `-kernel` and `root=/dev/sda` alone. Debian's cloud
//! kernel (baleen's default) has them as modules. The stage-1 initrd holds baleen-init (the
//! tree's `/init`, which enters its stage-1 mode when it finds `/etc/baleen-stage1`) and the
//! modules that reach and mount a root ([`STAGE1_MODULES`] and what they depend on), taken from
//! the kernel's `lib/modules` in the same tree pass that writes the filesystem.
//!
//! One pass: a [`Gather`] sink hands every entry outside `boot/` to the filesystem writer and
//! keeps a copy of what stage 1 needs: the init binary (in memory, < 1 MB), module files
//! (spilled to an anonymous temporary file, so memory stays flat whatever the kernel ships), and
//! `modules.dep`.
//!
//! `kernel+iso` (crate::iso) uses the same [`Gather`] and [`finish_boot_files`] around its ISO.
//!
//! Non-goals: microcode (LinuxKit drops `boot/` whole).

use crate::format::{Format, Target};
use crate::output::OutputWriter;
use crate::root_partition::RootFs;
use baleen_formats::{CpioWriter, ErofsWriter, SquashfsWriter};
use baleen_tree::{Entry, EntryKind, EntrySink};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// The suffix of the stage-1 initrd (cannot clash with `kernel+initrd`'s `-initrd.img`).
pub const ROOT_INITRD: &str = "-root-initrd.img";

/// What stage 1 loads: virtio PCI, disks and CD-ROMs behind virtio-blk/virtio-scsi, the root
/// filesystems and overlay, and device-mapper's verity target (for `--verity` roots). Names a kernel builds in are simply not found in its modules.
pub const STAGE1_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "sd_mod",
    "sr_mod",
    "cdrom",
    "isofs",
    "squashfs",
    "erofs",
    "overlay",
    "loop",
    "dm_mod",
    "dm_verity",
];

/// The marker baleen-init looks for; its presence in the init binary says the init can do it.
const MARKER: &str = "etc/baleen-stage1";

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("the image tree has no /init file: the stage-1 initrd needs baleen-init from the init images")]
    NoInit,
    #[error(
        "/init is not a baleen-init with stage 1 (it never mentions /{MARKER}); the {format} \
         formats boot through baleen-init: use baleen's init image"
    )]
    NotBaleenInit { format: Format },
    #[error("the image tree has no boot/kernel: {0} needs a kernel section")]
    NoKernel(Format),
    #[error("writing the squashfs")]
    Squashfs(#[from] baleen_formats::SquashfsError),
    #[error("writing the erofs image")]
    Erofs(#[from] baleen_formats::ErofsError),
    #[error("appending the dm-verity hash tree to the root image")]
    Verity(#[from] baleen_formats::VerityError),
    #[error("{what}")]
    Io { what: String, source: io::Error },
}

pub(crate) fn io_err(what: &str) -> impl FnOnce(io::Error) -> RootfsError + '_ {
    move |source| RootfsError::Io { what: what.to_string(), source }
}

/// Module files seen in the tree, by path under `lib/modules/<release>/`, spilled to a file.
#[derive(Debug)]
pub struct Modules {
    spill: File,
    at: u64,
    release: Option<String>,
    files: BTreeMap<String, (u64, u64)>,
    dep: Option<String>,
}

impl Modules {
    fn new() -> io::Result<Self> {
        Ok(Modules {
            spill: crate::scratch::file()?,
            at: 0,
            release: None,
            files: BTreeMap::new(),
            dep: None,
        })
    }

    fn read(&mut self, rel: &str) -> io::Result<Vec<u8>> {
        let (at, len) = self.files[rel];
        let mut buf = vec![0u8; len as usize];
        self.spill.seek(SeekFrom::Start(at))?;
        self.spill.read_exact(&mut buf)?;
        Ok(buf)
    }
}

/// The module name of a file: `kernel/fs/erofs/erofs.ko.xz` → `erofs`.
pub fn module_name(rel: &str) -> Option<String> {
    let file = rel.rsplit('/').next()?;
    let stem = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"].iter().find_map(|s| file.strip_suffix(s))?;
    Some(stem.replace('-', "_"))
}

/// `depends=` of an uncompressed module's `.modinfo` (for kernels without modules.dep).
fn modinfo_depends(elf: &[u8]) -> Vec<String> {
    let key = b"\0depends=";
    let Some(at) = elf.windows(key.len()).position(|w| w == key) else { return Vec::new() };
    let rest = &elf[at + key.len()..];
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end])
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.replace('-', "_"))
        .collect()
}

/// The module files stage 1 needs, dependencies included, as paths under the release
/// directory; `deps` maps a module name to the names it depends on.
pub fn closure(
    wanted: &[&str],
    by_name: &BTreeMap<String, String>,
    deps: &BTreeMap<String, Vec<String>>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = wanted.iter().map(|s| s.to_string()).collect();
    let mut seen = BTreeSet::new();
    while let Some(n) = todo.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        let Some(path) = by_name.get(&n) else { continue };
        out.insert(path.clone());
        todo.extend(deps.get(&n).into_iter().flatten().cloned());
    }
    out
}

/// The tree split for a root filesystem: `boot/` kept aside, the rest to `fs`, copies of what
/// stage 1 needs.
pub struct Gather<'a> {
    fs: &'a mut dyn EntrySink,
    kernel: File,
    kernel_len: u64,
    cmdline: Vec<u8>,
    init: Option<Vec<u8>>,
    modules: Modules,
}

impl EntrySink for Gather<'_> {
    fn add(&mut self, entry: &Entry, data: &mut dyn Read) -> io::Result<()> {
        let path = entry.path.as_str();
        if path == "boot" || path.starts_with("boot/") {
            match path {
                "boot/kernel" => {
                    self.kernel.set_len(0)?;
                    self.kernel.rewind()?;
                    self.kernel_len = io::copy(data, &mut self.kernel)?;
                }
                "boot/cmdline" => {
                    self.cmdline.clear();
                    data.read_to_end(&mut self.cmdline)?;
                }
                _ => {
                    io::copy(data, &mut io::sink())?;
                }
            }
            return Ok(());
        }
        let EntryKind::File { size } = entry.kind else { return self.fs.add(entry, data) };
        let module = path.strip_prefix("lib/modules/").and_then(|p| p.split_once('/'));
        let keep = path == "init"
            || module.is_some_and(|(_, rel)| rel == "modules.dep" || module_name(rel).is_some());
        if !keep {
            return self.fs.add(entry, data);
        }
        let mut buf = Vec::with_capacity(size as usize);
        data.take(size).read_to_end(&mut buf)?;
        self.fs.add(entry, &mut &buf[..])?;
        match module {
            None => self.init = Some(buf),
            Some((release, rel)) => {
                let m = &mut self.modules;
                m.release = Some(release.to_owned());
                if rel == "modules.dep" {
                    m.dep = Some(String::from_utf8_lossy(&buf).into_owned());
                } else {
                    m.spill.seek(SeekFrom::Start(m.at))?;
                    m.spill.write_all(&buf)?;
                    m.files.insert(rel.to_owned(), (m.at, buf.len() as u64));
                    m.at += buf.len() as u64;
                }
            }
        }
        Ok(())
    }
}

/// What a pass gathered besides the filesystem.
pub struct Gathered {
    pub kernel: File,
    pub kernel_len: u64,
    pub cmdline: Vec<u8>,
    pub init: Option<Vec<u8>>,
    pub modules: Modules,
}

impl<'a> Gather<'a> {
    pub fn new(fs: &'a mut dyn EntrySink) -> io::Result<Self> {
        Ok(Gather {
            fs,
            kernel: crate::scratch::file()?,
            kernel_len: 0,
            cmdline: Vec::new(),
            init: None,
            modules: Modules::new()?,
        })
    }

    pub fn finish(self) -> Gathered {
        Gathered {
            kernel: self.kernel,
            kernel_len: self.kernel_len,
            cmdline: self.cmdline,
            init: self.init,
            modules: self.modules,
        }
    }
}

/// Writes the stage-1 initrd (gzip'd newc cpio): `/init`, the marker naming the modules, the
/// module closure and a `modules.dep` for it.
pub fn stage1_initrd<W: Write>(
    format: Format,
    init: Option<&[u8]>,
    modules: &mut Modules,
    out: W,
) -> Result<W, RootfsError> {
    let init = init.ok_or(RootfsError::NoInit)?;
    if !init.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()) {
        return Err(RootfsError::NotBaleenInit { format });
    }
    let mut by_name = BTreeMap::new();
    for rel in modules.files.keys() {
        if let Some(n) = module_name(rel) {
            by_name.insert(n, rel.clone());
        }
    }
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    match &modules.dep {
        Some(text) => {
            for line in text.lines() {
                let Some((path, d)) = line.split_once(':') else { continue };
                let Some(n) = module_name(path) else { continue };
                deps.insert(n, d.split_whitespace().filter_map(module_name).collect());
            }
        }
        None => {
            let plain: Vec<(String, String)> = by_name
                .iter()
                .filter(|(_, rel)| rel.ends_with(".ko"))
                .map(|(n, rel)| (n.clone(), rel.clone()))
                .collect();
            for (n, rel) in plain {
                let elf = modules.read(&rel).map_err(io_err("reading a spilled module"))?;
                deps.insert(n, modinfo_depends(&elf));
            }
        }
    }
    let files = closure(STAGE1_MODULES, &by_name, &deps);
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    let mut cpio = CpioWriter::new(gz);
    let werr = || io_err("writing the stage-1 initrd");
    let dir = |p: &str| Entry::new(p, EntryKind::Dir, 0o755);
    let file =
        |p: &str, len: usize, mode| Entry::new(p, EntryKind::File { size: len as u64 }, mode);
    for d in ["dev", "proc", "sys", "etc", "run", "tmp"] {
        cpio.add(&dir(d), &mut io::empty()).map_err(werr())?;
    }
    cpio.add(&file("init", init.len(), 0o755), &mut &init[..]).map_err(werr())?;
    let marker = format!(
        "# baleen stage 1 ({format}): modules to load before mounting root=\n{}\n",
        STAGE1_MODULES.join("\n")
    );
    cpio.add(&file(MARKER, marker.len(), 0o644), &mut marker.as_bytes()).map_err(werr())?;
    if let Some(release) = modules.release.clone() {
        let base = format!("lib/modules/{release}");
        let mut dep = String::new();
        for rel in &files {
            let bytes = modules.read(rel).map_err(io_err("reading a spilled module"))?;
            let path = format!("{base}/{rel}");
            cpio.add(&file(&path, bytes.len(), 0o644), &mut &bytes[..]).map_err(werr())?;
            let n = module_name(rel).unwrap_or_default();
            let d: Vec<&str> = deps
                .get(&n)
                .into_iter()
                .flatten()
                .filter_map(|d| by_name.get(d).map(String::as_str))
                .collect();
            dep.push_str(&format!("{rel}: {}\n", d.join(" ")));
        }
        let path = format!("{base}/modules.dep");
        cpio.add(&file(&path, dep.len(), 0o644), &mut dep.as_bytes()).map_err(werr())?;
    }
    let gz = cpio.finish().map_err(werr())?;
    gz.finish().map_err(werr())
}

/// One tree pass (`assemble`) into the format's filesystem writer, then `B-kernel`,
/// `B-cmdline` (each only when non-empty, as `kernel+initrd`) and `B-root-initrd.img`.
pub fn write(
    fs: RootFs,
    target: &mut Target<'_>,
    verity: bool,
    assemble: impl FnOnce(&mut dyn EntrySink) -> Result<(), crate::BuildError>,
) -> Result<(), crate::BuildError> {
    let format = target.format;
    let fail = |source| crate::BuildError::Rootfs { format, source };
    let out = target.create(format.outputs()[2]);
    let out = out.map_err(|e| fail(io_err("creating the image")(e)))?;
    let (mut gathered, out) = write_filesystem(format, fs, out, assemble)?;
    if verity {
        append_verity(out, &mut gathered.cmdline).map_err(fail)?;
    } else {
        let mut out = out;
        out.flush().map_err(|e| fail(io_err("flushing")(e)))?;
    }
    finish_boot_files(target, gathered)
}

/// One tree pass (`assemble`) into the filesystem `fs` (`kernel+squashfs`'s or
/// `kernel+erofs`'s) written to `out`, for `format`'s output: what stage 1 needs, and `out` at
/// the image's end.
pub fn write_filesystem<W: Write + Seek>(
    format: Format,
    fs: RootFs,
    out: W,
    assemble: impl FnOnce(&mut dyn EntrySink) -> Result<(), crate::BuildError>,
) -> Result<(Gathered, W), crate::BuildError> {
    let fail = |source| crate::BuildError::Rootfs { format, source };
    match fs {
        RootFs::Squashfs => {
            let mut fs = SquashfsWriter::new(out).map_err(|e| fail(io_err("squashfs")(e)))?;
            let mut g = Gather::new(&mut fs).map_err(|e| fail(io_err("temporary files")(e)))?;
            assemble(&mut g)?;
            let g = g.finish();
            let out = fs.finish().map_err(|e| fail(e.into()))?;
            Ok((g, out))
        }
        RootFs::Erofs => {
            let mut fs = ErofsWriter::new(out).map_err(|e| fail(io_err("erofs")(e)))?;
            let mut g = Gather::new(&mut fs).map_err(|e| fail(io_err("temporary files")(e)))?;
            assemble(&mut g)?;
            let g = g.finish();
            let out = fs.finish().map_err(|e| fail(e.into()))?;
            Ok((g, out))
        }
    }
}

/// Appends the hash tree after the filesystem in `out` and its words to the command line.
fn append_verity(mut out: OutputWriter, cmdline: &mut Vec<u8>) -> Result<(), RootfsError> {
    let data_len = out.stream_position().map_err(io_err("flushing the root image"))?;
    let file = out.into_inner().map_err(|e| io_err("flushing the root image")(e.into_error()))?;
    let tree = crate::verity::append(&file, data_len)?;
    append_words(cmdline, &crate::verity::cmdline_words(&tree));
    Ok(())
}

/// `words` after the command line's own, one space between.
pub fn append_words(cmdline: &mut Vec<u8>, words: &str) {
    while cmdline.last().is_some_and(u8::is_ascii_whitespace) {
        cmdline.pop();
    }
    if !cmdline.is_empty() {
        cmdline.push(b' ');
    }
    cmdline.extend_from_slice(words.as_bytes());
}

/// `B-kernel`, `B-cmdline` and `B-root-initrd.img` from a gathered pass.
pub fn finish_boot_files(
    target: &mut Target<'_>,
    mut g: Gathered,
) -> Result<(), crate::BuildError> {
    let format = target.format;
    let fail = |source| crate::BuildError::Rootfs { format, source };
    if g.kernel_len == 0 {
        return Err(fail(RootfsError::NoKernel(format)));
    }
    let mut w = target.create("-kernel").map_err(|e| fail(io_err("B-kernel")(e)))?;
    g.kernel.rewind().map_err(|e| fail(io_err("B-kernel")(e)))?;
    io::copy(&mut g.kernel, &mut w).map_err(|e| fail(io_err("B-kernel")(e)))?;
    w.flush().map_err(|e| fail(io_err("B-kernel")(e)))?;
    if !g.cmdline.is_empty() {
        let mut w = target.create("-cmdline").map_err(|e| fail(io_err("B-cmdline")(e)))?;
        w.write_all(&g.cmdline).map_err(|e| fail(io_err("B-cmdline")(e)))?;
        w.flush().map_err(|e| fail(io_err("B-cmdline")(e)))?;
    }
    write_stage1(target, g)
}

/// `B-root-initrd.img` from a gathered pass.
fn write_stage1(target: &mut Target<'_>, mut g: Gathered) -> Result<(), crate::BuildError> {
    let format = target.format;
    let fail = |source| crate::BuildError::Rootfs { format, source };
    let w = target.create(ROOT_INITRD).map_err(|e| fail(io_err(ROOT_INITRD)(e)))?;
    let mut w = stage1_initrd(format, g.init.as_deref(), &mut g.modules, w).map_err(fail)?;
    w.flush().map_err(|e| fail(io_err(ROOT_INITRD)(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_closure_follows_dependencies_and_skips_absent_names() {
        let by_name: BTreeMap<String, String> = [
            ("virtio_scsi", "kernel/drivers/scsi/virtio_scsi.ko"),
            ("scsi_mod", "kernel/drivers/scsi/scsi_mod.ko"),
            ("scsi_common", "kernel/drivers/scsi/scsi_common.ko"),
            ("erofs", "kernel/fs/erofs/erofs.ko.xz"),
            ("veth", "kernel/drivers/net/veth.ko"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
        let deps: BTreeMap<String, Vec<String>> = [
            ("virtio_scsi", vec!["scsi_mod".to_owned()]),
            ("scsi_mod", vec!["scsi_common".to_owned()]),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b))
        .collect();
        let got = closure(STAGE1_MODULES, &by_name, &deps);
        let want: BTreeSet<String> = [
            "kernel/drivers/scsi/virtio_scsi.ko",
            "kernel/drivers/scsi/scsi_mod.ko",
            "kernel/drivers/scsi/scsi_common.ko",
            "kernel/fs/erofs/erofs.ko.xz",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        assert_eq!(got, want, "no veth (not wanted); squashfs etc. absent (built in)");
    }

    #[test]
    fn module_names_and_modinfo_depends() {
        assert_eq!(module_name("kernel/fs/erofs/erofs.ko.xz").as_deref(), Some("erofs"));
        assert_eq!(module_name("kernel/a/virtio-net.ko").as_deref(), Some("virtio_net"));
        assert_eq!(module_name("modules.dep"), None);
        let elf = b"\x7fELF junk\0license=GPL\0depends=scsi_mod,cdrom\0intree=Y\0";
        assert_eq!(modinfo_depends(elf), ["scsi_mod", "cdrom"]);
        assert!(modinfo_depends(b"\0depends=\0").is_empty());
    }

    fn feed(sink: &mut dyn EntrySink) {
        let f = |p: &str, d: &[u8]| {
            (Entry::new(p, EntryKind::File { size: d.len() as u64 }, 0o644), d.to_vec())
        };
        for (e, d) in [
            f("boot/kernel", b"KERNEL"),
            f("boot/cmdline", b"console=ttyS0"),
            f("boot/ucode.cpio", b"UCODE"),
            f("init", b"baleen-init /etc/baleen-stage1"),
            f("lib/modules/6.1/kernel/fs/erofs/erofs.ko", b"\0depends=crc\0"),
            f("lib/modules/6.1/kernel/lib/crc.ko", b"crc"),
            f("lib/modules/6.1/modules.dep", b"kernel/fs/erofs/erofs.ko: kernel/lib/crc.ko\n"),
            f("etc/motd", b"hi"),
        ] {
            sink.add(&e, &mut &d[..]).unwrap();
        }
    }

    #[test]
    fn gather_keeps_boot_aside_and_copies_what_stage1_needs() {
        let mut fs = baleen_tree::Collect::default();
        let mut g = Gather::new(&mut fs).unwrap();
        feed(&mut g);
        let mut g = g.finish();
        assert!(!fs.paths().iter().any(|p| p.starts_with("boot")), "{:?}", fs.paths());
        assert_eq!(fs.get("init").unwrap().1, b"baleen-init /etc/baleen-stage1");
        assert_eq!(fs.paths().len(), 5, "everything but boot/ reaches the filesystem");
        assert_eq!((g.kernel_len, g.cmdline.as_slice()), (6, &b"console=ttyS0"[..]));
        assert_eq!(g.modules.release.as_deref(), Some("6.1"));
        assert_eq!(g.modules.read("kernel/lib/crc.ko").unwrap(), b"crc");
        let gz = stage1_initrd(Format::KernelErofs, g.init.as_deref(), &mut g.modules, Vec::new());
        let mut cpio = Vec::new();
        flate2::read::GzDecoder::new(&gz.unwrap()[..]).read_to_end(&mut cpio).unwrap();
        let text = String::from_utf8_lossy(&cpio);
        for want in
            ["lib/modules/6.1/kernel/lib/crc.ko", "kernel/fs/erofs/erofs.ko: kernel/lib/crc.ko"]
        {
            assert!(text.contains(want), "{want} in the initrd");
        }
    }

    #[test]
    fn an_init_without_stage1_is_refused() {
        let mut m = Modules::new().unwrap();
        let err = stage1_initrd(Format::KernelErofs, Some(b"#!/bin/sh\n"), &mut m, Vec::new());
        assert!(matches!(err, Err(RootfsError::NotBaleenInit { .. })));
        let err = stage1_initrd(Format::KernelErofs, None, &mut m, Vec::new());
        assert!(matches!(err, Err(RootfsError::NoInit)));
        let ok =
            stage1_initrd(Format::KernelErofs, Some(b"..etc/baleen-stage1.."), &mut m, Vec::new());
        assert!(ok.is_ok_and(|gz| gz.starts_with(&[0x1f, 0x8b])));
    }
}
