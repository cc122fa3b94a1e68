//! The memory budget: choose reader count, batch rows and channel capacity so that
//!
//! ```text
//! peak ~ fixed + plan + writer + slice being written
//!        + readers x (working set + batch scratch + (capacity + returned + 2) x slice)
//! ```
//!
//! fits `--memory-budget`. A slice is at most `batch_rows` rows of ONE output column (the fast
//! decoder may gather up to twice that before it sends). The fast decoder's working set is its two
//! busiest column decoders (read window, a page, the dictionary) and a row group's bitmap, from
//! the footers: it does not grow with the column count. arrow-rs decodes the projected columns
//! together, so its working set is every projected chunk's and its scratch grows with batch rows x
//! columns. Explicit flags override the choice, and the bound is reported either way. What the
//! chosen shape leaves of the budget goes to the writer's per-column buffers, whose size sets the
//! O_DIRECT write size.

use std::path::PathBuf;

use spill::WriteOptions;

use crate::config::{BuildConfig, MAX_CHANNEL_CAPACITY};
use crate::decode::STEP_SCRATCH;
use crate::error::{Error, Result};
use crate::input::source;
use crate::plan::Plan;

/// The binary, its libraries, allocator slack and thread stacks.
const FIXED: u64 = 24 << 20;
/// A reader thread's decompression codecs (zstd's contexts above all), kept for the whole build.
const CODECS: u64 = 2 << 20;
/// Arrow arrays of a batch are built then handed over: about two copies of the decoded width.
const DECODE_COPIES: u64 = 2;
/// The fast decoder's scratch per row of a step (8192 rows): raw times and validity, the target,
/// gathered values.
const FAST_STEP: u64 = 8192 * (8 + 1 + 8 + 8);
/// Written slices' buffers a reader's return channel holds beyond its capacity.
pub const RETURNED: usize = 2;
/// Per column, the writer grows its buffers into what the budget leaves, up to this: larger
/// O_DIRECT writes cost less CPU per byte (1.6 GB with `dd oflag=direct` here: 0.24 s of kernel
/// time in 256 KiB writes, 0.08 s in 4 MiB ones).
const WRITER_MAX_PER_COLUMN: u64 = 1 << 20;
/// The per-column writer buffer the budget gives first (when a quarter of it allows).
const WRITER_FLOOR: u64 = 128 << 10;
/// Most slices a reader's channel may hold (also the most `--channel-capacity` accepts).
const MAX_CAPACITY: usize = MAX_CHANNEL_CAPACITY;
/// Bytes of the smallest slice preferred. The writer pays a fixed cost per slice (a channel
/// receive, the statistics' and checksum's setup, a staging copy); in 2 KiB slices (512 rows of a
/// 4000-column file, the deepest lookahead) it was 16.5 s of writer time for a 4.3 GB output,
/// in slices of at least 64 KiB (65,536-row batches, lookahead 71) 6.5 s.
const MIN_SLICE: u64 = 64 << 10;
/// Batch sizes tried, largest first.
const BATCH_ROWS: [usize; 8] = [65_536, 32_768, 16_384, 8_192, 4_096, 2_048, 1_024, 512];

/// The chosen pipeline shape and its memory bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Budget {
    /// Reader threads.
    pub readers: usize,
    /// Rows per batch.
    pub batch_rows: usize,
    /// Batches each reader may have queued for the writer.
    pub capacity: usize,
    /// Memory the spill writer keeps resident (windows or staging, with allocation overhead).
    pub writer_bytes: u64,
    /// The writer's memory option: what its buffers share (`spill::WriteOptions::with_memory`).
    pub writer_memory: u64,
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

#[derive(Clone, Copy)]
struct Costs {
    fixed: u64,
    /// Working set of one reader, whatever the batch.
    work: u64,
    /// Reader scratch per batch row (arrow-rs: every projected column of the batch).
    decode_row: u64,
    /// Bytes per row of the largest slice.
    slice_row: u64,
    /// The writer's resident memory, and the memory option that gives it.
    writer: u64,
    writer_memory: u64,
}

