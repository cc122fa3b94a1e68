//! Corrupt, truncated and hostile files: each is a clear, typed error in Rust and a SpillError in
//! the numpy reader; never a panic, never an out-of-bounds read.

use serde_json::{json, Value};
use spill::{Error, Role, SpillFile, WriteOptions};

use crate::common::{
    python, replace_metadata_bytes, rewrite_metadata, rewrite_trailer, run_python, Case, Data,
};

/// A small valid file: 3 columns, 2 symbols, 4 KiB chunks so columns span several chunks.
fn base() -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 3000usize;
    let case = Case {
        nrows: n,
        columns: vec![
            ("ts".into(), Role::Time, Data::I64((0..n as i64).collect())),
            (
                "f0".into(),
                Role::Feature,
                Data::F32((0..n).map(|i| i as f32 * 0.5).collect()),
            ),
            (
                "f1".into(),
                Role::Feature,
                Data::F32((0..n).map(|i| -(i as f32)).collect()),
            ),
        ],
        symbols: vec![
            spill::Symbol {
                name: "A".into(),
                start: 0,
                stop: 1000,
            },
            spill::Symbol {
                name: "B".into(),
                start: 1000,
                stop: n as u64,
            },
        ],
        build: Default::default(),
    };
    let mut w = spill::SpillWriter::create(
        dir.path().join("base.spill"),
        case.layout().with_chunk_bytes(4096).expect("chunk"),
        WriteOptions::default(),
    )
    .expect("create");
    for (i, (_, _, d)) in case.columns.iter().enumerate() {
        d.write(&mut w, i, 0, n).expect("write");
    }
    let path = w.finish(Default::default()).expect("commit").path;
    let bytes = std::fs::read(path).expect("read");
    (dir, bytes)
}

type Check = fn(&Error) -> bool;
type Lie = Box<dyn Fn(&mut Value)>;

