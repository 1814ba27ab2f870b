//! Kernel modules: an explicit list (`/etc/baleen/modules`, `baleen.modules=`) plus coldplug
//! (each `/sys/devices/**/modalias` matched against `modules.alias`), loaded dependencies first
//! with finit_module(2). `.ko.xz`/`.ko.zst`/`.ko.gz` are decompressed here and loaded with
//! init_module(2): not every kernel decompresses modules itself (Debian 12's does not).
//!
//! A kernel tree may lack `modules.dep`/`modules.alias` (Debian's package generates them in
//! postinst). Then modules are found by walking `kernel/`, dependencies are read from each
//! module's `.modinfo` `depends=` string, and coldplug is skipped (reported once).
//! Failures are reported, never fatal. Non-goals: module parameters, blacklists, softdeps.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

/// `foo-bar` and `foo_bar` name the same module.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The module name of a file: `kernel/fs/overlayfs/overlay.ko.zst` → `overlay`.
pub fn module_name(file: &str) -> String {
    let base = file.rsplit('/').next().unwrap_or(file);
    let stem = [".ko.xz", ".ko.zst", ".ko.gz", ".ko"]
        .iter()
        .find_map(|s| base.strip_suffix(s))
        .unwrap_or(base);
    normalize(stem)
}

/// True for compressed module files.
pub fn compressed(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "xz" || e == "zst" || e == "gz")
}

/// The largest module accepted after decompression (the biggest in Debian's kernels are a few
/// MiB): a corrupt or hostile file cannot exhaust init's memory.
pub const MAX_MODULE: u64 = 64 << 20;

/// The modules init loads by name whatever an image lists: `button`, the ACPI power button's
/// driver, so a host's "power off" (qemu `system_powerdown`, SIGTERM to `baleen run`) reaches
/// init; `tpm_tis` and `tpm_crb`, the TPM drivers (qemu's `tpm-tis`, firmware TPMs), so init
/// can log PCR 11. The kernel component must ship them or build them in (the examples' boot
/// test checks pkg/kernel does).
pub const BY_NAME: &[&str] = &["button", "tpm_tis", "tpm_crb"];

/// The ELF bytes of a module file: `.ko` as it is, `.ko.zst`/`.ko.xz`/`.ko.gz` decompressed.
pub fn read_module(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let bad = |e: &dyn std::fmt::Display| {
        io::Error::new(io::ErrorKind::InvalidData, format!("decompressing: {e}"))
    };
    let mut out = Vec::new();
    match path.extension().and_then(|e| e.to_str()) {
        Some("zst") => {
            let d = ruzstd::decoding::StreamingDecoder::new(io::BufReader::new(file))
                .map_err(|e| bad(&e))?;
            d.take(MAX_MODULE + 1).read_to_end(&mut out)?;
        }
        Some("xz") => {
            // lzma-rs decodes into a writer; the limit is checked after (xz has no size cap of
            // its own to stream against), the file itself being bounded.
            let len = file.metadata()?.len();
            if len > MAX_MODULE {
                return Err(bad(&format!("{len} bytes compressed")));
            }
            lzma_rs::xz_decompress(&mut io::BufReader::new(file), &mut out).map_err(|e| bad(&e))?;
        }
        Some("gz") => {
            flate2::read::GzDecoder::new(file).take(MAX_MODULE + 1).read_to_end(&mut out)?;
        }
        _ => {
            file.take(MAX_MODULE + 1).read_to_end(&mut out)?;
        }
    }
    if out.len() as u64 > MAX_MODULE {
        return Err(bad(&format!("over {MAX_MODULE} bytes")));
    }
    if compressed(path) && !out.starts_with(b"\x7fELF") {
        return Err(bad(&"the result is not an ELF module"));
    }
    Ok(out)
}

#[derive(Debug, Clone)]
struct Entry {
    /// Relative to the modules directory.
    path: PathBuf,
    /// From modules.dep; `None` when it must be read from the module itself.
    deps: Option<Vec<String>>,
}

/// The modules of one kernel release.
#[derive(Debug, Default)]
pub struct Index {
    dir: PathBuf,
    modules: BTreeMap<String, Entry>,
    aliases: Vec<(String, String)>,
    builtin: BTreeSet<String>,
    /// Whether modules.dep / modules.alias were present.
    pub has_dep: bool,
    pub has_alias: bool,
}

