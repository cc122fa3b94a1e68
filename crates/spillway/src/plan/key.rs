//! Sampling keys of `--max-cs-samples`: at a timestamp with more than K rows, the rows with the K
//! smallest keys stay.
//!
//! A row's key is `(priority, code, repeat)`. The priority hashes the seed, the timestamp and
//! the symbol's name; a symbol may hold several rows at one timestamp (times are allowed to repeat
//! and go backwards), so the priority also hashes the row's [`Repeats`] tag, which is 0 for the
//! first row of a symbol at a time when its time goes forward (every row of a symbol whose time
//! only goes forward: those keys are the plain `hash(seed, t, symbol)`), and tells apart every
//! other row. The code breaks ties between symbols and `repeat` (whether the tag is not 0) the
//! last one left within a symbol, so every row's key is distinct: exactly K rows stay.
//!
//! A key depends on the row's symbol, time and place in its symbol's read order only: not on the
//! thread count, batch sizes, or which shard reads the symbol (a symbol's files are all in one
//! shard, planned in the same order).

use super::Unit;

/// A row's sampling key: `(priority, symbol code, repeat)`, ordered as a tuple.
pub type Key = (u64, u32, bool);

/// A threshold meaning "keep every row at this timestamp" (above every key).
pub const KEEP_ALL: Key = (u64::MAX, u32::MAX, true);

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Stable hash of a symbol name (FNV-1a, then mixed): the same on every platform and release.
pub fn name_hash(name: &str) -> u64 {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    mix(h)
}

/// Sampling priority of (seed, timestamp, symbol): the priority of a row whose tag is 0.
pub fn priority(seed: u64, t: i64, name: u64) -> u64 {
    mix(mix(seed.wrapping_add(0x9E37_79B9_7F4A_7C15) ^ name).wrapping_add(t as u64))
}

/// The key of a row at `t` of symbol `code` (whose name hashes to `name`) with [`Repeats`] tag
/// `tag`. Tags other than 0 mix into the priority through bijections, so two rows of one symbol
/// at one time never share a priority unless one of them has tag 0 (at 2^-64), which `repeat`
/// tells apart.
pub fn key(seed: u64, t: i64, name: u64, code: u32, tag: u64) -> Key {
    let p = priority(seed, t, name);
    match tag {
        0 => (p, code, false),
        _ => (mix(p ^ mix(tag)), code, true),
    }
}

/// Tags a file's rows, in file order, so that no two rows of a symbol at one time share a tag.
///
/// A row whose time is after every time its symbol had before it (the times of the symbol's
/// earlier files, and of the earlier rows of its own file past the `--max-rows` cut) gets 0:
/// those times strictly increase, so they are distinct. Any other row (a repeated time, or time
/// going backwards) gets `1 +` its row index in the symbol (rows of earlier files, then its index
/// in the file), distinct by construction. The state is two integers.
#[derive(Debug, Clone, Copy)]
pub struct Repeats {
    latest: Option<i64>,
    earlier_rows: u64,
}

impl Repeats {
    /// The tags of `unit`'s rows.
    pub fn new(unit: &Unit) -> Repeats {
        Repeats {
            latest: unit.earlier_max,
            earlier_rows: unit.earlier_rows,
        }
    }

    /// The tag of the file's row `row` (its index among all the file's rows), at time `t`. Call
    /// it for every row past the cut that has a time, in file order.
    pub fn tag(&mut self, t: i64, row: u64) -> u64 {
        if self.latest.is_none_or(|l| t > l) {
            self.latest = Some(t);
            return 0;
        }
        self.earlier_rows.saturating_add(row).saturating_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `name_hash("AAPL")` and `priority(1, 100, name_hash("AAPL"))`, computed independently
    /// (FNV-1a and SplitMix64's mixer, in Python).
    const PINNED_AAPL: u64 = 0xcedc_d565_6acd_33a8;
    const PINNED_PRIORITY: u64 = 0x6238_4435_6a2a_d23e;

    #[test]
    fn priorities_are_stable_and_seed_dependent() {
        // Pinned values: a change here changes which rows every sampled build keeps.
        assert_eq!(name_hash("AAPL"), PINNED_AAPL);
        assert_eq!(priority(1, 100, name_hash("AAPL")), PINNED_PRIORITY);
        assert_eq!(
            key(1, 100, name_hash("AAPL"), 7, 0),
            (PINNED_PRIORITY, 7, false),
            "a row with tag 0 keeps the plain priority"
        );
        assert_ne!(
            priority(1, 100, name_hash("AAPL")),
            priority(2, 100, name_hash("AAPL"))
        );
        assert_ne!(
            priority(1, 100, name_hash("AAPL")),
            priority(1, 100, name_hash("MSFT"))
        );
        assert_ne!(
            priority(1, 100, name_hash("AAPL")),
            priority(1, 101, name_hash("AAPL"))
        );
    }

    #[test]
    fn a_key_takes_16_bytes() {
        // The documented memory bound (docs/book/building.md): 16 bytes a key, 24 a timestamp of
        // the decided table.
        assert_eq!(std::mem::size_of::<Key>(), 16);
    }

    #[test]
    fn repeated_rows_get_distinct_tags_and_keys() {
        let mut r = Repeats {
            latest: Some(5),
            earlier_rows: 10,
        };
        // Times: 5 (repeats the earlier file's latest), 6, 6, 4 (backwards), 7, 6.
        let tags: Vec<u64> = [5, 6, 6, 4, 7, 6]
            .iter()
            .enumerate()
            .map(|(i, &t)| r.tag(t, i as u64))
            .collect();
        assert_eq!(tags, [11, 0, 13, 14, 0, 16]);
        let name = name_hash("A");
        let keys: std::collections::HashSet<Key> =
            (0..1000).map(|tag| key(3, 6, name, 0, tag)).collect();
        assert_eq!(keys.len(), 1000);
    }
}
