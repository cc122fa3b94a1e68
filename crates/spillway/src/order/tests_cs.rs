//! `--cs-transform` in the transposition: at every window size, windows hold whole
//! cross-sections, the feature columns (float32 and float64) are the kernel's transform of each
//! timestamp's values, every other column is as without a transform, and the bytes never depend
//! on the window size.

use spill::{ColumnSpec, DType, Role, SpillWriter, Symbol, WriteOptions};

use super::*;

/// Three symbols: ragged times with duplicates and going backwards, so cross-sections have 1
/// to 4 rows; values with ties (0.5 steps) and NaN.
fn intermediate(path: &Path) -> Layout {
    let per: Vec<Vec<i64>> = vec![
        (0..30).map(|i| i * 10).collect(),
        (0..24).map(|i| (i / 2) * 20).collect(),
        (0..20).rev().map(|i| i * 15).collect(),
    ];
    let mut symbols = Vec::new();
    let mut ts: Vec<i64> = Vec::new();
    for (code, times) in per.iter().enumerate() {
        let start = ts.len() as u64;
        ts.extend(times);
        symbols.push(Symbol {
            name: format!("S{code}"),
            start,
            stop: ts.len() as u64,
        });
    }
    let n = ts.len();
    let columns = vec![
        ColumnSpec::new("ts", DType::I64, Role::Time),
        ColumnSpec::new("symbol", DType::U32, Role::Symbol),
        ColumnSpec::new("y", DType::F64, Role::Target),
        ColumnSpec::new("x", DType::F32, Role::Feature),
        ColumnSpec::new("z", DType::F64, Role::Feature),
        ColumnSpec::new("k", DType::U8, Role::Other),
    ];
    let layout = Layout::new(n as u64, columns, symbols.clone()).expect("layout");
    let mut w = SpillWriter::create(path, layout.clone(), WriteOptions::default()).expect("w");
    let codes: Vec<u32> = symbols
        .iter()
        .enumerate()
        .flat_map(|(c, s)| std::iter::repeat_n(c as u32, (s.stop - s.start) as usize))
        .collect();
    let value = |i: usize, m: usize| match (i * m) % 11 {
        0 => f64::NAN,
        r => (r % 4) as f64 * 0.5 - 1.0,
    };
    let y: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let x: Vec<f32> = (0..n).map(|i| value(i, 7) as f32).collect();
    let z: Vec<f64> = (0..n).map(|i| value(i, 3) * 1.25).collect();
    let k: Vec<u8> = (0..n).map(|i| i as u8).collect();
    w.write(0, 0, &ts).expect("ts");
    w.write(1, 0, &codes).expect("codes");
    w.write(2, 0, &y).expect("y");
    w.write(3, 0, &x).expect("x");
    w.write(4, 0, &z).expect("z");
    w.write(5, 0, &k).expect("k");
    w.finish(Default::default()).expect("commit");
    layout
}

/// Transposes `staging` into `output` with windows of `window_rows` and `transform`.
fn transpose(
    layout: &Layout,
    staging: &Path,
    output: &Path,
    window_rows: u64,
    transform: Option<CsTransform>,
) -> TransposeStats {
    let split = |_| Memory {
        in_use_bytes: 0,
        writer_bytes: 0,
        writer_memory: 0,
        merge_bytes: 4 * RUN_MIN_BYTES,
        window_rows,
        bound_bytes: 0,
    };
    let job = Job {
        layout,
        staging,
        output,
        split: &split,
        max_runs: 4,
        budget_bytes: 0,
        opts: WriteOptions::default(),
        transform,
    };
    let (w, stats) = job.run(&Cancel::new()).expect("transposes");
    w.finish(Default::default()).expect("commit");
    stats
}

