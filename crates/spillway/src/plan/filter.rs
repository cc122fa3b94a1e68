//! Cross-sectional filters, applied after the per-symbol steps and before any feature is decoded:
//!
//! 1. `--drop-null-target`: rows whose target is null or NaN go;
//! 2. `--min-cs N`: rows at a timestamp with fewer than N rows across the universe go;
//! 3. `--max-cs-samples K --seed S`: at a timestamp with more than K rows, exactly K stay.
//!
//! Sampling is order-free: every row gets a distinct key ([`key`]: `hash(seed, t, symbol name)`,
//! mixed with a tag that tells apart a symbol's rows at one time, then the symbol code) and a
//! timestamp keeps its K smallest keys. Every row at a timestamp has the same chance, and the
//! choice depends on neither thread count, input order nor batch sizes.
//!
//! Passes over the time (and target) columns only (`scan`), so the plan still knows every row's
//! offset: count rows per timestamp (a sorted table, O(distinct timestamps)); for sampling, keep a
//! bounded max-heap of K keys per over-full timestamp (O(over-full timestamps x K); `sample`, the
//! scan a shard's count runs too) and store only the K-th as that timestamp's threshold; then
//! count each file's surviving rows. Readers apply
//! the same [`CrossSection::keep`] row by row. The memory is checked against the budget before it
//! is taken.

use rayon::prelude::*;
use serde::Serialize;

use crate::cancel::Cancel;
use crate::config::FilterOptions;
use crate::error::{Error, Result, SymbolError};
use crate::plan::Unit;

use super::key::{self, name_hash, Key, KEEP_ALL};
use super::sample::{self, smallest_keys, Heaps};
use super::scan::{after_target, count_rows, scanner, Scan, COUNT_ENTRY, CROSS_SECTION};

/// Bytes per distinct timestamp in the final table (time, threshold).
const TABLE_ENTRY: u64 = 24;
/// Bytes per sampling heap slot (a [`Key`]).
const HEAP_SLOT: u64 = std::mem::size_of::<Key>() as u64;

/// Rows each filter removed, and what the table cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FilterStats {
    /// Rows removed by `--drop-null-target`.
    pub removed_null_target: u64,
    /// Rows removed by `--min-cs`.
    pub removed_min_cs: u64,
    /// Rows removed by `--max-cs-samples`.
    pub removed_sampling: u64,
    /// Distinct timestamps (after the target filter).
    pub distinct_timestamps: u64,
    /// Timestamps that had more than K rows.
    pub sampled_timestamps: u64,
    /// Peak memory of the passes (count map, or table plus heaps).
    pub memory_bytes: u64,
}

/// The decisions, shared by the planning passes and the readers.
#[derive(Debug, Clone)]
pub struct CrossSection {
    opts: FilterOptions,
    /// Sorted timestamps that survive `--min-cs` (empty when no table is needed).
    times: Vec<i64>,
    /// Per timestamp: the largest key kept, or `KEEP_ALL`.
    thresholds: Vec<Key>,
    /// Per symbol code: hash of its name.
    names: Vec<u64>,
    /// A time shard's timestamps, `[first, last]`: rows outside go (`None`: every time).
    window: Option<[i64; 2]>,
}

impl CrossSection {
    /// Whether the row at time `t` of symbol `code`, with [`Repeats`] tag `tag`, stays.
    /// `target_ok`: its target is neither null nor NaN. `cursor` remembers the last table
    /// position (rows of a file are usually in time order, so most lookups are O(1)).
    pub fn keep(&self, t: i64, target_ok: bool, code: u32, tag: u64, cursor: &mut usize) -> bool {
        if self.window.is_some_and(|[a, b]| t < a || t > b) {
            return false;
        }
        if self.opts.drop_null_target && !target_ok {
            return false;
        }
        if !self.opts.needs_table() {
            return true;
        }
        let Some(i) = self.find(t, cursor) else {
            return false;
        };
        let th = self.thresholds[i];
        th == KEEP_ALL || self.key(t, code, tag) <= th
    }

