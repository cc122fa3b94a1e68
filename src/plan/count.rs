//! `spillway count`'s passes over one shard: rows per timestamp and, when sampling, the K smallest
//! sampling keys `(priority, global code, repeat)` of every timestamp, after the per-symbol steps
//! (null times, `--max-rows`) and `--drop-null-target`: the map half of the cross-section's
//! map-reduce.
//!
//! The same passes as the single-machine filters (`filter`), over the shard's files only, with
//! the same keys ([`super::key`]: a symbol's files are all in its shard, so each row's tag is the
//! one a single machine gives it; codes are the global table's), so the K smallest keys of the
//! union of all shards are the K smallest a single machine would keep. Unlike the single machine,
//! a shard cannot know which timestamps are over K across the universe, so it keeps
//! `min(rows, K)` keys of every timestamp; the memory (16 bytes a key, 16 a timestamp) is checked
//! against half the budget before it is taken.

use std::sync::Mutex;

use rayon::prelude::*;

use crate::cancel::Cancel;
use crate::config::FilterOptions;
use crate::error::{Error, Result, SymbolError};

use super::cs_file::CountRecord;
use super::filter::{count_rows, scanner, Heaps};
use super::key::{key, name_hash, Key};
use super::Unit;

/// Bytes per timestamp of the sorted table (time, count).
const TIME_ENTRY: u64 = 16;
/// Bytes per kept key.
const KEY_SLOT: u64 = std::mem::size_of::<Key>() as u64;

/// One shard's counts, ready to write.
pub struct Counted {
    /// Sorted timestamps and their row counts.
    pub times: Vec<(i64, u64)>,
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
        for (slot, &(t, count)) in self.times.iter().enumerate() {
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
    let counts = count_rows(units, opts, limit, &scan)?;
    cancel.check()?;
    let mut times: Vec<(i64, u64)> = counts.into_iter().map(|(t, n)| (t, u64::from(n))).collect();
    times.sort_unstable();
    let rows = times.iter().map(|&(_, n)| n).sum();
    let Some(k) = opts.max_cs_samples else {
        let memory_bytes = times.len() as u64 * TIME_ENTRY;
        return Ok(Counted {
            times,
            heaps: None,
            rows,
            keys: 0,
            memory_bytes,
        });
    };
    let keys: u64 = times.iter().map(|&(_, n)| n.min(k)).sum();
    let memory_bytes = keys * KEY_SLOT + times.len() as u64 * TIME_ENTRY;
    if memory_bytes > limit {
        return Err(Error::FilterMemory(format!(
            "count: {} timestamps with up to {k} sampling keys each need about {} MiB, over half the memory budget; raise --memory-budget or count fewer symbols at a time",
            times.len(),
            memory_bytes >> 20
        )));
    }
    let heaps = Mutex::new(Heaps::with_capacities(
        times.iter().map(|&(_, n)| n.min(k) as usize),
    ));
    let names: Vec<u64> = symbols.iter().map(|s| name_hash(s)).collect();
    let seed = opts.seed;
    units.par_iter().try_for_each(|u| {
        let mut cursor = 0usize;
        let mut mine = Vec::new();
        let name = names[u.symbol as usize];
        scan(u, &mut |t, ok, tag| {
            if opts.drop_null_target && !ok {
                return;
            }
            if let Some(slot) = find(&times, t, &mut cursor) {
                mine.push((slot, key(seed, t, name, u.symbol, tag)));
            }
        })?;
        let mut h = heaps.lock().unwrap_or_else(|p| p.into_inner());
        for (slot, key) in mine {
            h.push(slot, key);
        }
        Ok::<_, SymbolError>(())
    })?;
    cancel.check()?;
    Ok(Counted {
        times,
        heaps: Some(heaps.into_inner().unwrap_or_else(|p| p.into_inner())),
        rows,
        keys,
        memory_bytes,
    })
}

/// The slot of `t` in the sorted `times`, trying the last position and the next first.
fn find(times: &[(i64, u64)], t: i64, cursor: &mut usize) -> Option<usize> {
    for probe in [*cursor, *cursor + 1] {
        if times.get(probe).is_some_and(|&(x, _)| x == t) {
            *cursor = probe;
            return Some(probe);
        }
    }
    let i = times.binary_search_by(|&(x, _)| x.cmp(&t)).ok()?;
    *cursor = i;
    Some(i)
}
