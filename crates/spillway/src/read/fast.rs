//! The fast source, one column chunk at a time. For each row group: the time column (and the
//! target, when `--drop-null-target` needs it) decides which rows stay, and their times go out;
//! then each value column is decoded alone, straight into slices of its kept rows. A reader holds
//! one column's decoder and one slice, whatever the column count. Rows before the `--max-rows`
//! cut are skipped, whole pages without decompressing them.

use crate::decode::{ColumnDecoder, Decoded, ReadAt};
use crate::error::SymbolErrorKind;
use crate::guard::no_panic;
use crate::input::convert::Float;
use crate::plan::{FastColumn, FastPlan, Unit};

use super::select::{Rows, Selector};
use super::send::Out;
use super::{ReadContext, Reader};

/// Rows decoded per step where a bitmap selects rows: bounds the scratch whatever the row group.
const STEP: usize = 8192;

/// Decodes `unit` as `plan` says. A panic in our decoder is a bug.
pub(super) fn read<O: Float>(
    file: &dyn ReadAt,
    unit: &Unit,
    plan: &FastPlan,
    ctx: &ReadContext<'_>,
    reader: &mut Reader,
    out: &mut Out<'_, O>,
) -> Result<(), SymbolErrorKind> {
    no_panic(|| row_groups(file, unit, plan, ctx, reader, out))
        .map_err(SymbolErrorKind::DecoderBug)?
}

/// The byte runs a task of `unit` reads, in the phases [`Input::expect`] takes, found by the
/// conditions the loop below reads by: per row group that an output row comes from, the time column (with the target when a
/// filter needs it first) unless the `--max-rows` cut drops the whole row group or another task
/// sends the times, then each owned value column, contiguous chunks merged.
///
/// [`Input::expect`]: crate::input::source::Input::expect
pub(super) fn task_runs(
    unit: &Unit,
    plan: &FastPlan,
    ctx: &ReadContext<'_>,
    owned: std::ops::Range<usize>,
    sends_time: bool,
) -> Vec<Vec<std::ops::Range<u64>>> {
    let sel = Selector::new(unit, ctx.filters);
    let target_first = sel.needs_target(ctx.target);
    let contiguous = !unit.has_null_times() && sel.cut_only();
    let mut cut = unit.cut();
    let run = |col: &FastColumn, g: usize| {
        col.chunks
            .get(g)
            .map_or(0..0, |c| c.start..c.start.saturating_add(c.len))
    };
    let mut phases: Vec<Vec<std::ops::Range<u64>>> = Vec::new();
    for (g, &rows) in plan.row_groups.iter().enumerate() {
        if unit.dead_group(g).is_some() {
            continue;
        }
        if contiguous {
            if cut.drop_front(rows as u64) == rows as u64 {
                continue;
            }
            if sends_time {
                phases.push(vec![run(&plan.time, g)]);
            }
        } else {
            let mut first = vec![run(&plan.time, g)];
            if let (true, Some(Some(col))) = (target_first, plan.values.first()) {
                first.push(run(col, g));
            }
            phases.push(first);
        }
        let mut merging = false;
        for c in owned.clone() {
            let Some(Some(col)) = plan.values.get(c) else {
                continue;
            };
            if c == 0 && target_first {
                continue;
            }
            let r = run(col, g);
            match phases.last_mut().and_then(|p| p.last_mut()) {
                Some(last) if merging && last.end == r.start => last.end = r.end,
                _ => phases.push(vec![r]),
            }
            merging = true;
        }
    }
    phases
}

/// One row group's decoding context.
struct Group<'a, 'c> {
    file: &'a dyn ReadAt,
    ctx: &'a ReadContext<'c>,
    g: usize,
    rows: usize,
}

impl Group<'_, '_> {
    /// A decode error in output column `column` (0 time, 2 + c value column c).
    fn error(&self, column: usize) -> impl Fn(crate::error::DecodeError) -> SymbolErrorKind + '_ {
        move |error| SymbolErrorKind::Decode {
            column: self.ctx.columns[column].clone(),
            row_group: self.g,
            error,
        }
    }

    fn decoder<T: Decoded>(&self, col: &FastColumn, reader: &mut Reader) -> ColumnDecoder<T> {
        let buffers = std::mem::take(&mut reader.buffers);
        ColumnDecoder::new(&col.chunks[self.g], col.phys, col.optional, buffers)
    }
}

