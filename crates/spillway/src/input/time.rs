//! The time column: conversion of every supported type to int64 nanoseconds since the epoch (UTC),
//! with overflow refused (never wrapped or clamped), and the scan that reads one file's time column
//! alone (for planning: rows, survivors, order).

use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Int16Type, Int32Type, Int64Type, Int8Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type,
    UInt8Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::TimeUnit;
use parquet::column::reader::ColumnReader;
use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::error::{SymbolError, SymbolErrorKind};
use crate::guard::no_panic;
use crate::input::footer::load_metadata;
use crate::input::open::{open, vet, Projection};
use crate::input::schema::TimeKind;
use crate::input::source;

const JULIAN_DAY_OF_EPOCH: i64 = 2_440_588;
const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// A time value that does not fit: (index in the array, the stored value as text).
pub type Overflow = (usize, String);

/// Converts a time array to nanoseconds, calling `visit(i, ns)` for each non-null row `i`.
/// Stops at the first value out of range.
pub fn for_each_ns(
    array: &ArrayRef,
    kind: TimeKind,
    mut visit: impl FnMut(usize, i64),
) -> Result<(), Overflow> {
    fn each<T: Copy + Into<i64>>(
        values: &[T],
        array: &dyn Array,
        kind: TimeKind,
        visit: &mut impl FnMut(usize, i64),
    ) -> Result<(), Overflow> {
        let nulls = array.logical_nulls();
        for (i, &v) in values.iter().enumerate() {
            if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                continue;
            }
            visit(i, kind.to_ns(v.into()).map_err(|text| (i, text))?);
        }
        Ok(())
    }
    let a = array.as_ref();
    macro_rules! typed {
        ($t:ty) => {
            each(a.as_primitive::<$t>().values(), a, kind, &mut visit)
        };
    }
    match kind {
        TimeKind::Timestamp(TimeUnit::Second) => typed!(TimestampSecondType),
        TimeKind::Timestamp(TimeUnit::Millisecond) => typed!(TimestampMillisecondType),
        TimeKind::Timestamp(TimeUnit::Microsecond) => typed!(TimestampMicrosecondType),
        // INT96 arrives as nanoseconds; planning checked every value exactly (see `scan`).
        TimeKind::Timestamp(TimeUnit::Nanosecond) | TimeKind::Int96 => {
            typed!(TimestampNanosecondType)
        }
        TimeKind::Date32 => typed!(Date32Type),
        TimeKind::Date64 => typed!(Date64Type),
        TimeKind::Epoch(_) => match a.data_type() {
            arrow_schema::DataType::Int8 => typed!(Int8Type),
            arrow_schema::DataType::Int16 => typed!(Int16Type),
            arrow_schema::DataType::Int32 => typed!(Int32Type),
            arrow_schema::DataType::UInt8 => typed!(UInt8Type),
            arrow_schema::DataType::UInt16 => typed!(UInt16Type),
            arrow_schema::DataType::UInt32 => typed!(UInt32Type),
            _ => typed!(Int64Type),
        },
    }
}

/// Which way the run being cut goes, once a time differs from the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// Every time so far equal.
    Flat,
    /// Times rose (and never fell).
    Rising,
    /// Times fell (and never rose).
    Falling,
}

impl Way {
    /// The way after `prev -> t`, or `None` when `t` turns back (a new run starts at `t`).
    pub fn step(self, prev: i64, t: i64) -> Option<Way> {
        match self {
            Way::Flat if t > prev => Some(Way::Rising),
            Way::Flat if t < prev => Some(Way::Falling),
            Way::Rising if t < prev => None,
            Way::Falling if t > prev => None,
            way => Some(way),
        }
    }
}

/// Counts the runs a stream of one symbol's times is cut into, as a time-major build's merge cuts
/// them (stretches whose time only rises or only falls, each as long as it can be): the planning
/// scan sees each file's times in order, so `inspect` predicts the merge's runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunCounter {
    way: Way,
    prev: Option<i64>,
    runs: u64,
}

impl Default for RunCounter {
    fn default() -> Self {
        RunCounter {
            way: Way::Flat,
            prev: None,
            runs: 0,
        }
    }
}

impl RunCounter {
    /// Sees the next time.
    pub fn see(&mut self, t: i64) {
        match self.prev {
            None => self.runs += 1,
            Some(prev) => match self.way.step(prev, t) {
                Some(way) => self.way = way,
                None => (self.way, self.runs) = (Way::Flat, self.runs + 1),
            },
        }
        self.prev = Some(t);
    }

    /// Runs so far.
    pub fn runs(&self) -> u64 {
        self.runs
    }
}

/// What the planning scan learned about one file's time column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeScan {
    /// Rows decoded (must equal the footer's row count).
    pub rows: u64,
    /// Rows whose time is not null.
    pub survivors: u64,
    /// The first and last non-null times, in file order.
    pub first: Option<i64>,
    /// See `first`.
    pub last: Option<i64>,
    /// The latest non-null time.
    pub max: Option<i64>,
    /// Non-null times that are not after the one before them in the file (time going backwards,
    /// or repeating).
    pub disorder: u64,
    /// The file's non-null times cut into stretches that only rise or only fall.
    pub runs: RunCounter,
}

impl TimeScan {
    /// Counts the next non-null time, in file order.
    pub(crate) fn see(&mut self, ns: i64) {
        if self.last.is_some_and(|last| ns <= last) {
            self.disorder += 1;
        }
        self.first.get_or_insert(ns);
        self.last = Some(ns);
        self.max = self.max.max(Some(ns));
        self.runs.see(ns);
        self.survivors += 1;
    }
}

