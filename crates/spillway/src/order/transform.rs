//! The per-timestamp transforms of `--cs-transform` (time-major output): pure functions over one
//! feature column's values in one window, cut into whole cross-sections by their boundaries.
//!
//! Every statistic leaves NaN out and NaN stays NaN. Values are widened to float64, transformed
//! there and rounded once into the column's type, so a float32 column holds the float32 of the
//! float64 result (what pandas computes on the same values, cast back):
//!
//! - `rank`: the average 1-based rank of the value among the cross-section's values (ties share
//!   the mean of their positions), over their count: pandas' `rank(pct=True)`, in (0, 1];
//! - `zscore`: `(x - mean) / std`, the mean a float64 sum over the count, `std` the population
//!   standard deviation (ddof = 0) from the sum of squared deviations from that mean; every value
//!   0 when they are all equal (std 0);
//! - `winsorize=Q`: clipped to the Q and 1 - Q quantiles, each numpy's (and so pandas')
//!   `linear` quantile to the bit: virtual index `(n - 1) q`, and between its neighbours `a`, `b`
//!   at fraction `t`, `a + (b - a) t`, or `b - (b - a)(1 - t)` when `t >= 0.5`.
//!
//! `-0.0` is ranked, sorted and compared as `+0.0` (a tie, as in pandas). A rank sorts one 64-bit
//! key a value (its order-preserving bits over its position; 128 bits for float64), by an LSD
//! radix sort of the value bits past a few hundred values; winsorizing selects the four
//! neighbours in linear time. Scratch grows to the largest cross-section and is
//! kept from window to window: [`SCRATCH_BYTES`] a row of it.

use crate::config::CsTransform;
use crate::error::{Error, Result};

/// The most scratch a row of the largest cross-section takes: a float64 column's two 16-byte
/// rank keys (the key and the radix sort's copy; float32 keys take 8, winsorizing's values 8).
/// The radix sort's digit counts add a fixed 48 KiB.
pub const SCRATCH_BYTES: u64 = 32;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A float type a feature column is stored in: `f32` or `f64`.
pub trait Float: Copy + sealed::Sealed {
    /// A rank's sort key: the value's order-preserving bits above its position in the
    /// cross-section (32 bits).
    type Key: Ord + Copy + Default;
    /// The radix sort's passes over the value bits (11 bits each).
    const PASSES: usize;
    /// Whether the value is NaN.
    fn is_nan(self) -> bool;
    /// The value, widened exactly.
    fn to_f64(self) -> f64;
    /// `v` rounded to this type (to nearest, ties to even).
    fn from_f64(v: f64) -> Self;
    /// The sort key of this (non-NaN) value at position `at`; `-0.0` keys as `+0.0`.
    fn key(self, at: u32) -> Self::Key;
    /// Whether two keys hold the same value.
    fn same_value(a: Self::Key, b: Self::Key) -> bool;
    /// The position a key was made with.
    fn position(k: Self::Key) -> usize;
    /// Digit `pass` (0: the lowest 11 bits) of a key's value bits.
    fn digit(k: Self::Key, pass: usize) -> usize;
    /// The kernel's key buffers for this type.
    fn keys(scratch: &mut Scratch) -> Keys<'_, Self::Key>;
}

impl Float for f32 {
    type Key = u64;
    const PASSES: usize = 3;

    fn is_nan(self) -> bool {
        self.is_nan()
    }

    fn to_f64(self) -> f64 {
        f64::from(self)
    }

    fn from_f64(v: f64) -> f32 {
        v as f32
    }

    fn key(self, at: u32) -> u64 {
        // + 0.0 turns -0.0 into +0.0; then the sign-magnitude bits made to sort as unsigned.
        let b = (self + 0.0).to_bits();
        let ordered = if b >> 31 == 1 { !b } else { b | 1 << 31 };
        u64::from(ordered) << 32 | u64::from(at)
    }

    fn same_value(a: u64, b: u64) -> bool {
        a >> 32 == b >> 32
    }

    fn position(k: u64) -> usize {
        (k & 0xFFFF_FFFF) as usize
    }

    fn digit(k: u64, pass: usize) -> usize {
        (k >> (32 + DIGIT_BITS * pass)) as usize & (RADIX - 1)
    }

    fn keys(scratch: &mut Scratch) -> Keys<'_, u64> {
        (
            &mut scratch.keys32,
            &mut scratch.spare32,
            &mut scratch.counts,
        )
    }
}

impl Float for f64 {
    type Key = u128;
    const PASSES: usize = 6;

    fn is_nan(self) -> bool {
        self.is_nan()
    }

