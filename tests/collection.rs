//! Collections (issue 25 item 6): `spillway manifest --collection` over independent spill files
//! with one schema, built from different universes; the union symbol table; files whose columns
//! differ refused naming the file and the column; `verify` of a collection, and of a file changed
//! since.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

/// Six symbols, S0000..S0005, three features; `parts` are the subsets copied into universes of
/// their own (`d/u<i>`).
fn universes(d: &Path, parts: &[&[usize]]) -> Vec<PathBuf> {
    let all = d.join("all");
    gen(
        &all,
        &["--symbols", "6", "--rows", "300", "--features", "3"],
    );
    parts
        .iter()
        .enumerate()
        .map(|(i, symbols)| {
            let u = d.join(format!("u{i}"));
            std::fs::create_dir_all(&u).expect("mkdir");
            for s in *symbols {
                let name = format!("S{s:04}.parquet");
                std::fs::copy(all.join(&name), u.join(&name)).expect("copy");
            }
            u
        })
        .collect()
}

/// Builds `u` into `out` (its directory made), asserting success.
fn built(u: &Path, out: PathBuf) -> PathBuf {
    std::fs::create_dir_all(out.parent().expect("a parent")).expect("mkdir");
    ok(&build(u, &out, &[]));
    out
}

/// `spillway manifest --collection FILES --output OUT`.
fn collect(files: &[&Path], out: &Path) -> std::process::Output {
    let mut args = vec!["manifest", "--collection"];
    args.extend(files.iter().map(|p| s(p)));
    args.extend(["--output", s(out)]);
    run(&args)
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("manifest")).expect("json")
}

fn names(f: &spill::SpillFile<impl spill::Backing>) -> Vec<String> {
    f.symbols().iter().map(|s| s.name.clone()).collect()
}

#[test]
fn files_of_different_universes_make_a_collection_that_verifies() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universes(d.path(), &[&[2, 3, 4, 5], &[0, 1, 2, 3]]);
    let out = d.path().join("out");
    let a = built(&u[0], out.join("a.spill"));
    let b = built(&u[1], out.join("day2/b.spill"));
    let m = out.join("dataset.json");
    let o = collect(&[&a, &b], &m);
    ok(&o);
    assert!(
        stderr(&o).contains("a collection of 2 files"),
        "{}",
        stderr(&o)
    );
    let j = json(&m);
    assert_eq!(j["format"], "spillway-dataset");
    assert_eq!(j["version"], serde_json::json!([2, 0]));
    assert_eq!(j["kind"], "collection");
    assert_eq!(j["order"], "symbol");
    assert_eq!(j["generation"], 1);
    // The union: names in order of first appearance, the files in the order given.
    let union: Vec<&str> = j["symbols"]
        .as_array()
        .expect("symbols")
        .iter()
        .map(|v| v.as_str().expect("a name"))
        .collect();
    assert_eq!(
        union,
        ["S0002", "S0003", "S0004", "S0005", "S0000", "S0001"]
    );
    let (fa, fb) = (spill::open(&a).expect("a"), spill::open(&b).expect("b"));
    assert_eq!(names(&fa), ["S0002", "S0003", "S0004", "S0005"]);
    assert_eq!(names(&fb), ["S0000", "S0001", "S0002", "S0003"]);
    let files = j["files"].as_array().expect("files");
    let paths: Vec<&str> = files
        .iter()
        .map(|f| f["path"].as_str().expect("path"))
        .collect();
    assert_eq!(
        paths,
        ["a.spill", "day2/b.spill"],
        "relative to the manifest"
    );
    for (f, spill) in files.iter().zip([&fa, &fb]) {
        assert_eq!(f["rows"], spill.nrows());
        assert_eq!(f["bytes"], spill.file_len());
        assert!(f["checksum"].as_str().expect("crc").starts_with("crc32:"));
        assert!(
            f.get("symbols").is_none(),
            "the reader maps codes by name: {f}"
        );
    }
    assert_eq!(j["nrows"], fa.nrows() + fb.nrows());
    assert_eq!(
        j["schema"].as_array().expect("schema").len(),
        fa.columns().len()
    );
    let v = run(&["verify", s(&m)]);
    ok(&v);
    assert!(
        stdout(&v).contains("2 files of a collection") && stdout(&v).contains("chunks verified"),
        "{}",
        stdout(&v)
    );
    // The same collection again changes nothing; another order is another dataset.
    let written = std::fs::read(&m).expect("manifest");
    ok(&collect(&[&a, &b], &m));
    assert_eq!(std::fs::read(&m).expect("manifest"), written);
    usage_error(&collect(&[&b, &a], &m), &["dataset.json", "--replace"]);
    // Without --collection, the files are refused as today: they are no shards.
    let mut args = vec!["manifest", s(&a), s(&b), "--output"];
    let sharded = out.join("sharded.json");
    args.push(s(&sharded));
    fails_with(
        &run(&args),
        &["a.spill", "it is not a shard (built without --shard)"],
    );
    assert!(!sharded.exists());
    // With a plan, --collection is a usage error.
    usage_error(
        &run(&[
            "manifest",
            "--collection",
            s(&a),
            "--cs-plan",
            s(&b),
            "--output",
            s(&sharded),
        ]),
        &["--collection", "--cs-plan"],
    );
    // A file listed twice.
    fails_with(
        &collect(&[&a, &b, &a], &sharded),
        &["a.spill", "listed twice"],
    );
    assert!(!sharded.exists());
}

