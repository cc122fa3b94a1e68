//! `order`: time-major output (`--order time`) by a bounded transposition.
//!
//! The pipeline first writes the usual symbol-major file, committed to a hidden *intermediate*
//! beside the output (a spill temporary name, so `spillway clean` and the next build of the same
//! output remove it if the process dies; [`Intermediate`] removes it on success and on every
//! error). Then, reading the intermediate with positioned reads:
//!
//! 1. `merge::find_runs` cuts each symbol's rows into runs whose time only rises or only falls
//!    (a symbol stored newest-first is one run, read backwards);
//! 2. the rows of each distinct time, counted on the way (`counts`, a hash map of at most the
//!    merge's memory; past that, `merge::count_timestamps` merges the runs once to count them):
//!    the timestamp index, so the output's layout is exact before a value is written;
//! 3. the merge runs again, `window::Window` taking the output rows a window at a time and
//!    gathering each column with one read per run stretch, written through the spill writer
//!    in row order. With `--cs-transform`, each window takes whole cross-sections (the index
//!    says where they end) and the feature columns go through `transform`'s kernel first; a
//!    window then holds at least the largest cross-section ([`whole_sections`]).
//!
//! Memory is fixed by the budget, never by the row count: on top of what the stream pass left
//! resident, a writer of at most 32 MiB, a window of [`window::ROW_BYTES`] a row and a time
//! buffer a run, split by [`memory`]; the timestamp index keeps runs of steps and counts (capped
//! by the format at 2^24 each). The runs the merge may hold ([`max_runs`]) follow the budget:
//! up to three quarters of what is free, the window keeping the rest.
//! The output depends on the intermediate alone (itself independent of threads, capacity, batch
//! rows and write mode) and the writer's bytes do not depend on how writes are sliced, so neither
//! the window size nor the budget changes a byte.

use std::path::{Path, PathBuf};
use std::time::Instant;

use spill::{Layout, SpillWriter, WriteOptions};

mod counts;
mod merge;
mod source;
mod transform;
mod window;

pub use self::transform::{Float, Kernel};

use self::counts::{TimeCounts, TIME_BYTES};
use self::merge::{
    count_timestamps, find_runs, Merge, MAX_BUFFER_ROWS, MIN_BUFFER_ROWS, RUN_BYTES, RUN_MIN_BYTES,
};
use self::source::Source;
use self::transform::SCRATCH_BYTES;
use self::window::{Sections, Window, BOUND_BYTES, ROW_BYTES};
use crate::cancel::Cancel;
use crate::config::CsTransform;
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
/// The most the merge's run buffers take while its runs fit in less (more runs take what they
/// need, up to [`max_runs`]).
const MAX_MERGE_BYTES: u64 = 32 << 20;
/// The merge's least share when the budget sets the run cap: 2 MiB, so the cap is never below
/// the 4096 runs the first version's smallest merge held.
const MIN_CAP_MERGE_BYTES: u64 = 2 << 20;
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

/// What the transposition's writer takes, and what the budget leaves free beside it.
struct Free {
    in_use: u64,
    writer_memory: u64,
    writer_bytes: u64,
    free: u64,
}

fn free(budget: &Budget, ncols: usize, in_use: u64) -> Free {
    let in_use = in_use.max(FIXED);
    let writer_memory = budget.writer_memory.min(MAX_WRITER_BYTES);
    let writer_bytes = WriteOptions::default()
        .with_memory(writer_memory)
        .resident_bytes(ncols);
    let free = budget
        .budget_bytes
        .saturating_sub(in_use.saturating_add(writer_bytes).saturating_add(MARGIN));
    Free {
        in_use,
        writer_memory,
        writer_bytes,
        free,
    }
}

/// The split for `budget`, `nrows` output rows of `ncols` columns and `runs` runs to merge (0
/// while they are being found), when the process already holds `in_use` bytes (its resident set
/// after the stream pass: the allocator keeps some of what the readers freed; at least [`FIXED`]
/// is assumed). The merge takes a quarter of what is free (at most 32 MiB) or what its runs
/// need, whichever is more; the window the rest (at most 48 MiB).
pub fn memory(budget: &Budget, nrows: u64, ncols: usize, in_use: u64, runs: usize) -> Memory {
    let Free {
        in_use,
        writer_memory,
        writer_bytes,
        free,
    } = free(budget, ncols, in_use);
    let needed = (runs as u64).saturating_mul(RUN_MIN_BYTES);
    let merge_bytes = (free / 4)
        .clamp(MIN_PART_BYTES, MAX_MERGE_BYTES)
        .max(needed);
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
        bound_bytes: in_use
            .saturating_add(writer_bytes)
            .saturating_add(merge_bytes)
            .saturating_add(window_rows * ROW_BYTES),
    }
}

/// The most runs the merge may hold under `budget`: three quarters of what is free beside the
/// writer (the window keeps a quarter), at least [`MIN_CAP_MERGE_BYTES`]; so a larger budget
/// lifts the cap.
pub fn max_runs(budget: &Budget, ncols: usize, in_use: u64) -> usize {
    let free = free(budget, ncols, in_use).free;
    let merge = (free - free / 4).max(MIN_CAP_MERGE_BYTES);
    usize::try_from(merge / RUN_MIN_BYTES).unwrap_or(usize::MAX)
}

