//! What a build tells whoever watches it while it runs: its phases ("planning 728 symbols"), the
//! rows written and each input file finished. The library draws nothing: a [`Watch`] (the CLI's
//! progress bar, a log, a notebook widget) receives the events; without one they cost nothing.

use crate::plan::Plan;

/// Receives a build's progress. Every method has an empty default, so a watcher implements only
/// what it shows. Called from the build's threads (the writer's, the caller's): keep it cheap.
pub trait Watch: Send + Sync {
    /// A phase before or after the rows ("discovering", "planning 728 symbols", "committing").
    fn phase(&self, _msg: &str) {}
    /// The rows start: `rows` in all, from `symbols` symbols.
    fn begin(&self, _rows: u64, _symbols: usize) {}
    /// `n` more rows are written.
    fn rows(&self, _n: u64) {}
    /// An input file of `bytes` bytes, of symbol number `symbol` (1-based, in the plan's order),
    /// is written.
    fn file_done(&self, _symbol: usize, _bytes: u64) {}
    /// The build is over, whether it succeeded or not.
    fn finish(&self) {}
}

/// A build's progress reporting: a [`Watch`], or nothing ([`Progress::hidden`]).
#[derive(Default)]
pub struct Progress {
    watch: Option<Box<dyn Watch>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("watched", &self.watch.is_some())
            .finish()
    }
}

impl Progress {
    /// Reports to `watch`.
    pub fn new(watch: impl Watch + 'static) -> Progress {
        Progress {
            watch: Some(Box::new(watch)),
        }
    }

    /// Reports to nobody (library callers, tests).
    pub fn hidden() -> Progress {
        Progress::default()
    }

    pub(crate) fn phase(&self, msg: &str) {
        if let Some(w) = &self.watch {
            w.phase(msg);
        }
    }

    pub(crate) fn begin(&self, plan: &Plan) {
        if let Some(w) = &self.watch {
            w.begin(plan.layout.nrows(), plan.layout.symbols().len());
        }
    }

    pub(crate) fn rows(&self, n: u64) {
        if let Some(w) = &self.watch {
            w.rows(n);
        }
    }

    pub(crate) fn unit_done(&self, index: usize, plan: &Plan) {
        if let Some(w) = &self.watch {
            let unit = &plan.units[index];
            w.file_done(unit.symbol as usize + 1, unit.size);
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(w) = &self.watch {
            w.finish();
        }
    }
}
