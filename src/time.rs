//! The time column: conversion of every supported type to int64 nanoseconds since the epoch (UTC),
//! with overflow refused (never wrapped or clamped), and the planning scan that counts surviving
//! rows per file by reading that one column.

use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::TimeUnit;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use parquet::column::reader::ColumnReader;
use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::error::{SymbolError, SymbolErrorKind};
use crate::footer::{io_kind, reader_options};
use crate::guard::no_panic;
use crate::schema::TimeKind;

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
        factor: i64,
        unit: &str,
        visit: &mut impl FnMut(usize, i64),
    ) -> Result<(), Overflow> {
        let nulls = array.logical_nulls();
        for (i, &v) in values.iter().enumerate() {
            if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                continue;
            }
            let v: i64 = v.into();
            let ns = v
                .checked_mul(factor)
                .ok_or_else(|| (i, format!("{v} {unit}")))?;
            visit(i, ns);
        }
        Ok(())
    }
    let f = kind.factor();
    let u = kind.unit_name();
    let a = array.as_ref();
    match kind {
        TimeKind::Timestamp(TimeUnit::Second) => each(
            a.as_primitive::<TimestampSecondType>().values(),
            a,
            f,
            u,
            &mut visit,
        ),
        TimeKind::Timestamp(TimeUnit::Millisecond) => each(
            a.as_primitive::<TimestampMillisecondType>().values(),
            a,
            f,
            u,
            &mut visit,
        ),
        TimeKind::Timestamp(TimeUnit::Microsecond) => each(
            a.as_primitive::<TimestampMicrosecondType>().values(),
            a,
            f,
            u,
            &mut visit,
        ),
        // INT96 arrives as nanoseconds; planning checked every value exactly (see `scan`).
        TimeKind::Timestamp(TimeUnit::Nanosecond) | TimeKind::Int96 => each(
            a.as_primitive::<TimestampNanosecondType>().values(),
            a,
            f,
            u,
            &mut visit,
        ),
        TimeKind::Date32 => each(a.as_primitive::<Date32Type>().values(), a, f, u, &mut visit),
        TimeKind::Date64 => each(a.as_primitive::<Date64Type>().values(), a, f, u, &mut visit),
    }
}

/// What the planning scan learned about one file's time column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeScan {
    /// Rows decoded (must equal the footer's row count).
    pub rows: u64,
    /// Rows whose time is not null.
    pub survivors: u64,
}

/// Reads only the time column of `path` (root `root`, leaf `leaf`), checking every value fits
/// int64 nanoseconds, and calls `visit(ns)` for every non-null time in file order.
pub fn scan(
    path: &Path,
    symbol: &str,
    column: &str,
    root: usize,
    kind: TimeKind,
    mut visit: impl FnMut(i64),
) -> Result<TimeScan, SymbolError> {
    let err = |kind| SymbolError::new(symbol, path, kind);
    let parquet_err = |e: parquet::errors::ParquetError| {
        err(SymbolErrorKind::Parquet {
            context: format!("decoding time column {column:?}"),
            message: e.to_string(),
        })
    };
    let file = File::open(path).map_err(|e| err(io_kind("opening", &e)))?;
    let mut out = TimeScan::default();
    let overflow = |row: u64, value: String| {
        err(SymbolErrorKind::TimeOverflow {
            column: column.to_string(),
            row,
            value,
        })
    };
    if kind == TimeKind::Int96 {
        return no_panic(|| scan_int96(file, root, &mut visit))
            .map_err(|m| err(SymbolErrorKind::DecoderPanic(m)))?
            .map_err(|e| match e {
                Int96Error::Parquet(e) => parquet_err(e),
                Int96Error::Overflow(row, v) => overflow(row, v),
            });
    }
    let result = no_panic(|| -> Result<TimeScan, SymbolError> {
        let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, reader_options())
            .map_err(parquet_err)?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), [root]);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(65_536)
            .build()
            .map_err(parquet_err)?;
        for batch in reader {
            let batch = batch.map_err(|e| parquet_err(e.into()))?;
            let col = batch.column(0);
            for_each_ns(col, kind, |_, ns| {
                out.survivors += 1;
                visit(ns);
            })
            .map_err(|(i, v)| overflow(out.rows + i as u64, v))?;
            out.rows += batch.num_rows() as u64;
        }
        Ok(out)
    });
    result.map_err(|m| err(SymbolErrorKind::DecoderPanic(m)))?
}

enum Int96Error {
    Parquet(parquet::errors::ParquetError),
    Overflow(u64, String),
}

/// INT96 through the low-level column reader, converted exactly (arrow-rs would wrap).
fn scan_int96(
    file: File,
    root: usize,
    visit: &mut impl FnMut(i64),
) -> Result<TimeScan, Int96Error> {
    let reader = SerializedFileReader::new(file).map_err(Int96Error::Parquet)?;
    let descr = reader.metadata().file_metadata().schema_descr_ptr();
    let leaf = (0..descr.num_columns())
        .find(|&l| descr.get_column_root_idx(l) == root)
        .ok_or_else(|| {
            Int96Error::Parquet(parquet::errors::ParquetError::General(
                "no INT96 leaf".into(),
            ))
        })?;
    let max_def = descr.column(leaf).max_def_level();
    let mut out = TimeScan::default();
    let (mut defs, mut values) = (Vec::new(), Vec::new());
    for rg in 0..reader.num_row_groups() {
        let rgr = reader.get_row_group(rg).map_err(Int96Error::Parquet)?;
        let ColumnReader::Int96ColumnReader(mut col) =
            rgr.get_column_reader(leaf).map_err(Int96Error::Parquet)?
        else {
            return Err(Int96Error::Parquet(parquet::errors::ParquetError::General(
                "column is not INT96".into(),
            )));
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
                    return Err(Int96Error::Parquet(parquet::errors::ParquetError::General(
                        "fewer INT96 values than definition levels".into(),
                    )));
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
                out.survivors += 1;
                visit(ns);
            }
            out.rows += records as u64;
        }
    }
    Ok(out)
}
