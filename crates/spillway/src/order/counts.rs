//! The rows of each distinct time, counted in a hash map while `merge::find_runs` scans the time
//! column anyway: one sequential read, no merge. A universe with more distinct times than the
//! map may hold (its memory is the merge's, not yet in use) gives up the map, and the index is
//! counted by a merge instead (`merge::count_timestamps`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Bytes a distinct time costs in the map, growth included.
pub const TIME_BYTES: u64 = 48;

/// SplitMix64's finalizer: times are multiples of a grid step (low bits all zero), which a
/// plain multiply would leave in the bucket bits.
#[derive(Default, Clone, Copy)]
pub struct TimeHasher(u64);

impl Hasher for TimeHasher {
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_i64(&mut self, v: i64) {
        self.0 = v as u64;
    }
}

/// Row counts by time, up to a number of distinct times.
pub struct TimeCounts {
    map: Option<HashMap<i64, u64, BuildHasherDefault<TimeHasher>>>,
    max_times: usize,
}

impl TimeCounts {
    /// Counts of at most `max_times` distinct times.
    pub fn new(max_times: usize) -> TimeCounts {
        TimeCounts {
            map: Some(HashMap::default()),
            max_times,
        }
    }

    /// Counts the rows of `times` (dropping the map once it holds too many times).
    pub fn add(&mut self, times: &[i64]) {
        let Some(map) = &mut self.map else { return };
        for &t in times {
            *map.entry(t).or_insert(0) += 1;
        }
        if map.len() > self.max_times {
            self.map = None;
        }
    }

    /// The `(time, rows)` pairs in increasing time, unless the map was given up.
    pub fn into_sorted(self) -> Option<Vec<(i64, u64)>> {
        let mut counts: Vec<(i64, u64)> = self.map?.into_iter().collect();
        counts.sort_unstable_by_key(|&(t, _)| t);
        Some(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sort_by_time_and_give_up_past_the_cap() {
        let mut c = TimeCounts::new(3);
        c.add(&[300, 0, 300, 600, 0, 300]);
        assert_eq!(c.into_sorted(), Some(vec![(0, 2), (300, 3), (600, 1)]));
        let mut c = TimeCounts::new(2);
        c.add(&[1, 2, 3]);
        c.add(&[1]);
        assert_eq!(c.into_sorted(), None);
    }
}
