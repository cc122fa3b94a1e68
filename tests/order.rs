//! `--order time` (issue 16): a time-major file is the symbol-major file of the same build
//! permuted by (time, symbol code), stably, column by column, on random universes (ragged
//! symbols, missing and duplicate timestamps, times going backwards, null times) under every
//! filter; its timestamp ranges tile the rows; it does not depend on threads, capacity, batch rows
//! or write mode; a failed build leaves neither output nor intermediate.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, TimestampNanosecondArray};
use proptest::prelude::*;

use crate::common::*;

const T0: i64 = 1_700_000_000_000_000_000;
const STEP: i64 = 60_000_000_000;

/// SplitMix64: the test's own random stream, so a case is its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A universe of `symbols` symbols on a grid of 40 times: each symbol a ragged stretch of it with
/// timestamps missing, some repeated (duplicates within the symbol), a few rows swapped (time
/// going backwards), a few null times, and NaN or null targets.
pub(crate) fn universe(dir: &Path, symbols: usize, seed: u64) {
    let mut rng = Rng(seed);
    for s in 0..symbols {
        let (a, b) = (rng.below(20), 20 + rng.below(21));
        let mut ts: Vec<Option<i64>> = Vec::new();
        for k in a..b {
            match rng.below(10) {
                0 | 1 => {}
                2 => ts.extend([Some(T0 + k as i64 * STEP); 2]),
                3 if k % 3 == 0 => ts.push(None),
                _ => ts.push(Some(T0 + k as i64 * STEP)),
            }
        }
        if ts.len() > 3 && rng.below(3) == 0 {
            let i = rng.below(ts.len() as u64 - 1) as usize;
            ts.swap(i, i + 1);
        }
        write_symbol(dir, s, ts, &mut rng);
    }
}

/// Like [`universe`], but each symbol stored newest-first (issue 21): the grid walked backwards,
/// with repeated times (ties inside the falling stretch), null times, and in some symbols a few
/// steps forward (adjacent rows swapped).
fn newest_first_universe(dir: &Path, symbols: usize, seed: u64) {
    let mut rng = Rng(seed);
    for s in 0..symbols {
        let (a, b) = (rng.below(20), 20 + rng.below(21));
        let mut ts: Vec<Option<i64>> = Vec::new();
        for k in (a..b).rev() {
            match rng.below(10) {
                0 => {}
                1 | 2 => ts.extend([Some(T0 + k as i64 * STEP); 2]),
                3 if k % 3 == 0 => ts.push(None),
                _ => ts.push(Some(T0 + k as i64 * STEP)),
            }
        }
        for _ in 0..rng.below(4) {
            if ts.len() > 3 {
                let i = rng.below(ts.len() as u64 - 1) as usize;
                ts.swap(i, i + 1);
            }
        }
        write_symbol(dir, s, ts, &mut rng);
    }
}

/// Writes symbol `S{s}` with times `ts`, a target with NaN and nulls, and two features.
fn write_symbol(dir: &Path, s: usize, ts: Vec<Option<i64>>, rng: &mut Rng) {
    let n = ts.len();
    let mut col = |nan: bool| -> ArrayRef {
        Arc::new(Float64Array::from(
            (0..n)
                .map(|_| match rng.below(12) {
                    0 if nan => None,
                    1 if nan => Some(f64::NAN),
                    _ => Some(rng.below(1000) as f64 / 7.0 - 50.0),
                })
                .collect::<Vec<_>>(),
        ))
    };
    let (target, f0, f1) = (col(true), col(true), col(false));
    let ts: ArrayRef = Arc::new(TimestampNanosecondArray::from(ts).with_timezone("UTC"));
    write_parquet(
        &dir.join(format!("S{s:02}.parquet")),
        vec![("ts", ts), ("target", target), ("f0", f0), ("f1", f1)],
        false,
    );
}

