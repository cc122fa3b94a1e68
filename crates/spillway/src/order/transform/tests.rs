//! The kernels on hand-checked cross-sections (ties, NaN, std 0, one row, numpy's quantiles
//! as numpy prints them) and against naive oracles on random ones.

use super::*;

const NAN: f64 = f64::NAN;

/// `f` applied to `xs` as one cross-section of `T`, back as f64 (NaN kept).
fn run<T: Float>(transform: CsTransform, xs: &[f64]) -> Vec<f64> {
    let mut v: Vec<T> = xs.iter().map(|&x| T::from_f64(x)).collect();
    let mut k = Kernel::new(transform);
    k.apply(&mut v, &[0, xs.len() as u32]).expect("applies");
    v.iter().map(|x| x.to_f64()).collect()
}

/// Equal as bits, NaN equal to NaN.
fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

#[track_caller]
fn check<T: Float>(transform: CsTransform, xs: &[f64], want: &[f64]) {
    let got = run::<T>(transform, xs);
    assert!(
        same(&got, want),
        "{transform} of {xs:?}: {got:?}, want {want:?}"
    );
}

#[test]
fn rank_averages_ties_and_keeps_nan() {
    // pandas: [0.875, 0.25, 0.875, nan, 0.5]
    let xs = [3.0, 1.0, 3.0, NAN, 2.0];
    let want = [0.875, 0.25, 0.875, NAN, 0.5];
    check::<f32>(CsTransform::Rank, &xs, &want);
    check::<f64>(CsTransform::Rank, &xs, &want);
    // -0.0 and +0.0 tie (pandas: [0.75, 0.75]); infinities rank at the ends.
    check::<f32>(CsTransform::Rank, &[-0.0, 0.0], &[0.75, 0.75]);
    check::<f64>(
        CsTransform::Rank,
        &[f64::INFINITY, -1.0, f64::NEG_INFINITY],
        &[1.0, 2.0 / 3.0, 1.0 / 3.0],
    );
    // Negative values sort below positive ones, by magnitude reversed.
    check::<f32>(
        CsTransform::Rank,
        &[-2.0, -3.0, 1.0, -0.5],
        &[0.5, 0.25, 1.0, 0.75],
    );
}

#[test]
fn one_value_all_nan_and_empty_cross_sections() {
    for t in [
        CsTransform::Rank,
        CsTransform::Zscore,
        CsTransform::Winsorize(0.1),
    ] {
        let one = match t {
            CsTransform::Rank => 1.0,
            CsTransform::Zscore => 0.0,
            CsTransform::Winsorize(_) => 7.5,
        };
        check::<f32>(t, &[7.5], &[one]);
        check::<f64>(t, &[NAN, 7.5, NAN], &[NAN, one, NAN]);
        check::<f32>(t, &[NAN, NAN], &[NAN, NAN]);
        check::<f64>(t, &[], &[]);
    }
}

#[test]
fn zscore_uses_the_population_std_and_is_zero_when_it_is_zero() {
    let s = (2.0f64 / 3.0).sqrt();
    check::<f64>(
        CsTransform::Zscore,
        &[1.0, NAN, 2.0, 3.0],
        &[-1.0 / s, NAN, 0.0, 1.0 / s],
    );
    check::<f32>(
        CsTransform::Zscore,
        &[1.0, 2.0, 3.0],
        &[(-1.0 / s) as f32 as f64, 0.0, (1.0 / s) as f32 as f64],
    );
    // 0.1 three times sums to 0.30000000000000004: the mean is not 0.1, the std still 0.
    check::<f64>(
        CsTransform::Zscore,
        &[0.1, 0.1, NAN, 0.1],
        &[0.0, 0.0, NAN, 0.0],
    );
    // Infinities give NaN, never a panic.
    let inf = run::<f32>(CsTransform::Zscore, &[f64::INFINITY, 1.0]);
    assert!(inf.iter().all(|x| x.is_nan()), "{inf:?}");
}

