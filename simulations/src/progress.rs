//! How a run shows its progress: a bar on the terminal (phase, count,
//! elapsed time), plain lines (tests, logs), or nothing.

use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress of a run.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
    started: Instant,
    /// Without a bar: the phase's name, length, and the last tenth shown.
    phase: Mutex<(String, u64, u64)>,
}

impl Progress {
    /// A progress bar on stderr, with notes printed above it.
    pub fn bar() -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("[{elapsed_precise}] {msg:<34} {wide_bar} {pos}/{len}")
        {
            bar.set_style(style);
        }
        Progress {
            bar: Some(bar),
            lines: true,
            started: Instant::now(),
            phase: Mutex::default(),
        }
    }

    /// Notes and phases as plain lines on stderr (no bar).
    pub fn lines() -> Self {
        Progress {
            bar: None,
            lines: true,
            started: Instant::now(),
            phase: Mutex::default(),
        }
    }

    /// Nothing at all.
    pub fn quiet() -> Self {
        Progress {
            bar: None,
            lines: false,
            started: Instant::now(),
            phase: Mutex::default(),
        }
    }

    /// A note, above the bar.
    pub fn note(&self, line: &str) {
        if !self.lines {
            return;
        }
        let line = format!("[{:>6.1} s] {line}", self.started.elapsed().as_secs_f64());
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// A new phase of `total` steps.
    pub fn phase(&self, name: &str, total: u64) {
        match &self.bar {
            Some(bar) => {
                bar.set_message(name.to_string());
                bar.set_length(total);
                bar.set_position(0);
            }
            None => {
                if let Ok(mut phase) = self.phase.lock() {
                    *phase = (name.to_string(), total, 0);
                }
                self.note(name);
            }
        }
    }

    /// Steps done in the current phase (without a bar: a line at every
    /// tenth).
    pub fn set(&self, done: u64) {
        if let Some(bar) = &self.bar {
            return bar.set_position(done);
        }
        let line = {
            let Ok(mut phase) = self.phase.lock() else {
                return;
            };
            let (name, total, shown) = &mut *phase;
            let tenth = (done * 10).checked_div(*total).unwrap_or(0);
            if tenth <= *shown {
                return;
            }
            *shown = tenth;
            format!("{name}: {done}/{total}")
        };
        self.note(&line);
    }

    /// Clears the bar (the run is over).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