impl Index {
    /// Reads `dir` (`/lib/modules/<release>`).
    pub fn load(dir: &Path) -> Index {
        let mut ix = Index { dir: dir.into(), ..Index::default() };
        if let Ok(dep) = std::fs::read_to_string(dir.join("modules.dep")) {
            ix.has_dep = true;
            for line in dep.lines() {
                let Some((path, deps)) = line.split_once(':') else { continue };
                let deps = deps.split_whitespace().map(module_name).collect();
                ix.modules.insert(module_name(path), Entry { path: path.into(), deps: Some(deps) });
            }
        } else {
            let mut stack = vec![dir.join("kernel")];
            while let Some(d) = stack.pop() {
                let Ok(rd) = std::fs::read_dir(&d) else { continue };
                for e in rd.flatten() {
                    let p = e.path();
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        stack.push(p);
                    } else if let Ok(rel) = p.strip_prefix(dir) {
                        let rel_s = rel.to_string_lossy();
                        if rel_s.contains(".ko") {
                            ix.modules.insert(
                                module_name(&rel_s),
                                Entry { path: rel.into(), deps: None },
                            );
                        }
                    }
                }
            }
        }
        if let Ok(a) = std::fs::read_to_string(dir.join("modules.alias")) {
            ix.has_alias = true;
            for line in a.lines() {
                let mut w = line.split_whitespace();
                if let (Some("alias"), Some(pat), Some(name)) = (w.next(), w.next(), w.next()) {
                    ix.aliases.push((pat.to_owned(), normalize(name)));
                }
            }
        }
        if let Ok(b) = std::fs::read_to_string(dir.join("modules.builtin")) {
            ix.builtin = b.lines().map(module_name).collect();
        }
        ix
    }

    /// Modules whose alias pattern matches a device's modalias.
    pub fn match_alias(&self, modalias: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .aliases
            .iter()
            .filter(|(pat, _)| glob(pat.as_bytes(), modalias.as_bytes()))
            .map(|(_, n)| n.clone())
            .collect();
        v.dedup();
        v
    }

    fn deps(&self, e: &Entry) -> Vec<String> {
        if let Some(d) = &e.deps {
            return d.clone();
        }
        read_module(&self.dir.join(&e.path)).map(|b| modinfo_depends(&b)).unwrap_or_default()
    }

    /// Files to load for `names`, dependencies first, each once. Names built into the kernel
    /// are skipped; unknown names are returned in the second list.
    pub fn plan(&self, names: &[String]) -> (Vec<PathBuf>, Vec<String>) {
        let mut order = Vec::new();
        let mut done = BTreeSet::new();
        let mut missing = Vec::new();
        for n in names {
            self.visit(&normalize(n), &mut done, &mut order, &mut missing, 0);
        }
        (order, missing)
    }

    fn visit(
        &self,
        name: &str,
        done: &mut BTreeSet<String>,
        order: &mut Vec<PathBuf>,
        missing: &mut Vec<String>,
        depth: usize,
    ) {
        if depth > 64 || !done.insert(name.to_owned()) || self.builtin.contains(name) {
            return;
        }
        let Some(e) = self.modules.get(name) else {
            missing.push(name.to_owned());
            return;
        };
        for d in self.deps(e) {
            self.visit(&normalize(&d), done, order, missing, depth + 1);
        }
        order.push(self.dir.join(&e.path));
    }
}

/// The `depends=` list in a module's `.modinfo` section (found by scanning the ELF bytes).
pub fn modinfo_depends(bytes: &[u8]) -> Vec<String> {
    let key = b"depends=";
    let Some(at) = bytes.windows(key.len()).position(|w| w == key) else { return Vec::new() };
    // The string must start a .modinfo entry (after a NUL) to be the real key.
    let rest = &bytes[at + key.len()..];
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end])
        .split(',')
        .filter(|s| !s.is_empty())
        .map(normalize)
        .collect()
}

