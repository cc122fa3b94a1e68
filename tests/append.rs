//! `spillway append` (issue 26): a time-major dataset grows by the rows after its last
//! timestamp; the grown dataset equals the rebuild of the grown universe (seeded with the
//! dataset's symbol table), row for row; history that changed or was backfilled is refused,
//! naming the symbol and the first timestamp, unless `--rebuild`; what cannot grow is refused.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::Value;

use crate::common::*;

const MIN: i64 = 60_000_000_000;
const T0: i64 = 1_700_000_000_000_000_000;
const FILTERS: [&str; 7] = [
    "--drop-null-target",
    "--min-cs",
    "2",
    "--max-cs-samples",
    "3",
    "--seed",
    "5",
];

/// Rows of one symbol at minutes `minutes`: a target (NaN every 7th) and two features, a pure
/// function of the symbol, the minute and `salt` (another salt: other values).
fn rows(sym: &str, minutes: &[i64], salt: u64) -> Vec<(&'static str, arrow_array::ArrayRef)> {
    let h = |m: i64, c: u64| {
        let x = sym
            .bytes()
            .fold(m as u64 ^ c.wrapping_mul(31) ^ salt, |a, b| {
                a.wrapping_mul(0x100_0000_01b3) ^ u64::from(b)
            });
        (x % 1000) as f64 / 8.0
    };
    let target = minutes
        .iter()
        .map(|&m| if m % 7 == 3 { f64::NAN } else { h(m, 1) })
        .collect();
    vec![
        ("ts", ts_ns(minutes.iter().map(|m| T0 + m * MIN).collect())),
        ("target", f64s(target)),
        ("f0", f64s(minutes.iter().map(|&m| h(m, 2)).collect())),
        ("f1", f64s(minutes.iter().map(|&m| h(m, 3)).collect())),
    ]
}

/// A flat universe: `<SYM>.parquet` for each `(symbol, first minute, last minute)`.
fn flat(dir: &Path, symbols: &[(&str, i64, i64)]) {
    for &(sym, a, b) in symbols {
        let minutes: Vec<i64> = (a..=b).collect();
        write_parquet(
            &dir.join(format!("{sym}.parquet")),
            rows(sym, &minutes, 0),
            false,
        );
    }
}

/// The universe of `SYMBOLS` up to minute `last`.
const SYMBOLS: [(&str, i64); 4] = [("AA", 0), ("BB", 5), ("CC", 0), ("DD", 30)];

fn day(dir: &Path, last: i64) {
    let s: Vec<(&str, i64, i64)> = SYMBOLS.iter().map(|&(n, a)| (n, a, last)).collect();
    flat(dir, &s);
}

/// Builds the time-major dataset of `u` in `n` shards into `dir`, with `extra` flags.
fn dataset(u: &Path, dir: &Path, n: usize, extra: &[&str]) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let mut args = vec!["manifest"];
    let shards: Vec<PathBuf> = (0..n)
        .map(|i| {
            let out = dir.join(format!("s{i}.spill"));
            let shard = format!("{i}/{n}");
            let mut a = vec!["--order", "time", "--shard", &shard];
            a.extend_from_slice(extra);
            ok(&build(u, &out, &a));
            out
        })
        .collect();
    args.extend(shards.iter().map(|p| s(p)));
    let m = dir.join("dataset.json");
    args.extend(["--output", s(&m)]);
    ok(&run(&args));
    m
}

fn manifest(m: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(m).expect("manifest")).expect("json")
}

/// `spillway append M --input U EXTRA --summary -`; the report when it succeeds.
fn append(m: &Path, u: &Path, extra: &[&str]) -> (std::process::Output, Value) {
    let mut args = vec!["append", s(m), "--input", s(u), "--quiet", "--summary", "-"];
    args.extend_from_slice(extra);
    let o = run(&args);
    let report = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o, report)
}

