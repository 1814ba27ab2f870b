//! `baleen build --budget initrd=64M,kernel=16M,image=200M`: sizes a system must stay within,
//! checked after every format is written and before any output replaces an earlier one, so CI
//! can hold a system to its size. A build over budget fails with a table of what exceeded what,
//! and its outputs are not committed.
//!
//! What each key measures:
//! - `kernel`: the kernel as the build wrote it (the `-kernel` output, or the kernel inside a
//!   UKI, ISO or disk);
//! - `initrd`: the initrd as written (compressed; the `-initrd.img` output or the one embedded);
//! - `image`: the uncompressed tree, the bytes of file data every format writes (what
//!   `--max-size` bounds and what an initrd unpacks to in RAM);
//! - `output`: each file the build writes, one row per file over budget.

use std::fmt::{self, Write as _};

/// What a budget limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BudgetKey {
    Kernel,
    Initrd,
    Image,
    Output,
}

impl BudgetKey {
    const ALL: [(&'static str, BudgetKey); 4] = [
        ("kernel", BudgetKey::Kernel),
        ("initrd", BudgetKey::Initrd),
        ("image", BudgetKey::Image),
        ("output", BudgetKey::Output),
    ];

    fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, k)| *k == self).map_or("?", |(n, _)| n)
    }
}

/// The limits of one build, from one or more `--budget` values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Budget {
    pub limits: Vec<(BudgetKey, u64)>,
}

/// A `--budget` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetParseError {
    #[error("--budget {value:?}: unknown key {key:?} (expected kernel, initrd, image or output)")]
    Key { value: String, key: String },
    #[error("--budget {value:?}: {size:?} is not a size (a number with an optional K, M or G suffix, powers of 1024)")]
    Size { value: String, size: String },
    #[error("--budget {value:?}: expected KEY=SIZE[,KEY=SIZE...]")]
    Form { value: String },
}

impl Budget {
    /// Adds the limits of one `--budget` value (`initrd=64M,kernel=16M`); a later limit of the
    /// same key replaces an earlier one.
    pub fn parse_into(&mut self, value: &str) -> Result<(), BudgetParseError> {
        for part in value.split(',') {
            let Some((key, size)) = part.split_once('=') else {
                return Err(BudgetParseError::Form { value: value.into() });
            };
            let key =
                BudgetKey::ALL.iter().find(|(n, _)| *n == key.trim()).map(|(_, k)| *k).ok_or_else(
                    || BudgetParseError::Key { value: value.into(), key: key.into() },
                )?;
            let bytes = parse_size(size.trim())
                .ok_or_else(|| BudgetParseError::Size { value: value.into(), size: size.into() })?;
            self.limits.retain(|(k, _)| *k != key);
            self.limits.push((key, bytes));
        }
        self.limits.sort();
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.limits.is_empty()
    }
}

/// `123`, `64K`, `64M`, `1G` (also `64MiB`, `64MB`: powers of 1024 either way).
fn parse_size(s: &str) -> Option<u64> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(digits);
    let n: u64 = n.parse().ok()?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

/// What a build measured of itself. The largest seen wins when several formats write the same
/// thing (they write the same bytes).
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub kernel: Option<u64>,
    pub initrd: Option<u64>,
    pub image: Option<u64>,
    /// Each output file by name, with its size.
    pub outputs: Vec<(String, u64)>,
}

impl Measured {
    pub fn note(slot: &mut Option<u64>, n: u64) {
        *slot = Some(slot.map_or(n, |m| m.max(n)));
    }
}

/// One budget that was exceeded or could not be measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overrun {
    pub what: String,
    pub size: Option<u64>,
    pub limit: u64,
}

/// The budgets a build did not keep.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", table(.0))]
pub struct OverBudget(pub Vec<Overrun>);

fn table(rows: &[Overrun]) -> String {
    let mut s = String::from("over budget (nothing was written):\n");
    let w = rows.iter().map(|r| r.what.len()).max().unwrap_or(0).max(4);
    let _ = writeln!(s, "  {:w$}  {:>10}  {:>10}", "WHAT", "SIZE", "BUDGET");
    for r in rows {
        let size = r.size.map_or_else(|| "not built".to_string(), |n| Human(n).to_string());
        let _ = writeln!(s, "  {:w$}  {:>10}  {:>10}", r.what, size, Human(r.limit).to_string());
    }
    s.truncate(s.trim_end().len());
    s
}

