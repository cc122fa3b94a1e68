//! Format 1.2's rules, one hostile file per rule: each is a typed error in Rust, and a SpillError
//! saying the same thing in the numpy reader, before any byte is handed out.

use serde_json::{json, Value};
use spill::{Error, SpillFile};

use crate::common::{python, rewrite_metadata, rewrite_trailer, run_python};
use crate::golden::{golden_1_2_path, golden_time_path};

type Check = fn(&Error) -> bool;

/// A change to a file: its metadata JSON, then its trailer's required-feature bits.
struct Lie {
    name: &'static str,
    time_major: bool,
    meta: fn(&mut Value),
    bits: Option<u64>,
    rust: Check,
    /// What the numpy reader's message contains.
    python: &'static str,
}

fn ts(v: &mut Value) -> &mut Value {
    &mut v["timestamps"]
}

fn lies() -> Vec<Lie> {
    let lie = |name, time_major, meta, rust, python| Lie {
        name,
        time_major,
        meta,
        bits: None,
        rust,
        python,
    };
    let bad_index = |e: &Error| matches!(e, Error::BadTimestamps(_));
    vec![
        lie(
            "unknown order",
            true,
            |v| v["order"] = json!("space"),
            |e| matches!(e, Error::UnknownOrder { order } if order == "space"),
            "row order 'space' is unknown",
        ),
        lie(
            "order not a string",
            true,
            |v| v["order"] = json!(5),
            |e| matches!(e, Error::MetadataJson(m) if m.contains("order")),
            "order is not a string",
        ),
        lie(
            "order null",
            false,
            |v| v["order"] = Value::Null,
            |e| matches!(e, Error::MetadataJson(m) if m.contains("order")),
            "order is not a string",
        ),
        Lie {
            name: "time-major without bit 0",
            time_major: true,
            meta: |_| {},
            bits: Some(0),
            rust: |e| matches!(e, Error::OrderFeature { bit: false, .. }),
            python: "bit 0 is clear",
        },
        Lie {
            name: "symbol-major with bit 0",
            time_major: false,
            meta: |_| {},
            bits: Some(1),
            rust: |e| matches!(e, Error::OrderFeature { bit: true, .. }),
            python: "bit 0 is set",
        },
        lie(
            "time-major without an index",
            true,
            |v| {
                v.as_object_mut().map(|o| o.remove("timestamps"));
            },
            bad_index,
            "has no timestamp index",
        ),
        lie(
            "symbol-major with an index",
            false,
            |v| {
                v["timestamps"] = json!({"count": 0, "first": 0, "steps": [], "rows": []});
            },
            bad_index,
            "a symbol-major file has a timestamp index",
        ),
        lie(
            "odd step list",
            true,
            |v| ts(v)["steps"] = json!([300000000000u64]),
            bad_index,
            "even number",
        ),
        lie(
            "zero step",
            true,
            |v| ts(v)["steps"] = json!([0, 2, 600000000000u64, 1]),
            bad_index,
            "at least 1",
        ),
        lie(
            "empty step run",
            true,
            |v| {
                ts(v)["steps"] = json!([300000000000u64, 2, 5, 0, 600000000000u64, 1]);
            },
            bad_index,
            "at least 1",
        ),
        lie(
            "zero row count",
            true,
            |v| ts(v)["rows"] = json!([2, 1, 0, 1, 2, 2]),
            bad_index,
            "at least 1",
        ),
        lie(
            "steps cover too few",
            true,
            |v| ts(v)["steps"] = json!([300000000000u64, 2]),
            bad_index,
            "the step runs cover 2 differences",
        ),
        lie(
            "rows cover too many",
            true,
            |v| ts(v)["rows"] = json!([2, 1, 3, 1, 2, 3]),
            bad_index,
            "the row runs cover 5 timestamps",
        ),
        lie(
            "times past int64",
            true,
            |v| ts(v)["first"] = json!(i64::MAX - 10),
            bad_index,
            "past the largest int64",
        ),
        lie(
            "empty index with a first time",
            false,
            |v| {
                v["order"] = json!("time");
                v["nrows"] = json!(0);
                v["columns"] = json!([]);
                v["symbols"] = json!([]);
                v["timestamps"] = json!({"count": 0, "first": 7, "steps": [], "rows": []});
            },
            bad_index,
            "0 timestamps has first 0",
        ),
        lie(
            "rows do not add up",
            true,
            |v| ts(v)["rows"] = json!([2, 1, 3, 1, 2, 1, 3, 1]),
            |e| matches!(e, Error::TimestampsDoNotTile { rows: 10, nrows: 9 }),
            "covers 10 rows, the file has 9",
        ),
        lie(
            "too many rows",
            true,
            |v| ts(v)["rows"] = json!([2, 1, 3, 1, 1u64 << 47, 2]),
            |e| matches!(e, Error::OverCap { .. }),
            "over the cap",
        ),
        lie(
            "count over the cap",
            true,
            |v| ts(v)["count"] = json!((1u64 << 48) + 1),
            |e| matches!(e, Error::OverCap { what, .. } if *what == "timestamp count"),
            "timestamp count is 281474976710657, over the cap",
        ),
        lie(
            "symbol range in a time-major file",
            true,
            |v| {
                v["symbols"][1]["start"] = json!(0);
            },
            |e| matches!(e, Error::SymbolRangeInTimeMajor { symbol } if symbol == "ÄPF"),
            "has a row range in a time-major file",
        ),
        lie(
            "symbol-major symbol without a range",
            false,
            |v| {
                v["symbols"][1].as_object_mut().map(|o| o.remove("stop"));
            },
            |e| matches!(e, Error::MetadataJson(m) if m.contains("no start and stop")),
            "has no start and stop",
        ),
        lie(
            "negative step",
            true,
            |v| ts(v)["steps"] = json!([-5, 2, 600000000000u64, 1]),
            |e| matches!(e, Error::MetadataJson(_)),
            "not an array of unsigned integers",
        ),
        lie(
            "fractional first",
            true,
            |v| ts(v)["first"] = json!(1.5),
            |e| matches!(e, Error::MetadataJson(_)),
            "first is not a signed 64-bit integer",
        ),
        lie(
            "index not an object",
            true,
            |v| ts(v).clone_from(&json!([4])),
            |e| matches!(e, Error::MetadataJson(_)),
            "timestamps is not {count, first, steps, rows}",
        ),
        lie(
            "index missing rows",
            true,
            |v| {
                ts(v).as_object_mut().map(|o| o.remove("rows"));
            },
            |e| matches!(e, Error::MetadataJson(_)),
            "timestamps is not {count, first, steps, rows}",
        ),
    ]
}

