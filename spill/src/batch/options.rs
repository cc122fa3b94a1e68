//! [`BatchOptions`]: the arguments of [`SpillFile::batches`](crate::SpillFile::batches), builder
//! style, with the exact semantics they select.

use std::ops::Range;

use super::state::BatchState;
#[cfg(doc)]
use crate::{Backing, Error, SpillFile};

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
/// **Epochs, ranks and workers** (SPEC.md "Batches", "Epochs, ranks and workers"): the
/// [`epoch`](Self::epoch) seeds the shuffle with `seed + epoch` (mod 2^64). The *global batches*
/// `0..n` of an epoch are exactly the batches above; the *partial* batch is the last one when
/// `total % batch_rows != 0` (never with whole timestamps). With `W` = `world_size`, `V` =
/// `num_workers`, `U = W x V` and a cursor `c` (0, or from [`resume`](Self::resume)), each rank
/// gets `K` local batches: `R = max(L - c, 0)` with `L = n - 1` when [`drop_last`](Self::drop_last)
/// and the last batch is partial, else `R = max(n - c, 0)`; `K = (R / U) x V` (rounded down) with
/// `drop_last`, `K = ceil(R / U) x V` with [`pad`](Self::pad), `K = R` with neither (allowed only
/// when `U == 1`; `drop_last` and `pad` exclude each other). Local batch `j` of rank `r` is global
/// batch `idx = c + j x W + r`; with `pad` an `idx >= n` reads global batch `(idx - n) mod n`.
/// Worker `w` of a rank yields its local batches `j = w, w + V, w + 2V, ...`, so every (rank,
/// worker) yields `K / V` batches. With `drop_last` the global batches `c + K x W <= g < n` are
/// dropped ([`Batches::dropped_rows`](super::Batches::dropped_rows),
/// [`Batches::padded_rows`](super::Batches::padded_rows)). Over all ranks and workers of an epoch
/// (from `c = 0`) every selected row appears exactly once, except the dropped rows (absent) and
/// the padded ones (repeated).
/// [`Batches::state`](super::Batches::state) saves the position as a [`BatchState`] that
/// [`resume`](Self::resume) continues from, at the same or another `world_size`.
///
/// Memory: one batch (`batch_rows x (columns + 1)` values) plus 8 bytes per shuffled block. With
/// [`drop_behind`](Self::drop_behind), the file pages the batches read are released from the
/// process once copied, a few batches at a time, so the file adds about 8 MiB to the resident set
/// (plus the 64 KiB windows one batch touches: `columns x batch_rows / block_rows x 64 KiB` for
/// small blocks), even on a file many times larger than RAM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOptions {
    pub(super) batch_rows: usize,
    pub(super) columns: Option<Vec<String>>,
    pub(super) ranges: Option<Vec<Range<u64>>>,
    pub(super) shuffle: Option<(u64, u64)>,
    pub(super) time: bool,
    pub(super) symbols: bool,
    pub(super) whole: bool,
    pub(super) drop_behind: bool,
    pub(super) epoch: Option<u64>,
    pub(super) rank: (u64, u64),
    pub(super) worker: (u64, u64),
    pub(super) drop_last: bool,
    pub(super) pad: bool,
    pub(super) resume: Option<BatchState>,
}

impl BatchOptions {
    /// Batches of `batch_rows` rows (at least 1) over every feature column of the whole file, in
    /// file order, without time or symbols, pages left to the kernel; epoch 0, one rank of one
    /// worker, from the start.
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
            epoch: None,
            rank: (0, 1),
            worker: (0, 1),
            drop_last: false,
            pad: false,
            resume: None,
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

    /// The epoch (default 0): the shuffle's seed becomes `seed + epoch` (mod 2^64), so every epoch
    /// reads the blocks in another order; epoch 0 is the plain `seed`. With
    /// [`resume`](Self::resume) the epoch comes from the state, and an epoch set here must equal it
    /// ([`Error::StateMismatch`]).
    pub fn epoch(mut self, epoch: u64) -> BatchOptions {
        self.epoch = Some(epoch);
        self
    }

    /// This process is rank `rank` of `world_size` (default 0 of 1, `rank < world_size`, else
    /// [`Error::BadPartition`]): it reads the global batches `c + j x world_size + rank`. With more
    /// than one rank or worker, [`drop_last`](Self::drop_last) or [`pad`](Self::pad) is required.
    pub fn rank(mut self, rank: u64, world_size: u64) -> BatchOptions {
        self.rank = (rank, world_size);
        self
    }

    /// This iterator is data-loading worker `worker` of `num_workers` within its rank (default 0
    /// of 1, `worker < num_workers`, else [`Error::BadPartition`]): it yields the rank's local
    /// batches `worker, worker + num_workers, ...`.
    pub fn worker(mut self, worker: u64, num_workers: u64) -> BatchOptions {
        self.worker = (worker, num_workers);
        self
    }

    /// Evens out the ranks and workers by dropping the global batches that do not fill a round
    /// of `world_size x num_workers` batches, the partial last batch among them (reported by
    /// [`Batches::dropped_rows`](super::Batches::dropped_rows)). Excludes [`pad`](Self::pad).
    pub fn drop_last(mut self) -> BatchOptions {
        self.drop_last = true;
        self
    }

    /// Evens out the ranks and workers by padding the last round of `world_size x num_workers`
    /// batches with batches from the start of the epoch's sequence (reported by
    /// [`Batches::padded_rows`](super::Batches::padded_rows)). Excludes
    /// [`drop_last`](Self::drop_last).
    pub fn pad(mut self) -> BatchOptions {
        self.pad = true;
        self
    }

    /// Resumes from a state saved by [`Batches::state`](super::Batches::state): the state must
    /// have been saved for the same file, ranges, `batch_rows`, shuffle (`block_rows`, `seed`) and
    /// whole-timestamps choice (else [`Error::StateOtherFile`] or [`Error::StateMismatch`]); the epoch comes from it. A
    /// rank's state resumes at any `world_size` and `num_workers`; a worker's (saved with
    /// `num_workers > 1`) only in the same worker of the same rank at the same ones
    /// ([`Error::WorkerStateMoved`]).
    pub fn resume(mut self, state: BatchState) -> BatchOptions {
        self.resume = Some(state);
        self
    }
}
