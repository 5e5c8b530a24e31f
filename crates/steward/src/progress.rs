//! Progress of long operations (packing, uploads, downloads) on the terminal: bytes, rate
//! and time remaining, on standard error. Nothing is drawn when standard error is not a
//! terminal (CI logs, pipes, tests), so scripted output stays clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar over a number of bytes; a hidden one when not on a terminal.
#[derive(Clone)]
pub struct Progress(ProgressBar);

impl Progress {
    pub fn bytes(what: &str, total: u64) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total), target());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}, {eta} left",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(what.to_owned());
        Progress(bar)
    }

    /// Progress that is never drawn.
    #[cfg(test)]
    pub fn hidden() -> Progress {
        Progress(ProgressBar::hidden())
    }

    pub fn set(&self, done: u64) {
        self.0.set_position(done);
    }

    pub fn add(&self, bytes: u64) {
        self.0.inc(bytes);
    }

    pub fn set_total(&self, total: u64) {
        self.0.set_length(total);
    }

    /// Clears the bar: the command's own summary follows.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

fn target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}
