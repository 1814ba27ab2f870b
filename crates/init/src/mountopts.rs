//! fstab-style mount options → `(flags, data)` for mount(2), with the same table LinuxKit's
//! init and runc use: a known flag word sets or clears its bit, anything else is passed to the
//! filesystem as data.

use crate::sys::ms;

/// Parsed mount options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// `MS_*` bits, propagation bits included.
    pub flags: u64,
    /// Comma-joined filesystem options (`mode=755,size=65536k`), `None` when there are none.
    pub data: Option<String>,
}

impl Parsed {
    /// The flags without the propagation bits, which need a mount call of their own.
    pub fn plain(&self) -> u64 {
        self.flags & !ms::PROPAGATION
    }

    /// The propagation bits alone (plus `MS_REC` when `rbind`/`rprivate`… asked for it).
    pub fn propagation(&self) -> u64 {
        let p = self.flags & ms::PROPAGATION;
        if p == 0 {
            0
        } else {
            p | (self.flags & ms::REC)
        }
    }
}

/// Parses a list of options.
pub fn parse(options: &[String]) -> Parsed {
    let mut flags = 0u64;
    let mut data: Vec<&str> = Vec::new();
    for o in options {
        let (clear, bit) = match o.as_str() {
            "async" => (true, ms::SYNCHRONOUS),
            "atime" => (true, ms::NOATIME),
            "bind" => (false, ms::BIND),
            "defaults" => (false, 0),
            "dev" => (true, ms::NODEV),
            "diratime" => (true, ms::NODIRATIME),
            "dirsync" => (false, ms::DIRSYNC),
            "exec" => (true, ms::NOEXEC),
            "mand" => (false, ms::MANDLOCK),
            "noatime" => (false, ms::NOATIME),
            "nodev" => (false, ms::NODEV),
            "nodiratime" => (false, ms::NODIRATIME),
            "noexec" => (false, ms::NOEXEC),
            "nomand" => (true, ms::MANDLOCK),
            "norelatime" => (true, ms::RELATIME),
            "nostrictatime" => (true, ms::STRICTATIME),
            "nosuid" => (false, ms::NOSUID),
            "nosymfollow" => (false, ms::NOSYMFOLLOW),
            "private" => (false, ms::PRIVATE),
            "rprivate" => (false, ms::PRIVATE | ms::REC),
            "rbind" => (false, ms::BIND | ms::REC),
            "relatime" => (false, ms::RELATIME),
            "remount" => (false, ms::REMOUNT),
            "ro" => (false, ms::RDONLY),
            "rw" => (true, ms::RDONLY),
            "shared" => (false, ms::SHARED),
            "rshared" => (false, ms::SHARED | ms::REC),
            "slave" => (false, ms::SLAVE),
            "rslave" => (false, ms::SLAVE | ms::REC),
            "strictatime" => (false, ms::STRICTATIME),
            "suid" => (true, ms::NOSUID),
            "sync" => (false, ms::SYNCHRONOUS),
            "unbindable" => (false, ms::UNBINDABLE),
            "runbindable" => (false, ms::UNBINDABLE | ms::REC),
            _ => {
                data.push(o);
                continue;
            }
        };
        if clear {
            flags &= !bit;
        } else {
            flags |= bit;
        }
    }
    Parsed { flags, data: (!data.is_empty()).then(|| data.join(",")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn splits_flags_from_data() {
        let p = parse(&v(&["nosuid", "strictatime", "mode=755", "size=65536k", "ro"]));
        assert_eq!(p.flags, ms::NOSUID | ms::STRICTATIME | ms::RDONLY);
        assert_eq!(p.data.as_deref(), Some("mode=755,size=65536k"));
    }

    #[test]
    fn later_words_clear_earlier_ones() {
        assert_eq!(parse(&v(&["ro", "rw"])).flags, 0);
    }

    #[test]
    fn propagation_is_separate() {
        let p = parse(&v(&["rw", "rbind", "rshared"]));
        assert_eq!(p.plain(), ms::BIND | ms::REC);
        assert_eq!(p.propagation(), ms::SHARED | ms::REC);
        let p = parse(&v(&["remount", "private"]));
        assert_eq!(p.plain(), ms::REMOUNT);
        assert_eq!(p.propagation(), ms::PRIVATE);
    }
}
