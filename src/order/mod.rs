//! `order`: time-major output (`--order time`) by a bounded transposition.
//!
//! The pipeline first writes the usual symbol-major file, committed to a hidden *intermediate*
//! beside the output (a spill temporary name, so `spillway clean` and the next build of the same
//! output remove it if the process dies; [`Intermediate`] removes it on success and on every
//! error). Then, reading the intermediate with positioned reads:
//!
//! 1. `merge::find_runs` cuts each symbol's rows into runs whose time never goes backwards;
//! 2. the rows of each distinct time, counted on the way (`counts`, a hash map of at most the
//!    merge's memory; past that, `merge::count_timestamps` merges the runs once to count them):
//!    the timestamp index, so the output's layout is exact before a value is written;
//! 3. the merge runs again, `window::Window` taking the output rows a window at a time and
//!    gathering each column with one read per run stretch, written through the spill writer
//!    in row order.
//!
//! Memory is fixed by the budget, never by the row count: on top of what the stream pass left
//! resident, a writer of at most 32 MiB, a window of [`window::ROW_BYTES`] a row and a time
//! buffer a run, split by [`memory`]; the timestamp index keeps runs of steps and counts (capped
//! by the format at 2^24 each).
//! The output depends on the intermediate alone (itself independent of threads, capacity, batch
//! rows and write mode) and the writer's bytes do not depend on how writes are sliced, so neither
//! the window size nor the budget changes a byte.

use std::path::{Path, PathBuf};
use std::time::Instant;

use spill::{Layout, SpillWriter, WriteOptions};

mod counts;
mod merge;
mod source;
mod window;

use self::counts::{TimeCounts, TIME_BYTES};
use self::merge::{
    count_timestamps, find_runs, Merge, MAX_BUFFER_ROWS, MIN_BUFFER_ROWS, RUN_BYTES,
};
use self::source::Source;
use self::window::{Window, ROW_BYTES};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::plan::budget::Budget;
use crate::plan::Plan;
use crate::report::progress::Progress;
pub use crate::report::summary::TransposeMemory as Memory;
use crate::report::summary::TransposeStats;

/// The process itself (binary, libraries, allocator slack), as the stream pass's budget counts it.
const FIXED: u64 = 24 << 20;
/// The most a window takes: 2.1 M rows; larger windows save little (a read per run stretch and
/// column is already over ten KiB on the real-size universe).
const MAX_WINDOW_BYTES: u64 = 48 << 20;
/// The most the transposition's writer keeps: it writes one column at a time, so its per-column
/// buffers matter less than in the stream pass (256 KiB a column for 103 columns).
const MAX_WRITER_BYTES: u64 = 32 << 20;
/// Kept free for what the estimate misses (allocator slack, the reading threads' stacks).
const MARGIN: u64 = 16 << 20;
/// The most the merge's run buffers take.
const MAX_MERGE_BYTES: u64 = 32 << 20;
/// The least either gets, whatever the budget says (the bound is then reported over it).
const MIN_PART_BYTES: u64 = 1 << 20;

/// The hidden symbol-major intermediate file beside the output, removed when dropped.
#[derive(Debug)]
pub struct Intermediate {
    path: PathBuf,
}

