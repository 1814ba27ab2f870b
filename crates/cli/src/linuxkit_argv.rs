//! LinuxKit's command-line habits, applied to argv before clap parses it.
//!
//! LinuxKit's flags are Go-style: `linuxkit build -format raw-efi -size 1G -dir out` spells every
//! long flag with one dash, which clap reads as a cluster of short flags (`-f ormat`). A `-word`
//! whose `word` (before any `=`) is a long flag or alias of the subcommand being parsed, or of one
//! of its parents, and is longer than one letter, becomes `--word`. Real short flags (`-f`, `-o`,
//! `-v`, `-q`) and clusters like `-vv` are not long flags and stay as they are; nothing after `--`
//! or in a flag's value position is touched.
//!
//! A LinuxKit flag baleen does not have (`--docker`, `-disable-content-trust`, pkg's `--org`…)
//! is refused here with what baleen does instead, rather than clap's nearest-spelling guess
//! (`--docker` → "a similar argument exists: '--o'").

use crate::exit::UsageError;
use std::ffi::OsString;

/// LinuxKit flags with no baleen equivalent: the subcommand path they belong to (matched as a
/// prefix of the words typed: `pkg` covers `pkg build`), their names, and what to do instead.
const LINUXKIT_ONLY: &[(&str, &[&str], &str)] = &[
    (
        "build",
        &["docker"],
        "baleen never asks a Docker daemon for images: it pulls from registries into its own \
         cache. Put a local image there with `docker save IMAGE | baleen cache import -`",
    ),
    (
        "",
        &["disable-content-trust"],
        "baleen checks every blob it pulls against its digest and has no Notary step: drop the \
         flag",
    ),
    (
        "run",
        &["qemu"],
        "baleen runs qemu-system-<arch> from PATH (as LinuxKit does in practice): put the qemu \
         you want first on PATH",
    ),
    (
        "run",
        &["usb"],
        "baleen gives the VM no USB controller by default: add one with `--device qemu-xhci`",
    ),
    (
        "run",
        &["virtiofs", "virtiofsd"],
        "baleen does not share host directories yet: pass data with --data/--data-file or a \
         --disk",
    ),
    (
        "serve",
        &["port"],
        "baleen serve listens on --addr IP:PORT (default 127.0.0.1:8080; LinuxKit's `:8080` is \
         --addr 0.0.0.0:8080)",
    ),
    (
        "serve",
        &["directory"],
        "baleen serve takes the outputs themselves (`baleen serve out/minimal`) and serves only \
         their files, plus an iPXE script each, never a whole directory",
    ),
    (
        "pkg",
        &["org", "dev"],
        "baleen takes the image's org from the `org:` key of the package's build.yml",
    ),
    (
        "pkg",
        &["hash", "hash-commit", "hash-path", "force-dirty", "tag"],
        "baleen's tag is a hash of the package's inputs (build.yml and the files it names), not \
         of git: it cannot be overridden; `baleen cache push REF --to NAME:TAG` pushes it under \
         another name",
    ),
    (
        "pkg",
        &["disable-cache", "enable-cache"],
        "baleen reuses an image whose tag is already in the store; --force rebuilds it",
    ),
    (
        "pkg",
        &["docker"],
        "baleen pkg build writes to baleen's image store (or --output DIR, an OCI layout); for \
         Docker, `baleen cache export REF -o image.tar` and `docker load -i image.tar`",
    ),
    (
        "pkg",
        &[
            "builders",
            "builder-image",
            "builder-config",
            "builder-restart",
            "network",
            "nonetwork",
            "ssh",
            "build-arg-file",
            "sbom-scanner",
            "progress",
        ],
        "baleen builds packages without BuildKit or a Dockerfile (Debian packages and files \
         listed in build.yml, see docs/pkg.md): there is no builder, network or build step to \
         configure",
    ),
    (
        "pkg",
        &["release", "manifest"],
        "baleen's image is already a multi-platform index under its content tag; push it under \
         a release name with `baleen cache push REF --to NAME:TAG`",
    ),
    (
        "cache export",
        &["format"],
        "baleen writes one archive that OCI tools and `docker load` both read (LinuxKit's oci \
         and docker formats in one); `filesystem` has no equivalent",
    ),
    ("pkg", &["skip-platforms"], "list the platforms to build with --platforms"),
    ("pkg", &["build-yml"], "baleen always reads DIR/build.yml"),
    ("pkg", &["dry-run"], "`baleen pkg show-tag DIR` prints the tag without building anything"),
];

/// Rewrites LinuxKit's single-dash long flags in `args` (argv, program name first) for
/// `command`, or refuses a LinuxKit-only flag.
pub fn rewrite(command: &clap::Command, args: Vec<OsString>) -> Result<Vec<OsString>, UsageError> {
    let mut out = Vec::with_capacity(args.len());
    let mut args = args.into_iter();
    out.extend(args.next());
    let mut chain = vec![command];
    let mut value_next = false;
    let mut rest_positional = false;
    for arg in args {
        let Some(s) = arg.to_str() else {
            out.push(arg);
            value_next = false;
            continue;
        };
        if rest_positional || value_next {
            value_next = false;
            out.push(arg);
            continue;
        }
        if s == "--" {
            rest_positional = true;
            out.push(arg);
            continue;
        }
        if let Some(word) = s.strip_prefix("--") {
            let (name, inline_value) = split_value(word);
            match find_long(&chain, name) {
                Some(a) => value_next = !inline_value && a.get_action().takes_values(),
                None => refuse_linuxkit_only(&chain, name)?,
            }
            out.push(arg);
            continue;
        }
        if let Some(word) = s.strip_prefix('-').filter(|w| !w.is_empty()) {
            let (name, inline_value) = split_value(word);
            if name.chars().count() > 1 {
                if let Some(a) = find_long(&chain, name) {
                    value_next = !inline_value && a.get_action().takes_values();
                    out.push(format!("-{s}").into());
                    continue;
                }
                refuse_linuxkit_only(&chain, name)?;
            }
            // A short flag alone (`-f tar`) takes the next word as its value.
            value_next = name.chars().count() == 1
                && !inline_value
                && find_short(&chain, name).is_some_and(|a| a.get_action().takes_values());
            out.push(arg);
            continue;
        }
        if let Some(sub) = chain.last().and_then(|c| c.find_subcommand(s)) {
            chain.push(sub);
        }
        out.push(arg);
    }
    Ok(out)
}