fn row_groups<O: Float>(
    file: &dyn ReadAt,
    unit: &Unit,
    plan: &FastPlan,
    ctx: &ReadContext<'_>,
    reader: &mut Reader,
    out: &mut Out<'_, O>,
) -> Result<(), SymbolErrorKind> {
    let mut sel = Selector::new(unit, ctx.filters);
    let target_first = sel.needs_target(ctx.target);
    let mut scratch: Vec<O> = Vec::new();
    for (g, &rows) in plan.row_groups.iter().enumerate() {
        if out.stopped() {
            break;
        }
        if let Some(max) = unit.dead_group(g) {
            sel.pass(rows as u64, max);
            out.decoded += rows as u64;
            continue;
        }
        let group = Group { file, ctx, g, rows };
        let keep = select(&group, unit, plan, &mut sel, target_first, reader, out)?;
        if keep.count() > 0 {
            for c in out.owned.clone() {
                let col = &plan.values[c];
                if (c == 0 && target_first) || out.stopped() {
                    continue;
                }
                match col {
                    None => absent(&keep, c, ctx, out),
                    Some(col) => column(&group, c, col, &keep, reader, &mut scratch, out)?,
                }
            }
        }
        reader.words = keep.into_words();
        out.decoded += rows as u64;
    }
    Ok(())
}

/// Pass 1 of a row group: which rows stay. Their times (and, when `target_first`, their targets)
/// are sent.
fn select<O: Float>(
    group: &Group<'_, '_>,
    unit: &Unit,
    plan: &FastPlan,
    sel: &mut Selector<'_>,
    target_first: bool,
    reader: &mut Reader,
    out: &mut Out<'_, O>,
) -> Result<Rows, SymbolErrorKind> {
    let (file, rows, batch) = (group.file, group.rows, group.ctx.batch_rows);
    let terr = group.error(0);
    if !unit.has_null_times() && sel.cut_only() {
        // No null times, no filters: the rows after the cut, contiguous.
        let k = sel.drop_front(rows as u64) as usize;
        // Only the unit's first task sends the time column; the others need not read it.
        if k == rows || !out.sends_time() {
            return Ok(Rows::Range(k..rows));
        }
        let mut time: ColumnDecoder<i64> = group.decoder(&plan.time, reader);
        time.skip(file, &mut reader.codecs, k).map_err(&terr)?;
        let (mut raw, mut valid) = (Vec::new(), Vec::new());
        let mut done = k;
        while done < rows && !out.stopped() {
            let n = batch.min(rows - done);
            raw.clear();
            raw.resize(n, 0);
            valid.clear();
            valid.resize(n, true);
            time.read(file, &mut reader.codecs, &mut raw, Some(&mut valid))
                .map_err(&terr)?;
            if valid.iter().any(|v| !v) {
                // A null time in a file planned without any: it changed under us.
                return Err(SymbolErrorKind::Changed);
            }
            let mut times = out.times();
            scale(unit, group, &raw, out.decoded + done as u64, &mut times)?;
            out.send_times(times);
            done += n;
        }
        if !out.stopped() {
            reader.buffers = time.finish(file).map_err(&terr)?;
        }
        return Ok(Rows::Range(k..rows));
    }
    // Row by row: null times, the cut, the filters.
    let mut keep = Rows::bits(rows, std::mem::take(&mut reader.words));
    let mut time: ColumnDecoder<i64> = group.decoder(&plan.time, reader);
    let mut target: Option<ColumnDecoder<O>> = match (target_first, plan.values.first()) {
        (true, Some(Some(col))) => Some(ColumnDecoder::new(
            &col.chunks[group.g],
            col.phys,
            col.optional,
            Default::default(),
        )),
        _ => None,
    };
    let (mut raw, mut valid, mut targets) = (Vec::new(), Vec::new(), Vec::<O>::new());
    let (mut times, mut kept_targets) = (out.times(), out.values());
    let mut done = 0;
    while done < rows && !out.stopped() {
        let n = STEP.min(rows - done);
        raw.clear();
        raw.resize(n, 0);
        valid.clear();
        valid.resize(n, true);
        time.read(file, &mut reader.codecs, &mut raw, Some(&mut valid))
            .map_err(&terr)?;
        targets.clear();
        targets.resize(n, O::NAN);
        if let Some(t) = target.as_mut() {
            t.read(file, &mut reader.codecs, &mut targets, None)
                .map_err(group.error(2))?;
        }
        if !unit.has_null_times() && valid.iter().any(|v| !v) {
            return Err(SymbolErrorKind::Changed);
        }
        for i in 0..n {
            let t = match valid[i] {
                true => Some(to_ns(unit, group, raw[i], out.decoded + (done + i) as u64)?),
                false => None,
            };
            if sel.keep(t, !targets[i].is_nan()) {
                keep.set(done + i);
                times.push(t.unwrap_or_default());
                if target_first {
                    kept_targets.push(targets[i]);
                }
            }
        }
        if times.len() >= batch {
            out.send_times(std::mem::take(&mut times));
            times = out.times();
            if target_first {
                out.send_values(0, std::mem::take(&mut kept_targets));
                kept_targets = out.values();
            }
        }
        done += n;
    }
    out.send_times(times);
    if target_first {
        out.send_values(0, kept_targets);
    }
    if !out.stopped() {
        if let Some(t) = target {
            t.finish(file).map_err(group.error(2))?;
        }
        reader.buffers = time.finish(file).map_err(&terr)?;
    }
    Ok(keep)
}

