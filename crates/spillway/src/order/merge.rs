//! The output order: the intermediate's rows merged by (time, symbol code).
//!
//! Each symbol's rows are cut into *runs*, maximal stretches whose time only rises or only falls
//! (one run a symbol when its time is sorted either way: a symbol stored newest-first is one run,
//! read backwards). A k-way merge over the runs, keyed by (time, symbol code, run index), yields
//! the rows in output order as chunks: rows of one run at one time, contiguous in the
//! intermediate. Runs are numbered by symbol, then row, and a run gives its rows at one time in
//! row order (a falling run reads its *groups* of equal time backwards, each group forwards), so
//! rows of one symbol at one time keep their input order (SPEC.md, "Time-major files"): the
//! output is the same stable permutation whichever way the runs are cut. Where
//! most symbols share most times, a sweep over the runs at each time is cheapest (O(1) a chunk);
//! where cross-sections are sparse, a heap (O(log runs) a chunk): the merge starts sweeping and
//! moves to the heap when sweeps give fewer rows than a quarter of the runs.
//!
//! Memory: each run holds a small buffer of its next times, read ahead from the intermediate's
//! time column; the heap holds one entry a run. Nothing grows with the row count.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use spill::Timestamps;

use super::counts::TimeCounts;
use super::source::Source;
use super::window::RUN_STRETCH_BYTES;
use crate::error::{Error, Result};
use crate::input::time::Way;
/// Bytes of merge state per run besides its time buffer: its span, cursor and heap entry (176,
/// with slack), and the window's state for it (`merge_state_fits_run_bytes` checks the sizes).
pub const RUN_BYTES: u64 = 176 + RUN_STRETCH_BYTES;
/// The fewest times a run buffers.
pub const MIN_BUFFER_ROWS: usize = 16;
/// The most times a run buffers (32 KiB).
pub const MAX_BUFFER_ROWS: usize = 4096;
/// The least memory a run costs: its state and its smallest time buffer.
pub const RUN_MIN_BYTES: u64 = RUN_BYTES + 8 * MIN_BUFFER_ROWS as u64;

/// Rows read at a time while cutting runs (512 KiB of times).
const SCAN_ROWS: usize = 1 << 16;

/// A maximal stretch of one symbol's rows `[start, stop)` whose times only rise (never
/// decrease) or only fall (never increase).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// The symbol's code.
    pub symbol: u32,
    /// Whether its times fall (and some do): the merge reads it backwards, a group of equal
    /// times at a time, each group forwards.
    pub falling: bool,
    /// First row in the intermediate.
    pub start: u64,
    /// One past the last row.
    pub stop: u64,
}

/// Cuts every symbol's rows into runs (each as long as it can be, taken from the symbol's first
/// row on), in symbol then row order, counting the rows of each time into `counts` on the way.
/// More than `max_runs` runs is [`Error::OrderRuns`] (the merge would not fit its memory).
pub fn find_runs(
    src: &Source,
    max_runs: usize,
    budget: u64,
    counts: &mut TimeCounts,
) -> Result<Vec<Run>> {
    let symbols: Vec<(u64, u64)> = src
        .layout()
        .symbols()
        .iter()
        .map(|s| (s.start, s.stop))
        .collect();
    let mut runs = Vec::new();
    let mut buf = vec![0i64; SCAN_ROWS];
    let refuse = |runs: usize| Error::OrderRuns {
        runs,
        max: max_runs,
        budget,
    };
    for (code, &(start, stop)) in symbols.iter().enumerate() {
        let symbol = u32::try_from(code).map_err(|_| Error::Internal("symbol code".into()))?;
        let mut run_start = start;
        let mut way = Way::Flat;
        let mut prev: Option<i64> = None;
        let mut row = start;
        while row < stop {
            let n = (stop - row).min(SCAN_ROWS as u64) as usize;
            src.read_times(row, &mut buf[..n])?;
            counts.add(&buf[..n]);
            for (k, &t) in buf[..n].iter().enumerate() {
                if let Some(p) = prev {
                    match way.step(p, t) {
                        Some(w) => way = w,
                        None => {
                            let at = row + k as u64;
                            runs.push(Run {
                                symbol,
                                falling: way == Way::Falling,
                                start: run_start,
                                stop: at,
                            });
                            (run_start, way) = (at, Way::Flat);
                            if runs.len() >= max_runs {
                                return Err(refuse(runs.len() + 1));
                            }
                        }
                    }
                }
                prev = Some(t);
            }
            row += n as u64;
        }
        if stop > start {
            runs.push(Run {
                symbol,
                falling: way == Way::Falling,
                start: run_start,
                stop,
            });
        }
    }
    if runs.len() > max_runs {
        return Err(refuse(runs.len()));
    }
    Ok(runs)
}

