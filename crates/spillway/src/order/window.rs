//! One output window of the transposition: the next `cap` rows in output order, gathered column
//! by column from the intermediate.
//!
//! Filling a window runs the merge for `cap` rows and records, for each output row, its *stretch*
//! (rows of one run contiguous in the intermediate) and its place in it. A rising run's chunks
//! extend its stretch upwards; a falling run's (read backwards, a group of equal times at a
//! time) extend it downwards, so a run has one stretch in a window, or three when a window
//! boundary cuts a group (the cut group's rest, the whole groups, the cut group's first rows):
//! at most the runs plus two. A column is gathered with ONE positioned read per stretch (into
//! `stage`, the stretches back to back in row order), then one pass `out[p] = stage[idx[p]]`.
//! Memory: 24 bytes a window row (two u32 indices, two 8-byte value buffers), plus a few words a
//! run.
//!
//! With `--cs-transform`, a window takes whole cross-sections ([`Sections`]: as many whole
//! timestamps as fit in its rows, at least one, so its rows must hold the largest), and each
//! feature column, once gathered, goes through the transform's [`Kernel`] before it is written.
//! The cross-sections' bounds in the window cost 4 bytes a timestamp ([`BOUND_BYTES`]).

use spill::{DType, Element, Role, SpillWriter, Timestamps};

use super::merge::Merge;
use super::source::Source;
use super::transform::{Float, Kernel};
use crate::error::{Error, Result};

/// Bytes a window row costs.
pub const ROW_BYTES: u64 = 4 + 4 + 8 + 8;

/// Bytes a cross-section's bound costs a window of whole cross-sections (at most one a row).
pub const BOUND_BYTES: u64 = 4;

/// Bytes a run costs the window at most: its current stretch, the stretch, its place in the
/// read order and its read job (`merge::RUN_BYTES` counts them).
pub const RUN_STRETCH_BYTES: u64 = 80;

/// No stretch yet.
const NONE: u32 = u32::MAX;

/// Rows `[lo, hi)` of one run in the intermediate, taken by the current window.
#[derive(Debug, Clone, Copy)]
struct Stretch {
    lo: u64,
    hi: u64,
    /// The row its offsets were recorded from (its first chunk's start).
    anchor: u64,
    /// Added (wrapping) to a recorded offset to give the row's place in `stage`.
    shift: u32,
}

/// The buffers of one window, reused from window to window.
pub struct Window {
    cap: usize,
    /// Per output row: its stretch, and its offset from the stretch's anchor (wrapping), then
    /// (after `fill`) its index into `stage`.
    stretch_of: Vec<u32>,
    idx: Vec<u32>,
    /// Values of the window's stretches, back to back (8-byte words, viewed as the column type).
    stage: Vec<u64>,
    /// The window's values in output order.
    out: Vec<u64>,
    /// Each run's current stretch ([`NONE`] before its first chunk in the window).
    current: Vec<u32>,
    stretches: Vec<Stretch>,
    /// Stretch indices in row order: the reads, back to back in `stage`.
    reads: Vec<u32>,
    rows: usize,
    /// The transform of the feature columns, if any.
    kernel: Option<Kernel>,
    /// With whole cross-sections: their starts in the window, then its end.
    bounds: Vec<u32>,
}

/// The cross-sections of a time-major output, handed out a window at a time: each window takes
/// whole timestamps, never part of one.
#[derive(Debug)]
pub struct Sections<'a> {
    index: &'a Timestamps,
    /// The first timestamp of the next window.
    next: usize,
}