/// A stored time in nanoseconds, or the overflow error naming the column and the file's row.
fn to_ns(unit: &Unit, group: &Group<'_, '_>, raw: i64, row: u64) -> Result<i64, SymbolErrorKind> {
    unit.time
        .1
        .to_ns(raw)
        .map_err(|value| overflow(group, row, value))
}

/// Stored times (rows `first_row..` of the file) in nanoseconds, appended to `out`.
fn scale(
    unit: &Unit,
    group: &Group<'_, '_>,
    raw: &[i64],
    first_row: u64,
    out: &mut Vec<i64>,
) -> Result<(), SymbolErrorKind> {
    unit.time
        .1
        .scale_into(raw, out)
        .map_err(|(i, value)| overflow(group, first_row + i as u64, value))
}

fn overflow(group: &Group<'_, '_>, row: u64, value: String) -> SymbolErrorKind {
    SymbolErrorKind::TimeOverflow {
        column: group.ctx.columns[0].clone(),
        row,
        value,
    }
}

/// A value column the file lacks: NaN for every kept row.
fn absent<O: Float>(keep: &Rows, c: usize, ctx: &ReadContext<'_>, out: &mut Out<'_, O>) {
    let mut left = keep.count();
    while left > 0 && !out.stopped() {
        let n = left.min(ctx.batch_rows);
        let mut v = out.values();
        v.resize(n, O::NAN);
        out.send_values(c, v);
        left -= n;
    }
}

/// Pass 2: value column `c` of the row group alone, its kept rows sent in slices.
fn column<O: Float>(
    group: &Group<'_, '_>,
    c: usize,
    col: &FastColumn,
    keep: &Rows,
    reader: &mut Reader,
    scratch: &mut Vec<O>,
    out: &mut Out<'_, O>,
) -> Result<(), SymbolErrorKind> {
    let (file, rows, batch) = (group.file, group.rows, group.ctx.batch_rows);
    let err = group.error(2 + c);
    let mut d: ColumnDecoder<O> = group.decoder(col, reader);
    match keep {
        Rows::Range(r) => {
            d.skip(file, &mut reader.codecs, r.start).map_err(&err)?;
            let mut done = r.start;
            while done < r.end && !out.stopped() {
                let n = batch.min(r.end - done);
                let mut v = out.values();
                v.resize(n, O::NAN);
                d.read(file, &mut reader.codecs, &mut v, None)
                    .map_err(&err)?;
                out.send_values(c, v);
                done += n;
            }
            d.skip(file, &mut reader.codecs, rows - r.end.max(done))
                .map_err(&err)?;
        }
        Rows::Bits { .. } => {
            let mut pending = out.values();
            let mut done = 0;
            while done < rows && !out.stopped() {
                let n = STEP.min(batch).min(rows - done);
                if keep.count_in(done, done + n) == 0 {
                    d.skip(file, &mut reader.codecs, n).map_err(&err)?;
                } else {
                    scratch.clear();
                    scratch.resize(n, O::NAN);
                    d.read(file, &mut reader.codecs, scratch, None)
                        .map_err(&err)?;
                    keep.gather(done, scratch, &mut pending);
                    if pending.len() >= batch {
                        out.send_values(c, std::mem::take(&mut pending));
                        pending = out.values();
                    }
                }
                done += n;
            }
            out.send_values(c, pending);
        }
    }
    if !out.stopped() {
        reader.buffers = d.finish(file).map_err(&err)?;
    }
    Ok(())
}
