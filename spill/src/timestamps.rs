//! Time-major files (format 1.2): the [`Order`] of a file's rows, and the [`Timestamps`] index
//! that says where each timestamp's rows (its cross-section) lie, without reading the time column.
//!
//! Stored (SPEC.md, "Timestamp index") as the first time and two run-length lists, each a flat
//! JSON array of `value, n` pairs: `steps`, the differences between consecutive times, and `rows`,
//! each timestamp's row count. A regular 5-minute grid is one step run (plus one per overnight
//! gap); a universe where every symbol has every timestamp is one row run. In memory the runs keep
//! their first index, time and row, so every lookup is a binary search over runs, never over
//! timestamps: the index costs 32 bytes a run whatever the number of timestamps.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::caps;

/// How a file's rows are ordered (metadata key `order`, format 1.2; absent: symbol-major).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Order {
    /// Each symbol's rows are contiguous, in code order: its range in the symbol table.
    #[default]
    Symbol,
    /// Rows sorted by (time, symbol code): each timestamp's rows are contiguous, at the range the
    /// [`Timestamps`] index gives; symbols carry names only.
    Time,
}

impl Order {
    /// The name stored in the metadata.
    pub const fn name(self) -> &'static str {
        match self {
            Order::Symbol => "symbol",
            Order::Time => "time",
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Option<Order> {
        [Order::Symbol, Order::Time]
            .into_iter()
            .find(|o| o.name() == name)
    }
}

impl std::fmt::Display for Order {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `n` consecutive differences of `step`: the times at indices `at + 1 ..= at + n` are
/// `base + k x step` for `k = 1 ..= n`, where `base` is the time at index `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StepRun {
    at: u64,
    base: i64,
    step: u64,
    n: u64,
}

/// `n` consecutive timestamps from index `at`, of `count` rows each, the first starting at `row`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RowRun {
    at: u64,
    row: u64,
    count: u64,
    n: u64,
}

/// The timestamp index of a time-major file: its distinct times, strictly increasing, and the
/// rows of each, which tile `[0, nrows)` in order (timestamp `i` holds rows
/// `[start_i, start_i + count_i)`, `start_0 = 0`, every count at least 1).
///
/// Built for a writer with [`Timestamps::from_counts`]; read with
/// [`SpillFile::timestamps`](crate::SpillFile::timestamps). Lookups are `O(log runs)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Timestamps {
    len: u64,
    first: i64,
    nrows: u64,
    steps: Vec<StepRun>,
    rows: Vec<RowRun>,
}

fn bad(why: String) -> Error {
    Error::BadTimestamps(why)
}

fn over_cap(what: &'static str, value: u64, cap: u64) -> Result<()> {
    match value > cap {
        true => Err(Error::OverCap { what, value, cap }),
        false => Ok(()),
    }
}

/// Appends `value` to a flat run list, extending the last run when it has the same value.
fn push_run(runs: &mut Vec<u64>, value: u64) {
    match runs.as_mut_slice() {
        [.., v, n] if *v == value => *n += 1,
        _ => runs.extend([value, 1]),
    }
}

impl Timestamps {
    /// The index of timestamps given as `(time_ns, rows)` pairs in increasing time: times strictly
    /// increasing, every count at least 1 (else [`Error::BadTimestamps`]); at most 2^48 rows and
    /// 2^24 runs in each list (else [`Error::OverCap`]). An empty iterator is the index of a file
    /// of no rows.
    pub fn from_counts(counts: impl IntoIterator<Item = (i64, u64)>) -> Result<Timestamps> {
        let (mut steps, mut rows) = (Vec::new(), Vec::new());
        let (mut len, mut first, mut prev) = (0u64, 0i64, None);
        for (t, count) in counts {
            if count == 0 {
                return Err(bad(format!("timestamp {t} has no rows")));
            }
            match prev {
                None => first = t,
                Some(p) if t <= p => {
                    return Err(bad(format!(
                        "times are not strictly increasing: {t} after {p}"
                    )))
                }
                Some(p) => push_run(&mut steps, t.abs_diff(p)),
            }
            push_run(&mut rows, count);
            prev = Some(t);
            len += 1;
        }
        Timestamps::from_runs(len, first, &steps, &rows)
    }

