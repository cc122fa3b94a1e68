//! Issue 21: see `mod.rs`. Item 8: shape flags out of range (the CLI and the config file) are
//! usage errors naming the flag and its range, and a refused budget reports the shape it priced.
//! Item 9: `--order time` on symbols stored newest-first (one run each, read backwards), a run
//! cap that follows the budget, and `inspect` predicting both.

use std::path::Path;

use super::small;
use crate::common::*;
use crate::order::assert_permuted;

const T0: i64 = 1_700_000_000_000_000_000;
const STEP: i64 = 60_000_000_000;

#[test]
fn i21_08_shape_flags_out_of_range_are_usage_errors_naming_the_range() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = small(d.path(), "2", "100");
    let out = d.path().join("o.spill");
    let capacity = ["--channel-capacity", "at least 1 and at most 65536"];
    let threads = ["--threads", "at least 1 and at most 1024"];
    let batch = ["--batch-rows", "at least 1 and at most 16777216"];
    let budget = ["--memory-budget", "1 byte to 1e18 bytes"];
    let cases: [(&[&str], &[&str]); 12] = [
        (&["--channel-capacity", "4611686018427387904"], &capacity),
        (&["--channel-capacity", "18446744073709551615"], &capacity),
        (&["--channel-capacity", "1000000"], &capacity),
        (&["--channel-capacity", "0"], &capacity),
        (
            &[
                "--threads",
                "18446744073709551615",
                "--memory-budget",
                "1000000TB",
            ],
            &threads,
        ),
        (&["--threads", "0"], &threads),
        (&["--batch-rows", "0"], &batch),
        (&["--batch-rows", "18446744073709551615"], &batch),
        (&["--memory-budget", "0"], &budget),
        (&["--memory-budget", "18446744073709551615"], &budget),
        (&["--memory-budget", "2000000TB"], &budget),
        (
            &["--memory-budget", "1e30GiB"],
            &["--memory-budget", "1e30GiB"],
        ),
    ];
    for (flags, needles) in cases {
        let o = build(&u, &out, flags);
        usage_error(&o, needles);
        assert!(!out.exists(), "{flags:?} left an output");
    }
}

#[test]
fn i21_08_the_config_file_has_the_same_limits() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = small(d.path(), "2", "100");
    let out = d.path().join("o.spill");
    let cfg = d.path().join("b.toml");
    for (line, needles) in [
        (
            "channel-capacity = 4611686018427387904",
            ["--channel-capacity", "at least 1 and at most 65536"],
        ),
        (
            "threads = 100000",
            ["--threads", "at least 1 and at most 1024"],
        ),
        (
            "batch-rows = 0",
            ["--batch-rows", "at least 1 and at most 16777216"],
        ),
        ("memory-budget = \"0\"", ["--memory-budget", "1e18 bytes"]),
    ] {
        let text = format!(
            "input = {:?}\noutput = {:?}\ntarget = \"target\"\n{line}\n",
            s(&u),
            s(&out)
        );
        std::fs::write(&cfg, text).expect("write config");
        let o = run(&["build", "--config", s(&cfg), "--quiet"]);
        usage_error(&o, &needles);
        assert!(!out.exists(), "{line} left an output");
    }
}

/// The estimate in a refusal is the shape the flags ask for: 65,536 slices of 65,536 rows queued
/// per reader are 32 GiB, not the 38 MiB of one slice.
#[test]
fn i21_08_a_refused_budget_prices_the_capacity_asked_for() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = small(d.path(), "2", "100");
    let out = d.path().join("o.spill");
    let o = build(
        &u,
        &out,
        &["--channel-capacity", "65536", "--batch-rows", "65536"],
    );
    fails_with(&o, &["cannot be met", "channel capacity 65536"]);
    let e = stderr(&o);
    let needed: u64 = e
        .split("about ")
        .nth(1)
        .and_then(|r| r.split(" MiB").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no estimate in {e}"));
    assert!(needed >= 32 << 10, "{e}");
    assert!(!out.exists());
}

/// One symbol of `n` rows whose times come from `time(i)`, a target and a feature.
fn symbol(u: &Path, name: &str, n: i64, time: impl Fn(i64) -> i64) {
    write_parquet(
        &u.join(format!("{name}.parquet")),
        vec![
            ("ts", ts_ns((0..n).map(&time).collect())),
            ("target", f64s((0..n).map(|i| i as f64).collect())),
            ("f0", f64s((0..n).map(|i| (i % 97) as f64 - 0.5).collect())),
        ],
        false,
    );
}

