//! The subcommands as a user runs them: gen, build (write modes, budget, config, summary), verify,
//! inspect, clean, demo. Universes here come from `spillway gen`; files from other writers are
//! covered by `contract`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

/// A small generated universe (drift, missing columns, several row groups), made once per call.
fn universe(dir: &Path, extra: &[&str]) -> PathBuf {
    let u = dir.join("u");
    let mut args = vec!["--symbols", "6", "--rows", "3000", "--features", "7"];
    args.extend_from_slice(&["--row-group-rows", "1000", "--seed", "7"]);
    args.extend_from_slice(extra);
    gen(&u, &args);
    u
}

#[test]
fn gen_is_deterministic_per_seed() {
    let d = tempfile::tempdir().expect("tempdir");
    let a = universe(&d.path().join("a"), &["--drift", "--missing"]);
    let b = universe(&d.path().join("b"), &["--drift", "--missing"]);
    for name in entries(&a) {
        assert_eq!(
            std::fs::read(a.join(&name)).ok(),
            std::fs::read(b.join(&name)).ok(),
            "{name} differs"
        );
    }
    let c = d.path().join("c");
    gen(
        &c,
        &[
            "--symbols",
            "6",
            "--rows",
            "3000",
            "--features",
            "7",
            "--row-group-rows",
            "1000",
            "--seed",
            "8",
        ],
    );
    assert_ne!(
        std::fs::read(a.join("S0001.parquet")).ok(),
        std::fs::read(c.join("S0001.parquet")).ok()
    );
}

#[test]
fn determinism_matrix_and_write_modes_give_identical_bytes() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universe(d.path(), &["--drift", "--missing", "--hive"]);
    let reference = d.path().join("ref.spill");
    ok(&build(&u, &reference, &[]));
    let want = std::fs::read(&reference).expect("read");
    let mut cases: Vec<Vec<&str>> = Vec::new();
    for threads in ["1", "2", "8"] {
        for cap in ["1", "3"] {
            for rows in ["1", "7", "1024"] {
                cases.push(vec![
                    "--threads",
                    threads,
                    "--channel-capacity",
                    cap,
                    "--batch-rows",
                    rows,
                ]);
            }
        }
    }
    for mode in ["mmap", "direct", "auto"] {
        cases.push(vec!["--write-mode", mode]);
    }
    for (i, extra) in cases.iter().enumerate() {
        let out = d.path().join(format!("o{i}.spill"));
        ok(&build(&u, &out, extra));
        assert!(
            std::fs::read(&out).expect("read") == want,
            "bytes differ with {extra:?}"
        );
        std::fs::remove_file(&out).expect("rm");
    }
    ok(&run(&["verify", s(&reference)]));
}

/// A filesystem that refuses O_DIRECT (ramfs; tmpfs accepts it since Linux 6.6): `auto` falls
/// back to mmap windows with the same bytes, `direct` fails clearly and leaves nothing behind.
/// The ramfs is mounted in a user namespace (`common::mount`); skipped where none is allowed.
#[test]
fn o_direct_refused_falls_back_to_mmap() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universe(d.path(), &[]);
    let on_disk = d.path().join("disk.spill");
    ok(&build(&u, &on_disk, &["--write-mode", "direct"]));
    let Some(ramfs) = mount(d.path(), "ramfs", "ramfs", "") else {
        skip("cannot mount a ramfs (no user namespace here: unshare -rm)");
        return;
    };
    let mnt = &ramfs.path;
    let auto = mnt.join("auto.spill");
    ok(&build(&u, &auto, &[]));
    assert_eq!(std::fs::read(&auto).ok(), std::fs::read(&on_disk).ok());
    let direct = mnt.join("direct.spill");
    fails_with(
        &build(&u, &direct, &["--write-mode", "direct"]),
        &["O_DIRECT", "direct.spill"],
    );
    assert_eq!(
        entries(mnt),
        vec!["auto.spill".to_string()],
        "a failed build left files"
    );
}

#[test]
fn verify_names_damaged_rows_and_refuses_truncated_files() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universe(d.path(), &[]);
    let out = d.path().join("o.spill");
    ok(&build(&u, &out, &[]));
    let v = run(&["verify", s(&out), "--json"]);
    ok(&v);
    let report: Value = serde_json::from_str(&stdout(&v)).expect("json");
    assert_eq!(report["ok"], true);

    let f = spill::open(&out).expect("open");
    let col = f.column_meta("f003").expect("f003").clone();
    let mut bytes = std::fs::read(&out).expect("read");
    bytes[col.offset as usize + 4 * 100] ^= 0x40;
    let bad = d.path().join("bad.spill");
    std::fs::write(&bad, &bytes).expect("write");
    fails_with(
        &run(&["verify", s(&bad)]),
        &["bad.spill", "\"f003\"", "rows [0,"],
    );

    let cut = d.path().join("cut.spill");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    fails_with(&run(&["verify", s(&cut)]), &["cut.spill", "truncated"]);
}