fn apply(lie: &Lie, base: &[u8]) -> Vec<u8> {
    let x = rewrite_metadata(base, |v| (lie.meta)(v));
    match lie.bits {
        Some(bits) => rewrite_trailer(&x, |t| t.required_features = bits),
        None => x,
    }
}

#[test]
fn every_broken_rule_is_a_typed_error_in_rust_and_a_spill_error_in_python() {
    let time = std::fs::read(golden_time_path()).expect("golden time-major");
    let sym = std::fs::read(golden_1_2_path()).expect("golden 1.2");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut paths = Vec::new();
    let lies = lies();
    for (i, lie) in lies.iter().enumerate() {
        let x = apply(lie, if lie.time_major { &time } else { &sym });
        match SpillFile::from_bytes(&x[..]) {
            Ok(_) => panic!("{}: opened", lie.name),
            Err(e) => assert!((lie.rust)(&e), "{}: unexpected error {e:?}", lie.name),
        }
        let p = dir.path().join(format!("{i}.spill"));
        std::fs::write(&p, &x).expect("write");
        paths.push(p);
    }
    let Some(py) = python() else { return };
    let script = r#"
import sys, spillfile
for p in sys.argv[1:]:
    try:
        spillfile.open(p)
        print("OPENED")
    except spillfile.SpillError as e:
        print("SpillError", str(e).replace("\n", " "))
    except BaseException as e:
        print("OTHER", type(e).__name__, e)
"#;
    let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
    let out = run_python(&py, script, &refs);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), lies.len());
    for (lie, line) in lies.iter().zip(lines) {
        assert!(
            line.starts_with("SpillError") && line.contains(lie.python),
            "{}: python said {line}",
            lie.name
        );
    }
}

#[test]
fn what_the_rules_allow_opens() {
    let time = std::fs::read(golden_time_path()).expect("golden time-major");
    let sym = std::fs::read(golden_1_2_path()).expect("golden 1.2");
    // Unmerged runs, an absent or null `order` in a symbol-major file (1.0 and 1.1 have none),
    // unknown keys in the index.
    type Allowed<'a> = (&'a str, &'a [u8], fn(&mut Value));
    let ok: Vec<Allowed> = vec![
        ("unmerged runs", &time, |v| {
            ts(v)["steps"] = json!([300000000000u64, 1, 300000000000u64, 1, 600000000000u64, 1]);
            ts(v)["rows"] = json!([2, 1, 3, 1, 2, 1, 2, 1]);
        }),
        ("unknown index key", &time, |v| {
            ts(v)["calendar"] = json!("XNYS")
        }),
        ("no order key", &sym, |v| {
            v.as_object_mut().map(|o| o.remove("order"));
        }),
        ("null timestamps in a symbol-major file", &sym, |v| {
            v["timestamps"] = Value::Null;
        }),
    ];
    for (name, base, f) in ok {
        let x = rewrite_metadata(base, f);
        let file = SpillFile::from_bytes(&x[..]).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(t) = file.timestamps() {
            assert_eq!(
                t.iter().map(|x| x.1.end - x.1.start).collect::<Vec<_>>(),
                [2, 3, 2, 2]
            );
        }
    }
}