/// The dataset's shards, in order.
fn shards(m: &Path) -> Vec<PathBuf> {
    let dir = m.parent().expect("dir");
    manifest(m)["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|e| dir.join(e["path"].as_str().expect("path")))
        .collect()
}

/// Every row of `files` (concatenated) as (time, symbol name, value bits), sorted by time then
/// name when `by_name` (symbol codes may differ: compare the rows, not the codes).
fn all_rows(files: &[PathBuf], by_name: bool) -> Vec<(i64, String, Vec<u32>)> {
    let mut out = Vec::new();
    for p in files {
        let f = spill::open(p).expect("open");
        let ts = f.column::<i64>("ts").expect("ts");
        let codes = f.column::<u32>("symbol").expect("codes");
        let values: Vec<&[f32]> = ["target", "f0", "f1"]
            .iter()
            .map(|c| f.column::<f32>(c).expect("values"))
            .collect();
        for i in 0..ts.len() {
            let name = f.symbols()[codes[i] as usize].name.clone();
            out.push((ts[i], name, values.iter().map(|v| v[i].to_bits()).collect()));
        }
    }
    if by_name {
        out.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    }
    out
}

/// The dataset equals the single time-major build of `u` with `extra`, column by column (codes
/// too, when the table's order is the same).
fn assert_rebuild(m: &Path, u: &Path, extra: &[&str], codes_too: bool) {
    let single = m.with_file_name("single.spill");
    let mut a = vec!["--order", "time"];
    a.extend_from_slice(extra);
    ok(&build(u, &single, &a));
    let parts = shards(m);
    if codes_too {
        let one = spill::open(&single).expect("open");
        let opened: Vec<_> = parts
            .iter()
            .map(|p| spill::open(p).expect("open"))
            .collect();
        for (i, c) in one.columns().iter().enumerate() {
            let whole: Vec<u8> = opened
                .iter()
                .flat_map(|p| p.column_bytes(i).to_vec())
                .collect();
            assert_eq!(one.column_bytes(i), whole.as_slice(), "column {}", c.name);
        }
    }
    assert_eq!(all_rows(&[single], true), all_rows(&parts, true));
    std::fs::remove_file(m.with_file_name("single.spill")).expect("rm");
}

#[test]
fn an_append_equals_the_rebuild_of_the_grown_universe() {
    let d = tempfile::tempdir().expect("tempdir");
    for (tag, extra) in [("plain", &[][..]), ("filtered", &FILTERS[..])] {
        let (old, grown) = (
            d.path().join(format!("{tag}-old")),
            d.path().join(format!("{tag}-new")),
        );
        day(&old, 100);
        // A flat universe rewritten nightly: the same rows up to minute 100, then ten more;
        // and a new symbol (named last, so the rebuild's codes are the dataset's).
        day(&grown, 110);
        flat(&grown, &[("ZZ", 101, 110)]);
        let m = dataset(&old, &d.path().join(tag), 2, extra);
        let (o, r) = append(&m, &grown, &["--shards", "2"]);
        ok(&o);
        assert_eq!(r["generation"], 2);
        assert_eq!(
            r["history"]["rebuilt"].as_array().map(Vec::len),
            Some(4),
            "{r}"
        );
        assert!(r["history"]["problems"]
            .as_array()
            .is_some_and(Vec::is_empty));
        let j = manifest(&m);
        assert_eq!(j["generation"], 2);
        assert_eq!(j["shards"].as_array().map(Vec::len), Some(4));
        assert_eq!(j["history"]["last"], T0 + 110 * MIN);
        assert!(
            m.with_file_name("dataset.g1.json").exists(),
            "generation 1 kept"
        );
        ok(&run(&["verify", s(&m)]));
        assert_rebuild(&m, &grown, extra, true);
        // Nothing new: exit 0, nothing written.
        let (o, _) = append(&m, &grown, &[]);
        ok(&o);
        assert_eq!(manifest(&m)["generation"], 2);
    }
}

#[test]
fn a_hive_append_trusts_the_unchanged_parts_and_reads_only_the_new_ones() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    let part = |sym: &str, k: usize, a: i64, b: i64| {
        let minutes: Vec<i64> = (a..=b).collect();
        let p = u.join(format!("symbol={sym}/part-{k}.parquet"));
        write_parquet(&p, rows(sym, &minutes, 0), false);
    };
    for (sym, a) in SYMBOLS {
        part(sym, 0, a, 100);
    }
    let m = dataset(&u, &d.path().join("ds"), 1, &[]);
    for (k, (a, b)) in [(101, 104), (105, 120)].into_iter().enumerate() {
        for (sym, _) in SYMBOLS {
            part(sym, k + 1, a, b);
        }
        let (o, r) = append(&m, &u, &[]);
        ok(&o);
        assert_eq!(r["history"]["trusted"], 4, "{r}");
        assert_eq!(r["history"]["rebuilt"].as_array().map(Vec::len), Some(0));
    }
    assert_eq!(manifest(&m)["generation"], 3);
    assert_rebuild(&m, &u, &[], true);
}

