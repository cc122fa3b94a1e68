//! One output window of the transposition: the next `cap` rows in output order, gathered column
//! by column from the intermediate.
//!
//! Filling a window runs the merge for `cap` rows and records, for each output row, its run and
//! its place in that run's stretch of the window. Each run's stretch is contiguous in the
//! intermediate, so a column is gathered with ONE positioned read per run that has rows in the
//! window (into `stage`, the stretches back to back), then one pass `out[p] = stage[idx[p]]`.
//! Memory: 24 bytes a window row (two u32 indices, two 8-byte value buffers), plus a few words a
//! run.

use spill::{DType, Element, SpillWriter};

use super::merge::Merge;
use super::source::Source;
use crate::error::{Error, Result};

/// Bytes a window row costs.
pub const ROW_BYTES: u64 = 4 + 4 + 8 + 8;

/// A run's stretch of the current window.
#[derive(Debug, Clone, Copy)]
struct Stretch {
    /// First row in the intermediate.
    start: u64,
    /// Rows (its place in `stage` follows the previous stretch's).
    len: u32,
}

/// The buffers of one window, reused from window to window.
pub struct Window {
    cap: usize,
    /// Per output row: its run, then (after `fill`) its index into `stage`.
    run_of: Vec<u32>,
    idx: Vec<u32>,
    /// Values of the window's stretches, back to back (8-byte words, viewed as the column type).
    stage: Vec<u64>,
    /// The window's values in output order.
    out: Vec<u64>,
    /// Where each run stood when the window began.
    begin: Vec<u64>,
    /// Each run's place in `stage`.
    bases: Vec<u32>,
    stretches: Vec<Stretch>,
    rows: usize,
}

impl Window {
    /// Buffers for windows of `cap` rows (at most `u32::MAX`) over `runs` runs.
    pub fn new(cap: usize, runs: usize) -> Window {
        let cap = cap.clamp(1, u32::MAX as usize);
        Window {
            cap,
            run_of: vec![0; cap],
            idx: vec![0; cap],
            stage: vec![0; cap],
            out: vec![0; cap],
            begin: vec![0; runs],
            bases: vec![0; runs],
            stretches: Vec::new(),
            rows: 0,
        }
    }

    /// Takes the next rows in output order (at most `cap`); 0 at the end.
    pub fn fill(&mut self, merge: &mut Merge, src: &Source) -> Result<usize> {
        for (r, b) in self.begin.iter_mut().enumerate() {
            *b = merge.position(r);
        }
        let mut filled = 0usize;
        while filled < self.cap {
            let Some(chunk) = merge.next(src, (self.cap - filled) as u64)? else {
                break;
            };
            let rows = chunk.rows as usize;
            let first = chunk.start - self.begin[chunk.run as usize];
            for j in 0..rows {
                self.run_of[filled + j] = chunk.run;
                // Below `cap`, which fits u32.
                self.idx[filled + j] = (first + j as u64) as u32;
            }
            filled += rows;
        }
        // Stage places, in run order (the intermediate's row order).
        self.stretches.clear();
        let mut base = 0u64;
        for (r, &b) in self.begin.iter().enumerate() {
            let len = merge.position(r) - b;
            self.bases[r] = base as u32;
            if len > 0 {
                self.stretches.push(Stretch {
                    start: b,
                    len: len as u32,
                });
            }
            base += len;
        }
        if base != filled as u64 {
            return Err(Error::Internal(format!(
                "a window of {filled} rows took {base} rows from its runs"
            )));
        }
        for (i, &r) in self.idx[..filled].iter_mut().zip(&self.run_of[..filled]) {
            *i += self.bases[r as usize];
        }
        self.rows = filled;
        Ok(filled)
    }

    /// Gathers column `col` of the current window from `src` and writes it at output row `row`.
    pub fn write_column(
        &mut self,
        src: &Source,
        col: usize,
        writer: &mut SpillWriter,
        row: u64,
    ) -> Result<()> {
        match src.layout().columns()[col].dtype {
            DType::F32 => self.gather::<f32>(src, col, writer, row),
            DType::F64 => self.gather::<f64>(src, col, writer, row),
            DType::I64 => self.gather::<i64>(src, col, writer, row),
            DType::I32 => self.gather::<i32>(src, col, writer, row),
            DType::U32 => self.gather::<u32>(src, col, writer, row),
            DType::U8 => self.gather::<u8>(src, col, writer, row),
            other => Err(Error::Internal(format!(
                "no transposition for dtype {other:?}"
            ))),
        }
    }

    fn gather<T: Element>(
        &mut self,
        src: &Source,
        col: usize,
        writer: &mut SpillWriter,
        row: u64,
    ) -> Result<()> {
        let n = self.rows;
        let size = std::mem::size_of::<T>();
        let stage: &mut [T] = bytemuck::cast_slice_mut(&mut self.stage[..]);
        // The stretches lie back to back in `stage`, in order: cut it into one slice each.
        let mut jobs = Vec::with_capacity(self.stretches.len());
        let mut rest: &mut [u8] = bytemuck::cast_slice_mut(&mut stage[..n]);
        for s in &self.stretches {
            let (head, tail) = rest.split_at_mut(s.len as usize * size);
            jobs.push((s.start, head));
            rest = tail;
        }
        src.read_all(col, &mut jobs)?;
        drop(jobs);
        let stage: &[T] = stage;
        let out: &mut [T] = bytemuck::cast_slice_mut(&mut self.out[..]);
        for (o, &i) in out[..n].iter_mut().zip(&self.idx[..n]) {
            *o = stage[i as usize];
        }
        writer.write(col, row, &out[..n])?;
        Ok(())
    }
}