    fn to_f64(self) -> f64 {
        self
    }

    fn from_f64(v: f64) -> f64 {
        v
    }

    fn key(self, at: u32) -> u128 {
        let b = (self + 0.0).to_bits();
        let ordered = if b >> 63 == 1 { !b } else { b | 1 << 63 };
        u128::from(ordered) << 32 | u128::from(at)
    }

    fn same_value(a: u128, b: u128) -> bool {
        a >> 32 == b >> 32
    }

    fn position(k: u128) -> usize {
        (k & 0xFFFF_FFFF) as usize
    }

    fn digit(k: u128, pass: usize) -> usize {
        (k >> (32 + DIGIT_BITS * pass)) as usize & (RADIX - 1)
    }

    fn keys(scratch: &mut Scratch) -> Keys<'_, u128> {
        (
            &mut scratch.keys64,
            &mut scratch.spare64,
            &mut scratch.counts,
        )
    }
}

/// Bits of a radix sort digit.
const DIGIT_BITS: usize = 11;
/// Values of a digit.
const RADIX: usize = 1 << DIGIT_BITS;

/// A rank's buffers: the keys, the radix sort's other half, its digit counts.
pub type Keys<'a, K> = (&'a mut Vec<K>, &'a mut Vec<K>, &'a mut Vec<u32>);

/// Buffers the kernels reuse from cross-section to cross-section.
#[derive(Debug, Default)]
pub struct Scratch {
    keys32: Vec<u64>,
    spare32: Vec<u64>,
    keys64: Vec<u128>,
    spare64: Vec<u128>,
    counts: Vec<u32>,
    values: Vec<f64>,
}

/// One transform with its scratch: applied to a column's window, cross-section by cross-section.
#[derive(Debug)]
pub struct Kernel {
    transform: CsTransform,
    scratch: Scratch,
}

impl Kernel {
    /// A kernel of `transform`, its scratch empty (it grows to the largest cross-section seen).
    pub fn new(transform: CsTransform) -> Kernel {
        Kernel {
            transform,
            scratch: Scratch::default(),
        }
    }

    /// The transform it applies.
    pub fn transform(&self) -> CsTransform {
        self.transform
    }

    /// Transforms `values`, whole cross-sections back to back, in place: `bounds` holds their
    /// starts in increasing order, then the end (`bounds = [0, 3, 7]`: rows 0..3 and 3..7). Bounds
    /// that do not cut `values` so are an internal error, and nothing past them is touched.
    pub fn apply<T: Float>(&mut self, values: &mut [T], bounds: &[u32]) -> Result<()> {
        for pair in bounds.windows(2) {
            let (a, b) = (pair[0] as usize, pair[1] as usize);
            let xs = values.get_mut(a..b).ok_or_else(|| {
                Error::Internal(format!(
                    "a cross-section at rows {a}..{b} of a window of {} rows",
                    bounds.last().copied().unwrap_or(0)
                ))
            })?;
            match self.transform {
                CsTransform::Rank => rank(xs, T::keys(&mut self.scratch)),
                CsTransform::Zscore => zscore(xs),
                CsTransform::Winsorize(q) => winsorize(xs, q, &mut self.scratch.values),
            }
        }
        Ok(())
    }
}

/// Replaces each non-NaN value of one cross-section by its percentile rank: the mean of the
/// 1-based positions its value takes in sorted order, over the count of non-NaN values, with
/// the scratch buffers `(keys, spare, counts)`.
pub fn rank<T: Float>(xs: &mut [T], (keys, spare, counts): Keys<'_, T::Key>) {
    keys.clear();
    keys.extend(
        xs.iter()
            .enumerate()
            .filter(|(_, x)| !x.is_nan())
            .map(|(i, &x)| x.key(i as u32)),
    );
    sort::<T>(keys, spare, counts);
    let count = keys.len() as f64;
    let mut a = 0;
    while let Some(&first) = keys.get(a) {
        let ties = keys[a + 1..]
            .iter()
            .take_while(|&&k| T::same_value(first, k))
            .count();
        let b = a + 1 + ties;
        // Positions a+1 ..= b average to (a + 1 + b) / 2, exactly (a half-integer); pandas
        // divides that by the count, one rounding.
        let pct = T::from_f64((a + b + 1) as f64 * 0.5 / count);
        for &k in &keys[a..b] {
            xs[T::position(k)] = pct;
        }
        a = b;
    }
}

/// Below this many keys, a comparison sort beats the radix sort's fixed cost.
const RADIX_FROM: usize = 256;