impl Costs {
    /// Saturating: a bound past `u64::MAX` is over any budget, not a wrapped small number.
    fn bound(&self, readers: usize, batch: usize, capacity: usize) -> u64 {
        let slice = (batch as u64).saturating_mul(self.slice_row);
        // In flight per reader: the channel, the returned buffers, one being filled, and the
        // fast decoder's gathering of up to a second slice.
        let slices = (capacity as u64)
            .saturating_add(RETURNED as u64 + 2)
            .saturating_mul(slice);
        let per_reader = (batch as u64)
            .saturating_mul(self.decode_row)
            .saturating_add(self.work)
            .saturating_add(slices);
        // The writer holds one slice while it writes it.
        (readers as u64)
            .saturating_mul(per_reader)
            .saturating_add(self.fixed)
            .saturating_add(self.writer)
            .saturating_add(slice)
    }
}

/// What the memory bound depends on: a summary of a plan (or, for `inspect`, of footers).
#[derive(Debug, Clone)]
pub struct Shape {
    /// Input files.
    pub units: usize,
    /// Output value columns (target + features).
    pub value_columns: usize,
    /// Output float32 (else float64).
    pub float32: bool,
    /// Largest working set of one file in a reader, and the file taking the most memory (its
    /// working set and its parsed footer).
    pub max_work: (u64, PathBuf),
    /// Most output rows of one file.
    pub longest_rows: u64,
    /// Memory held through the build by the plan itself and its extras (the cross-section table).
    pub held_bytes: u64,
    /// Whether some file is decoded by arrow-rs (else the fast decoder reads every file).
    pub arrow_decoding: bool,
    /// Object storage: bytes of responses one reader may hold (its requests in flight), and the
    /// client's own memory. Zero for local files.
    pub remote: (u64, u64),
}

impl Shape {
    /// The shape of a plan.
    pub fn of(plan: &Plan) -> Shape {
        let remote = plan
            .units
            .first()
            .map_or((0, 0), |u| source::remote_costs(&u.path));
        Shape {
            units: plan.units.len(),
            value_columns: plan.value_columns(),
            float32: plan.float32,
            max_work: plan
                .units
                .iter()
                .max_by_key(|u| (u.work_bytes + u.footer_bytes, u.work_bytes))
                .map_or((0, PathBuf::new()), |u| (u.work_bytes, u.path.clone())),
            longest_rows: plan.units.iter().map(|u| u.out_rows()).max().unwrap_or(0),
            held_bytes: plan.heap_bytes()
                + plan.filters.as_ref().map_or(0, |cs| cs.memory_bytes())
                + planning_threads(remote.1 > 0) as u64 * plan.largest_footer,
            arrow_decoding: plan.units.iter().any(|u| u.fast.is_none()),
            remote,
        }
    }
}

/// Threads that parse footers at once while planning: rayon's, or on object storage, where
/// each footer waits on a request, [`source::PLANNING_REQUESTS`].
pub fn planning_threads(remote: bool) -> usize {
    match remote {
        true => source::PLANNING_REQUESTS,
        false => rayon::current_num_threads(),
    }
}

/// Chooses the shape for `plan` under `cfg`'s budget and flags. `retained`: the resident bytes
/// planning added and still holds (the plan, and what the allocator kept of the footers it
/// parsed: 120 MiB for 4096 files of 100 columns, where the plan's estimate says less); the bound
/// charges the larger of that and the plan's estimate.
pub fn choose(cfg: &BuildConfig, plan: &Plan, retained: u64) -> Result<Budget> {
    let mut shape = Shape::of(plan);
    shape.held_bytes = shape.held_bytes.max(retained);
    choose_for(cfg, &shape)
}

