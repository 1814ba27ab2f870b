//! Debian version comparison (Debian Policy §5.6.12): `[epoch:]upstream[-revision]`.
//!
//! Written here rather than taken from a crate: it is forty lines, fully specified, and the
//! resolver calls it in its inner loop.

use std::cmp::Ordering;

/// Compares two Debian version strings.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb).then_with(|| compare_part(ua, ub)).then_with(|| compare_part(ra, rb))
}

fn split(v: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) if e.bytes().all(|b| b.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((u, r)) => (epoch, u, r),
        None => (epoch, rest, ""),
    }
}

/// `~` sorts before everything, even the end of the string; letters before non-letters.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        // Non-digit prefix, character by character.
        loop {
            let ca = a.first().copied().filter(|c| !c.is_ascii_digit());
            let cb = b.first().copied().filter(|c| !c.is_ascii_digit());
            if ca.is_none() && cb.is_none() {
                break;
            }
            match order(ca).cmp(&order(cb)) {
                Ordering::Equal => {}
                o => return o,
            }
            a = &a[ca.is_some() as usize..];
            b = &b[cb.is_some() as usize..];
        }
        // Digit run, numerically (leading zeros ignored, no overflow on long runs).
        let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
        let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let na = trim_zeros(&a[..da]);
        let nb = trim_zeros(&b[..db]);
        match na.len().cmp(&nb.len()).then_with(|| na.cmp(nb)) {
            Ordering::Equal => {}
            o => return o,
        }
        a = &a[da..];
        b = &b[db..];
    }
    Ordering::Equal
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|c| **c == b'0').count();
    &d[n..]
}

/// A relation operator of a dependency (`<<`, `<=`, `=`, `>=`, `>>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Op {
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "<<" => Op::Lt,
            "<=" | "<" => Op::Le, // `<` and `>` are obsolete spellings of `<=` and `>=`
            "=" => Op::Eq,
            ">=" | ">" => Op::Ge,
            ">>" => Op::Gt,
            _ => return None,
        })
    }

    /// True when `have <op> want` holds.
    pub fn holds(self, have: &str, want: &str) -> bool {
        let o = compare(have, want);
        match self {
            Op::Lt => o == Ordering::Less,
            Op::Le => o != Ordering::Greater,
            Op::Eq => o == Ordering::Equal,
            Op::Ge => o != Ordering::Less,
            Op::Gt => o == Ordering::Greater,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn policy_examples() {
        for (a, b, want) in [
            ("1.0", "1.0", Equal),
            ("1.0", "1.1", Less),
            ("1.10", "1.9", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0", "1.0+b1", Less),
            ("1.0a", "1.0+", Less),
            ("1:0.1", "2.0", Greater),
            ("2.30-1", "2.30-1+deb12u1", Less),
            ("1.35.0-4+b3", "1.35.0-4", Greater),
            ("6.1.0-28", "6.1.0-9", Greater),
            ("1.0-1", "1.0-1", Equal),
            ("007", "7", Equal),
            ("1.0-1~bpo1", "1.0-1", Less),
            ("2.36-9+deb12u10", "2.36-9+deb12u9", Greater),
            ("0:1.2", "1.2", Equal),
            ("1.2-3-4", "1.2-3-5", Less),
            ("123456789012345678901234567890", "99", Greater),
        ] {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    /// Epochs outrank everything after them, and `~` sorts before anything, even the end:
    /// the orderings security updates and backports rely on (`1.0-1~deb12u1` < `1.0-1`).
    /// Checked against `dpkg --compare-versions` too when dpkg is installed.
    #[test]
    fn epochs_and_tildes_order_as_dpkg_does() {
        let cases = [
            ("1:1.0", "9.9", Greater),
            ("2:0", "1:99", Greater),
            ("1:1.0-1", "1:1.0-2", Less),
            ("0:1.0", "1.0", Equal),
            ("1.0~", "1.0", Less),
            ("1.0~~", "1.0~~a", Less),
            ("1.0~~a", "1.0~", Less),
            ("1.0~beta", "1.0~alpha", Greater),
            ("3.0.15-1~deb12u1", "3.0.15-1", Less),
            ("3.0.15-1~deb12u1", "3.0.14-1", Greater),
            ("1.0-1~bpo12+1", "1.0-1~deb12u1", Less),
            ("1:1.35.0-4+deb12u1+b1", "1:1.35.0-4+b1", Greater),
            ("10:1", "9:2", Greater),
        ];
        let dpkg = std::process::Command::new("dpkg").arg("--version").output().is_ok();
        for (a, b, want) in cases {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
            if dpkg {
                let op = match want {
                    Less => "lt",
                    Equal => "eq",
                    Greater => "gt",
                };
                let ok = std::process::Command::new("dpkg")
                    .args(["--compare-versions", a, op, b])
                    .status()
                    .unwrap()
                    .success();
                assert!(ok, "dpkg disagrees: {a} {op} {b}");
            }
        }
    }

    #[test]
    fn relations() {
        assert!(Op::Ge.holds("1.2", "1.2"));
        assert!(!Op::Gt.holds("1.2", "1.2"));
        assert!(Op::Lt.holds("1.2~", "1.2"));
        assert!(Op::Eq.holds("1:2", "1:2"));
        assert_eq!(Op::parse("!="), None);
    }
}
