//! `read`: decode one planned file into output batches.
//!
//! Each reader opens its own handle and decodes only the needed columns (time, target, the
//! features this file has) `batch_rows` at a time, through one of two sources: the fast decoder
//! (`decode`: flat numeric columns with plain or dictionary pages, converted in place) or, for
//! anything else, arrow-rs's record batch reader with the fused conversion of `convert`. Both feed
//! the same [`Emitter`], which drops null-time rows, the rows `--max-rows` cuts and the rows the
//! cross-sectional filters remove, and hands each batch to `send`.

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};

use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::arrow::ProjectionMask;

use crate::convert::{convert, Float, Selection};
use crate::error::{SymbolError, SymbolErrorKind};
use crate::filter::CrossSection;
use crate::footer::{identity, io_kind, load_metadata, reader_options};
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
    /// Set when the build is being stopped (the writer failed).
    pub cancel: &'a AtomicBool,
    /// The caller's cancellation.
    pub user_cancel: &'a crate::cancel::Cancel,
    /// The cross-sectional filters, when on.
    pub filters: Option<&'a CrossSection>,
    /// Use the fast decoder where a file allows it (else always arrow-rs).
    pub fast: bool,
}

/// Which decoder read a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The fast decoder (`decode`).
    Fast,
    /// arrow-rs's record batch reader.
    Arrow,
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
) -> Result<Source, SymbolError> {
    let err = |kind| SymbolError::new(symbol, &unit.path, kind);
    let file = File::open(&unit.path).map_err(|e| err(io_kind("opening", &e)))?;
    if identity(&file, &unit.path, symbol)? != (unit.size, unit.mtime) {
        return Err(err(SymbolErrorKind::Changed));
    }
    let meta = load_metadata(&file).map_err(err)?;
    // Value columns: the target (when the output has one), then the features (ABSENT: NaN).
    let value_roots: Vec<u32> = (ctx.target.then_some(unit.target))
        .into_iter()
        .chain(unit.features.iter().copied())
        .collect();
    let mut out = Emitter::new(index, unit, ctx, recycled, send, value_roots.len());
    let fast = if ctx.fast {
        crate::decode::fast_columns(&meta, unit, &value_roots)
    } else {
        None
    };
    let source = match fast {
        Some(plan) => {
            no_panic(|| crate::decode::read_fast(file, &meta, unit, &plan, ctx, &mut out))
                .map_err(|m| err(SymbolErrorKind::DecoderBug(m)))?
                .map_err(|(context, message)| err(SymbolErrorKind::Parquet { context, message }))?;
            Source::Fast
        }
        None => {
            read_arrow(file, meta, unit, symbol, ctx, &value_roots, &mut out)?;
            Source::Arrow
        }
    };
    out.finish().map_err(err)?;
    Ok(source)
}

/// Turns decoded batches into output batches: applies the row selection (null times, the
/// `--max-rows` cut, the cross-sectional filters), gathers values, sends, and checks at the end
/// that the file delivered exactly what the plan counted.
pub struct Emitter<'a, O> {
    index: u32,
    unit: &'a Unit,
    ctx: &'a ReadContext<'a>,
    recycled: &'a crossbeam_channel::Receiver<Recycled<O>>,
    send: &'a mut dyn FnMut(Msg<O>) -> bool,
    value_columns: usize,
    skip_left: u64,
    cursor: usize,
    seq: u32,
    sent: u64,
    /// Rows of the file consumed so far.
    pub(crate) decoded: u64,
    gone: bool,
    target: Vec<O>,
}

/// `fill(c, sel, out)`: decode this batch's rows of value column `c` and write the selected ones
/// into `out`. Called exactly once per column per batch (decoders stay aligned), even when no row
/// is selected.
pub type Fill<'f, O> = dyn FnMut(usize, &Selection, &mut [O]) -> Result<(), (String, String)> + 'f;