/// fnmatch(3) without flags: `*`, `?`, `[...]` (with `!`/`^` negation and ranges).
pub fn glob(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let (mut star_p, mut star_i) = (usize::MAX, 0);
    while i < s.len() {
        if p < pat.len() {
            match pat[p] {
                b'*' => {
                    star_p = p;
                    star_i = i;
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    i += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(&pat[p..], s[i]) {
                        if matched {
                            p += next;
                            i += 1;
                            continue;
                        }
                    } else if s[i] == b'[' {
                        p += 1;
                        i += 1;
                        continue;
                    }
                }
                c if c == s[i] => {
                    p += 1;
                    i += 1;
                    continue;
                }
                _ => {}
            }
        }
        if star_p == usize::MAX {
            return false;
        }
        p = star_p + 1;
        star_i += 1;
        i = star_i;
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class at the start of `pat`; returns (matched, class length).
fn class(pat: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut j = 1;
    let negate = matches!(pat.get(1), Some(b'!') | Some(b'^'));
    if negate {
        j += 1;
    }
    let mut matched = false;
    let mut first = true;
    while j < pat.len() {
        if pat[j] == b']' && !first {
            return Some((matched != negate, j + 1));
        }
        first = false;
        if j + 2 < pat.len() && pat[j + 1] == b'-' && pat[j + 2] != b']' {
            matched |= pat[j] <= c && c <= pat[j + 2];
            j += 3;
        } else {
            matched |= pat[j] == c;
            j += 1;
        }
    }
    None
}

/// Every modalias under `sys_devices`, sorted and de-duplicated. Symlinks are not followed,
/// so sysfs's loops are not walked.
pub fn device_aliases(sys_devices: &Path) -> Vec<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![sys_devices.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() && e.file_name() == "modalias" {
                if let Ok(a) = std::fs::read_to_string(e.path()) {
                    let a = a.trim();
                    if !a.is_empty() {
                        out.insert(a.to_owned());
                    }
                }
            }
        }
    }
    out.into_iter().collect()
}

/// Loads one module file into the kernel.
pub trait Loader {
    fn load(&mut self, path: &Path) -> io::Result<()>;
}

/// finit_module(2); an already loaded module is success.
#[cfg(target_os = "linux")]
#[derive(Debug, Default)]
pub struct Kernel;

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
impl Loader for Kernel {
    fn load(&mut self, path: &Path) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let params = c"";
        let rc = if compressed(path) {
            let image = read_module(path)?;
            // SAFETY: image is a live buffer of image.len() bytes for the call, and params a
            // NUL-terminated empty string.
            unsafe {
                libc::syscall(
                    libc::SYS_init_module,
                    image.as_ptr(),
                    image.len() as libc::c_ulong,
                    params.as_ptr(),
                )
            }
        } else {
            let f = std::fs::File::open(path)?;
            // SAFETY: the fd is open for the call and params is a NUL-terminated empty string.
            unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), params.as_ptr(), 0) }
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(e);
            }
        }
        Ok(())
    }
}

