//! The emitter: where both read sources meet. It applies the row selection of each decoded batch
//! (null times, the `--max-rows` cut, the cross-sectional filters), has the source fill the
//! selected values column by column, sends the batch, and checks at the end that the file
//! delivered exactly what the plan counted.

use std::sync::atomic::Ordering;

use crate::error::SymbolErrorKind;
use crate::input::convert::{Float, Selection};
use crate::plan::{Cut, Unit};

use super::{Batch, Msg, ReadContext, Recycled};

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
    cut: Cut,
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
pub type Fill<'f, O> = dyn FnMut(usize, &Selection, &mut [O]) -> Result<(), SymbolErrorKind> + 'f;

impl<'a, O: Float> Emitter<'a, O> {
    pub(super) fn new(
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
            cut: unit.cut(),
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
        self.cut.drop_front(rows);
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
    ) -> Result<(), SymbolErrorKind> {
        let n = times.len();
        self.decoded += n as u64;
        let (mut time, mut values) = self.recycled.try_recv().unwrap_or_default();
        time.clear();
        // Rows to keep: non-null times, minus what --max-rows still has to drop.
        let base = if self.unit.has_null_times() {
            let mut idx = Vec::with_capacity(n);
            for i in (0..n).filter(|&i| valid[i]) {
                if self.cut.keep() {
                    idx.push(i as u32);
                    time.push(times[i]);
                }
            }
            Selection::Indices(idx)
        } else {
            if valid.iter().any(|v| !v) {
                // A null time in a file planned without any: it changed under us.
                return Err(SymbolErrorKind::Changed);
            }
            let k = self.cut.drop_front(n as u64) as usize;
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
    pub(super) fn finish(self) -> Result<(), SymbolErrorKind> {
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
