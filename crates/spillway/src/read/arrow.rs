//! The arrow-rs source: a record batch reader over the projected columns, converted by
//! `input::convert`. arrow-rs reads a definition level above the column's maximum as "present",
//! so the definition levels of the projected optional columns are checked first by the fast
//! decoder's level reader (`decode::check_levels`): an out-of-range level is an error naming the
//! file, the column, the row group and the page, on both paths.

use std::fs::File;

use parquet::arrow::arrow_reader::{ArrowReaderMetadata, RowSelection, RowSelector};

use crate::decode::check_levels;
use crate::error::SymbolErrorKind;
use crate::guard::no_panic;
use crate::input::convert::{convert, Float, Selection};
use crate::input::footer::load_metadata;
use crate::input::open::{open, Projection};
use crate::input::time::for_each_ns;
use crate::plan::files::chunk_of;
use crate::plan::Unit;

use super::select::Selector;
use super::send::Out;
use super::{ReadContext, Reader};

/// The top-level columns a task owning value columns `owned` decodes (`value_roots` in output
/// order): the time, its value columns, and the target when a filter needs it; sorted.
pub(super) fn roots(
    unit: &Unit,
    ctx: &ReadContext<'_>,
    value_roots: &[Option<u32>],
    owned: &std::ops::Range<usize>,
) -> Vec<usize> {
    let need_target = Selector::new(unit, ctx.filters).needs_target(ctx.target);
    let wanted = |c: usize| owned.contains(&c) || (c == 0 && need_target);
    let mut roots: Vec<usize> = std::iter::once(unit.time.0)
        .chain(
            value_roots
                .iter()
                .enumerate()
                .filter(|&(c, _)| wanted(c))
                .filter_map(|(_, r)| *r),
        )
        .map(|r| r as usize)
        .collect();
    roots.sort_unstable();
    roots.dedup();
    roots
}

/// Decodes `unit` with arrow-rs: the columns `roots` ([`roots`]) of `file`.
pub(super) fn read<O: Float>(
    file: File,
    unit: &Unit,
    ctx: &ReadContext<'_>,
    roots: &[usize],
    reader: &mut Reader,
    out: &mut Out<'_, O>,
) -> Result<(), SymbolErrorKind> {
    let meta = load_metadata(&file)?;
    // Arrow returns projected columns in file order: map each root to its position.
    let pos = |root: u32| roots.binary_search(&(root as usize)).ok();
    let value_roots = unit.value_roots(ctx.target);
    // Rows before the cut are never decoded (when the file has no null times); their pages are
    // not checked either, as the fast decoder skips them.
    let cut = match unit.has_null_times() {
        true => 0,
        false => unit.skip,
    };
    no_panic(|| levels(&file, &meta, roots, cut, reader))
        .map_err(SymbolErrorKind::DecoderPanic)??;
    let mut sel = Selector::new(unit, ctx.filters);
    let need_target = sel.needs_target(ctx.target);
    let mut selection = None;
    if !unit.has_null_times() && unit.skip > 0 {
        // Rows before the cut are never decoded.
        selection = Some(RowSelection::from(vec![
            RowSelector::skip(unit.skip as usize),
            RowSelector::select((unit.rows - unit.skip) as usize),
        ]));
        sel.drop_front(unit.skip);
        out.decoded += unit.skip;
    }
    let projection = Projection {
        roots,
        batch_rows: ctx.batch_rows,
        selection,
        what: "the projected columns",
    };
    // Kept to find the column at fault after an error (an object's staged copy has no path).
    let again = file.try_clone().ok();
    let mut batches = open(file, Some(meta), projection)?;
    let (mut times, mut valid, mut targets) = (Vec::new(), Vec::new(), Vec::<O>::new());
    while !out.stopped() {
        let batch = match batches.next_batch() {
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            Err(SymbolErrorKind::Parquet { message, .. }) => {
                return Err(SymbolErrorKind::Parquet {
                    context: match failing_column(again.as_ref(), roots) {
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
        out.decoded += n as u64;
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
        if !unit.has_null_times() && valid.iter().any(|v| !v) {
            // A null time in a file planned without any: it changed under us.
            return Err(SymbolErrorKind::Changed);
        }
        let column_type = |p: usize| {
            let column = batch.schema().field(p).name().clone();
            move |dtype| SymbolErrorKind::ColumnType {
                column,
                dtype,
                role: "a feature",
            }
        };
        targets.clear();
        targets.resize(n, O::NAN);
        if let (true, Some(p)) = (need_target, value_roots[0].and_then(pos)) {
            let all = Selection::Range(0..n);
            convert(batch.column(p).as_ref(), &all, &mut targets).map_err(column_type(p))?;
        }
        // The rows that stay, and their times.
        let kept = match (unit.has_null_times(), sel.cut_only()) {
            (false, true) => {
                let k = sel.drop_front(n as u64) as usize;
                Selection::Range(k..n)
            }
            _ => Selection::Indices(
                (0..n)
                    .filter(|&i| sel.keep(valid[i].then_some(times[i]), !targets[i].is_nan()))
                    .map(|i| i as u32)
                    .collect(),
            ),
        };
        let mut kept_times = out.times();
        kept_times.resize(kept.len(), 0);
        kept.gather(&times, &mut kept_times);
        out.send_times(kept_times);
        for c in out.owned.clone() {
            let root = &value_roots[c];
            let mut v = out.values();
            v.resize(kept.len(), O::NAN);
            if let Some(p) = root.and_then(pos) {
                convert(batch.column(p).as_ref(), &kept, &mut v).map_err(column_type(p))?;
            }
            out.send_values(c, v);
        }
    }
    Ok(())
}

/// The definition levels of every projected flat optional column are within its maximum.
fn levels(
    file: &File,
    meta: &ArrowReaderMetadata,
    roots: &[usize],
    cut: u64,
    reader: &mut Reader,
) -> Result<(), SymbolErrorKind> {
    let pq = meta.metadata();
    let descr = pq.file_metadata().schema_descr();
    for leaf in 0..descr.num_columns() {
        let col = descr.column(leaf);
        let flat_optional = col.max_def_level() == 1 && col.max_rep_level() == 0;
        if !flat_optional
            || roots
                .binary_search(&descr.get_column_root_idx(leaf))
                .is_err()
        {
            continue;
        }
        let mut skip = cut;
        let len = file.metadata().map_or(0, |m| m.len());
        for (g, rg) in pq.row_groups().iter().enumerate() {
            let Some(chunk) = rg
                .columns()
                .get(leaf)
                .and_then(|c| chunk_of(c, rg.num_rows(), len))
            else {
                continue;
            };
            let here = skip.min(chunk.rows as u64);
            skip -= here;
            let (codecs, buffers) = (&mut reader.codecs, &mut reader.buffers);
            check_levels(file, &chunk, here as usize, codecs, buffers).map_err(|error| {
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
fn failing_column(file: Option<&File>, roots: &[usize]) -> Option<String> {
    for &root in roots {
        let file = file?.try_clone().ok()?;
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
