//! The epoch's row sequence (SPEC.md "Batches"): the selected ranges, their blocks in shuffled
//! order, and the global batches cut from it; a [`Walk`] finds the source rows of any stretch of
//! the sequence, moving forward through the blocks (back to the start only to pad).

use std::ops::Range;

use super::deal::Deal;
use super::whole;
use crate::error::{Error, Result};
use crate::read::{Backing, SpillFile};

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

/// Where each range starts in the sequence, and the total after the last (`ranges.len() + 1`
/// entries). Checks that every range lies within the file.
pub(super) fn starts<D: Backing>(file: &SpillFile<D>, ranges: &[Range<u64>]) -> Result<Vec<u64>> {
    let mut starts = Vec::with_capacity(ranges.len() + 1);
    let mut total = 0u64;
    for r in ranges {
        file.check_range(r)?;
        starts.push(total);
        total = total
            .checked_add(r.end - r.start)
            .ok_or(Error::BadBatchOptions(
                "the ranges hold more than 2^64 rows",
            ))?;
    }
    starts.push(total);
    Ok(starts)
}

/// A position in the sequence: the next block (index into the order), rows of it already passed,
/// and the sequence position itself.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Walk {
    block: usize,
    in_block: u64,
    pos: u64,
}

/// The (permuted) row sequence of an epoch and its global batches.
#[derive(Debug)]
pub(super) struct Sequence {
    batch_rows: u64,
    /// Selected ranges and where each starts in the sequence (`starts[i]`; `starts[n]` = total).
    ranges: Vec<Range<u64>>,
    starts: Vec<u64>,
    block_rows: u64,
    /// Whole cross-sections: the blocks' bounds in sequence positions (`None`: fixed blocks of
    /// `block_rows`), and where every global batch starts (with the total after the last).
    bounds: Option<Vec<u64>>,
    offsets: Option<Vec<u64>>,
    /// Blocks in the order they are read.
    order: Vec<u64>,
}

impl Sequence {
    /// Plans the sequence of `ranges` (checked by [`starts`], which gave `starts`): blocks
    /// permuted with `shuffle` (its seed already the epoch's), whole cross-sections when `whole`.
    pub(super) fn plan<D: Backing>(
        file: &SpillFile<D>,
        ranges: Vec<Range<u64>>,
        starts: Vec<u64>,
        batch_rows: u64,
        shuffle: Option<(u64, u64)>,
        whole: bool,
    ) -> Result<Sequence> {
        let total = starts[ranges.len()];
        let (block_rows, order, bounds, offsets) = match (whole, shuffle) {
            (true, shuffle) => {
                let ts = file.timestamps().ok_or(Error::NotTimeMajor {
                    what: "whole-timestamp batches",
                })?;
                let units = whole::units(ts, &ranges)?;
                let plan = whole::plan(&units, batch_rows, shuffle);
                let mut offsets = Vec::with_capacity(plan.sizes.len() + 1);
                offsets.push(0);
                for s in plan.sizes {
                    offsets.push(offsets[offsets.len() - 1] + s);
                }
                (total.max(1), plan.order, plan.bounds, Some(offsets))
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
        Ok(Sequence {
            batch_rows,
            ranges,
            starts,
            block_rows,
            bounds,
            offsets,
            order,
        })
    }

    /// Rows of the sequence.
    pub(super) fn total(&self) -> u64 {
        self.starts[self.ranges.len()]
    }

    /// Global batches of the epoch (`n`).
    pub(super) fn batches(&self) -> u64 {
        match &self.offsets {
            Some(offsets) => offsets.len() as u64 - 1,
            None => self.total().div_ceil(self.batch_rows),
        }
    }

    /// Whether the last global batch is partial (fixed-size batches only).
    pub(super) fn partial(&self) -> bool {
        self.offsets.is_none() && !self.total().is_multiple_of(self.batch_rows)
    }

    /// Sequence positions of global batch `g` (below [`batches`](Self::batches)).
    pub(super) fn global(&self, g: u64) -> Range<u64> {
        match &self.offsets {
            Some(offsets) => offsets[g as usize]..offsets[g as usize + 1],
            None => {
                let start = g * self.batch_rows;
                start..(start + self.batch_rows).min(self.total())
            }
        }
    }

    /// Rows of the batches `deal` has still to yield.
    pub(super) fn rows_to_yield(&self, deal: &Deal) -> u64 {
        if self.offsets.is_some() {
            return deal
                .remaining_globals()
                .map(|g| {
                    let r = self.global(g);
                    r.end - r.start
                })
                .sum();
        }
        // Every batch is full but a partial last one.
        let full = u128::from(deal.remaining()) * u128::from(self.batch_rows);
        let short = match self.batches().checked_sub(1) {
            Some(last) if self.partial() => {
                let r = self.global(last);
                u128::from(deal.remaining_reads_of(last))
                    * u128::from(self.batch_rows - (r.end - r.start))
            }
            _ => 0,
        };
        u64::try_from(full - short).unwrap_or(u64::MAX)
    }

    /// Appends the source rows of the sequence positions `seq` to `runs` (adjacent runs merged),
    /// moving `walk` to its end; back to the start first if `seq` lies behind it.
    pub(super) fn rows_of(&self, walk: &mut Walk, seq: Range<u64>, runs: &mut Vec<Range<u64>>) {
        if seq.start < walk.pos {
            *walk = Walk::default();
        }
        self.advance(walk, seq.start - walk.pos, None);
        self.advance(walk, seq.end - seq.start, Some(runs));
    }

    /// Moves `walk` forward `rows` rows, appending their source rows to `runs` if given.
    fn advance(&self, walk: &mut Walk, mut rows: u64, mut runs: Option<&mut Vec<Range<u64>>>) {
        while rows > 0 && walk.block < self.order.len() {
            let Range { start, end } = self.block(self.order[walk.block]);
            let from = start + walk.in_block;
            let take = rows.min(end - from);
            if let Some(runs) = &mut runs {
                self.push_runs(from..from + take, runs);
            }
            rows -= take;
            walk.in_block += take;
            walk.pos += take;
            if from + take == end {
                walk.block += 1;
                walk.in_block = 0;
            }
        }
    }

    /// Sequence positions of block `b`.
    fn block(&self, b: u64) -> Range<u64> {
        match &self.bounds {
            Some(bounds) => bounds[b as usize]..bounds[b as usize + 1],
            None => {
                let start = b * self.block_rows;
                start..(start + self.block_rows).min(self.total())
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
}
