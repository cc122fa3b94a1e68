//! The keys format 1.1 adds (`unit` and `timezone` on the time column, `stats.mean` and
//! `stats.std`): what writers write, what readers accept, and a typed error for each thing they
//! refuse. Rust only for now: the numpy reader learns these keys in its rewrite (until then it
//! ignores them, as it must ignore unknown keys).

use serde_json::{json, Value};
use spill::{Error, Role, SpillFile, Symbol, WriteOptions};

use crate::common::{rewrite_metadata, Case, Data};

/// A change to a file's metadata JSON.
type Lie = Box<dyn Fn(&mut Value)>;

fn case() -> Case {
    Case {
        nrows: 4,
        columns: vec![
            ("ts".into(), Role::Time, Data::I64(vec![10, 20, 30, 40])),
            (
                "f".into(),
                Role::Feature,
                Data::F32(vec![1.0, f32::NAN, 3.0, 5.0]),
            ),
            ("n".into(), Role::Other, Data::I32(vec![1, 2, 3, 4])),
        ],
        symbols: vec![Symbol {
            name: "S".into(),
            start: 0,
            stop: 4,
        }],
        build: Default::default(),
    }
}

fn bytes(zone: Option<&str>) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = case();
    let p = c.write_layout(
        &dir.path().join("k.spill"),
        c.layout_with_timezone(zone),
        &[],
        WriteOptions::default(),
    );
    std::fs::read(p).expect("read")
}

