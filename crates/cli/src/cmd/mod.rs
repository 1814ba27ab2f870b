//! One module per subcommand; this file is the table of contents.

use clap::{Args, Parser, Subcommand};

mod audit;
mod build;
mod build_run;
mod cache;
mod config_input;
mod pkg;
mod pull;
mod push;
mod run;
mod serve;
mod shell;
mod store;
mod validate;
mod verify;
mod version;

/// Build lean, immutable Linux systems out of containers.
///
/// baleen reads LinuxKit's YAML language: a kernel, init images, onboot/onshutdown containers,
/// long-running services, files and volumes, all OCI images. It pulls them, assembles a root
/// filesystem where every system service is a container, and writes what the target boots.
#[derive(Debug, Parser)]
#[command(name = "baleen", version = version::LONG, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check LinuxKit YAML files (merged like `build`): every problem with file:line:column,
    /// key path and a suggestion. Exit 0 valid, 1 invalid, 2 usage.
    Validate(validate::ValidateArgs),
    /// Build a system image from LinuxKit YAML files: pull the images, assemble the root
    /// filesystem, write the requested formats (default kernel+initrd).
    Build(build::BuildArgs),
    /// Rebuild outputs from the same YAML and pinned images, in a temporary directory, and say
    /// whether each is identical or where it first differs (a path in the tree, a PE section, a
    /// partition). Exit 0 identical, 1 different, 2 could not rebuild.
    Verify(verify::VerifyArgs),
    /// Build component images (kernel, init, services) from build.yml directories: Debian
    /// packages, files and workspace binaries, without Docker.
    Pkg(pkg::PkgArgs),
    /// List every component of a system (package directories, a YAML's images, a built
    /// output's SBOM), where each came from, and which Debian packages have newer versions in
    /// the archive's suite or its -security suite. Exit 0 none, 1 some, 2 could not check.
    Audit(audit::AuditArgs),
    /// Boot an output (kernel+initrd, ISO, disk image, UKI; a system in a registry as
    /// oci://REF; or, with --netboot URL, from the network) in qemu with its console here;
    /// exits with the guest's status (0 clean poweroff, N a failed onboot container, 124 timeout).
    Run(run::RunArgs),
    /// Deliver a built system: `push oci PATH REF` stores it in an OCI registry as an
    /// artifact (one layer per file), for `baleen pull` on another machine.
    Push(push::PushArgs),
    /// Fetch a system that `baleen push oci` stored in a registry, verified through the image
    /// store, and write its files into a directory, ready for `baleen run`.
    Pull(pull::PullArgs),
    /// Serve built systems over HTTP (and TFTP with --tftp) for machines that boot from the
    /// network, with an iPXE script per system; `baleen run --netboot URL` boots one here.
    Serve(serve::ServeArgs),
    /// Manage the local image store: ls, rm, clean, gc, pull, push, export, import.
    ///
    /// Only pull and import create the store; the other subcommands refuse a directory that is
    /// not one (the default store not made yet is empty for ls and gc).
    Cache(cache::CacheArgs),
    /// Print baleen's version and the commit it was built from.
    Version(version::VersionArgs),
    /// Print a completion script for bash, zsh, fish, elvish or powershell on stdout.
    Completions(shell::CompletionsArgs),
    /// Print the man page baleen(1) on stdout, or write every subcommand's page with --dir.
    Man(shell::ManArgs),
}

/// Runs the chosen subcommand and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Validate(args) => validate::run(args, cli.global.quiet),
        Command::Build(args) => build::run(args, cli.global.quiet),
        Command::Verify(args) => verify::run(args, cli.global.quiet),
        Command::Pkg(args) => pkg::run(args, cli.global.quiet),
        Command::Audit(args) => audit::run(args, cli.global.quiet),
        Command::Run(args) => run::run(args),
        Command::Push(args) => push::run(args, cli.global.quiet),
        Command::Pull(args) => pull::run(args, cli.global.quiet),
        Command::Serve(args) => serve::run(args, cli.global.quiet),
        Command::Cache(args) => cache::run(args, cli.global.quiet),
        Command::Version(args) => version::run(args),
        Command::Completions(args) => shell::completions(args),
        Command::Man(args) => shell::man(args, cli.global.quiet),
    }
}