    /// The index stored as `count` timestamps from `first`, with flat `(value, n)` run lists
    /// (SPEC.md, "Timestamp index"), checked in full: caps, pairs, runs of at least 1, step runs
    /// covering `count - 1` differences and row runs `count` timestamps, times within int64, at
    /// most 2^48 rows. Whether the rows tile the file is the caller's check.
    pub(crate) fn from_runs(len: u64, first: i64, steps: &[u64], rows: &[u64]) -> Result<Self> {
        over_cap("timestamp count", len, caps::MAX_ROWS)?;
        let runs = caps::MAX_TIMESTAMP_RUNS;
        over_cap("timestamp step runs", steps.len() as u64 / 2, runs)?;
        over_cap("timestamp row runs", rows.len() as u64 / 2, runs)?;
        if !steps.len().is_multiple_of(2) || !rows.len().is_multiple_of(2) {
            return Err(bad(
                "steps and rows must each hold (value, n) pairs: an even number of integers".into(),
            ));
        }
        if len == 0 {
            if first != 0 || !steps.is_empty() || !rows.is_empty() {
                return Err(bad(
                    "an index of 0 timestamps has first 0 and no runs".into()
                ));
            }
            return Ok(Timestamps::default());
        }
        let mut out = Timestamps {
            len,
            first,
            nrows: 0,
            steps: Vec::with_capacity(steps.len() / 2),
            rows: Vec::with_capacity(rows.len() / 2),
        };
        let (mut at, mut base) = (0u64, first);
        for (k, pair) in steps.chunks_exact(2).enumerate() {
            let (step, n) = (pair[0], pair[1]);
            if step == 0 || n == 0 {
                return Err(bad(format!(
                    "step run {k} is ({step}, {n}): a step and a run length are at least 1"
                )));
            }
            let end = step
                .checked_mul(n)
                .and_then(|span| i64::try_from(i128::from(base) + i128::from(span)).ok())
                .ok_or_else(|| bad(format!("step run {k} runs past the largest int64 time")))?;
            out.steps.push(StepRun { at, base, step, n });
            at = at.saturating_add(n);
            base = end;
        }
        if at != len - 1 {
            return Err(bad(format!(
                "the step runs cover {at} differences; {len} timestamps have {}",
                len - 1
            )));
        }
        let (mut at, mut row) = (0u64, 0u64);
        for (k, pair) in rows.chunks_exact(2).enumerate() {
            let (count, n) = (pair[0], pair[1]);
            if count == 0 || n == 0 {
                return Err(bad(format!(
                    "row run {k} is ({count}, {n}): a row count and a run length are at least 1"
                )));
            }
            out.rows.push(RowRun { at, row, count, n });
            at = at.saturating_add(n);
            row = count
                .checked_mul(n)
                .and_then(|r| row.checked_add(r))
                .unwrap_or(u64::MAX);
        }
        if at != len {
            return Err(bad(format!(
                "the row runs cover {at} timestamps; the index has {len}"
            )));
        }
        over_cap("rows of the timestamp index", row, caps::MAX_ROWS)?;
        out.nrows = row;
        Ok(out)
    }

    /// Number of distinct timestamps.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are none (a file of no rows).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Rows covered: the sum of every timestamp's count.
    pub fn nrows(&self) -> u64 {
        self.nrows
    }

    /// The first time, `None` when empty.
    pub fn first(&self) -> Option<i64> {
        (self.len > 0).then_some(self.first)
    }

    /// The last time, `None` when empty.
    pub fn last(&self) -> Option<i64> {
        (self.len > 0).then(|| self.time_at(self.len - 1))
    }

    /// The time (int64 UTC nanoseconds) of timestamp `i`. Panics if `i >= len()`, like indexing.
    pub fn time(&self, i: usize) -> i64 {
        self.check(i);
        self.time_at(i as u64)
    }

    /// The rows of timestamp `i`. Panics if `i >= len()`, like indexing.
    pub fn range(&self, i: usize) -> Range<u64> {
        self.check(i);
        self.range_at(i as u64)
    }

    /// Timestamp `i`'s time and rows, or `None` out of range.
    pub fn get(&self, i: usize) -> Option<(i64, Range<u64>)> {
        ((i as u64) < self.len).then(|| (self.time_at(i as u64), self.range_at(i as u64)))
    }

    /// The index of the timestamp at exactly `t_ns`, if there is one.
    pub fn find(&self, t_ns: i64) -> Option<usize> {
        let i = self.first_at_or_after(t_ns);
        (i < self.len() && self.time_at(i as u64) == t_ns).then_some(i)
    }

    /// The first timestamp at or after `t_ns` (`len()` when every time is before it): the
    /// partition point of the times, as `searchsorted(times, t, "left")`.
    pub fn first_at_or_after(&self, t_ns: i64) -> usize {
        if self.len == 0 || t_ns <= self.first {
            return 0;
        }
        // The last run whose base time is before t: t lies after its base, within or past it.
        let k = self.steps.partition_point(|r| r.base < t_ns);
        let Some(r) = k.checked_sub(1).and_then(|k| self.steps.get(k)) else {
            return self.len as usize; // one timestamp, before t
        };
        let j = t_ns.abs_diff(r.base).div_ceil(r.step);
        (r.at + j.min(r.n + 1)) as usize
    }

