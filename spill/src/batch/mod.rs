//! Training batches for Rust consumers (no arrow): [`SpillFile::batches`] copies the chosen rows of
//! the chosen columns into row-major buffers, a batch at a time, in a documented (and optionally
//! shuffled) order that the numpy reader reproduces exactly. The options are in `options.rs`, the
//! row sequence and its global batches in `seq.rs` (whole cross-sections: `whole.rs`), which of
//! them a rank and worker yields in `deal.rs`, the resumable state in `state.rs`; `time.rs` finds
//! the rows of a time window and the group sizes.
//!
//! The semantics are spelled out on [`BatchOptions`] and in SPEC.md ("Batches").

use std::ops::Range;

mod deal;
mod options;
mod release;
mod seq;
mod state;
mod time;
mod whole;

use crate::error::{short, Error, Result};
use crate::format::Role;
use crate::read::{Backing, SpillFile};
use crate::stats::Element;
use deal::{Deal, Evenness, Partition};
pub use options::BatchOptions;
use release::Release;
pub use seq::block_order;
use seq::{Sequence, Walk};
pub use state::{batches_fingerprint, BatchState};

/// One training batch: its rows in sequence order, copied out of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch<T> {
    /// The chosen columns, row-major (C-contiguous): `nrows() x ncols`, element `(r, c)` at
    /// `x[r * ncols + c]`.
    pub x: Vec<T>,
    /// Columns of `x`.
    pub ncols: usize,
    /// The target column's values, or `None` when the file has no target column.
    pub y: Option<Vec<T>>,
    /// The time column's values (int64 UTC nanoseconds), when asked for.
    pub time: Option<Vec<i64>>,
    /// Each row's symbol code, when asked for.
    pub symbols: Option<Vec<u32>>,
    /// The source rows, as ranges in batch order (adjacent ranges merged).
    pub rows: Vec<Range<u64>>,
}

impl<T> Default for Batch<T> {
    fn default() -> Batch<T> {
        Batch {
            x: Vec::new(),
            ncols: 0,
            y: None,
            time: None,
            symbols: None,
            rows: Vec::new(),
        }
    }
}

impl<T> Batch<T> {
    /// Rows in the batch.
    pub fn nrows(&self) -> usize {
        self.rows.iter().map(|r| (r.end - r.start) as usize).sum()
    }

    /// Row `r` of `x` (panics if out of range, like indexing).
    pub fn row(&self, r: usize) -> &[T] {
        &self.x[r * self.ncols..(r + 1) * self.ncols]
    }

    /// The source row of each batch row, in order.
    pub fn positions(&self) -> impl Iterator<Item = u64> + '_ {
        self.rows.iter().flat_map(|r| r.clone())
    }
}

/// A column read into batches: its values and where its bytes lie in the file.
struct Source<'a, V> {
    values: &'a [V],
    offset: u64,
}

impl<V: Element> Source<'_, V> {
    /// The file bytes of rows `rows`.
    fn bytes(&self, rows: &Range<u64>) -> Range<u64> {
        let size = V::DTYPE.size();
        self.offset + rows.start * size..self.offset + rows.end * size
    }
}

/// Where a batch's symbol codes come from.
enum Codes<'a> {
    /// Not asked for.
    None,
    /// The symbol table's row ranges (symbol-major files).
    Ranges,
    /// The `symbol` column (time-major files).
    Column(Source<'a, u32>),
}

/// The iterator of [`SpillFile::batches`]: yields the [`Batch`]es of this rank and worker until
/// its share of the epoch is used up; [`state`](Self::state) says where it is.
pub struct Batches<'a, D, T> {
    file: &'a SpillFile<D>,
    x: Vec<Source<'a, T>>,
    y: Option<Source<'a, T>>,
    time: Option<Source<'a, i64>>,
    symbols: Codes<'a>,
    /// With drop-behind: the pages read, waiting to be released.
    release: Option<Release<'a>>,
    /// The epoch's row sequence and global batches, and where the last batch ended in it.
    seq: Sequence,
    walk: Walk,
    /// The global batches this rank and worker yields.
    deal: Deal,
    /// This call's state, but for the position ([`Batches::state`] fills it in).
    state: BatchState,
    /// Rows still to yield.
    remaining: u64,
}