impl<'a, O: Float> Emitter<'a, O> {
    fn new(
        index: u32,
        unit: &'a Unit,
        ctx: &'a ReadContext<'a>,
        recycled: &'a crossbeam_channel::Receiver<Recycled<O>>,
        send: &'a mut dyn FnMut(Msg<O>) -> bool,
        value_columns: usize,
    ) -> Self {
        Emitter {
            index,
            unit,
            ctx,
            recycled,
            send,
            value_columns,
            skip_left: unit.skip,
            cursor: 0,
            seq: 0,
            sent: 0,
            decoded: 0,
            gone: false,
            target: Vec::new(),
        }
    }

    /// Rows of the file consumed without being decoded (a row selection skipped them).
    pub(crate) fn skipped_undecoded(&mut self, rows: u64) {
        self.decoded += rows;
        self.skip_left -= rows;
    }

    /// Whether the build is being cancelled or the writer is gone: stop decoding.
    pub fn stopped(&self) -> bool {
        self.gone || self.ctx.cancel.load(Ordering::Relaxed) || self.ctx.user_cancel.is_cancelled()
    }

    /// One decoded batch of `times.len()` rows: `times[i]` is row `i`'s time in ns where
    /// `valid[i]`.
    pub fn emit(
        &mut self,
        times: &[i64],
        valid: &[bool],
        fill: &mut Fill<'_, O>,
    ) -> Result<(), (String, String)> {
        let n = times.len();
        let first_row = self.decoded;
        self.decoded += n as u64;
        let (mut time, mut values) = self.recycled.try_recv().unwrap_or_default();
        time.clear();
        // Rows to keep: non-null times, minus what --max-rows still has to drop.
        let base = if self.unit.has_null_times() {
            let mut idx = Vec::with_capacity(n);
            for i in (0..n).filter(|&i| valid[i]) {
                if self.skip_left > 0 {
                    self.skip_left -= 1;
                } else {
                    idx.push(i as u32);
                    time.push(times[i]);
                }
            }
            Selection::Indices(idx)
        } else {
            if let Some(i) = valid.iter().position(|v| !v) {
                // A null time in a file planned without any: it changed under us.
                return Err((
                    "reading the time column".into(),
                    format!(
                        "row {}: a null time the plan did not see; the file changed",
                        first_row + i as u64
                    ),
                ));
            }
            let k = (self.skip_left as usize).min(n);
            self.skip_left -= k as u64;
            time.extend_from_slice(&times[k..]);
            Selection::Range(k..n)
        };
        // The cross-sectional filters: the decision the planning passes made, row by row.
        let (sel, picked) = match self.ctx.filters {
            None => (base, None),
            Some(cs) => {
                let need_target = cs.options().drop_null_target && self.ctx.target;
                self.target.clear();
                self.target.resize(base.len(), O::NAN);
                if need_target {
                    fill(0, &base, &mut self.target)?;
                }
                let rows: Vec<u32> = match &base {
                    Selection::Range(r) => r.clone().map(|i| i as u32).collect(),
                    Selection::Indices(v) => v.clone(),
                };
                let (mut idx, mut pick, mut kept_time) = (Vec::new(), Vec::new(), Vec::new());
                for (k, &i) in rows.iter().enumerate() {
                    let ok = !need_target || !self.target[k].is_nan();
                    if cs.keep(time[k], ok, self.unit.symbol, &mut self.cursor) {
                        idx.push(i);
                        pick.push(k);
                        kept_time.push(time[k]);
                    }
                }
                time = kept_time;
                (Selection::Indices(idx), need_target.then_some(pick))
            }
        };
        let m = sel.len();
        values.clear();
        values.resize(self.value_columns * m, O::NAN);
        for c in 0..self.value_columns {
            let out = &mut values[c * m..(c + 1) * m];
            match (&picked, c) {
                (Some(pick), 0) => {
                    for (o, &k) in out.iter_mut().zip(pick) {
                        *o = self.target[k];
                    }
                }
                _ => fill(c, &sel, out)?,
            }
        }
        if m == 0 {
            return Ok(());
        }
        let batch = Batch {
            unit: self.index,
            seq: self.seq,
            rows: m,
            time,
            values,
        };
        if !(self.send)(Msg::Batch(batch)) {
            self.gone = true;
            return Ok(());
        }
        self.seq += 1;
        self.sent += m as u64;
        Ok(())
    }