impl Intermediate {
    /// A fresh intermediate name beside `output` (nothing is created yet).
    pub fn beside(output: &Path) -> Result<Intermediate> {
        Ok(Intermediate {
            path: spill::temp_path(output)?,
        })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Intermediate {
    fn drop(&mut self) {
        // Absent when the stream pass failed before its commit (its writer removed its own
        // temporary): nothing to do then.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The split for `budget` and `nrows` output rows of `ncols` columns, when the process already
/// holds `in_use` bytes (its resident set after the stream pass: the allocator keeps some of what
/// the readers freed; at least [`FIXED`] is assumed).
pub fn memory(budget: &Budget, nrows: u64, ncols: usize, in_use: u64) -> Memory {
    let in_use = in_use.max(FIXED);
    let writer_memory = budget.writer_memory.min(MAX_WRITER_BYTES);
    let writer_bytes = WriteOptions::default()
        .with_memory(writer_memory)
        .resident_bytes(ncols);
    let free = budget
        .budget_bytes
        .saturating_sub(in_use + writer_bytes + MARGIN);
    let merge_bytes = (free / 4).clamp(MIN_PART_BYTES, MAX_MERGE_BYTES);
    let window_bytes = free
        .saturating_sub(merge_bytes)
        .clamp(MIN_PART_BYTES, MAX_WINDOW_BYTES);
    let window_rows = (window_bytes / ROW_BYTES).min(nrows).max(1);
    Memory {
        in_use_bytes: in_use,
        writer_bytes,
        writer_memory,
        merge_bytes,
        window_rows,
        bound_bytes: in_use + writer_bytes + merge_bytes + window_rows * ROW_BYTES,
    }
}

/// The most runs a merge of `memory` can hold.
pub fn max_runs(memory: &Memory) -> usize {
    (memory.merge_bytes / (RUN_BYTES + 8 * MIN_BUFFER_ROWS as u64)) as usize
}

/// Times each of `runs` runs buffers.
fn buffer_rows(memory: &Memory, runs: usize) -> usize {
    let per_run = memory.merge_bytes / runs.max(1) as u64;
    ((per_run.saturating_sub(RUN_BYTES) / 8) as usize).clamp(MIN_BUFFER_ROWS, MAX_BUFFER_ROWS)
}

/// Writes the rows of the committed intermediate `staging` (the symbol-major file of `plan`) to
/// a time-major spill writer at `output`, and returns that writer, every row written, for the
/// caller to commit.
pub fn transpose(
    plan: &Plan,
    staging: &Intermediate,
    output: &Path,
    budget: &Budget,
    opts: WriteOptions,
    progress: &Progress,
    cancel: &Cancel,
) -> Result<(SpillWriter, TransposeStats)> {
    progress.phase("time-major: transposing");
    let in_use = crate::report::rss::rss_bytes().unwrap_or(budget.bound_bytes / 2);
    let ncols = plan.layout.columns().len();
    let memory = memory(budget, plan.layout.nrows(), ncols, in_use);
    let job = Job {
        layout: &plan.layout,
        staging: staging.path(),
        output,
        memory,
        budget_bytes: budget.budget_bytes,
        opts: opts.with_memory(memory.writer_memory),
    };
    job.run(cancel)
}

/// One transposition: the intermediate's layout and path, where the output goes, and how.
struct Job<'a> {
    layout: &'a Layout,
    staging: &'a Path,
    output: &'a Path,
    memory: Memory,
    budget_bytes: u64,
    opts: WriteOptions,
}

impl Job<'_> {
    fn run(&self, cancel: &Cancel) -> Result<(SpillWriter, TransposeStats)> {
        let t0 = Instant::now();
        let intermediate_bytes = std::fs::metadata(self.staging)
            .map_err(|e| Error::io("reading the size of", self.staging, e))?
            .len();
        let src = Source::open(self.staging, self.layout)?;
        let nrows = self.layout.nrows();
        let memory = self.memory;
        // The map of counts uses the merge's memory, which is not in use yet.
        let mut counts = TimeCounts::new((memory.merge_bytes / TIME_BYTES) as usize);
        let runs = find_runs(&src, max_runs(&memory), self.budget_bytes, &mut counts)?;
        let buffer_rows = buffer_rows(&memory, runs.len());
        let index = match counts.into_sorted() {
            Some(counted) => spill::Timestamps::from_counts(counted)?,
            None => count_timestamps(&runs, &src, buffer_rows)?,
        };
        let timestamps = index.len() as u64;
        cancel.check()?;
        let layout = self.layout.clone().with_time_order(index)?;
        let index_seconds = t0.elapsed().as_secs_f64();

        let t1 = Instant::now();
        let mut writer = SpillWriter::create(self.output, layout, self.opts)?;
        let mut merge = Merge::new(&runs, &src, buffer_rows)?;
        let mut window = Window::new(memory.window_rows as usize, merge.runs());
        let ncols = self.layout.columns().len();
        let (mut row, mut windows) = (0u64, 0u64);
        loop {
            cancel.check()?;
            let n = window.fill(&mut merge, &src)?;
            if n == 0 {
                break;
            }
            for col in 0..ncols {
                window.write_column(&src, col, &mut writer, row)?;
            }
            row += n as u64;
            windows += 1;
        }
        if row != nrows {
            return Err(Error::Internal(format!(
                "the transposition wrote {row} rows of {nrows}"
            )));
        }
        Ok((
            writer,
            TransposeStats {
                memory,
                runs: runs.len(),
                timestamps,
                windows,
                intermediate_bytes,
                bytes_read: src.bytes_read(),
                index_seconds,
                gather_seconds: t1.elapsed().as_secs_f64(),
            },
        ))
    }
}

#[cfg(test)]
mod tests;
