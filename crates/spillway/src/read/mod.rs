//! `read`: decode one planned file into slices of output columns.
//!
//! Each reader opens its own handle and decodes only the needed columns (time, target, the
//! features this file has) through the source the plan chose. The fast decoder (`fast`, over
//! `decode`) reads one column chunk at a time: the time column (and the target when a filter
//! needs it) decides which rows of the row group stay (`select`), then every value column is
//! decoded alone, straight into slices of its output rows; a reader's memory does not grow with
//! the column count. arrow-rs (`arrow`) reads the projected columns together, `batch_rows` at a
//! time, for the files the fast decoder does not read. Both hand `send`'s `Out` slices of at most
//! `batch_rows` rows of one column.

mod arrow;
mod fast;
mod select;
mod send;

use std::sync::atomic::AtomicBool;

use crate::cancel::Cancel;
use crate::decode::{Buffers, Codecs};
use crate::error::{SymbolError, SymbolErrorKind};
use crate::input::convert::Float;
use crate::input::footer::io_kind;
use crate::input::source;
use crate::plan::filter::CrossSection;
use crate::plan::Unit;

use self::send::Out;
pub use self::send::Spares;

/// Values of one output column, ready for the writer.
#[derive(Debug)]
pub enum Data<O> {
    /// Times in ns (the time column; the writer adds the symbol codes beside them).
    Time(Vec<i64>),
    /// Values of a value column.
    Values(Vec<O>),
}

/// Consecutive rows of one output column of a unit.
#[derive(Debug)]
pub struct Slice<O> {
    /// Index of the unit (file) in the plan.
    pub unit: u32,
    /// Output column: 0 the time, 2 + c value column c (1, the symbol codes, is the writer's).
    pub column: u32,
    /// First row, counted from the unit's first output row.
    pub row: u64,
    /// The rows.
    pub data: Data<O>,
}

/// What a reader sends the writer.
#[derive(Debug)]
pub enum Msg<O> {
    /// Rows of one column of a unit.
    Slice(Slice<O>),
    /// The unit is complete with this many rows in every column.
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

/// A reader thread's own state, kept from file to file: decompression codecs and the buffers of
/// the column decoders and of row bitmaps, so that a thread allocates them once.
#[derive(Default)]
pub struct Reader {
    codecs: Codecs,
    buffers: Buffers,
    words: Vec<u64>,
}

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
    pub user_cancel: &'a Cancel,
    /// The cross-sectional filters, when on.
    pub filters: Option<&'a CrossSection>,
    /// Names of the output columns (time, symbol, then value columns), for messages.
    pub columns: &'a [String],
    /// Tasks per unit: its value columns are split into this many contiguous groups.
    pub groups: usize,
}

/// One reader's share of a unit: group `group` of its value columns (group 0 also sends the
/// time column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Task {
    /// The unit.
    pub unit: u32,
    /// Which of the unit's [`ReadContext::groups`] column groups.
    pub group: usize,
}

impl Task {
    /// The value columns of this task among `values`: contiguous groups of (nearly) equal size.
    pub fn columns(&self, values: usize, groups: usize) -> std::ops::Range<usize> {
        let k = self.group;
        values * k / groups..values * (k + 1) / groups
    }
}

/// Which decoder read a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The fast decoder (`decode`).
    Fast,
    /// arrow-rs's record batch reader.
    Arrow,
}

/// Starts, on object storage, the first request of `task` (of `unit`), which a reader will take
/// soon: the reader that takes it then finds its first bytes on the way. Nothing for a local
/// file, or one arrow-rs reads.
pub fn warm(task: Task, unit: &Unit, ctx: &ReadContext<'_>) {
    let Some(plan) = &unit.fast else { return };
    if crate::config::url_scheme(&unit.path).is_none() {
        return;
    }
    if let Ok(input) = source::open(&unit.path) {
        let values = unit.value_roots(ctx.target).len();
        let owned = task.columns(values, ctx.groups);
        input.warm(&fast::task_runs(unit, plan, ctx, owned, task.group == 0));
    }
}

/// Decodes `task` of the plan with a thread's `reader` state. `send` returns false when
/// the writer is gone (the build is being cancelled); `spares` holds (and receives) the
/// buffers of written slices.
pub fn read_unit<O: Float>(
    task: Task,
    unit: &Unit,
    symbol: &str,
    ctx: &ReadContext<'_>,
    reader: &mut Reader,
    spares: &mut Spares<O>,
    send: &mut dyn FnMut(Msg<O>) -> bool,
) -> Result<Source, SymbolError> {
    let err = |kind| SymbolError::new(symbol, &unit.path, kind);
    let input = source::open(&unit.path).map_err(err)?;
    let id = input
        .identity()
        .map_err(|e| err(io_kind("reading the size", &e)))?;
    if id != (unit.size, unit.mtime) {
        return Err(err(SymbolErrorKind::Changed));
    }
    reader.buffers.new_file();
    let value_roots = unit.value_roots(ctx.target);
    let owned = task.columns(value_roots.len(), ctx.groups);
    let source = match &unit.fast {
        Some(plan) => {
            if input.is_remote() {
                input.expect(fast::task_runs(
                    unit,
                    plan,
                    ctx,
                    owned.clone(),
                    task.group == 0,
                ));
            }
            let mut out = Out::new(task, unit, ctx, send, value_roots.len(), owned, spares);
            fast::read(&input, unit, plan, ctx, reader, &mut out).map_err(err)?;
            out.finish().map_err(err)?;
            Source::Fast
        }
        None => {
            let roots = arrow::roots(unit, ctx, &value_roots, &owned);
            let file = input.into_file(Some(&roots)).map_err(err)?;
            let mut out = Out::new(task, unit, ctx, send, value_roots.len(), owned, spares);
            arrow::read(file, unit, ctx, &roots, reader, &mut out).map_err(err)?;
            out.finish().map_err(err)?;
            Source::Arrow
        }
    };
    Ok(source)
}
