//! Issue 21: see `mod.rs`. Item 4 (`--max-cs-samples K` keeps exactly K rows at a timestamp where
//! a symbol repeats it) and item 7 (an empty file written by pyarrow is an empty symbol under the
//! filters, not a corrupt file).

use std::path::Path;
use std::process::Command;

use crate::common::*;

/// Writes `DIR/A.parquet` and `DIR/C.parquet` (10 rows each) and `DIR/B.parquet`, empty as
/// pyarrow writes it (one row group of 0 rows, an empty dictionary page, data page offset 0), and
/// `DIR/D.parquet`: an empty row group, then 10 rows.
const EMPTY_PYARROW: &str = r#"
import sys
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
d = sys.argv[1]
def table(n):
    ts = pa.array(np.arange(n, dtype=np.int64) * 60_000_000_000).cast(pa.timestamp("ns", tz="UTC"))
    return pa.table({"ts": ts, "target": pa.array(np.arange(n, dtype=np.float64)), "f0": pa.array(np.ones(n))})
pq.write_table(table(10), f"{d}/A.parquet")
pq.write_table(table(10).slice(0, 0), f"{d}/B.parquet")
pq.write_table(table(10), f"{d}/C.parquet")
with pq.ParquetWriter(f"{d}/D.parquet", table(0).schema) as w:
    w.write_table(table(0))
    w.write_table(table(10))
assert pq.ParquetFile(f"{d}/B.parquet").metadata.num_row_groups == 1
"#;

fn python_c(py: &Path, script: &str, args: &[&str]) {
    let out = Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Item 7: an empty file from pyarrow is a symbol with an empty range under every filter, as
/// without filters; not "page header: a required field is missing".
#[test]
fn i21_07_an_empty_pyarrow_file_is_an_empty_symbol_under_the_filters() {
    let Some(py) = python() else { return };
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    std::fs::create_dir(&u).expect("mkdir");
    python_c(&py, EMPTY_PYARROW, &[s(&u)]);
    let flags: [&[&str]; 6] = [
        &[],
        &["--drop-null-target"],
        &["--max-cs-samples", "2"],
        &["--min-cs", "2"],
        &["--order", "time", "--min-cs", "2"],
        &["--drop-null-target", "--decoder", "arrow"],
    ];
    for (i, extra) in flags.iter().enumerate() {
        for on_error in ["fail", "skip"] {
            let out = d.path().join(format!("o{i}-{on_error}.spill"));
            let mut args = extra.to_vec();
            args.extend(["--on-error", on_error]);
            ok(&build(&u, &out, &args));
            let f = spill::open(&out).expect("open");
            let names: Vec<&str> = f.symbols().iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, ["A", "B", "C", "D"], "{extra:?}");
            assert!(f.symbols()[1].is_empty(), "{extra:?}");
            // Three rows (A, C, D) at each of 10 times; K = 2 keeps two.
            let want = match extra.contains(&"--max-cs-samples") {
                true => 20,
                false => 30,
            };
            assert_eq!(f.nrows(), want, "{extra:?}");
        }
    }
}

const MIN: i64 = 60_000_000_000;

/// Writes `path` with times `ts` (minutes) and a target that numbers the rows from `first`, so
/// each output row says which input row it is.
fn write_rows(path: &Path, ts: &[i64], first: f64) {
    let target: Vec<f64> = (0..ts.len()).map(|i| first + i as f64).collect();
    let ns = ts.iter().map(|t| t * MIN).collect();
    write_parquet(
        path,
        vec![("ts", ts_ns(ns)), ("target", f64s(target))],
        false,
    );
}

/// Rows per timestamp (minutes) of a time column, in time order.
fn per_time(ts: &[i64]) -> std::collections::BTreeMap<i64, u64> {
    let mut m = std::collections::BTreeMap::new();
    for &t in ts {
        *m.entry(t / MIN).or_default() += 1;
    }
    m
}

