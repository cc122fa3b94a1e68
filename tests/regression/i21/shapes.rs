//! Issue 21: see `mod.rs`. Item 8: shape flags out of range (the CLI and the config file) are
//! usage errors naming the flag and its range, and a refused budget reports the shape it priced.

use std::path::Path;

use crate::common::*;

fn small_universe(u: &Path) {
    gen(u, &["--symbols", "2", "--rows", "100", "--features", "2"]);
}

#[test]
fn i21_08_shape_flags_out_of_range_are_usage_errors_naming_the_range() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    small_universe(&u);
    let out = d.path().join("o.spill");
    let capacity = ["--channel-capacity", "between 1 and 65536"];
    let threads = ["--threads", "between 1 and 1024"];
    let batch = ["--batch-rows", "between 1 and 16777216"];
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
    let u = d.path().join("u");
    small_universe(&u);
    let out = d.path().join("o.spill");
    let cfg = d.path().join("b.toml");
    for (line, needles) in [
        (
            "channel-capacity = 4611686018427387904",
            ["--channel-capacity", "between 1 and 65536"],
        ),
        ("threads = 100000", ["--threads", "between 1 and 1024"]),
        ("batch-rows = 0", ["--batch-rows", "between 1 and 16777216"]),
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
    let u = d.path().join("u");
    small_universe(&u);
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
