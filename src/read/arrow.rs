//! The arrow-rs source: a record batch reader over the projected columns, converted by
//! `input::convert`. arrow-rs reads a definition level above the column's maximum as "present",
//! so the definition levels of the projected optional columns are checked first by the fast
//! decoder's level reader (`decode::check_levels`): an out-of-range level is an error naming the
//! file, the column, the row group and the page, on both paths.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use parquet::arrow::arrow_reader::{ArrowReaderMetadata, RowSelection, RowSelector};

use crate::decode::check_levels;
use crate::error::SymbolErrorKind;
use crate::guard::no_panic;
use crate::input::convert::{convert, Float, Selection};
use crate::input::open::{open, Projection};
use crate::input::time::for_each_ns;
use crate::plan::Unit;

use super::emit::Emitter;
use super::ReadContext;

/// Decodes `unit` with arrow-rs; `value_roots` are the value columns in output order.
pub(super) fn read<O: Float>(
    file: File,
    meta: ArrowReaderMetadata,
    unit: &Unit,
    ctx: &ReadContext<'_>,
    value_roots: &[Option<u32>],
    out: &mut Emitter<'_, O>,
) -> Result<(), SymbolErrorKind> {
    // Arrow returns projected columns in file order: map each root to its position.
    let mut roots: Vec<usize> = std::iter::once(unit.time.0)
        .chain(value_roots.iter().flatten().copied())
        .map(|r| r as usize)
        .collect();
    roots.sort_unstable();
    roots.dedup();
    let pos = |root: u32| roots.binary_search(&(root as usize)).ok();
    no_panic(|| levels(&file, &meta, &roots)).map_err(SymbolErrorKind::DecoderPanic)??;
    let mut selection = None;
    if !unit.has_null_times() && unit.skip > 0 {
        // Rows before the cut are never decoded.
        selection = Some(RowSelection::from(vec![
            RowSelector::skip(unit.skip as usize),
            RowSelector::select((unit.rows - unit.skip) as usize),
        ]));
        out.skipped_undecoded(unit.skip);
    }
    let projection = Projection {
        roots: &roots,
        batch_rows: ctx.batch_rows,
        selection,
        what: "the projected columns",
    };
    let mut batches = open(file, Some(meta), projection)?;
    let (mut times, mut valid) = (Vec::new(), Vec::new());
    while !out.stopped() {
        let batch = match batches.next_batch() {
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            Err(SymbolErrorKind::Parquet { message, .. }) => {
                return Err(SymbolErrorKind::Parquet {
                    context: match failing_column(&unit.path, &roots) {
                        Some(column) => format!("decoding column {column:?}"),
                        None => "decoding".to_string(),
                    },
                    message,
                })
            }
            Err(e) => return Err(e),
        };
        let n = batch.num_rows();
        let first_row = out.decoded;
        let t = pos(unit.time.0).ok_or(SymbolErrorKind::Changed)?;
        times.clear();
        times.resize(n, 0);
        valid.clear();
        valid.resize(n, false);
        for_each_ns(batch.column(t), unit.time.1, |i, ns| {
            times[i] = ns;
            valid[i] = true;
        })
        .map_err(|(i, value)| SymbolErrorKind::TimeOverflow {
            column: batch.schema().field(t).name().clone(),
            row: first_row + i as u64,
            value,
        })?;
        let mut fill = |c: usize, sel: &Selection, dst: &mut [O]| {
            let Some(p) = value_roots[c].and_then(pos) else {
                return Ok(());
            };
            convert(batch.column(p).as_ref(), sel, dst).map_err(|dtype| {
                SymbolErrorKind::ColumnType {
                    column: batch.schema().field(p).name().clone(),
                    dtype,
                    role: "a feature",
                }
            })
        };
        out.emit(&times, &valid, &mut fill)?;
    }
    Ok(())
}

/// The definition levels of every projected flat optional column are within its maximum.
fn levels(file: &File, meta: &ArrowReaderMetadata, roots: &[usize]) -> Result<(), SymbolErrorKind> {
    let pq = meta.metadata();
    let descr = pq.file_metadata().schema_descr();
    let file = Arc::new(file.try_clone().map_err(|e| SymbolErrorKind::Io {
        op: "opening",
        message: e.to_string(),
    })?);
    for leaf in 0..descr.num_columns() {
        if roots
            .binary_search(&descr.get_column_root_idx(leaf))
            .is_err()
        {
            continue;
        }
        let col = descr.column(leaf);
        for (g, rg) in pq.row_groups().iter().enumerate() {
            let Some(chunk) = rg.columns().get(leaf) else {
                continue;
            };
            let rows = usize::try_from(rg.num_rows()).unwrap_or(0);
            check_levels(Arc::clone(&file), chunk, &col, rows).map_err(|error| {
                SymbolErrorKind::Decode {
                    column: col.name().to_string(),
                    row_group: g,
                    error,
                }
            })?;
        }
    }
    Ok(())
}

/// After a decode error (several columns are decoded together), finds the column at fault by
/// decoding each projected root alone. A rare path: being precise beats being fast here.
fn failing_column(path: &Path, roots: &[usize]) -> Option<String> {
    for &root in roots {
        let file = File::open(path).ok()?;
        let what = format!("column {root}");
        let projection = Projection {
            roots: &[root],
            batch_rows: 8192,
            selection: None,
            what: &what,
        };
        let Ok(mut batches) = open(file, None, projection) else {
            return Some(format!("column {root}"));
        };
        let name = batches.column_name(0);
        loop {
            match batches.next_batch() {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(_) => return Some(name),
            }
        }
    }
    None
}