#[test]
fn a_budget_that_cannot_be_met_fails_up_front() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universe(d.path(), &[]);
    let out = d.path().join("o.spill");
    fails_with(
        &build(&u, &out, &["--memory-budget", "8MiB"]),
        &["memory budget", "raise --memory-budget"],
    );
    assert!(!out.exists());
    assert_eq!(entries(d.path()), vec!["u".to_string()]);
}

#[test]
fn summary_reports_rows_memory_and_waits() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universe(d.path(), &["--missing"]);
    let out = d.path().join("o.spill");
    let sum = d.path().join("summary.json");
    ok(&build(
        &u,
        &out,
        &["--summary", s(&sum), "--max-rows", "2500"],
    ));
    let j: Value = serde_json::from_slice(&std::fs::read(&sum).expect("summary")).expect("json");
    let f = spill::open(&out).expect("open");
    assert_eq!(j["rows"], f.nrows());
    assert_eq!(j["symbols_read"], 6);
    for sym in f.symbols() {
        assert_eq!(j["rows_per_symbol"][&sym.name], sym.len());
        assert!(sym.len() <= 2500);
    }
    assert!(j["peak_rss_bytes"].as_u64().is_some_and(|b| b > 0));
    assert!(j["budget"]["bound_bytes"]
        .as_u64()
        .is_some_and(|b| b <= 256 << 20));
    for k in [
        "readers_waited_seconds",
        "writer_waited_seconds",
        "input_mb_per_second",
        "rows_per_second",
    ] {
        assert!(j[k].as_f64().is_some(), "{k} missing");
    }
    assert!(matches!(
        j["bottleneck"].as_str(),
        Some("readers" | "writer")
    ));
}

#[test]
fn config_file_with_flags_over_it() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universe(d.path(), &[]);
    let out = d.path().join("o.spill");
    let cfg = d.path().join("b.toml");
    let text = format!(
        "input = {:?}\noutput = {:?}\ntarget = \"target\"\nfeatures = [\"f002\", \"f000\"]\nmax-rows = 100\n",
        s(&u),
        s(&out)
    );
    std::fs::write(&cfg, text).expect("write config");
    ok(&run(&[
        "build",
        "--config",
        s(&cfg),
        "--max-rows",
        "50",
        "--quiet",
    ]));
    let f = spill::open(&out).expect("open");
    let names: Vec<&str> = f.columns().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["ts", "symbol", "target", "f002", "f000"]);
    assert!(
        f.symbols().iter().all(|s| s.len() == 50),
        "the flag overrides max-rows = 100"
    );
    std::fs::write(&cfg, "inptu = \"x\"\n").expect("write");
    usage_error(&run(&["build", "--config", s(&cfg)]), &["b.toml", "inptu"]);
}

#[test]
fn the_example_config_parses() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/build.toml"))
            .expect("read");
    assert!(spillway::BuildOptions::from_toml(&text).is_ok());
}

#[test]
fn inspect_reports_union_types_and_estimates() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universe(d.path(), &["--drift", "--missing"]);
    let o = run(&["inspect", "--input", s(&u), "--target", "target", "--json"]);
    ok(&o);
    let j: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(j["symbols"], 6);
    assert_eq!(j["time_column"], "ts");
    let cols = j["columns"].as_array().expect("columns");
    let f001 = cols.iter().find(|c| c["name"] == "f001").expect("f001");
    assert_eq!(
        f001["types"]["Float32"], 1,
        "symbol S0003 drifts f001 to float32"
    );
    let f006 = cols.iter().find(|c| c["name"] == "f006").expect("f006");
    assert_eq!(f006["symbols"], 4, "S0002 and S0005 lack the last feature");
    assert!(j["estimated_output_bytes"].as_u64().is_some_and(|b| b > 0));
    assert!(j["estimated_budget"]["bound_bytes"].as_u64().is_some());
    ok(&run(&["inspect", "--input", s(&u)]));
}

#[test]
fn clean_removes_only_temps_of_dead_processes() {
    let d = tempfile::tempdir().expect("tempdir");
    let dead = d.path().join(".o.spill.999999999-0.spill-tmp");
    std::fs::write(&dead, b"partial").expect("write");
    let live = d
        .path()
        .join(format!(".o.spill.{}-0.spill-tmp", std::process::id()));
    std::fs::write(&live, b"partial").expect("write");
    ok(&run(&["clean", s(d.path())]));
    assert!(!dead.exists() && live.exists());
}

#[test]
fn demo_runs_the_main_job() {
    // Generating this universe peaks at ~300 MiB; the build of it at ~150 MiB.
    let o = run(&[
        "demo",
        "--symbols",
        "2",
        "--rows",
        "30000",
        "--features",
        "100",
    ]);
    ok(&o);
    assert!(stdout(&o).contains("chunks verified"), "{}", stdout(&o));
    let e = stderr(&o);
    assert!(e.contains("2 symbols"), "{e}");
    // The build's own peak, not the generator's (issue 12.15): within the 256 MiB budget.
    let after = "peak RSS ";
    let tail = &e[e.find(after).expect(after) + after.len()..];
    let peak: f64 = tail
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("MiB");
    assert!(peak < 256.0, "the demo reports more than the budget:\n{e}");
    assert!(
        !e.contains("\"rows_per_symbol\""),
        "the whole JSON is printed:\n{e}"
    );
}