/// `values` transformed cross-section by cross-section along `index`.
fn by_timestamp<T: Float>(t: CsTransform, index: &spill::Timestamps, values: &[T]) -> Vec<T> {
    let mut out = values.to_vec();
    let mut bounds = vec![0u32];
    bounds.extend(index.iter().map(|(_, r)| r.end as u32));
    Kernel::new(t).apply(&mut out, &bounds).expect("applies");
    out
}

fn bits<T: bytemuck::Pod>(v: &[T]) -> Vec<u8> {
    bytemuck::cast_slice(v).to_vec()
}

#[test]
fn every_window_size_transforms_whole_cross_sections_of_the_features_alone() {
    let d = tempfile::tempdir().expect("tempdir");
    let staging = d.path().join("mid.spill");
    let layout = intermediate(&staging);
    let plain = d.path().join("plain.spill");
    transpose(&layout, &staging, &plain, 10_000, None);
    let p = spill::open(&plain).expect("opens");
    let index = p.timestamps().expect("time-major").clone();
    assert_eq!(Sections::largest(&index), 4);
    assert!(index.iter().any(|(_, r)| r.end - r.start == 1));
    for t in [
        CsTransform::Rank,
        CsTransform::Zscore,
        CsTransform::Winsorize(0.2),
    ] {
        let x: Vec<f32> = by_timestamp(t, &index, p.column::<f32>("x").expect("x"));
        let z: Vec<f64> = by_timestamp(t, &index, p.column::<f64>("z").expect("z"));
        let mut first: Option<Vec<u8>> = None;
        for window_rows in [1, 2, 3, 6, 64, 10_000] {
            let out = d.path().join(format!("{t}-{window_rows}.spill"));
            let stats = transpose(&layout, &staging, &out, window_rows, Some(t));
            // A window holds at least the largest cross-section.
            assert!(stats.memory.window_rows >= 4, "{:?}", stats.memory);
            let f = spill::open(&out).expect("opens");
            f.verify_time_index().expect("index");
            assert_eq!(f.timestamps(), Some(&index));
            assert_eq!(bits(f.column::<f32>("x").expect("x")), bits(&x), "{t}");
            assert_eq!(bits(f.column::<f64>("z").expect("z")), bits(&z), "{t}");
            for (col, size) in [("ts", 8), ("symbol", 4), ("y", 8), ("k", 1)] {
                let raw = |f: &spill::SpillFile<_>| match size {
                    8 if col == "ts" => bits(f.column::<i64>(col).expect("col")),
                    8 => bits(f.column::<f64>(col).expect("col")),
                    4 => bits(f.column::<u32>(col).expect("col")),
                    _ => bits(f.column::<u8>(col).expect("col")),
                };
                assert_eq!(raw(&f), raw(&p), "{t}: {col} is not transformed");
            }
            let bytes = std::fs::read(&out).expect("read");
            match &first {
                None => first = Some(bytes),
                Some(b) => assert!(b == &bytes, "{t}: windows of {window_rows} rows differ"),
            }
        }
    }
}

#[test]
fn whole_sections_take_at_least_the_largest_cross_section() {
    let m = Memory {
        in_use_bytes: 100,
        writer_bytes: 10,
        writer_memory: 10,
        merge_bytes: 20,
        window_rows: 1000,
        bound_bytes: 130 + 1000 * ROW_BYTES,
    };
    // Within the budget: fewer rows, as many bytes, plus the kernel's scratch.
    let w = whole_sections(m, 50);
    assert_eq!(w.window_rows, 1000 * ROW_BYTES / (ROW_BYTES + BOUND_BYTES));
    assert!(w.bound_bytes <= m.bound_bytes + 50 * SCRATCH_BYTES, "{w:?}");
    // A cross-section larger than the window: the window follows it.
    let w = whole_sections(m, 5000);
    assert_eq!(w.window_rows, 5000);
    assert_eq!(
        w.bound_bytes,
        130 + 5000 * (ROW_BYTES + BOUND_BYTES) + 5000 * SCRATCH_BYTES
    );
}