/// Rows of one run at one time, contiguous in the intermediate: the merge's unit of output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Index of the run.
    pub run: u32,
    /// The rows' time.
    pub time: i64,
    /// First row in the intermediate.
    pub start: u64,
    /// Rows.
    pub rows: u64,
}

/// Where a falling run stands: its first row, and the group of equal times being taken.
#[derive(Clone, Copy)]
struct Falling {
    /// The run's first row.
    first: u64,
    /// The group's first row and time (the group ends at the cursor's `stop`).
    group: u64,
    time: i64,
}

/// A run's place in the merge. A rising run takes `[row, stop)` forwards, its times buffered
/// ahead. A falling run takes one group `[group, stop)` of equal time at a time, forwards; once
/// it is taken, the group before it (found by reading the times backwards, buffered behind) is
/// next. Taken to the end: `row == stop`.
struct Cursor {
    row: u64,
    stop: u64,
    falling: Option<Falling>,
    /// Times of rows `[buf_start, buf_start + buf.len())`.
    buf: Vec<i64>,
    buf_start: u64,
}

impl Cursor {
    fn new(run: &Run, src: &Source, rows: usize) -> Result<Cursor> {
        let mut c = Cursor {
            row: run.start,
            stop: run.stop,
            falling: None,
            buf: Vec::new(),
            buf_start: run.start,
        };
        if c.row < c.stop {
            if run.falling {
                c.buf_start = run.stop;
                c.falling = Some(Falling {
                    first: run.start,
                    group: run.stop,
                    time: 0,
                });
                c.group_before(src, rows)?;
            } else {
                c.refill(src, rows)?;
            }
        }
        Ok(c)
    }

    fn live(&self) -> bool {
        self.row < self.stop
    }

    fn head(&self) -> i64 {
        match self.falling {
            Some(f) => f.time,
            None => self.buf[(self.row - self.buf_start) as usize],
        }
    }

    fn refill(&mut self, src: &Source, rows: usize) -> Result<()> {
        let n = (self.stop - self.row).min(rows as u64) as usize;
        self.buf.resize(n, 0);
        self.buf_start = self.row;
        src.read_times(self.row, &mut self.buf)
    }

    /// A falling run's time at `row` (below every row read before), reading backwards.
    fn time_behind(&mut self, src: &Source, first: u64, row: u64, rows: usize) -> Result<i64> {
        if row < self.buf_start {
            let from = (row + 1).saturating_sub(rows as u64).max(first);
            self.buf.resize((row + 1 - from) as usize, 0);
            self.buf_start = from;
            src.read_times(from, &mut self.buf)?;
        }
        Ok(self.buf[(row - self.buf_start) as usize])
    }

    /// A falling run whose group starting at `group` is taken: the group before it becomes
    /// current (its rows `[start, old group)`), or the run is done.
    fn group_before(&mut self, src: &Source, rows: usize) -> Result<()> {
        let Some(mut f) = self.falling else {
            return Ok(());
        };
        if f.group == f.first {
            self.row = self.stop;
            return Ok(());
        }
        let end = f.group;
        let time = self.time_behind(src, f.first, end - 1, rows)?;
        let mut start = end - 1;
        while start > f.first && self.time_behind(src, f.first, start - 1, rows)? == time {
            start -= 1;
        }
        (f.group, f.time) = (start, time);
        self.falling = Some(f);
        (self.row, self.stop) = (start, end);
        Ok(())
    }
}

