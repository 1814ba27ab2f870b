//! `baleen build` without `--dry-run`: the validated plan handed to the pipeline.

use super::build::{
    Arch, BuildPlan, Compress, InitrdLayoutArg, Output as PlanOutput, PrivilegePolicy,
};
use anyhow::Context;
use baleen_build::{Output, Request};
use baleen_formats::{InitrdCompression, InitrdLayout};
use baleen_oci::{Platform, PullOptions, Store};

pub fn execute(plan: &BuildPlan, cfg: &baleen_spec::Config, quiet: bool) -> anyhow::Result<i32> {
    let lock = baleen_build::lock::LockOptions { pins: None, write: plan.lock.clone() };
    let _cleanup = CleanupOnSignal::install()?;
    let built = build(plan, cfg, quiet, lock).context("build failed")?;
    for path in &built.files {
        println!("{}", path.display());
    }
    // On stderr: stdout lists the files written, one a line, for scripts.
    if let Some(pcr) = built.pcr11 {
        let policy = if pcr.policy_signed {
            "signed into the UKI's .pcrsig"
        } else {
            "not signed: systemd signs PCR policies with RSA keys only"
        };
        eprintln!("PCR 11 (sha256) after systemd-stub measures the UKI: {} ({policy})", pcr.hex());
        eprintln!(
            "PCR 11 (sha256) after baleen-init's boot phases enter-initrd:leave-initrd:sysinit:ready, \
             as it logs: {}",
            pcr.ready_hex()
        );
    }
    if let Some(reference) = &plan.push {
        push_built(plan, &built.files, reference, quiet)
            .with_context(|| format!("--push {reference} (the build succeeded)"))?;
    }
    Ok(crate::exit::OK)
}

/// `--push`: the output as `baleen run` boots it (a kernel boot by its `-kernel` file, else
/// the one image written), pushed through the build's store.
fn push_built(
    plan: &BuildPlan,
    files: &[std::path::PathBuf],
    reference: &str,
    quiet: bool,
) -> anyhow::Result<()> {
    let bootable = |p: &&std::path::PathBuf| baleen_run::prepare::detect(p, None).is_ok();
    let kernel = files.iter().find(|p| p.to_string_lossy().ends_with("-kernel"));
    let Some(path) = kernel.or_else(|| files.iter().find(bootable)) else {
        anyhow::bail!("none of the files written is a system `baleen run` boots");
    };
    let arch = match plan.arch {
        Arch::Amd64 => "amd64",
        Arch::Arm64 => "arm64",
        Arch::Riscv64 => "riscv64",
    };
    super::push::push_system(
        path,
        reference,
        Some(arch.to_string()),
        plan.cache.clone(),
        &plan.registry,
        quiet,
    )?;
    Ok(())
}

/// Runs the pipeline for `plan` (with `lock`'s pins and record); returns the files written and
/// what the build predicted (PCR 11 of a signed UKI).
pub fn build(
    plan: &BuildPlan,
    cfg: &baleen_spec::Config,
    quiet: bool,
    lock: baleen_build::lock::LockOptions,
) -> anyhow::Result<baleen_build::Built> {
    let output = match &plan.output {
        PlanOutput::Stdout => Output::Stdout,
        PlanOutput::File(p) => Output::File(p.clone()),
        PlanOutput::Dir { dir, name } => Output::Base { dir: dir.clone(), name: name.clone() },
    };
    let arch = plan.arch.oci();
    let store = Store::open(&plan.cache)
        .with_context(|| format!("opening the image cache {}", plan.cache.display()))?;
    let pull = PullOptions {
        always: plan.pull,
        progress: baleen_oci::Progress::stderr(quiet),
        ..PullOptions::default()
    };
    let report = |list: &[baleen_build::Privileged]| {
        eprint!("{}", super::build::privilege_table(list));
    };
    let policy = match plan.privileges {
        PrivilegePolicy::Allow => baleen_build::PrivilegePolicy::Allow,
        PrivilegePolicy::DenyLabel => baleen_build::PrivilegePolicy::DenyLabel,
    };
    let request = Request {
        privileges: baleen_build::Privileges {
            policy,
            report: if quiet { None } else { Some(&report) },
        },
        pull,
        decompress_kernel: plan.decompress_kernel,
        input_tar: plan.input_tar.clone(),
        size: plan.size_mib.map(|m| m << 20),
        limits: plan.limits,
        sign: plan.sign.clone(),
        verity: plan.verity,
        lock,
        root: plan.root.map(|r| match r {
            super::build::RootFs::Squashfs => baleen_build::RootFs::Squashfs,
            super::build::RootFs::Erofs => baleen_build::RootFs::Erofs,
        }),
        budget: plan.budget.clone(),
        sbom: baleen_build::SbomOptions {
            enabled: plan.sbom,
            path: plan.sbom_output.as_ref().map(|p| p.to_string_lossy().into_owned()),
            current_time: plan.sbom_current_time,
        },
        compression: match plan.compress {
            Compress::Gzip => InitrdCompression::Gzip,
            Compress::Zstd => InitrdCompression::Zstd,
        },
        segment_cache: plan.segment_cache,
        initrd_layout: match plan.initrd_layout {
            InitrdLayoutArg::Single => InitrdLayout::Single,
            InitrdLayoutArg::Segmented => InitrdLayout::Segmented,
        },
        ..Request::new(
            cfg,
            &store,
            plan.formats.clone(),
            output,
            Platform::new("linux", arch, None),
        )
    };
    Ok(baleen_build::build_report(&request)?)
}

/// While a build runs, SIGINT and SIGTERM remove its `.partial` outputs before the process dies
/// of the signal (the default action would leave them in the output directory). Dropping it
/// restores the default.
pub struct CleanupOnSignal {
    handle: signal_hook::iterator::Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CleanupOnSignal {
    pub fn install() -> anyhow::Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
            .context("installing the SIGINT/SIGTERM handler")?;
        let handle = signals.handle();
        let thread = std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let removed = baleen_build::output::abandon_all();
                eprintln!("baleen: interrupted; removed {} partial output(s)", removed.len());
                // Die of the signal, as without the handler: the caller sees how it ended.
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::exit(128 + signal);
            }
        });
        Ok(CleanupOnSignal { handle, thread: Some(thread) })
    }
}

impl Drop for CleanupOnSignal {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
