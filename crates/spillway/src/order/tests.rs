//! The transposition against a naive in-memory permutation, for every window size from one row
//! up, with run buffers small enough to refill many times.

use spill::{ColumnSpec, DType, Role, SpillWriter, Symbol, WriteOptions};

use super::*;

/// Times of four symbols: sorted, with duplicates, going backwards twice, and empty.
fn times() -> Vec<Vec<i64>> {
    let a: Vec<i64> = (0..50).map(|i| i * 10).collect();
    let b: Vec<i64> = (0..40).map(|i| (i / 3) * 10).collect();
    let mut c: Vec<i64> = (0..45).map(|i| i * 20).collect();
    c[10] = 3; // backwards
    c[30] = 100; // backwards again, then forward
    vec![a, b, c, Vec::new()]
}

/// Writes the symbol-major intermediate and returns its layout and the rows (time, code, row).
fn intermediate(path: &Path, per: Vec<Vec<i64>>) -> (Layout, Vec<(i64, u32, usize)>) {
    let mut symbols = Vec::new();
    let mut rows = Vec::new();
    for (code, ts) in per.iter().enumerate() {
        let start = rows.len() as u64;
        for &t in ts {
            rows.push((t, code as u32, rows.len()));
        }
        symbols.push(Symbol {
            name: format!("S{code}"),
            start,
            stop: rows.len() as u64,
        });
    }
    let columns = vec![
        ColumnSpec::new("ts", DType::I64, Role::Time),
        ColumnSpec::new("symbol", DType::U32, Role::Symbol),
        ColumnSpec::new("x", DType::F32, Role::Feature),
        ColumnSpec::new("y", DType::F64, Role::Target),
        ColumnSpec::new("k", DType::U8, Role::Other),
    ];
    let layout = Layout::new(rows.len() as u64, columns, symbols).expect("layout");
    let mut w = SpillWriter::create(path, layout.clone(), WriteOptions::default()).expect("w");
    let ts: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let codes: Vec<u32> = rows.iter().map(|r| r.1).collect();
    let x: Vec<f32> = rows.iter().map(|r| r.2 as f32 * 0.5).collect();
    let y: Vec<f64> = rows.iter().map(|r| -(r.2 as f64)).collect();
    let k: Vec<u8> = rows.iter().map(|r| r.2 as u8).collect();
    w.write(0, 0, &ts).expect("ts");
    w.write(1, 0, &codes).expect("codes");
    w.write(2, 0, &x).expect("x");
    w.write(3, 0, &y).expect("y");
    w.write(4, 0, &k).expect("k");
    w.finish(Default::default()).expect("commit");
    (layout, rows)
}

#[test]
fn every_window_size_gives_the_stable_permutation_by_time_and_symbol() {
    let d = tempfile::tempdir().expect("tempdir");
    let staging = d.path().join("mid.spill");
    let (layout, rows) = intermediate(&staging, times());
    check_every_window_size(d.path(), &staging, &layout, rows, 5);
}

/// Symbols stored newest-first (strictly, and with ties: groups of equal times, which keep their
/// row order), mostly falling with a step up and a tie, rising then falling, empty, and flat:
/// 1 + 1 + 2 + 2 + 0 + 1 runs, the same stable permutation at every window size.
#[test]
fn falling_runs_read_backwards_give_the_stable_permutation() {
    let d = tempfile::tempdir().expect("tempdir");
    let staging = d.path().join("mid.spill");
    let newest_first: Vec<i64> = (0..50).rev().map(|i| i * 10).collect();
    let ties: Vec<i64> = (0..40).rev().map(|i| (i / 3) * 10).collect();
    let mut mostly: Vec<i64> = (0..45).rev().map(|i| i * 20).collect();
    mostly[10] = 1000; // a step up: a second run from here
    mostly[30] = mostly[29]; // a tie inside the falling stretch
    let tent: Vec<i64> = (0..20).chain((0..20).rev()).map(|i| i * 15 + 5).collect();
    let flat = vec![200i64; 10];
    let per = vec![newest_first, ties, mostly, tent, Vec::new(), flat];
    let (layout, rows) = intermediate(&staging, per);
    check_every_window_size(d.path(), &staging, &layout, rows, 7);
}

/// Sparse cross-sections: 40 symbols on disjoint times, one row a timestamp, so the merge leaves
/// its sweep for the heap after the first sweeps; the order is the same.
#[test]
fn sparse_cross_sections_merge_through_the_heap_in_the_same_order() {
    let d = tempfile::tempdir().expect("tempdir");
    let staging = d.path().join("mid.spill");
    let per: Vec<Vec<i64>> = (0..40i64)
        .map(|s| {
            (0..30)
                .map(|i| i * 1000 + s * 7 + (i % 3) * (s % 2))
                .collect()
        })
        .collect();
    let (layout, rows) = intermediate(&staging, per);
    check_every_window_size(d.path(), &staging, &layout, rows, 40);
}