/// How the merge finds the next chunk. Both give the same order.
enum Mode {
    /// Visit the runs in index order at the current time: O(runs) a timestamp and O(1) a chunk,
    /// the cheapest when most runs have rows at most times (symbols on a shared grid).
    Sweep {
        /// The time being emitted.
        time: i64,
        /// The smallest head time above it seen so far in this sweep.
        next: Option<i64>,
        /// The next run to visit.
        pos: usize,
        /// Sweeps done and rows they gave, to tell a sparse universe.
        steps: u64,
        rows: u64,
    },
    /// A heap of (head time, run): O(log runs) a chunk, for sparse cross-sections.
    Heap(BinaryHeap<Reverse<(i64, u32)>>),
}

/// Sweeps after which the merge decides whether sweeping pays.
const SWEEPS_TO_DECIDE: u64 = 64;

/// The k-way merge over runs (see the module docs). Run indices follow (symbol code, row), so
/// ordering by (time, run index) is ordering by (time, symbol code, run).
pub struct Merge {
    cursors: Vec<Cursor>,
    mode: Mode,
    buffer_rows: usize,
}

impl Merge {
    /// A merge from the start of every run, each buffering `buffer_rows` times.
    pub fn new(runs: &[Run], src: &Source, buffer_rows: usize) -> Result<Merge> {
        let buffer_rows = buffer_rows.max(1);
        let mut cursors = Vec::with_capacity(runs.len());
        let mut first: Option<i64> = None;
        for run in runs {
            let c = Cursor::new(run, src, buffer_rows)?;
            if c.live() {
                first = Some(first.map_or(c.head(), |f| f.min(c.head())));
            }
            cursors.push(c);
        }
        let mode = match first {
            Some(time) => Mode::Sweep {
                time,
                next: None,
                pos: 0,
                steps: 0,
                rows: 0,
            },
            None => Mode::Heap(BinaryHeap::new()),
        };
        Ok(Merge {
            cursors,
            mode,
            buffer_rows,
        })
    }

    /// The runs merged.
    pub fn runs(&self) -> usize {
        self.cursors.len()
    }

    /// The next chunk in output order, of at most `max` rows (`max >= 1`); `None` at the end.
    pub fn next(&mut self, src: &Source, max: u64) -> Result<Option<Chunk>> {
        let k = self.cursors.len();
        loop {
            let Mode::Sweep {
                time,
                next,
                pos,
                steps,
                rows,
            } = &mut self.mode
            else {
                return self.next_from_heap(src, max);
            };
            while *pos < k {
                let c = &mut self.cursors[*pos];
                if c.live() {
                    let head = c.head();
                    if head == *time {
                        let chunk = take(c, *pos as u32, *time, max, src, self.buffer_rows)?;
                        *rows += chunk.rows;
                        // Rows left at this time (a full window, or the buffer's end): stay.
                        let stays = c.live() && c.head() == *time;
                        if !stays {
                            if c.live() {
                                *next = Some(next.map_or(c.head(), |n| n.min(c.head())));
                            }
                            *pos += 1;
                        }
                        return Ok(Some(chunk));
                    }
                    *next = Some(next.map_or(head, |n| n.min(head)));
                }
                *pos += 1;
            }
            *steps += 1;
            let Some(t) = next.take() else {
                return Ok(None);
            };
            (*time, *pos) = (t, 0);
            // A sweep that gives fewer rows than a quarter of the runs costs more than the heap.
            if *steps >= SWEEPS_TO_DECIDE && *rows * 4 < *steps * k as u64 {
                let heap = self
                    .cursors
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.live())
                    .map(|(i, c)| Reverse((c.head(), i as u32)))
                    .collect();
                self.mode = Mode::Heap(heap);
            }
        }
    }

    fn next_from_heap(&mut self, src: &Source, max: u64) -> Result<Option<Chunk>> {
        let Mode::Heap(heap) = &mut self.mode else {
            return Ok(None);
        };
        // The top entry is replaced in place (one sift down), not popped and pushed (two).
        let Some(mut top) = heap.peek_mut() else {
            return Ok(None);
        };
        let Reverse((time, run)) = *top;
        let c = &mut self.cursors[run as usize];
        // Rows of this run at `time` come next in the output: every other run's head is a larger
        // key, and this run's next rows at `time` share the top key.
        let chunk = take(c, run, time, max, src, self.buffer_rows)?;
        if c.live() {
            *top = Reverse((c.head(), run));
        } else {
            std::collections::binary_heap::PeekMut::pop(top);
        }
        Ok(Some(chunk))
    }
}

