//! Sharded builds (`count`, `plan-cs`, `build --shard --cs-plan`, `manifest`, `verify
//! dataset.json`): the shards together equal the single-machine build row for row, for any number
//! of shards and a tree reduction; mismatched or damaged count and plan files are refused, naming
//! the file.

use std::path::{Path, PathBuf};

use crate::common::*;

/// The filters the sharded tests build with.
pub(crate) const FILTERS: [&str; 7] = [
    "--drop-null-target",
    "--min-cs",
    "5",
    "--max-cs-samples",
    "4",
    "--seed",
    "3",
];

/// Count options matching `FILTERS` (count takes no --min-cs).
fn count_args<'a>(u: &'a Path, out: &'a Path, shard: &'a str, seed: &'a str) -> Vec<&'a str> {
    vec![
        "count",
        "--input",
        s(u),
        "--shard",
        shard,
        "--output",
        s(out),
        "--target",
        "target",
        "--drop-null-target",
        "--max-cs-samples",
        "4",
        "--seed",
        seed,
    ]
}

fn universe(d: &Path, extra: &[&str]) -> PathBuf {
    let u = d.join("u");
    let mut args = vec![
        "--symbols",
        "12",
        "--rows",
        "1500",
        "--features",
        "3",
        "--ragged",
        "0.5",
    ];
    args.extend_from_slice(&["--missing"]);
    args.extend_from_slice(extra);
    gen(&u, &args);
    u
}

/// Counts, plans (through a tree of `--merge-only` when `tree`) and builds `n` shards.
fn sharded(d: &Path, u: &Path, n: usize, tree: bool) -> Vec<PathBuf> {
    let mut counts = Vec::new();
    for i in 0..n {
        let c = d.join(format!("c{i}-{n}.counts"));
        ok(&run(&count_args(u, &c, &format!("{i}/{n}"), "3")));
        counts.push(c);
    }
    if tree && n > 1 {
        let (a, b) = counts.split_at(n / 2);
        let mut merged = Vec::new();
        for (j, part) in [a, b].iter().enumerate() {
            let m = d.join(format!("m{j}-{n}.counts"));
            let mut args = vec![
                "plan-cs",
                "--merge-only",
                "--max-cs-samples",
                "4",
                "--seed",
                "3",
            ];
            args.extend(part.iter().map(|p| s(p)));
            args.extend(["--output", s(&m)]);
            ok(&run(&args));
            merged.push(m);
        }
        counts = merged;
    }
    let plan = d.join(format!("cs-{n}.plan"));
    let mut args = vec![
        "plan-cs",
        "--min-cs",
        "5",
        "--max-cs-samples",
        "4",
        "--seed",
        "3",
    ];
    args.extend(counts.iter().map(|p| s(p)));
    args.extend(["--output", s(&plan)]);
    ok(&run(&args));
    (0..n)
        .map(|i| {
            let out = d.join(format!("s{i}-{n}.spill"));
            let shard = format!("{i}/{n}");
            let mut extra = vec!["--shard", &shard, "--cs-plan", s(&plan)];
            extra.extend(FILTERS);
            ok(&build(u, &out, &extra));
            out
        })
        .collect()
}

/// Every column of the shards, concatenated, equals the single file's: the same column names,
/// the same rows and bytes, symbols compared by name (a shard's table may differ).
pub(crate) fn assert_columns_equal(single: &Path, shards: &[PathBuf]) {
    let a = spill::open(single).expect("single opens");
    let parts: Vec<_> = shards
        .iter()
        .map(|p| spill::open(p).expect("shard opens"))
        .collect();
    let names = |f: &spill::SpillFile<_>| -> Vec<String> {
        f.columns().iter().map(|c| c.name.clone()).collect()
    };
    for p in &parts {
        assert_eq!(
            names(p),
            names(&a),
            "a shard's columns differ from the single build's"
        );
    }
    let n: u64 = parts.iter().map(|p| p.nrows()).sum();
    assert_eq!(n, a.nrows(), "rows");
    assert!(a.nrows() > 0);
    for (i, c) in a.columns().iter().enumerate() {
        let whole: Vec<u8> = parts
            .iter()
            .flat_map(|p| p.column_bytes(i).to_vec())
            .collect();
        if c.name == "symbol" {
            let names = |f: &spill::SpillFile<_>| -> Vec<String> {
                f.column::<u32>("symbol")
                    .expect("codes")
                    .iter()
                    .map(|&k| f.symbols()[k as usize].name.clone())
                    .collect()
            };
            let sharded: Vec<String> = parts.iter().flat_map(names).collect();
            assert_eq!(names(&a), sharded, "symbols");
        } else {
            assert_eq!(a.column_bytes(i), whole.as_slice(), "column {}", c.name);
        }
    }
}

