//! Mean and population standard deviation of a float column's finite values, computed while the
//! bytes go out.
//!
//! Numerically stable and deterministic whatever the write slicing:
//! - rows are cut into blocks of [`BLOCK_ROWS`] at absolute row positions (block `k` is rows
//!   `[k * BLOCK_ROWS, (k + 1) * BLOCK_ROWS)`), wherever the writes start and stop;
//! - within a block, the sums of `d = x - shift` and `d * d` are accumulated in f64, where `shift`
//!   is the block's first finite value (in row order). A shift taken from the data bounds the
//!   cancellation in `M2 = sum(d^2) - sum(d)^2 / n`: `(mean - shift)^2 <= M2`, so `sum(d^2)` is at
//!   most `(n + 1) * M2` and at most `log2(n + 1)` ~ 10 bits are lost, instead of all of them for
//!   a large offset and a small variance (1e8 + N(0, 1e-3));
//! - the sums run in [`LANES`] accumulators chosen by `row % LANES` (so the loop vectorizes, and a
//!   value meets the same accumulator whatever slice brings it), reduced in lane order when the
//!   block ends. Values that are not finite add zero; when the caller knows a slice has none (its
//!   min/max pass saw no NaN and finite extremes), a loop without the masks runs instead: fewer
//!   than half the vector operations, the same sums bit for bit;
//! - a block's mean is kept relative to the column's first finite value (the *origin*): block
//!   means near a large offset would otherwise carry the offset's rounding (1e8 has an ulp of
//!   1.5e-8, 1.5e-5 of a 1e-3 spread) into every combination;
//! - blocks are combined with Chan et al.'s pairwise formula in a binary-counter tree over block
//!   indices (block 0 with 1, 2 with 3, then the pairs, ...), a fixed order with `O(log blocks)`
//!   error growth and `O(log blocks)` memory.
//!
//! No fused multiply-add is used (Rust never contracts `a * b + c`), so the vectorized loops and
//! the scalar ones give the same bits on every x86-64 and every other target.

/// Rows per block, at absolute row positions.
pub(crate) const BLOCK_ROWS: u64 = 1024;
/// Accumulators per block; a value at row `r` goes to accumulator `r % LANES`.
const LANES: usize = 16;

/// Count, mean (relative to the origin) and sum of squared deviations from the mean (`M2`) of some
/// values.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Moments {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Moments {
    /// The moments of the union of `a`'s values and `b`'s (Chan, Golub and LeVeque, 1979).
    fn merge(a: Moments, b: Moments) -> Moments {
        if a.n == 0 {
            return b;
        }
        if b.n == 0 {
            return a;
        }
        let n = a.n + b.n;
        let (na, nb, nn) = (a.n as f64, b.n as f64, n as f64);
        let delta = b.mean - a.mean;
        Moments {
            n,
            mean: a.mean + delta * (nb / nn),
            m2: a.m2 + b.m2 + delta * delta * (na * (nb / nn)),
        }
    }
}

/// The running mean and standard deviation of one float column.
#[derive(Debug, Clone)]
pub(crate) struct MomentsAccum {
    /// Next row (absolute): the writer feeds each column in row order from row 0.
    row: u64,
    /// The column's first finite value, once seen: block means are relative to it.
    origin: Option<f64>,
    /// The current block's first finite value, once seen.
    shift: Option<f64>,
    s1: [f64; LANES],
    s2: [f64; LANES],
    /// Finite values per lane (exact integers in f64: the masked loop vectorizes best so).
    count: [f64; LANES],
    /// Finite values of the current block added by the loop without masks.
    unmasked: u64,
    /// `levels[i]` holds the merged moments of `2^i` consecutive finished blocks (a binary
    /// counter): higher levels hold earlier rows.
    levels: Vec<Option<Moments>>,
}

impl Default for MomentsAccum {
    fn default() -> MomentsAccum {
        MomentsAccum {
            row: 0,
            origin: None,
            shift: None,
            s1: [0.0; LANES],
            s2: [0.0; LANES],
            count: [0.0; LANES],
            unmasked: 0,
            levels: Vec::new(),
        }
    }
}

