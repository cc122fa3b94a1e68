//! Whole cross-sections for [`Batches`](super::Batches) in time-major files: the selection as a
//! sequence of *units* (one timestamp's rows within one range), and the one packing rule that
//! makes both the shuffled blocks and the batches out of whole units.

use std::ops::Range;

use crate::error::{Error, Result};
use crate::timestamps::Timestamps;

/// The timestamp whose rows start at `row`, or [`Error::NotOnTimestampBoundary`].
pub(super) fn boundary(ts: &Timestamps, row: u64) -> Result<usize> {
    ts.boundary(row)
        .ok_or(Error::NotOnTimestampBoundary { row })
}

/// The units of `ranges` in sequence order: the row count of each timestamp each range covers.
/// Every non-empty range must start and stop on a timestamp boundary.
pub(super) fn units(ts: &Timestamps, ranges: &[Range<u64>]) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for r in ranges.iter().filter(|r| r.end > r.start) {
        let (a, b) = (boundary(ts, r.start)?, boundary(ts, r.end)?);
        out.extend((a..b).map(|i| {
            let rows = ts.range(i);
            rows.end - rows.start
        }));
    }
    Ok(out)
}

/// Packs units (row counts, each at least 1) in order into groups of at most `limit` rows: a
/// group takes the next unit while it stays within `limit`; a unit of more than `limit` rows is a
/// group alone. Returns each group's (units, rows).
pub(super) fn pack(units: impl IntoIterator<Item = u64>, limit: u64) -> Vec<(usize, u64)> {
    let mut out = Vec::new();
    let (mut n, mut rows) = (0usize, 0u64);
    for u in units {
        if n > 0 && rows + u > limit {
            out.push((n, rows));
            (n, rows) = (0, 0);
        }
        n += 1;
        rows += u;
        if rows >= limit {
            out.push((n, rows));
            (n, rows) = (0, 0);
        }
    }
    if n > 0 {
        out.push((n, rows));
    }
    out
}

/// A shuffled selection of whole units: the blocks' bounds in sequence positions, the block order,
/// and the size of every batch.
pub(super) struct Plan {
    pub(super) bounds: Option<Vec<u64>>,
    pub(super) order: Vec<u64>,
    pub(super) sizes: Vec<u64>,
}

/// Plans whole-unit batches of at most `batch_rows` rows (a larger unit alone), after a shuffle of
/// blocks of at most `block_rows` rows (a larger unit alone) when `shuffle` is set.
pub(super) fn plan(units: &[u64], batch_rows: u64, shuffle: Option<(u64, u64)>) -> Plan {
    let total: u64 = units.iter().sum();
    let Some((block_rows, seed)) = shuffle else {
        return Plan {
            bounds: None,
            order: if total > 0 { vec![0] } else { vec![] },
            sizes: pack(units.iter().copied(), batch_rows)
                .into_iter()
                .map(|g| g.1)
                .collect(),
        };
    };
    let blocks = pack(units.iter().copied(), block_rows);
    let (mut bounds, mut first_unit) = (vec![0u64], vec![0usize]);
    for &(n, rows) in &blocks {
        bounds.push(bounds[bounds.len() - 1] + rows);
        first_unit.push(first_unit[first_unit.len() - 1] + n);
    }
    let order = super::block_order(blocks.len() as u64, seed);
    let permuted = order
        .iter()
        .flat_map(|&b| &units[first_unit[b as usize]..first_unit[b as usize + 1]])
        .copied();
    let sizes = pack(permuted, batch_rows)
        .into_iter()
        .map(|g| g.1)
        .collect();
    Plan {
        bounds: Some(bounds),
        order,
        sizes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_never_splits_a_unit_and_stays_within_the_limit() {
        assert_eq!(pack([3, 3, 3, 3], 6), [(2, 6), (2, 6)]);
        assert_eq!(pack([3, 3, 3, 3], 7), [(2, 6), (2, 6)]);
        assert_eq!(pack([3, 10, 1, 1], 4), [(1, 3), (1, 10), (2, 2)]);
        assert_eq!(pack([1; 5], 1), [(1, 1); 5]);
        assert!(pack([], 4).is_empty());
    }
}
