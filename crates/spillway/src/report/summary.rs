//! The build summary: what was read and skipped, how fast, how much memory, and where the time
//! went (readers waiting on a full channel mean the writer is the bottleneck, and vice versa).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use spill::Committed;

use crate::plan::budget::Budget;
use crate::plan::filter::FilterStats;
use crate::plan::{Disorder, Plan, Skipped};
use crate::report::rss::peak_rss_bytes;
use crate::report::tool::{Tool, THIS};

/// What the writer measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriterStats {
    /// Time spent waiting for batches (readers are the bottleneck when this is large).
    pub wait: Duration,
    /// Time spent writing.
    pub busy: Duration,
    /// Rows written.
    pub rows: u64,
}

/// Files read by each decoder. The choice never changes a byte of the output; it shows where the
/// time went, and tests use it to know which decoder they exercised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Decoders {
    /// Files read by spillway's fast decoder.
    pub fast: u64,
    /// Files read by arrow-rs.
    pub arrow: u64,
}

/// How a time-major build's transposition splits its memory (see `order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TransposeMemory {
    /// Resident bytes when the transposition began (what the stream pass left).
    pub in_use_bytes: u64,
    /// Bytes the transposition's writer keeps resident (its buffers, their alignment and its
    /// bounce buffers).
    pub writer_bytes: u64,
    /// The writer's memory option: what its buffers share (`spill::WriteOptions::with_memory`).
    pub writer_memory: u64,
    /// Bytes for the runs' time buffers and heap.
    pub merge_bytes: u64,
    /// Rows a window takes.
    pub window_rows: u64,
    /// The transposition's memory bound: what was in use, writer, merge and window.
    pub bound_bytes: u64,
}

/// What a time-major build's transposition did.
#[derive(Debug, Clone, Serialize)]
pub struct TransposeStats {
    /// The memory split and bound.
    pub memory: TransposeMemory,
    /// Runs merged: stretches whose time only rises or only falls (one a symbol whose time is
    /// sorted either way, oldest- or newest-first).
    pub runs: usize,
    /// Distinct timestamps.
    pub timestamps: u64,
    /// Windows gathered.
    pub windows: u64,
    /// Bytes of the intermediate file (written by the stream pass, then deleted).
    pub intermediate_bytes: u64,
    /// Bytes read back from it.
    pub bytes_read: u64,
    /// Seconds cutting runs and counting the timestamps (two reads of the time column).
    pub index_seconds: f64,
    /// Seconds gathering the windows and writing them.
    pub gather_seconds: f64,
}

/// What `--if-changed` reports when the output is current and nothing was built.
#[derive(Debug, Clone, Serialize)]
pub struct CurrentSummary {
    /// "current": the build was skipped.
    pub status: &'static str,
    /// Which spillway looked.
    pub tool: Tool,
    /// The spill file, left as it was.
    pub output: PathBuf,
    /// Why it is current.
    pub reason: String,
}

impl CurrentSummary {
    /// The report of a skipped build of `output`.
    pub fn new(output: PathBuf, reason: String) -> CurrentSummary {
        CurrentSummary {
            status: "current",
            tool: THIS,
            output,
            reason,
        }
    }
}