/// Every column of the shards, concatenated, equals the single file's; symbols compared by name.
fn assert_same_rows(single: &Path, shards: &[PathBuf]) {
    assert_columns_equal(single, shards);
    for p in shards {
        let p = spill::open(p).expect("shard opens");
        assert_eq!(
            p.symbols().len(),
            12,
            "every shard holds the global symbol table"
        );
        assert!(p.build_metadata().get("shard").is_some());
    }
}

#[test]
fn shards_equal_the_single_machine_build_for_1_2_and_5_shards() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universe(d.path(), &[]);
    let single = d.path().join("single.spill");
    ok(&build(&u, &single, &FILTERS));
    for n in [1, 2, 5] {
        assert_same_rows(&single, &sharded(d.path(), &u, n, n == 5));
    }
    // The manifest ties them together; verify checks the whole dataset.
    let shards = sharded(d.path(), &u, 2, false);
    let m = d.path().join("dataset.json");
    let mut args = vec!["manifest", "--cs-plan"];
    let plan = d.path().join("cs-2.plan");
    args.push(s(&plan));
    args.extend(shards.iter().map(|p| s(p)));
    args.extend(["--output", s(&m)]);
    ok(&run(&args));
    ok(&run(&["verify", s(&m)]));
    // A missing shard is refused when writing the manifest.
    let o = run(&[
        "manifest",
        s(&shards[1]),
        "--cs-plan",
        s(&plan),
        "--output",
        s(&m),
    ]);
    fails_with(&o, &["a shard is missing"]);
}

#[test]
fn a_hive_universe_with_max_rows_shards_exactly() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universe(d.path(), &["--hive"]);
    let single = d.path().join("single.spill");
    let f = ["--max-rows", "900"];
    ok(&build(&u, &single, &f));
    let shards: Vec<PathBuf> = (0..3)
        .map(|i| {
            let out = d.path().join(format!("h{i}.spill"));
            let shard = format!("{i}/3");
            ok(&build(&u, &out, &["--shard", &shard, "--max-rows", "900"]));
            out
        })
        .collect();
    assert_same_rows(&single, &shards);
}

/// 12 symbols whose times repeat (1 to 3 rows a time), go backwards within a file, and overlap
/// across the parts of a hive symbol; some targets NaN.
pub(crate) fn repeated_universe(d: &Path) -> PathBuf {
    const MIN: i64 = 60_000_000_000;
    let u = d.join("rep");
    let write = |path: PathBuf, ts: Vec<i64>, salt: usize| {
        let target: Vec<f64> = (0..ts.len())
            .map(|i| match (i * 7 + salt) % 11 {
                0 => f64::NAN,
                v => v as f64 + salt as f64 * 0.001,
            })
            .collect();
        let ns = ts.iter().map(|t| t * MIN).collect();
        write_parquet(
            &path,
            vec![("ts", ts_ns(ns)), ("target", f64s(target))],
            false,
        );
    };
    for i in 0..11 {
        let mut ts: Vec<i64> = (i as i64..120)
            .flat_map(|t| std::iter::repeat_n(t, 1 + (t as usize + i) % 3))
            .collect();
        if i % 4 == 1 {
            // Time going backwards: a stretch written in reverse.
            ts[10..40].reverse();
        }
        write(u.join(format!("S{i:02}.parquet")), ts, i);
    }
    let p0: Vec<i64> = (0..140).map(|i| i / 2).collect();
    let p1: Vec<i64> = (100..240).map(|i| i / 2).collect();
    write(u.join("symbol=S11/p0.parquet"), p0, 11);
    write(u.join("symbol=S11/p1.parquet"), p1, 12);
    u
}

/// Issue 21 item 4: where symbols repeat timestamps, every row has its own sampling key, the
/// same in every shard: the shards still equal the single build, which keeps exactly K rows.
#[test]
fn repeated_times_shard_exactly() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = repeated_universe(d.path());
    let single = d.path().join("single.spill");
    ok(&build(&u, &single, &FILTERS));
    let f = spill::open(&single).expect("open");
    let mut per_time = std::collections::BTreeMap::<i64, u32>::new();
    for &t in f.column::<i64>("ts").expect("ts") {
        *per_time.entry(t).or_default() += 1;
    }
    assert!(per_time.values().all(|&n| n == 4), "{per_time:?}");
    for n in [2, 5] {
        assert_same_rows(&single, &sharded(d.path(), &u, n, n == 5));
    }
}

