//! Progress display: a bar per epoch on a terminal, plain log lines otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Receives the trainer's progress.
pub trait Progress {
    /// An epoch starts.
    fn epoch_start(&mut self, epoch: usize, lr: f64, batches: usize);
    /// A step ended: `steps` and `images` done so far this epoch, the running mean loss of
    /// the last module, seconds since the epoch started.
    fn step(&mut self, steps: usize, images: usize, loss: f64, seconds: f64);
    /// A line to show (an epoch's summary, a note).
    fn message(&mut self, line: &str);
}

/// No display (library use, tests).
#[derive(Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn epoch_start(&mut self, _: usize, _: f64, _: usize) {}
    fn step(&mut self, _: usize, _: usize, _: f64, _: f64) {}
    fn message(&mut self, _: &str) {}
}

/// A progress bar on stderr when it is a terminal, otherwise a log line every tenth of an
/// epoch.
pub struct Console {
    bar: Option<ProgressBar>,
    terminal: bool,
    epoch: usize,
    batches: usize,
}

impl Default for Console {
    fn default() -> Self {
        Self {
            bar: None,
            terminal: std::io::stderr().is_terminal(),
            epoch: 0,
            batches: 0,
        }
    }
}

impl Progress for Console {
    fn epoch_start(&mut self, epoch: usize, lr: f64, batches: usize) {
        self.epoch = epoch;
        self.batches = batches;
        if self.terminal {
            let bar =
                ProgressBar::with_draw_target(Some(batches as u64), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} batches {msg} ({elapsed} < {eta})",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(format!("{epoch}"));
            bar.set_message(format!("lr {lr:.4}"));
            self.bar = Some(bar);
        } else {
            eprintln!("epoch {epoch}: lr {lr:.4}, {batches} batches");
        }
    }

    fn step(&mut self, steps: usize, images: usize, loss: f64, seconds: f64) {
        let rate = images as f64 / seconds.max(1e-9);
        match &self.bar {
            Some(bar) => {
                bar.set_position(steps as u64);
                bar.set_message(format!("loss {loss:.3}, {rate:.0} img/s"));
            }
            None => {
                let tenth = (self.batches / 10).max(1);
                if steps.is_multiple_of(tenth) || steps == self.batches {
                    eprintln!(
                        "epoch {} {steps}/{} batches: loss {loss:.3}, {rate:.0} img/s",
                        self.epoch, self.batches
                    );
                }
            }
        }
    }

    fn message(&mut self, line: &str) {
        match self.bar.take() {
            Some(bar) => {
                bar.finish_and_clear();
                eprintln!("{line}");
            }
            None => eprintln!("{line}"),
        }
    }
}
