//! `--on-error skip` bounded (issue 27): every symbol failing mid-decode in one attempt is excluded
//! together, attempts are capped (`--max-attempts`) and reported; a shard that finds a failing
//! symbol after the plan is fixed exits 4 naming it, and the driver's second round (count
//! `--exclude`, plan-cs, every shard) equals the single build, with no column it lacks.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

/// Overwrites the bytes of column `col`'s first chunk in `file` (past its first 8): the footer
/// and time column stay readable, so planning passes and decoding fails.
fn break_column(file: &Path, col: &str) {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let r = SerializedFileReader::new(std::fs::File::open(file).expect("open")).expect("footer");
    let rg = r.metadata().row_group(0);
    let c = (0..rg.num_columns())
        .map(|i| rg.column(i))
        .find(|c| c.column_path().string() == col)
        .expect("column");
    let (start, len) = c.byte_range();
    let mut bytes = std::fs::read(file).expect("read");
    for b in &mut bytes[start as usize + 8..(start + len) as usize] {
        *b = 0xA5;
    }
    std::fs::write(file, bytes).expect("write");
}

/// 12 generated symbols, plus `S0005B`: `S0005`'s rows with a column of its own, `zz`, which
/// is broken (so a build that counts it in the union while dropping its rows has an all-NaN
/// `zz`); and, when `two`, `S0002`'s `f001` broken too.
fn universe(d: &Path, two: bool) -> PathBuf {
    let u = d.join(if two { "u2" } else { "u1" });
    gen(
        &u,
        &[
            "--symbols",
            "12",
            "--rows",
            "1500",
            "--features",
            "3",
            "--ragged",
            "0.5",
        ],
    );
    let batch = read_parquet(&u.join("S0005.parquet"));
    let n = batch.num_rows();
    let schema = batch.schema();
    let mut columns: Vec<(&str, arrow_array::ArrayRef)> = schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .zip(batch.columns().iter().cloned())
        .collect();
    columns.push(("zz", f64s((0..n).map(|i| i as f64).collect())));
    let extra = u.join("S0005B.parquet");
    write_parquet(&extra, columns, true);
    break_column(&extra, "zz");
    if two {
        break_column(&u.join("S0002.parquet"), "f001");
    }
    pin_mtimes(&u);
    u
}

/// The universe without the broken symbols.
fn without(d: &Path, u: &Path, drop: &[&str]) -> PathBuf {
    let g = d.join("good");
    std::fs::create_dir_all(&g).expect("mkdir");
    for e in std::fs::read_dir(u).expect("list") {
        let p = e.expect("entry").path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !drop.iter().any(|s| name == format!("{s}.parquet")) {
            std::fs::copy(&p, g.join(name)).expect("copy");
        }
    }
    pin_mtimes(&g);
    g
}

fn summary(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).expect("summary")).expect("json")
}

/// `count` names the target itself (`build` passes it).
const TARGET: [&str; 2] = ["--target", "target"];

#[test]
fn every_symbol_failing_in_an_attempt_is_excluded_together_and_deterministically() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universe(d.path(), true);
    let reference = d.path().join("ref.spill");
    let good = without(d.path(), &u, &["S0002", "S0005B"]);
    ok(&build(&good, &reference, &[]));
    let want = std::fs::read(&reference).expect("read");
    let shapes: [&[&str]; 3] = [
        &[],
        &[
            "--threads",
            "1",
            "--batch-rows",
            "7",
            "--channel-capacity",
            "1",
        ],
        &["--threads", "3", "--batch-rows", "100"],
    ];
    for (i, shape) in shapes.iter().enumerate() {
        let out = d.path().join(format!("o{i}.spill"));
        let js = d.path().join(format!("o{i}.json"));
        let mut args = vec!["--on-error", "skip", "--summary", s(&js)];
        args.extend_from_slice(shape);
        ok(&build(&u, &out, &args));
        assert!(
            std::fs::read(&out).expect("read") == want,
            "shape {shape:?}: bytes differ"
        );
        let j = summary(&js);
        assert_eq!(
            j["attempts"], 2,
            "both excluded in one attempt: {}",
            j["attempts"]
        );
        let skipped: Vec<(String, String)> = j["symbols_skipped"]
            .as_array()
            .expect("list")
            .iter()
            .map(|k| {
                (
                    k["symbol"].as_str().unwrap_or_default().into(),
                    k["reason"].to_string(),
                )
            })
            .collect();
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert_eq!(skipped[0].0, "S0002");
        assert!(skipped[0].1.contains("S0002.parquet") && skipped[0].1.contains("f001"));
        assert_eq!(skipped[1].0, "S0005B");
        assert!(skipped[1].1.contains("S0005B.parquet") && skipped[1].1.contains("zz"));
    }
}

