//! Golden files: one small spill file per format version under `spill/tests/data/v<M>.<m>/`,
//! committed. Both readers must keep opening them with these exact values, and today's writer must
//! still produce the newest one byte for byte (a change of the bytes then needs a new version).
//!
//! Released files are never rewritten. The newest one is made by
//! `cargo test -p spill --test spill -- --ignored regenerate_golden_1_1` (then commit it); 1.0's
//! was made the same way by the 1.0 writer (commit b1af830).

use std::path::PathBuf;

use serde_json::{json, Map, Value};
use spill::{Role, Scalar, Symbol, WriteOptions};

use crate::common::{python, run_python, Case, Data};

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1.0/golden.spill")
}

fn golden_1_1_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1.1/golden.spill")
}

/// The time zone of the 1.1 golden file's time column.
const GOLDEN_ZONE: &str = "America/New_York";

/// The content of the 1.1 golden file: 1.0's, with its own build tool and a zoned time column.
pub fn golden_case_1_1() -> Case {
    let mut case = golden_case();
    case.build.insert("tool".into(), json!("spill golden 1.1"));
    case
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

fn write_golden_1_1(path: &std::path::Path, cuts: &[usize], opts: WriteOptions) -> PathBuf {
    let case = golden_case_1_1();
    case.write_layout(
        path,
        case.layout_with_timezone(Some(GOLDEN_ZONE)),
        cuts,
        opts,
    )
}

#[test]
#[ignore = "writes the golden file of the newest version; run once per new version, then commit it"]
fn regenerate_golden_1_1() {
    let p = golden_1_1_path();
    std::fs::create_dir_all(p.parent().expect("has a parent")).expect("mkdir");
    write_golden_1_1(&p, &[2], WriteOptions::default());
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
fn todays_writer_reproduces_golden_1_1_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write_golden_1_1(
        &dir.path().join("g.spill"),
        &[1, 4],
        WriteOptions::default().with_memory(4096),
    );
    assert!(
        std::fs::read(p).expect("read") == std::fs::read(golden_1_1_path()).expect("read golden"),
        "the writer no longer produces format 1.1 bytes: bump the version and add a new golden file"
    );
}

#[test]
fn numpy_reader_opens_every_golden_file() {
    let Some(py) = python() else { return };
    for (path, case) in [
        (golden_path(), golden_case()),
        (golden_1_1_path(), golden_case_1_1()),
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
