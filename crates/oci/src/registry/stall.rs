//! When a registry is too slow to wait on: silent for the stall timeout, or slower than the
//! minimum rate over a window. Either ends the attempt like a dropped connection. The same
//! watch holds every body baleen reads whole ([`read_body`]: manifests, indexes, token
//! answers), so a registry sending one byte just inside the stall timeout cannot hold a build
//! for the years a 4 MiB manifest would take at that pace.

use super::{chain, RegistryError, RegistryOptions};
use reqwest::Response;
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

/// Reads a whole body of at most `limit` bytes under the stall timeout and the minimum rate:
/// the first cut fails the read (these bodies are small; the caller decides whether to ask
/// again). `what` says what was being fetched, for the error.
pub(super) async fn read_body(
    mut resp: Response,
    opts: &RegistryOptions,
    limit: u64,
    what: &str,
    registry: &str,
) -> Result<Vec<u8>, RegistryError> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(RegistryError::TooLarge { what: what.into(), limit });
    }
    let mut body = Vec::new();
    let mut rate = RateWatch::new(opts);
    let stalled = |stall, received: &Vec<u8>| RegistryError::Stalled {
        what: what.into(),
        registry: registry.into(),
        stall,
        received: u64::try_from(received.len()).unwrap_or(u64::MAX),
        attempts: 1,
    };
    loop {
        match tokio::time::timeout(opts.stall_timeout, resp.chunk()).await {
            Ok(Ok(Some(c))) => {
                body.extend_from_slice(&c);
                if u64::try_from(body.len()).map_or(true, |n| n > limit) {
                    return Err(RegistryError::TooLarge { what: what.into(), limit });
                }
                if let Some(slow) = rate.arrived(u64::try_from(c.len()).unwrap_or(u64::MAX)) {
                    return Err(stalled(slow, &body));
                }
            }
            Ok(Ok(None)) => return Ok(body),
            Ok(Err(e)) => {
                return Err(RegistryError::Interrupted {
                    what: what.into(),
                    registry: registry.into(),
                    received: u64::try_from(body.len()).unwrap_or(u64::MAX),
                    detail: chain(&e),
                })
            }
            Err(_) => return Err(stalled(Stall::Silent(opts.stall_timeout), &body)),
        }
    }
}

/// The start of an error answer's body, for the message: at most `ERROR_BODY` bytes, waited
/// on for at most the default stall timeout in all (a registry's complaint is short; a hostile
/// one may send nothing, or without end).
pub(super) async fn error_body(mut resp: Response) -> String {
    const ERROR_BODY: usize = 4096;
    let mut body = Vec::new();
    let read = async {
        while let Ok(Some(c)) = resp.chunk().await {
            body.extend_from_slice(&c);
            if body.len() >= ERROR_BODY {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(super::STALL_TIMEOUT, read).await;
    body.truncate(ERROR_BODY);
    String::from_utf8_lossy(&body).into_owned()
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
