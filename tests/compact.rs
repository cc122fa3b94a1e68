//! `spillway compact` (issue 26): a time-major dataset of several cuts (a build and its appends)
//! merged into fewer shards as the next generation: the same columns byte for byte as the
//! uncompacted shards and as the single `--order time` build, the same history, verified; an
//! append after it still equals the rebuild and still names the first differing timestamp of
//! changed history; symbol-cut datasets and damaged shards are refused, nothing left behind.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

/// A generated flat universe (`u`) and the times of its rows, sorted.
fn universe(dir: &Path) -> (PathBuf, Vec<i64>) {
    let u = dir.join("u");
    gen(&u, &["--symbols", "4", "--rows", "3000", "--features", "3"]);
    let probe = dir.join("probe.spill");
    ok(&build(&u, &probe, &["--order", "time"]));
    let times = spill::open(&probe)
        .expect("open")
        .column::<i64>("ts")
        .expect("ts")
        .to_vec();
    std::fs::remove_file(&probe).expect("rm");
    (u, times)
}

/// `u` up to time `cut` (every file rewritten: appends rebuild each symbol's history).
fn upto(u: &Path, dir: &Path, name: &str, cut: i64) -> PathBuf {
    let out = dir.join(name);
    std::fs::create_dir_all(&out).expect("mkdir");
    crate::append::truncate(u, &out, cut);
    out
}

fn manifest(m: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(m).expect("manifest")).expect("json")
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

/// Asserts that `a` and `b` hold the same columns, byte for byte (naming the first that differs).
fn same_columns(a: &[(String, Vec<u8>)], b: &[(String, Vec<u8>)], what: &str) {
    let names = |c: &[(String, Vec<u8>)]| c.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(a), names(b), "{what}: the columns");
    for ((name, x), (_, y)) in a.iter().zip(b) {
        assert!(
            x == y,
            "{what}: column {name} differs ({} and {} bytes)",
            x.len(),
            y.len()
        );
    }
}

/// Every column of `files`, concatenated.
fn columns(files: &[PathBuf]) -> Vec<(String, Vec<u8>)> {
    let opened: Vec<_> = files
        .iter()
        .map(|p| spill::open(p).expect("open"))
        .collect();
    let names: Vec<String> = opened[0].columns().iter().map(|c| c.name.clone()).collect();
    names
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            (
                n,
                opened
                    .iter()
                    .flat_map(|f| f.column_bytes(i).to_vec())
                    .collect(),
            )
        })
        .collect()
}

/// `u` up to each of `cuts`, in `dir`.
fn days(u: &Path, dir: &Path, cuts: [i64; 3]) -> Vec<PathBuf> {
    cuts.iter()
        .enumerate()
        .map(|(k, &c)| upto(u, dir, &format!("day{k}"), c))
        .collect()
}

/// A dataset of three cuts in `dir`: the build of `days[0]` in 2 time shards, then appends of
/// `days[1]` and `days[2]`. Returns its manifest.
fn three_cuts(days: &[PathBuf], dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let parts: Vec<PathBuf> = (0..2).map(|i| dir.join(format!("s{i}.spill"))).collect();
    for (i, p) in parts.iter().enumerate() {
        let shard = format!("{i}/2");
        ok(&build(&days[0], p, &["--order", "time", "--shard", &shard]));
    }
    let m = dir.join("dataset.json");
    ok(&run(&[
        "manifest",
        s(&parts[0]),
        s(&parts[1]),
        "--output",
        s(&m),
    ]));
    for day in &days[1..] {
        ok(&run(&["append", s(&m), "--input", s(day), "--quiet"]));
    }
    assert_eq!(manifest(&m)["generation"], 3);
    m
}

/// `spillway compact M EXTRA --summary -`; the report when it succeeds.
fn compact(m: &Path, extra: &[&str]) -> (std::process::Output, Value) {
    let mut args = vec!["compact", s(m), "--quiet", "--summary", "-"];
    args.extend_from_slice(extra);
    let o = run(&args);
    let report = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o, report)
}

/// Cut points at 60%, 80% and 90% of the rows.
fn cuts(times: &[i64]) -> [i64; 3] {
    [6, 8, 9].map(|k| times[times.len() * k / 10])
}

