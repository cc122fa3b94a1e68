//! The sender: where both read sources meet. It hands the writer slices of one output column at a
//! time (the time column, or a value column), counts what each column has received, recycles the
//! writer's buffers, and checks at the end that the file delivered exactly what the plan counted.

use std::sync::atomic::Ordering;

use crossbeam_channel::Receiver;

use crate::error::SymbolErrorKind;
use crate::input::convert::Float;
use crate::plan::Unit;

use super::{Data, Msg, ReadContext, Slice, Task};

/// The per-task sender: it sends the time column when the task is its unit's first, and the
/// value columns the task owns; it drops what else a source hands it.
pub struct Out<'a, O> {
    task: Task,
    /// The value columns this task sends.
    pub owned: std::ops::Range<usize>,
    unit: &'a Unit,
    ctx: &'a ReadContext<'a>,
    send: &'a mut dyn FnMut(Msg<O>) -> bool,
    /// Rows sent so far per output column (index 0 the time, 1 unused, then value columns).
    sent: Vec<u64>,
    /// Rows of the file consumed so far (decoded or skipped).
    pub decoded: u64,
    gone: bool,
    spares: &'a mut Spares<O>,
}

/// Buffers the writer gave back, by kind, kept by a reader thread from task to task (the
/// channel they come back on mixes the kinds).
pub struct Spares<O> {
    recycled: Receiver<Data<O>>,
    times: Vec<Vec<i64>>,
    values: Vec<Vec<O>>,
}

impl<O> Spares<O> {
    /// The pool of a reader whose written buffers come back on `recycled`.
    pub fn new(recycled: Receiver<Data<O>>) -> Self {
        Spares {
            recycled,
            times: Vec::new(),
            values: Vec::new(),
        }
    }
}

impl<'a, O: Float> Out<'a, O> {
    /// A sender for `task` of a unit with `values` value columns, of which it owns `owned`.
    pub fn new(
        task: Task,
        unit: &'a Unit,
        ctx: &'a ReadContext<'a>,
        send: &'a mut dyn FnMut(Msg<O>) -> bool,
        values: usize,
        owned: std::ops::Range<usize>,
        spares: &'a mut Spares<O>,
    ) -> Self {
        Out {
            task,
            owned,
            unit,
            ctx,
            send,
            sent: vec![0; values + 2],
            decoded: 0,
            gone: false,
            spares,
        }
    }

    /// Takes every buffer the writer gave back.
    fn collect(&mut self) {
        while let Ok(d) = self.spares.recycled.try_recv() {
            match d {
                Data::Time(v) => self.spares.times.push(v),
                Data::Values(v) => self.spares.values.push(v),
            }
        }
    }

    /// Whether this task sends the time column (the unit's first does).
    pub fn sends_time(&self) -> bool {
        self.task.group == 0
    }

    /// Whether the build is being cancelled or the writer is gone: stop decoding.
    pub fn stopped(&self) -> bool {
        self.gone || self.ctx.cancel.load(Ordering::Relaxed) || self.ctx.user_cancel.is_cancelled()
    }

    /// An empty buffer for times, reused when the writer gave one back.
    pub fn times(&mut self) -> Vec<i64> {
        if self.spares.times.is_empty() {
            self.collect();
        }
        let mut v = self.spares.times.pop().unwrap_or_default();
        v.clear();
        v
    }

    /// An empty buffer for values, reused when the writer gave one back.
    pub fn values(&mut self) -> Vec<O> {
        if self.spares.values.is_empty() {
            self.collect();
        }
        let mut v = self.spares.values.pop().unwrap_or_default();
        v.clear();
        v
    }

    /// Whether this task sends output column `column` (0: time, 2 + c: value column c).
    fn sends(&self, column: usize) -> bool {
        match column {
            0 => self.sends_time(),
            1 => false,
            c => self.owned.contains(&(c - 2)),
        }
    }

    /// Sends the next `data` of output column `column` (0: time, 2 + c: value column c).
    fn slice(&mut self, column: usize, data: Data<O>) {
        let rows = match &data {
            Data::Time(v) => v.len(),
            Data::Values(v) => v.len(),
        } as u64;
        if rows == 0 || self.gone || !self.sends(column) {
            return;
        }
        let slice = Slice {
            unit: self.task.unit,
            column: column as u32,
            row: self.sent[column],
            data,
        };
        if !(self.send)(Msg::Slice(slice)) {
            self.gone = true;
            return;
        }
        self.sent[column] += rows;
    }

    /// Sends the next times of kept rows.
    pub fn send_times(&mut self, times: Vec<i64>) {
        self.slice(0, Data::Time(times));
    }

    /// Sends the next values of value column `c` (the target first when there is one).
    pub fn send_values(&mut self, c: usize, values: Vec<O>) {
        self.slice(2 + c, Data::Values(values));
    }

    /// After the last slice: the file must have delivered exactly what its footer and the plan
    /// promised, in every column; then the unit is done.
    pub fn finish(self) -> Result<(), SymbolErrorKind> {
        if self.stopped() {
            return Ok(());
        }
        let unit = self.unit;
        if self.decoded != unit.rows {
            return Err(SymbolErrorKind::RowCount {
                expected: unit.rows,
                got: self.decoded,
            });
        }
        let out = unit.out_rows();
        let short = (0..self.sent.len()).find(|&c| self.sends(c) && self.sent[c] != out);
        if let Some(c) = short {
            return Err(SymbolErrorKind::RowCount {
                expected: out,
                got: self.sent[c],
            });
        }
        (self.send)(Msg::Done {
            unit: self.task.unit,
            rows: out,
        });
        Ok(())
    }
}