impl<D, T> std::fmt::Debug for Batches<'_, D, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batches")
            .field("columns", &self.x.len())
            .field("state", &self.state)
            .field("deal", &self.deal)
            .field("remaining_rows", &self.remaining)
            .finish_non_exhaustive()
    }
}

/// Rows copied per tile of the row-major transpose: a tile of every column stays in L1.
const TILE_ROWS: usize = 64;

impl<D: Backing> SpillFile<D> {
    /// Training batches of element type `T` (see [`BatchOptions`] for the exact semantics).
    /// Checks everything up front: the columns exist and hold `T` (the time column `i64`), ranges
    /// lie within the file, `batch_rows` and `block_rows` are at least 1, the rank and worker are
    /// below their counts, `drop_last` or `pad` (not both) when there is more than one rank or
    /// worker, and a state to resume from belongs to this file, selection and options.
    pub fn batches<T: Element>(&self, opts: BatchOptions) -> Result<Batches<'_, D, T>> {
        if opts.batch_rows == 0 {
            return Err(Error::BadBatchOptions("batch_rows must be at least 1"));
        }
        let even = match (opts.drop_last, opts.pad) {
            (true, true) => {
                return Err(Error::BadBatchOptions(
                    "drop_last and pad exclude each other: choose one",
                ))
            }
            (true, false) => Evenness::DropLast,
            (false, true) => Evenness::Pad,
            (false, false) => Evenness::Neither,
        };
        let part = Partition {
            rank: opts.rank.0,
            world_size: opts.rank.1,
            worker: opts.worker.0,
            num_workers: opts.worker.1,
        };
        part.check(even)?;
        let idx = match &opts.columns {
            None => self.columns_with_role(Role::Feature),
            Some(names) => names
                .iter()
                .map(|n| {
                    self.column_index(n)
                        .ok_or_else(|| Error::NoSuchColumn { name: short(n) })
                })
                .collect::<Result<_>>()?,
        };
        let x = idx.iter().map(|&i| self.source(i)).collect::<Result<_>>()?;
        let y = match self.columns_with_role(Role::Target).first() {
            Some(&i) => Some(self.source(i)?),
            None => None,
        };
        let time = match opts.time {
            true => Some(self.source(self.time_index()?)?),
            false => None,
        };
        let symbols = match (opts.symbols, self.timestamps()) {
            (false, _) => Codes::None,
            (true, None) => Codes::Ranges,
            (true, Some(_)) => match self.columns_with_role(Role::Symbol).first() {
                Some(&i) => Codes::Column(self.source(i)?),
                None => return Err(Error::NoSymbolColumn),
            },
        };
        let nrows = self.nrows();
        let ranges = opts
            .ranges
            .unwrap_or_else(|| std::iter::once(0..nrows).collect());
        let starts = seq::starts(self, &ranges)?;
        if matches!(opts.shuffle, Some((0, _))) {
            return Err(Error::BadBatchOptions("block_rows must be at least 1"));
        }
        let mut call = BatchState {
            spillway_batches: 1,
            fingerprint: batches_fingerprint(self.file_len(), self.metadata_checksum(), &ranges),
            rows: starts[ranges.len()],
            batch_rows: opts.batch_rows as u64,
            shuffle: opts.shuffle.map(|_| "blocks".to_string()),
            block_rows: opts.shuffle.map(|(block_rows, _)| block_rows),
            seed: opts.shuffle.map_or(0, |(_, seed)| seed),
            epoch: 0,
            whole_timestamps: opts.whole,
            batches: 0,
            cursor: 0,
            rank: part.rank,
            world_size: part.world_size,
            worker: part.worker,
            num_workers: part.num_workers,
            worker_batches: 0,
        };
        call.epoch = match &opts.resume {
            Some(saved) => saved.check_options(&call, opts.epoch)?,
            None => opts.epoch.unwrap_or(0),
        };
        let shuffle = opts
            .shuffle
            .map(|(block_rows, seed)| (block_rows, seed.wrapping_add(call.epoch)));
        let seq = Sequence::plan(
            self,
            ranges,
            starts,
            opts.batch_rows as u64,
            shuffle,
            opts.whole,
        )?;
        call.batches = seq.batches();
        let deal_from = |cursor| Deal::new(seq.batches(), seq.partial(), cursor, part, even);
        let (cursor, skip) = match &opts.resume {
            Some(saved) => saved.check_position(&call, |c| deal_from(c).per_worker())?,
            None => (0, 0),
        };
        let mut deal = deal_from(cursor);
        deal.skip(skip);
        Ok(Batches {
            file: self,
            x,
            y,
            time,
            symbols,
            release: opts
                .drop_behind
                .then(|| Release::new(self.data(), idx.len() + 3)),
            remaining: seq.rows_to_yield(&deal),
            seq,
            walk: Walk::default(),
            deal,
            state: call,
        })
    }

    fn source<V: Element>(&self, i: usize) -> Result<Source<'_, V>> {
        Ok(Source {
            values: self.column_at(i)?,
            offset: self.columns()[i].offset,
        })
    }
}

