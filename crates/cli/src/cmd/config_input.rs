//! Reading the FILE arguments of `validate` and `build` and turning them into a merged config.
//! Shared by both commands so that `validate` checks exactly what `build` would build.

use anyhow::Context;
use baleen_spec::{Config, Diagnostics, Source, TemplateResolver};
use std::io::Read;
use std::path::{Path, PathBuf};

/// One config file read into memory.
pub struct Input {
    pub name: String,
    pub text: String,
    /// Directory for `@pkg:` templates; `None` for stdin.
    pub dir: Option<PathBuf>,
}

/// Reads each file (`-` = stdin, at most once). A file that cannot be read is a usage error:
/// the command line named it.
pub fn read_inputs(files: &[String]) -> anyhow::Result<Vec<Input>> {
    let mut inputs = Vec::with_capacity(files.len());
    let mut stdin_used = false;
    for f in files {
        if f == "-" {
            if stdin_used {
                return Err(
                    crate::exit::UsageError("`-` (stdin) can be given only once".into()).into()
                );
            }
            stdin_used = true;
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the configuration from stdin")?;
            inputs.push(Input { name: "-".into(), text, dir: None });
        } else if f.starts_with("http://") || f.starts_with("https://") {
            return Err(crate::exit::UsageError(format!(
                "{f}: reading configurations from URLs is not supported yet; download it first"
            ))
            .into());
        } else {
            let path = Path::new(f);
            let bytes = std::fs::read(path)
                .map_err(|e| crate::exit::UsageError(format!("cannot read {f}: {e}")))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| anyhow::anyhow!("{f} is not UTF-8 text, so not a YAML file"))?;
            let dir = path.parent().map(|p| {
                if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                }
            });
            inputs.push(Input { name: f.clone(), text, dir });
        }
    }
    Ok(inputs)
}

/// Resolves `@pkg:DIR` to the canonical reference of the package's content-hash tag.
struct PkgResolver;

impl TemplateResolver for PkgResolver {
    fn pkg_tag(&self, dir: &Path) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        let tag = baleen_pkg::show_tag(dir)?;
        Ok(baleen_spec::reference::expand(&tag))
    }
}

/// Loads, merges and checks the inputs.
pub fn load(inputs: &[Input]) -> Result<Config, Diagnostics> {
    let sources: Vec<Source<'_>> = inputs
        .iter()
        .map(|i| Source { name: &i.name, text: &i.text, template_dir: i.dir.as_deref() })
        .collect();
    baleen_spec::load_all(&sources, Some(&PkgResolver))
}

/// Prints diagnostics rustc-style on stderr and a closing count line.
pub fn report(diags: &Diagnostics) {
    crate::exit::eprint_error(&format!("{diags}\n"));
    let n = diags.0.len();
    eprintln!("error: configuration is invalid ({n} problem{})", if n == 1 { "" } else { "s" });
}

/// How to print a config on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutFormat {
    Yaml,
    Json,
}

pub fn print_config(cfg: &Config, format: OutFormat) -> anyhow::Result<()> {
    let text = match format {
        OutFormat::Json => {
            let mut s =
                serde_json::to_string_pretty(cfg).context("serializing the config as JSON")?;
            s.push('\n');
            s
        }
        OutFormat::Yaml => {
            serde_saphyr::to_string(cfg).context("serializing the config as YAML")?
        }
    };
    print!("{text}");
    Ok(())
}