/// The split `memory` when windows take whole cross-sections, the largest of `largest` rows: a
/// window row also costs a bound ([`BOUND_BYTES`]), so the window takes fewer rows, but never
/// fewer than the largest cross-section (memory then follows it, not the budget), and the
/// kernel's scratch ([`SCRATCH_BYTES`] a row of the largest) joins the bound.
pub fn whole_sections(memory: Memory, largest: u64) -> Memory {
    let per_row = ROW_BYTES + BOUND_BYTES;
    let rows = (memory.window_rows * ROW_BYTES / per_row)
        .max(largest)
        .max(1);
    let bound = memory
        .bound_bytes
        .saturating_sub(memory.window_rows * ROW_BYTES)
        .saturating_add(rows.saturating_mul(per_row))
        .saturating_add(largest.saturating_mul(SCRATCH_BYTES));
    Memory {
        window_rows: rows,
        bound_bytes: bound,
        ..memory
    }
}

/// Times each of `runs` runs buffers.
fn buffer_rows(memory: &Memory, runs: usize) -> usize {
    let per_run = memory.merge_bytes / runs.max(1) as u64;
    ((per_run.saturating_sub(RUN_BYTES) / 8) as usize).clamp(MIN_BUFFER_ROWS, MAX_BUFFER_ROWS)
}

/// Writes the rows of the committed intermediate `staging` (the symbol-major file of `plan`) to
/// a time-major spill writer at `output`, the feature columns through `transform` (if any), and
/// returns that writer, every row written, for the caller to commit.
#[allow(clippy::too_many_arguments)]
pub fn transpose(
    plan: &Plan,
    staging: &Intermediate,
    output: &Path,
    budget: &Budget,
    opts: WriteOptions,
    transform: Option<CsTransform>,
    progress: &Progress,
    cancel: &Cancel,
) -> Result<(SpillWriter, TransposeStats)> {
    progress.phase("time-major: transposing");
    let in_use = crate::report::rss::rss_bytes().unwrap_or(budget.bound_bytes / 2);
    let (nrows, ncols) = (plan.layout.nrows(), plan.layout.columns().len());
    let split = |runs: usize| memory(budget, nrows, ncols, in_use, runs);
    let job = Job {
        layout: &plan.layout,
        staging: staging.path(),
        output,
        split: &split,
        max_runs: max_runs(budget, ncols, in_use),
        budget_bytes: budget.budget_bytes,
        opts,
        transform,
    };
    job.run(cancel)
}

/// One transposition: the intermediate's layout and path, where the output goes, and how.
struct Job<'a> {
    layout: &'a Layout,
    staging: &'a Path,
    output: &'a Path,
    /// The memory split for a number of runs (0 while they are being found).
    split: &'a dyn Fn(usize) -> Memory,
    max_runs: usize,
    budget_bytes: u64,
    opts: WriteOptions,
    /// The per-timestamp transform of the feature columns.
    transform: Option<CsTransform>,
}

impl Job<'_> {
    fn run(&self, cancel: &Cancel) -> Result<(SpillWriter, TransposeStats)> {
        let t0 = Instant::now();
        let intermediate_bytes = std::fs::metadata(self.staging)
            .map_err(|e| Error::io("reading the size of", self.staging, e))?
            .len();
        let src = Source::open(self.staging, self.layout)?;
        let nrows = self.layout.nrows();
        let ncols = self.layout.columns().len();
        // The map of counts uses the merge's memory, which is not in use yet.
        let counting = (self.split)(0);
        let mut counts = TimeCounts::new((counting.merge_bytes / TIME_BYTES) as usize);
        let runs = find_runs(&src, self.max_runs, self.budget_bytes, &mut counts)?;
        // The split again, now that the runs are known (many take memory from the window).
        let memory = (self.split)(runs.len());
        let buffer_rows = buffer_rows(&memory, runs.len());
        let index = match counts.into_sorted() {
            Some(counted) => spill::Timestamps::from_counts(counted)?,
            None => count_timestamps(&runs, &src, buffer_rows)?,
        };
        let timestamps = index.len() as u64;
        cancel.check()?;
        // A transform needs the windows cut at the cross-sections' ends, which the index gives.
        let sections_of = self.transform.map(|_| index.clone());
        let memory = match &sections_of {
            Some(index) => whole_sections(memory, Sections::largest(index)),
            None => memory,
        };
        let layout = self.layout.clone().with_time_order(index)?;
        let index_seconds = t0.elapsed().as_secs_f64();

        let t1 = Instant::now();
        let opts = self.opts.with_memory(memory.writer_memory);
        let mut writer = SpillWriter::create(self.output, layout, opts)?;
        let mut merge = Merge::new(&runs, &src, buffer_rows)?;
        let mut window = Window::new(memory.window_rows as usize, merge.runs());
        if let Some(t) = self.transform {
            window = window.with_kernel(Kernel::new(t));
        }
        let mut sections = sections_of.as_ref().map(Sections::new);
        let (mut row, mut windows) = (0u64, 0u64);
        loop {
            cancel.check()?;
            let n = window.fill(&mut merge, &src, sections.as_mut())?;
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
#[cfg(test)]
mod tests_cs;