/// Sorts `keys` in increasing order (`spare` and `counts` are scratch): by comparison when they
/// are few, else by an LSD radix sort of their value bits, [`DIGIT_BITS`] a pass, skipping the
/// passes whose digit every key shares. The radix sort is stable and keys are made in position
/// order, so both give the same order, that of the whole keys.
fn sort<T: Float>(keys: &mut Vec<T::Key>, spare: &mut Vec<T::Key>, counts: &mut Vec<u32>) {
    let n = keys.len();
    if n < RADIX_FROM {
        keys.sort_unstable();
        return;
    }
    counts.clear();
    counts.resize(T::PASSES * RADIX, 0);
    for &k in keys.iter() {
        for (pass, c) in counts.chunks_exact_mut(RADIX).enumerate() {
            c[T::digit(k, pass)] += 1;
        }
    }
    spare.clear();
    spare.resize(n, T::Key::default());
    let first = keys[0];
    for (pass, c) in counts.chunks_exact_mut(RADIX).enumerate() {
        if c[T::digit(first, pass)] as usize == n {
            continue;
        }
        let mut at = 0u32;
        for slot in c.iter_mut() {
            let count = *slot;
            *slot = at;
            at += count;
        }
        for &k in keys.iter() {
            let d = T::digit(k, pass);
            spare[c[d] as usize] = k;
            c[d] += 1;
        }
        std::mem::swap(keys, spare);
    }
}

/// Replaces each non-NaN value of one cross-section by `(x - mean) / std` (population std), or
/// by 0 when every value is the same.
pub fn zscore<T: Float>(xs: &mut [T]) {
    let (mut n, mut sum) = (0usize, 0.0f64);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for x in xs.iter().filter(|x| !x.is_nan()) {
        let v = x.to_f64();
        n += 1;
        sum += v;
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if n == 0 {
        return;
    }
    if lo == hi && lo.is_finite() {
        // std is exactly 0 (a mean rounded off the common value must not make it tiny instead).
        return map_valued(xs, |_| 0.0);
    }
    let mean = sum / n as f64;
    let squares: f64 = xs
        .iter()
        .filter(|x| !x.is_nan())
        .map(|x| {
            let d = x.to_f64() - mean;
            d * d
        })
        .fold(0.0, |s, d2| s + d2);
    let std = (squares / n as f64).sqrt();
    match std == 0.0 {
        true => map_valued(xs, |_| 0.0),
        false => map_valued(xs, |v| (v - mean) / std),
    }
}

/// Each non-NaN value `v` of `xs` replaced by `f(v)` (computed in float64).
fn map_valued<T: Float>(xs: &mut [T], f: impl Fn(f64) -> f64) {
    for x in xs.iter_mut().filter(|x| !x.is_nan()) {
        *x = T::from_f64(f(x.to_f64()));
    }
}

/// Clips each non-NaN value of one cross-section to the `q` and `1 - q` quantiles of its
/// values (numpy's `linear` method). `sorted` is scratch.
pub fn winsorize<T: Float>(xs: &mut [T], q: f64, sorted: &mut Vec<f64>) {
    sorted.clear();
    sorted.extend(xs.iter().filter(|x| !x.is_nan()).map(|x| x.to_f64() + 0.0));
    if sorted.is_empty() {
        return;
    }
    let lo = quantile(sorted, q);
    let hi = quantile(sorted, 1.0 - q);
    for x in xs.iter_mut() {
        let v = x.to_f64();
        // NaN (a value, or a bound from infinities) compares false: left as it is.
        if v < lo {
            *x = T::from_f64(lo);
        } else if v > hi {
            *x = T::from_f64(hi);
        }
    }
}

/// numpy's `quantile(values, q, method="linear")` of non-empty `values` without NaN, to the
/// bit (`numpy/lib/_function_base_impl.py`: `_quantile`, `_get_indexes`, `_lerp`). Reorders
/// `values` (a partial selection, linear time).
pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    let last = values.len() - 1;
    let virtual_index = last as f64 * q;
    if virtual_index >= last as f64 {
        // numpy takes the last value of the sorted array there.
        return values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    }
    let below = virtual_index.floor();
    let t = virtual_index - below;
    let i = below as usize;
    let (_, &mut a, above) = values.select_nth_unstable_by(i, f64::total_cmp);
    // The next in sorted order: the least of those selected above `a`.
    let b = above.iter().copied().fold(f64::INFINITY, f64::min);
    let d = b - a;
    if t >= 0.5 {
        b - d * (1.0 - t)
    } else {
        a + d * t
    }
}

#[cfg(test)]
mod tests;
