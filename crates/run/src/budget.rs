//! `baleen run --budget services=2s`: boot milestones a system must reach in time, read from
//! baleen-init's console lines on the guest's clock (the `--measure` timeline), so CI can hold a
//! system to its boot time. A run that misses one exits 1 (unless it already failed otherwise)
//! with a table of what missed what.
//!
//! Milestones, each measured from the kernel's start:
//! - `init`: `baleen: init started`;
//! - `onboot`: `phase onboot done` (every onboot container has exited);
//! - `services`: `phase services started`.
//!
//! A milestone the console never showed (the VM stopped first, or init printed nothing) missed
//! its budget: a budget that checks nothing would pass silently.

use crate::console::Timeline;
use std::time::Duration;

/// A point of the boot a budget is set for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Milestone {
    Init,
    Onboot,
    Services,
}

const MILESTONES: [(&str, Milestone, &str); 3] = [
    ("init", Milestone::Init, ""),
    ("onboot", Milestone::Onboot, "phase onboot done"),
    ("services", Milestone::Services, "phase services started"),
];

impl Milestone {
    fn name(self) -> &'static str {
        MILESTONES.iter().find(|(_, m, _)| *m == self).map_or("?", |(n, _, _)| n)
    }
}

/// The time budgets of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeBudget {
    pub limits: Vec<(Milestone, Duration)>,
}

/// A `--budget` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeBudgetError {
    #[error("--budget {value:?}: unknown milestone {key:?} (expected init, onboot or services)")]
    Key { value: String, key: String },
    #[error("--budget {value:?}: {time:?} is not a time (e.g. 2s, 1500ms, 1m)")]
    Time { value: String, time: String },
    #[error("--budget {value:?}: expected MILESTONE=TIME[,MILESTONE=TIME...]")]
    Form { value: String },
}

impl TimeBudget {
    /// Adds the limits of one `--budget` value; a later limit for a milestone replaces an
    /// earlier one.
    pub fn parse_into(&mut self, value: &str) -> Result<(), TimeBudgetError> {
        for part in value.split(',') {
            let Some((key, time)) = part.split_once('=') else {
                return Err(TimeBudgetError::Form { value: value.into() });
            };
            let m = MILESTONES
                .iter()
                .find(|(n, _, _)| *n == key.trim())
                .map(|(_, m, _)| *m)
                .ok_or_else(|| TimeBudgetError::Key { value: value.into(), key: key.into() })?;
            let d = parse_time(time.trim())
                .ok_or_else(|| TimeBudgetError::Time { value: value.into(), time: time.into() })?;
            self.limits.retain(|(k, _)| *k != m);
            self.limits.push((m, d));
        }
        self.limits.sort();
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.limits.is_empty()
    }
}

/// `2s`, `1.5s`, `1500ms`, `1m`.
fn parse_time(s: &str) -> Option<Duration> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        return None;
    };
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v > 0.0).then(|| Duration::from_secs_f64(v * scale))
}

/// When the console showed `m`, in seconds since the kernel started.
fn reached(tl: &Timeline, m: Milestone) -> Option<f64> {
    if m == Milestone::Init {
        return Some(tl.kernel_to_init);
    }
    let label = MILESTONES.iter().find(|(_, k, _)| *k == m).map(|(_, _, l)| *l)?;
    tl.steps.iter().find(|(l, _)| l == label).map(|(_, t)| tl.kernel_to_init + t)
}

/// A milestone reached later than its budget allows, or never (`reached` is `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct Missed {
    pub milestone: Milestone,
    /// Seconds from the kernel's start, on the guest clock.
    pub reached: Option<f64>,
    pub budget: Duration,
}

/// The milestones that missed their budget; its message is the table `baleen run` prints.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct OverBudget {
    pub missed: Vec<Missed>,
}

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "boot over its time budget (guest clock, from kernel start):")?;
        write!(f, "\n  {:<10} {:>10} {:>10}", "MILESTONE", "REACHED", "BUDGET")?;
        for m in &self.missed {
            let at = m.reached.map_or_else(|| "never".to_string(), |t| format!("{t:.3}s"));
            let budget = format!("{:.3}s", m.budget.as_secs_f64());
            write!(f, "\n  {:<10} {:>10} {:>10}", m.milestone.name(), at, budget)?;
        }
        Ok(())
    }
}

/// The milestones that missed their budget; `Ok` when every one was met.
pub fn check(budget: &TimeBudget, timeline: Option<&Timeline>) -> Result<(), OverBudget> {
    let mut missed = Vec::new();
    for &(milestone, limit) in &budget.limits {
        let reached = timeline.and_then(|tl| reached(tl, milestone));
        if reached.is_none_or(|t| t > limit.as_secs_f64()) {
            missed.push(Missed { milestone, reached, budget: limit });
        }
    }
    if missed.is_empty() {
        Ok(())
    } else {
        Err(OverBudget { missed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(v: &str) -> TimeBudget {
        let mut b = TimeBudget::default();
        b.parse_into(v).unwrap();
        b
    }

    fn timeline() -> Timeline {
        Timeline {
            kernel_to_init: 1.0,
            steps: vec![
                ("phase mounts done".into(), 0.1),
                ("phase onboot done".into(), 0.5),
                ("service getty started".into(), 0.6),
                ("phase services started".into(), 0.7),
            ],
            total: 1.7,
        }
    }

    #[test]
    fn values_parse() {
        assert_eq!(
            budget("services=2s,init=1500ms").limits,
            [
                (Milestone::Init, Duration::from_millis(1500)),
                (Milestone::Services, Duration::from_secs(2))
            ]
        );
        assert_eq!(budget("onboot=1m").limits, [(Milestone::Onboot, Duration::from_secs(60))]);
        let mut b = TimeBudget::default();
        assert!(matches!(b.parse_into("boot=2s"), Err(TimeBudgetError::Key { .. })));
        assert!(matches!(b.parse_into("init=2"), Err(TimeBudgetError::Time { .. })));
        assert!(matches!(b.parse_into("init=-1s"), Err(TimeBudgetError::Time { .. })));
        assert!(matches!(b.parse_into("init"), Err(TimeBudgetError::Form { .. })));
    }

    #[test]
    fn milestones_are_measured_from_the_kernels_start() {
        let tl = timeline();
        assert_eq!(check(&budget("init=1s,onboot=1.5s,services=1.7s"), Some(&tl)), Ok(()));
        let e = check(&budget("init=1s,onboot=1.4s,services=1.6s"), Some(&tl)).unwrap_err();
        let e = e.to_string();
        assert!(e.contains("onboot") && e.contains("1.500s") && e.contains("1.400s"), "{e}");
        assert!(e.contains("services") && e.contains("1.700s"), "{e}");
        assert!(!e.contains("\n  init"), "init was in time: {e}");
        // The table `baleen run` prints, byte for byte as when check returned a String.
        assert_eq!(
            e,
            "boot over its time budget (guest clock, from kernel start):\n  \
             MILESTONE     REACHED     BUDGET\n  \
             onboot         1.500s     1.400s\n  \
             services       1.700s     1.600s"
        );
    }

    #[test]
    fn a_milestone_never_reached_misses_its_budget() {
        let mut tl = timeline();
        tl.steps.retain(|(l, _)| !l.contains("services"));
        let e = check(&budget("services=10s"), Some(&tl)).unwrap_err().to_string();
        assert!(e.contains("never"), "{e}");
        assert!(check(&budget("init=10s"), None).unwrap_err().to_string().contains("never"));
    }
}
