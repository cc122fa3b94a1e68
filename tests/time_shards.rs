//! Time shards (`build --order time --shard I/N`, `manifest`, `verify dataset.json`): the shards,
//! in time order, equal the single time-major build column by column, with or without filters,
//! `--max-rows`, repeated and backward times; each reads only the row groups it needs; the
//! manifest records `order: time` and refuses shards that do not tile the timeline.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use crate::common::*;
use crate::order::{filter_flags, universe as random_universe};
use crate::sharded::{repeated_universe, FILTERS};

/// 12 symbols of 1500 rows, ragged starts, missing columns, row groups of `rg` rows.
fn universe(d: &Path, rg: &str, ragged: &str) -> PathBuf {
    let u = d.join(format!("u-{rg}-{ragged}"));
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
            ragged,
            "--missing",
            "--row-group-rows",
            rg,
        ],
    );
    u
}

/// Builds time shards `0..n` of `u` with `extra` flags, named `{tag}-{i}-of-{n}.spill`.
fn time_shards(d: &Path, u: &Path, n: usize, tag: &str, extra: &[&str]) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let out = d.join(format!("{tag}-{i}-of-{n}.spill"));
            let shard = format!("{i}/{n}");
            let mut args = vec!["--order", "time", "--shard", &shard];
            args.extend_from_slice(extra);
            ok(&build(u, &out, &args));
            out
        })
        .collect()
}

/// The shards' time windows, from their metadata.
fn windows(shards: &[PathBuf]) -> Vec<[i64; 2]> {
    shards
        .iter()
        .map(|p| {
            let f = spill::open(p).expect("shard opens");
            let time = f.build_metadata()["shard"]["time"].clone();
            serde_json::from_value(time).expect("a time shard records its window")
        })
        .collect()
}

/// Every column of the shards, concatenated, is byte for byte the single file's (symbol codes
/// too: every time shard carries the single build's table); the windows follow one another.
fn assert_concatenation(single: &Path, shards: &[PathBuf]) {
    let a = spill::open(single).expect("single opens");
    assert_eq!(a.order(), spill::Order::Time);
    let parts: Vec<_> = shards
        .iter()
        .map(|p| spill::open(p).expect("shard opens"))
        .collect();
    assert_eq!(parts.iter().map(|p| p.nrows()).sum::<u64>(), a.nrows());
    assert!(a.nrows() > 0);
    for p in &parts {
        assert_eq!(p.order(), spill::Order::Time);
        assert_eq!(p.symbols().len(), a.symbols().len());
        assert!(p.nrows() > 0, "no time shard is empty");
    }
    for (i, c) in a.columns().iter().enumerate() {
        let whole: Vec<u8> = parts
            .iter()
            .flat_map(|p| p.column_bytes(i).to_vec())
            .collect();
        assert_eq!(a.column_bytes(i), whole.as_slice(), "column {}", c.name);
    }
    let w = windows(shards);
    for (k, p) in parts.iter().enumerate() {
        let ts = p.column::<i64>(&a.columns()[0].name).expect("time");
        assert_eq!([ts[0], ts[ts.len() - 1]], w[k], "shard {k}'s window");
        if k > 0 {
            assert!(w[k - 1][1] < w[k][0], "windows in order: {w:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Random universes (ragged, missing and repeated times, rows swapped, null times, NaN and
    /// null targets) under random filters and `--max-rows`: N time shards are the single file.
    #[test]
    fn any_number_of_time_shards_is_the_single_time_major_file(
        seed in any::<u64>(),
        symbols in 1usize..6,
        n in 1usize..6,
        drop in any::<bool>(),
        min_cs in prop::option::of(1u64..4),
        k in prop::option::of(1u64..4),
        max_rows in prop::option::of(5u64..30),
    ) {
        let d = tempfile::tempdir().expect("tempdir");
        let u = d.path().join("u");
        random_universe(&u, symbols, seed);
        let flags = filter_flags(drop, min_cs, k, max_rows, seed);
        let extra: Vec<&str> = flags.iter().map(String::as_str).collect();
        let single = d.path().join("single.spill");
        let mut args = vec!["--order", "time"];
        args.extend_from_slice(&extra);
        let o = build(&u, &single, &args);
        if !o.status.success() {
            // The filters removed every row: nothing to shard.
            fails_with(&o, &["removed every row"]);
            return Ok(());
        }
        let distinct: std::collections::BTreeSet<i64> =
            spill::open(&single).expect("open").column::<i64>("ts").expect("ts").iter().copied().collect();
        if n > distinct.len() {
            let shard = format!("0/{n}");
            let mut args = vec!["--order", "time", "--shard", &shard];
            args.extend_from_slice(&extra);
            usage_error(&build(&u, &d.path().join("x.spill"), &args), &["time shards of"]);
            return Ok(());
        }
        assert_concatenation(&single, &time_shards(d.path(), &u, n, "p", &extra));
    }
}

#[test]
fn time_shards_equal_the_single_time_major_build() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universe(d.path(), "200", "0.5");
    let cases: [(&str, &[&str]); 3] = [
        ("plain", &[]),
        ("filtered", &FILTERS),
        ("cut", &["--max-rows", "900"]),
    ];
    for (tag, extra) in cases {
        let single = d.path().join(format!("{tag}.spill"));
        let mut args = vec!["--order", "time"];
        args.extend_from_slice(extra);
        ok(&build(&u, &single, &args));
        for n in [1, 3, 7] {
            assert_concatenation(&single, &time_shards(d.path(), &u, n, tag, extra));
        }
    }
}

/// Repeated times, times going backwards within a file, and a hive symbol whose parts overlap:
/// the transposition's hard cases, and the sampling keys of repeated rows, in time shards.
#[test]
fn repeated_and_backward_times_shard_exactly() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = repeated_universe(d.path());
    for (tag, extra) in [("plain", &[][..]), ("filtered", &FILTERS[..])] {
        let single = d.path().join(format!("{tag}.spill"));
        let mut args = vec!["--order", "time"];
        args.extend_from_slice(extra);
        ok(&build(&u, &single, &args));
        for n in [2, 5] {
            assert_concatenation(&single, &time_shards(d.path(), &u, n, tag, extra));
        }
    }
}

/// A shard never reads a row group outside its window: one made unreadable (a feature chunk's
/// bytes overwritten) fails the shard whose window holds it, naming the file and the column,
/// and not the others.
#[test]
fn a_time_shard_reads_only_the_row_groups_in_its_window() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universe(d.path(), "100", "0");
    let file = u.join("S0000.parquet");
    let chunk = {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let r =
            SerializedFileReader::new(std::fs::File::open(&file).expect("open")).expect("footer");
        let rg = r.metadata().row_group(0);
        let col = (0..rg.num_columns())
            .map(|i| rg.column(i))
            .find(|c| c.column_path().string() == "f001")
            .expect("f001");
        let (start, len) = col.byte_range();
        start as usize..(start + len) as usize
    };
    let mut bytes = std::fs::read(&file).expect("read");
    for b in &mut bytes[chunk.start + 8..chunk.end] {
        *b = 0xA5;
    }
    std::fs::write(&file, bytes).expect("write");
    let out = |i: usize| d.path().join(format!("s{i}.spill"));
    for i in [1, 2] {
        let shard = format!("{i}/3");
        ok(&build(&u, &out(i), &["--order", "time", "--shard", &shard]));
    }
    let o = build(&u, &out(0), &["--order", "time", "--shard", "0/3"]);
    fails_with(&o, &["S0000.parquet", "f001"]);
    assert!(!out(0).exists(), "nothing half-done");
}