    fn find(&self, t: i64, cursor: &mut usize) -> Option<usize> {
        sample::find(&self.times, t, cursor)
    }

    fn key(&self, t: i64, code: u32, tag: u64) -> Key {
        key::key(self.opts.seed, t, self.names[code as usize], code, tag)
    }

    /// No filter: every row stays (until [`CrossSection::within`] sets a window).
    pub fn none() -> CrossSection {
        CrossSection {
            opts: FilterOptions::default(),
            times: Vec::new(),
            thresholds: Vec::new(),
            names: Vec::new(),
            window: None,
        }
    }

    /// These decisions, keeping only rows whose time is in `[first, last]` (a time shard's).
    pub fn within(self, window: [i64; 2]) -> CrossSection {
        CrossSection {
            window: Some(window),
            ..self
        }
    }

    /// The settings.
    pub fn options(&self) -> FilterOptions {
        self.opts
    }

    /// Resident bytes of the table.
    pub fn memory_bytes(&self) -> u64 {
        self.times.len() as u64 * TABLE_ENTRY + self.names.len() as u64 * 8
    }
}

/// Runs the filter passes over `units` (whose `out` counts are updated) and returns the decisions
/// for the readers. `symbols[code]` names each symbol. `memory` bounds the passes' memory.
pub fn apply(
    units: &mut [Unit],
    symbols: &[String],
    opts: FilterOptions,
    memory: u64,
    cancel: &Cancel,
) -> Result<(CrossSection, FilterStats)> {
    let names: Vec<u64> = symbols.iter().map(|s| name_hash(s)).collect();
    let mut stats = FilterStats::default();
    let mut cs = CrossSection {
        opts,
        times: Vec::new(),
        thresholds: Vec::new(),
        names,
        window: None,
    };
    let scan = scanner(symbols, cancel);

    if opts.needs_table() {
        // Pass 1: rows per timestamp (after the target filter).
        let limit = memory / 2;
        let counts = count_rows(units, &after_target(opts), limit, &scan, CROSS_SECTION)?;
        cancel.check()?;
        let count_bytes = counts.len() as u64 * COUNT_ENTRY;
        stats.distinct_timestamps = counts.len() as u64;
        let mut table: Vec<(i64, u32)> = counts.into_iter().collect();
        table.sort_unstable();
        let min = opts.min_cs;
        stats.removed_min_cs = table
            .iter()
            .filter(|(_, n)| u64::from(*n) < min)
            .map(|(_, n)| u64::from(*n))
            .sum();
        table.retain(|(_, n)| u64::from(*n) >= min);
        cs.times = table.iter().map(|(t, _)| *t).collect();
        cs.thresholds = vec![KEEP_ALL; table.len()];
        stats.memory_bytes = count_bytes;

        // Pass 2: the K smallest keys of every over-full timestamp.
        if let Some(k) = opts.max_cs_samples {
            let slots: Vec<usize> = (0..table.len())
                .filter(|&i| u64::from(table[i].1) > k)
                .collect();
            stats.sampled_timestamps = slots.len() as u64;
            let heap_bytes = slots.len() as u64 * k * HEAP_SLOT;
            let table_bytes = cs.memory_bytes();
            if heap_bytes + table_bytes > limit {
                return Err(Error::FilterMemory(format!(
                    "--max-cs-samples {k}: {} timestamps with more than {k} rows need about {} MiB of sampling heaps, over half the memory budget; lower K or raise --memory-budget",
                    slots.len(),
                    (heap_bytes + table_bytes) >> 20
                )));
            }
            stats.memory_bytes = stats.memory_bytes.max(heap_bytes + table_bytes);
            let mut slot_of = vec![u32::MAX; table.len()];
            for (s, &i) in slots.iter().enumerate() {
                slot_of[i] = s as u32;
            }
            let heaps = smallest_keys(
                units,
                &scan,
                opts,
                &cs.names,
                &cs.times,
                |i| {
                    slot_of
                        .get(i)
                        .and_then(|&s| (s != u32::MAX).then_some(s as usize))
                },
                Heaps::uniform(slots.len(), k as usize),
            )?;
            cancel.check()?;
            for (s, &i) in slots.iter().enumerate() {
                cs.thresholds[i] = heaps.max(s);
            }
        }
    }

    let tally = survivors(units, &cs, opts, &scan)?;
    stats.removed_null_target = tally.null_target;
    if opts.max_cs_samples.is_some() {
        stats.removed_sampling = tally.after_min_cs - tally.kept;
    }
    cancel.check()?;
    Ok((cs, stats))
}