/// Takes the rows of `c` at `time`, at most `max`: a rising run's in its buffer (refilled when
/// they reach its end), a falling run's in its group (moving to the group before once the group
/// is taken).
fn take(
    c: &mut Cursor,
    run: u32,
    time: i64,
    max: u64,
    src: &Source,
    buffer_rows: usize,
) -> Result<Chunk> {
    let start = c.row;
    if c.falling.is_some() {
        let rows = (c.stop - c.row).min(max.max(1));
        c.row += rows;
        if c.row == c.stop {
            c.group_before(src, buffer_rows)?;
        }
        return Ok(Chunk {
            run,
            time,
            start,
            rows,
        });
    }
    let from = (c.row - c.buf_start) as usize;
    let rows = c.buf[from..]
        .iter()
        .take(max.max(1).min(usize::MAX as u64) as usize)
        .take_while(|&&t| t == time)
        .count() as u64;
    c.row += rows;
    if c.row < c.stop && c.row >= c.buf_start + c.buf.len() as u64 {
        c.refill(src, buffer_rows)?;
    }
    Ok(Chunk {
        run,
        time,
        start,
        rows,
    })
}

/// The timestamp index of the merged rows: one merge pass counting the rows of each distinct
/// time, streamed into [`Timestamps::from_counts`] (which keeps runs of steps and counts only).
pub fn count_timestamps(runs: &[Run], src: &Source, buffer_rows: usize) -> Result<Timestamps> {
    let mut merge = Merge::new(runs, src, buffer_rows)?;
    let mut failed: Option<Error> = None;
    let mut current: Option<(i64, u64)> = None;
    let counts = std::iter::from_fn(|| loop {
        match merge.next(src, u64::MAX) {
            Ok(Some(chunk)) => match &mut current {
                Some((t, n)) if *t == chunk.time => *n += chunk.rows,
                _ => {
                    if let Some(done) = current.replace((chunk.time, chunk.rows)) {
                        return Some(done);
                    }
                }
            },
            Ok(None) => return current.take(),
            Err(e) => {
                failed = Some(e);
                return None;
            }
        }
    });
    let index = Timestamps::from_counts(counts);
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(index?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run's state (span, cursor, heap entry, window) fits [`RUN_BYTES`].
    #[test]
    fn merge_state_fits_run_bytes() {
        let bytes = std::mem::size_of::<Run>()
            + std::mem::size_of::<Cursor>()
            + std::mem::size_of::<Reverse<(i64, u32)>>()
            + RUN_STRETCH_BYTES as usize;
        assert!(bytes as u64 <= RUN_BYTES, "{bytes}");
    }

    /// Runs are cut where the time turns back; equal times never cut.
    #[test]
    fn the_run_counter_cuts_where_time_turns_back() {
        let count = |ts: &[i64]| {
            let mut c = crate::input::time::RunCounter::default();
            ts.iter().for_each(|&t| c.see(t));
            c.runs()
        };
        assert_eq!(count(&[]), 0);
        assert_eq!(count(&[5, 5, 5]), 1);
        assert_eq!(count(&[9, 7, 7, 3, 1]), 1);
        assert_eq!(count(&[1, 2, 2, 3]), 1);
        assert_eq!(count(&[1, 2, 3, 2, 1]), 2);
        assert_eq!(count(&[3, 2, 5, 4, 7, 6]), 3);
        assert_eq!(count(&[2, 2, 1, 1, 2, 2]), 2);
    }

    /// Heap keys order by time, then run index (runs are numbered by symbol, then row).
    #[test]
    fn keys_order_by_time_then_run() {
        let mut heap = BinaryHeap::new();
        for k in [(5i64, 3u32), (5, 0), (4, 7), (5, 2)] {
            heap.push(Reverse(k));
        }
        let order: Vec<_> = std::iter::from_fn(|| heap.pop().map(|Reverse(k)| k)).collect();
        assert_eq!(order, [(4, 7), (5, 0), (5, 2), (5, 3)]);
    }
}
