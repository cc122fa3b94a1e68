//! `spillway count`'s passes over one shard: rows per timestamp and, when sampling, the K smallest
//! sampling keys `(priority, global code, repeat)` of every timestamp, after the per-symbol steps
//! (null times, `--max-rows`) and `--drop-null-target`: the map half of the cross-section's
//! map-reduce.
//!
//! The same passes as the single-machine filters (`filter`): the same scan ([`super::scan`]) and
//! the same bottom-K sampling ([`super::sample::smallest_keys`]), over the shard's files only,
//! with the same keys ([`super::key`]: a symbol's files are all in its shard, so each row's tag is
//! the one a single machine gives it; codes are the global table's), so the K smallest keys of the
//! union of all shards are the K smallest a single machine would keep. Unlike the single machine,
//! a shard cannot know which timestamps are over K across the universe, so it keeps
//! `min(rows, K)` keys of every timestamp; the memory (16 bytes a key, 16 a timestamp) is checked
//! against half the budget before it is taken.

use crate::cancel::Cancel;
use crate::config::FilterOptions;
use crate::error::{Error, Result};

use super::cs_file::CountRecord;
use super::key::{name_hash, Key};
use super::sample::{smallest_keys, Heaps};
use super::scan::{after_target, count_rows, scanner, CROSS_SECTION};
use super::Unit;

/// Bytes per timestamp of the sorted table (time, count).
const TIME_ENTRY: u64 = 16;
/// Bytes per kept key.
const KEY_SLOT: u64 = std::mem::size_of::<Key>() as u64;

/// One shard's counts, ready to write.
pub struct Counted {
    /// Sorted timestamps.
    pub times: Vec<i64>,
    /// Rows at each timestamp.
    pub counts: Vec<u64>,
    heaps: Option<Heaps>,
    /// Rows counted.
    pub rows: u64,
    /// Keys kept.
    pub keys: u64,
    /// Peak memory of the passes.
    pub memory_bytes: u64,
}

impl Counted {
    /// Calls `f` with every record in time order.
    pub fn records<E>(
        &mut self,
        mut f: impl FnMut(&CountRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut rec = CountRecord::default();
        for (slot, (&t, &count)) in self.times.iter().zip(&self.counts).enumerate() {
            rec.t = t;
            rec.count = count;
            rec.keys.clear();
            if let Some(h) = self.heaps.as_mut() {
                rec.keys.extend_from_slice(h.sorted(slot));
            }
            f(&rec)?;
        }
        Ok(())
    }
}

/// Counts `units` (whose `symbol` codes index the global table `symbols`) under `opts`, in at
/// most half of `memory` bytes.
pub fn count_units(
    units: &[Unit],
    symbols: &[String],
    opts: FilterOptions,
    memory: u64,
    cancel: &Cancel,
) -> Result<Counted> {
    let limit = memory / 2;
    let scan = scanner(symbols, cancel);
    let counts = count_rows(units, &after_target(opts), limit, &scan, CROSS_SECTION)?;
    cancel.check()?;
    let mut table: Vec<(i64, u64)> = counts.into_iter().map(|(t, n)| (t, u64::from(n))).collect();
    table.sort_unstable();
    let (times, counts): (Vec<i64>, Vec<u64>) = table.into_iter().unzip();
    let rows = counts.iter().sum();
    let Some(k) = opts.max_cs_samples else {
        let memory_bytes = times.len() as u64 * TIME_ENTRY;
        return Ok(Counted {
            times,
            counts,
            heaps: None,
            rows,
            keys: 0,
            memory_bytes,
        });
    };
    let keys: u64 = counts.iter().map(|&n| n.min(k)).sum();
    let memory_bytes = keys * KEY_SLOT + times.len() as u64 * TIME_ENTRY;
    if memory_bytes > limit {
        return Err(Error::FilterMemory(format!(
            "count: {} timestamps with up to {k} sampling keys each need about {} MiB, over half the memory budget; raise --memory-budget or count fewer symbols at a time",
            times.len(),
            memory_bytes >> 20
        )));
    }
    // Every timestamp samples: which are over K is known only across all shards.
    let names: Vec<u64> = symbols.iter().map(|s| name_hash(s)).collect();
    let heaps = smallest_keys(
        units,
        &scan,
        opts,
        &names,
        &times,
        Some,
        Heaps::with_capacities(counts.iter().map(|&n| n.min(k) as usize)),
    )?;
    cancel.check()?;
    Ok(Counted {
        times,
        counts,
        heaps: Some(heaps),
        rows,
        keys,
        memory_bytes,
    })
}
