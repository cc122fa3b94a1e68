//! `--max-cs-samples`: the scan that keeps, per timestamp, the K smallest sampling keys
//! ([`super::key`]), written once for both places that sample. The single-machine filters
//! (`filter`) keep a heap for every timestamp over K and make its largest key the timestamp's
//! threshold; a shard's count (`count`) keeps `min(rows, K)` keys of every timestamp, and
//! `plan-cs` merges the shards' keys. A shard build keeps exactly the rows a single machine
//! would because both run [`smallest_keys`]: the same rows offered (the per-symbol steps, then
//! `--drop-null-target`), the same key for each, the same bounded heaps.

use std::sync::Mutex;

use rayon::prelude::*;

use crate::config::FilterOptions;
use crate::error::SymbolError;
use crate::plan::Unit;

use super::key::{key, Key, KEEP_ALL};
use super::scan::Scan;

/// Scans `units` and offers every row's sampling key to `heaps`: a row at time `t` goes to heap
/// `slot_of(i)` where `i` is the position of `t` in the sorted `times` (a time not there, or a
/// position `slot_of` maps to `None`, samples nothing). Rows whose target is null or NaN are left
/// out under `--drop-null-target`. `names[code]` is the name hash of symbol `code`
/// ([`super::key::name_hash`]). Files are scanned in parallel; the heaps keep the K smallest keys
/// whatever the order they arrive in.
pub(crate) fn smallest_keys(
    units: &[Unit],
    scan: &Scan<'_>,
    opts: FilterOptions,
    names: &[u64],
    times: &[i64],
    slot_of: impl Fn(usize) -> Option<usize> + Sync,
    heaps: Heaps,
) -> Result<Heaps, SymbolError> {
    let heaps = Mutex::new(heaps);
    units.par_iter().try_for_each(|u| {
        let mut cursor = 0usize;
        let mut mine = Vec::new();
        let name = names[u.symbol as usize];
        scan(u, &mut |t, ok, tag| {
            if opts.drop_null_target && !ok {
                return;
            }
            if let Some(slot) = find(times, t, &mut cursor).and_then(&slot_of) {
                mine.push((slot, key(opts.seed, t, name, u.symbol, tag)));
            }
        })?;
        // One lock per file: its keys are gathered first.
        let mut h = heaps.lock().unwrap_or_else(|p| p.into_inner());
        for (slot, key) in mine {
            h.push(slot, key);
        }
        Ok(())
    })?;
    Ok(heaps.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// The position of `t` in the sorted `times`, trying the last position and the next first (a
/// file's rows are usually in time order, so most lookups are O(1)); `cursor` remembers it.
pub(crate) fn find(times: &[i64], t: i64, cursor: &mut usize) -> Option<usize> {
    for probe in [*cursor, *cursor + 1] {
        if times.get(probe) == Some(&t) {
            *cursor = probe;
            return Some(probe);
        }
    }
    let i = times.binary_search(&t).ok()?;
    *cursor = i;
    Some(i)
}

/// One bounded max-heap of keys per slot, in one flat array: slot `s` holds at most
/// `off[s + 1] - off[s]` keys, the smallest pushed.
pub(crate) struct Heaps {
    off: Vec<usize>,
    keys: Vec<Key>,
    len: Vec<u32>,
}

impl Heaps {
    /// `slots` heaps of `k` keys each.
    pub(crate) fn uniform(slots: usize, k: usize) -> Heaps {
        Heaps::with_capacities(std::iter::repeat_n(k, slots))
    }

    /// One heap per capacity.
    pub(crate) fn with_capacities(caps: impl Iterator<Item = usize>) -> Heaps {
        let mut off = vec![0usize];
        for c in caps {
            off.push(off[off.len() - 1] + c);
        }
        let slots = off.len() - 1;
        Heaps {
            keys: vec![KEEP_ALL; off[slots]],
            len: vec![0; slots],
            off,
        }
    }

    /// Offers `key` to heap `slot`.
    pub(crate) fn push(&mut self, slot: usize, key: Key) {
        let heap = &mut self.keys[self.off[slot]..self.off[slot + 1]];
        let n = self.len[slot] as usize;
        if n < heap.len() {
            // Sift up.
            let mut i = n;
            heap[i] = key;
            while i > 0 && heap[(i - 1) / 2] < heap[i] {
                heap.swap(i, (i - 1) / 2);
                i = (i - 1) / 2;
            }
            self.len[slot] += 1;
        } else if heap.first().is_some_and(|&top| key < top) {
            // Replace the largest, sift down.
            heap[0] = key;
            let mut i = 0;
            loop {
                let (l, r) = (2 * i + 1, 2 * i + 2);
                let mut m = i;
                if l < n && heap[l] > heap[m] {
                    m = l;
                }
                if r < n && heap[r] > heap[m] {
                    m = r;
                }
                if m == i {
                    break;
                }
                heap.swap(i, m);
                i = m;
            }
        }
    }

    /// The largest key kept in `slot` (its threshold).
    pub(crate) fn max(&self, slot: usize) -> Key {
        self.keys[self.off[slot]]
    }

    /// The keys kept in `slot`, sorted ascending.
    pub(crate) fn sorted(&mut self, slot: usize) -> &[Key] {
        let a = self.off[slot];
        let keys = &mut self.keys[a..a + self.len[slot] as usize];
        keys.sort_unstable();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heaps_keep_the_k_smallest() {
        let mut h = Heaps::uniform(1, 3);
        for v in [50u64, 10, 40, 30, 20, 60, 5] {
            h.push(0, (v, 0, false));
        }
        assert_eq!(h.max(0), (20, 0, false), "the 3 smallest are 5, 10, 20");
    }
}