#[test]
fn changed_history_is_refused_naming_the_symbol_and_the_first_timestamp() {
    let d = tempfile::tempdir().expect("tempdir");
    let (old, grown) = (d.path().join("old"), d.path().join("new"));
    day(&old, 100);
    let m = dataset(&old, &d.path().join("ds"), 2, &[]);
    day(&grown, 110);
    // BB's history rewritten from minute 37 on (another salt).
    let mut minutes: Vec<i64> = (5..37).collect();
    let mut cols = rows("BB", &minutes, 0);
    minutes = (37..=110).collect();
    let later = rows("BB", &minutes, 9);
    let cat = |a: &arrow_array::ArrayRef, b: &arrow_array::ArrayRef| {
        arrow_select::concat::concat(&[a.as_ref(), b.as_ref()]).expect("concat")
    };
    cols = cols
        .iter()
        .zip(&later)
        .map(|((n, a), (_, b))| (*n, cat(a, b)))
        .collect();
    write_parquet(&grown.join("BB.parquet"), cols, false);
    let before = std::fs::read(&m).expect("manifest");
    let (o, _) = append(&m, &grown, &[]);
    let at = (T0 + 37 * MIN).to_string();
    fails_with(&o, &["BB:", "differ", &at, "--rebuild"]);
    assert_eq!(
        std::fs::read(&m).expect("manifest"),
        before,
        "nothing committed"
    );
    assert_eq!(shards(&m).len(), 2);
    assert!(
        !entries(m.parent().expect("dir"))
            .iter()
            .any(|e| e.starts_with("time-g2")),
        "no shard left"
    );
    // --rebuild takes the grown universe whole, codes kept.
    let (o, r) = append(&m, &grown, &["--rebuild"]);
    ok(&o);
    assert_eq!(r["rebuilt"], true);
    assert_rebuild(&m, &grown, &[], true);
}

#[test]
fn backfilled_history_is_refused() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    day(&u, 100);
    let m = dataset(&u, &d.path().join("ds"), 1, &[]);
    // A new symbol whose rows start before the dataset's end.
    flat(&u, &[("EE", 90, 110)]);
    let (o, _) = append(&m, &u, &[]);
    let at = (T0 + 90 * MIN).to_string();
    fails_with(&o, &["EE:", "backfilled", &at]);
}

#[test]
fn a_new_symbol_gets_the_next_code_and_a_stopped_one_none() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    day(&u, 100);
    let m = dataset(&u, &d.path().join("ds"), 1, &[]);
    // "A0" sorts first, but AA..DD keep codes 0..3: it gets 4. CC stopped (its file unchanged).
    for (sym, a) in SYMBOLS.iter().filter(|s| s.0 != "CC") {
        flat(&u, &[(sym, *a, 110)]);
    }
    flat(&u, &[("A0", 101, 110)]);
    let (o, r) = append(&m, &u, &[]);
    ok(&o);
    assert_eq!(r["history"]["new_symbols"], serde_json::json!(["A0"]));
    let newest = spill::open(shards(&m).last().expect("a shard")).expect("open");
    let names: Vec<&str> = newest.symbols().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["AA", "BB", "CC", "DD", "A0"]);
    assert_eq!(manifest(&m)["history"]["symbols"][4]["name"], "A0");
    // The same rows as a rebuild (whose table is sorted: compared by name).
    assert_rebuild(&m, &u, &[], false);
}

#[test]
fn what_cannot_grow_is_refused() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    day(&u, 100);
    let cut = dataset(&u, &d.path().join("cut"), 1, &["--max-rows", "50"]);
    fails_with(&append(&cut, &u, &[]).0, &["--max-rows"]);
    // A dataset cut on symbols.
    let sm = symbol_cut_dataset(&u, &d.path().join("sym"));
    fails_with(&append(&sm, &u, &[]).0, &["not a time-major dataset"]);
    // A feature set that changed.
    let m = dataset(&u, &d.path().join("ds"), 1, &[]);
    let minutes: Vec<i64> = (0..=110).collect();
    let mut cols = rows("AA", &minutes, 0);
    cols.push(("f2", f64s(vec![1.0; minutes.len()])));
    write_parquet(&u.join("AA.parquet"), cols, false);
    fails_with(
        &append(&m, &u, &[]).0,
        &["features changed", "added [\"f2\"]"],
    );
}