/// Bytes as KiB/MiB/GiB with one decimal, or plain bytes below 1 KiB.
struct Human(u64);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        let (div, unit) = match n {
            n if n >= 1 << 30 => (1u64 << 30, "GiB"),
            n if n >= 1 << 20 => (1 << 20, "MiB"),
            n if n >= 1 << 10 => (1 << 10, "KiB"),
            _ => return write!(f, "{n} B"),
        };
        // Tenths, rounded up so that a size just over a budget never prints equal to it.
        let tenths = (u128::from(n) * 10).div_ceil(u128::from(div));
        write!(f, "{}.{} {unit}", tenths / 10, tenths % 10)
    }
}

/// Checks `measured` against `budget`. A key the build did not produce (`initrd` of a `tar`)
/// is an overrun too: a budget that checks nothing would pass silently.
pub fn check(budget: &Budget, measured: &Measured) -> Result<(), OverBudget> {
    let mut rows = Vec::new();
    for &(key, limit) in &budget.limits {
        let one = |size: Option<u64>| {
            (size.is_none_or(|n| n > limit)).then(|| Overrun {
                what: key.name().to_string(),
                size,
                limit,
            })
        };
        match key {
            BudgetKey::Kernel => rows.extend(one(measured.kernel)),
            BudgetKey::Initrd => rows.extend(one(measured.initrd)),
            BudgetKey::Image => rows.extend(one(measured.image)),
            BudgetKey::Output => {
                rows.extend(measured.outputs.iter().filter(|(_, n)| *n > limit).map(|(name, n)| {
                    Overrun { what: format!("output {name}"), size: Some(*n), limit }
                }))
            }
        }
    }
    if rows.is_empty() {
        Ok(())
    } else {
        Err(OverBudget(rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(v: &str) -> Budget {
        let mut b = Budget::default();
        b.parse_into(v).unwrap();
        b
    }

    #[test]
    fn values_parse_and_later_keys_win() {
        let b = budget("initrd=64M,kernel=16M,image=200M");
        assert_eq!(
            b.limits,
            [
                (BudgetKey::Kernel, 16 << 20),
                (BudgetKey::Initrd, 64 << 20),
                (BudgetKey::Image, 200 << 20)
            ]
        );
        let mut b = budget("output=1G");
        b.parse_into("output=2048K, kernel=10").unwrap();
        assert_eq!(b.limits, [(BudgetKey::Kernel, 10), (BudgetKey::Output, 2 << 20)]);
        let mut b = Budget::default();
        assert!(matches!(b.parse_into("ram=1G"), Err(BudgetParseError::Key { .. })));
        assert!(matches!(b.parse_into("kernel=lots"), Err(BudgetParseError::Size { .. })));
        assert!(matches!(b.parse_into("kernel"), Err(BudgetParseError::Form { .. })));
        assert!(matches!(
            b.parse_into("kernel=99999999999999G"),
            Err(BudgetParseError::Size { .. })
        ));
    }

    #[test]
    fn what_exceeds_its_budget_is_listed_with_both_sizes() {
        let m = Measured {
            kernel: Some(10 << 20),
            initrd: Some((64 << 20) + 1),
            image: Some(100 << 20),
            outputs: vec![("a-kernel".into(), 10 << 20), ("a-initrd.img".into(), (64 << 20) + 1)],
        };
        assert_eq!(check(&budget("kernel=10M,initrd=70M,image=100M,output=64M"), &m), Ok(()));
        let e = check(&budget("kernel=16M,initrd=64M,output=32M"), &m).unwrap_err();
        let what: Vec<_> = e.0.iter().map(|r| r.what.as_str()).collect();
        assert_eq!(what, ["initrd", "output a-initrd.img"]);
        let text = e.to_string();
        assert!(text.starts_with("over budget (nothing was written):"), "{text}");
        // One byte over 64 MiB never prints as 64.0 MiB.
        assert!(text.contains("64.1 MiB     64.0 MiB"), "{text}");
    }

    #[test]
    fn a_budget_for_something_not_built_fails() {
        let e = check(&budget("initrd=1G"), &Measured::default()).unwrap_err();
        assert_eq!(e.0, [Overrun { what: "initrd".into(), size: None, limit: 1 << 30 }]);
        assert!(e.to_string().contains("not built"));
    }
}