#[test]
fn winsorize_clips_at_numpys_linear_quantiles() {
    // numpy: quantile(1..=10, 0.1) = 1.9, quantile(.., 0.9) = 9.1.
    let xs: Vec<f64> = (1..=10).map(f64::from).collect();
    let mut want = xs.clone();
    want[0] = 1.9;
    want[9] = 9.1;
    check::<f64>(CsTransform::Winsorize(0.1), &xs, &want);
    // pandas: Series([0.1, 0.7, 0.3, 5.0]).quantile(0.3) = 0.27999999999999997, (0.7) =
    // 1.1299999999999983 (t >= 0.5 takes numpy's second form).
    let mut v = vec![0.1, 0.7, 0.3, 5.0];
    assert_eq!(quantile(&mut v, 0.3), 0.27999999999999997);
    assert_eq!(quantile(&mut v, 0.7), 1.1299999999999983);
    check::<f64>(
        CsTransform::Winsorize(0.3),
        &[0.1, 0.7, NAN, 0.3, 5.0],
        &[0.27999999999999997, 0.7, NAN, 0.3, 1.1299999999999983],
    );
    // float32 stores the float64 bound rounded.
    check::<f32>(
        CsTransform::Winsorize(0.3),
        &[0.1, 0.7, 0.3, 5.0],
        &[
            0.27999999999999997f64 as f32 as f64,
            0.7f32 as f64,
            0.3f32 as f64,
            1.1299999999999983f64 as f32 as f64,
        ],
    );
    // Q = 0 clips at the extremes: nothing changes, -0.0 kept.
    let xs = [-0.0, 3.0, -2.0, NAN, 0.5];
    check::<f32>(CsTransform::Winsorize(0.0), &xs, &xs);
}

#[test]
fn cross_sections_are_transformed_apart_and_bad_bounds_refused() {
    let mut v = vec![5.0f32, 1.0, 9.0, 2.0, 2.0];
    let mut k = Kernel::new(CsTransform::Rank);
    k.apply(&mut v, &[0, 1, 3, 5]).expect("applies");
    assert_eq!(v, [1.0, 0.5, 1.0, 0.75, 0.75]);
    let mut v = vec![1.0f64; 4];
    for bounds in [&[0u32, 5][..], &[0, 3, 2], &[3, 9]] {
        let e = k.apply(&mut v, bounds).expect_err("bad bounds");
        assert!(matches!(e, Error::Internal(_)), "{e}");
    }
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Values on 0.5 steps in [-10, 10) (many ties), a few NaN, zeros of both signs.
    fn value(&mut self) -> f64 {
        match self.next() % 16 {
            0 => NAN,
            1 => -0.0,
            _ => (self.next() % 40) as f64 * 0.5 - 10.0,
        }
    }
}

/// pandas' rank by counting: (values below) + (ties + 1) / 2, over the count.
fn naive_rank(xs: &[f64]) -> Vec<f64> {
    let valued: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    let n = valued.len() as f64;
    xs.iter()
        .map(|&x| {
            if x.is_nan() {
                return NAN;
            }
            let below = valued.iter().filter(|&&y| y < x).count();
            let equal = valued.iter().filter(|&&y| y == x).count();
            (2 * below + equal + 1) as f64 * 0.5 / n
        })
        .collect()
}

/// numpy's linear quantile from a full sort.
fn naive_quantile(sorted: &[f64], q: f64) -> f64 {
    let last = sorted.len() - 1;
    let v = last as f64 * q;
    if v >= last as f64 {
        return sorted[last];
    }
    let i = v.floor() as usize;
    let t = v - v.floor();
    let (a, b) = (sorted[i], sorted[i + 1]);
    match t >= 0.5 {
        true => b - (b - a) * (1.0 - t),
        false => a + (b - a) * t,
    }
}

fn naive_winsorize(xs: &[f64], q: f64) -> Vec<f64> {
    let mut sorted: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    if sorted.is_empty() {
        return xs.to_vec();
    }
    sorted.sort_by(f64::total_cmp);
    let (lo, hi) = (naive_quantile(&sorted, q), naive_quantile(&sorted, 1.0 - q));
    xs.iter().map(|&x| x.clamp(lo, hi)).collect()
}

#[test]
fn rank_and_winsorize_match_naive_oracles_on_random_cross_sections() {
    let mut rng = Rng(7);
    for case in 0..400 {
        // Past RADIX_FROM too: both sorts.
        let n = 1 + (rng.next() % 700) as usize;
        let xs: Vec<f64> = (0..n).map(|_| rng.value()).collect();
        let ranked = naive_rank(&xs);
        let f32s = |v: &[f64]| -> Vec<f64> { v.iter().map(|&x| x as f32 as f64).collect() };
        check::<f64>(CsTransform::Rank, &xs, &ranked);
        check::<f32>(CsTransform::Rank, &xs, &f32s(&ranked));
        let q = [0.0, 0.01, 0.1, 0.25, 0.3, 0.49][case % 6];
        let w = naive_winsorize(&xs, q);
        // clamp keeps -0.0 where the kernel does too: compare numerically, NaN to NaN.
        let got = run::<f64>(CsTransform::Winsorize(q), &xs);
        let eq = |a: &[f64], b: &[f64]| {
            a.iter()
                .zip(b)
                .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
        };
        assert!(eq(&got, &w), "winsorize={q} {xs:?}: {got:?} want {w:?}");
        let got = run::<f32>(CsTransform::Winsorize(q), &xs);
        assert!(eq(&got, &f32s(&w)), "winsorize={q} f32 {xs:?}");
    }
}