    /// After the last batch: the file must have delivered exactly what its footer and the plan
    /// promised; then the unit is done.
    fn finish(self) -> Result<(), SymbolErrorKind> {
        if self.stopped() {
            return Ok(());
        }
        let unit = self.unit;
        if self.decoded != unit.rows || self.sent != unit.out_rows() {
            let (expected, got) = if self.decoded != unit.rows {
                (unit.rows, self.decoded)
            } else {
                (unit.out_rows(), self.sent)
            };
            return Err(SymbolErrorKind::RowCount { expected, got });
        }
        (self.send)(Msg::Done {
            unit: self.index,
            rows: self.sent,
        });
        Ok(())
    }
}

/// The arrow-rs source: a record batch reader over the projected columns.
fn read_arrow<O: Float>(
    file: File,
    meta: ArrowReaderMetadata,
    unit: &Unit,
    symbol: &str,
    ctx: &ReadContext<'_>,
    value_roots: &[u32],
    out: &mut Emitter<'_, O>,
) -> Result<(), SymbolError> {
    let err = |kind| SymbolError::new(symbol, &unit.path, kind);
    let parquet_err = |context: &str, e: parquet::errors::ParquetError| {
        err(SymbolErrorKind::Parquet {
            context: context.to_string(),
            message: e.to_string(),
        })
    };
    // Arrow returns projected columns in file order: map each root to its position.
    let mut roots: Vec<u32> = std::iter::once(unit.time.0)
        .chain(value_roots.iter().copied().filter(|&r| r != ABSENT))
        .collect();
    roots.sort_unstable();
    roots.dedup();
    let pos = |root: u32| roots.binary_search(&root).ok();
    let reader = no_panic(|| -> Result<_, SymbolError> {
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta);
        let mask =
            ProjectionMask::roots(builder.parquet_schema(), roots.iter().map(|&r| r as usize));
        let mut builder = builder
            .with_projection(mask)
            .with_batch_size(ctx.batch_rows);
        if !unit.has_null_times() && unit.skip > 0 {
            // Rows before the cut are never decoded.
            let selectors = vec![
                RowSelector::skip(unit.skip as usize),
                RowSelector::select((unit.rows - unit.skip) as usize),
            ];
            builder = builder.with_row_selection(RowSelection::from(selectors));
            out.skipped_undecoded(unit.skip);
        }
        builder
            .build()
            .map_err(|e| parquet_err("opening the row groups", e))
    })
    .map_err(|m| err(SymbolErrorKind::DecoderPanic(m)))??;
    let mut reader = reader;
    let (mut times, mut valid) = (Vec::new(), Vec::new());
    while !out.stopped() {
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
        let first_row = out.decoded;
        let time_col = pos(unit.time.0)
            .map(|p| batch.column(p))
            .ok_or_else(|| err(SymbolErrorKind::Changed))?;
        times.clear();
        times.resize(n, 0);
        valid.clear();
        valid.resize(n, false);
        for_each_ns(time_col, unit.time.1, |i, ns| {
            times[i] = ns;
            valid[i] = true;
        })
        .map_err(|(i, value)| {
            err(time_overflow(
                &batch,
                pos(unit.time.0),
                first_row + i as u64,
                value,
            ))
        })?;
        let mut fill = |c: usize, sel: &Selection, dst: &mut [O]| -> Result<(), (String, String)> {
            let root = value_roots[c];
            let Some(p) = (root != ABSENT).then(|| pos(root)).flatten() else {
                return Ok(());
            };
            convert(batch.column(p).as_ref(), sel, dst).map_err(|dtype| {
                (
                    format!("column {:?}", batch.schema().field(p).name()),
                    format!("type {dtype} is not numeric"),
                )
            })
        };
        out.emit(&times, &valid, &mut fill)
            .map_err(|(context, message)| err(SymbolErrorKind::Parquet { context, message }))?;
    }
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