#[test]
fn compacting_three_cuts_gives_the_single_build_byte_for_byte() {
    let d = tempfile::tempdir().expect("tempdir");
    let (u, times) = universe(d.path());
    let c = cuts(&times);
    // The single builds of the universe up to the last cut, and of the whole.
    let (single, grown) = (d.path().join("single.spill"), d.path().join("grown.spill"));
    let last = upto(&u, d.path(), "last", c[2]);
    ok(&build(&last, &single, &["--order", "time"]));
    ok(&build(&u, &grown, &["--order", "time"]));
    let (one, whole) = (columns(std::slice::from_ref(&single)), columns(&[grown]));
    for n in [1usize, 2] {
        let dir = d.path().join(format!("n{n}"));
        let m = three_cuts(&days(&u, &dir, c), &dir);
        let before = manifest(&m);
        let old = shards(&m);
        assert_eq!(old.len(), 4, "2 build shards and 2 appended");
        let uncompacted = columns(&old);

        let (o, r) = compact(&m, &["--shards", &n.to_string()]);
        ok(&o);
        assert_eq!(r["compacted"], true, "{r}");
        assert_eq!(r["before"], 4);
        assert!(r["peak_rss_bytes"].as_u64().is_some_and(|b| b > 0));
        let after = manifest(&m);
        assert_eq!(after["generation"], 4);
        assert!(
            m.with_file_name("dataset.g3.json").exists(),
            "generation 3 kept"
        );
        assert_eq!(after["nrows"], before["nrows"]);
        assert_eq!(
            after["history"], before["history"],
            "the history an append checks"
        );
        let new = shards(&m);
        assert_eq!(new.len(), n);
        for (i, p) in new.iter().enumerate() {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            assert!(
                name.starts_with(&format!("compact-g4-{i:05}-of-{n:05}-")),
                "{name}"
            );
            let f = spill::open(p).expect("open");
            let shard = &f.build_metadata()["shard"];
            assert_eq!(shard["scope"], format!("{i}/{n}"));
            assert!(shard.get("after").is_none(), "one cut: no `after`");
        }
        assert!(
            old.iter().all(|p| p.exists()),
            "the old shards stay for generation 3"
        );
        let compacted = columns(&new);
        same_columns(
            &compacted,
            &uncompacted,
            "the concatenation of the old shards",
        );
        same_columns(&compacted, &one, "the single --order time build");
        if n == 1 {
            // One file: the single build's index, checksums and statistics too.
            let (a, b) = (
                spill::open(&new[0]).expect("open"),
                spill::open(&single).expect("open"),
            );
            assert_eq!(a.timestamps(), b.timestamps());
            assert_eq!(a.metadata().columns, b.metadata().columns);
        }
        ok(&run(&["verify", s(&m), "--deep"]));

        // Compacting again into as many shards of one cut: nothing to do.
        let (o, r) = compact(&m, &["--shards", &n.to_string()]);
        ok(&o);
        assert_eq!(r["compacted"], false);
        assert_eq!(manifest(&m)["generation"], 4);

        // An append after compaction equals the rebuild of the grown universe.
        ok(&run(&["append", s(&m), "--input", s(&u), "--quiet"]));
        let j = manifest(&m);
        assert_eq!(j["generation"], 5);
        assert_eq!(j["shards"].as_array().map(Vec::len), Some(n + 1));
        ok(&run(&["verify", s(&m)]));
        same_columns(
            &columns(&shards(&m)),
            &whole,
            "compacted + appended = rebuilt",
        );
        // The shards the compaction replaced go with the generations that name them.
        ok(&run(&["clean", s(&m), "--keep-generations", "0"]));
        assert!(
            old.iter().all(|p| !p.exists()),
            "the replaced shards are removed"
        );
        assert!(new.iter().all(|p| p.exists()), "the compacted shards stay");
        ok(&run(&["verify", s(&m), "--deep"]));
    }
}

#[test]
fn changed_history_is_still_located_after_compaction() {
    let d = tempfile::tempdir().expect("tempdir");
    let (u, times) = universe(d.path());
    let dir = d.path().join("ds");
    let m = three_cuts(&days(&u, &dir, cuts(&times)), &dir);
    ok(&compact(&m, &["--shards", "2"]).0);
    // Today's universe with one of S0001's values before the last cut rewritten: its history
    // differs from the first time it was changed at.
    let today = upto(&u, d.path(), "today", times[times.len() - 1]);
    let at = times[times.len() / 2];
    rewrite_one_value(&today.join("S0001.parquet"), at);
    let o = run(&["append", s(&m), "--input", s(&today), "--quiet"]);
    fails_with(&o, &["S0001:", "differ", &at.to_string(), "--rebuild"]);
    assert_eq!(manifest(&m)["generation"], 4, "nothing committed");
}

/// Adds 1 to `f000` of the row of `path` at time `at`.
fn rewrite_one_value(path: &Path, at: i64) {
    use arrow_array::{Array, Float64Array, TimestampNanosecondArray};
    let batch = read_parquet(path);
    let ts = batch
        .column_by_name("ts")
        .expect("ts")
        .as_any()
        .downcast_ref::<TimestampNanosecondArray>()
        .expect("ns")
        .clone();
    let cols: Vec<(&str, arrow_array::ArrayRef)> = batch
        .schema_ref()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| {
            let c = match (f.name().as_str(), c.as_any().downcast_ref::<Float64Array>()) {
                ("f000", Some(v)) => std::sync::Arc::new(
                    (0..v.len())
                        .map(|i| {
                            let hit = !ts.is_null(i) && ts.value(i) == at;
                            let bump = if hit { 1.0 } else { 0.0 };
                            (!v.is_null(i)).then(|| v.value(i) + bump)
                        })
                        .collect::<Float64Array>(),
                ) as arrow_array::ArrayRef,
                _ => c.clone(),
            };
            (f.name().as_str(), c)
        })
        .collect();
    write_parquet(path, cols, false);
}

