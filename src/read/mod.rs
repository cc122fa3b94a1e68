//! `read`: decode one planned file into output batches.
//!
//! Each reader opens its own handle and decodes only the needed columns (time, target, the
//! features this file has) `batch_rows` at a time, through the source the plan chose: the fast
//! decoder (`fast`, over `decode`) or arrow-rs's record batch reader with the fused conversion of
//! `input::convert` (`arrow`). Both feed the same `Emitter` (`emit`), which drops null-time rows,
//! the rows `--max-rows` cuts and the rows the cross-sectional filters remove, and hands each
//! batch to `send`.

mod arrow;
mod emit;
mod fast;

use std::fs::File;
use std::sync::atomic::AtomicBool;

use crate::cancel::Cancel;
use crate::error::{SymbolError, SymbolErrorKind};
use crate::input::convert::Float;
use crate::input::footer::{identity, io_kind, load_metadata};
use crate::plan::filter::CrossSection;
use crate::plan::Unit;

use self::emit::Emitter;

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
    pub user_cancel: &'a Cancel,
    /// The cross-sectional filters, when on.
    pub filters: Option<&'a CrossSection>,
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
    let value_roots = unit.value_roots(ctx.target);
    let mut out = Emitter::new(index, unit, ctx, recycled, send, value_roots.len());
    let source = match &unit.fast {
        Some(plan) => {
            fast::read(file, &meta, unit, plan, ctx, &mut out).map_err(err)?;
            Source::Fast
        }
        None => {
            arrow::read(file, meta, unit, ctx, &value_roots, &mut out).map_err(err)?;
            Source::Arrow
        }
    };
    out.finish().map_err(err)?;
    Ok(source)
}
