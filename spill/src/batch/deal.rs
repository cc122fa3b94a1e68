//! Dealing an epoch's global batches to ranks and workers (SPEC.md "Batches", "Epochs, ranks and
//! workers"): which global batches one (rank, worker) yields, in which order, and which batches
//! the evenness rule drops or repeats. Pure index arithmetic: no rows, no file.

use crate::error::{Error, Result};

/// How the ranks and workers are evened out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Evenness {
    /// Neither: only one rank of one worker.
    Neither,
    /// Drop the global batches that do not fill a round (and the partial last one).
    DropLast,
    /// Repeat batches from the start of the epoch to fill the last round.
    Pad,
}

/// The partition of an epoch's batches: `W` ranks of `V` workers each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Partition {
    pub(super) rank: u64,
    pub(super) world_size: u64,
    pub(super) worker: u64,
    pub(super) num_workers: u64,
}

impl Partition {
    /// Checks the indices and counts and the evenness rule; returns `U = W x V`.
    pub(super) fn check(&self, even: Evenness) -> Result<u64> {
        if self.world_size == 0 {
            return Err(Error::BadBatchOptions("world_size must be at least 1"));
        }
        if self.num_workers == 0 {
            return Err(Error::BadBatchOptions("num_workers must be at least 1"));
        }
        for (what, index, count_name, count) in [
            ("rank", self.rank, "world_size", self.world_size),
            ("worker", self.worker, "num_workers", self.num_workers),
        ] {
            if index >= count {
                return Err(Error::BadPartition {
                    what,
                    index,
                    count_name,
                    count,
                });
            }
        }
        let units = self
            .world_size
            .checked_mul(self.num_workers)
            .ok_or(Error::BadBatchOptions(
                "world_size x num_workers is more than 2^64",
            ))?;
        if units > 1 && even == Evenness::Neither {
            return Err(Error::BadBatchOptions(
                "world_size x num_workers > 1: call drop_last() or pad() so every rank and \
                 worker gets the same number of batches",
            ));
        }
        Ok(units)
    }
}

/// The global batches one (rank, worker) yields from cursor `c`: local batches
/// `j = worker + i x V` for `i` in `0..per_worker`, each global index `c + j x W + rank`
/// (wrapped to `(idx - n) mod n` past the end when padding).
#[derive(Debug, Clone)]
pub(super) struct Deal {
    /// Global batches of the epoch.
    n: u64,
    /// The cursor the iterator started from.
    cursor: u64,
    part: Partition,
    even: Evenness,
    /// Batches this worker yields from `cursor` (`K / V`), and how many of them are done
    /// (yielded, or skipped on resuming a worker's state).
    per_worker: u64,
    done: u64,
}

impl Deal {
    /// Deals the `n` global batches from `cursor` (at most `n`); `partial`: the last global batch
    /// is partial (fixed-size batches only). `part` must have passed [`Partition::check`].
    pub(super) fn new(n: u64, partial: bool, cursor: u64, part: Partition, even: Evenness) -> Deal {
        let units = u128::from(part.world_size) * u128::from(part.num_workers);
        let usable = match (even, partial) {
            (Evenness::DropLast, true) => n - 1,
            _ => n,
        };
        let rest = u128::from(usable.saturating_sub(cursor));
        let per_worker = match even {
            Evenness::DropLast => rest / units,
            Evenness::Pad => rest.div_ceil(units),
            Evenness::Neither => rest,
        };
        Deal {
            n,
            cursor,
            part,
            even,
            // At most `rest`, itself at most n.
            per_worker: u64::try_from(per_worker).expect("per_worker <= n"),
            done: 0,
        }
    }

    /// Batches this worker yields in all from the cursor.
    pub(super) fn per_worker(&self) -> u64 {
        self.per_worker
    }

    /// Batches still to yield.
    pub(super) fn remaining(&self) -> u64 {
        self.per_worker - self.done
    }

    /// Marks the first `k` batches done (resuming a worker's state; `k <= per_worker`).
    pub(super) fn skip(&mut self, k: u64) {
        self.done = k.min(self.per_worker);
    }

    /// The global index (`idx`, before wrapping) of this worker's `i`-th batch.
    fn index(&self, i: u64) -> u128 {
        let (w, v) = (
            u128::from(self.part.world_size),
            u128::from(self.part.num_workers),
        );
        let j = u128::from(self.part.worker) + u128::from(i) * v;
        u128::from(self.cursor) + j * w + u128::from(self.part.rank)
    }

    /// The global batch an index reads: itself, or `(idx - n) mod n` past the end (padding).
    fn wrap(&self, idx: u128) -> u64 {
        let n = u128::from(self.n);
        let g = if idx < n { idx } else { (idx - n) % n };
        // Below n.
        g as u64
    }

    /// The global batch of the next batch to yield, if any.
    pub(super) fn next_global(&mut self) -> Option<u64> {
        if self.done == self.per_worker {
            return None;
        }
        let g = self.wrap(self.index(self.done));
        self.done += 1;
        Some(g)
    }

