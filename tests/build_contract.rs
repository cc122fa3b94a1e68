//! The `spillway build` contract on universes written by pyarrow, polars and DuckDB, checked
//! against an independent pyarrow/numpy implementation of it (tests/py/contract.py): layouts and
//! discovery, every time type, every numeric type and what is not numeric, codecs, encodings and
//! page versions, drifting and missing columns, targets, --features, --max-rows, --no-float32,
//! and determinism on files from other writers.

use std::path::Path;

use serde_json::Value;

use crate::common::*;

/// Makes universe `kind`, builds it with `opts`, and has the oracle compare every value.
fn check(py: &Path, dir: &Path, kind: &str, opts: &[&str]) {
    let u = dir.join(kind);
    if !u.exists() {
        crate::common::py(py, "contract.py", &["make", kind, s(&u)]);
    }
    let out = dir.join(format!("{kind}.spill"));
    let mut args = vec!["build", "--input", s(&u), "--output", s(&out), "--quiet"];
    args.extend_from_slice(opts);
    if !opts.contains(&"--target") {
        args.push("--no-target");
    }
    ok(&run(&args));
    let mut oracle = vec!["check", s(&u), s(&out)];
    oracle.extend_from_slice(opts);
    let said = crate::common::py(py, "contract.py", &oracle);
    assert!(said.starts_with("OK"), "{kind} {opts:?}: {said}");
}

#[test]
fn every_numeric_type_non_numeric_ignored_drift_and_an_empty_symbol() {
    let Some(py) = python() else { return };
    let d = tempfile::tempdir().expect("tempdir");
    check(&py, d.path(), "types", &["--target", "target"]);
    check(&py, d.path(), "types", &[]);
    check(
        &py,
        d.path(),
        "types",
        &["--target", "target", "--no-float32"],
    );
    check(
        &py,
        d.path(),
        "types",
        &["--target", "target", "--max-rows", "7"],
    );
    check(
        &py,
        d.path(),
        "types",
        &["--target", "target", "--features", "late,f64,i8,u8"],
    );
    // The empty symbol keeps its (empty) range; hidden and junk files were not read.
    let f = spill::open(d.path().join("types.spill")).expect("open");
    let names: Vec<&str> = f.symbols().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["AAA", "BRK.B", "ZZZ", "ÄPF"],
        "byte-wise order, file stems, junk ignored"
    );
    assert!(f.symbols()[2].is_empty());
}

#[test]
fn every_time_type_becomes_utc_nanoseconds() {
    let Some(py) = python() else { return };
    let d = tempfile::tempdir().expect("tempdir");
    check(&py, d.path(), "times", &["--target", "target"]);
    let f = spill::open(d.path().join("times.spill")).expect("open");
    let ts = f.column::<i64>("ts").expect("ts");
    // s, ms (New York zone), us, ns, INT96 all hold the same instants.
    let per = |name: &str| {
        let s = f.symbols().iter().find(|s| s.name == name).expect("symbol");
        &ts[s.start as usize..s.stop as usize]
    };
    for name in ["T_ms_ny", "T_us_utc", "T_ns", "T_int96"] {
        assert_eq!(per(name), per("T_s"), "{name}");
    }
    assert_eq!(per("T_s")[0], 1_600_000_000_000_000_000);
    assert_eq!(
        per("T_date32")[0] % 86_400_000_000_000,
        0,
        "date32 is midnight"
    );
    assert!(
        per("T_old")[1] < 0,
        "times before 1970 are negative, not wrapped"
    );
    // The files disagree on the zone: the first symbol's file decides, and a date has none
    // (T_date32 sorts first; T_ms_ny says America/New_York).
    assert_eq!(f.column_meta("ts").expect("ts").timezone, None);
}

#[test]
fn codecs_encodings_page_versions_and_checksummed_pages() {
    let Some(py) = python() else { return };
    let d = tempfile::tempdir().expect("tempdir");
    check(&py, d.path(), "codecs", &["--target", "target"]);
    // Format 1.1: the source's zone (timestamp[ns, UTC]) is kept with the time column.
    let f = spill::open(d.path().join("codecs.spill")).expect("open");
    let ts = f.column_meta("ts").expect("ts");
    assert_eq!(ts.timezone.as_deref(), Some("UTC"));
}

#[test]
fn duckdb_hive_layout_percent_decoded_with_several_files_per_symbol() {
    let Some(py) = python() else { return };
    let d = tempfile::tempdir().expect("tempdir");
    check(&py, d.path(), "hive_duckdb", &["--target", "target"]);
    let f = spill::open(d.path().join("hive_duckdb.spill")).expect("open");
    let names: Vec<&str> = f.symbols().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["A B", "MSFT", "x%y", "ÄPF"]);
    assert!(
        f.symbols().iter().all(|s| s.len() == 100),
        "two 50-row files per symbol"
    );
}

#[test]
fn polars_files_and_polars_hive_partitions() {
    let Some(py) = python() else { return };
    let d = tempfile::tempdir().expect("tempdir");
    check(&py, d.path(), "polars", &["--target", "target"]);
}

