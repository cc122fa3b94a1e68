//! `read`: decode one planned file into output batches.
//!
//! Each reader opens its own handle, decodes only the needed columns (time, target, the features
//! this file has) `batch_rows` at a time, drops null-time rows and the rows `--max-rows` cuts,
//! converts values to the output float type in one pass, and hands each batch to `send`.

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};

use parquet::arrow::arrow_reader::{ParquetRecordBatchReaderBuilder, RowSelection, RowSelector};
use parquet::arrow::ProjectionMask;

use crate::convert::{convert, Float, Selection};
use crate::error::{SymbolError, SymbolErrorKind};
use crate::filter::CrossSection;
use crate::footer::{identity, io_kind, reader_options};
use crate::guard::no_panic;
use crate::plan::{Unit, ABSENT};
use crate::time::for_each_ns;

/// Rows of one batch, ready for the writer: times and values (column-major, one column per
/// output value column: target first when there is one, then features).
#[derive(Debug)]
pub struct Batch<O> {
    /// Index of the unit (file) in the plan.
    pub unit: u32,
    /// Sequence number within the unit, from 0.
    pub seq: u32,
    /// Rows in the batch.
    pub rows: usize,
    /// Time in ns, one per row.
    pub time: Vec<i64>,
    /// `value_columns x rows` values, column-major.
    pub values: Vec<O>,
}

/// What a reader sends the writer.
#[derive(Debug)]
pub enum Msg<O> {
    /// A batch of a unit.
    Batch(Batch<O>),
    /// The unit is complete with this many rows.
    Done {
        /// The unit.
        unit: u32,
        /// Rows sent.
        rows: u64,
    },
    /// The unit failed; nothing more comes from this reader.
    Failed {
        /// The unit.
        unit: u32,
        /// Why.
        error: SymbolError,
    },
}

/// Buffers of a written batch, handed back by the writer so the next batch reuses them (a fresh
/// allocation per batch costs page faults and glibc trimming: ~6% of a build's CPU, measured).
pub type Recycled<O> = (Vec<i64>, Vec<O>);

/// What every reader of a build shares.
#[derive(Debug, Clone, Copy)]
pub struct ReadContext<'a> {
    /// Whether the output has a target column.
    pub target: bool,
    /// Rows per batch.
    pub batch_rows: usize,
    /// Set when the build is being cancelled.
    pub cancel: &'a AtomicBool,
    /// The cross-sectional filters, when on.
    pub filters: Option<&'a CrossSection>,
}