/// Asserts that `time` is `sym` permuted stably by (time, symbol code), column by column, with
/// the same symbol names and a timestamp index that tiles the rows and matches the time column.
pub(crate) fn assert_permuted(sym: &Path, time: &Path) {
    let s = spill::open(sym).expect("symbol-major opens");
    let t = spill::open(time).expect("time-major opens");
    assert_eq!(s.order(), spill::Order::Symbol);
    assert_eq!(t.order(), spill::Order::Time);
    assert_eq!(s.nrows(), t.nrows());
    let names = |f: &spill::SpillFile<_>| -> Vec<String> {
        f.symbols().iter().map(|x| x.name.clone()).collect()
    };
    assert_eq!(names(&s), names(&t));
    let times: &[i64] = s.column("ts").expect("ts");
    let codes: &[u32] = s.column("symbol").expect("symbol");
    let mut perm: Vec<usize> = (0..times.len()).collect();
    perm.sort_by_key(|&i| (times[i], codes[i])); // stable: equal keys keep row order
    assert_eq!(s.columns().len(), t.columns().len());
    for (i, c) in s.columns().iter().enumerate() {
        assert_eq!(c.name, t.columns()[i].name);
        let size = c.dtype.size() as usize;
        let (a, b) = (s.column_bytes(i), t.column_bytes(i));
        for (out, &src) in perm.iter().enumerate() {
            assert_eq!(
                &a[src * size..(src + 1) * size],
                &b[out * size..(out + 1) * size],
                "column {} row {out}",
                c.name
            );
        }
    }
    // The index tiles [0, nrows) in order, one range a distinct time, each holding its time.
    let index = t.timestamps().expect("a time-major file has an index");
    let ttimes: &[i64] = t.column("ts").expect("ts");
    let mut at = 0u64;
    let mut prev = None;
    for (time, range) in index.iter() {
        assert_eq!(range.start, at, "ranges tile the rows");
        assert!(range.end > range.start, "no empty timestamp");
        assert!(prev.is_none_or(|p| p < time), "times strictly increase");
        for r in range.clone() {
            assert_eq!(ttimes[r as usize], time);
        }
        (at, prev) = (range.end, Some(time));
    }
    assert_eq!(at, t.nrows());
    t.verify_time_index()
        .expect("the index matches the time column");
    assert!(t.verify().is_ok(), "checksums hold");
}

/// The directory holds exactly `names` (no intermediate, no temporary).
fn assert_only(dir: &Path, names: &[&str]) {
    assert_eq!(entries(dir), names, "leftovers in {}", dir.display());
}

/// The build flags of a random case's filters: `--drop-null-target`, `--min-cs`,
/// `--max-cs-samples` (with a seed from `seed`) and `--max-rows`, as chosen.
pub(crate) fn filter_flags(
    drop: bool,
    min_cs: Option<u64>,
    k: Option<u64>,
    max_rows: Option<u64>,
    seed: u64,
) -> Vec<String> {
    let mut f: Vec<String> = Vec::new();
    if drop {
        f.push("--drop-null-target".into());
    }
    if let Some(v) = min_cs {
        f.extend(["--min-cs".into(), v.to_string()]);
    }
    if let Some(v) = k {
        f.extend([
            "--max-cs-samples".into(),
            v.to_string(),
            "--seed".into(),
            (seed % 100).to_string(),
        ]);
    }
    if let Some(v) = max_rows {
        f.extend(["--max-rows".into(), v.to_string()]);
    }
    f
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Symbols stored newest-first, read backwards as one run each (or a few where a step goes
    /// forward), give the same permutation.
    #[test]
    fn a_newest_first_universe_is_permuted_the_same_way(
        seed in any::<u64>(),
        symbols in 1usize..6,
        min_cs in prop::option::of(1u64..4),
        max_rows in prop::option::of(5u64..30),
    ) {
        let d = tempfile::tempdir().expect("tempdir");
        let u = d.path().join("u");
        newest_first_universe(&u, symbols, seed);
        let flags = filter_flags(false, min_cs, None, max_rows, 0);
        let mut extra: Vec<&str> = flags.iter().map(String::as_str).collect();
        let (sym, time) = (d.path().join("s.spill"), d.path().join("t.spill"));
        ok(&build(&u, &sym, &extra));
        extra.extend(["--order", "time"]);
        ok(&build(&u, &time, &extra));
        assert_permuted(&sym, &time);
    }

    #[test]
    fn a_time_major_file_is_the_symbol_major_file_permuted_by_time_and_symbol(
        seed in any::<u64>(),
        symbols in 1usize..6,
        drop in any::<bool>(),
        min_cs in prop::option::of(1u64..4),
        k in prop::option::of(1u64..4),
        max_rows in prop::option::of(5u64..30),
    ) {
        let d = tempfile::tempdir().expect("tempdir");
        let u = d.path().join("u");
        universe(&u, symbols, seed);
        let flags = filter_flags(drop, min_cs, k, max_rows, seed);
        let extra: Vec<&str> = flags.iter().map(String::as_str).collect();
        let out = d.path().join("out");
        std::fs::create_dir(&out).expect("mkdir");
        let (sym, time) = (out.join("s.spill"), out.join("t.spill"));
        ok(&build(&u, &sym, &extra));
        let mut with_order = extra.clone();
        with_order.extend(["--order", "time"]);
        ok(&build(&u, &time, &with_order));
        assert_permuted(&sym, &time);
        assert_only(&out, &["s.spill", "t.spill"]);
    }
}

#[test]
fn a_time_major_file_is_the_same_whatever_threads_capacity_batch_and_write_mode() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    universe(&u, 7, 42);
    let shapes: [&[&str]; 4] = [
        &[
            "--threads",
            "1",
            "--batch-rows",
            "1",
            "--channel-capacity",
            "1",
        ],
        &[
            "--threads",
            "2",
            "--batch-rows",
            "7",
            "--channel-capacity",
            "3",
        ],
        &["--threads", "3", "--write-mode", "mmap"],
        &["--memory-budget", "64MiB", "--no-float32=false"],
    ];
    let mut first: Option<Vec<u8>> = None;
    for (i, shape) in shapes.iter().enumerate() {
        let out = d.path().join(format!("t{i}.spill"));
        let mut extra = vec!["--order", "time"];
        extra.extend_from_slice(shape);
        ok(&build(&u, &out, &extra));
        let bytes = std::fs::read(&out).expect("read");
        match &first {
            None => first = Some(bytes),
            Some(f) => assert!(f == &bytes, "{shape:?} changed the file"),
        }
    }
    let sym = d.path().join("s.spill");
    ok(&build(&u, &sym, &[]));
    assert_permuted(&sym, &d.path().join("t0.spill"));
}