    /// The global batches still to yield, in order.
    pub(super) fn remaining_globals(&self) -> impl Iterator<Item = u64> + '_ {
        (self.done..self.per_worker).map(|i| self.wrap(self.index(i)))
    }

    /// How many of the batches still to yield read global batch `g` (at most one regular one
    /// and, padding, at most one padded one: the padded indices span fewer than `U`).
    pub(super) fn remaining_reads_of(&self, g: u64) -> u64 {
        if self.done == self.per_worker {
            return 0;
        }
        let step = u128::from(self.part.world_size) * u128::from(self.part.num_workers);
        let (first, last) = (self.index(self.done), self.index(self.per_worker - 1));
        let g = u128::from(g);
        let regular = g >= first && g <= last && (g - first) % step == 0;
        let n = u128::from(self.n);
        let padded = last >= n && (last - n) % n == g;
        u64::from(regular) + u64::from(padded)
    }

    /// `c + K x W`: the first global index past the rank-dealt ones.
    fn end(&self) -> u128 {
        let units = u128::from(self.part.world_size) * u128::from(self.part.num_workers);
        u128::from(self.cursor) + u128::from(self.per_worker) * units
    }

    /// The global batches dropped by `drop_last` (from this cursor), in order.
    pub(super) fn dropped(&self) -> std::ops::Range<u64> {
        match self.even {
            // end <= n here: K x W <= R <= n - c.
            Evenness::DropLast => (self.end() as u64).min(self.n)..self.n,
            _ => self.n..self.n,
        }
    }

    /// The global batches the padded batches read, in global index order.
    pub(super) fn padded(&self) -> impl Iterator<Item = u64> + '_ {
        let from = u128::from(self.n);
        let to = match self.even {
            Evenness::Pad => self.end().max(from),
            _ => from,
        };
        (from..to).map(|idx| self.wrap(idx))
    }

    /// The state's (cursor, worker_batches): a rank's `c + k x W` (or `n` once done); a worker's
    /// `c` with its batches done (or `n`, 0 once done).
    pub(super) fn position(&self) -> (u64, u64) {
        if self.done == self.per_worker {
            (self.n, 0)
        } else if self.part.num_workers == 1 {
            // Below n while batches remain: c + k x W <= c + (K - 1) x W < c + R.
            (self.cursor + self.done * self.part.world_size, 0)
        } else {
            (self.cursor, self.done)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(rank: u64, world_size: u64, worker: u64, num_workers: u64) -> Partition {
        Partition {
            rank,
            world_size,
            worker,
            num_workers,
        }
    }

    fn all(mut d: Deal) -> Vec<u64> {
        std::iter::from_fn(|| d.next_global()).collect()
    }

    #[test]
    fn two_ranks_of_two_workers_over_ten_batches() {
        // n = 10, U = 4: drop_last keeps 8 (2 rounds), pad makes 12 (3 rounds).
        let d = |r, w, even| Deal::new(10, false, 0, part(r, 2, w, 2), even);
        assert_eq!(all(d(0, 0, Evenness::DropLast)), [0, 4]);
        assert_eq!(all(d(0, 1, Evenness::DropLast)), [2, 6]);
        assert_eq!(all(d(1, 0, Evenness::DropLast)), [1, 5]);
        assert_eq!(all(d(1, 1, Evenness::DropLast)), [3, 7]);
        assert_eq!(d(0, 0, Evenness::DropLast).dropped(), 8..10);
        assert_eq!(all(d(0, 0, Evenness::Pad)), [0, 4, 8]);
        assert_eq!(all(d(1, 0, Evenness::Pad)), [1, 5, 9]);
        assert_eq!(all(d(0, 1, Evenness::Pad)), [2, 6, 0]);
        assert_eq!(all(d(1, 1, Evenness::Pad)), [3, 7, 1]);
        let p = d(1, 1, Evenness::Pad);
        assert_eq!(p.padded().collect::<Vec<_>>(), [0, 1]);
        assert_eq!(p.remaining_reads_of(1), 1);
        assert_eq!(p.remaining_reads_of(3), 1);
        assert_eq!(p.remaining_reads_of(5), 0);
    }

    #[test]
    fn padding_wraps_more_than_once_when_there_are_fewer_batches_than_workers() {
        let d = Deal::new(2, false, 0, part(4, 5, 0, 1), Evenness::Pad);
        assert_eq!(d.padded().collect::<Vec<_>>(), [0, 1, 0]);
        assert_eq!(all(d), [0]); // idx 4 -> (4 - 2) mod 2
    }

    #[test]
    fn the_partial_batch_is_dropped_even_for_one_rank() {
        let d = Deal::new(5, true, 0, part(0, 1, 0, 1), Evenness::DropLast);
        assert_eq!(d.dropped(), 4..5);
        assert_eq!(all(d), [0, 1, 2, 3]);
        let d = Deal::new(5, true, 5, part(0, 1, 0, 1), Evenness::DropLast);
        assert_eq!((d.dropped(), d.position()), (5..5, (5, 0)));
    }

    #[test]
    fn positions_of_a_rank_and_of_a_worker() {
        let mut d = Deal::new(10, false, 2, part(1, 2, 0, 1), Evenness::DropLast);
        assert_eq!(d.next_global(), Some(3));
        assert_eq!(d.position(), (4, 0));
        let mut w = Deal::new(10, false, 2, part(1, 2, 1, 2), Evenness::Pad);
        assert_eq!(w.next_global(), Some(5));
        assert_eq!(w.position(), (2, 1));
        w.skip(2);
        assert_eq!((w.next_global(), w.position()), (None, (10, 0)));
    }

    #[test]
    fn partitions_are_checked() {
        assert!(part(0, 1, 0, 1).check(Evenness::Neither).is_ok());
        assert!(matches!(
            part(0, 2, 0, 1).check(Evenness::Neither),
            Err(Error::BadBatchOptions(_))
        ));
        assert!(matches!(
            part(2, 2, 0, 1).check(Evenness::Pad),
            Err(Error::BadPartition { what: "rank", .. })
        ));
        assert!(matches!(
            part(0, 2, 3, 3).check(Evenness::Pad),
            Err(Error::BadPartition { what: "worker", .. })
        ));
        assert!(part(0, 0, 0, 1).check(Evenness::Pad).is_err());
        assert!(part(0, 1, 0, 0).check(Evenness::Pad).is_err());
        assert!(part(0, u64::MAX, 0, 2).check(Evenness::Pad).is_err());
    }
}
