//! The progress bar on stderr (symbols, rows, input MB/s, ETA), shown only when stderr is a
//! terminal and `--quiet` is not given: cron and CI logs stay clean. It is a spinner while the
//! build discovers and plans, and a bar once the rows to write are known; the ETA appears once a
//! file is done (before that there is no rate to extrapolate from).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use spillway::{Progress, Watch};

const SPINNER: &str = "{spinner} [{elapsed_precise}] {msg}";
const BAR: &str = "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows  {msg}";

/// A build's progress: a bar if `wanted` and stderr is a terminal, otherwise nothing.
pub fn progress(wanted: bool) -> Progress {
    if wanted && std::io::stderr().is_terminal() {
        Progress::new(Bar::new())
    } else {
        Progress::hidden()
    }
}

struct Bar {
    bar: ProgressBar,
    start: Instant,
    input_done: AtomicU64,
    symbols: AtomicUsize,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl Bar {
    fn new() -> Bar {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(style(SPINNER));
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar {
            bar,
            start: Instant::now(),
            input_done: AtomicU64::new(0),
            symbols: AtomicUsize::new(0),
        }
    }
}

impl Watch for Bar {
    fn phase(&self, msg: &str) {
        self.bar.set_message(msg.to_string());
    }

    fn begin(&self, rows: u64, symbols: usize) {
        self.input_done.store(0, Ordering::Relaxed);
        self.symbols.store(symbols, Ordering::Relaxed);
        self.bar.set_style(style(BAR));
        self.bar.set_length(rows);
        self.bar.set_position(0);
        self.bar.set_message(format!("symbols 0/{symbols}"));
    }

    fn rows(&self, n: u64) {
        self.bar.inc(n);
    }

    fn file_done(&self, symbol: usize, bytes: u64) {
        let done = self.input_done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let (pos, len) = (self.bar.position(), self.bar.length().unwrap_or(0));
        let eta = match pos {
            0 => String::new(),
            _ => format!(
                "  ETA {:.0}s",
                secs * (len.saturating_sub(pos)) as f64 / pos as f64
            ),
        };
        self.bar.set_message(format!(
            "symbols {symbol}/{}  {:.0} MB/s in{eta}",
            self.symbols.load(Ordering::Relaxed),
            done as f64 / 1e6 / secs
        ));
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