    /// The first row of timestamp `i`, or `nrows()` for `i == len()`: the boundaries of the
    /// cross-sections. `None` for `i > len()`.
    pub fn start(&self, i: usize) -> Option<u64> {
        match (i as u64).cmp(&self.len) {
            std::cmp::Ordering::Less => Some(self.range_at(i as u64).start),
            std::cmp::Ordering::Equal => Some(self.nrows),
            std::cmp::Ordering::Greater => None,
        }
    }

    /// The timestamp holding `row`, `None` for `row >= nrows()`.
    pub fn index_of_row(&self, row: u64) -> Option<usize> {
        if row >= self.nrows {
            return None;
        }
        let k = self.rows.partition_point(|r| r.row <= row) - 1;
        let r = &self.rows[k];
        Some((r.at + (row - r.row) / r.count) as usize)
    }

    /// The timestamp whose rows start at `row` (`len()` for `row == nrows()`), `None` when `row`
    /// is inside a cross-section or past the end.
    pub fn boundary(&self, row: u64) -> Option<usize> {
        if row == self.nrows {
            return Some(self.len as usize);
        }
        let i = self.index_of_row(row)?;
        (self.range_at(i as u64).start == row).then_some(i)
    }

    /// Every timestamp's time and rows, in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            ts: self,
            next: 0,
            end: self.len,
        }
    }

    /// The stored form: count, first time, flat `(step, n)` and `(count, n)` run lists.
    pub(crate) fn to_raw(&self) -> RawTimestamps {
        let flat = |pairs: &mut dyn Iterator<Item = [u64; 2]>| Capped {
            values: pairs.flatten().collect(),
            len: 0,
        };
        RawTimestamps {
            count: self.len,
            first: self.first,
            steps: flat(&mut self.steps.iter().map(|r| [r.step, r.n])),
            rows: flat(&mut self.rows.iter().map(|r| [r.count, r.n])),
        }
    }

    fn check(&self, i: usize) {
        assert!(
            (i as u64) < self.len,
            "timestamp {i} out of range ({} timestamps)",
            self.len
        );
    }

    /// Time of timestamp `i < len`.
    fn time_at(&self, i: u64) -> i64 {
        if i == 0 {
            return self.first;
        }
        // The run holding difference i - 1: the last whose first index is before i.
        let r = &self.steps[self.steps.partition_point(|r| r.at < i) - 1];
        // Validated: base + n x step fits in i64, and i - at <= n; wrapping gives the exact value.
        r.base.wrapping_add_unsigned((i - r.at) * r.step)
    }

    /// Rows of timestamp `i < len`.
    fn range_at(&self, i: u64) -> Range<u64> {
        let r = &self.rows[self.rows.partition_point(|r| r.at <= i) - 1];
        let start = r.row + (i - r.at) * r.count;
        start..start + r.count
    }
}

/// The iterator of [`Timestamps::iter`]: `(time_ns, rows)` for each timestamp in order.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    ts: &'a Timestamps,
    next: u64,
    end: u64,
}

