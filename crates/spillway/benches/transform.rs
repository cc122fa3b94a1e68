//! The `--cs-transform` kernels alone (criterion): `transform/{rank,zscore,winsorize}` transform
//! 100 float32 feature columns of 1,048,576 rows each, in cross-sections of 728 rows (the real
//! universe's symbols), one column after another as a time-major build's windows do; values are
//! continuous with 1% NaN. Throughput is in cells (one value of one column).
//!
//! ```text
//! cargo bench -p spillway --bench transform [-- FILTER]
//! ```

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use spillway::config::CsTransform;
use spillway::internals::Kernel;

const FEATURES: usize = 100;
const ROWS: usize = 1 << 20;
const CROSS_SECTION: usize = 728;

/// SplitMix64: the columns' values, from a fixed seed.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `FEATURES` columns of `ROWS` values: a sum of two uniforms (a triangle around 0), 1% NaN.
fn columns() -> Vec<Vec<f32>> {
    let mut state = 42u64;
    let mut value = || {
        let r = next(&mut state);
        match r % 100 {
            0 => f32::NAN,
            _ => ((r >> 11) as f32 / (1u64 << 53) as f32) + (next(&mut state) >> 40) as f32 * 1e-7,
        }
    };
    (0..FEATURES)
        .map(|_| (0..ROWS).map(|_| value()).collect())
        .collect()
}

fn transforms(c: &mut Criterion) {
    let source = columns();
    let bounds: Vec<u32> = (0..ROWS)
        .step_by(CROSS_SECTION)
        .chain([ROWS])
        .map(|r| r as u32)
        .collect();
    let mut g = c.benchmark_group("transform");
    g.throughput(Throughput::Elements((FEATURES * ROWS) as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    for (name, transform) in [
        ("rank", CsTransform::Rank),
        ("zscore", CsTransform::Zscore),
        ("winsorize", CsTransform::Winsorize(0.01)),
    ] {
        let mut kernel = Kernel::new(transform);
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || source.clone(),
                |cols| {
                    for col in cols.iter_mut() {
                        kernel.apply(col, &bounds).expect("applies");
                    }
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, transforms);
criterion_main!(benches);