/// The summary's JSON of a build that succeeded.
fn summary(o: &std::process::Output) -> serde_json::Value {
    ok(o);
    serde_json::from_str(&stdout(o)).expect("summary json")
}

#[test]
fn i21_09_a_symbol_stored_newest_first_is_one_run_read_backwards() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    let n = 300_000i64;
    // Newest first; newest first in pairs of equal times (ties keep their row order); oldest
    // first on the same times.
    symbol(&u, "DOWN", n, |i| T0 + (n - 1 - i) * STEP);
    symbol(&u, "PAIRS", n, |i| T0 + ((n - 1 - i) / 2) * STEP);
    symbol(&u, "UP", n, |i| T0 + i * STEP);
    let (sym, time) = (d.path().join("s.spill"), d.path().join("t.spill"));
    ok(&build(&u, &sym, &[]));
    let o = run(&build_args(
        &u,
        &time,
        &["--order", "time", "--summary", "-", "--quiet"],
    ));
    let j = summary(&o);
    assert_eq!(j["transpose"]["runs"], 3, "{j}");
    assert_permuted(&sym, &time);
    // inspect foresees the same.
    let o = run(&["inspect", "--input", s(&u), "--order", "time", "--json"]);
    ok(&o);
    let r: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("inspect json");
    assert_eq!(r["time_major"]["runs"], 3, "{r}");
    assert!(r["time_major"]["refusal"].is_null(), "{r}");
}

/// 280,000 rows whose time turns back every other row (0, 10, 5, 15, ...): 140,000 runs, more
/// than the 131,072 the merge held whatever the budget. A small budget refuses them, as
/// `inspect` says; a larger one builds them.
#[test]
fn i21_09_the_run_cap_follows_the_budget_and_inspect_predicts_it() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    symbol(&u, "ZIGZAG", 280_000, |i| {
        T0 + ((i / 2) * 5 + (i % 2) * 10) * STEP
    });
    let inspect = |budget: &str| -> serde_json::Value {
        let o = run(&[
            "inspect",
            "--input",
            s(&u),
            "--target",
            "target",
            "--order",
            "time",
            "--memory-budget",
            budget,
            "--json",
        ]);
        ok(&o);
        serde_json::from_str(&stdout(&o)).expect("inspect json")
    };
    let time = d.path().join("t.spill");
    let small = inspect("96MiB");
    assert_eq!(small["time_major"]["runs"], 140_000, "{small}");
    let refusal = small["time_major"]["refusal"].as_str().unwrap_or_default();
    assert!(refusal.contains("140000 runs"), "{small}");
    let o = build(&u, &time, &["--order", "time", "--memory-budget", "96MiB"]);
    fails_with(&o, &["--order time", "runs", "--memory-budget"]);
    assert!(!time.exists());

    let large = inspect("512MiB");
    assert!(large["time_major"]["refusal"].is_null(), "{large}");
    assert!(large["time_major"]["max_runs"].as_u64() > Some(140_000));
    let o = run(&build_args(
        &u,
        &time,
        &[
            "--order",
            "time",
            "--memory-budget",
            "512MiB",
            "--summary",
            "-",
            "--quiet",
        ],
    ));
    let j = summary(&o);
    assert_eq!(j["transpose"]["runs"], 140_000, "{j}");
    let sym = d.path().join("s.spill");
    ok(&build(&u, &sym, &[]));
    assert_permuted(&sym, &time);
}

/// Item 9 (re-probe): `inspect --order time` chooses the memory shape as the build does, charging
/// what planning left resident, so it never predicts a build that the budget then refuses.
#[test]
fn i21_09_inspect_refuses_the_budgets_the_build_refuses() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    symbol(&u, "A", 300_000, |i| (300_000 - i) * 1000);
    symbol(&u, "B", 300_000, |i| i * 1000);
    for mib in [36, 40, 44, 48] {
        let budget = format!("{mib}MiB");
        let o = build(
            &u,
            &d.path().join("o.spill"),
            &["--order", "time", "--memory-budget", &budget],
        );
        let refused = o.status.code() == Some(1) && stderr(&o).contains("cannot be met");
        let i = run(&[
            "inspect",
            "--input",
            s(&u),
            "--target",
            "target",
            "--order",
            "time",
            "--memory-budget",
            &budget,
            "--json",
        ]);
        ok(&i);
        let j: serde_json::Value = serde_json::from_str(&stdout(&i)).expect("json");
        if refused {
            assert!(
                j["budget_error"].is_string(),
                "{budget}: the build refused ({}) but inspect predicted {}",
                stderr(&o),
                j["estimated_budget"]
            );
        }
    }
}
