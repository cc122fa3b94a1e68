//! Training batches for Rust consumers (no arrow): [`SpillFile::batches`] copies the chosen rows of
//! the chosen columns into row-major buffers, a batch at a time, in a documented (and optionally
//! shuffled) order that the numpy reader reproduces exactly, whole cross-sections at a time on
//! request (`whole.rs`); `time.rs` finds the rows of a time window and the group sizes.
//!
//! The semantics are spelled out on [`BatchOptions`] and in SPEC.md ("Batches").

use std::ops::Range;

mod release;
mod time;
mod whole;

use crate::error::{short, Error, Result};
use crate::format::Role;
use crate::read::{Backing, SpillFile};
use crate::stats::Element;
use release::Release;

/// How [`SpillFile::batches`] cuts a file into training batches (builder style).
///
/// The row sequence, and so every batch, is a pure function of these options and the file, the
/// same in the Rust and the numpy readers:
///
/// 1. **Selection**: the rows of [`ranges`](Self::ranges) (half-open `[start, stop)` row ranges,
///    each within `[0, nrows)`, in the given order; overlaps repeat rows), concatenated. Default:
///    `[0, nrows)`.
/// 2. **Shuffle** ([`shuffle_blocks`](Self::shuffle_blocks)`(block_rows, seed)`): that sequence is
///    cut into consecutive blocks of `block_rows` rows (the last may be shorter), and the blocks are
///    permuted by Fisher-Yates driven by SplitMix64 seeded with `seed`:
///    ```text
///    state = seed
///    next(): state = state + 0x9E3779B97F4A7C15 (mod 2^64); z = state
///            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 (mod 2^64)
///            z = (z ^ (z >> 27)) * 0x94D049BB133111EB (mod 2^64)
///            return z ^ (z >> 31)
///    for i from nblocks - 1 down to 1: j = next() % (i + 1); swap blocks i and j
///    ```
///    Rows inside a block keep their order. Without a shuffle the sequence is left as it is.
/// 3. **Batches**: consecutive runs of `batch_rows` rows of the (permuted) sequence; the last may
///    be shorter. Batches cross symbol, range and block boundaries. So the permuted sequence does
///    not depend on `batch_rows`.
///
/// With [`whole_timestamps`](Self::whole_timestamps) (time-major files), batches hold whole
/// cross-sections: every non-empty range must start and stop on a timestamp boundary, and the
/// sequence is then made of *units*, each one timestamp's rows within one range. Units are packed
/// greedily in order into groups of at most N rows (a group takes the next unit while it stays
/// within N; a unit of more than N rows is a group alone): blocks with N = `block_rows`, permuted
/// as in 2, then batches with N = `batch_rows` from the permuted sequence. Without a shuffle the
/// blocks step is skipped.
///
/// Each batch holds, for its rows in sequence order: `x`, the [`columns`](Self::columns) (default:
/// every `feature` column, in stored order) row-major; `y`, the first `target` column (none if the
/// file has none); optionally the time column ([`with_time`](Self::with_time)) and the symbol
/// codes ([`with_symbols`](Self::with_symbols): from the symbol table's ranges in a symbol-major
/// file, from the `symbol` column in a time-major one); and the source row ranges it covers.
///
/// Memory: one batch (`batch_rows x (columns + 1)` values) plus 8 bytes per shuffled block. With
/// [`drop_behind`](Self::drop_behind), the file pages the batches read are released from the
/// process once copied, a few batches at a time, so the file adds about 8 MiB to the resident set
/// (plus the 64 KiB windows one batch touches: `columns x batch_rows / block_rows x 64 KiB` for
/// small blocks), even on a file many times larger than RAM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOptions {
    batch_rows: usize,
    columns: Option<Vec<String>>,
    ranges: Option<Vec<Range<u64>>>,
    shuffle: Option<(u64, u64)>,
    time: bool,
    symbols: bool,
    whole: bool,
    drop_behind: bool,
}

impl BatchOptions {
    /// Batches of `batch_rows` rows (at least 1) over every feature column of the whole file, in
    /// file order, without time or symbols, pages left to the kernel.
    pub fn new(batch_rows: usize) -> BatchOptions {
        BatchOptions {
            batch_rows,
            columns: None,
            ranges: None,
            shuffle: None,
            time: false,
            symbols: false,
            whole: false,
            drop_behind: false,
        }
    }

    /// The columns of `x`, by name, in this order (each of the batch's element type).
    pub fn columns<I, S>(mut self, names: I) -> BatchOptions
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.columns = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// The rows to read: these half-open row ranges, concatenated in this order.
    pub fn ranges(mut self, ranges: impl IntoIterator<Item = Range<u64>>) -> BatchOptions {
        self.ranges = Some(ranges.into_iter().collect());
        self
    }

