//! How long transfers (layer pulls, `.deb` downloads) report themselves on stderr: a bar with
//! bytes, rate and what is moving when stderr is a terminal; one plain line per finished transfer
//! otherwise (a CI log, `2>file`), with no escape codes; nothing when asked for quiet.

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::Instant;

/// Where progress goes.
#[derive(Debug, Clone, Default)]
pub enum Progress {
    /// Nothing (libraries' default; `--quiet`).
    #[default]
    Silent,
    /// Bars, redrawn in place on a terminal.
    Bars(MultiProgress),
    /// One line per finished transfer.
    Lines,
}

impl Progress {
    /// Bars when stderr is a terminal, else lines; nothing when `quiet`.
    pub fn stderr(quiet: bool) -> Progress {
        use std::io::IsTerminal;
        if quiet {
            Progress::Silent
        } else if std::io::stderr().is_terminal() {
            Progress::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
        } else {
            Progress::Lines
        }
    }

    /// Starts reporting a transfer of `total` bytes: `what` moves ("docker.io/library/alpine
    /// layer 1a2b3c4d5e6f", the bar's label), `done` says it happened ("pulled", the line's
    /// first word).
    pub fn transfer(&self, done: &str, what: String, total: u64) -> Transfer {
        let bar = match self {
            Progress::Bars(mp) => {
                let pb = mp.add(ProgressBar::new(total));
                let style = ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .expect("a valid template")
                .progress_chars("=> ");
                pb.set_style(style);
                pb.set_prefix(what.clone());
                Some(pb)
            }
            _ => None,
        };
        let lines = matches!(self, Progress::Lines);
        Transfer { bar, line: lines.then(|| format!("{done} {what}")), started: Instant::now() }
    }
}

/// One transfer in progress; [`Transfer::finish`] when it completed.
#[derive(Debug)]
pub struct Transfer {
    bar: Option<ProgressBar>,
    line: Option<String>,
    started: Instant,
}

impl Transfer {
    /// The bar, for code that sets positions itself (a resumed download).
    pub fn bar(&self) -> Option<&ProgressBar> {
        self.bar.as_ref()
    }

    /// `n` more bytes moved.
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// The transfer completed with `bytes` moved: the bar goes, the line is printed.
    pub fn finish(self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        if let Some(what) = &self.line {
            let secs = self.started.elapsed().as_secs_f64();
            let rate = if secs > 0.0 { (bytes as f64 / secs) as u64 } else { bytes };
            eprintln!("{what}: {} in {secs:.1} s ({}/s)", HumanBytes(bytes), HumanBytes(rate));
        }
    }
}
