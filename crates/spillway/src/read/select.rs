//! Which rows of a file go to the output: rows with a time, past the `--max-rows` cut, that the
//! cross-sectional filters keep. Both read sources decide row by row through a [`Selector`], in
//! file order, from the time (and, for `--drop-null-target`, the target) alone.

use crate::plan::filter::CrossSection;
use crate::plan::key::Repeats;
use crate::plan::{Cut, Unit};

/// The row decisions of one file, in file order.
pub struct Selector<'a> {
    cut: Cut,
    filters: Option<&'a CrossSection>,
    symbol: u32,
    cursor: usize,
    /// The next row's index in the file.
    row: u64,
    repeats: Repeats,
}

impl<'a> Selector<'a> {
    /// The decisions for `unit` under `filters`.
    pub fn new(unit: &Unit, filters: Option<&'a CrossSection>) -> Selector<'a> {
        Selector {
            cut: unit.cut(),
            filters,
            symbol: unit.symbol,
            cursor: 0,
            row: 0,
            repeats: Repeats::new(unit),
        }
    }

    /// Whether the target decides anything (`--drop-null-target` with a target column).
    pub fn needs_target(&self, has_target: bool) -> bool {
        has_target && self.filters.is_some_and(|cs| cs.options().drop_null_target)
    }

    /// Whether only the cut decides: then, in a file without null times, the kept rows are one
    /// contiguous range after the cut.
    pub fn cut_only(&self) -> bool {
        self.filters.is_none()
    }

    /// The next row: its time (`None`: null) and whether its target is a number. Whether it stays.
    pub fn keep(&mut self, time: Option<i64>, target_ok: bool) -> bool {
        let row = self.row;
        self.row += 1;
        let Some(t) = time else { return false };
        if !self.cut.keep() {
            return false;
        }
        match self.filters {
            None => true,
            Some(cs) => {
                let tag = self.repeats.tag(t, row);
                cs.keep(t, target_ok, self.symbol, tag, &mut self.cursor)
            }
        }
    }

    /// Passes over a row group of `rows` rows that no output row comes from ([`Unit::dead`]:
    /// no null time, no cut), `max` its latest time, as if each row had been refused.
    pub fn pass(&mut self, rows: u64, max: i64) {
        self.row += rows;
        if self.filters.is_some() {
            // The row tags only rise to the latest time seen: the rows between count only
            // through the row index.
            let _ = self.repeats.tag(max, self.row);
        }
    }

    /// Of the next `n` rows (all with a time), how many the cut drops from the front.
    pub fn drop_front(&mut self, n: u64) -> u64 {
        self.row += n;
        self.cut.drop_front(n)
    }
}

/// Which rows of a row group (or an arrow batch) stay: a contiguous range (no null times, no
/// filters), or a bitmap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rows {
    /// Rows `start..end` stay.
    Range(std::ops::Range<usize>),
    /// Bit `i` set: row `i` stays; `count` rows in all.
    Bits {
        /// The bitmap, 64 rows a word.
        words: Vec<u64>,
        /// Rows set.
        count: usize,
    },
}

impl Rows {
    /// An empty bitmap for `n` rows, reusing `words`.
    pub fn bits(n: usize, mut words: Vec<u64>) -> Rows {
        words.clear();
        words.resize(n.div_ceil(64), 0);
        Rows::Bits { words, count: 0 }
    }

    /// Marks row `i` as kept (a bitmap).
    pub fn set(&mut self, i: usize) {
        if let Rows::Bits { words, count } = self {
            words[i / 64] |= 1 << (i % 64);
            *count += 1;
        }
    }

    /// Rows kept.
    pub fn count(&self) -> usize {
        match self {
            Rows::Range(r) => r.len(),
            Rows::Bits { count, .. } => *count,
        }
    }

    /// Rows kept among rows `from..to`.
    pub fn count_in(&self, from: usize, to: usize) -> usize {
        match self {
            Rows::Range(r) => to.min(r.end).saturating_sub(from.max(r.start)),
            Rows::Bits { words, .. } => (from..to)
                .filter(|&i| words[i / 64] >> (i % 64) & 1 == 1)
                .count(),
        }
    }

    /// Appends the kept values among `src` (rows `from..from + src.len()`) to `out`.
    pub fn gather<T: Copy>(&self, from: usize, src: &[T], out: &mut Vec<T>) {
        match self {
            Rows::Range(r) => {
                let a = r.start.clamp(from, from + src.len()) - from;
                let b = r.end.clamp(from, from + src.len()) - from;
                out.extend_from_slice(&src[a..b]);
            }
            Rows::Bits { words, .. } => {
                for (k, &v) in src.iter().enumerate() {
                    let i = from + k;
                    if words[i / 64] >> (i % 64) & 1 == 1 {
                        out.push(v);
                    }
                }
            }
        }
    }

    /// The bitmap's words, for reuse.
    pub fn into_words(self) -> Vec<u64> {
        match self {
            Rows::Bits { words, .. } => words,
            Rows::Range(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_bits_gather_the_same_rows() {
        let src: Vec<u32> = (0..200).collect();
        let range = Rows::Range(70..130);
        let mut bits = Rows::bits(200, Vec::new());
        for i in 70..130 {
            bits.set(i);
        }
        for (from, to) in [(0, 64), (64, 128), (128, 200), (100, 101), (0, 200)] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            range.gather(from, &src[from..to], &mut a);
            bits.gather(from, &src[from..to], &mut b);
            assert_eq!(a, b, "{from}..{to}");
            assert_eq!(range.count_in(from, to), a.len());
            assert_eq!(bits.count_in(from, to), a.len());
        }
        assert_eq!((range.count(), bits.count()), (60, 60));
    }
}
