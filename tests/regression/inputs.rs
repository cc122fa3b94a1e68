//! Items 2-5, 10, 11 and `--time-unit`: what the inputs can hold.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::common::*;

const MIN: i64 = 60_000_000_000;

/// Item 2: pyarrow names parts `part-0 .. part-11`; byte order puts `part-10` first. Parts are
/// read in time order, so `--max-rows` keeps the symbol's last rows.
#[test]
fn i12_02_hive_parts_are_read_in_time_order() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    for part in 0..12i64 {
        let ts: Vec<i64> = (0..10).map(|i| (part * 10 + i) * MIN).collect();
        let target: Vec<f64> = (0..10).map(|i| (part * 10 + i) as f64).collect();
        let p = u.join(format!("symbol=A/part-{part}.parquet"));
        write_parquet(&p, vec![("ts", ts_ns(ts)), ("target", f64s(target))], false);
    }
    // DuckDB-style names that do not follow time at all.
    for (name, start) in [("data_b.parquet", 0i64), ("data_a.parquet", 10)] {
        let ts: Vec<i64> = (start..start + 10).map(|i| i * MIN).collect();
        let target: Vec<f64> = (start..start + 10).map(|i| i as f64).collect();
        let p = u.join("symbol=B").join(name);
        write_parquet(&p, vec![("ts", ts_ns(ts)), ("target", f64s(target))], false);
    }
    let out = d.path().join("o.spill");
    let summary = d.path().join("s.json");
    ok(&build(
        &u,
        &out,
        &["--max-rows", "15", "--summary", s(&summary)],
    ));
    let f = spill::open(&out).expect("open");
    let y = f.column::<f32>("target").expect("target");
    let want: Vec<f32> = (105..120).chain(5..20).map(|v| v as f32).collect();
    assert_eq!(
        y,
        &want[..],
        "the last 15 rows of each symbol, in time order"
    );
    let j: Value = serde_json::from_slice(&std::fs::read(&summary).expect("read")).expect("json");
    assert_eq!(j["time_disorder"]["symbols"], 0);
}

/// Item 2: time that still goes backwards or repeats is reported (summary, JSON, inspect).
#[test]
fn i12_02_disordered_time_is_reported() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    let write = |name: &str, ts: Vec<i64>| {
        let n = ts.len();
        let target = f64s(vec![0.0; n]);
        write_parquet(
            &u.join(name),
            vec![("ts", ts_ns(ts)), ("target", target)],
            false,
        );
    };
    write("GOOD.parquet", vec![MIN, 2 * MIN, 3 * MIN]);
    write("BACK.parquet", vec![MIN, 3 * MIN, 2 * MIN]);
    write("SAME.parquet", vec![MIN, MIN, 2 * MIN]);
    // Two parts that overlap in time.
    write("symbol=OVER/p0.parquet", vec![MIN, 5 * MIN]);
    write("symbol=OVER/p1.parquet", vec![3 * MIN, 6 * MIN]);
    let out = d.path().join("o.spill");
    let summary = d.path().join("s.json");
    let o = run(&build_args(&u, &out, &["--summary", s(&summary)]));
    ok(&o);
    let e = stderr(&o);
    assert!(
        e.contains("time goes backwards or repeats in 3 symbol(s) (BACK, OVER, SAME)"),
        "{e}"
    );
    let j: Value = serde_json::from_slice(&std::fs::read(&summary).expect("read")).expect("json");
    assert_eq!(j["time_disorder"]["symbols"], 3);
    assert_eq!(
        j["time_disorder"]["first"][0],
        serde_json::json!(["BACK", 1])
    );
    let o = run(&["inspect", "--input", s(&u), "--target", "target", "--json"]);
    ok(&o);
    let j: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(j["time_disorder"]["symbols"], 3);
    let o = run(&["inspect", "--input", s(&u), "--target", "target"]);
    assert!(stdout(&o).contains("time goes backwards or repeats in 3 symbol(s)"));
}