/// Decodes unit `index` of the plan. `send` returns false when the writer is gone (the build is
/// being cancelled); `recycled` yields buffers of written batches.
pub fn read_unit<O: Float>(
    index: u32,
    unit: &Unit,
    symbol: &str,
    ctx: &ReadContext<'_>,
    recycled: &crossbeam_channel::Receiver<Recycled<O>>,
    send: &mut dyn FnMut(Msg<O>) -> bool,
) -> Result<(), SymbolError> {
    let ReadContext {
        target,
        batch_rows,
        cancel,
        filters,
    } = *ctx;
    let err = |kind| SymbolError::new(symbol, &unit.path, kind);
    let parquet_err = |context: &str, e: parquet::errors::ParquetError| {
        err(SymbolErrorKind::Parquet {
            context: context.to_string(),
            message: e.to_string(),
        })
    };
    let file = File::open(&unit.path).map_err(|e| err(io_kind("opening", &e)))?;
    if identity(&file, &unit.path, symbol)? != (unit.size, unit.mtime) {
        return Err(err(SymbolErrorKind::Changed));
    }

    // Projection: time, target, features present here. Arrow returns projected columns in file
    // order, so map each root to its position among the sorted roots.
    let mut roots: Vec<u32> = std::iter::once(unit.time.0)
        .chain((target && unit.target != ABSENT).then_some(unit.target))
        .chain(unit.features.iter().copied().filter(|&r| r != ABSENT))
        .collect();
    roots.sort_unstable();
    roots.dedup();
    let pos = |root: u32| roots.binary_search(&root).ok();

    let mut skip_left = unit.skip;
    let mut cursor = 0usize;
    let reader = no_panic(|| -> Result<_, SymbolError> {
        let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, reader_options())
            .map_err(|e| parquet_err("reading the footer", e))?;
        let mask =
            ProjectionMask::roots(builder.parquet_schema(), roots.iter().map(|&r| r as usize));
        let mut builder = builder.with_projection(mask).with_batch_size(batch_rows);
        if !unit.has_null_times() && unit.skip > 0 {
            // Rows before the cut are never decoded.
            let selectors = vec![
                RowSelector::skip(unit.skip as usize),
                RowSelector::select((unit.rows - unit.skip) as usize),
            ];
            builder = builder.with_row_selection(RowSelection::from(selectors));
            skip_left = 0;
        }
        builder
            .build()
            .map_err(|e| parquet_err("opening the row groups", e))
    })
    .map_err(|m| err(SymbolErrorKind::DecoderPanic(m)))??;

    let value_roots: Vec<u32> = (target.then_some(unit.target))
        .into_iter()
        .chain(unit.features.iter().copied())
        .collect();
    let mut reader = reader;
    let (mut seq, mut sent) = (0u32, 0u64);
    // Rows skipped by the row selection count as consumed: file row numbers stay right.
    let mut decoded = unit.skip - skip_left;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Ok(());
        }
        let Some(batch) =
            no_panic(|| reader.next()).map_err(|m| err(SymbolErrorKind::DecoderPanic(m)))?
        else {
            break;
        };
        let batch = batch.map_err(|e| {
            let context = match failing_column(&unit.path, &roots) {
                Some(column) => format!("decoding column {column:?}"),
                None => "decoding".to_string(),
            };
            parquet_err(&context, e.into())
        })?;
        let n = batch.num_rows();
        decoded += n as u64;
        let time_col = pos(unit.time.0)
            .map(|p| batch.column(p))
            .ok_or_else(|| err(SymbolErrorKind::Changed))?;

        // Rows to keep: non-null times, minus what --max-rows still has to drop.
        let (mut time, mut values) = recycled.try_recv().unwrap_or_default();
        time.clear();
        let sel = if unit.has_null_times() {
            let mut idx = Vec::with_capacity(n);
            for_each_ns(time_col, unit.time.1, |i, ns| {
                if skip_left > 0 {
                    skip_left -= 1;
                } else {
                    idx.push(i as u32);
                    time.push(ns);
                }
            })
            .map_err(|(i, value)| {
                err(time_overflow(
                    &batch,
                    pos(unit.time.0),
                    decoded - n as u64 + i as u64,
                    value,
                ))
            })?;
            Selection::Indices(idx)
        } else {
            let k = (skip_left as usize).min(n);
            skip_left -= k as u64;
            for_each_ns(time_col, unit.time.1, |i, ns| {
                if i >= k {
                    time.push(ns);
                }
            })
            .map_err(|(i, value)| {
                err(time_overflow(
                    &batch,
                    pos(unit.time.0),
                    decoded - n as u64 + i as u64,
                    value,
                ))
            })?;
            Selection::Range(k..n)
        };
        if time.len() != sel.len() {
            // A null time in a file planned without nulls: the file changed under us.
            return Err(err(SymbolErrorKind::Changed));
        }
        let sel = match filters {
            None => sel,
            Some(cs) => {
                // The same decision the planning passes made, row by row.
                let mut tgt = vec![O::NAN; sel.len()];
                if let Some(p) = (target && unit.target != ABSENT)
                    .then(|| pos(unit.target))
                    .flatten()
                {
                    convert(batch.column(p).as_ref(), &sel, &mut tgt).map_err(|dtype| {
                        err(SymbolErrorKind::ColumnType {
                            column: "target".into(),
                            dtype,
                            role: "the target",
                        })
                    })?;
                }
                let rows: Vec<u32> = match &sel {
                    Selection::Range(r) => r.clone().map(|i| i as u32).collect(),
                    Selection::Indices(v) => v.clone(),
                };
                let mut idx = Vec::with_capacity(rows.len());
                let mut kept_time = Vec::with_capacity(rows.len());
                for (k, &i) in rows.iter().enumerate() {
                    if cs.keep(time[k], !tgt[k].is_nan(), unit.symbol, &mut cursor) {
                        idx.push(i);
                        kept_time.push(time[k]);
                    }
                }
                time = kept_time;
                Selection::Indices(idx)
            }
        };
        let m = sel.len();
        if m == 0 {
            continue;
        }
        values.clear();
        values.resize(value_roots.len() * m, O::NAN);
        for (c, &root) in value_roots.iter().enumerate() {
            let Some(p) = (root != ABSENT).then(|| pos(root)).flatten() else {
                continue;
            };
            let column = batch.column(p);
            convert(column.as_ref(), &sel, &mut values[c * m..(c + 1) * m]).map_err(|dtype| {
                err(SymbolErrorKind::ColumnType {
                    column: batch.schema().field(p).name().clone(),
                    dtype,
                    role: "a feature",
                })
            })?;
        }
        let msg = Msg::Batch(Batch {
            unit: index,
            seq,
            rows: m,
            time,
            values,
        });
        if !send(msg) {
            return Ok(());
        }
        seq += 1;
        sent += m as u64;
    }
    // The file must deliver exactly what its footer and the planning scan promised.
    if decoded != unit.rows || sent != unit.out_rows() {
        let (expected, got) = if decoded != unit.rows {
            (unit.rows, decoded)
        } else {
            (unit.out_rows(), sent)
        };
        return Err(err(SymbolErrorKind::RowCount { expected, got }));
    }
    send(Msg::Done {
        unit: index,
        rows: sent,
    });
    Ok(())
}

fn time_overflow(
    batch: &arrow_array::RecordBatch,
    p: Option<usize>,
    row: u64,
    value: String,
) -> SymbolErrorKind {
    SymbolErrorKind::TimeOverflow {
        column: p
            .map(|p| batch.schema().field(p).name().clone())
            .unwrap_or_default(),
        row,
        value,
    }
}

/// After a decode error (several columns are decoded together), finds the column at fault by
/// decoding each projected root alone. A rare path: being precise beats being fast here.
fn failing_column(path: &std::path::Path, roots: &[u32]) -> Option<String> {
    no_panic(|| {
        for &root in roots {
            let file = File::open(path).ok()?;
            let builder =
                ParquetRecordBatchReaderBuilder::try_new_with_options(file, reader_options())
                    .ok()?;
            let name = builder.schema().field(root as usize).name().clone();
            let mask = ProjectionMask::roots(builder.parquet_schema(), [root as usize]);
            let Ok(reader) = builder.with_projection(mask).build() else {
                return Some(name);
            };
            for batch in reader {
                if batch.is_err() {
                    return Some(name);
                }
            }
        }
        None
    })
    .ok()
    .flatten()
}
