//! Time windows and cross-sections: [`SpillFile::time_ranges`] (both orders),
//! [`SpillFile::time_range`] and [`SpillFile::group_sizes`] (time-major files, from the index
//! alone), and [`SpillFile::verify_time_index`].

use std::ops::Range;

use crate::error::{Error, Result};
use crate::format::Role;
use crate::read::{Backing, SpillFile};
use crate::timestamps::Timestamps;

/// Rows of the timestamps at or after `start_ns` and before `stop_ns` (raised to `start_ns`).
fn window(ts: &Timestamps, start_ns: i64, stop_ns: i64) -> Range<u64> {
    let a = ts.first_at_or_after(start_ns);
    let b = ts.first_at_or_after(stop_ns).max(a);
    // Both are at most len(), where start() is nrows.
    let row = |i| ts.start(i).unwrap_or(ts.nrows());
    row(a)..row(b)
}

impl<D: Backing> SpillFile<D> {
    /// The rows whose time lies in `[start_ns, stop_ns)`.
    ///
    /// Symbol-major files: for each symbol (in code order), its rows in the window, found by
    /// binary search of the first time column within the symbol's range (`O(symbols x log
    /// rows)`; empty ranges included, so `result[code]` is that symbol's). This assumes each
    /// symbol's rows are sorted by time (spillway keeps each symbol's rows in the order of its
    /// input files; it does not sort them); where they are not, the range returned for that
    /// symbol is an unspecified sub-range of the symbol's rows: no error, no panic.
    ///
    /// Time-major files: ONE range (possibly empty), from the timestamp index alone (see
    /// [`SpillFile::time_range`]).
    pub fn time_ranges(&self, start_ns: i64, stop_ns: i64) -> Result<Vec<Range<u64>>> {
        if let Some(r) = self.time_range(start_ns, stop_ns) {
            return Ok(vec![r]);
        }
        let time: &[i64] = self.column_at(self.time_index()?)?;
        Ok(self
            .symbols()
            .iter()
            .map(|s| {
                // Validated: symbol ranges tile [0, nrows).
                let t = &time[s.start as usize..s.stop as usize];
                let a = t.partition_point(|&v| v < start_ns) as u64;
                let b = (t.partition_point(|&v| v < stop_ns) as u64).max(a);
                s.start + a..s.start + b
            })
            .collect())
    }

    /// Time-major files: the ONE row range whose times lie in `[start_ns, stop_ns)` (a stop below
    /// the start is raised to it), by binary search of the timestamp index; no data is read. It
    /// starts and stops on timestamp boundaries, so it holds whole cross-sections. `None` in a
    /// symbol-major file (see [`SpillFile::time_ranges`]).
    pub fn time_range(&self, start_ns: i64, stop_ns: i64) -> Option<Range<u64>> {
        self.timestamps().map(|ts| window(ts, start_ns, stop_ns))
    }

    /// Time-major files: the rows of each timestamp within `ranges`, in order (ranking objectives
    /// call them group or query sizes). Each non-empty range must start and stop on a timestamp
    /// boundary ([`Error::NotOnTimestampBoundary`]; [`SpillFile::time_range`] gives such ranges),
    /// and lie within the file ([`Error::BadRowRange`]). [`Error::NotTimeMajor`] in a
    /// symbol-major file.
    pub fn group_sizes(&self, ranges: impl IntoIterator<Item = Range<u64>>) -> Result<Vec<u64>> {
        let ts = self.timestamps().ok_or(Error::NotTimeMajor {
            what: "group sizes",
        })?;
        let mut out = Vec::new();
        for r in ranges {
            self.check_range(&r)?;
            if r.end > r.start {
                let (a, b) = (
                    super::whole::boundary(ts, r.start)?,
                    super::whole::boundary(ts, r.end)?,
                );
                out.extend((a..b).map(|i| {
                    let rows = ts.range(i);
                    rows.end - rows.start
                }));
            }
        }
        Ok(out)
    }

    /// Time-major files: checks that the first time column holds, in every timestamp's rows,
    /// exactly that timestamp's time (O(rows): reads the time column). Opening a file does not
    /// (it reads the metadata only), nor does [`SpillFile::verify`], whose checksums cannot tell
    /// a writer that wrote the wrong times. `Ok` for a symbol-major file or one without a time
    /// column; [`Error::TimeIndexMismatch`] naming the first row that disagrees.
    pub fn verify_time_index(&self) -> Result<()> {
        let (Some(ts), Some(&col)) = (
            self.timestamps(),
            self.columns_with_role(Role::Time).first(),
        ) else {
            return Ok(());
        };
        let time: &[i64] = self.column_at(col)?;
        for (expected, rows) in ts {
            // Validated: the index tiles [0, nrows).
            let values = &time[rows.start as usize..rows.end as usize];
            if let Some(k) = values.iter().position(|&v| v != expected) {
                return Err(Error::TimeIndexMismatch {
                    row: rows.start + k as u64,
                    found: values[k],
                    expected,
                });
            }
        }
        Ok(())
    }

    /// Index of the first time column.
    pub(super) fn time_index(&self) -> Result<usize> {
        self.columns_with_role(Role::Time)
            .first()
            .copied()
            .ok_or(Error::NoTimeColumn)
    }

    /// [`Error::BadRowRange`] unless `r` is a forward range within the file.
    pub(super) fn check_range(&self, r: &Range<u64>) -> Result<()> {
        if r.start > r.end || r.end > self.nrows() {
            return Err(Error::BadRowRange {
                start: r.start,
                stop: r.end,
                nrows: self.nrows(),
            });
        }
        Ok(())
    }
}
