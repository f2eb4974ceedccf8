//! Progress of a long run on stderr, for `crm export` now and `crm rebuild`, `crm verify` and
//! `crm replay` later: an indicatif bar when stderr is a terminal; otherwise plain lines (a log
//! file, CI) at most about one a second, so a redirected stderr stays readable. stdout is left
//! alone: it may carry the run's output.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The least time between two plain progress lines.
const LINE_INTERVAL: Duration = Duration::from_secs(1);

/// How far a run of `total` steps has come.
pub struct Progress {
    label: String,
    total: u64,
    started: Instant,
    view: View,
}

enum View {
    Bar(ProgressBar),
    Lines { last_line: Instant },
}

impl Progress {
    /// A bar when stderr is a terminal, plain lines otherwise. `label` names the run
    /// (`export`), `total` is the number of steps (`set` takes a step count up to it).
    pub fn new(label: &str, total: u64) -> Progress {
        if std::io::stderr().is_terminal() {
            Progress::bar(label, total)
        } else {
            Progress::lines(label, total)
        }
    }

    fn bar(label: &str, total: u64) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:40}] {human_pos}/{human_len} ({per_sec}, {eta} left)",
        )
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(label.to_owned());
        Progress {
            label: label.to_owned(),
            total,
            started: Instant::now(),
            view: View::Bar(bar),
        }
    }

    fn lines(label: &str, total: u64) -> Progress {
        let started = Instant::now();
        Progress {
            label: label.to_owned(),
            total,
            started,
            view: View::Lines { last_line: started },
        }
    }

    /// `done` steps of `total` are done.
    pub fn set(&mut self, done: u64) {
        if let Some(line) = self.set_at(done, Instant::now()) {
            eprintln!("{line}");
        }
    }

    /// [`set`](Self::set) at a given time: the plain line to print, if one is due.
    fn set_at(&mut self, done: u64, now: Instant) -> Option<String> {
        match &mut self.view {
            View::Bar(bar) => {
                bar.set_position(done);
                None
            }
            View::Lines { last_line } => {
                if now.duration_since(*last_line) < LINE_INTERVAL {
                    return None;
                }
                *last_line = now;
                let seconds = now.duration_since(self.started).as_secs_f64();
                let percent = if self.total == 0 {
                    100.0
                } else {
                    100.0 * done as f64 / self.total as f64
                };
                Some(format!(
                    "{}: {} of {} ({percent:.0}%), {} per second",
                    self.label,
                    crate::thousands(done),
                    crate::thousands(self.total),
                    crate::thousands((done as f64 / seconds.max(1e-9)) as u64),
                ))
            }
        }
    }

    /// Time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Ends the run: the bar goes away and `message` (a summary) stays, as one line.
    pub fn finish(self, message: &str) {
        self.clear();
        eprintln!("{message}");
    }

    /// Ends the run without a summary (before an error is printed).
    pub fn clear(self) {
        if let View::Bar(bar) = &self.view {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_come_at_most_once_a_second() {
        let mut progress = Progress::lines("export", 4000);
        let start = progress.started;
        assert_eq!(progress.set_at(10, start), None, "not right at the start");
        assert_eq!(
            progress.set_at(20, start + Duration::from_millis(999)),
            None
        );
        let line = progress
            .set_at(2000, start + Duration::from_secs(2))
            .expect("a line after a second");
        assert_eq!(line, "export: 2,000 of 4,000 (50%), 1,000 per second");
        assert_eq!(
            progress.set_at(2100, start + Duration::from_millis(2500)),
            None
        );
        assert!(progress
            .set_at(4000, start + Duration::from_secs(3))
            .is_some());
    }

    #[test]
    fn an_empty_run_is_complete() {
        let mut progress = Progress::lines("export", 0);
        let start = progress.started;
        let line = progress.set_at(0, start + Duration::from_secs(1)).unwrap();
        assert_eq!(line, "export: 0 of 0 (100%), 0 per second");
    }

    #[test]
    fn a_bar_prints_no_lines() {
        let mut progress = Progress::bar("export", 10);
        let line = progress.set_at(5, Instant::now() + Duration::from_secs(5));
        assert_eq!(line, None);
        progress.clear();
    }
}