/// Chooses the pipeline shape for `shape` under `cfg`'s budget and flags.
pub fn choose_for(cfg: &BuildConfig, shape_in: &Shape) -> Result<Budget> {
    let budget = cfg.memory_budget;
    let values = shape_in.value_columns as u64;
    let ncols = shape_in.value_columns + 2;
    let value_size: u64 = if shape_in.float32 { 4 } else { 8 };
    // The writer first gets its floor: buffers of at least WRITER_FLOOR a column when a quarter
    // of the budget allows it (smaller O_DIRECT writes are latency-bound), else that quarter.
    let floor = (WRITER_FLOOR * ncols as u64).min(budget / 4);
    let mut writer_opts = WriteOptions::default().with_memory(floor.max(1 << 20));
    let heaviest = Some(&shape_in.max_work.1);
    let (work, decode_row) = if shape_in.arrow_decoding {
        let row = DECODE_COPIES * 8 * (values + 1) + (values + 1).div_ceil(8);
        (shape_in.max_work.0, row)
    } else {
        (shape_in.max_work.0 + 2 * STEP_SCRATCH + FAST_STEP, 0)
    };
    let mut costs = Costs {
        fixed: FIXED + shape_in.held_bytes + shape_in.remote.1,
        work: work + CODECS + shape_in.remote.0,
        decode_row,
        slice_row: 8.max(value_size),
        writer: writer_opts.resident_bytes(ncols),
        writer_memory: writer_opts.per_column(ncols) * ncols as u64,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let max_readers = cfg.threads.unwrap_or(cores).min(shape_in.units.max(1));
    let longest = shape_in.longest_rows as usize;
    let shape = |costs: &Costs, readers: usize, batch: usize, capacity: usize| Budget {
        readers,
        batch_rows: batch,
        capacity,
        writer_bytes: costs.writer,
        writer_memory: costs.writer_memory,
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
    // Lookahead: a reader should be able to queue its share of a unit (its group of the columns
    // of the longest file); then it never waits for the writer to reach its unit, and the writer
    // never waits for a reader that is blocked. Halved while the budget is short, down to 4
    // slices; an explicit --channel-capacity is taken as is.
    let capacities = |r: usize, b: usize| -> Vec<usize> {
        if let Some(c) = cfg.channel_capacity {
            return vec![c];
        }
        let groups = (r as u64).min(values).max(1);
        let task = shape_in
            .longest_rows
            .saturating_mul(values.div_ceil(groups))
            .saturating_mul(value_size);
        let slice = (b as u64 * value_size).max(1);
        let full = task.div_ceil(slice).clamp(4, MAX_CAPACITY as u64) as usize;
        let mut tiers: Vec<usize> =
            std::iter::successors(Some(full), |&c| (c > 4).then(|| (c / 2).max(4))).collect();
        tiers.extend([2, 1]);
        tiers
    };
    // Slices of at least MIN_SLICE bytes are tried first, with every lookahead tier, before
    // smaller ones: the writer pays per slice, so small slices cost more than a shorter queue.
    let large: Vec<usize> = batches
        .iter()
        .copied()
        .filter(|&b| b as u64 * value_size >= MIN_SLICE || b == batches[0])
        .collect();
    let mut fits = None;
    'search: for (&r, sizes) in readers.iter().flat_map(|r| [(r, &large), (r, &batches)]) {
        for tier in 0.. {
            let mut any = false;
            for &b in sizes {
                let tiers = capacities(r, b);
                let Some(&c) = tiers.get(tier) else { continue };
                any = true;
                if !shape(&costs, r, b, c).over_budget() {
                    fits = Some((r, b, c));
                    break 'search;
                }
            }
            if !any {
                break;
            }
        }
    }
    if let Some((r, b, c)) = fits {
        // What the budget leaves goes to the writer, in doublings of its per-column buffer.
        while writer_opts.per_column(ncols) * 2 <= WRITER_MAX_PER_COLUMN {
            let bigger = writer_opts.with_memory(2 * writer_opts.per_column(ncols) * ncols as u64);
            let more = Costs {
                writer: bigger.resident_bytes(ncols),
                writer_memory: bigger.per_column(ncols) * ncols as u64,
                ..costs
            };
            if more.bound(r, b, c) > budget {
                break;
            }
            writer_opts = bigger;
            costs = more;
        }
        return Ok(shape(&costs, r, b, c));
    }
    // Nothing fits. Explicit flags are obeyed (the bound is reported); otherwise refuse up front.
    if let (Some(r), Some(b), Some(c)) = (cfg.threads, cfg.batch_rows, cfg.channel_capacity) {
        return Ok(shape(&costs, r, b, c));
    }
    // The smallest shape tried: the explicit flags' values, the smallest of the others.
    let smallest = *batches.last().unwrap_or(&512);
    let r = *readers.last().unwrap_or(&1);
    let c = cfg.channel_capacity.unwrap_or(1);
    Err(Error::Budget {
        budget,
        needed: costs.bound(r, smallest, c),
        readers: r,
        batch_rows: smallest,
        capacity: c,
        columns: ncols,
        writer: costs.writer,
        held: shape_in.held_bytes,
        file: heaviest.cloned().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BuildOptions;
    use proptest::prelude::*;

    fn cfg(budget: u64, threads: usize) -> BuildConfig {
        let mut cfg = BuildOptions {
            input: Some("in".into()),
            output: Some("out.spill".into()),
            no_target: Some(true),
            threads: Some(threads),
            ..Default::default()
        }
        .resolve()
        .expect("valid options");
        cfg.memory_budget = budget;
        cfg
    }

    /// The M universe: 64 files x 75k rows x 100 features + target, float32 output; a file's
    /// working set (the fast decoder's two busiest columns, or arrow-rs's 102 column chunks).
    fn m_universe(arrow_decoding: bool) -> Shape {
        let work = if arrow_decoding { 70 << 20 } else { 5 << 20 };
        Shape {
            units: 64,
            value_columns: 101,
            float32: true,
            max_work: (work, PathBuf::from("S0000.parquet")),
            longest_rows: 75_000,
            held_bytes: 0,
            arrow_decoding,
            remote: (0, 0),
        }
    }

    #[test]
    fn the_m_universe_fits_256_mib_and_the_writer_takes_what_is_left() {
        let b = choose_for(&cfg(256 << 20, 2), &m_universe(false)).expect("fits");
        // Each reader can queue its half of a file's columns: 75,000 rows x 51 columns.
        let lookahead = (75_000 * 51usize).div_ceil(65_536);
        assert_eq!(
            (b.readers, b.batch_rows, b.capacity),
            (2, 65_536, lookahead)
        );
        assert!(b.bound_bytes <= b.budget_bytes);
        // 103 columns x 1 MiB: the largest buffer a column gets.
        assert_eq!(b.writer_memory, 103 << 20);
        // With the O_DIRECT spares, each with its alignment page.
        assert_eq!(b.writer_bytes, ((1 << 20) + 4096) * (103 + 8));
    }

    #[test]
    fn arrow_decoding_costs_more_batches_and_writer_shrink() {
        let fast = choose_for(&cfg(256 << 20, 2), &m_universe(false)).expect("fits");
        let arrow = choose_for(&cfg(256 << 20, 2), &m_universe(true)).expect("fits");
        assert!(arrow.bound_bytes <= arrow.budget_bytes);
        assert!(arrow.writer_bytes < fast.writer_bytes);
        assert!(arrow.batch_rows < fast.batch_rows);
    }

    #[test]
    fn a_budget_too_small_for_any_shape_is_refused_naming_the_heaviest_file() {
        let err = choose_for(&cfg(32 << 20, 2), &m_universe(true)).expect_err("cannot fit");
        assert!(matches!(err, Error::Budget { .. }));
        assert!(err.to_string().contains("S0000.parquet"), "{err}");
    }

    proptest! {
        /// Whatever the shape and budget, a chosen shape (no flags forcing it) is within the
        /// budget, and the writer's buffers stay powers of two of at most 1 MiB a column (or the
        /// default share when that alone is larger).
        #[test]
        fn a_chosen_shape_is_within_the_budget(
            budget_mib in 16u64..2048,
            threads in 1usize..8,
            features in 1usize..3000,
            work_mib in 0u64..200,
            longest in 1u64..1_000_000,
            arrow in any::<bool>(),
            float32 in any::<bool>(),
        ) {
            let shape = Shape {
                units: 500,
                value_columns: features + 1,
                float32,
                max_work: (work_mib << 20, PathBuf::from("f.parquet")),
                longest_rows: longest,
                held_bytes: 0,
                arrow_decoding: arrow,
                remote: (0, 0),
            };
            let cfg = cfg(budget_mib << 20, threads);
            match choose_for(&cfg, &shape) {
                Ok(b) => {
                    prop_assert!(b.bound_bytes <= b.budget_bytes);
                    let ncols = features + 3;
                    let per_column = b.writer_memory / ncols as u64;
                    let default = WriteOptions::default()
                        .with_memory(((budget_mib << 20) / 8).clamp(1 << 20, 32 << 20))
                        .per_column(ncols);
                    prop_assert!(per_column.is_power_of_two());
                    prop_assert!(per_column <= WRITER_MAX_PER_COLUMN.max(default));
                }
                // A refusal is right only when the smallest shape does not fit either.
                Err(Error::Budget { needed, budget, .. }) => prop_assert!(needed > budget),
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
        }
    }
}
