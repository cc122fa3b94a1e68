//! Golden files: one small spill file per format version under `spill/tests/data/v<M>.<m>/`,
//! committed. Both readers must keep opening them with these exact values, and today's writer must
//! still produce the newest one byte for byte (a change of the bytes then needs a new version).
//!
//! Released files are never rewritten. The newest ones (1.2: `golden.spill`, symbol-major, and
//! `golden-time.spill`, time-major) are made by
//! `cargo test -p spill --test spill -- --ignored regenerate_golden_1_2` (then commit them); 1.0's
//! and 1.1's were made the same way by their writers (commits b1af830 and 38b9061).

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use spill::{Layout, Order, Role, Scalar, Symbol, Timestamps, WriteOptions};

use crate::common::{python, run_python, Case, Data};

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1.0/golden.spill")
}

fn golden_1_1_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1.1/golden.spill")
}

pub fn golden_1_2_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1.2/golden.spill")
}

pub fn golden_time_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1.2/golden-time.spill")
}

/// The time zone of the 1.1 golden file's time column.
const GOLDEN_ZONE: &str = "America/New_York";

/// The content of the 1.1 golden file: 1.0's, with its own build tool and a zoned time column.
pub fn golden_case_1_1() -> Case {
    let mut case = golden_case();
    case.build.insert("tool".into(), json!("spill golden 1.1"));
    case
}

/// The content of the 1.2 symbol-major golden file: 1.1's, with its own build tool.
pub fn golden_case_1_2() -> Case {
    let mut case = golden_case();
    case.build.insert("tool".into(), json!("spill golden 1.2"));
    case
}

/// 2020-01-01T00:00:00Z in ns, and 5 minutes.
const T0: i64 = 1_577_836_800_000_000_000;
const STEP: i64 = 300_000_000_000;

/// The content of the 1.2 time-major golden file: 9 rows of the golden symbols sorted by (time,
/// code) at 4 timestamps (5-minute steps, then a gap of 10 minutes), the last one holding two
/// rows of one symbol; every dtype, NaN, infinities and -0.0. Returns the case (symbols with
/// their symbol-major ranges, for [`Layout::new`]) and the index's `(time, rows)`.
pub fn golden_time_case() -> (Case, Vec<(i64, u64)>) {
    let times = [T0, T0 + STEP, T0 + 2 * STEP, T0 + 4 * STEP];
    let counts = [2u64, 3, 2, 2];
    let ts: Vec<i64> = times
        .iter()
        .zip(counts)
        .flat_map(|(&t, c)| std::iter::repeat_n(t, c as usize))
        .collect();
    let mut build = Map::new();
    build.insert("tool".into(), json!("spill golden 1.2 time-major"));
    let case = Case {
        nrows: 9,
        columns: vec![
            ("ts".into(), Role::Time, Data::I64(ts)),
            (
                "symbol".into(),
                Role::Symbol,
                Data::U32(vec![0, 2, 0, 1, 2, 0, 2, 2, 2]),
            ),
            (
                "target".into(),
                Role::Target,
                Data::F32(vec![
                    0.5,
                    f32::NAN,
                    -1.25,
                    2.0,
                    0.0,
                    1.0,
                    -1.0,
                    3.0,
                    f32::NAN,
                ]),
            ),
            (
                "f0".into(),
                Role::Feature,
                Data::F32(vec![
                    1.0,
                    -0.0,
                    f32::INFINITY,
                    f32::NAN,
                    3.5,
                    0.25,
                    2.0,
                    -4.0,
                    8.0,
                ]),
            ),
            (
                "f1".into(),
                Role::Feature,
                Data::F32((1..=9).map(|i| i as f32 * 10.0).collect()),
            ),
            (
                "f2".into(),
                Role::Feature,
                Data::F32(vec![
                    -1e-3,
                    0.0,
                    1e30,
                    f32::NEG_INFINITY,
                    7.0,
                    1.0,
                    2.0,
                    3.0,
                    4.0,
                ]),
            ),
            (
                "w".into(),
                Role::Other,
                Data::F64(vec![0.1, f64::NAN, -2.5, 1e300, 0.0, 1.0, 2.0, 3.0, 4.0]),
            ),
            (
                "n".into(),
                Role::Other,
                Data::I32(vec![-1, 2, i32::MIN, i32::MAX, 0, 5, 6, 7, 8]),
            ),
            (
                "b".into(),
                Role::Other,
                Data::U8(vec![0, 1, 255, 7, 9, 10, 11, 12, 13]),
            ),
        ],
        // The symbol-major ranges of the same rows: AAPL 3, ÄPF 1, BRK.B 5.
        symbols: vec![
            Symbol {
                name: "AAPL".into(),
                start: 0,
                stop: 3,
            },
            Symbol {
                name: "ÄPF".into(),
                start: 3,
                stop: 4,
            },
            Symbol {
                name: "BRK.B".into(),
                start: 4,
                stop: 9,
            },
        ],
        build,
    };
    (case, times.into_iter().zip(counts).collect())
}

