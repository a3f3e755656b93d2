//! The live progress line: a bar over the run's duration with the current figures, redrawn in
//! place on a terminal; on anything else (CI logs) a plain line every few seconds instead.

use indicatif::{ProgressBar, ProgressStyle};
use std::cell::Cell;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How often the line is redrawn.
pub const REFRESH_MS: u64 = 250;

/// Seconds between plain lines when stderr is not a terminal.
const PLAIN_LINE_INTERVAL_S: f64 = 5.0;

pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    started: Instant,
    next_plain_s: Cell<f64>,
}

impl Progress {
    /// A progress line for a phase of about `total_s` seconds.
    pub fn new(label: &str, total_s: f64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new((total_s * 1_000.0) as u64);
            let style = ProgressStyle::with_template("{prefix:>12} [{elapsed:>4}] {bar:24} {msg}")
                .expect("the template is valid")
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(label.to_owned());
            bar
        });
        Progress { bar, label: label.to_owned(), started: Instant::now(), next_plain_s: Cell::new(0.0) }
    }

    /// Shows `message` as the current state.
    pub fn update(&self, message: String) {
        let elapsed_s = self.started.elapsed().as_secs_f64();
        match &self.bar {
            Some(bar) => {
                bar.set_position((elapsed_s * 1_000.0) as u64);
                bar.set_message(message);
            }
            None if elapsed_s >= self.next_plain_s.get() => {
                self.next_plain_s.set(elapsed_s + PLAIN_LINE_INTERVAL_S);
                eprintln!("{:>12} [{elapsed_s:>5.1}s] {message}", self.label);
            }
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Calls `message` and shows the result every [`REFRESH_MS`] until `until`.
pub async fn run_until(progress: &Progress, until: Instant, message: impl Fn() -> String) {
    while Instant::now() < until {
        progress.update(message());
        glommio::timer::sleep(Duration::from_millis(REFRESH_MS).min(until.saturating_duration_since(Instant::now())))
            .await;
    }
    progress.update(message());
}