/// Item 4: 3 symbols x 50 rows at one timestamp, K = 2: two rows stay (it kept 50: a symbol's rows
/// at one time shared a key), and which two follows the seed.
#[test]
fn i21_04_a_symbol_repeating_one_timestamp_keeps_exactly_k_rows() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    for (i, name) in ["A", "B", "C"].iter().enumerate() {
        write_rows(
            &u.join(format!("{name}.parquet")),
            &[7; 50],
            100.0 * i as f64,
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..8 {
        let out = d.path().join(format!("o{seed}.spill"));
        let seed = seed.to_string();
        ok(&build(
            &u,
            &out,
            &["--max-cs-samples", "2", "--seed", &seed],
        ));
        let f = spill::open(&out).expect("open");
        assert_eq!(f.nrows(), 2, "seed {seed}");
        seen.extend(
            f.column::<f32>("target")
                .expect("target")
                .iter()
                .map(|v| *v as u32),
        );
    }
    assert!(seen.len() >= 10, "8 seeds pick the same few rows: {seen:?}");
}

/// Item 4: 4 symbols x 300 rows over 30 times (each repeated 10 times per symbol), K = 1: one row a
/// timestamp (it kept 298). Also with time going backwards within a file and across the parts of
/// a symbol, with `--max-rows` cutting into them, through both decoders and any thread count.
#[test]
fn i21_04_repeated_times_keep_exactly_k_rows_at_every_timestamp() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    let repeated: Vec<i64> = (0..300).map(|i| i / 10).collect();
    for (i, name) in ["A", "B", "C", "D"].iter().enumerate() {
        write_rows(
            &u.join(format!("{name}.parquet")),
            &repeated,
            1000.0 * i as f64,
        );
    }
    let out = d.path().join("o.spill");
    ok(&build(&u, &out, &["--max-cs-samples", "1", "--seed", "5"]));
    let f = spill::open(&out).expect("open");
    assert_eq!(f.nrows(), 30);
    assert!(per_time(f.column("ts").expect("ts"))
        .values()
        .all(|&n| n == 1));

    // Disorder: backwards within a file, and two parts that overlap in time (each time twice in
    // each part); --max-rows 60 cuts 20 of OVER's 80 rows.
    let back: Vec<i64> = (0..30).rev().chain(0..30).collect();
    write_rows(&u.join("E.parquet"), &back, 5000.0);
    let p0: Vec<i64> = (0..40).map(|i| i / 2).collect();
    let p1: Vec<i64> = (20..60).map(|i| i / 2).collect();
    write_rows(&u.join("symbol=OVER/p0.parquet"), &p0, 6000.0);
    write_rows(&u.join("symbol=OVER/p1.parquet"), &p1, 7000.0);
    for k in ["1", "3", "12"] {
        let want = |max_rows: Option<usize>| {
            let mut n = std::collections::BTreeMap::<i64, u64>::new();
            let over: Vec<i64> = p0.iter().chain(&p1).copied().collect();
            for rows in [&repeated, &repeated, &repeated, &repeated, &back, &over] {
                let from = max_rows.map_or(0, |m| rows.len().saturating_sub(m));
                for &t in &rows[from..] {
                    *n.entry(t).or_default() += 1;
                }
            }
            let k: u64 = k.parse().expect("k");
            n.into_iter()
                .map(|(t, n)| (t, n.min(k)))
                .collect::<Vec<_>>()
        };
        for max_rows in [None, Some(60)] {
            let mut opts = vec!["--max-cs-samples", k, "--seed", "9"];
            let m = max_rows.map(|m| m.to_string());
            if let Some(m) = &m {
                opts.extend(["--max-rows", m]);
            }
            let mut targets = Vec::new();
            for shape in [
                ["--threads", "1", "--decoder", "auto"],
                ["--threads", "3", "--decoder", "arrow"],
                ["--threads", "2", "--order", "time"],
            ] {
                let out = d.path().join("d.spill");
                let mut extra = opts.clone();
                extra.extend(shape);
                ok(&build(&u, &out, &extra));
                let f = spill::open(&out).expect("open");
                let got: Vec<(i64, u64)> =
                    per_time(f.column("ts").expect("ts")).into_iter().collect();
                assert_eq!(got, want(max_rows), "K {k}, {max_rows:?}, {shape:?}");
                let mut kept = f.column::<f32>("target").expect("target").to_vec();
                kept.sort_by(f32::total_cmp);
                targets.push(kept);
            }
            assert_eq!(targets[0], targets[1], "both decoders keep the same rows");
            assert_eq!(
                targets[0], targets[2],
                "a time-major build keeps the same rows"
            );
        }
    }
}

/// Item 4: rows of one symbol at one time are each as likely to stay as any other row. Two
/// symbols, each with 20 rows at each of 200 times, K = 4: each of the 40 (symbol, occurrence)
/// cells should be picked 20 times; chi-square with 39 degrees of freedom under 72.05 (p = 0.001).
#[test]
fn i21_04_repeated_rows_are_sampled_uniformly() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    let ts: Vec<i64> = (0..4000).map(|i| i / 20).collect();
    write_rows(&u.join("A.parquet"), &ts, 0.0);
    write_rows(&u.join("B.parquet"), &ts, 10_000.0);
    for seed in ["1", "2", "3"] {
        let out = d.path().join(format!("o{seed}.spill"));
        ok(&build(&u, &out, &["--max-cs-samples", "4", "--seed", seed]));
        let f = spill::open(&out).expect("open");
        assert_eq!(f.nrows(), 800);
        let mut cells = [0u32; 40];
        for &v in f.column::<f32>("target").expect("target") {
            let (sym, row) = ((v as u32) / 10_000, (v as u32) % 10_000);
            cells[sym as usize * 20 + row as usize % 20] += 1;
        }
        let chi: f64 = cells
            .iter()
            .map(|&o| (f64::from(o) - 20.0).powi(2) / 20.0)
            .sum();
        assert!(
            chi < 72.05,
            "seed {seed}: chi-square {chi:.1}, cells {cells:?}"
        );
    }
}
