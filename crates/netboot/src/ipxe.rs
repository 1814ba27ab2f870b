//! iPXE scripts, one per system, in the shape of LinuxKit's `run packet` script (kernel,
//! initrd, command line, `boot`).
//!
//! Every file is named relative to the script: iPXE resolves a relative name against the URL
//! it fetched the script from (`http://…/` or `tftp://…/`), so the same script works through
//! any address or port the machine reaches the server by, qemu's 10.0.2.2 included.

/// What a system boots from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Netboot<'a> {
    /// A Linux kernel and its initramfs, with the kernel command line.
    KernelInitrd { kernel: &'a str, initrd: &'a str, cmdline: &'a str },
    /// An EFI binary (a unified kernel image), for iPXE running under UEFI.
    Efi { image: &'a str },
    /// A whole ISO or disk image, attached over HTTP (`sanboot`, which reads it by ranges).
    San { image: &'a str },
}

/// A command line iPXE would read as something else.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error(
        "the kernel command line of {system} cannot go into an iPXE script: it contains {what}, \
         which iPXE would read as {meaning}"
    )]
    Cmdline { system: String, what: &'static str, meaning: &'static str },
}

/// The script for `system` (named in a comment). Names come from a [`crate::Catalog`], so
/// they need no quoting; the command line is checked for what iPXE would expand or split.
pub fn script(system: &str, boot: &Netboot<'_>) -> Result<String, ScriptError> {
    let mut s = format!("#!ipxe\n# {system}, served by `baleen serve`\n");
    match boot {
        Netboot::KernelInitrd { kernel, initrd, cmdline } => {
            check_cmdline(system, cmdline)?;
            // `initrd=` names the initrd to the kernel's EFI stub (iPXE under UEFI); a BIOS
            // boot passes it on harmlessly.
            let args = if cmdline.is_empty() {
                format!("initrd={initrd}")
            } else {
                format!("initrd={initrd} {cmdline}")
            };
            s.push_str(&format!("kernel {kernel} {args}\ninitrd {initrd}\nboot\n"));
        }
        Netboot::Efi { image } => s.push_str(&format!("chain {image}\n")),
        Netboot::San { image } => s.push_str(&format!("sanboot {image}\n")),
    }
    Ok(s)
}

fn check_cmdline(system: &str, cmdline: &str) -> Result<(), ScriptError> {
    let err = |what, meaning| Err(ScriptError::Cmdline { system: system.into(), what, meaning });
    if cmdline.contains("${") {
        return err("`${`", "a setting to expand");
    }
    if cmdline.chars().any(|c| c.is_control()) {
        return err("a control character (a newline)", "the end of the command");
    }
    if cmdline.contains("||") || cmdline.contains("&&") {
        return err("`||` or `&&`", "a conditional command");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_script_names_its_files_relative_to_itself() {
        let boot = Netboot::KernelInitrd {
            kernel: "sys-kernel",
            initrd: "sys-initrd.img",
            cmdline: "console=ttyS0 quiet",
        };
        assert_eq!(
            script("sys", &boot).unwrap(),
            "#!ipxe\n# sys, served by `baleen serve`\n\
             kernel sys-kernel initrd=sys-initrd.img console=ttyS0 quiet\n\
             initrd sys-initrd.img\nboot\n"
        );
        assert!(script("os", &Netboot::Efi { image: "os.efi" })
            .unwrap()
            .ends_with("chain os.efi\n"));
        let san = script("cd", &Netboot::San { image: "cd.iso" }).unwrap();
        assert!(san.ends_with("sanboot cd.iso\n"), "{san}");
    }

    #[test]
    fn a_cmdline_that_would_inject_ipxe_commands_is_refused() {
        for (cmdline, want) in [
            ("console=ttyS0\nshell", "control character"),
            ("x=${net0/mac}", "`${`"),
            ("a || shell", "`||`"),
        ] {
            let boot = Netboot::KernelInitrd { kernel: "k", initrd: "i", cmdline };
            let err = script("sys", &boot).unwrap_err().to_string();
            assert!(err.contains(want) && err.contains("of sys"), "{cmdline:?}: {err}");
        }
    }
}