/// The cross-section decided elsewhere (`spillway plan-cs`, for a shard build): per kept
/// timestamp, in increasing order, its threshold (`None`: keep every row).
#[derive(Debug, Clone, Default)]
pub struct Decided {
    /// Timestamps that survive `--min-cs`, increasing.
    pub times: Vec<i64>,
    /// Per timestamp: the largest key kept, or `None` for every row.
    pub thresholds: Vec<Option<Key>>,
    /// Distinct timestamps across the universe (after the target filter).
    pub distinct: u64,
    /// Timestamps over `--max-cs-samples` across the universe.
    pub sampled: u64,
}

impl Decided {
    /// Resident bytes of the decisions once loaded ([`CrossSection`]'s table).
    pub fn table_bytes(timestamps: u64) -> u64 {
        timestamps.saturating_mul(TABLE_ENTRY)
    }
}

/// [`apply`] with the cross-section `decided` elsewhere: only the last pass, counting each file's
/// surviving rows, runs here; `symbols` is the global symbol table the plan's codes index.
pub fn apply_decided(
    units: &mut [Unit],
    symbols: &[String],
    opts: FilterOptions,
    decided: &Decided,
    cancel: &Cancel,
) -> Result<(CrossSection, FilterStats)> {
    let cs = CrossSection {
        opts,
        times: decided.times.clone(),
        thresholds: decided
            .thresholds
            .iter()
            .map(|t| t.unwrap_or(KEEP_ALL))
            .collect(),
        names: symbols.iter().map(|s| name_hash(s)).collect(),
        window: None,
    };
    let scan = scanner(symbols, cancel);
    let tally = survivors(units, &cs, opts, &scan)?;
    cancel.check()?;
    let stats = FilterStats {
        removed_null_target: tally.null_target,
        removed_min_cs: tally.passed_null - tally.after_min_cs,
        removed_sampling: match opts.max_cs_samples {
            Some(_) => tally.after_min_cs - tally.kept,
            None => 0,
        },
        distinct_timestamps: decided.distinct,
        sampled_timestamps: decided.sampled,
        memory_bytes: cs.memory_bytes(),
    };
    Ok((cs, stats))
}

/// Rows counted by the last pass, over all files.
#[derive(Debug, Default)]
struct Tally {
    kept: u64,
    null_target: u64,
    passed_null: u64,
    after_min_cs: u64,
}

/// The last pass: every file's surviving rows (into `out`), and what each filter removed.
fn survivors(
    units: &mut [Unit],
    cs: &CrossSection,
    opts: FilterOptions,
    scan: &Scan<'_>,
) -> Result<Tally> {
    let per_unit: Vec<Tally> = units
        .par_iter()
        .map(|u| {
            let mut t = Tally::default();
            let mut cursor = 0usize;
            scan(u, &mut |time, ok, tag| {
                if opts.drop_null_target && !ok {
                    t.null_target += 1;
                    return;
                }
                t.passed_null += 1;
                if opts.needs_table() && cs.find(time, &mut cursor).is_some() {
                    t.after_min_cs += 1;
                }
                if cs.keep(time, ok, u.symbol, tag, &mut cursor) {
                    t.kept += 1;
                }
            })?;
            Ok(t)
        })
        .collect::<Result<_, SymbolError>>()?;
    let mut sum = Tally::default();
    for (u, t) in units.iter_mut().zip(&per_unit) {
        u.out = t.kept;
        sum.kept += t.kept;
        sum.null_target += t.null_target;
        sum.passed_null += t.passed_null;
        sum.after_min_cs += t.after_min_cs;
    }
    Ok(sum)
}
