//! A progress bar on stderr (symbols, rows, input MB/s, ETA), shown only when stderr is a
//! terminal and the caller wants it: cron and CI logs stay clean.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::plan::Plan;

/// Progress reporting for a build (a no-op when hidden).
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
    input_done: AtomicU64,
}

impl Progress {
    /// A progress bar if `wanted` and stderr is a terminal; otherwise silent.
    pub fn new(wanted: bool) -> Progress {
        let bar = (wanted && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows  {msg}  ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Progress {
            bar,
            start: Instant::now(),
            input_done: AtomicU64::new(0),
        }
    }

    /// A silent progress (library callers, tests).
    pub fn hidden() -> Progress {
        Progress::new(false)
    }

    /// A phase message before the rows start ("planning 728 symbols").
    pub fn phase(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.set_message(msg.to_string());
            b.tick();
        }
    }

    /// Starts counting rows of `plan`.
    pub fn begin(&self, plan: &Plan) {
        self.input_done.store(0, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.set_length(plan.layout.nrows());
            b.set_position(0);
        }
    }

    /// Rows written.
    pub fn rows(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Unit `index` of `plan` is written.
    pub fn unit_done(&self, index: usize, plan: &Plan) {
        let Some(b) = &self.bar else { return };
        let done = self
            .input_done
            .fetch_add(plan.units[index].size, Ordering::Relaxed)
            + plan.units[index].size;
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let symbol = plan.units[index].symbol as usize + 1;
        b.set_message(format!(
            "symbols {symbol}/{}  {:.0} MB/s in",
            plan.layout.symbols().len(),
            done as f64 / 1e6 / secs
        ));
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