fn check_every_window_size(
    dir: &Path,
    staging: &Path,
    layout: &Layout,
    mut rows: Vec<(i64, u32, usize)>,
    runs: usize,
) {
    rows.sort_by_key(|r| (r.0, r.1)); // stable: a symbol's equal times keep their order
    let mut first: Option<Vec<u8>> = None;
    for window_rows in [1, 2, 3, 7, 64, 10_000] {
        let output = dir.join(format!("out{window_rows}.spill"));
        // 16 times a run: the buffers refill every 16 rows.
        let split = |_| Memory {
            in_use_bytes: 0,
            writer_bytes: 0,
            writer_memory: 0,
            merge_bytes: runs as u64 * RUN_MIN_BYTES,
            window_rows,
            bound_bytes: 0,
        };
        let job = Job {
            layout,
            staging,
            output: &output,
            split: &split,
            max_runs: runs,
            budget_bytes: 0,
            opts: WriteOptions::default(),
            transform: None,
        };
        let (w, stats) = job.run(&Cancel::new()).expect("transposes");
        assert_eq!(stats.runs, runs);
        w.finish(Default::default()).expect("commit");
        let f = spill::open(&output).expect("opens");
        let ts: &[i64] = f.column("ts").expect("ts");
        let x: &[f32] = f.column("x").expect("x");
        let k: &[u8] = f.column("k").expect("k");
        let codes: &[u32] = f.column("symbol").expect("symbol");
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(
                (ts[i], codes[i], x[i], k[i]),
                (r.0, r.1, r.2 as f32 * 0.5, r.2 as u8)
            );
        }
        f.verify_time_index().expect("index");
        let bytes = std::fs::read(&output).expect("read");
        match &first {
            None => first = Some(bytes),
            Some(b) => assert!(b == &bytes, "window of {window_rows} rows changed the file"),
        }
    }
}

#[test]
fn too_many_runs_for_the_merge_is_an_error() {
    let d = tempfile::tempdir().expect("tempdir");
    let staging = d.path().join("mid.spill");
    let (layout, _) = intermediate(&staging, times());
    let output = d.path().join("out.spill");
    let split = |_| Memory {
        in_use_bytes: 0,
        writer_bytes: 0,
        writer_memory: 0,
        merge_bytes: 4 * RUN_MIN_BYTES,
        window_rows: 10,
        bound_bytes: 0,
    };
    let job = Job {
        layout: &layout,
        staging: &staging,
        output: &output,
        // Room for 4 runs: the universe has 5.
        split: &split,
        max_runs: 4,
        budget_bytes: 123,
        opts: WriteOptions::default(),
        transform: None,
    };
    let err = job.run(&Cancel::new()).expect_err("too many runs");
    assert!(
        matches!(
            err,
            Error::OrderRuns {
                max: 4,
                budget: 123,
                ..
            }
        ),
        "{err}"
    );
    assert!(!output.exists());
}

#[test]
fn the_memory_split_stays_within_the_budget_and_caps() {
    let budget = Budget {
        readers: 2,
        batch_rows: 8192,
        capacity: 4,
        writer_bytes: 58 << 20,
        writer_memory: 52 << 20,
        bound_bytes: 255 << 20,
        budget_bytes: 256 << 20,
    };
    // What the stream pass leaves resident on the M universe: about 100 MiB.
    let m = memory(&budget, 46_000_000, 103, 100 << 20, 0);
    assert!(m.bound_bytes + MARGIN <= budget.budget_bytes, "{m:?}");
    assert_eq!(m.writer_memory, 32 << 20);
    assert!(m.writer_bytes > m.writer_memory, "{m:?}");
    assert_eq!(m.window_rows, (48 << 20) / ROW_BYTES);
    let cap = max_runs(&budget, 103, 100 << 20);
    assert!(cap >= 131_072, "{cap}");
    // As many runs as the cap allows still fit the budget, the window shrinking for them.
    let full = memory(&budget, 46_000_000, 103, 100 << 20, cap);
    assert!(full.bound_bytes + MARGIN <= budget.budget_bytes, "{full:?}");
    assert!(full.window_rows < m.window_rows, "{full:?}");
    // Small files take windows of their own size.
    assert_eq!(memory(&budget, 1000, 103, 0, 0).window_rows, 1000);
}