/// `name=value` → (`name`, true); `name` → (`name`, false).
fn split_value(word: &str) -> (&str, bool) {
    match word.split_once('=') {
        Some((name, _)) => (name, true),
        None => (word, false),
    }
}

/// The argument whose long name or alias is `name`, in the innermost command that has one.
fn find_long<'a>(chain: &[&'a clap::Command], name: &str) -> Option<&'a clap::Arg> {
    chain.iter().rev().find_map(|c| {
        c.get_arguments().find(|a| {
            a.get_long() == Some(name)
                || a.get_all_aliases().is_some_and(|aliases| aliases.contains(&name))
        })
    })
}

/// The argument whose short flag is `cluster`'s first letter.
fn find_short<'a>(chain: &[&'a clap::Command], cluster: &str) -> Option<&'a clap::Arg> {
    let first = cluster.chars().next()?;
    chain.iter().rev().find_map(|c| c.get_arguments().find(|a| a.get_short() == Some(first)))
}

/// An error when `name` is a LinuxKit flag of the subcommand `chain` has reached that baleen
/// does not have.
fn refuse_linuxkit_only(chain: &[&clap::Command], name: &str) -> Result<(), UsageError> {
    let path: Vec<&str> = chain.iter().skip(1).map(|c| c.get_name()).collect();
    let path = path.join(" ");
    let found = LINUXKIT_ONLY.iter().find(|(prefix, names, _)| {
        names.contains(&name)
            && (prefix.is_empty()
                || path == *prefix
                || path.strip_prefix(prefix).is_some_and(|r| r.starts_with(' ')))
    });
    match found {
        Some((_, _, instead)) => Err(UsageError(format!(
            "`--{name}` is a LinuxKit flag that `baleen {path}` does not have: {instead}"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn rewritten(args: &str) -> Result<String, UsageError> {
        let argv = std::iter::once("baleen").chain(args.split(' ')).map(OsString::from).collect();
        let mut command = crate::cmd::Cli::command();
        command.build();
        let out = rewrite(&command, argv)?;
        Ok(out.iter().skip(1).map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "))
    }

    #[test]
    fn single_dash_long_flags_of_the_subcommand_get_two_dashes() {
        assert_eq!(
            rewritten("build -format raw-efi -size 1G -dir out -name x a.yml").unwrap(),
            "build --format raw-efi --size 1G --dir out --name x a.yml"
        );
        assert_eq!(
            rewritten("run -mem=2048 -cpus 2 -accel tcg out/x").unwrap(),
            "run --mem=2048 --cpus 2 --accel tcg out/x"
        );
        assert_eq!(rewritten("-version").unwrap(), "--version");
        assert_eq!(rewritten("build -help").unwrap(), "build --help");
        assert_eq!(
            rewritten("cache export -outfile x.tar -platform linux/amd64 r").unwrap(),
            "cache export --outfile x.tar --platform linux/amd64 r"
        );
    }

    #[test]
    fn short_flags_values_and_words_after_double_dash_are_left_alone() {
        assert_eq!(
            rewritten("-vv build -f tar -o - -name -format a.yml").unwrap(),
            "-vv build -f tar -o - --name -format a.yml"
        );
        assert_eq!(rewritten("build -q -- -format").unwrap(), "build -q -- -format");
        // `-format` is not a flag of `pkg build`: clap reports it, not this rewrite.
        assert_eq!(rewritten("pkg build -format x").unwrap(), "pkg build -format x");
    }

    #[test]
    fn linuxkit_only_flags_say_what_baleen_does_instead() {
        let err = rewritten("build -docker a.yml").unwrap_err().0;
        assert!(err.contains("`--docker`") && err.contains("cache import"), "{err}");
        let err = rewritten("pkg build --org me pkg/x").unwrap_err().0;
        assert!(err.contains("`baleen pkg build`") && err.contains("org:"), "{err}");
        let err = rewritten("cache export -format docker r -o x.tar").unwrap_err().0;
        assert!(err.contains("docker load"), "{err}");
        let err = rewritten("run -virtiofs /srv out/x").unwrap_err().0;
        assert!(err.contains("--data"), "{err}");
        let err = rewritten("serve -port :8080 -directory out").unwrap_err().0;
        assert!(err.contains("--addr 0.0.0.0:8080"), "{err}");
        let err = rewritten("serve --directory out").unwrap_err().0;
        assert!(err.contains("the outputs themselves"), "{err}");
        // The same word is fine where it is a baleen flag or a value.
        assert!(rewritten("build --name docker a.yml").is_ok());
    }
}