/// Reads every non-null float value of column `name` in every parquet file under `dir`.
fn values(dir: &Path, name: &str) -> Vec<Vec<f64>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let f = std::fs::File::open(p).expect("open");
            let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
                .expect("reader")
                .build()
                .expect("build");
            let mut out = Vec::new();
            for b in r {
                let b = b.expect("batch");
                let c = b.column_by_name(name).expect("column");
                let c = c
                    .as_any()
                    .downcast_ref::<arrow_array::Float64Array>()
                    .expect("gen writes float64");
                out.extend(c.iter().flatten());
            }
            out
        })
        .collect()
}

/// Item 3: symbols no longer share values (they were one stream at different offsets).
#[test]
fn i12_03_gen_symbols_do_not_share_values() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    gen(&u, &["--symbols", "16", "--rows", "500", "--features", "7"]);
    for column in ["target", "f001", "f004"] {
        let mut seen = std::collections::HashSet::new();
        let mut total = 0;
        for v in values(&u, column) {
            total += v.len();
            seen.extend(v.iter().map(|x| x.to_bits()));
        }
        assert_eq!(seen.len(), total, "{column}: a value appears in two places");
    }
}

/// Item 3: `--signal R2` makes the target learnable with the documented weights.
#[test]
fn i12_03_gen_signal_explains_its_share_of_variance() {
    let d = tempfile::tempdir().expect("tempdir");
    for r2 in [0.0, 0.3, 0.8] {
        let u = d.path().join(format!("u{r2}"));
        let arg = r2.to_string();
        gen(
            &u,
            &[
                "--symbols",
                "4",
                "--rows",
                "5000",
                "--features",
                "12",
                "--signal",
                &arg,
            ],
        );
        let (mut sx, mut sy, mut sxx, mut syy, mut sxy, mut n) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        let cols: Vec<Vec<Vec<f64>>> = ["target", "f001", "f006", "f011"]
            .iter()
            .map(|c| values(&u, c))
            .collect();
        let symbols = cols[0].iter().zip(&cols[1]).zip(&cols[2]).zip(&cols[3]);
        for (((ys, f1), f6), f11) in symbols {
            // The target's last row is null: values() left it out.
            for (i, &y) in ys.iter().enumerate() {
                let x = 0.6 * f1[i] + 0.48 * f6[i] - 0.64 * f11[i];
                (sx, sy, sxx, syy, sxy, n) = (
                    sx + x,
                    sy + y,
                    sxx + x * x,
                    syy + y * y,
                    sxy + x * y,
                    n + 1.0,
                );
            }
        }
        let cov = sxy / n - sx / n * sy / n;
        let corr2 = cov * cov / ((sxx / n - (sx / n).powi(2)) * (syy / n - (sy / n).powi(2)));
        assert!((corr2 - r2).abs() < 0.03, "R2 {r2}: measured {corr2}");
    }
    let o = run(&[
        "gen",
        "--output",
        s(&d.path().join("bad")),
        "--signal",
        "1.5",
    ]);
    usage_error(&o, &["--signal 1.5"]);
}

/// Item 4: a file with two columns of one name is an error naming the file and the column.
#[test]
fn i12_04_duplicate_column_names_are_an_error() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    let ts = ts_ns(vec![MIN, 2 * MIN]);
    write_parquet(
        &u.join("A.parquet"),
        vec![
            ("ts", ts.clone()),
            ("target", f64s(vec![1.0, 2.0])),
            ("f0", f64s(vec![0.0; 2])),
        ],
        false,
    );
    write_parquet(
        &u.join("B.parquet"),
        vec![
            ("ts", ts),
            ("target", f64s(vec![1.0, 2.0])),
            ("target", f64s(vec![3.0, 4.0])),
            ("f0", f64s(vec![0.0; 2])),
        ],
        false,
    );
    let out = d.path().join("o.spill");
    fails_with(
        &build(&u, &out, &[]),
        &["B.parquet", "\"target\" appears twice"],
    );
    ok(&build(&u, &out, &["--on-error", "skip"]));
}