#[test]
fn the_attempt_cap_fails_naming_the_symbols() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universe(d.path(), true);
    let out = d.path().join("o.spill");
    let o = build(&u, &out, &["--on-error", "skip", "--max-attempts", "1"]);
    exits_with(
        &o,
        1,
        &[
            "attempt 1, the last --max-attempts allows",
            "S0002",
            "S0005B",
            "zz",
        ],
    );
    assert!(!out.exists(), "nothing written");
    usage_error(
        &build(&u, &out, &["--on-error", "skip", "--max-attempts", "0"]),
        &["--max-attempts must be at least 1"],
    );
}

fn count(u: &Path, out: &Path, shard: &str, exclude: Option<&str>) -> Value {
    let mut args = vec![
        "count",
        "--input",
        s(u),
        "--shard",
        shard,
        "--output",
        s(out),
        "--on-error",
        "skip",
        "--json",
    ];
    args.extend_from_slice(&TARGET);
    args.extend_from_slice(&["--drop-null-target", "--max-cs-samples", "4", "--seed", "3"]);
    if let Some(x) = exclude {
        args.extend_from_slice(&["--exclude", x]);
    }
    let o = run(&args);
    ok(&o);
    serde_json::from_str(&stdout(&o)).expect("count json")
}

fn plan_cs(counts: &[PathBuf], plan: &Path) -> Value {
    let mut args = vec![
        "plan-cs",
        "--min-cs",
        "5",
        "--max-cs-samples",
        "4",
        "--seed",
        "3",
        "--json",
    ];
    args.extend(counts.iter().map(|p| s(p)));
    args.extend(["--output", s(plan)]);
    let o = run(&args);
    ok(&o);
    serde_json::from_str(&stdout(&o)).expect("plan json")
}

/// The filters (`build` passes `--target target` itself).
const FILTERS: [&str; 7] = [
    "--drop-null-target",
    "--min-cs",
    "5",
    "--max-cs-samples",
    "4",
    "--seed",
    "3",
];

#[test]
fn three_shards_with_a_bad_symbol_equal_the_single_build() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universe(d.path(), false);
    let single = d.path().join("single.spill");
    ok(&build(
        &u,
        &single,
        &[&FILTERS[..], &["--on-error", "skip"]].concat(),
    ));
    let n = 3;
    let counts: Vec<PathBuf> = (0..n).map(|i| d.path().join(format!("c{i}"))).collect();
    for (i, c) in counts.iter().enumerate() {
        count(&u, c, &format!("{i}/{n}"), None);
    }
    let plan = d.path().join("cs.plan");
    plan_cs(&counts, &plan);
    let shard = |i: usize| d.path().join(format!("s{i}.spill"));
    let build_shard = |i: usize| shard_build(&u, &plan, &shard(i), i, n);
    // Round 1: the shard holding S0005B exits 4, naming it as JSON; it writes nothing.
    let mut failed = Vec::new();
    for i in 0..n {
        let o = build_shard(i);
        if o.status.code() == Some(4) {
            let err = stderr(&o);
            let at = err.find(spillway::EXCLUDE_MARKER).expect("marker")
                + spillway::EXCLUDE_MARKER.len();
            let line = err[at..].lines().next().unwrap_or_default();
            let j: Value = serde_json::from_str(line).expect("the symbols as JSON");
            let names: Vec<&String> = j.as_object().expect("object").keys().collect();
            assert_eq!(names, ["S0005B"], "{err}");
            assert!(j["S0005B"].as_str().unwrap_or_default().contains("zz"));
            assert!(!shard(i).exists());
            failed.push(i);
        } else {
            ok(&o);
        }
    }
    assert_eq!(failed.len(), 1, "one shard holds the bad symbol");
    // Round 2: the failing shard counted again with the exclusion, the plan made again (it
    // records the exclusion), every shard built again.
    let c = count(
        &u,
        &counts[failed[0]],
        &format!("{}/{n}", failed[0]),
        Some("S0005B"),
    );
    assert_eq!(c["skipped"][0]["symbol"], "S0005B");
    let p = plan_cs(&counts, &plan);
    assert_eq!(p["skipped"][0]["symbol"], "S0005B", "{p}");
    let shards: Vec<PathBuf> = (0..n)
        .map(|i| {
            ok(&build_shard(i));
            shard(i)
        })
        .collect();
    same_rows(&single, &shards);
}