    /// Permutes blocks of `block_rows` rows (at least 1) of the selected sequence with `seed`
    /// (see the type's documentation for the exact algorithm).
    pub fn shuffle_blocks(mut self, block_rows: u64, seed: u64) -> BatchOptions {
        self.shuffle = Some((block_rows, seed));
        self
    }

    /// Adds the time column (int64 UTC nanoseconds) to each batch.
    pub fn with_time(mut self) -> BatchOptions {
        self.time = true;
        self
    }

    /// Adds each row's symbol code (its index in the symbol table) to each batch.
    pub fn with_symbols(mut self) -> BatchOptions {
        self.symbols = true;
        self
    }

    /// Batches of whole cross-sections (time-major files only, else [`Error::NotTimeMajor`]):
    /// every batch ends on a timestamp boundary, with at most `batch_rows` rows unless it is one
    /// timestamp of more; a shuffle permutes blocks of whole cross-sections of at most
    /// `block_rows` rows (or one larger one). The ranges must start and stop on timestamp
    /// boundaries ([`Error::NotOnTimestampBoundary`]; [`SpillFile::time_range`] gives such
    /// ranges). Memory: 8 bytes per cross-section of the selection while planning, then 8 bytes
    /// per block and per batch.
    pub fn whole_timestamps(mut self) -> BatchOptions {
        self.whole = true;
        self
    }

    /// Whether to release the file pages the batches read once they are copied
    /// (`madvise(DONTNEED)` on a memory map, through [`Backing::done_with`]): widened to the
    /// kernel's 64 KiB fault-around windows, merged per column, released every 8 MiB, the rest
    /// when the iterator is dropped. Default `false`.
    ///
    /// Measured on a 2 GiB file of 100 f32 columns, batches of 4096 rows, pages cached: the
    /// iterator copies 2.9 GB/s without, 1.9-2.4 GB/s with blocks of 65536 rows (peak RSS 2 GiB
    /// against 20 MiB), 1.1 GB/s with blocks of 4096. Blocks much smaller than a window (100
    /// rows) make every release drop pages other blocks read later: 50 MB/s; use large blocks
    /// with it.
    pub fn drop_behind(mut self, on: bool) -> BatchOptions {
        self.drop_behind = on;
        self
    }
}

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

/// The iterator of [`SpillFile::batches`]: yields [`Batch`]es until the selection is used up.
pub struct Batches<'a, D, T> {
    file: &'a SpillFile<D>,
    x: Vec<Source<'a, T>>,
    y: Option<Source<'a, T>>,
    time: Option<Source<'a, i64>>,
    symbols: Codes<'a>,
    /// With drop-behind: the pages read, waiting to be released.
    release: Option<Release<'a>>,
    batch_rows: u64,
    /// Selected ranges and where each starts in the sequence (`starts[i]`; `starts[n]` = total).
    ranges: Vec<Range<u64>>,
    starts: Vec<u64>,
    block_rows: u64,
    /// Whole cross-sections: the blocks' bounds in sequence positions (`None`: fixed blocks of
    /// `block_rows`), and the size of every batch with the next one's index.
    bounds: Option<Vec<u64>>,
    sizes: Option<Vec<u64>>,
    next_size: usize,
    /// Blocks in the order they are read.
    order: Vec<u64>,
    /// Next block (index into `order`) and rows of it already read.
    next_block: usize,
    in_block: u64,
    remaining: u64,
}

impl<D, T> std::fmt::Debug for Batches<'_, D, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batches")
            .field("columns", &self.x.len())
            .field("batch_rows", &self.batch_rows)
            .field("block_rows", &self.block_rows)
            .field("blocks", &self.order.len())
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

