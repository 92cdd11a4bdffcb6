//! A one-line progress bar on stderr: steps, steps/s, ETA and the latest loss.
//!
//! On a terminal the line redraws in place at most ten times a second; into a file or pipe it
//! prints a plain line every tenth of the run instead, so logs stay readable.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Progress of a training run.
#[derive(Debug)]
pub struct Progress {
    total: usize,
    first_step: usize,
    started: Instant,
    last_draw: Option<Instant>,
    last_tenth: usize,
    terminal: bool,
    enabled: bool,
}

impl Progress {
    /// A bar for steps `first_step..total`; `enabled = false` draws nothing.
    pub fn new(first_step: usize, total: usize, enabled: bool) -> Self {
        Self {
            total,
            first_step,
            started: Instant::now(),
            last_draw: None,
            last_tenth: first_step * 10 / total.max(1),
            terminal: std::io::stderr().is_terminal(),
            enabled,
        }
    }

    /// Reports that `done` steps are complete; `loss` is the latest recorded loss.
    pub fn update(&mut self, done: usize, loss: Option<f64>) {
        if !self.enabled {
            return;
        }
        if self.terminal {
            let due = self
                .last_draw
                .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
            if due || done == self.total {
                self.last_draw = Some(Instant::now());
                eprint!("\r{}\x1b[K", self.line(done, loss));
                let _ = std::io::stderr().flush();
            }
        } else {
            let tenth = done * 10 / self.total.max(1);
            if tenth > self.last_tenth {
                self.last_tenth = tenth;
                eprintln!("{}", self.line(done, loss));
            }
        }
    }

    /// Prints a message above the bar.
    pub fn message(&self, text: &str) {
        if self.enabled {
            if self.terminal {
                eprint!("\r\x1b[K");
            }
            eprintln!("{text}");
        }
    }

    /// Ends the bar's line.
    pub fn finish(&self) {
        if self.enabled && self.terminal {
            eprintln!();
        }
    }

    fn line(&self, done: usize, loss: Option<f64>) -> String {
        const WIDTH: usize = 30;
        let filled = WIDTH * done / self.total.max(1);
        let bar: String = (0..WIDTH)
            .map(|i| if i < filled { '#' } else { '-' })
            .collect();
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = (done - self.first_step) as f64 / elapsed.max(1e-9);
        let eta = if rate > 0.0 {
            format_duration((self.total - done) as f64 / rate)
        } else {
            "?".into()
        };
        let loss = loss.map_or_else(|| "-".into(), |l| format!("{l:.3e}"));
        format!(
            "[{bar}] {done}/{total} | {rate:.1} steps/s | ETA {eta} | loss {loss}",
            total = self.total
        )
    }
}

/// `75` → `1m15s`, `3700` → `1h01m40s`.
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m{sec:02}s"),
        (h, min, sec) => format!("{h}h{min:02}m{sec:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(9.4), "9s");
        assert_eq!(format_duration(75.0), "1m15s");
        assert_eq!(format_duration(3700.0), "1h01m40s");
    }

    #[test]
    fn line_shows_counts_rate_and_loss() {
        let bar = Progress::new(0, 200, true);
        let line = bar.line(50, Some(0.00125));
        assert!(line.contains("50/200"), "{line}");
        assert!(line.contains("steps/s") && line.contains("ETA"), "{line}");
        assert!(line.contains("1.250e-3"), "{line}");
    }
}