/// The time-major layout of [`golden_time_case`].
pub fn time_layout(case: &Case, counts: &[(i64, u64)], zone: Option<&str>) -> Layout {
    case.layout_with_timezone(zone)
        .with_time_order(Timestamps::from_counts(counts.iter().copied()).expect("index"))
        .expect("time-major layout")
}

/// The content of the 1.0 golden file: every dtype, NaN, infinities, -0.0, an empty range.
pub fn golden_case() -> Case {
    let t0 = 1_577_836_800_000_000_000i64; // 2020-01-01T00:00:00Z in ns
    let step = 300_000_000_000i64; // 5 minutes
    let mut build = Map::new();
    build.insert("tool".into(), json!("spill golden 1.0"));
    build.insert("options".into(), json!({"max_rows": null, "float32": true}));
    Case {
        nrows: 5,
        columns: vec![
            (
                "ts".into(),
                Role::Time,
                Data::I64((0..5).map(|i| t0 + i * step).collect()),
            ),
            (
                "symbol".into(),
                Role::Symbol,
                Data::U32(vec![0, 0, 0, 2, 2]),
            ),
            (
                "target".into(),
                Role::Target,
                Data::F32(vec![0.5, f32::NAN, -1.25, 2.0, f32::NAN]),
            ),
            (
                "f0".into(),
                Role::Feature,
                Data::F32(vec![1.0, -0.0, f32::INFINITY, f32::NAN, 3.5]),
            ),
            (
                "f1".into(),
                Role::Feature,
                Data::F32(vec![10.0, 20.0, 30.0, 40.0, 50.0]),
            ),
            (
                "f2".into(),
                Role::Feature,
                Data::F32(vec![-1e-3, 0.0, 1e30, f32::NEG_INFINITY, 7.0]),
            ),
            (
                "w".into(),
                Role::Other,
                Data::F64(vec![0.1, f64::NAN, -2.5, 1e300, 0.0]),
            ),
            (
                "n".into(),
                Role::Other,
                Data::I32(vec![-1, 2, i32::MIN, i32::MAX, 0]),
            ),
            ("b".into(), Role::Other, Data::U8(vec![0, 1, 255, 7, 9])),
        ],
        symbols: vec![
            Symbol {
                name: "AAPL".into(),
                start: 0,
                stop: 3,
            },
            Symbol {
                name: "ÄPF".into(),
                start: 3,
                stop: 3,
            },
            Symbol {
                name: "BRK.B".into(),
                start: 3,
                stop: 5,
            },
        ],
        build,
    }
}

fn write_golden_1_2(path: &Path, cuts: &[usize], opts: WriteOptions) -> PathBuf {
    let case = golden_case_1_2();
    case.write_layout(
        path,
        case.layout_with_timezone(Some(GOLDEN_ZONE)),
        cuts,
        opts,
    )
}

fn write_golden_time(path: &Path, cuts: &[usize], opts: WriteOptions) -> PathBuf {
    let (case, counts) = golden_time_case();
    case.write_layout(path, time_layout(&case, &counts, Some("UTC")), cuts, opts)
}

#[test]
#[ignore = "writes the golden files of the newest version; run once per new version, then commit them"]
fn regenerate_golden_1_2() {
    let p = golden_1_2_path();
    std::fs::create_dir_all(p.parent().expect("has a parent")).expect("mkdir");
    write_golden_1_2(&p, &[2], WriteOptions::default());
    write_golden_time(&golden_time_path(), &[4], WriteOptions::default());
}