/// SplitMix64, the generator of the block shuffle (SPEC.md "Batches").
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The order in which `nblocks` blocks are read after a shuffle with `seed`: Fisher-Yates driven by
/// SplitMix64, exactly as SPEC.md ("Batches") describes.
pub fn block_order(nblocks: u64, seed: u64) -> Vec<u64> {
    let mut order: Vec<u64> = (0..nblocks).collect();
    let mut rng = SplitMix64(seed);
    for i in (1..order.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// Rows copied per tile of the row-major transpose: a tile of every column stays in L1.
const TILE_ROWS: usize = 64;

impl<D: Backing> SpillFile<D> {
    /// Training batches of element type `T` (see [`BatchOptions`] for the exact semantics).
    /// Checks everything up front: the columns exist and hold `T` (the time column `i64`), ranges
    /// lie within the file, `batch_rows` and `block_rows` are at least 1.
    pub fn batches<T: Element>(&self, opts: BatchOptions) -> Result<Batches<'_, D, T>> {
        if opts.batch_rows == 0 {
            return Err(Error::BadBatchOptions("batch_rows must be at least 1"));
        }
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
        let mut starts = Vec::with_capacity(ranges.len() + 1);
        let mut total = 0u64;
        for r in &ranges {
            self.check_range(r)?;
            starts.push(total);
            total = total
                .checked_add(r.end - r.start)
                .ok_or(Error::BadBatchOptions(
                    "the ranges hold more than 2^64 rows",
                ))?;
        }
        starts.push(total);
        if matches!(opts.shuffle, Some((0, _))) {
            return Err(Error::BadBatchOptions("block_rows must be at least 1"));
        }
        let (block_rows, order, bounds, sizes) = match (opts.whole, opts.shuffle) {
            (true, shuffle) => {
                let ts = self.timestamps().ok_or(Error::NotTimeMajor {
                    what: "whole-timestamp batches",
                })?;
                let units = whole::units(ts, &ranges)?;
                let plan = whole::plan(&units, opts.batch_rows as u64, shuffle);
                (total.max(1), plan.order, plan.bounds, Some(plan.sizes))
            }
            (false, Some((block_rows, seed))) => (
                block_rows,
                block_order(total.div_ceil(block_rows), seed),
                None,
                None,
            ),
            // Unshuffled: the whole sequence is one block.
            (false, None) => (
                total.max(1),
                if total > 0 { vec![0] } else { vec![] },
                None,
                None,
            ),
        };
        Ok(Batches {
            file: self,
            x,
            y,
            time,
            symbols,
            release: opts
                .drop_behind
                .then(|| Release::new(self.data(), idx.len() + 3)),
            batch_rows: opts.batch_rows as u64,
            ranges,
            starts,
            block_rows,
            bounds,
            sizes,
            next_size: 0,
            order,
            next_block: 0,
            in_block: 0,
            remaining: total,
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
    /// Rows not yet returned.
    pub fn remaining_rows(&self) -> u64 {
        self.remaining
    }

    /// Fills `batch` with the next batch, reusing its buffers; `false` (and `batch` emptied) when
    /// the selection is used up.
    pub fn next_into(&mut self, batch: &mut Batch<T>) -> bool {
        batch.rows.clear();
        let size = match &self.sizes {
            Some(sizes) => sizes.get(self.next_size).copied().unwrap_or(0),
            None => self.batch_rows,
        };
        self.next_size += 1;
        let mut need = size;
        while need > 0 && self.next_block < self.order.len() {
            let Range { start, end } = self.block(self.order[self.next_block]);
            let from = start + self.in_block;
            let take = need.min(end - from);
            self.push_runs(from..from + take, &mut batch.rows);
            need -= take;
            self.in_block += take;
            if from + take == end {
                self.next_block += 1;
                self.in_block = 0;
            }
        }
        let n = size - need;
        self.remaining -= n;
        self.copy(batch, n as usize);
        self.release(&batch.rows);
        n > 0
    }

    /// Sequence positions of block `b`.
    fn block(&self, b: u64) -> Range<u64> {
        match &self.bounds {
            Some(bounds) => bounds[b as usize]..bounds[b as usize + 1],
            None => {
                let start = b * self.block_rows;
                start..(start + self.block_rows).min(self.starts[self.ranges.len()])
            }
        }
    }

    /// Appends the source rows of sequence positions `seq` to `runs`, merging adjacent runs.
    fn push_runs(&self, seq: Range<u64>, runs: &mut Vec<Range<u64>>) {
        let mut p = seq.start;
        // The last range starting at or before p: it holds p (an empty range followed by others
        // starts where they do, so it is never the last one at or before p < total).
        let mut i = self.starts.partition_point(|&s| s <= p) - 1;
        while p < seq.end {
            let r = &self.ranges[i];
            let off = p - self.starts[i];
            let len = r.end - r.start;
            if off < len {
                let n = (len - off).min(seq.end - p);
                let run = r.start + off..r.start + off + n;
                match runs.last_mut() {
                    Some(last) if last.end == run.start => last.end = run.end,
                    _ => runs.push(run),
                }
                p += n;
            }
            i += 1;
        }
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

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.sizes {
            Some(sizes) => sizes.len().saturating_sub(self.next_size),
            None => usize::try_from(self.remaining.div_ceil(self.batch_rows)).unwrap_or(usize::MAX),
        };
        (n, Some(n))
    }
}

impl<D: Backing, T: Element> ExactSizeIterator for Batches<'_, D, T> {}

impl<D: Backing, T: Element> std::iter::FusedIterator for Batches<'_, D, T> {}