#[test]
fn the_summary_reports_the_order_and_the_io_amplification() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    universe(&u, 4, 7);
    let out = d.path().join("t.spill");
    let summary = d.path().join("s.json");
    let o = run(&build_args(
        &u,
        &out,
        &["--order", "time", "--summary", s(&summary)],
    ));
    ok(&o);
    let e = stderr(&o);
    assert!(
        e.contains("order: time (") && e.contains("I/O amplification"),
        "{e}"
    );
    assert!(e.contains("transpose "), "{e}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("summary")).expect("json");
    assert_eq!(json["order"], "time");
    // Written: intermediate and output; read: the values back (padding is neither read nor
    // gathered, so a tiny file, mostly padding, stays under 3).
    let amp = json["io_amplification"].as_f64().expect("a number");
    assert!(amp > 2.0 && amp < 4.0, "{amp}");
    assert!(json["transpose"]["timestamps"].as_u64() > Some(0));
    // The planned bound covers both passes, and the peak stays under it.
    let bound = json["planned_bound_bytes"].as_u64().expect("a bound");
    let parts = [
        &json["budget"]["bound_bytes"],
        &json["transpose"]["memory"]["bound_bytes"],
    ];
    assert_eq!(Some(bound), parts.iter().filter_map(|v| v.as_u64()).max());
    assert!(json["peak_rss_bytes"].as_u64() <= Some(bound), "{json}");
    assert!(e.contains("= max(stream pass "), "{e}");
    let plain = d.path().join("p.spill");
    let o = run(&build_args(&u, &plain, &["--summary", "-", "--quiet"]));
    ok(&o);
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(json["order"], "symbol");
    assert_eq!(json["io_amplification"], 1.0);
    assert!(json["transpose"].is_null());
}

#[test]
fn a_failed_transposition_leaves_no_output_and_no_intermediate() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    // 16000 rows whose time turns back every other row (0, 10, 5, 15, 10, 20, ...): 8000 runs,
    // more than the smallest merge holds (a symbol stored newest-first would be one run).
    let n = 16_000i64;
    let zigzag = |i: i64| T0 + ((i / 2) * 5 + (i % 2) * 10) * STEP;
    write_parquet(
        &u.join("ZIGZAG.parquet"),
        vec![
            ("ts", ts_ns((0..n).map(zigzag).collect())),
            ("target", f64s((0..n).map(|i| i as f64).collect())),
        ],
        false,
    );
    let out = d.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let tiny = [
        "--order",
        "time",
        "--memory-budget",
        "16MiB",
        "--threads",
        "1",
        "--batch-rows",
        "512",
        "--channel-capacity",
        "1",
    ];
    let o = build(&u, &out.join("t.spill"), &tiny);
    fails_with(&o, &["--order time", "runs", "--memory-budget"]);
    assert_only(&out, &[]);
    // With the default budget the same universe builds.
    ok(&build(&u, &out.join("t.spill"), &["--order", "time"]));
    ok(&build(&u, &out.join("s.spill"), &[]));
    assert_permuted(&out.join("s.spill"), &out.join("t.spill"));
    assert_only(&out, &["s.spill", "t.spill"]);
}

#[test]
fn if_changed_tells_the_orders_apart_and_verify_checks_the_index() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    universe(&u, 3, 9);
    let out = d.path().join("t.spill");
    ok(&build(&u, &out, &["--order", "time"]));
    let o = run(&build_args(&u, &out, &["--order", "time", "--if-changed"]));
    ok(&o);
    assert!(stderr(&o).contains("is current"), "{}", stderr(&o));
    let o = run(&build_args(&u, &out, &["--if-changed"]));
    ok(&o);
    assert!(stderr(&o).contains("building"), "{}", stderr(&o));
    assert_eq!(
        spill::open(&out).expect("opens").order(),
        spill::Order::Symbol
    );
    ok(&build(&u, &out, &["--order", "time"]));
    let o = run(&["verify", s(&out), "--json"]);
    ok(&o);
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(json["order"], "time");
    assert!(json["timestamps"].as_u64() > Some(0));
}