/// Shard `i` of `n` of `u` built with the cross-section plan `plan`, the filters and
/// `--on-error skip`.
fn shard_build(u: &Path, plan: &Path, out: &Path, i: usize, n: usize) -> std::process::Output {
    let scope = format!("{i}/{n}");
    let mut args = vec![
        "--shard",
        &scope,
        "--cs-plan",
        s(plan),
        "--on-error",
        "skip",
    ];
    args.extend_from_slice(&FILTERS);
    build(u, out, &args)
}

/// Every column of the shards, concatenated, equals the single file's (names and bytes);
/// symbols compared by name; and the broken symbol's own column `zz` is in neither.
fn same_rows(single: &Path, shards: &[PathBuf]) {
    crate::sharded::assert_columns_equal(single, shards);
    let a = spill::open(single).expect("single opens");
    assert!(!a.columns().iter().any(|c| c.name == "zz"));
}

/// A symbol skipped while counting (its times overflow int64 ns: found by the time scan, which
/// the shards' shared choices do not run) is recorded in the count and plan files, and every
/// shard leaves it out: no column of it in any shard.
#[test]
fn count_time_skips_are_recorded_in_the_count_and_plan_files() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universe(d.path(), false);
    std::fs::remove_file(u.join("S0005B.parquet")).expect("rm");
    let secs: arrow_array::ArrayRef = std::sync::Arc::new(
        arrow_array::TimestampSecondArray::from(vec![i64::MAX / 4; 4]).with_timezone("UTC"),
    );
    write_parquet(
        &u.join("S0007B.parquet"),
        vec![
            ("ts", secs),
            ("target", f64s(vec![1.0; 4])),
            ("yy", f64s(vec![2.0; 4])),
        ],
        false,
    );
    pin_mtimes(&u);
    let single = d.path().join("single.spill");
    ok(&build(
        &u,
        &single,
        &[&FILTERS[..], &["--on-error", "skip"]].concat(),
    ));
    let n = 2;
    let counts: Vec<PathBuf> = (0..n).map(|i| d.path().join(format!("c{i}"))).collect();
    let mut recorded = 0;
    for (i, c) in counts.iter().enumerate() {
        let j = count(&u, c, &format!("{i}/{n}"), None);
        recorded += j["skipped"].as_array().map_or(0, |a| a.len());
    }
    assert_eq!(recorded, 1, "one count file records S0007B");
    let plan = d.path().join("cs.plan");
    let p = plan_cs(&counts, &plan);
    assert_eq!(p["skipped"][0]["symbol"], "S0007B", "{p}");
    assert!(p["skipped"][0]["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("int64"));
    let shards: Vec<PathBuf> = (0..n)
        .map(|i| {
            let out = d.path().join(format!("s{i}.spill"));
            ok(&shard_build(&u, &plan, &out, i, n));
            out
        })
        .collect();
    same_rows(&single, &shards);
}