impl Iterator for Iter<'_> {
    type Item = (i64, Range<u64>);

    fn next(&mut self) -> Option<(i64, Range<u64>)> {
        if self.next >= self.end {
            return None;
        }
        let i = self.next;
        self.next += 1;
        Some((self.ts.time_at(i), self.ts.range_at(i)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.end - self.next) as usize;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Timestamps {
    type Item = (i64, Range<u64>);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The stored JSON object of the index.
#[derive(Serialize, Deserialize)]
pub(crate) struct RawTimestamps {
    pub(crate) count: u64,
    pub(crate) first: i64,
    pub(crate) steps: Capped,
    pub(crate) rows: Capped,
}

/// A JSON array of unsigned integers, kept up to the cap of a run list (`2 x 2^24` integers) and
/// counted in full, so that a hostile list is refused as over the cap without being allocated.
pub(crate) struct Capped {
    pub(crate) values: Vec<u64>,
    /// Integers in the array (only set when read).
    pub(crate) len: u64,
}

impl Capped {
    const MAX: u64 = 2 * caps::MAX_TIMESTAMP_RUNS;
}

impl Serialize for Capped {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.values.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Capped {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Capped;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of unsigned integers")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Capped, A::Error> {
                let mut out = Capped {
                    values: Vec::new(),
                    len: 0,
                };
                while out.len < Capped::MAX {
                    match seq.next_element::<u64>()? {
                        Some(v) => out.values.push(v),
                        None => return Ok(out.counted()),
                    }
                    out.len += 1;
                }
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    out.len += 1;
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V)
    }
}

impl Capped {
    fn counted(mut self) -> Capped {
        self.len = self.values.len() as u64;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A naive index: every timestamp's time and rows.
    fn naive(pairs: &[(i64, u64)]) -> Vec<(i64, Range<u64>)> {
        let mut row = 0;
        pairs
            .iter()
            .map(|&(t, c)| {
                row += c;
                (t, row - c..row)
            })
            .collect()
    }

    #[test]
    fn lookups_match_a_naive_index() {
        let grid: Vec<(i64, u64)> = (0..50).map(|i| (-1000 + 300 * i, 7)).collect();
        let ragged: Vec<(i64, u64)> = [(5, 1), (6, 3), (9, 3), (20, 1), (21, 2), (22, 2), (100, 9)]
            .into_iter()
            .collect();
        let extremes = vec![(i64::MIN, 1), (0, 2), (i64::MAX, 1)];
        for pairs in [grid, ragged, extremes, vec![(42, 5)], vec![]] {
            let ts = Timestamps::from_counts(pairs.iter().copied()).expect("valid");
            let want = naive(&pairs);
            assert_eq!(ts.len(), want.len());
            assert_eq!(ts.iter().collect::<Vec<_>>(), want);
            assert_eq!(ts.nrows(), want.last().map_or(0, |w| w.1.end));
            for (i, (t, r)) in want.iter().enumerate() {
                assert_eq!((ts.time(i), ts.range(i)), (*t, r.clone()));
                assert_eq!(ts.find(*t), Some(i));
                assert_eq!(ts.start(i), Some(r.start));
                for row in r.clone() {
                    assert_eq!(ts.index_of_row(row), Some(i));
                    assert_eq!(ts.boundary(row), (row == r.start).then_some(i));
                }
            }
            assert_eq!(ts.start(want.len()), Some(ts.nrows()));
            assert_eq!(ts.boundary(ts.nrows()), Some(want.len()));
            assert_eq!(ts.index_of_row(ts.nrows()), None);
            let probes = want
                .iter()
                .flat_map(|w| [w.0.saturating_sub(1), w.0, w.0.saturating_add(1)])
                .chain([i64::MIN, i64::MAX, 0]);
            for t in probes {
                let lb = want.partition_point(|w| w.0 < t);
                assert_eq!(ts.first_at_or_after(t), lb, "t = {t}");
                assert_eq!(ts.find(t), want.iter().position(|w| w.0 == t), "t = {t}");
            }
        }
    }

    #[test]
    fn runs_are_compact() {
        // 75,000 timestamps on a 5-minute grid with a gap every 78, 700 rows each.
        let pairs = (0..75_000i64).map(|i| (i * 300 + (i / 78) * 60_000, 700));
        let ts = Timestamps::from_counts(pairs).expect("valid");
        let raw = ts.to_raw();
        assert_eq!(raw.rows.values, [700, 75_000]);
        assert!(
            raw.steps.values.len() <= 4 * 962,
            "{}",
            raw.steps.values.len()
        );
        assert_eq!(ts.nrows(), 700 * 75_000);
    }

    #[test]
    fn bad_runs_are_refused() {
        let bad = |len, first, steps: &[u64], rows: &[u64]| {
            Timestamps::from_runs(len, first, steps, rows).expect_err("refused")
        };
        let is_bad = |e: Error| matches!(e, Error::BadTimestamps(_));
        assert!(is_bad(bad(2, 0, &[5], &[1, 2])));
        assert!(is_bad(bad(0, 3, &[], &[])));
        assert!(is_bad(bad(2, 0, &[0, 1], &[1, 2])));
        assert!(is_bad(bad(2, 0, &[5, 1], &[0, 2])));
        assert!(is_bad(bad(2, 0, &[5, 0, 5, 1], &[1, 2])));
        assert!(is_bad(bad(3, 0, &[5, 1], &[1, 3])));
        assert!(is_bad(bad(2, 0, &[5, 1], &[1, 3])));
        assert!(is_bad(bad(2, i64::MAX, &[1, 1], &[1, 2])));
        assert!(is_bad(bad(2, 0, &[u64::MAX, 2], &[1, 2])));
        assert!(matches!(
            bad(2, 0, &[5, 1], &[(1 << 47) + 1, 2]),
            Error::OverCap { .. }
        ));
        assert!(matches!(
            bad(caps::MAX_ROWS + 1, 0, &[], &[]),
            Error::OverCap { .. }
        ));
        assert!(is_bad(
            Timestamps::from_counts([(5, 1), (5, 1)]).expect_err("repeat")
        ));
        assert!(is_bad(
            Timestamps::from_counts([(5, 0)]).expect_err("no rows")
        ));
    }
}
