//! The memory budget: choose reader count, batch rows and channel capacity so that
//!
//! ```text
//! peak ~ fixed + writer + readers x (decoder working set + batch in flight + capacity x batch)
//! ```
//!
//! fits `--memory-budget`. The working set comes from the footers (dictionary and page sizes of the
//! projected column chunks of the largest file); explicit flags override the choice, and the bound
//! is reported either way.

use std::path::PathBuf;

use spill::WriteOptions;

use crate::config::BuildConfig;
use crate::error::{Error, Result};
use crate::plan::Plan;

/// The binary, its libraries, allocator slack and thread stacks.
const FIXED: u64 = 24 << 20;
/// Bytes of plan per unit beyond its feature map.
const PER_UNIT: u64 = 512;
/// Arrow arrays of a batch are built then handed over: about two copies of the decoded width.
const DECODE_COPIES: u64 = 2;
/// Batch sizes tried, largest first.
const BATCH_ROWS: [usize; 6] = [16_384, 8_192, 4_096, 2_048, 1_024, 512];

/// The chosen pipeline shape and its memory bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Budget {
    /// Reader threads.
    pub readers: usize,
    /// Rows per batch.
    pub batch_rows: usize,
    /// Batches each reader may have queued for the writer.
    pub capacity: usize,
    /// Memory the spill writer keeps resident (windows or staging).
    pub writer_bytes: u64,
    /// The estimated peak for this shape.
    pub bound_bytes: u64,
    /// The budget asked for.
    pub budget_bytes: u64,
}

impl Budget {
    /// Whether explicit flags pushed the bound over the budget.
    pub fn over_budget(&self) -> bool {
        self.bound_bytes > self.budget_bytes
    }
}

struct Costs {
    fixed: u64,
    work: u64,
    decode_row: u64,
    out_row: u64,
    writer: u64,
}

impl Costs {
    fn bound(&self, readers: usize, batch: usize, capacity: usize) -> u64 {
        let batch_bytes = batch as u64 * self.out_row;
        let per_reader =
            self.work + batch as u64 * self.decode_row + batch_bytes * (capacity as u64 + 1);
        // The writer holds one batch while it writes it.
        self.fixed + self.writer + batch_bytes + readers as u64 * per_reader
    }
}

/// What the memory bound depends on: a summary of a plan (or, for `inspect`, of footers).
#[derive(Debug, Clone)]
pub struct Shape {
    /// Input files.
    pub units: usize,
    /// Feature columns.
    pub features: usize,
    /// Output value columns (target + features).
    pub value_columns: usize,
    /// Output float32 (else float64).
    pub float32: bool,
    /// Largest decoder working set of one file, and that file.
    pub max_work: (u64, PathBuf),
    /// Most output rows of one file.
    pub longest_rows: u64,
    /// Memory held through the build by the plan's extras (the cross-section table).
    pub held_bytes: u64,
}

impl Shape {
    /// The shape of a plan.
    pub fn of(plan: &Plan) -> Shape {
        Shape {
            units: plan.units.len(),
            features: plan.features.len(),
            value_columns: plan.value_columns(),
            float32: plan.float32,
            max_work: plan
                .units
                .iter()
                .max_by_key(|u| u.work_bytes)
                .map_or((0, PathBuf::new()), |u| (u.work_bytes, u.path.clone())),
            longest_rows: plan.units.iter().map(|u| u.out_rows()).max().unwrap_or(0),
            held_bytes: plan.filters.as_ref().map_or(0, |cs| cs.memory_bytes()),
        }
    }
}

/// Chooses the shape for `plan` under `cfg`'s budget and flags.
pub fn choose(cfg: &BuildConfig, plan: &Plan) -> Result<Budget> {
    choose_for(cfg, &Shape::of(plan))
}

/// Chooses the pipeline shape for `shape` under `cfg`'s budget and flags.
pub fn choose_for(cfg: &BuildConfig, shape_in: &Shape) -> Result<Budget> {
    let budget = cfg.memory_budget;
    let values = shape_in.value_columns as u64;
    let ncols = shape_in.value_columns + 2;
    let value_size: u64 = if shape_in.float32 { 4 } else { 8 };
    let writer_opts = WriteOptions::default().with_memory((budget / 8).clamp(1 << 20, 32 << 20));
    let (work, heaviest) = (shape_in.max_work.0, Some(&shape_in.max_work.1));
    let costs = Costs {
        fixed: FIXED
            + shape_in.held_bytes
            + shape_in.units as u64 * (PER_UNIT + 4 * shape_in.features as u64),
        work,
        decode_row: DECODE_COPIES * 8 * (values + 1) + 8 * (values + 1) / 8,
        out_row: values * value_size + 8 + 4,
        writer: writer_opts.resident_bytes(ncols),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let max_readers = cfg.threads.unwrap_or(cores).min(shape_in.units.max(1));
    let longest = shape_in.longest_rows as usize;
    let shape = |readers: usize, batch: usize, capacity: usize| Budget {
        readers,
        batch_rows: batch,
        capacity,
        writer_bytes: costs.writer,
        bound_bytes: costs.bound(readers, batch, capacity),
        budget_bytes: budget,
    };

    // A batch never needs more rows than the longest file has.
    let mut batches: Vec<usize> = cfg.batch_rows.map_or_else(
        || BATCH_ROWS.iter().map(|&b| b.min(longest.max(1))).collect(),
        |b| vec![b],
    );
    batches.dedup();
    let readers: Vec<usize> = match cfg.threads {
        Some(t) => vec![t],
        None => (1..=max_readers).rev().collect(),
    };
    // Capacity tiers 4, 2, 1; within a tier the largest batch that fits. Measured on the M
    // universe (64 x 75k x 100): every shape from 2048 x 16 to 16384 x 1 ran in 2.7-2.95 s, so
    // the search favours the smallest memory at that speed, which a capacity of 4 gives.
    let capacities: Vec<usize> = cfg
        .channel_capacity
        .map_or_else(|| vec![4, 2, 1], |c| vec![c]);
    for &r in &readers {
        for &c in &capacities {
            for &b in &batches {
                let s = shape(r, b, c);
                if !s.over_budget() {
                    return Ok(s);
                }
            }
        }
    }
    // Nothing fits. Explicit flags are obeyed (the bound is reported); otherwise refuse up front.
    if cfg.threads.is_some() && cfg.batch_rows.is_some() && cfg.channel_capacity.is_some() {
        return Ok(shape(readers[0], batches[0], capacities[0]));
    }
    let smallest = *batches.last().unwrap_or(&512);
    let r = *readers.last().unwrap_or(&1);
    Err(Error::Budget {
        budget,
        needed: costs.bound(r, smallest, 1),
        batch_rows: smallest,
        file: heaviest.cloned().unwrap_or_default(),
    })
}
