//! Format 1.1 statistics: mean and standard deviation of the finite values of float columns are
//! the same bits whatever the write slicing and backend, and agree with a two-pass reference on
//! data built to break naive formulas (a large offset and a tiny spread).

use proptest::prelude::*;
use spill::{Role, Stats, Symbol, WriteMode, WriteOptions};

use crate::common::{random_case, Case, Data, Rng};

/// Neumaier-compensated sum: a reference good to about one rounding.
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

/// Two-pass mean and population standard deviation of the finite values, compensated sums.
pub fn reference(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let finite: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    if finite.is_empty() {
        return None;
    }
    let n = finite.len() as f64;
    let m0 = compensated(finite.iter().copied()) / n;
    let mean = m0 + compensated(finite.iter().map(|x| x - m0)) / n;
    // Corrected two-pass: the second term cancels the rounding of `mean` itself.
    let dev = compensated(finite.iter().map(|x| x - mean));
    let var = (compensated(finite.iter().map(|x| (x - mean) * (x - mean))) - dev * dev / n) / n;
    Some((mean, var.max(0.0).sqrt()))
}

/// Checks a float column's mean and std against the reference, within `rel`.
pub fn check_moments(stats: &Stats, data: &Data, rel: f64) {
    let values: Vec<f64> = match data {
        Data::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        Data::F64(v) => v.clone(),
        _ => {
            assert_eq!((stats.mean, stats.std), (None, None));
            return;
        }
    };
    let Some((mean, std)) = reference(values.iter().copied()) else {
        assert_eq!((stats.mean, stats.std), (None, None));
        return;
    };
    let scale = values
        .iter()
        .filter(|x| x.is_finite())
        .fold(0.0f64, |a, x| a.max(x.abs()));
    let (m, s) = (stats.mean.expect("mean"), stats.std.expect("std"));
    assert!(
        (m - mean).abs() <= rel * (mean.abs() + std) + f64::MIN_POSITIVE,
        "mean {m} vs {mean}"
    );
    assert!(
        (s - std).abs() <= rel * std + 1e-15 * scale,
        "std {s} vs {std}"
    );
}

fn bits(s: &Stats) -> (Option<u64>, Option<u64>) {
    (s.mean.map(f64::to_bits), s.std.map(f64::to_bits))
}

/// Box-Muller normal deviates from the test generator.
fn normals(rng: &mut Rng, n: usize) -> Vec<f64> {
    let mut unit = || (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
    (0..n)
        .map(|_| {
            let (u, v) = (unit().max(1e-300), unit());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        })
        .collect()
}

/// Large offset, small spread: 1e8 + N(0, 1e-3) in f64, 1e4 + N(0, 1e-2) in f32, with a few NaN
/// and infinities.
fn adversarial(seed: u64, nrows: usize) -> Case {
    let mut rng = Rng::new(seed);
    let mut f64s: Vec<f64> = normals(&mut rng, nrows)
        .into_iter()
        .map(|z| 1e8 + 1e-3 * z)
        .collect();
    let mut f32s: Vec<f32> = normals(&mut rng, nrows)
        .into_iter()
        .map(|z| (1e4 + 1e-2 * z) as f32)
        .collect();
    for i in (0..nrows).step_by(97) {
        f64s[i] = [f64::NAN, f64::INFINITY][i % 2];
        f32s[(i * 7) % nrows] = [f32::NEG_INFINITY, f32::NAN][i % 2];
    }
    Case {
        nrows,
        columns: vec![
            (
                "t".into(),
                Role::Time,
                Data::I64((0..nrows as i64).collect()),
            ),
            ("big64".into(), Role::Feature, Data::F64(f64s)),
            ("big32".into(), Role::Other, Data::F32(f32s)),
        ],
        symbols: vec![Symbol {
            name: "S".into(),
            start: 0,
            stop: nrows as u64,
        }],
        build: Default::default(),
    }
}

#[test]
fn slices_of_1_7_and_8192_rows_and_both_backends_write_the_same_bytes() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let case = adversarial(3, 20_000);
    let mut files = Vec::new();
    for (i, step) in [1usize, 7, 8192].into_iter().enumerate() {
        let cuts: Vec<usize> = (0..case.nrows).step_by(step).collect();
        for mode in [WriteMode::Direct, WriteMode::Mmap] {
            let p = dir.path().join(format!("{i}-{mode:?}.spill"));
            let opts = WriteOptions::default().with_mode(mode);
            files.push(std::fs::read(case.write(&p, &cuts, opts)).expect("read"));
        }
    }
    assert!(files.windows(2).all(|w| w[0] == w[1]));
    let f = spill::SpillFile::from_bytes(files.swap_remove(0)).expect("valid");
    for (i, (name, _, data)) in case.columns.iter().enumerate() {
        let stats = &f.columns()[i].stats;
        if data.dtype().is_float() {
            assert!(stats.mean.is_some() && stats.std.is_some(), "{name}");
        }
        check_moments(stats, data, 1e-9);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn moments_are_the_same_bits_whatever_the_slicing(
        seed in any::<u64>(),
        a in prop::collection::vec(0usize..6000, 0..10),
        b in prop::collection::vec(0usize..6000, 0..10),
        adversarial_data in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let case = if adversarial_data {
            adversarial(seed, (seed % 6000) as usize + 1)
        } else {
            random_case(&mut Rng::new(seed), 6000)
        };
        let pa = case.write(&dir.path().join("a.spill"), &a, WriteOptions::default());
        let pb = case.write(
            &dir.path().join("b.spill"),
            &b,
            WriteOptions::default().with_mode(WriteMode::Mmap).with_memory(4096),
        );
        let (fa, fb) = (spill::open(pa).expect("open"), spill::open(pb).expect("open"));
        for (i, (_, _, data)) in case.columns.iter().enumerate() {
            let (sa, sb) = (&fa.columns()[i].stats, &fb.columns()[i].stats);
            prop_assert_eq!(bits(sa), bits(sb));
            check_moments(sa, data, 1e-9);
        }
    }
}