impl<'a> Sections<'a> {
    /// The cross-sections of `index`, from the first.
    pub fn new(index: &'a Timestamps) -> Sections<'a> {
        Sections { index, next: 0 }
    }

    /// The rows of the largest cross-section of `index` (0 when it has none): the least rows a
    /// window of whole cross-sections needs.
    pub fn largest(index: &Timestamps) -> u64 {
        index
            .iter()
            .map(|(_, rows)| rows.end - rows.start)
            .max()
            .unwrap_or(0)
    }

    /// Takes the next whole timestamps while their rows fit in `cap` (at least one, however
    /// many rows it has) and sets `bounds` to their starts from the first, then the end. Returns
    /// the rows taken; 0 once every timestamp is taken.
    fn take(&mut self, cap: usize, bounds: &mut Vec<u32>) -> Result<usize> {
        bounds.clear();
        bounds.push(0);
        let mut rows = 0u64;
        while let Some((_, range)) = self.index.get(self.next) {
            let len = range.end - range.start;
            if rows > 0 && rows + len > cap as u64 {
                break;
            }
            rows += len;
            let end = u32::try_from(rows).map_err(|_| {
                Error::Internal(format!("a window of whole cross-sections of {rows} rows"))
            })?;
            bounds.push(end);
            self.next += 1;
        }
        Ok(rows as usize)
    }
}

impl Window {
    /// Buffers for windows of `cap` rows (at most `u32::MAX`) over `runs` runs.
    pub fn new(cap: usize, runs: usize) -> Window {
        let cap = cap.clamp(1, u32::MAX as usize);
        Window {
            cap,
            stretch_of: vec![0; cap],
            idx: vec![0; cap],
            stage: vec![0; cap],
            out: vec![0; cap],
            current: vec![NONE; runs],
            stretches: Vec::new(),
            reads: Vec::new(),
            rows: 0,
            kernel: None,
            bounds: Vec::new(),
        }
    }

    /// These buffers, transforming the feature columns with `kernel` (whose windows must then
    /// be filled with [`Sections`]).
    pub fn with_kernel(mut self, kernel: Kernel) -> Window {
        self.kernel = Some(kernel);
        self
    }

    /// Takes the next rows in output order: at most `cap`, or with `sections` the next whole
    /// cross-sections (which must fit in `cap`); 0 at the end.
    pub fn fill(
        &mut self,
        merge: &mut Merge,
        src: &Source,
        sections: Option<&mut Sections>,
    ) -> Result<usize> {
        let want = match sections {
            Some(s) => s.take(self.cap, &mut self.bounds)?,
            None => self.cap,
        };
        if want > self.cap {
            return Err(Error::Internal(format!(
                "a cross-section of {want} rows in a window of {} rows",
                self.cap
            )));
        }
        self.current.fill(NONE);
        self.stretches.clear();
        let mut filled = 0usize;
        while filled < want {
            let Some(chunk) = merge.next(src, (want - filled) as u64)? else {
                break;
            };
            let (start, rows) = (chunk.start, chunk.rows as usize);
            let cur = self.current[chunk.run as usize];
            let k = match self.stretches.get_mut(cur as usize) {
                Some(s) if s.hi == start => {
                    s.hi += rows as u64;
                    cur
                }
                Some(s) if start + rows as u64 == s.lo => {
                    s.lo = start;
                    cur
                }
                _ => {
                    let k = u32::try_from(self.stretches.len())
                        .map_err(|_| Error::Internal("window stretches".into()))?;
                    self.stretches.push(Stretch {
                        lo: start,
                        hi: start + rows as u64,
                        anchor: start,
                        shift: 0,
                    });
                    self.current[chunk.run as usize] = k;
                    k
                }
            };
            // Offsets lie within the stretch, below `cap` (u32) in either direction of the
            // anchor: wrapping u32 arithmetic gives the exact place once the shift is added.
            let first = start.wrapping_sub(self.stretches[k as usize].anchor) as u32;
            for j in 0..rows {
                self.stretch_of[filled + j] = k;
                self.idx[filled + j] = first.wrapping_add(j as u32);
            }
            filled += rows;
        }
        // Stage places, in the intermediate's row order.
        self.reads.clear();
        self.reads.extend(0..self.stretches.len() as u32);
        let stretches = &mut self.stretches;
        self.reads
            .sort_unstable_by_key(|&k| stretches[k as usize].lo);
        let mut base = 0u64;
        for &k in &self.reads {
            let s = &mut stretches[k as usize];
            s.shift = (base as u32).wrapping_add((s.anchor - s.lo) as u32);
            base += s.hi - s.lo;
        }
        if base != filled as u64 {
            return Err(Error::Internal(format!(
                "a window of {filled} rows took {base} rows from its runs"
            )));
        }
        if self.kernel.is_some() && filled != want {
            return Err(Error::Internal(format!(
                "the merge gave {filled} rows where the timestamp index counts {want}"
            )));
        }
        for (i, &k) in self.idx[..filled]
            .iter_mut()
            .zip(&self.stretch_of[..filled])
        {
            *i = i.wrapping_add(stretches[k as usize].shift);
        }
        self.rows = filled;
        Ok(filled)
    }