/// What every version's golden file holds: values, symbols, build metadata, 1.0 statistics.
fn check_golden<D: spill::Backing + Sync>(f: &spill::SpillFile<D>, case: &Case) {
    assert_eq!(f.nrows(), 5);
    assert_eq!(f.symbols(), &case.symbols[..]);
    assert_eq!(f.build_metadata(), &case.build);
    for (i, (name, role, data)) in case.columns.iter().enumerate() {
        assert_eq!((&f.columns()[i].name, f.columns()[i].role), (name, *role));
        assert_eq!(f.column_bytes(i), data.bytes(), "{name}");
    }
    let f0 = &f.column_meta("f0").expect("f0").stats;
    assert_eq!(
        (f0.min, f0.max, f0.nan_count),
        (
            Some(Scalar::Float(-0.0)),
            Some(Scalar::Float(f64::INFINITY)),
            Some(1)
        )
    );
    assert!(matches!(f0.min, Some(Scalar::Float(v)) if v.is_sign_negative()));
    let n = &f.column_meta("n").expect("n").stats;
    assert_eq!(
        (n.min, n.max),
        (
            Some(Scalar::Int(i32::MIN as i64)),
            Some(Scalar::Int(i32::MAX as i64))
        )
    );
    let x = f.features::<f32>().expect("one strided view");
    assert_eq!((x.nrows(), x.ncols()), (5, 3));
    assert_eq!(x.get(2, 2), Some(1e30));
    assert!(f.verify().is_ok());
}

#[test]
fn golden_1_0_opens_with_its_values() {
    let f = spill::open(golden_path()).expect("the committed 1.0 golden file opens");
    assert_eq!(f.version(), (1, 0));
    check_golden(&f, &golden_case());
    // No 1.1 keys: the time column is ns by definition, with no zone; no mean or std.
    let ts = f.column_meta("ts").expect("ts");
    assert_eq!(
        (ts.unit.as_deref(), ts.timezone.as_deref()),
        (Some("ns"), None)
    );
    for c in f.columns() {
        assert_eq!((c.stats.mean, c.stats.std), (None, None), "{}", c.name);
    }
}

#[test]
fn golden_1_1_opens_with_its_values() {
    let f = spill::open(golden_1_1_path()).expect("the committed 1.1 golden file opens");
    assert_eq!(f.version(), (1, 1));
    check_golden(&f, &golden_case_1_1());
    let ts = f.column_meta("ts").expect("ts");
    assert_eq!(
        (ts.unit.as_deref(), ts.timezone.as_deref()),
        (Some("ns"), Some(GOLDEN_ZONE))
    );
    assert_eq!(f.column_meta("f0").expect("f0").unit, None);
    let moments = |name: &str| {
        let s = f.column_meta(name).expect("column").stats;
        (s.mean, s.std)
    };
    assert_eq!(moments("f1"), (Some(30.0), Some(200f64.sqrt())));
    // f0: 1, -0, 3.5 are finite (inf and NaN are not).
    assert_eq!(moments("f0"), (Some(1.5), Some((6.5f64 / 3.0).sqrt())));
    // w: the square of 1e300 overflows, so no std; the mean is still a number.
    assert_eq!(moments("w"), (Some(2.5e299), None));
    // Integer columns have none.
    assert_eq!(moments("n"), (None, None));
    assert_eq!(moments("ts"), (None, None));
}

#[test]
fn golden_1_2_opens_with_its_values() {
    let f = spill::open(golden_1_2_path()).expect("the committed 1.2 golden file opens");
    assert_eq!((f.version(), f.order()), ((1, 2), Order::Symbol));
    assert!(f.timestamps().is_none());
    check_golden(&f, &golden_case_1_2());
    assert_eq!(f.time_range(0, i64::MAX), None);
}

#[test]
fn golden_1_2_time_major_opens_with_its_values() {
    let f = spill::open(golden_time_path()).expect("the committed time-major golden file opens");
    let (case, counts) = golden_time_case();
    assert_eq!((f.version(), f.order()), ((1, 2), Order::Time));
    assert_eq!(f.nrows(), 9);
    assert_eq!(f.build_metadata(), &case.build);
    for (i, (name, role, data)) in case.columns.iter().enumerate() {
        assert_eq!((&f.columns()[i].name, f.columns()[i].role), (name, *role));
        assert_eq!(f.column_bytes(i), data.bytes(), "{name}");
    }
    let names: Vec<&str> = f.symbols().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["AAPL", "ÄPF", "BRK.B"]);
    assert!(f.symbols().iter().all(|s| (s.start, s.stop) == (0, 0)));
    let ts = f.timestamps().expect("an index");
    let got: Vec<(i64, std::ops::Range<u64>)> = ts.iter().collect();
    assert_eq!(
        got,
        [
            (T0, 0..2),
            (T0 + STEP, 2..5),
            (T0 + 2 * STEP, 5..7),
            (T0 + 4 * STEP, 7..9)
        ]
    );
    assert_eq!(ts.len(), counts.len());
    assert_eq!(f.time_range(T0 + 1, T0 + 3 * STEP), Some(2..7));
    assert_eq!(
        f.time_ranges(T0 + 1, T0 + 3 * STEP).expect("ok"),
        vec![2..7]
    );
    assert_eq!(
        f.group_sizes(std::iter::once(0..9)).expect("sizes"),
        [2, 3, 2, 2]
    );
    assert!(f.verify().is_ok());
    f.verify_time_index()
        .expect("the time column matches the index");
    let ts = f.column_meta("ts").expect("ts");
    assert_eq!(ts.timezone.as_deref(), Some("UTC"));
}

