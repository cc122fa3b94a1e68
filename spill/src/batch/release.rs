//! Drop-behind for [`Batches`](super::Batches): the file pages the batches read, queued per
//! column and released in groups, so that the mapping of a file many times larger than RAM stays
//! small without a system call per column per batch.

use std::ops::Range;

use crate::read::Backing;

/// Pages of a memory map that one fault can map (Linux maps up to `fault_around_bytes`, 64 KiB by
/// default, of cached pages around the faulting one): released ranges are widened to this so that
/// no page mapped on the way is left behind.
const RELEASE_ALIGN: u64 = 64 << 10;

/// Bytes of file mapped (what was read, widened to 64 KiB windows) before they are released
/// together: one `madvise` per column per batch cost the iterator half its speed, because the
/// next batch faulted back the window it shares with the last. Also about the most the file adds
/// to the resident set beyond the windows one batch touches.
const RELEASE_BYTES: u64 = 8 << 20;

/// `r` widened to whole [`RELEASE_ALIGN`] windows.
fn windows(r: &Range<u64>) -> Range<u64> {
    r.start / RELEASE_ALIGN * RELEASE_ALIGN
        ..r.end.div_ceil(RELEASE_ALIGN).saturating_mul(RELEASE_ALIGN)
}

/// Bytes read and not yet released, per column, merged when they touch.
pub(super) struct Release<'a> {
    data: &'a dyn Backing,
    /// Per source column: byte ranges read, and whether they grew since the last flush.
    pending: Vec<Vec<(Range<u64>, bool)>>,
    /// Bytes of the windows of the queued ranges.
    mapped: u64,
}

impl<'a> Release<'a> {
    /// Nothing queued yet, for `columns` source columns of `data`.
    pub(super) fn new(data: &'a dyn Backing, columns: usize) -> Release<'a> {
        Release {
            data,
            pending: vec![Vec::new(); columns],
            mapped: 0,
        }
    }

    /// Whether enough is queued to release it now.
    pub(super) fn full(&self) -> bool {
        self.mapped >= RELEASE_BYTES
    }

    /// Queues the bytes `bytes` of source column `k`.
    pub(super) fn add(&mut self, k: usize, bytes: Range<u64>) {
        let size = |r: &Range<u64>| {
            let w = windows(r);
            w.end - w.start
        };
        let ranges = &mut self.pending[k];
        match ranges.last_mut() {
            Some((last, grew)) if bytes.start <= last.end && last.start <= bytes.end => {
                let before = size(last);
                *last = last.start.min(bytes.start)..last.end.max(bytes.end);
                *grew = true;
                self.mapped += size(last) - before;
            }
            _ => {
                self.mapped += size(&bytes);
                ranges.push((bytes, true));
            }
        }
    }

    /// Releases the queued ranges, widened to [`RELEASE_ALIGN`] windows. A range that grew since
    /// the last flush is probably being read on (the rest of its block): its last, partial
    /// window stays queued for one more round, so the next batch does not fault it back. At the
    /// end (`last`), everything goes.
    pub(super) fn flush(&mut self, last: bool) {
        let len = self.data.as_ref().len();
        let data = self.data;
        let release = |start: u64, end: u64| {
            let (start, end) = (start as usize, (end as usize).min(len));
            if start < end {
                data.done_with(start..end);
            }
        };
        for ranges in &mut self.pending {
            let n = ranges.len();
            let mut kept = None;
            for (i, (r, grew)) in ranges.drain(..).enumerate() {
                let w = windows(&r);
                let tail = r.end / RELEASE_ALIGN * RELEASE_ALIGN;
                // Only the newest range (the last) can be being read on.
                if grew && !last && i + 1 == n && tail < r.end {
                    release(w.start, tail);
                    kept = Some((tail.max(r.start)..r.end, false));
                } else {
                    release(w.start, w.end);
                }
            }
            ranges.extend(kept);
        }
        self.mapped = self
            .pending
            .iter()
            .flatten()
            .map(|(r, _)| RELEASE_ALIGN.min(r.end - r.start))
            .sum();
    }
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.flush(true);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// A backing that records what it is told to release.
    struct Recorder {
        bytes: Vec<u8>,
        released: RefCell<Vec<Range<usize>>>,
    }

    impl AsRef<[u8]> for Recorder {
        fn as_ref(&self) -> &[u8] {
            &self.bytes
        }
    }

    impl Backing for Recorder {
        fn done_with(&self, range: Range<usize>) {
            self.released.borrow_mut().push(range);
        }
    }

    const W: u64 = RELEASE_ALIGN;

    #[test]
    fn a_range_read_on_keeps_its_last_window_and_the_end_releases_everything() {
        let rec = Recorder {
            bytes: vec![0; 40 * W as usize],
            released: RefCell::new(Vec::new()),
        };
        {
            let mut rel = Release::new(&rec, 2);
            // Column 0 read sequentially in pieces that merge; column 1 in two far places.
            rel.add(0, W / 2..W + 100);
            rel.add(0, W + 100..3 * W + 10);
            rel.add(1, 20 * W + 5..20 * W + 9);
            rel.add(1, 30 * W..30 * W + 1);
            assert_eq!(rel.pending[0].len(), 1);
            assert_eq!(rel.mapped, 4 * W + W + W);
            rel.flush(false);
            // Column 0: up to its last partial window, which stays queued; column 1: its older
            // range whole, and its newer one (the last) kept the same way.
            assert_eq!(
                rec.released.borrow().clone(),
                [
                    0..3 * W as usize,
                    20 * W as usize..21 * W as usize,
                    30 * W as usize..30 * W as usize
                ]
                .into_iter()
                .filter(|r| r.start < r.end)
                .collect::<Vec<_>>()
            );
            assert_eq!(rel.pending[0], [(3 * W..3 * W + 10, false)]);
            assert_eq!(rel.pending[1], [(30 * W..30 * W + 1, false)]);
            rec.released.borrow_mut().clear();
            // Not read on by the next round: released whole then.
            rel.flush(false);
            assert!(rec
                .released
                .borrow()
                .contains(&(3 * W as usize..4 * W as usize)));
            assert!(rel.pending.iter().all(Vec::is_empty));
            rel.add(0, 39 * W + 1..40 * W);
        }
        // Dropped: everything queued goes, clipped to the data.
        assert_eq!(
            rec.released.borrow().last(),
            Some(&(39 * W as usize..40 * W as usize))
        );
    }
}