/// Everything a build reports (`--summary FILE.json` writes it as JSON). Only a build makes one
/// (there is no public constructor: a summary is a record of what happened), and fields are added
/// as builds learn to report more, so it is read by field, never matched as a whole.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BuildSummary {
    /// "built" (a `--if-changed` build that had nothing to do writes a [`CurrentSummary`]).
    pub status: &'static str,
    /// Which spillway built it.
    pub tool: Tool,
    /// The spill file.
    pub output: PathBuf,
    /// Its size.
    pub output_bytes: u64,
    /// Symbols written.
    pub symbols_read: usize,
    /// Symbols left out, with reasons.
    pub symbols_skipped: Vec<Skipped>,
    /// Symbols whose time goes backwards or repeats (after their parts are put in time order).
    pub time_disorder: Disorder,
    /// What the build warns about (an empty output, disordered time).
    pub warnings: Vec<String>,
    /// Rows written.
    pub rows: u64,
    /// Rows per symbol, in symbol order.
    pub rows_per_symbol: BTreeMap<String, u64>,
    /// Output columns (time, symbol, target, features).
    pub columns: usize,
    /// Feature columns.
    pub features: usize,
    /// Input files read.
    pub input_files: usize,
    /// Files read by each decoder.
    pub decoders: Decoders,
    /// Input bytes read.
    pub input_bytes: u64,
    /// Wall seconds, discovery to commit.
    pub seconds: f64,
    /// Of which planning (footers, the time scan, the filter passes).
    pub plan_seconds: f64,
    /// Of which the commit (metadata, trailer, fsync, rename).
    pub commit_seconds: f64,
    /// Rows per second of wall time.
    pub rows_per_second: f64,
    /// Input MB (10^6 bytes) per second of wall time.
    pub input_mb_per_second: f64,
    /// Peak resident set size of the process (VmHWM), bytes.
    pub peak_rss_bytes: Option<u64>,
    /// The pipeline shape and the memory bound it was planned for (the stream pass's).
    pub budget: Budget,
    /// The bound the whole build was planned for: the stream pass's (`budget.bound_bytes`), or
    /// for a time-major build the larger of it and the transposition's
    /// (`transpose.memory.bound_bytes`). The peak RSS stays below it.
    pub planned_bound_bytes: u64,
    /// Seconds readers spent blocked on a full channel, summed over readers.
    pub readers_waited_seconds: f64,
    /// Seconds the writer spent waiting for batches.
    pub writer_waited_seconds: f64,
    /// Seconds the writer spent writing.
    pub writer_busy_seconds: f64,
    /// "readers" (decoding) or "writer", from the waits above.
    pub bottleneck: &'static str,
    /// Attempts made: plans executed (more than 1 when `--on-error skip` excluded symbols that
    /// failed while decoding; all those of one attempt are excluded together, and
    /// `--max-attempts` caps the count).
    pub attempts: usize,
    /// Cross-sectional filter settings.
    pub filters: crate::config::FilterOptions,
    /// Rows each filter removed, distinct timestamps, and the memory of the filter passes.
    pub filter_stats: FilterStats,
    /// How the rows are ordered: "symbol" or "time".
    pub order: &'static str,
    /// Bytes written and read by the build (spill files only, not the parquet input) over the
    /// output's size: 1 for a symbol-major build; a time-major build writes the intermediate,
    /// reads it back and writes the output.
    pub io_amplification: f64,
    /// The transposition of a time-major build.
    pub transpose: Option<TransposeStats>,
    /// What reading a universe in object storage cost (requests, retries, bytes); absent for a
    /// directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_storage: Option<crate::input::source::RemoteStats>,
}

