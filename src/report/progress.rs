//! A progress bar on stderr (symbols, rows, input MB/s, ETA), shown only when stderr is a
//! terminal and the caller wants it: cron and CI logs stay clean. It is a spinner while the
//! build discovers and plans, and a bar once the rows to write are known; the ETA appears once a
//! file is done (before that there is no rate to extrapolate from).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::plan::Plan;

const SPINNER: &str = "{spinner} [{elapsed_precise}] {msg}";
const BAR: &str = "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows  {msg}";

/// Progress reporting for a build (a no-op when hidden).
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    start: Instant,
    input_done: AtomicU64,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl Progress {
    /// A progress bar if `wanted` and stderr is a terminal; otherwise silent.
    pub fn new(wanted: bool) -> Progress {
        let bar = (wanted && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(style(SPINNER));
            bar.enable_steady_tick(Duration::from_millis(200));
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
        }
    }

    /// Starts counting rows of `plan`.
    pub fn begin(&self, plan: &Plan) {
        self.input_done.store(0, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.set_style(style(BAR));
            b.set_length(plan.layout.nrows());
            b.set_position(0);
            b.set_message(format!("symbols 0/{}", plan.layout.symbols().len()));
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
        let size = plan.units[index].size;
        let done = self.input_done.fetch_add(size, Ordering::Relaxed) + size;
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let symbol = plan.units[index].symbol as usize + 1;
        let (pos, len) = (b.position(), b.length().unwrap_or(0));
        let eta = match pos {
            0 => String::new(),
            _ => format!(
                "  ETA {:.0}s",
                secs * (len.saturating_sub(pos)) as f64 / pos as f64
            ),
        };
        b.set_message(format!(
            "symbols {symbol}/{}  {:.0} MB/s in{eta}",
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