/// A file whose column `f0` (optional, all present, plain, uncompressed V1) has its definition
/// level run patched from 1 to 129, beside a boolean column when `arrow_only` (so that arrow-rs
/// reads the file).
fn bad_levels(path: &Path, arrow_only: bool) {
    let n = 100;
    let mut columns = vec![
        ("ts", ts_ns((0..n).map(|i| i * MIN).collect())),
        ("target", f64s((0..n).map(|i| i as f64).collect())),
        ("f0", f64s((0..n).map(|i| i as f64).collect())),
    ];
    if arrow_only {
        let flags: arrow_array::ArrayRef =
            Arc::new(arrow_array::BooleanArray::from(vec![true; n as usize]));
        columns.push(("flag", flags));
    }
    write_parquet(path, columns, true);
    let mut bytes = std::fs::read(path).expect("read");
    // Levels of 100 present rows: length 3, then an RLE run of 100 (varint 0xC8 0x01) of 1.
    let run = [3, 0, 0, 0, 0xc8, 0x01, 0x01];
    let at: Vec<usize> = (0..bytes.len() - run.len())
        .filter(|&i| bytes[i..i + run.len()] == run)
        .collect();
    assert_eq!(
        at.len(),
        if arrow_only { 4 } else { 3 },
        "one level run per column"
    );
    bytes[at[2] + 6] = 129;
    std::fs::write(path, bytes).expect("write");
}

/// Item 5: a definition level above the column's maximum is an error naming the file, the
/// column and the page, whichever decoder reads the file.
#[test]
fn i12_05_a_level_above_the_maximum_is_an_error_on_both_paths() {
    let d = tempfile::tempdir().expect("tempdir");
    for (name, arrow_only) in [("fast", false), ("arrow", true)] {
        let u = d.path().join(name);
        bad_levels(&u.join("A.parquet"), arrow_only);
        let out = d.path().join(format!("{name}.spill"));
        for decoder in ["auto", "arrow"] {
            let o = build(&u, &out, &["--decoder", decoder]);
            fails_with(
                &o,
                &[
                    "A.parquet",
                    "column \"f0\"",
                    "row group 0",
                    "page 0",
                    "level 129",
                ],
            );
            assert!(!out.exists());
        }
    }
}

/// Item 10: when every symbol is skipped, the error lists why.
#[test]
fn i12_10_nothing_to_build_lists_the_reasons() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    gen(&u, &["--symbols", "3", "--rows", "50", "--features", "2"]);
    let out = d.path().join("o.spill");
    let o = run(&[
        "build",
        "--input",
        s(&u),
        "--output",
        s(&out),
        "--target",
        "tagret",
    ]);
    fails_with(
        &o,
        &["3 skipped", "S0000: no target column \"tagret\"", "S0002"],
    );
}

/// Item 11: `symbol=` (an empty name) says so.
#[test]
fn i12_11_an_empty_symbol_name_says_so() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    gen(&u, &["--symbols", "1", "--rows", "50", "--features", "2"]);
    let p = u.join("symbol=/p.parquet");
    write_parquet(
        &p,
        vec![("ts", ts_ns(vec![MIN])), ("target", f64s(vec![1.0]))],
        false,
    );
    let out = d.path().join("o.spill");
    fails_with(
        &build(&u, &out, &[]),
        &["symbol=", "the symbol name is empty"],
    );
}

/// Item 16: an integer epoch time column, with `--time-unit`.
#[test]
fn i12_16_integer_time_columns_take_a_unit() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    let secs: arrow_array::ArrayRef = Arc::new(arrow_array::Int64Array::from(vec![
        1_600_000_000,
        1_600_000_060,
    ]));
    write_parquet(
        &u.join("A.parquet"),
        vec![("ts", secs), ("target", f64s(vec![1.0, 2.0]))],
        false,
    );
    let out = d.path().join("o.spill");
    fails_with(&build(&u, &out, &[]), &["holds integers", "--time-unit"]);
    for decoder in ["auto", "arrow"] {
        ok(&build(
            &u,
            &out,
            &["--time-unit", "s", "--decoder", decoder],
        ));
        let f = spill::open(&out).expect("open");
        let t = f.column::<i64>("ts").expect("ts");
        assert_eq!(t, &[1_600_000_000_000_000_000, 1_600_000_060_000_000_000]);
    }
    usage_error(&build(&u, &out, &["--time-unit", "days"]), &["days"]);
}
