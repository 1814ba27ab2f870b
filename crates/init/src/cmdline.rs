//! The `baleen.*` knobs on the kernel command line.

/// What to do when an onboot container exits non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnbootFailure {
    /// Report it and go on booting (LinuxKit's behaviour).
    #[default]
    Continue,
    /// Report it, skip the rest of the boot, and power off with status 1.
    Poweroff,
}

/// Parsed knobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knobs {
    pub onboot_failure: OnbootFailure,
    /// Extra modules to load (`baleen.modules=a,b`).
    pub modules: Vec<String>,
    /// Echo container output to the console and say more about each step.
    pub debug: bool,
    /// Seconds services get between SIGTERM and SIGKILL (`baleen.shutdown_grace=`, default 5
    /// as LinuxKit's rc.shutdown).
    pub shutdown_grace: u64,
    /// `baleen.devices=strict` (the default): a container without device rules gets runc's
    /// default-deny program, as under LinuxKit; `rules`: only bundles with rules get one.
    pub strict_devices: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            onboot_failure: OnbootFailure::Continue,
            modules: Vec::new(),
            debug: false,
            shutdown_grace: 5,
            strict_devices: true,
        }
    }
}

/// Parses `/proc/cmdline`. Unknown words and malformed values are ignored (a typo on the
/// command line must not stop the boot); [`parse`] returns them as warnings.
pub fn parse(cmdline: &str) -> (Knobs, Vec<String>) {
    let mut k = Knobs::default();
    let mut warnings = Vec::new();
    for word in cmdline.split_whitespace() {
        let Some(rest) = word.strip_prefix("baleen.") else { continue };
        let (key, value) = rest.split_once('=').unwrap_or((rest, ""));
        match (key, value) {
            ("onboot_failure", "continue") => k.onboot_failure = OnbootFailure::Continue,
            ("onboot_failure", "poweroff") => k.onboot_failure = OnbootFailure::Poweroff,
            ("modules", v) => {
                k.modules.extend(v.split(',').filter(|m| !m.is_empty()).map(str::to_owned))
            }
            ("debug", v) => k.debug = v != "0",
            ("devices", "strict") => k.strict_devices = true,
            ("devices", "rules") => k.strict_devices = false,
            ("shutdown_grace", v) if v.parse::<u64>().is_ok() => {
                k.shutdown_grace = v.parse().unwrap_or(5)
            }
            _ => warnings.push(format!("ignoring unknown kernel argument {word}")),
        }
    }
    (k, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_knobs_and_ignores_the_rest() {
        let (k, w) = parse(
            "console=ttyS0 baleen.onboot_failure=poweroff baleen.modules=veth,overlay \
             baleen.debug=1 baleen.shutdown_grace=1 baleen.bogus=2 baleen.devices=rules quiet",
        );
        assert_eq!(k.onboot_failure, OnbootFailure::Poweroff);
        assert_eq!(k.modules, ["veth", "overlay"]);
        assert!(k.debug);
        assert_eq!(k.shutdown_grace, 1);
        assert!(!k.strict_devices);
        assert!(Knobs::default().strict_devices, "runc's device policy is the default");
        assert_eq!(w, ["ignoring unknown kernel argument baleen.bogus=2"]);
        assert_eq!(parse("").0, Knobs::default());
    }
}