#[test]
fn mismatched_damaged_or_missing_count_files_are_refused() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universe(d.path(), &[]);
    let c = |name: &str, shard: &str, seed: &str| {
        let p = d.path().join(name);
        ok(&run(&count_args(&u, &p, shard, seed)));
        p
    };
    let (a, b, b7) = (c("a", "0/2", "3"), c("b", "1/2", "3"), c("b7", "1/2", "7"));
    let plan = d.path().join("p.plan");
    let plan_cs = |files: &[&Path], extra: &[&str]| {
        let mut args = vec![
            "plan-cs",
            "--min-cs",
            "5",
            "--max-cs-samples",
            "4",
            "--seed",
            "3",
        ];
        args.extend(extra);
        args.extend(files.iter().map(|p| s(p)));
        args.extend(["--output", s(&plan)]);
        run(&args)
    };
    usage_error(&plan_cs(&[&a, &b7], &[]), &["b7", "--seed"]);
    usage_error(&plan_cs(&[&a], &[]), &["were not counted"]);
    usage_error(&plan_cs(&[&a, &a, &b], &[]), &["overlap"]);
    usage_error(&plan_cs(&[&a, &b], &["--seed", "9"]), &["--seed"]);
    assert!(!plan.exists(), "nothing written on refusal");
    // A damaged count file: exit 1, the file named.
    let mut bytes = std::fs::read(&b).expect("read");
    let at = bytes.len() - 40;
    bytes[at] ^= 1;
    let bad = d.path().join("bad.counts");
    std::fs::write(&bad, bytes).expect("write");
    fails_with(&plan_cs(&[&a, &bad], &[]), &["bad.counts"]);
    ok(&plan_cs(&[&a, &b], &[]));
    // A build with other filter options, or without a plan, is refused.
    let out = d.path().join("o.spill");
    let o = build(
        &u,
        &out,
        &[
            "--shard",
            "0/2",
            "--cs-plan",
            s(&plan),
            "--drop-null-target",
            "--min-cs",
            "6",
            "--max-cs-samples",
            "4",
            "--seed",
            "3",
        ],
    );
    usage_error(&o, &["p.plan", "--min-cs"]);
    usage_error(
        &build(&u, &out, &["--shard", "0/2", "--min-cs", "5"]),
        &["--cs-plan"],
    );
    // Files changed since they were counted.
    let first = std::fs::read_dir(&u)
        .expect("ls")
        .flatten()
        .map(|e| e.path())
        .min()
        .expect("a file");
    let mut data = std::fs::read(&first).expect("read");
    data.extend_from_slice(b"");
    std::fs::remove_file(&first).expect("rm");
    gen(
        &d.path().join("other"),
        &["--symbols", "1", "--rows", "10", "--features", "3"],
    );
    std::fs::copy(d.path().join("other/S0000.parquet"), &first).expect("copy");
    let mut args = vec!["--shard", "0/2", "--cs-plan", s(&plan)];
    args.extend(FILTERS);
    usage_error(
        &build(&u, &out, &args),
        &["changed since they were counted"],
    );
    assert!(!out.exists());
}

#[test]
fn a_manifest_on_disk_keeps_its_generations() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universe(d.path(), &[]);
    let first = sharded(d.path(), &u, 2, false);
    let manifest = d.path().join("dataset.json");
    let plan2 = d.path().join("cs-2.plan");
    let mut args = vec!["manifest"];
    args.extend(first.iter().map(|p| s(p)));
    args.extend(["--cs-plan", s(&plan2), "--output", s(&manifest)]);
    ok(&run(&args));
    let written = std::fs::read(&manifest).expect("manifest");
    ok(&run(&args)); // the same dataset: nothing changes
    assert_eq!(std::fs::read(&manifest).expect("manifest"), written);
    let second = sharded(d.path(), &u, 3, false);
    let plan3 = d.path().join("cs-3.plan");
    let mut args = vec!["manifest"];
    args.extend(second.iter().map(|p| s(p)));
    args.extend(["--cs-plan", s(&plan3), "--output", s(&manifest)]);
    usage_error(
        &run(&args),
        &["dataset.json", "--replace", "dataset.g1.json"],
    );
    args.push("--replace");
    ok(&run(&args));
    assert_eq!(
        std::fs::read(d.path().join("dataset.g1.json")).expect("generation 1"),
        written
    );
    ok(&run(&["verify", s(&manifest)]));
    ok(&run(&["verify", s(&d.path().join("dataset.g1.json"))]));
    ok(&run(&["clean", s(&manifest), "--keep-generations", "0"]));
    assert!(!d.path().join("dataset.g1.json").exists());
    assert!(
        first.iter().all(|p| !p.exists()),
        "the shards only generation 1 named are gone"
    );
    assert!(second.iter().all(|p| p.exists()));
    ok(&run(&["verify", s(&manifest)]));
    let leftovers: Vec<_> = std::fs::read_dir(d.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no lock or temporary file left: {leftovers:?}"
    );
}
