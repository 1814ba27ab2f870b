//! When a registry is too slow to wait on: silent for the stall timeout, or slower than the
//! minimum rate over a window. Either ends the attempt like a dropped connection.

use super::RegistryOptions;
use std::time::Duration;

/// How a registry failed to keep a blob coming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stall {
    /// Nothing arrived for this long.
    Silent(Duration),
    /// Only `bytes` arrived in `window`, below `min_rate` bytes per second.
    Slow { bytes: u64, window: Duration, min_rate: u64 },
}

impl std::fmt::Display for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stall::Silent(d) => write!(f, "sent no data for {} s", d.as_secs()),
            Stall::Slow { bytes, window, min_rate } => write!(
                f,
                "sent only {bytes} bytes in {} s, below the minimum of {min_rate} bytes/s",
                window.as_secs()
            ),
        }
    }
}

/// Why one attempt at a blob ended early.
pub(super) enum Cut {
    Dropped(String),
    Stalled(Stall),
}

/// The minimum-rate rule: every `rate_window` of a download must bring `min_rate` bytes per
/// second on average. Checked as chunks arrive (silence is the stall timeout's business).
pub(super) struct RateWatch {
    window: Duration,
    min_rate: u64,
    start: tokio::time::Instant,
    bytes: u64,
}

impl RateWatch {
    pub(super) fn new(opts: &RegistryOptions) -> RateWatch {
        RateWatch {
            window: opts.rate_window,
            min_rate: opts.min_rate,
            start: tokio::time::Instant::now(),
            bytes: 0,
        }
    }

    pub(super) fn arrived(&mut self, n: u64) -> Option<Stall> {
        self.arrived_at(n, tokio::time::Instant::now())
    }

    fn arrived_at(&mut self, n: u64, now: tokio::time::Instant) -> Option<Stall> {
        self.bytes += n;
        if self.window.is_zero() || now.duration_since(self.start) < self.window {
            return None;
        }
        let wanted = self.min_rate.saturating_mul(self.window.as_secs().max(1));
        if self.bytes < wanted {
            return Some(Stall::Slow {
                bytes: self.bytes,
                window: self.window,
                min_rate: self.min_rate,
            });
        }
        self.start = now;
        self.bytes = 0;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(min_rate: u64) -> RateWatch {
        let opts = RegistryOptions {
            min_rate,
            rate_window: Duration::from_secs(60),
            ..RegistryOptions::default()
        };
        RateWatch::new(&opts)
    }

    /// Feeds `per_sec` bytes each second for `secs` seconds; the first verdict.
    fn feed(w: &mut RateWatch, per_sec: u64, secs: u64) -> Option<(u64, Stall)> {
        let start = w.start;
        (1..=secs)
            .find_map(|s| w.arrived_at(per_sec, start + Duration::from_secs(s)).map(|v| (s, v)))
    }

    #[test]
    fn a_steady_slow_link_above_the_minimum_is_never_cut() {
        // 2 KiB/s for an hour: a 7 MB layer, slow but steady.
        assert_eq!(feed(&mut watch(1024), 2048, 3600), None);
    }

    #[test]
    fn a_trickle_is_cut_at_the_end_of_its_first_window() {
        let (at, stall) = feed(&mut watch(1024), 1, 3600).expect("cut");
        assert_eq!(at, 60);
        assert_eq!(
            stall,
            Stall::Slow { bytes: 60, window: Duration::from_secs(60), min_rate: 1024 }
        );
    }

    #[test]
    fn a_burst_does_not_pay_for_a_later_trickle() {
        let mut w = watch(1024);
        assert_eq!(feed(&mut w, 1 << 20, 60), None, "a fast first minute");
        let (at, _) = feed(&mut w, 1, 3600).expect("the trickle after it is cut");
        assert_eq!(at, 60, "one window later");
    }

    #[test]
    fn a_minimum_rate_of_zero_turns_the_rule_off() {
        assert_eq!(feed(&mut watch(0), 0, 3600), None);
    }
}