/// A float element the accumulator reads (f32 values are widened exactly to f64).
pub(crate) trait Float: Copy {
    fn widen(self) -> f64;
}

impl Float for f32 {
    #[inline(always)]
    fn widen(self) -> f64 {
        f64::from(self)
    }
}

impl Float for f64 {
    #[inline(always)]
    fn widen(self) -> f64 {
        self
    }
}

impl MomentsAccum {
    /// Folds in the next values of the column (the rows right after those already seen).
    /// `all_finite` says every value is finite (only a faster path: the sums are the same).
    pub(crate) fn update<V: Float>(&mut self, mut values: &[V], all_finite: bool) {
        while !values.is_empty() {
            let in_block = (self.row % BLOCK_ROWS) as usize;
            let take = values.len().min(BLOCK_ROWS as usize - in_block);
            let (seg, rest) = values.split_at(take);
            if self.shift.is_none() {
                // Values before the first finite one are not finite, so they add nothing below.
                self.shift = seg.iter().map(|v| v.widen()).find(|x| x.is_finite());
                self.origin = self.origin.or(self.shift);
            }
            if let Some(shift) = self.shift {
                let lane0 = (self.row % LANES as u64) as usize;
                if all_finite {
                    accumulate_finite(seg, lane0, shift, &mut self.s1, &mut self.s2);
                    self.unmasked += seg.len() as u64;
                } else {
                    accumulate(
                        seg,
                        lane0,
                        shift,
                        &mut self.s1,
                        &mut self.s2,
                        &mut self.count,
                    );
                }
            }
            self.row += take as u64;
            if self.row.is_multiple_of(BLOCK_ROWS) {
                self.close_block();
            }
            values = rest;
        }
    }

    /// Ends the current block: reduces its lanes in order and pushes it into the tree.
    fn close_block(&mut self) {
        let s1 = self.s1.iter().fold(0.0, |a, &b| a + b);
        let s2 = self.s2.iter().fold(0.0, |a, &b| a + b);
        // Lane counts are exact integers (at most BLOCK_ROWS each).
        let n = self.count.iter().map(|&c| c as u64).sum::<u64>() + self.unmasked;
        let block = match (self.shift, self.origin) {
            (Some(shift), Some(origin)) if n > 0 => Moments {
                n,
                // Exact when shift and origin are within a factor of 2 (a large offset with a
                // small spread); else its rounding is small against the spread.
                mean: (shift - origin) + s1 / n as f64,
                // Rounding can take a zero M2 below zero; an overflow's NaN must stay NaN.
                m2: match s2 - s1 * (s1 / n as f64) {
                    m2 if m2 < 0.0 => 0.0,
                    m2 => m2,
                },
            },
            _ => Moments::default(),
        };
        self.shift = None;
        self.s1 = [0.0; LANES];
        self.s2 = [0.0; LANES];
        self.count = [0.0; LANES];
        self.unmasked = 0;
        let mut carry = block;
        for level in self.levels.iter_mut() {
            match level.take() {
                Some(earlier) => carry = Moments::merge(earlier, carry),
                None => {
                    *level = Some(carry);
                    return;
                }
            }
        }
        self.levels.push(Some(carry));
    }

    /// (mean, population standard deviation) of the finite values so far; `None` when there is
    /// none, or when a value overflows f64 (only possible for f64 data beyond about 1e153).
    pub(crate) fn finish(&self) -> (Option<f64>, Option<f64>) {
        let mut acc = self.clone();
        if !acc.row.is_multiple_of(BLOCK_ROWS) {
            acc.close_block();
        }
        let total = acc
            .levels
            .iter()
            .rev()
            .flatten()
            .fold(Moments::default(), |a, &b| Moments::merge(a, b));
        let Some(origin) = acc.origin.filter(|_| total.n > 0) else {
            return (None, None);
        };
        let mean = origin + total.mean;
        let std = (total.m2 / total.n as f64).sqrt();
        (
            mean.is_finite().then_some(mean),
            std.is_finite().then_some(std),
        )
    }
}