impl BuildSummary {
    /// Assembles the summary of a finished build.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        plan: &Plan,
        budget: &Budget,
        committed: Option<&Committed>,
        decoders: Decoders,
        writer: WriterStats,
        reader_wait: Duration,
        wall: Duration,
        (plan_seconds, commit_seconds): (f64, f64),
        attempts: usize,
    ) -> BuildSummary {
        let secs = wall.as_secs_f64().max(1e-9);
        let rows = plan.layout.nrows();
        let mut warnings = plan.warnings.clone();
        if rows == 0 {
            warnings.push(match (plan.filters.is_some(), plan.input_rows() > 0) {
                (true, _) => "the output has 0 rows: the filters removed every row".to_string(),
                (false, true) => "the output has 0 rows: --max-rows 0 keeps none".to_string(),
                (false, false) => {
                    "the output has 0 rows: no file has a row with a time".to_string()
                }
            });
        }
        if plan.disorder.symbols > 0 {
            let names: Vec<&str> = plan
                .disorder
                .first
                .iter()
                .map(|(s, _)| s.as_str())
                .collect();
            warnings.push(format!(
                "time goes backwards or repeats in {} symbol(s) ({}{}): their rows keep file order, and --max-rows keeps the last rows in that order",
                plan.disorder.symbols,
                names.join(", "),
                if plan.disorder.symbols > names.len() { ", ..." } else { "" }
            ));
        }
        let per_reader_wait = reader_wait.as_secs_f64() / budget.readers.max(1) as f64;
        BuildSummary {
            status: "built",
            tool: THIS,
            output: committed.map_or_else(PathBuf::new, |c| c.path.clone()),
            output_bytes: committed.map_or(0, |c| c.file_len),
            symbols_read: plan.layout.symbols().len(),
            symbols_skipped: plan.skipped.clone(),
            time_disorder: plan.disorder.clone(),
            warnings,
            rows,
            rows_per_symbol: plan
                .layout
                .symbols()
                .iter()
                .map(|s| (s.name.clone(), s.len()))
                .collect(),
            columns: plan.layout.columns().len(),
            features: plan.features.len(),
            input_files: plan.units.len(),
            decoders,
            input_bytes: plan.input_bytes,
            seconds: secs,
            plan_seconds,
            commit_seconds,
            rows_per_second: rows as f64 / secs,
            input_mb_per_second: plan.input_bytes as f64 / 1e6 / secs,
            peak_rss_bytes: peak_rss_bytes(),
            budget: *budget,
            planned_bound_bytes: budget.bound_bytes,
            readers_waited_seconds: reader_wait.as_secs_f64(),
            writer_waited_seconds: writer.wait.as_secs_f64(),
            writer_busy_seconds: writer.busy.as_secs_f64(),
            bottleneck: if writer.wait.as_secs_f64() >= per_reader_wait {
                "readers"
            } else {
                "writer"
            },
            attempts,
            filters: plan
                .filters
                .as_ref()
                .map(|cs| cs.options())
                .unwrap_or_default(),
            filter_stats: plan.filter_stats,
            order: "symbol",
            io_amplification: if committed.is_some() { 1.0 } else { 0.0 },
            transpose: None,
            object_storage: None,
        }
    }

    /// Records the transposition of a time-major build.
    pub(crate) fn with_transpose(mut self, t: TransposeStats) -> BuildSummary {
        let out = self.output_bytes.max(1) as f64;
        self.order = "time";
        self.planned_bound_bytes = self.planned_bound_bytes.max(t.memory.bound_bytes);
        self.io_amplification =
            (t.intermediate_bytes + t.bytes_read + self.output_bytes) as f64 / out;
        self.transpose = Some(t);
        self
    }

    /// A few human lines (for stderr).
    pub fn human(&self) -> String {
        let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
        let mut s = format!(
            "wrote {} ({:.1} MiB): {} rows, {} symbols, {} columns in {:.2}s ({:.0} rows/s, {:.0} MB/s of input)\n",
            self.output.display(),
            mib(self.output_bytes),
            self.rows,
            self.symbols_read,
            self.columns,
            self.seconds,
            self.rows_per_second,
            self.input_mb_per_second,
        );
        s += &format!(
            "memory: peak RSS {} (planned bound {:.0} MiB{} of a {:.0} MiB budget: {} readers, {}-row batches, capacity {}, writer {:.0} MiB)\n",
            self.peak_rss_bytes.map_or("unknown".into(), |b| format!("{:.0} MiB", mib(b))),
            mib(self.planned_bound_bytes),
            match &self.transpose {
                Some(t) => format!(
                    " = max(stream pass {:.0} MiB, transposition {:.0} MiB)",
                    mib(self.budget.bound_bytes),
                    mib(t.memory.bound_bytes)
                ),
                None => String::new(),
            },
            mib(self.budget.budget_bytes),
            self.budget.readers,
            self.budget.batch_rows,
            self.budget.capacity,
            mib(self.budget.writer_bytes),
        );
        let transpose_seconds = self
            .transpose
            .as_ref()
            .map_or(0.0, |t| t.index_seconds + t.gather_seconds);
        s += &format!(
            "phases: plan {:.2}s, stream {:.2}s (writer busy {:.2}s),{} commit {:.2}s; files decoded: {} fast, {} arrow-rs\n",
            self.plan_seconds,
            (self.seconds - self.plan_seconds - self.commit_seconds - transpose_seconds).max(0.0),
            self.writer_busy_seconds,
            match &self.transpose {
                Some(t) => format!(
                    " transpose {:.2}s (index {:.2}s, gather {:.2}s),",
                    t.index_seconds + t.gather_seconds,
                    t.index_seconds,
                    t.gather_seconds
                ),
                None => String::new(),
            },
            self.commit_seconds,
            self.decoders.fast,
            self.decoders.arrow
        );
        s += &format!(
            "waits: readers blocked {:.2}s, writer waited {:.2}s (bottleneck: {})\n",
            self.readers_waited_seconds, self.writer_waited_seconds, self.bottleneck
        );
        if let Some(t) = &self.transpose {
            s += &format!(
                "order: time ({} timestamps, {} runs merged, {} windows of up to {} rows, bound {:.0} MiB); I/O amplification {:.2} ({:.1} MiB intermediate written, {:.1} MiB read back)\n",
                t.timestamps,
                t.runs,
                t.windows,
                t.memory.window_rows,
                mib(t.memory.bound_bytes),
                self.io_amplification,
                mib(t.intermediate_bytes),
                mib(t.bytes_read),
            );
        }
        if let Some(o) = &self.object_storage {
            s += &o.human();
        }
        if self.filters.active() {
            let f = &self.filter_stats;
            s += &format!(
                "filters: removed {} rows (null target), {} (min-cs), {} (sampling); {} distinct timestamps, {:.1} MiB\n",
                f.removed_null_target,
                f.removed_min_cs,
                f.removed_sampling,
                f.distinct_timestamps,
                mib(f.memory_bytes)
            );
        }
        for w in &self.warnings {
            s += &format!("warning: {w}\n");
        }
        if !self.symbols_skipped.is_empty() {
            let attempts = match self.attempts {
                0 | 1 => String::new(),
                n => format!(" in {n} attempts (those failing while decoding excluded together)"),
            };
            s += &format!(
                "skipped {} symbol(s){attempts}:\n",
                self.symbols_skipped.len()
            );
            for k in &self.symbols_skipped {
                s += &format!("  {}: {}\n", k.symbol, k.reason);
            }
        }
        s
    }
}