#[test]
fn todays_writer_reproduces_golden_1_2_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = WriteOptions::default().with_memory(4096);
    let p = write_golden_1_2(&dir.path().join("g.spill"), &[1, 4], opts);
    assert!(
        std::fs::read(p).expect("read") == std::fs::read(golden_1_2_path()).expect("read golden"),
        "the writer no longer produces format 1.2 bytes: bump the version and add a new golden file"
    );
    let p = write_golden_time(&dir.path().join("t.spill"), &[1, 7], opts);
    assert!(
        std::fs::read(p).expect("read") == std::fs::read(golden_time_path()).expect("read golden"),
        "the writer no longer produces format 1.2 time-major bytes"
    );
}

#[test]
fn numpy_reader_opens_every_golden_file() {
    let Some(py) = python() else { return };
    for (path, case) in [
        (golden_path(), golden_case()),
        (golden_1_1_path(), golden_case_1_1()),
        (golden_1_2_path(), golden_case_1_2()),
    ] {
        let out = run_python(
            &py,
            r#"
import sys, json, spillfile, numpy as np
f = spillfile.open(sys.argv[1])
f.verify()
print(json.dumps({"nrows": f.nrows, "columns": f.columns, "symbols": f.symbols,
                  "ranges": {k: list(v) for k, v in f.symbol_ranges.items()},
                  "f0": [repr(float(v)) for v in f.column("f0")],
                  "n": f.column("n").tolist(), "b": f.column("b").tolist(),
                  "X": f.features().shape, "X22": float(f.features()[2, 2]), "build": f.metadata}))
"#,
            &[&path],
        );
        let v: Value = serde_json::from_str(&out).expect("json");
        assert_eq!(v["nrows"], 5);
        assert_eq!(
            v["columns"],
            json!(["ts", "symbol", "target", "f0", "f1", "f2", "w", "n", "b"])
        );
        assert_eq!(v["symbols"], json!(["AAPL", "ÄPF", "BRK.B"]));
        assert_eq!(v["ranges"]["ÄPF"], json!([3, 3]));
        assert_eq!(v["f0"], json!(["1.0", "-0.0", "inf", "nan", "3.5"]));
        assert_eq!(v["n"], json!([-1, 2, i32::MIN, i32::MAX, 0]));
        assert_eq!(v["b"], json!([0, 1, 255, 7, 9]));
        assert_eq!(v["X"], json!([5, 3]));
        assert_eq!(v["X22"], json!(1e30f32 as f64));
        assert_eq!(v["build"], Value::Object(case.build));
    }
}

#[test]
fn numpy_reader_opens_the_time_major_golden_file() {
    let Some(py) = python() else { return };
    let out = run_python(
        &py,
        r#"
import sys, json, spillfile, numpy as np
f = spillfile.open(sys.argv[1])
f.verify()
f.verify_time_index()
ts = f.timestamps
print(json.dumps({"version": list(f.version), "order": f.order, "symbols": f.symbols,
                  "times": ts.times.tolist(), "starts": ts.starts.tolist(),
                  "range": list(f.time_range(int(ts.times[0]) + 1, int(ts.times[3]))),
                  "groups": f.group_sizes().tolist(), "qid": f.qid().tolist(),
                  "b": f.column("b").tolist(), "build": f.metadata}))
"#,
        &[&golden_time_path()],
    );
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["version"], json!([1, 2]));
    assert_eq!(v["order"], "time");
    assert_eq!(v["symbols"], json!(["AAPL", "ÄPF", "BRK.B"]));
    assert_eq!(
        v["times"],
        json!([T0, T0 + STEP, T0 + 2 * STEP, T0 + 4 * STEP])
    );
    assert_eq!(v["starts"], json!([0, 2, 5, 7]));
    assert_eq!(v["range"], json!([2, 7]));
    assert_eq!(v["groups"], json!([2, 3, 2, 2]));
    assert_eq!(v["qid"], json!([0, 0, 1, 1, 1, 2, 2, 3, 3]));
    assert_eq!(v["b"], json!([0, 1, 255, 7, 9, 10, 11, 12, 13]));
    assert_eq!(v["build"], Value::Object(golden_time_case().0.build));
}
