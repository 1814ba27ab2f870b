//! `baleen build` without `--dry-run`: the validated plan handed to the pipeline.

use super::build::{Arch, BuildPlan, Compress, Output as PlanOutput};
use anyhow::Context;
use baleen_build::{Format, Output, Request};
use baleen_formats::InitrdCompression;
use baleen_oci::{Platform, PullOptions, Store};
use clap::ValueEnum;

pub fn execute(plan: &BuildPlan, cfg: &baleen_spec::Config) -> anyhow::Result<i32> {
    let formats = plan
        .formats
        .iter()
        .map(|f| {
            let name = f.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
            Format::parse(&name).with_context(|| format!("unknown format `{name}`"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let output = match &plan.output {
        PlanOutput::Stdout => Output::Stdout,
        PlanOutput::File(p) => Output::File(p.clone()),
        PlanOutput::Dir { dir, name } => Output::Base { dir: dir.clone(), name: name.clone() },
    };
    let arch = match plan.arch {
        Arch::Amd64 => "amd64",
        Arch::Arm64 => "arm64",
        Arch::Riscv64 => "riscv64",
    };
    let store = Store::open(&plan.cache)
        .with_context(|| format!("opening the image cache {}", plan.cache.display()))?;
    let pull = PullOptions { always: plan.pull, ..PullOptions::default() };
    let request = Request {
        config: cfg,
        formats,
        output,
        platform: Platform::new("linux", arch, None),
        store: &store,
        pull,
        decompress_kernel: plan.decompress_kernel,
        input_tar: plan.input_tar.clone(),
        size: plan.size_mib.map(|m| m << 20),
        sign: plan.sign.clone(),
        sbom: baleen_build::SbomOptions {
            enabled: plan.sbom,
            path: plan.sbom_output.as_ref().map(|p| p.to_string_lossy().into_owned()),
            current_time: plan.sbom_current_time,
        },
        compression: match plan.compress {
            Compress::Gzip => InitrdCompression::Gzip,
            Compress::Zstd => InitrdCompression::Zstd,
        },
    };
    let written = baleen_build::build(&request).context("build failed")?;
    for path in written {
        println!("{}", path.display());
    }
    Ok(crate::exit::OK)
}