#[test]
fn writers_write_the_1_1_keys_in_table_order() {
    let b = bytes(Some("+05:00"));
    let f = SpillFile::from_bytes(&b[..]).expect("valid");
    assert_eq!(f.version(), (1, 2));
    let json = String::from_utf8(b[metadata_offset(&b)..b.len() - 64].to_vec()).expect("utf8");
    assert!(
        json.contains(r#"{"name":"ts","dtype":"i64","role":"time","unit":"ns","timezone":"+05:00","offset":4096,"#),
        "{json}"
    );
    assert!(
        json.contains(
            r#""stats":{"min":1.0,"max":5.0,"nan_count":1,"mean":3.0,"std":1.632993161855452}"#
        ),
        "{json}"
    );
    // Integer columns: no mean or std; other columns: no unit or zone.
    assert!(json.contains(r#""stats":{"min":1,"max":4}}"#), "{json}");
    assert_eq!(json.matches("\"unit\"").count(), 1);
    // A naive source: the key is there, null.
    let naive = bytes(None);
    let json =
        String::from_utf8(naive[metadata_offset(&naive)..naive.len() - 64].to_vec()).expect("utf8");
    assert!(json.contains(r#""unit":"ns","timezone":null,"#), "{json}");
}

fn metadata_offset(b: &[u8]) -> usize {
    let mut t = [0u8; 64];
    t.copy_from_slice(&b[b.len() - 64..]);
    spill::Trailer::decode(&t).expect("trailer").metadata_offset as usize
}

#[test]
fn readers_accept_what_the_spec_allows_and_ignore_the_rest() {
    let b = bytes(Some("America/New_York"));
    let ok: Vec<(&str, Lie)> = vec![
        (
            "no 1.1 keys at all (a 1.0 writer)",
            Box::new(|v| {
                for c in v["columns"].as_array_mut().expect("columns") {
                    let c = c.as_object_mut().expect("column");
                    c.remove("unit");
                    c.remove("timezone");
                    let s = c["stats"].as_object_mut().expect("stats");
                    s.remove("mean");
                    s.remove("std");
                }
            }),
        ),
        (
            "null mean and std",
            Box::new(|v| {
                v["columns"][1]["stats"]["mean"] = Value::Null;
                v["columns"][1]["stats"]["std"] = Value::Null;
            }),
        ),
        (
            "integer mean",
            Box::new(|v| v["columns"][1]["stats"]["mean"] = json!(3)),
        ),
        (
            "mean on an integer column",
            Box::new(|v| v["columns"][2]["stats"]["mean"] = json!(2.5)),
        ),
        (
            "unit and zone of any type on a non-time column are ignored",
            Box::new(|v| {
                v["columns"][1]["unit"] = json!(7);
                v["columns"][1]["timezone"] = json!({"x": 1});
            }),
        ),
        (
            "unknown keys",
            Box::new(|v| {
                v["columns"][0]["calendar"] = json!("gregorian");
                v["columns"][1]["stats"]["median"] = json!("?");
            }),
        ),
    ];
    for (name, lie) in ok {
        let x = rewrite_metadata(&b, |v| lie(v));
        let f = SpillFile::from_bytes(x).unwrap_or_else(|e| panic!("{name}: {e}"));
        let c = f.column_meta("f").expect("f");
        assert_eq!(
            (c.unit.as_deref(), c.timezone.as_deref()),
            (None, None),
            "{name}"
        );
    }
    let plain = rewrite_metadata(&b, |v| {
        v["columns"][0].as_object_mut().map(|c| c.remove("unit"));
    });
    let f = SpillFile::from_bytes(plain).expect("valid");
    let ts = f.column_meta("ts").expect("ts");
    assert_eq!(
        (ts.unit.as_deref(), ts.timezone.as_deref()),
        (Some("ns"), Some("America/New_York"))
    );
}

#[test]
fn readers_refuse_bad_1_1_keys_with_typed_errors() {
    type Check = fn(&Error) -> bool;
    let b = bytes(Some("UTC"));
    let bad: Vec<(&str, Lie, Check)> = vec![
        (
            "unit us",
            Box::new(|v| v["columns"][0]["unit"] = json!("us")),
            |e| matches!(e, Error::TimeUnit { unit, .. } if unit == "us"),
        ),
        (
            "unit number",
            Box::new(|v| v["columns"][0]["unit"] = json!(9)),
            |e| matches!(e, Error::TimeUnit { .. }),
        ),
        (
            "unit null",
            Box::new(|v| v["columns"][0]["unit"] = Value::Null),
            |e| matches!(e, Error::TimeUnit { .. }),
        ),
        (
            "zone number",
            Box::new(|v| v["columns"][0]["timezone"] = json!(5)),
            |e| matches!(e, Error::BadTimezone { .. }),
        ),
        (
            "zone empty",
            Box::new(|v| v["columns"][0]["timezone"] = json!("")),
            |e| matches!(e, Error::BadTimezone { .. }),
        ),
        (
            "zone huge",
            Box::new(|v| v["columns"][0]["timezone"] = json!("x".repeat(5000))),
            |e| matches!(e, Error::BadTimezone { .. }),
        ),
        (
            "mean string",
            Box::new(|v| v["columns"][1]["stats"]["mean"] = json!("3.0")),
            |e| matches!(e, Error::MetadataJson(m) if m.contains("mean")),
        ),
        (
            "std negative",
            Box::new(|v| v["columns"][1]["stats"]["std"] = json!(-1.0)),
            |e| matches!(e, Error::MetadataJson(m) if m.contains("std")),
        ),
        (
            "std array",
            Box::new(|v| v["columns"][1]["stats"]["std"] = json!([1.0])),
            |e| matches!(e, Error::MetadataJson(m) if m.contains("std")),
        ),
    ];
    for (name, lie, check) in bad {
        let x = rewrite_metadata(&b, |v| lie(v));
        match SpillFile::from_bytes(x) {
            Ok(_) => panic!("{name}: opened"),
            Err(e) => assert!(check(&e), "{name}: unexpected error {e:?}"),
        }
    }
    // JSON has no infinite numbers: an overflowing literal is not JSON.
    let x = crate::common::replace_metadata_bytes(
        &b,
        String::from_utf8(b[metadata_offset(&b)..b.len() - 64].to_vec())
            .expect("utf8")
            .replace("\"mean\":3.0", "\"mean\":1e999")
            .as_bytes(),
    );
    assert!(matches!(
        SpillFile::from_bytes(x),
        Err(Error::MetadataJson(_))
    ));
}