#[test]
fn time_shards_refuse_what_does_not_apply() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universe(d.path(), "500", "0.5");
    let out = d.path().join("o.spill");
    usage_error(
        &build(&u, &out, &["--order", "time", "--symbols", "A..M"]),
        &["--symbols", "cut on time"],
    );
    let plan = d.path().join("p.plan");
    std::fs::write(&plan, b"not read").expect("write");
    usage_error(
        &build(
            &u,
            &out,
            &["--order", "time", "--shard", "0/2", "--cs-plan", s(&plan)],
        ),
        &["needs no --cs-plan"],
    );
    // More shards than timestamps with rows.
    usage_error(
        &build(&u, &out, &["--order", "time", "--shard", "0/5000"]),
        &["5000 time shards of", "timestamps"],
    );
    assert!(!out.exists());
}

#[test]
fn the_manifest_of_time_shards_records_their_order_and_checks_the_tiling() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universe(d.path(), "500", "0.5");
    let shards = time_shards(d.path(), &u, 3, "t", &[]);
    let m = d.path().join("dataset.json");
    // In any order on the command line: listed in time order.
    ok(&run(&[
        "manifest",
        s(&shards[2]),
        s(&shards[0]),
        s(&shards[1]),
        "--output",
        s(&m),
    ]));
    let j: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&m).expect("read")).expect("json");
    assert_eq!(j["order"], "time");
    assert_eq!(j["version"], serde_json::json!([1, 2]));
    let listed: Vec<&str> = j["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|e| e["path"].as_str().expect("path"))
        .collect();
    assert_eq!(
        listed,
        ["t-0-of-3.spill", "t-1-of-3.spill", "t-2-of-3.spill"]
    );
    ok(&run(&["verify", s(&m)]));
    let m2 = d.path().join("d2.json");
    fails_with(
        &run(&["manifest", s(&shards[0]), s(&shards[2]), "--output", s(&m2)]),
        &[
            "t-0-of-3.spill",
            "of 3 shards; 2 are given",
            "a shard is missing",
        ],
    );
    // A symbol shard and a time shard are not one dataset.
    let sym = d.path().join("sym.spill");
    ok(&build(&u, &sym, &["--shard", "0/3"]));
    fails_with(
        &run(&["manifest", s(&shards[0]), s(&sym), "--output", s(&m2)]),
        &["other options"],
    );
    fails_with(
        &run(&[
            "manifest",
            s(&shards[0]),
            s(&shards[0]),
            s(&shards[2]),
            "--output",
            s(&m2),
        ]),
        &["shard 1/3 belongs here (a shard is repeated)"],
    );
    assert!(!m2.exists());
}

#[test]
fn a_current_time_shard_is_not_rebuilt_and_a_changed_universe_is() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universe(d.path(), "500", "0.5");
    let out = d.path().join("s.spill");
    let args = ["--order", "time", "--shard", "1/2", "--if-changed"];
    ok(&build(&u, &out, &args));
    let o = run(&[build_args(&u, &out, &args), vec!["--summary", "-"]].concat());
    ok(&o);
    assert!(stdout(&o).contains("\"current\""), "{}", stdout(&o));
    // Another shard's output is not this one.
    let other = ["--order", "time", "--shard", "0/2", "--if-changed"];
    let o = run(&[build_args(&u, &out, &other), vec!["--summary", "-"]].concat());
    ok(&o);
    assert!(stdout(&o).contains("\"built\""), "{}", stdout(&o));
    // A file of the universe rewritten: every time shard depends on every file.
    ok(&build(&u, &out, &args));
    std::fs::copy(u.join("S0001.parquet"), u.join("S0000.parquet")).expect("copy");
    let o = run(&[build_args(&u, &out, &args), vec!["--summary", "-"]].concat());
    ok(&o);
    assert!(stdout(&o).contains("\"built\""), "{}", stdout(&o));
}
