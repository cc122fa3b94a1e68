//! Hot paths of a build, one at a time (criterion). Whole-build comparisons against peers are in
//! scripts/bench_peers.sh; these isolate where the time goes.
//!
//! - `decode_convert/{row_group,tiny_file,wide_row_group}`: one file decoded and converted to
//!   float32 as one reader does it, slices discarded: a 65,536-row x 100-feature zstd row group
//!   (dictionary pages), a 4,000-row x 100-feature file (the per-file fixed cost: opening, the
//!   time column, 102 column chunks) and a 16,384-row x 1,000-feature row group (column count).
//! - `writer/batch`: one 8,192-row batch of 103 columns through the spill writer (checksums,
//!   statistics, copy into the staging buffers or mapped windows, and the writes themselves).
//! - `plan/728_files`: footers of 728 files (100 features each) and their time columns: the plan
//!   of a 728-symbol universe.
//!
//! Inputs are generated once under target/bench-data/ (`spillway gen`, fixed seed).
//!
//! ```text
//! cargo bench --bench pipeline [-- FILTER]
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use spill::{ColumnSpec, DType, Layout, Role, SpillWriter, Symbol, WriteMode, WriteOptions};
use spillway::gen::{generate, GenOptions};
use spillway::BuildConfig;

/// The workspace's `target/` (this crate is `crates/spillway/`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
}

fn data_dir(name: &str) -> PathBuf {
    target_dir().join("bench-data").join(name)
}

/// A universe generated once (re-used across runs; delete target/bench-data to regenerate).
fn universe(name: &str, opts: GenOptions) -> PathBuf {
    let dir = data_dir(name);
    if !dir.join(".done").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        generate(&GenOptions {
            output: dir.clone(),
            ..opts
        })
        .expect("generate bench universe");
        std::fs::write(dir.join(".done"), b"").expect("mark");
    }
    dir
}

fn config(input: &Path, output: &Path) -> BuildConfig {
    BuildConfig::new(input, output, Some("target")).expect("config")
}

/// Decodes unit 0 of the universe `name` (made with `opts`) as one reader does, slices dropped.
fn decode_regime(c: &mut Criterion, group: &str, name: &str, opts: GenOptions) {
    let u = universe(name, opts);
    let cfg = config(&u, &u.join("unused.spill"));
    let universe = spillway::internals::discover(&u).expect("discover");
    let plan = spillway::internals::plan(
        &universe,
        &cfg,
        &Default::default(),
        &spillway::Cancel::new(),
    )
    .expect("plan");
    let unit = &plan.units[0];
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(unit.size));
    g.sample_size(20);
    let cancel = AtomicBool::new(false);
    let user_cancel = spillway::Cancel::new();
    let (_keep, recycled) = crossbeam_channel::bounded(1);
    let columns = plan.column_names();
    let mut state = spillway::internals::Reader::default();
    let mut spares = spillway::internals::Spares::new(recycled);
    g.bench_function(name, |b| {
        b.iter(|| {
            let mut rows = 0usize;
            let mut send = |m: spillway::internals::Msg<f32>| {
                if let spillway::internals::Msg::Slice(s) = m {
                    if let spillway::internals::Data::Time(t) = s.data {
                        rows += t.len();
                    }
                }
                true
            };
            let ctx = spillway::internals::ReadContext {
                target: true,
                batch_rows: 65_536,
                cancel: &cancel,
                user_cancel: &user_cancel,
                filters: None,
                columns: &columns,
                groups: 1,
            };
            let task = spillway::internals::Task { unit: 0, group: 0 };
            spillway::internals::read_unit(
                task,
                unit,
                "S0000",
                &ctx,
                &mut state,
                &mut spares,
                &mut send,
            )
            .expect("decode");
            rows
        })
    });
    g.finish();
}

/// One file per regime: a canonical row group (65,536 rows x 100 features), a tiny file (4,000
/// rows x 100: the per-file fixed cost) and a wide row group (16,384 rows x 1,000 features).
fn decode_convert(c: &mut Criterion) {
    let one = |rows, features| GenOptions {
        symbols: 1,
        rows,
        features,
        ragged: 0.0,
        ..Default::default()
    };
    decode_regime(c, "decode_convert", "row_group", one(65_536, 100));
    decode_regime(c, "decode_convert", "tiny_file", one(4_000, 100));
    decode_regime(c, "decode_convert", "wide_row_group", one(16_384, 1_000));
}

fn writer(c: &mut Criterion) {
    const ROWS: usize = 8192;
    const FEATURES: usize = 101;
    let dir = tempfile::tempdir_in(target_dir()).expect("tempdir");
    let time: Vec<i64> = (0..ROWS as i64).collect();
    let codes = vec![0u32; ROWS];
    let values: Vec<f32> = (0..ROWS).map(|i| (i as f32).sin()).collect();
    let mut g = c.benchmark_group("writer");
    g.throughput(Throughput::Bytes((ROWS * (12 + 4 * FEATURES)) as u64));
    for (name, mode) in [
        ("batch_direct", WriteMode::Direct),
        ("batch_mmap", WriteMode::Mmap),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let nrows = iters * ROWS as u64;
                let mut cols = vec![
                    ColumnSpec::new("ts", DType::I64, Role::Time),
                    ColumnSpec::new("symbol", DType::U32, Role::Symbol),
                ];
                cols.extend(
                    (0..FEATURES)
                        .map(|i| ColumnSpec::new(format!("f{i}"), DType::F32, Role::Feature)),
                );
                let layout = Layout::new(
                    nrows,
                    cols,
                    vec![Symbol {
                        name: "S".into(),
                        start: 0,
                        stop: nrows,
                    }],
                )
                .expect("layout");
                let opts = WriteOptions::default().with_mode(mode);
                let mut w = SpillWriter::create(dir.path().join("bench.spill"), layout, opts)
                    .expect("create");
                let t0 = Instant::now();
                for i in 0..iters {
                    let row = i * ROWS as u64;
                    w.write(0, row, &time).expect("write");
                    w.write(1, row, &codes).expect("write");
                    for f in 0..FEATURES {
                        w.write(2 + f, row, &values).expect("write");
                    }
                }
                let elapsed = t0.elapsed();
                drop(w); // uncommitted: the temporary file goes away
                elapsed
            })
        });
    }
    g.finish();
}

fn plan_728(c: &mut Criterion) {
    let u = universe(
        "plan_728",
        GenOptions {
            symbols: 728,
            rows: 200,
            features: 100,
            ..Default::default()
        },
    );
    let cfg = config(&u, &u.join("unused.spill"));
    let universe = spillway::internals::discover(&u).expect("discover");
    let mut g = c.benchmark_group("plan");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("728_files", |b| {
        b.iter_batched(
            || (),
            |_| {
                spillway::internals::plan(
                    &universe,
                    &cfg,
                    &Default::default(),
                    &spillway::Cancel::new(),
                )
                .expect("plan")
                .units
                .len()
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, decode_convert, writer, plan_728);
criterion_main!(benches);