#[test]
fn time_column_named_timestamp_or_given() {
    let Some(py) = python() else { return };
    let d = tempfile::tempdir().expect("tempdir");
    check(&py, d.path(), "timestamp_name", &["--target", "target"]);
    check(
        &py,
        d.path(),
        "timestamp_name",
        &["--time-col", "timestamp"],
    );
    let f = spill::open(d.path().join("timestamp_name.spill")).expect("open");
    assert_eq!(
        f.columns()[0].name,
        "timestamp",
        "the output time column keeps its input name"
    );
    let u = d.path().join("timestamp_name");
    let o = run(&[
        "build",
        "--input",
        s(&u),
        "--output",
        s(&d.path().join("x.spill")),
        "--no-target",
        "--time-col",
        "when",
    ]);
    fails_with(&o, &["A.parquet", "no time column \"when\""]);
}

#[test]
fn a_target_missing_in_some_files_is_nan_there_and_in_all_files_skips_the_symbol() {
    let Some(py) = python() else { return };
    let d = tempfile::tempdir().expect("tempdir");
    let summary = d.path().join("s.json");
    check(
        &py,
        d.path(),
        "target_partial",
        &["--target", "target", "--summary", s(&summary)],
    );
    let j: Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("summary")).expect("json");
    let skipped = &j["symbols_skipped"];
    assert_eq!(skipped.as_array().map(Vec::len), Some(1));
    assert_eq!(skipped[0]["symbol"], "NOTARGET");
    assert!(skipped[0]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("no target column \"target\"")));
}

#[test]
fn a_type_conflict_fails_the_symbol_and_skipping_equals_a_build_without_it() {
    let Some(py) = python() else { return };
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("conflict");
    crate::common::py(&py, "contract.py", &["make", "conflict", s(&u)]);
    pin_mtimes(&u);
    let out = d.path().join("o.spill");
    let o = run(&build_args(&u, &out, &[]));
    fails_with(
        &o,
        &["B.parquet", "\"x\"", "Utf8", "cannot be used as a feature"],
    );
    ok(&run(&build_args(
        &u,
        &out,
        &["--on-error", "skip", "--quiet"],
    )));
    let without = d.path().join("without");
    std::fs::create_dir(&without).expect("mkdir");
    for f in ["A.parquet", "C.parquet"] {
        std::fs::copy(u.join(f), without.join(f)).expect("copy");
    }
    pin_mtimes(&without);
    let reference = d.path().join("ref.spill");
    ok(&build(&without, &reference, &[]));
    assert!(
        std::fs::read(&out).ok() == std::fs::read(&reference).ok(),
        "skip output differs from a build without B"
    );
    let f = spill::open(&out).expect("open");
    assert!(
        f.column_index("only_b").is_none(),
        "a skipped symbol contributes no features"
    );
}

#[test]
fn files_from_other_writers_build_identically_whatever_the_shape() {
    let Some(py) = python() else { return };
    let d = tempfile::tempdir().expect("tempdir");
    for kind in ["codecs", "hive_duckdb", "types"] {
        let u = d.path().join(kind);
        crate::common::py(&py, "contract.py", &["make", kind, s(&u)]);
        let reference = d.path().join(format!("{kind}-ref.spill"));
        ok(&build(&u, &reference, &[]));
        let want = std::fs::read(&reference).expect("read");
        for shape in [["1", "1", "1"], ["2", "3", "7"], ["8", "2", "1024"]] {
            let out = d.path().join("o.spill");
            let args = [
                "--threads",
                shape[0],
                "--channel-capacity",
                shape[1],
                "--batch-rows",
                shape[2],
            ];
            let mut all = vec![
                "build",
                "--input",
                s(&u),
                "--output",
                s(&out),
                "--target",
                "target",
                "--quiet",
            ];
            all.extend_from_slice(&args);
            ok(&run(&all));
            assert!(
                std::fs::read(&out).expect("read") == want,
                "{kind}: bytes differ with {args:?}"
            );
        }
    }
}

/// The fast decoder (flat numeric columns, plain or dictionary pages) and arrow-rs produce the
/// same bytes on every universe, with and without filters and --max-rows.
#[test]
fn fast_decoder_and_arrow_rs_agree_byte_for_byte() {
    let Some(py) = python() else { return };
    let d = tempfile::tempdir().expect("tempdir");
    let kinds = [
        "types",
        "times",
        "codecs",
        "hive_duckdb",
        "polars",
        "timestamp_name",
        "target_partial",
    ];
    for kind in kinds {
        let u = d.path().join(kind);
        crate::common::py(&py, "contract.py", &["make", kind, s(&u)]);
        for extra in [
            &[][..],
            &["--max-rows", "11", "--batch-rows", "5"][..],
            &["--drop-null-target", "--min-cs", "2"][..],
        ] {
            let build = |decoder: &str| {
                let out = d.path().join(format!("{kind}-{decoder}.spill"));
                let mut args = vec![
                    "build",
                    "--input",
                    s(&u),
                    "--output",
                    s(&out),
                    "--target",
                    "target",
                    "--quiet",
                ];
                args.extend_from_slice(&["--decoder", decoder]);
                args.extend_from_slice(extra);
                ok(&run(&args));
                std::fs::read(&out).expect("read")
            };
            assert!(
                build("auto") == build("arrow"),
                "{kind} {extra:?}: the decoders disagree"
            );
        }
    }
}