/// Reads only the time column of `path` (root `root`), checking every value fits int64
/// nanoseconds, and calls `visit(ns)` for every non-null time in file order.
pub fn scan(
    path: &Path,
    symbol: &str,
    column: &str,
    root: usize,
    kind: TimeKind,
    mut visit: impl FnMut(i64),
) -> Result<TimeScan, SymbolError> {
    let err = |kind| SymbolError::new(symbol, path, kind);
    let file = source::open(path)
        .and_then(|input| input.into_file(Some(&[root])))
        .map_err(err)?;
    let mut out = TimeScan::default();
    let overflow = |row: u64, value: String| {
        err(SymbolErrorKind::TimeOverflow {
            column: column.to_string(),
            row,
            value,
        })
    };
    if kind == TimeKind::Int96 {
        // The low-level reader allocates from page headers as arrow-rs does: vet them first.
        let meta = load_metadata(&file).map_err(err)?;
        vet(&file, meta.metadata(), &[root]).map_err(err)?;
        return no_panic(|| scan_int96(file, root, &mut out, &mut visit))
            .map_err(|m| err(SymbolErrorKind::DecoderPanic(m)))?
            .map(|()| out)
            .map_err(|e| match e {
                Int96Error::Parquet(e) => err(SymbolErrorKind::Parquet {
                    context: format!("decoding time column {column:?}"),
                    message: e.to_string(),
                }),
                Int96Error::Overflow(row, v) => overflow(row, v),
            });
    }
    let what = format!("time column {column:?}");
    let projection = Projection {
        roots: &[root],
        batch_rows: 65_536,
        selection: None,
        what: &what,
    };
    let mut batches = open(file, None, projection).map_err(err)?;
    while let Some(batch) = batches.next_batch().map_err(err)? {
        for_each_ns(batch.column(0), kind, |_, ns| {
            out.see(ns);
            visit(ns);
        })
        .map_err(|(i, v)| overflow(out.rows + i as u64, v))?;
        out.rows += batch.num_rows() as u64;
    }
    Ok(out)
}

enum Int96Error {
    Parquet(parquet::errors::ParquetError),
    Overflow(u64, String),
}

/// INT96 through the low-level column reader, converted exactly (arrow-rs would wrap).
fn scan_int96(
    file: File,
    root: usize,
    out: &mut TimeScan,
    visit: &mut impl FnMut(i64),
) -> Result<(), Int96Error> {
    let general = |m: &str| Int96Error::Parquet(parquet::errors::ParquetError::General(m.into()));
    let reader = SerializedFileReader::new(file).map_err(Int96Error::Parquet)?;
    let descr = reader.metadata().file_metadata().schema_descr_ptr();
    let leaf = (0..descr.num_columns())
        .find(|&l| descr.get_column_root_idx(l) == root)
        .ok_or_else(|| general("no INT96 leaf"))?;
    let max_def = descr.column(leaf).max_def_level();
    let (mut defs, mut values) = (Vec::new(), Vec::new());
    for rg in 0..reader.num_row_groups() {
        let rgr = reader.get_row_group(rg).map_err(Int96Error::Parquet)?;
        let ColumnReader::Int96ColumnReader(mut col) =
            rgr.get_column_reader(leaf).map_err(Int96Error::Parquet)?
        else {
            return Err(general("column is not INT96"));
        };
        loop {
            defs.clear();
            values.clear();
            let (records, _, _) = col
                .read_records(65_536, Some(&mut defs), None, &mut values)
                .map_err(Int96Error::Parquet)?;
            if records == 0 {
                break;
            }
            let mut next = values.iter();
            for i in 0..records {
                let present = max_def == 0 || defs.get(i).is_some_and(|&d| d == max_def);
                if !present {
                    continue;
                }
                let Some(v) = next.next() else {
                    return Err(general("fewer INT96 values than definition levels"));
                };
                let d = v.data();
                let nanos = (u64::from(d[1]) << 32) | u64::from(d[0]);
                let day = i64::from(d[2]);
                let ns = (day - JULIAN_DAY_OF_EPOCH)
                    .checked_mul(NANOS_PER_DAY)
                    .and_then(|x| i64::try_from(nanos).ok().and_then(|n| x.checked_add(n)))
                    .ok_or_else(|| {
                        Int96Error::Overflow(
                            out.rows + i as u64,
                            format!("INT96 julian day {day} + {nanos} ns"),
                        )
                    })?;
                out.see(ns);
                visit(ns);
            }
            out.rows += records as u64;
        }
    }
    Ok(())
}

/// `ns` (UTC nanoseconds since the epoch) as ISO 8601 with its nanoseconds beside it, for
/// messages: `2020-01-07T11:05:00Z (1578395100000000000 ns)`; fractions of a second shown only
/// when there are some.
pub(crate) fn iso(ns: i64) -> String {
    let (secs, frac) = (ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    let frac = match frac {
        0 => String::new(),
        f => format!(".{f:09}").trim_end_matches('0').to_string(),
    };
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}Z ({ns} ns)")
}

#[cfg(test)]
mod iso_tests {
    #[test]
    fn iso_dates_are_civil_dates() {
        assert_eq!(super::iso(0), "1970-01-01T00:00:00Z (0 ns)");
        assert_eq!(
            super::iso(1_578_395_100_000_000_000),
            "2020-01-07T11:05:00Z (1578395100000000000 ns)"
        );
        assert_eq!(
            super::iso(951_782_400_500_000_000),
            "2000-02-29T00:00:00.5Z (951782400500000000 ns)"
        );
        assert_eq!(super::iso(-1), "1969-12-31T23:59:59.999999999Z (-1 ns)");
    }
}