#[test]
fn symbol_cut_datasets_damaged_shards_and_too_many_shards_are_refused() {
    let d = tempfile::tempdir().expect("tempdir");
    let (u, times) = universe(d.path());
    // A dataset cut on symbols.
    let sm = symbol_cut_dataset(&u, &d.path().join("sym"));
    fails_with(
        &compact(&sm, &[]).0,
        &["not a time-major dataset", "compact"],
    );

    let dir = d.path().join("ds");
    let m = three_cuts(&days(&u, &dir, cuts(&times)), &dir);
    // More shards than the dataset has.
    usage_error(
        &compact(&m, &["--shards", "5"]).0,
        &["--shards 5", "4 shards"],
    );
    // A byte of one shard's data flipped: its chunk checksum fails while it is copied.
    let victim = shards(&m)[2].clone();
    let offset = {
        let f = spill::open(&victim).expect("open");
        let c = f
            .metadata()
            .columns
            .iter()
            .find(|c| c.name == "f001")
            .expect("f001");
        c.offset + c.length / 2
    };
    let mut bytes = std::fs::read(&victim).expect("read");
    bytes[offset as usize] ^= 0x40;
    std::fs::write(&victim, bytes).expect("write");
    let before = std::fs::read(&m).expect("manifest");
    let o = compact(&m, &[]).0;
    let name = victim
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    fails_with(&o, &[&name, "\"f001\"", "damaged"]);
    assert_eq!(
        std::fs::read(&m).expect("manifest"),
        before,
        "nothing committed"
    );
    let left: Vec<String> = entries(&dir)
        .into_iter()
        .filter(|e| e.starts_with("compact-") || e.contains("spill-tmp"))
        .collect();
    assert!(left.is_empty(), "nothing left behind: {left:?}");
}

/// In a bucket: each shard fetched into the scratch directory in turn, the new one built there
/// and uploaded, the manifest replaced as the next generation; the bytes are the local
/// compaction's, and the scratch directory is left empty.
#[test]
fn a_dataset_in_a_bucket_compacts_as_on_disk() {
    let server = s3kit::Server::start(s3kit::Options {
        auth: None,
        ..s3kit::Options::default()
    })
    .expect("server");
    let bucket = server.bucket_dir("bkt");
    let remote = |args: &[&str]| {
        let mut c = spillway();
        c.envs(server.env()).args(args);
        c.output().expect("spillway runs")
    };
    let d = tempfile::tempdir().expect("tempdir");
    let (u, times) = universe(d.path());
    let scratch = d.path().join("scratch");
    std::fs::create_dir(&scratch).expect("mkdir");
    let days = days(&u, d.path(), cuts(&times));
    let url = "s3://bkt/ds/dataset.json";
    let parts: Vec<String> = (0..2).map(|i| format!("s3://bkt/ds/s{i}.spill")).collect();
    for (i, p) in parts.iter().enumerate() {
        let shard = format!("{i}/2");
        let mut a = build_args(&days[0], Path::new(p), &["--quiet", "--order", "time"]);
        a.extend(["--shard", &shard, "--scratch", s(&scratch)]);
        ok(&remote(&a));
    }
    ok(&remote(&[
        "manifest", &parts[0], &parts[1], "--output", url,
    ]));
    for day in &days[1..] {
        ok(&remote(&[
            "append",
            url,
            "--input",
            s(day),
            "--scratch",
            s(&scratch),
            "--quiet",
        ]));
    }
    ok(&remote(&[
        "compact",
        url,
        "--scratch",
        s(&scratch),
        "--quiet",
    ]));
    ok(&remote(&[
        "verify",
        "--deep",
        url,
        "--scratch",
        s(&scratch),
    ]));
    assert!(
        entries(&scratch).is_empty(),
        "the local copies are removed: {:?}",
        entries(&scratch)
    );
    // The same dataset on disk, of the same files (their stamps are recorded).
    let local = three_cuts(&days, &d.path().join("local"));
    ok(&compact(&local, &[]).0);
    let there = manifest(&bucket.join("ds/dataset.json"));
    assert_eq!(there["generation"], 4);
    assert!(
        bucket.join("ds/dataset.g3.json").exists(),
        "generation 3 kept"
    );
    let here = manifest(&local);
    assert_eq!(
        there["shards"], here["shards"],
        "the same shards, named alike"
    );
    let name = here["shards"][0]["path"].as_str().expect("path");
    assert!(
        std::fs::read(bucket.join("ds").join(name)).expect("object")
            == std::fs::read(local.with_file_name(name)).expect("local"),
        "the uploaded shard's bytes are the local compaction's"
    );
}