/// Adds the values of one block segment, whose first value is at lane `lane0`, to the lanes.
fn accumulate<V: Float>(
    values: &[V],
    lane0: usize,
    shift: f64,
    s1: &mut [f64; LANES],
    s2: &mut [f64; LANES],
    count: &mut [f64; LANES],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { accumulate_avx2(values, lane0, shift, s1, s2, count) };
    }
    accumulate_lanes(values, lane0, shift, s1, s2, count);
}

/// The same loop compiled for AVX2 (4 f64 per register, `vcvtps2pd` for f32): the baseline x86-64
/// build has only SSE2. Same operations in the same order per lane, so the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn accumulate_avx2<V: Float>(
    values: &[V],
    lane0: usize,
    shift: f64,
    s1: &mut [f64; LANES],
    s2: &mut [f64; LANES],
    count: &mut [f64; LANES],
) {
    accumulate_lanes(values, lane0, shift, s1, s2, count);
}

/// [`accumulate`] for values that are all finite: no masks, no counts.
fn accumulate_finite<V: Float>(
    values: &[V],
    lane0: usize,
    shift: f64,
    s1: &mut [f64; LANES],
    s2: &mut [f64; LANES],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { accumulate_finite_avx2(values, lane0, shift, s1, s2) };
    }
    accumulate_finite_lanes(values, lane0, shift, s1, s2);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn accumulate_finite_avx2<V: Float>(
    values: &[V],
    lane0: usize,
    shift: f64,
    s1: &mut [f64; LANES],
    s2: &mut [f64; LANES],
) {
    accumulate_finite_lanes(values, lane0, shift, s1, s2);
}

/// The lanes of [`accumulate_lanes`] without the mask: for finite values `d` is the same, so each
/// lane receives the same additions in the same order.
#[inline(always)]
fn accumulate_finite_lanes<V: Float>(
    values: &[V],
    lane0: usize,
    shift: f64,
    s1: &mut [f64; LANES],
    s2: &mut [f64; LANES],
) {
    #[inline(always)]
    fn step(x: f64, shift: f64, s1: &mut f64, s2: &mut f64) {
        let d = x - shift;
        *s1 += d;
        *s2 += d * d;
    }
    let head = ((LANES - lane0) % LANES).min(values.len());
    let (head_values, rest) = values.split_at(head);
    for (i, v) in head_values.iter().enumerate() {
        let l = lane0 + i;
        step(v.widen(), shift, &mut s1[l], &mut s2[l]);
    }
    let mut groups = rest.chunks_exact(LANES);
    for g in &mut groups {
        for l in 0..LANES {
            step(g[l].widen(), shift, &mut s1[l], &mut s2[l]);
        }
    }
    for (l, v) in groups.remainder().iter().enumerate() {
        step(v.widen(), shift, &mut s1[l], &mut s2[l]);
    }
}