/// Loads `names` (and their dependencies); returns one report line per problem.
pub fn load(ix: &Index, names: &[String], loader: &mut dyn Loader) -> Vec<String> {
    let (files, missing) = ix.plan(names);
    let mut report: Vec<String> =
        missing.into_iter().map(|m| format!("module {m} not found")).collect();
    for f in files {
        if let Err(e) = loader.load(&f) {
            report.push(format!("module {} failed: {e}", f.display()));
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_modules_are_read_back_and_their_deps_found() {
        let dir = std::env::temp_dir().join(format!("baleen-init-kz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("kernel/a")).unwrap();
        let module = |deps: &str| {
            let mut m = b"\x7fELF\x02\x01\x01".to_vec();
            m.extend(std::iter::repeat_n(0u8, 5000));
            m.extend(format!("\0license=GPL\0depends={deps}\0").as_bytes());
            m
        };
        let base = module("");
        std::fs::write(dir.join("kernel/a/base.ko"), &base).unwrap();
        let zst = zstd::encode_all(&module("base")[..], 19).unwrap();
        std::fs::write(dir.join("kernel/a/mid.ko.zst"), zst).unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &module("mid,base")[..], &mut xz).unwrap();
        std::fs::write(dir.join("kernel/a/top.ko.xz"), xz).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &module("top")).unwrap();
        std::fs::write(dir.join("kernel/a/leaf.ko.gz"), gz.finish().unwrap()).unwrap();

        assert_eq!(read_module(&dir.join("kernel/a/mid.ko.zst")).unwrap(), module("base"));
        assert_eq!(read_module(&dir.join("kernel/a/top.ko.xz")).unwrap(), module("mid,base"));
        assert_eq!(read_module(&dir.join("kernel/a/leaf.ko.gz")).unwrap(), module("top"));
        // No modules.dep: the order comes from the decompressed .modinfo strings.
        let ix = Index::load(&dir);
        let (files, missing) = ix.plan(&["leaf".into()]);
        assert!(missing.is_empty(), "{missing:?}");
        let names: Vec<String> = files.iter().map(|f| module_name(&f.to_string_lossy())).collect();
        assert_eq!(names, ["base", "mid", "top", "leaf"]);

        // Garbage that decompresses to something other than a module, and a truncated file.
        let not_elf = zstd::encode_all(&b"#!/bin/sh\n"[..], 3).unwrap();
        std::fs::write(dir.join("kernel/a/bad.ko.zst"), not_elf).unwrap();
        let e = read_module(&dir.join("kernel/a/bad.ko.zst")).unwrap_err().to_string();
        assert!(e.contains("not an ELF module"), "{e}");
        let full = std::fs::read(dir.join("kernel/a/top.ko.xz")).unwrap();
        std::fs::write(dir.join("kernel/a/cut.ko.xz"), &full[..full.len() / 2]).unwrap();
        assert!(read_module(&dir.join("kernel/a/cut.ko.xz")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn glob_matches_modalias_patterns() {
        let pat = b"pci:v00001AF4d00001000sv*sd*bc*sc*i*";
        assert!(glob(pat, b"pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00"));
        assert!(!glob(pat, b"pci:v00001AF4d00001001sv00001AF4sd00000001bc02sc00i00"));
        assert!(glob(b"acpi*:PNP0[Aa]0[3-8]:*", b"acpi:PNP0A03:"));
        assert!(!glob(b"a[!b]c", b"abc"));
        assert!(glob(b"a?c*", b"abcdef"));
        assert!(glob(b"*", b""));
    }

    #[test]
    fn names_normalize() {
        assert_eq!(module_name("kernel/drivers/net/virtio_net.ko.zst"), "virtio_net");
        assert_eq!(module_name("snd-hda-intel.ko"), "snd_hda_intel");
    }

    fn tree(dep: Option<&str>) -> (PathBuf, Index) {
        let dir = std::env::temp_dir().join(format!(
            "baleen-mod-{}-{}",
            std::process::id(),
            dep.is_some() as u8
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("kernel/a")).unwrap();
        // Minimal fake modules: only the .modinfo strings matter for dependency reading.
        std::fs::write(dir.join("kernel/a/base.ko"), b"\0license=GPL\0depends=\0").unwrap();
        std::fs::write(dir.join("kernel/a/mid.ko"), b"\0depends=base\0").unwrap();
        std::fs::write(dir.join("kernel/a/top-x.ko"), b"\0depends=mid,base\0").unwrap();
        std::fs::write(dir.join("modules.builtin"), "kernel/fs/ext4/ext4.ko\n").unwrap();
        if let Some(d) = dep {
            std::fs::write(dir.join("modules.dep"), d).unwrap();
            std::fs::write(dir.join("modules.alias"), "alias virtio:d00000001v* top_x\n").unwrap();
        }
        let ix = Index::load(&dir);
        (dir, ix)
    }

    #[test]
    fn plan_orders_dependencies_first_without_modules_dep() {
        let (dir, ix) = tree(None);
        assert!(!ix.has_dep);
        let (files, missing) = ix.plan(&["top_x".into(), "ext4".into(), "nope".into()]);
        let rel: Vec<_> = files.iter().map(|f| f.strip_prefix(&dir).unwrap().to_owned()).collect();
        assert_eq!(
            rel,
            [
                PathBuf::from("kernel/a/base.ko"),
                "kernel/a/mid.ko".into(),
                "kernel/a/top-x.ko".into()
            ]
        );
        assert_eq!(missing, ["nope"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn plan_uses_modules_dep_and_alias() {
        let (dir, ix) = tree(Some(
            "kernel/a/top-x.ko: kernel/a/base.ko\nkernel/a/base.ko:\nkernel/a/mid.ko:\n",
        ));
        assert!(ix.has_dep && ix.has_alias);
        assert_eq!(ix.match_alias("virtio:d00000001v00001AF4"), ["top_x"]);
        let (files, _) = ix.plan(&["top-x".into()]);
        assert_eq!(files.len(), 2, "modules.dep wins over .modinfo: {files:?}");

        struct Rec(Vec<PathBuf>);
        impl Loader for Rec {
            fn load(&mut self, p: &Path) -> io::Result<()> {
                self.0.push(p.into());
                if p.ends_with("base.ko") {
                    Err(io::Error::from_raw_os_error(8))
                } else {
                    Ok(())
                }
            }
        }
        let mut rec = Rec(vec![]);
        let report = load(&ix, &["top_x".into()], &mut rec);
        assert_eq!(rec.0.len(), 2);
        assert_eq!(report.len(), 1);
        assert!(report[0].contains("base.ko failed"), "{report:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
