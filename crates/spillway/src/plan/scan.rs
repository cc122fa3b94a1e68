//! The passes of the cross-sectional filters and of a shard's count read the time and target
//! columns only: [`scan_unit`] visits every row of a file that the per-symbol steps keep (non-null
//! time, past the `--max-rows` cut) with its target's validity and its [`Repeats`] tag, and
//! [`count_rows`] is the first pass over them, rows per timestamp. The single-machine filters
//! (`filter`) and `spillway count` (`count`) both scan through here, so both see the same rows.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::cancel::Cancel;
use crate::config::FilterOptions;
use crate::error::{Error, Result, SymbolError, SymbolErrorKind};
use crate::input::convert::{convert, Selection};
use crate::input::open::{open, Projection};
use crate::input::source;
use crate::input::time::for_each_ns;
use crate::plan::Unit;

use super::key::Repeats;

/// Bytes per entry of the counting map (key, count, hash-table overhead).
pub(crate) const COUNT_ENTRY: u64 = 48;

/// What a scan calls for each row: `(t, target_ok, tag)`.
pub type Visit<'a> = dyn FnMut(i64, bool, u64) + 'a;

/// A scan of one unit (see [`scanner`]).
pub(crate) type Scan<'a> = dyn Fn(&Unit, &mut Visit<'_>) -> Result<(), SymbolError> + Sync + 'a;

/// Calls `visit(t, target_ok, tag)` for every row of `unit` that the per-symbol steps keep
/// (non-null time, past the `--max-rows` cut), in file order, reading only the time and target
/// columns; `tag` is the row's [`Repeats`] tag.
pub fn scan_unit(unit: &Unit, symbol: &str, visit: &mut Visit<'_>) -> Result<(), SymbolError> {
    let err = |kind| SymbolError::new(symbol, &unit.path, kind);
    let time_root = unit.time.0 as usize;
    let mut roots: Vec<usize> = std::iter::once(time_root)
        .chain(unit.target.map(|t| t as usize))
        .collect();
    roots.sort_unstable();
    let file = source::open(&unit.path)
        .and_then(|input| input.into_file(Some(&roots)))
        .map_err(err)?;
    let time_pos = roots.iter().position(|&r| r == time_root).unwrap_or(0);
    let projection = Projection {
        roots: &roots,
        batch_rows: 65_536,
        selection: None,
        what: "the time and target columns",
    };
    let mut batches = open(file, None, projection).map_err(err)?;
    let name =
        |pos: usize, batch: &arrow_array::RecordBatch| batch.schema().field(pos).name().clone();
    let (mut cut, mut row, mut repeats) = (unit.cut(), 0u64, Repeats::new(unit));
    let mut target = Vec::new();
    while let Some(batch) = batches.next_batch().map_err(err)? {
        let n = batch.num_rows();
        target.clear();
        target.resize(n, f64::NAN);
        if unit.target.is_some() {
            let pos = 1 - time_pos;
            convert(
                batch.column(pos).as_ref(),
                &Selection::Range(0..n),
                &mut target,
            )
            .map_err(|dtype| {
                err(SymbolErrorKind::ColumnType {
                    column: name(pos, &batch),
                    dtype,
                    role: "the target",
                })
            })?;
        }
        for_each_ns(batch.column(time_pos), unit.time.1, |i, ns| {
            if cut.keep() {
                visit(ns, !target[i].is_nan(), repeats.tag(ns, row + i as u64));
            }
        })
        .map_err(|(i, value)| {
            err(SymbolErrorKind::TimeOverflow {
                column: name(time_pos, &batch),
                row: row + i as u64,
                value,
            })
        })?;
        row += n as u64;
    }
    Ok(())
}

/// Scans a unit's time and target columns ([`scan_unit`]), naming it by `symbols[code]`. Every
/// pass scans unit by unit: a cancelled build skips the units left, then stops.
pub(crate) fn scanner<'a>(
    symbols: &'a [String],
    cancel: &'a Cancel,
) -> impl Fn(&Unit, &mut Visit<'_>) -> Result<(), SymbolError> + Sync + 'a {
    move |u, visit| match cancel.is_cancelled() {
        true => Ok(()),
        false => scan_unit(u, &symbols[u.symbol as usize], visit),
    }
}

/// What [`count_rows`] names when the filters' count outgrows its memory.
pub(crate) const CROSS_SECTION: &str = "cross-sectional filters";

/// The rows the filters' first pass counts: those the target filter keeps.
pub(crate) fn after_target(
    opts: FilterOptions,
) -> impl Fn(&Unit, i64, bool, u64, &mut usize) -> bool + Sync {
    move |_, _, ok, _, _| ok || !opts.drop_null_target
}

/// Which scanned rows a count counts: `(unit, t, target_ok, tag, cursor)`, `cursor` one per unit
/// (see [`CrossSection::keep`](super::filter::CrossSection::keep)).
pub(crate) type Keep<'a> = dyn Fn(&Unit, i64, bool, u64, &mut usize) -> bool + Sync + 'a;

/// Rows per timestamp among the rows `keep` takes, in per-thread maps merged at the end;
/// refused when the map outgrows `limit` bytes (`what` says what needed the count).
pub(crate) fn count_rows(
    units: &[Unit],
    keep: &Keep<'_>,
    limit: u64,
    scan: &Scan<'_>,
    what: &str,
) -> Result<HashMap<i64, u32>> {
    let over = AtomicBool::new(false);
    let counts = units
        .par_iter()
        .try_fold(HashMap::<i64, u32>::new, |mut m, u| {
            let mut cursor = 0usize;
            scan(u, &mut |t, ok, tag| {
                if keep(u, t, ok, tag, &mut cursor) {
                    *m.entry(t).or_default() += 1;
                }
            })?;
            if m.len() as u64 * COUNT_ENTRY > limit {
                over.store(true, Ordering::Relaxed);
            }
            Ok::<_, SymbolError>(m)
        })
        .try_reduce(HashMap::new, |a, b| {
            let (small, mut big) = if a.len() < b.len() { (a, b) } else { (b, a) };
            for (t, n) in small {
                *big.entry(t).or_default() += n;
            }
            Ok(big)
        })?;
    let count_bytes = counts.len() as u64 * COUNT_ENTRY;
    if over.load(Ordering::Relaxed) || count_bytes > limit {
        return Err(Error::FilterMemory(format!(
            "{what}: {} distinct timestamps need about {} MiB to count, over half the memory budget; raise --memory-budget",
            counts.len(),
            count_bytes >> 20
        )));
    }
    Ok(counts)
}