/// Keeps the rows of each parquet file in `src` whose time is at most `cut` (or null), in
/// `dst`: yesterday's universe of today's.
pub(crate) fn truncate(src: &Path, dst: &Path, cut: i64) {
    use arrow_array::Array;
    for e in std::fs::read_dir(src).expect("read_dir") {
        let p = e.expect("entry").path();
        let batch = read_parquet(&p);
        let ts = batch
            .column_by_name("ts")
            .expect("ts")
            .as_any()
            .downcast_ref::<arrow_array::TimestampNanosecondArray>()
            .expect("ns");
        let keep: arrow_array::BooleanArray = (0..ts.len())
            .map(|i| Some(ts.is_null(i) || ts.value(i) <= cut))
            .collect();
        let kept = arrow_select::filter::filter_record_batch(&batch, &keep).expect("filter");
        let cols: Vec<(&str, arrow_array::ArrayRef)> = kept
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .zip(kept.columns().iter().cloned())
            .collect();
        write_parquet(&dst.join(p.file_name().expect("name")), cols, false);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]

    /// Random universes (repeated, missing and backward times, null times, NaN targets), cut at
    /// a random minute into yesterday's universe: appending today's to yesterday's dataset gives
    /// the rebuild of today's, or is refused as changed history (a file whose rows before the
    /// cut moved: row tags, which sampling keys read, changed). Never a silently other dataset.
    #[test]
    fn appended_equals_rebuilt_or_is_refused(
        seed in any::<u64>(),
        symbols in 1usize..5,
        cut in 5i64..35,
        k in prop::option::of(1u64..4),
    ) {
        let d = tempfile::tempdir().expect("tempdir");
        let (today, yesterday) = (d.path().join("today"), d.path().join("yesterday"));
        crate::order::universe(&today, symbols, seed);
        std::fs::create_dir(&yesterday).expect("mkdir");
        truncate(&today, &yesterday, 1_700_000_000_000_000_000 + cut * 60_000_000_000);
        let (kk, sd) = (k.map(|v| v.to_string()), (seed % 100).to_string());
        let mut extra: Vec<&str> = vec!["--drop-null-target"];
        if let Some(v) = &kk { extra.extend(["--max-cs-samples", v, "--seed", &sd]); }
        let dir = d.path().join("ds");
        std::fs::create_dir(&dir).expect("mkdir");
        let y = build(&yesterday, &dir.join("s.spill"), &[&["--order", "time", "--shard", "0/1"], &extra[..]].concat());
        if !y.status.success() {
            // Yesterday had no row: nothing to grow.
            return Ok(());
        }
        let m = dir.join("dataset.json");
        ok(&run(&["manifest", s(&dir.join("s.spill")), "--output", s(&m)]));
        let (o, _) = append(&m, &today, &[]);
        match (o.status.code(), manifest(&m)["generation"].as_u64()) {
            (Some(0), Some(2)) => assert_rebuild(&m, &today, &extra, true),
            // Nothing after the cut.
            (Some(0), _) => {}
            _ => fails_with(&o, &["differ", "--rebuild"]),
        }
    }
}

/// A cluster's append: each task builds one new shard (`--only I`), then one `--commit`.
#[test]
fn shards_built_by_tasks_commit_together() {
    let d = tempfile::tempdir().expect("tempdir");
    let (old, grown) = (d.path().join("old"), d.path().join("new"));
    day(&old, 100);
    day(&grown, 130);
    let m = dataset(&old, &d.path().join("ds"), 1, &[]);
    // Committing before the tasks ran: the shards are missing, nothing changes.
    fails_with(
        &append(&m, &grown, &["--shards", "2", "--commit"]).0,
        &["time-g2-00000-of-00002"],
    );
    for i in ["1", "0"] {
        let (o, r) = append(&m, &grown, &["--shards", "2", "--only", i]);
        ok(&o);
        assert_eq!(r["generation"], 1, "a task commits nothing");
    }
    assert_eq!(manifest(&m)["generation"], 1);
    let (o, r) = append(&m, &grown, &["--shards", "2", "--commit"]);
    ok(&o);
    assert_eq!(r["generation"], 2);
    assert_eq!(r["shards"].as_array().map(Vec::len), Some(2));
    assert_rebuild(&m, &grown, &[], true);
}