    /// Gathers column `col` of the current window from `src`, transforms it when it is a feature
    /// and the window has a kernel, and writes it at output row `row`.
    pub fn write_column(
        &mut self,
        src: &Source,
        col: usize,
        writer: &mut SpillWriter,
        row: u64,
    ) -> Result<()> {
        let spec = &src.layout().columns()[col];
        let feature = spec.role == Role::Feature;
        match spec.dtype {
            DType::F32 => self.gather_float::<f32>(src, col, feature, writer, row),
            DType::F64 => self.gather_float::<f64>(src, col, feature, writer, row),
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
        self.stage_column::<T>(src, col)?;
        let out: &[T] = bytemuck::cast_slice(&self.out[..]);
        writer.write(col, row, &out[..self.rows])?;
        Ok(())
    }

    /// [`gather`](Self::gather) for a float column, through the kernel when it is a feature.
    fn gather_float<T: Element + Float>(
        &mut self,
        src: &Source,
        col: usize,
        feature: bool,
        writer: &mut SpillWriter,
        row: u64,
    ) -> Result<()> {
        self.stage_column::<T>(src, col)?;
        let out: &mut [T] = bytemuck::cast_slice_mut(&mut self.out[..]);
        let out = &mut out[..self.rows];
        if let (true, Some(kernel)) = (feature, self.kernel.as_mut()) {
            kernel.apply(out, &self.bounds)?;
        }
        writer.write(col, row, out)?;
        Ok(())
    }

    /// Reads column `col` of the current window's stretches and puts its values in output
    /// order in `out`.
    fn stage_column<T: Element>(&mut self, src: &Source, col: usize) -> Result<()> {
        let n = self.rows;
        let size = std::mem::size_of::<T>();
        let stage: &mut [T] = bytemuck::cast_slice_mut(&mut self.stage[..]);
        // The stretches lie back to back in `stage`, in order: cut it into one slice each.
        let mut jobs = Vec::with_capacity(self.stretches.len());
        let mut rest: &mut [u8] = bytemuck::cast_slice_mut(&mut stage[..n]);
        for &k in &self.reads {
            let s = self.stretches[k as usize];
            let (head, tail) = rest.split_at_mut((s.hi - s.lo) as usize * size);
            jobs.push((s.lo, head));
            rest = tail;
        }
        src.read_all(col, &mut jobs)?;
        drop(jobs);
        let stage: &[T] = stage;
        let out: &mut [T] = bytemuck::cast_slice_mut(&mut self.out[..]);
        for (o, &i) in out[..n].iter_mut().zip(&self.idx[..n]) {
            *o = stage[i as usize];
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_window_state_fits_run_stretch_bytes() {
        let job = std::mem::size_of::<(u64, &mut [u8])>();
        let bytes = 4 + std::mem::size_of::<Stretch>() + 4 + job;
        assert!(bytes as u64 <= RUN_STRETCH_BYTES, "{bytes}");
    }

    #[test]
    fn sections_take_whole_timestamps_up_to_the_cap_and_at_least_one() {
        let index =
            Timestamps::from_counts([(10, 3), (20, 1), (30, 5), (40, 2), (50, 2)]).expect("index");
        assert_eq!(Sections::largest(&index), 5);
        assert_eq!(Sections::largest(&Timestamps::default()), 0);
        let mut s = Sections::new(&index);
        let mut bounds = Vec::new();
        let mut take = |cap| {
            let rows = s.take(cap, &mut bounds).expect("takes");
            (rows, bounds.clone())
        };
        // 3 + 1 fit in 4; 5 alone exceeds 4 but a window takes one whole timestamp anyway.
        assert_eq!(take(4), (4, vec![0, 3, 4]));
        assert_eq!(take(4), (5, vec![0, 5]));
        assert_eq!(take(100), (4, vec![0, 2, 4]));
        assert_eq!(take(100), (0, vec![0]));
    }
}