#[test]
fn a_file_with_an_extra_column_or_another_order_is_refused_naming_it() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universes(d.path(), &[&[0, 1], &[2, 3]]);
    let four = d.path().join("four");
    gen(
        &four,
        &["--symbols", "2", "--rows", "300", "--features", "4"],
    );
    let out = d.path().join("out");
    let a = built(&u[0], out.join("a.spill"));
    let b = built(&u[1], out.join("b.spill"));
    let x = built(&four, out.join("x.spill"));
    let m = out.join("dataset.json");
    // t: the same columns, in another row order.
    let t = out.join("t.spill");
    ok(&build(&u[1], &t, &["--order", "time"]));
    let before = entries(&out);
    fails_with(
        &collect(&[&a, &x, &b], &m),
        &["x.spill", "extra column \"f003\"", "a.spill"],
    );
    // The first file sets the schema: there, the others lack a column.
    fails_with(
        &collect(&[&x, &a], &m),
        &["a.spill", "lacks column \"f003\""],
    );
    fails_with(
        &collect(&[&a, &t], &m),
        &["t.spill", "its rows are time-major", "a.spill"],
    );
    assert_eq!(entries(&out), before, "no manifest, no temporary file");
}

#[test]
fn verify_refuses_a_file_changed_since() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universes(d.path(), &[&[0, 1, 2], &[1, 2, 3], &[4, 5]]);
    let out = d.path().join("out");
    let a = built(&u[0], out.join("a.spill"));
    let b = built(&u[1], out.join("b.spill"));
    let m = out.join("dataset.json");
    ok(&collect(&[&a, &b], &m));
    ok(&run(&["verify", s(&m)]));
    // b rebuilt from other files: same schema, another file.
    ok(&build(&u[2], &b, &[]));
    fails_with(
        &run(&["verify", s(&m)]),
        &["b.spill", "the file does not match the manifest"],
    );
    let j = run(&["verify", "--json", s(&m)]);
    assert_eq!(j.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&j.stdout).expect("one JSON object");
    assert_eq!(report["kind"], "collection");
    assert!(report["problems"][0]
        .as_str()
        .expect("a problem")
        .contains("b.spill"));
    // Rewritten, the collection verifies again; a flipped data byte is found by the chunk CRCs.
    ok(&run(&[
        "manifest",
        "--collection",
        s(&a),
        s(&b),
        "--output",
        s(&m),
        "--replace",
    ]));
    ok(&run(&["verify", s(&m)]));
    let at = spill::open(&a).expect("open").columns()[2].offset as usize;
    let mut bytes = std::fs::read(&a).expect("read");
    bytes[at] ^= 1;
    std::fs::write(&a, bytes).expect("write");
    fails_with(&run(&["verify", s(&m)]), &["a.spill", "damaged"]);
}