#[inline(always)]
fn accumulate_lanes<V: Float>(
    values: &[V],
    lane0: usize,
    shift: f64,
    s1: &mut [f64; LANES],
    s2: &mut [f64; LANES],
    count: &mut [f64; LANES],
) {
    #[inline(always)]
    fn step(x: f64, shift: f64, s1: &mut f64, s2: &mut f64, count: &mut f64) {
        let finite = x.is_finite();
        let d = if finite { x - shift } else { 0.0 };
        *s1 += d;
        *s2 += d * d;
        *count += if finite { 1.0 } else { 0.0 };
    }
    // Up to the next row that is a multiple of LANES, one lane at a time.
    let head = ((LANES - lane0) % LANES).min(values.len());
    let (head_values, rest) = values.split_at(head);
    for (i, v) in head_values.iter().enumerate() {
        let l = lane0 + i;
        step(v.widen(), shift, &mut s1[l], &mut s2[l], &mut count[l]);
    }
    // Then whole groups of LANES rows, row r in lane r % LANES: the vectorized loop.
    let mut groups = rest.chunks_exact(LANES);
    for g in &mut groups {
        for l in 0..LANES {
            step(g[l].widen(), shift, &mut s1[l], &mut s2[l], &mut count[l]);
        }
    }
    for (l, v) in groups.remainder().iter().enumerate() {
        step(v.widen(), shift, &mut s1[l], &mut s2[l], &mut count[l]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn moments_sliced<V: Float>(values: &[V], cuts: &[usize]) -> (Option<f64>, Option<f64>) {
        let mut acc = MomentsAccum::default();
        let mut at = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(values.len())).collect();
        cuts.sort_unstable();
        for c in cuts.into_iter().chain([values.len()]) {
            let slice = &values[at..c];
            // As the writer does: the fast path exactly when the slice is all finite.
            acc.update(slice, slice.iter().all(|v| v.widen().is_finite()));
            at = c;
        }
        acc.finish()
    }

    /// The masked loop only, whatever the values.
    fn moments_masked<V: Float>(values: &[V]) -> (Option<f64>, Option<f64>) {
        let mut acc = MomentsAccum::default();
        acc.update(values, false);
        acc.finish()
    }

    fn bits(m: (Option<f64>, Option<f64>)) -> (Option<u64>, Option<u64>) {
        (m.0.map(f64::to_bits), m.1.map(f64::to_bits))
    }

    /// Sum with Neumaier's compensation: a reference good to about one rounding.
    fn compensated(values: impl Iterator<Item = f64>) -> f64 {
        let (mut sum, mut c) = (0.0f64, 0.0f64);
        for v in values {
            let t = sum + v;
            c += if sum.abs() >= v.abs() {
                (sum - t) + v
            } else {
                (v - t) + sum
            };
            sum = t;
        }
        sum + c
    }

    /// Two-pass mean and population std of the finite values, with compensated sums.
    fn reference(values: &[f64]) -> Option<(f64, f64)> {
        let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if finite.is_empty() {
            return None;
        }
        let n = finite.len() as f64;
        let mean0 = compensated(finite.iter().copied()) / n;
        // One correction step: the mean of the residuals.
        let mean = mean0 + compensated(finite.iter().map(|x| x - mean0)) / n;
        // The corrected two-pass formula: the second term cancels the error of `mean` itself
        // (on 3e9 + N(0, 1e-3), mean's last bit is 2e-4 standard deviations).
        let dev = compensated(finite.iter().map(|x| x - mean));
        let var = (compensated(finite.iter().map(|x| (x - mean) * (x - mean))) - dev * dev / n) / n;
        Some((mean, var.max(0.0).sqrt()))
    }

    fn close(got: f64, want: f64, rel: f64, abs: f64) -> bool {
        (got - want).abs() <= rel * want.abs() + abs
    }

    /// A Box-Muller normal deviate from two SplitMix64 draws.
    fn normals(seed: u64, n: usize) -> Vec<f64> {
        let mut s = seed;
        let mut next = move || {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let (u, v) = (next().max(1e-300), next());
                (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
            })
            .collect()
    }

    fn special() -> impl Strategy<Value = f64> {
        prop_oneof![
            8 => -1e3f64..1e3,
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
            1 => Just(-0.0),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn f64_moments_are_the_same_bits_whatever_the_slicing(
            values in prop::collection::vec(special(), 0..5000),
            a in prop::collection::vec(0usize..5000, 0..12),
            step in 1usize..40,
        ) {
            let whole = bits(moments_sliced(&values, &[]));
            prop_assert_eq!(bits(moments_sliced(&values, &a)), whole);
            let every: Vec<usize> = (0..values.len()).step_by(step).collect();
            prop_assert_eq!(bits(moments_sliced(&values, &every)), whole);
            if let Some((mean, std)) = reference(&values) {
                let (m, s) = moments_sliced(&values, &a);
                prop_assert!(close(m.expect("mean"), mean, 1e-12, 1e-10), "{m:?} vs {mean}");
                prop_assert!(close(s.expect("std"), std, 1e-10, 1e-10), "{s:?} vs {std}");
            } else {
                prop_assert_eq!(whole, (None, None));
            }
        }

        #[test]
        fn offset_data_keeps_its_small_variance(
            seed in any::<u64>(),
            n in 1usize..6000,
            offset in prop_oneof![Just(1e8f64), Just(-3e9), Just(1e12), Just(0.0)],
            scale in prop_oneof![Just(1e-3f64), Just(1.0), Just(1e-6)],
            a in prop::collection::vec(0usize..6000, 0..8),
        ) {
            let values: Vec<f64> = normals(seed, n).into_iter().map(|z| offset + scale * z).collect();
            let (mean, std) = reference(&values).expect("finite data");
            let got = moments_sliced(&values, &a);
            prop_assert_eq!(bits(got), bits(moments_sliced(&values, &[])));
            prop_assert_eq!(bits(got), bits(moments_masked(&values)));
            prop_assert!(close(got.0.expect("mean"), mean, 1e-15, 1e-13 * std), "mean {:?} vs {mean}", got.0);
            // Against the corrected two-pass reference, on the same (rounded) values.
            prop_assert!(close(got.1.expect("std"), std, 1e-12, 0.0), "std {:?} vs {std}", got.1);
        }

        #[test]
        fn f32_offset_data(seed in any::<u64>(), n in 1usize..6000, a in prop::collection::vec(0usize..6000, 0..8)) {
            let values: Vec<f32> = normals(seed, n).into_iter().map(|z| (1e4 + 1e-2 * z) as f32).collect();
            let wide: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
            let (mean, std) = reference(&wide).expect("finite data");
            let got = moments_sliced(&values, &a);
            prop_assert_eq!(bits(got), bits(moments_sliced(&values, &[])));
            prop_assert_eq!(bits(got), bits(moments_masked(&values)));
            prop_assert!(close(got.0.expect("mean"), mean, 1e-15, 0.0));
            prop_assert!(close(got.1.expect("std"), std, 1e-12, 0.0), "std {:?} vs {std}", got.1);
        }
    }

    #[test]
    fn an_outlier_as_the_shift_stays_accurate() {
        // The worst shift for a block: its first value far from the rest.
        let mut values = vec![1e12f64];
        values.extend(normals(7, 5000).into_iter().map(|z| 1e-3 * z));
        let (mean, std) = reference(&values).expect("finite");
        let (m, s) = moments_sliced(&values, &[1, 1023, 1024, 3000]);
        // The mean is good to the data's spread (its z-score), not to its own last bits.
        assert!(
            close(m.expect("mean"), mean, 1e-14, 1e-14 * std),
            "{m:?} vs {mean}"
        );
        assert!(close(s.expect("std"), std, 1e-12, 0.0), "{s:?} vs {std}");
    }

    #[test]
    fn edge_cases() {
        assert_eq!(moments_sliced::<f64>(&[], &[]), (None, None));
        assert_eq!(
            moments_sliced(&[f64::NAN, f64::INFINITY], &[1]),
            (None, None)
        );
        assert_eq!(
            moments_sliced(&[f32::NAN, 2.5, f32::NEG_INFINITY], &[]),
            (Some(2.5), Some(0.0))
        );
        assert_eq!(
            moments_sliced(&[1.0f64, 2.0, 3.0, 4.0], &[2]),
            (Some(2.5), Some(1.25f64.sqrt()))
        );
        // Overflow of the squares: no number rather than an infinite one.
        assert_eq!(moments_sliced(&[1e300f64, -1e300], &[]).1, None);
        // Exactly one block, then one more row.
        let v: Vec<f64> = (0..=BLOCK_ROWS).map(|i| i as f64).collect();
        let (m, s) = moments_sliced(&v, &[7]);
        let n = v.len() as f64;
        assert_eq!(m, Some((n - 1.0) / 2.0));
        assert!(close(
            s.expect("std"),
            ((n * n - 1.0) / 12.0).sqrt(),
            1e-15,
            0.0
        ));
    }
}