/// Every structural corruption, with the error it must produce.
fn corruptions(b: &[u8]) -> Vec<(String, Vec<u8>, Check)> {
    let f = SpillFile::from_bytes(b).expect("base is valid");
    let meta_off = f.metadata().columns.last().map_or(4096, |c| {
        spill::ALIGN * (c.offset + c.length).div_ceil(spill::ALIGN)
    }) as usize;
    let col1 = f.columns()[1].offset as usize;
    let n = b.len();
    let mut out: Vec<(String, Vec<u8>, Check)> = Vec::new();

    // Truncation at every structural boundary and in the middle of data and metadata.
    let mut cuts = vec![
        0,
        1,
        8,
        16,
        4095,
        4096,
        4096 + 63,
        col1,
        col1 + 1234,
        meta_off,
        meta_off + 10,
        n - 64,
        n - 63,
        n - 1,
    ];
    cuts.sort_unstable();
    cuts.dedup();
    for cut in cuts {
        out.push((format!("truncated at {cut}"), b[..cut].to_vec(), |e| {
            matches!(
                e,
                Error::TooSmall { .. }
                    | Error::NotCommitted
                    | Error::BadMagic
                    | Error::TrailerChecksum { .. }
            )
        }));
    }
    let mut appended = b.to_vec();
    appended.extend_from_slice(&[0u8; 100]);
    out.push(("bytes appended".into(), appended, |e| {
        matches!(e, Error::NotCommitted)
    }));
    let moved = rewrite_trailer(b, |t| t.file_len += 1);
    out.push(("file_len off by one".into(), moved, |e| {
        matches!(e, Error::FileLength { .. })
    }));

    // Header.
    let mut x = b.to_vec();
    x[0] ^= 1;
    out.push(("header magic".into(), x, |e| matches!(e, Error::BadMagic)));
    let mut x = b.to_vec();
    x[8] = 2;
    out.push(("major 2 in header".into(), x, |e| {
        matches!(e, Error::UnsupportedVersion { major: 2, .. })
    }));
    let mut x = b.to_vec();
    x[12] = 0;
    x[13] = 0x20; // alignment 8192
    out.push(("header alignment".into(), x, |e| {
        matches!(e, Error::BadAlignmentField { align: 8192 })
    }));
    let mut x = b.to_vec();
    x[10] = 3; // header minor 3, trailer minor 0
    out.push(("header/trailer minor differ".into(), x, |e| {
        matches!(e, Error::VersionMismatch { .. })
    }));

    // Trailer.
    for byte in [0usize, 9, 20, 30, 33, 37, 41, 49, 60] {
        let mut x = b.to_vec();
        x[n - 64 + byte] ^= 0x04;
        out.push((format!("trailer byte {byte} flipped"), x, |e| {
            matches!(e, Error::TrailerChecksum { .. } | Error::NotCommitted)
        }));
    }
    let mut x = b.to_vec();
    x[n - 64 + 45] = 1;
    let crc = crc32fast::hash(&x[n - 64..n - 16]);
    x[n - 16..n - 12].copy_from_slice(&crc.to_le_bytes());
    out.push(("reserved trailer byte".into(), x, |e| {
        matches!(e, Error::TrailerReserved)
    }));
    out.push((
        "required feature bit".into(),
        rewrite_trailer(b, |t| t.required_features = 1 << 5),
        |e| matches!(e, Error::UnsupportedFeatures { bits: 32 }),
    ));
    out.push((
        "checksum algorithm 7".into(),
        rewrite_trailer(b, |t| t.checksum_algorithm = 7),
        |e| matches!(e, Error::UnsupportedChecksum { id: 7 }),
    ));
    out.push((
        "metadata length over cap".into(),
        rewrite_trailer(b, |t| t.metadata_len = 1 << 40),
        |e| matches!(e, Error::OverCap { .. }),
    ));
    out.push((
        "metadata offset past end".into(),
        rewrite_trailer(b, |t| t.metadata_offset = u64::MAX - 10),
        |e| matches!(e, Error::MetadataBounds { .. }),
    ));
    out.push((
        "metadata offset inside header".into(),
        rewrite_trailer(b, |t| t.metadata_offset = 100),
        |e| matches!(e, Error::MetadataBounds { .. }),
    ));

    // A flipped bit in the metadata: the checksum catches it.
    let mut x = b.to_vec();
    x[meta_off + 5] ^= 0x01;
    out.push(("metadata bit flip".into(), x, |e| {
        matches!(e, Error::MetadataChecksum { .. })
    }));

    // Metadata that checksums but lies: every semantic rule.
    let meta_cases: Vec<(&str, Lie, Check)> = vec![
        ("not JSON", Box::new(|_| {}), |e| {
            matches!(e, Error::MetadataJson(_))
        }),
        (
            "offset past the end",
            Box::new(|v| v["columns"][1]["offset"] = json!(1u64 << 40)),
            |e| matches!(e, Error::ColumnBounds { .. }),
        ),
        (
            "offset u64 max",
            Box::new(|v| v["columns"][1]["offset"] = json!(u64::MAX - 4095)),
            |e| matches!(e, Error::ColumnBounds { .. }),
        ),
        (
            "misaligned",
            Box::new(|v| v["columns"][1]["offset"] = json!(4096 * 5 + 8)),
            |e| matches!(e, Error::Misaligned { .. }),
        ),
        (
            "overlapping columns",
            Box::new(|v| {
                let o = v["columns"][0]["offset"].clone();
                v["columns"][1]["offset"] = o;
            }),
            |e| matches!(e, Error::Overlap { .. }),
        ),
        (
            "absurd length",
            Box::new(|v| v["columns"][0]["length"] = json!(1u64 << 62)),
            |e| matches!(e, Error::ColumnLength { .. }),
        ),
        (
            "absurd nrows",
            Box::new(|v| v["nrows"] = json!(1u64 << 60)),
            |e| matches!(e, Error::OverCap { .. }),
        ),
        (
            "nrows disagrees with lengths",
            Box::new(|v| v["nrows"] = json!(2999)),
            |e| matches!(e, Error::ColumnLength { .. }),
        ),
        (
            "chunk size not a power of two",
            Box::new(|v| v["chunk_bytes"] = json!(5000)),
            |e| matches!(e, Error::BadChunkBytes(5000)),
        ),
        (
            "too few checksums",
            Box::new(|v| {
                v["columns"][0]["checksums"].as_array_mut().map(|a| a.pop());
            }),
            |e| matches!(e, Error::ChunkCount { .. }),
        ),
        (
            "unknown dtype",
            Box::new(|v| v["columns"][0]["dtype"] = json!("f16")),
            |e| matches!(e, Error::UnknownDType { .. }),
        ),
        (
            "duplicate column",
            Box::new(|v| v["columns"][2]["name"] = json!("f0")),
            |e| matches!(e, Error::DuplicateColumn { .. }),
        ),
        (
            "empty column name",
            Box::new(|v| v["columns"][2]["name"] = json!("")),
            |e| matches!(e, Error::BadName { .. }),
        ),
        (
            "huge column name",
            Box::new(|v| v["columns"][2]["name"] = json!("x".repeat(5000))),
            |e| matches!(e, Error::BadName { .. }),
        ),
        (
            "ranges with a gap",
            Box::new(|v| v["symbols"][1]["start"] = json!(1001)),
            |e| matches!(e, Error::RangesDoNotTile { .. }),
        ),
        (
            "ranges past nrows",
            Box::new(|v| v["symbols"][1]["stop"] = json!(3001)),
            |e| matches!(e, Error::RangesDoNotTile { .. }),
        ),
        (
            "ranges short",
            Box::new(|v| v["symbols"][1]["stop"] = json!(2999)),
            |e| matches!(e, Error::RangesShort { .. }),
        ),
        (
            "range backwards",
            Box::new(|v| {
                v["symbols"][0]["stop"] = json!(0);
                v["symbols"][1]["start"] = json!(0);
                v["symbols"][0]["start"] = json!(0);
                v["symbols"][1]["stop"] = json!(3000);
                v["symbols"][0]["stop"] = json!(0);
                v["symbols"][1]["start"] = json!(5);
            }),
            |e| matches!(e, Error::RangesDoNotTile { .. }),
        ),
        (
            "duplicate symbol",
            Box::new(|v| v["symbols"][1]["name"] = json!("A")),
            |e| matches!(e, Error::DuplicateSymbol { .. }),
        ),
        (
            "negative offset",
            Box::new(|v| v["columns"][0]["offset"] = json!(-4096)),
            |e| matches!(e, Error::MetadataJson(_)),
        ),
        (
            "string nrows",
            Box::new(|v| v["nrows"] = json!("3000")),
            |e| matches!(e, Error::MetadataJson(_)),
        ),
        (
            "missing columns",
            Box::new(|v| {
                v.as_object_mut().map(|o| o.remove("columns"));
            }),
            |e| matches!(e, Error::MetadataJson(_)),
        ),
        (
            "stats of the wrong type",
            Box::new(|v| v["columns"][0]["stats"]["min"] = json!("low")),
            |e| matches!(e, Error::MetadataJson(_)),
        ),
        (
            "float stats without nan_count",
            Box::new(|v| {
                v["columns"][1]["stats"]
                    .as_object_mut()
                    .map(|o| o.remove("nan_count"));
            }),
            |e| matches!(e, Error::MetadataJson(_)),
        ),
        (
            "checksum over u32",
            Box::new(|v| v["columns"][0]["checksums"][0] = json!(1u64 << 33)),
            |e| matches!(e, Error::MetadataJson(_)),
        ),
        (
            "build not an object",
            Box::new(|v| v["build"] = json!([1])),
            |e| matches!(e, Error::MetadataJson(_)),
        ),
    ];
    for (name, f, check) in meta_cases {
        let x = if name == "not JSON" {
            replace_metadata_bytes(b, b"{\"nrows\": 3000, oops")
        } else {
            rewrite_metadata(b, |v| f(v))
        };
        out.push((format!("metadata: {name}"), x, check));
    }
    out.push((
        "metadata: duplicate key".into(),
        {
            let f = SpillFile::from_bytes(b).expect("valid");
            let m = f.metadata();
            let json = format!(
                "{{\"nrows\":{},\"nrows\":{},{}",
                m.nrows,
                m.nrows,
                std::str::from_utf8(&b[meta_off + 1..n - 64])
                    .expect("utf8")
                    .split_once(',')
                    .map_or("", |x| x.1)
            );
            replace_metadata_bytes(b, json.as_bytes())
        },
        |e| matches!(e, Error::MetadataJson(m) if m.contains("duplicate")),
    ));
    out.push((
        "metadata: NaN literal".into(),
        replace_metadata_bytes(b, b"{\"nrows\": NaN}"),
        |e| matches!(e, Error::MetadataJson(_)),
    ));
    out.push((
        "metadata: invalid UTF-8".into(),
        replace_metadata_bytes(b, b"{\"nrows\": 0, \"x\": \"\xff\"}"),
        |e| matches!(e, Error::MetadataJson(_)),
    ));
    out.push((
        "metadata: lone surrogate".into(),
        replace_metadata_bytes(
            b,
            br#"{"nrows":0,"chunk_bytes":4096,"columns":[],"symbols":[],"build":{"k":"\ud800"}}"#,
        ),
        |e| matches!(e, Error::MetadataJson(_)),
    ));
    out.push(("metadata: 200 levels deep".into(), {
        let deep = format!(r#"{{"nrows":0,"chunk_bytes":4096,"columns":[],"symbols":[],"build":{{"k":{}{}}}}}"#, "[".repeat(200), "]".repeat(200));
        replace_metadata_bytes(b, deep.as_bytes())
    }, |e| matches!(e, Error::MetadataJson(_))));
    out
}

#[test]
fn every_corruption_is_a_typed_error_in_rust() {
    let (_dir, b) = base();
    for (name, bytes, check) in corruptions(&b) {
        match SpillFile::from_bytes(bytes) {
            Ok(_) => panic!("{name}: opened a corrupt file"),
            Err(e) => assert!(check(&e), "{name}: unexpected error {e:?}"),
        }
    }
}

#[test]
fn truncated_files_on_disk_fail_to_open_through_mmap() {
    let (dir, b) = base();
    for cut in [0, 100, 4096, b.len() / 2, b.len() - 1] {
        let p = dir.path().join(format!("cut{cut}.spill"));
        std::fs::write(&p, &b[..cut]).expect("write");
        let e = spill::open(&p).expect_err("truncated file must not open");
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn newer_minor_version_still_opens() {
    let (_dir, b) = base();
    let mut x = rewrite_trailer(&b, |t| t.minor = 7);
    x[10] = 7;
    let f = SpillFile::from_bytes(x).expect("a newer minor is readable");
    assert_eq!(f.version(), (1, 7));
}

#[test]
fn a_flipped_data_bit_opens_but_fails_verify_naming_the_rows() {
    let (_dir, b) = base();
    let f = SpillFile::from_bytes(&b[..]).expect("valid");
    let c = &f.columns()[2];
    let mut x = b.clone();
    x[c.offset as usize + 2500 * 4 + 1] ^= 0x80; // row 2500 of f1; chunk 2 covers rows 2048..3000
    let g = SpillFile::from_bytes(x).expect("structure is intact");
    let r = g.verify();
    assert_eq!(r.damaged.len(), 1);
    assert_eq!(
        (r.damaged[0].column.as_str(), r.damaged[0].rows.clone()),
        ("f1", 2048..3000)
    );
}

#[test]
fn every_corruption_is_a_spill_error_in_python() {
    let Some(py) = python() else { return };
    let (dir, b) = base();
    let mut paths = Vec::new();
    let mut cases = corruptions(&b);
    // Plus data damage, which only verify() can see.
    let f = SpillFile::from_bytes(&b[..]).expect("valid");
    let mut x = b.clone();
    x[f.columns()[0].offset as usize + 17] ^= 0x02;
    cases.push(("data bit flip".into(), x, |_| true));
    for (i, (_, bytes, _)) in cases.iter().enumerate() {
        let p = dir.path().join(format!("c{i}.spill"));
        std::fs::write(&p, bytes).expect("write");
        paths.push(p);
    }
    let script = r#"
import sys, spillfile
for p in sys.argv[1:]:
    try:
        f = spillfile.open(p)
        f.verify()
        print("OPENED")
    except spillfile.SpillError as e:
        print("SpillError", str(e).replace("\n", " ")[:200])
    except BaseException as e:
        print("OTHER", type(e).__name__, e)
"#;
    let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
    let out = run_python(&py, script, &refs);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), cases.len());
    for ((name, _, _), line) in cases.iter().zip(lines) {
        assert!(line.starts_with("SpillError"), "{name}: python said {line}");
    }
}