impl<D: Backing, T: Element> Batches<'_, D, T> {
    /// Rows this iterator has still to yield (of this rank and worker, padding included).
    pub fn remaining_rows(&self) -> u64 {
        self.remaining
    }

    /// Where the iterator is, to save beside a checkpoint and [`BatchOptions::resume`] from: a
    /// rank (one worker) that has yielded `k` batches from cursor `c` saves `cursor = c + k x
    /// world_size`; a worker (of more than one) saves the cursor it started from and its batches
    /// yielded in `worker_batches`; once nothing is left to yield, `cursor = batches` and
    /// `worker_batches = 0`.
    pub fn state(&self) -> BatchState {
        let (cursor, worker_batches) = self.deal.position();
        BatchState {
            cursor,
            worker_batches,
            ..self.state.clone()
        }
    }

    /// The source rows of the global batches `drop_last` drops (from the cursor this iterator
    /// started at: every global batch `c + K x world_size <= g < n`, the partial last one among
    /// them), in global batch order, adjacent runs merged; the same on every rank and worker.
    pub fn dropped_rows(&self) -> Vec<Range<u64>> {
        self.rows_of_globals(self.deal.dropped())
    }

    /// The source rows read by the padded batches (global index `idx >= n`, which reads global
    /// batch `(idx - n) mod n`), in global index order, adjacent runs merged; the same on every
    /// rank and worker.
    pub fn padded_rows(&self) -> Vec<Range<u64>> {
        self.rows_of_globals(self.deal.padded())
    }

    fn rows_of_globals(&self, globals: impl Iterator<Item = u64>) -> Vec<Range<u64>> {
        let (mut walk, mut runs) = (Walk::default(), Vec::new());
        for g in globals {
            self.seq.rows_of(&mut walk, self.seq.global(g), &mut runs);
        }
        runs
    }

    /// Fills `batch` with the next batch, reusing its buffers; `false` (and `batch` emptied) when
    /// this rank and worker's share of the epoch is used up.
    pub fn next_into(&mut self, batch: &mut Batch<T>) -> bool {
        batch.rows.clear();
        let dealt = self.deal.next_global();
        let n = match dealt {
            Some(g) => {
                let seq = self.seq.global(g);
                self.seq
                    .rows_of(&mut self.walk, seq.clone(), &mut batch.rows);
                seq.end - seq.start
            }
            None => 0,
        };
        self.remaining = self.remaining.saturating_sub(n);
        self.copy(batch, n as usize);
        self.release(&batch.rows);
        dealt.is_some()
    }

    /// Copies the rows of `batch.rows` (`n` in all) into its buffers.
    fn copy(&self, batch: &mut Batch<T>, n: usize) {
        let ncols = self.x.len();
        batch.ncols = ncols;
        batch.x.clear();
        batch.x.resize(n * ncols, bytemuck::Zeroable::zeroed());
        let mut out = 0;
        for run in &batch.rows {
            // Validated when the options were checked: runs lie within [0, nrows).
            let (mut t, end) = (run.start as usize, run.end as usize);
            while t < end {
                let t1 = (t + TILE_ROWS).min(end);
                let tile = &mut batch.x[out * ncols..(out + t1 - t) * ncols];
                for (j, col) in self.x.iter().enumerate() {
                    for (row, &v) in tile.chunks_exact_mut(ncols).zip(&col.values[t..t1]) {
                        row[j] = v;
                    }
                }
                out += t1 - t;
                t = t1;
            }
        }
        fn gather<V: Copy>(dst: &mut Option<Vec<V>>, src: &[V], runs: &[Range<u64>], n: usize) {
            let v = dst.get_or_insert_with(Vec::new);
            v.clear();
            v.reserve(n);
            for r in runs {
                v.extend_from_slice(&src[r.start as usize..r.end as usize]);
            }
        }
        match &self.y {
            Some(y) => gather(&mut batch.y, y.values, &batch.rows, n),
            None => batch.y = None,
        }
        match &self.time {
            Some(t) => gather(&mut batch.time, t.values, &batch.rows, n),
            None => batch.time = None,
        }
        if let Codes::Column(c) = &self.symbols {
            gather(&mut batch.symbols, c.values, &batch.rows, n);
        } else if let Codes::Ranges = self.symbols {
            let codes = batch.symbols.get_or_insert_with(Vec::new);
            codes.clear();
            codes.reserve(n);
            let symbols = self.file.symbols();
            for r in &batch.rows {
                // The first symbol stopping after a row holds it (ranges tile [0, nrows)).
                let mut code = symbols.partition_point(|s| s.stop <= r.start);
                let mut row = r.start;
                while row < r.end {
                    let stop = symbols[code].stop.min(r.end);
                    codes.extend(std::iter::repeat_n(code as u32, (stop - row) as usize));
                    row = stop;
                    code += 1;
                }
            }
        } else {
            batch.symbols = None;
        }
    }

    /// With drop-behind, queues every column's bytes of `runs` for release, and releases them
    /// once enough are queued (the rest goes when the iterator is dropped).
    fn release(&mut self, runs: &[Range<u64>]) {
        let Some(rel) = &mut self.release else {
            return;
        };
        let ncols = self.x.len();
        for r in runs {
            for (k, c) in self.x.iter().enumerate() {
                rel.add(k, c.bytes(r));
            }
            if let Some(y) = &self.y {
                rel.add(ncols, y.bytes(r));
            }
            if let Some(t) = &self.time {
                rel.add(ncols + 1, t.bytes(r));
            }
            if let Codes::Column(c) = &self.symbols {
                rel.add(ncols + 2, c.bytes(r));
            }
        }
        if rel.full() {
            rel.flush(false);
        }
    }
}

impl<D: Backing, T: Element> Iterator for Batches<'_, D, T> {
    type Item = Batch<T>;

    fn next(&mut self) -> Option<Batch<T>> {
        let mut batch = Batch::default();
        self.next_into(&mut batch).then_some(batch)
    }

    /// Exactly the batches this rank and worker has still to yield.
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.deal.remaining()).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

impl<D: Backing, T: Element> ExactSizeIterator for Batches<'_, D, T> {}

impl<D: Backing, T: Element> std::iter::FusedIterator for Batches<'_, D, T> {}
