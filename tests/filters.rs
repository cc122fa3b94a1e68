//! Cross-sectional filters (`--drop-null-target`, `--min-cs`, `--max-cs-samples`): compared with an
//! independent pandas computation on universes written by pyarrow and polars; sampling exact at K,
//! deterministic whatever the threads, sensitive to the seed, and uniform (chi-square).

use std::path::Path;

use proptest::prelude::*;
use serde_json::Value;

use crate::common::*;

fn make(py: &Path, out: &Path, writer: &str, extra: &[&str]) {
    let mut args = vec!["make", s(out), "--writer", writer];
    args.extend_from_slice(extra);
    crate::common::py(py, "cs_oracle.py", &args);
}

/// Options for the oracle: everything but the seed (sampling is checked by its properties).
fn oracle_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut it = extra.iter().peekable();
    while let Some(&a) = it.next() {
        if a == "--seed" {
            it.next();
        } else {
            out.push(a);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Random filter settings on pyarrow- and polars-written universes, whose symbols may repeat
    /// timestamps, match pandas.
    #[test]
    fn filters_match_an_independent_pandas_computation(
        polars in any::<bool>(),
        repeat in any::<bool>(),
        drop in any::<bool>(),
        min_cs in prop::option::of(0u64..9),
        k in prop::option::of(1u64..6),
        max_rows in prop::option::of(100u64..350),
        seed in 0u64..1000,
    ) {
        let Some(py) = python() else { return Ok(()) };
        let d = tempfile::tempdir().expect("tempdir");
        let u = d.path().join("u");
        let writer = if polars { "polars" } else { "pyarrow" };
        let sd = seed.to_string();
        let mut opts = vec!["--seed", sd.as_str()];
        if repeat { opts.push("--repeat"); }
        make(&py, &u, writer, &opts);
        let (m, kk, mr) = (min_cs.map(|v| v.to_string()), k.map(|v| v.to_string()), max_rows.map(|v| v.to_string()));
        let mut extra: Vec<&str> = Vec::new();
        if drop { extra.push("--drop-null-target"); }
        if let Some(v) = &m { extra.extend(["--min-cs", v]); }
        if let Some(v) = &kk { extra.extend(["--max-cs-samples", v, "--seed", &sd]); }
        if let Some(v) = &mr { extra.extend(["--max-rows", v]); }
        let out = d.path().join("o.spill");
        ok(&build(&u, &out, &extra));
        let mut args = vec![s(&u), s(&out), "--target", "target"];
        args.extend(oracle_args(&extra));
        let mut full = vec!["check"];
        full.extend(args);
        let said = crate::common::py(&py, "cs_oracle.py", &full);
        prop_assert!(said.starts_with("OK"), "{}", said);
    }
}

#[test]
fn sampling_is_deterministic_across_threads_and_sensitive_to_the_seed() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    gen(
        &u,
        &[
            "--symbols",
            "12",
            "--rows",
            "2000",
            "--features",
            "3",
            "--row-group-rows",
            "500",
        ],
    );
    let reference = d.path().join("ref.spill");
    let sample = ["--max-cs-samples", "4", "--seed", "11", "--min-cs", "3"];
    ok(&build(&u, &reference, &sample));
    let want = std::fs::read(&reference).expect("read");
    for shape in [
        ["--threads", "1", "--batch-rows", "7"],
        ["--threads", "2", "--batch-rows", "333"],
        ["--threads", "8", "--batch-rows", "4096"],
    ] {
        let out = d.path().join("o.spill");
        let mut extra = sample.to_vec();
        extra.extend(shape);
        ok(&build(&u, &out, &extra));
        assert!(
            std::fs::read(&out).expect("read") == want,
            "bytes differ with {shape:?}"
        );
    }
    let other = d.path().join("seed12.spill");
    ok(&build(
        &u,
        &other,
        &["--max-cs-samples", "4", "--seed", "12", "--min-cs", "3"],
    ));
    let (a, b) = (
        spill::open(&reference).expect("open"),
        spill::open(&other).expect("open"),
    );
    assert_eq!(a.nrows(), b.nrows(), "the same counts per timestamp");
    assert_ne!(
        a.column::<u32>("symbol").expect("codes"),
        b.column::<u32>("symbol").expect("codes"),
        "another seed, another choice"
    );
    let opts = &a.build_metadata()["options"]["filters"];
    assert_eq!(
        (
            opts["max_cs_samples"].as_u64(),
            opts["seed"].as_u64(),
            opts["min_cs"].as_u64()
        ),
        (Some(4), Some(11), Some(3))
    );
}

/// 10 symbols on the same 3,000 timestamps, K = 3: each symbol should be picked 900 times.
/// Chi-square with 9 degrees of freedom must stay under 27.88 (p = 0.001), for several seeds.
#[test]
fn sampling_is_uniform_over_symbols() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    gen(
        &u,
        &[
            "--symbols",
            "10",
            "--rows",
            "3000",
            "--features",
            "1",
            "--ragged",
            "0",
        ],
    );
    for seed in ["1", "2", "3", "4", "5"] {
        let out = d.path().join(format!("o{seed}.spill"));
        ok(&build(&u, &out, &["--max-cs-samples", "3", "--seed", seed]));
        let f = spill::open(&out).expect("open");
        assert_eq!(f.nrows(), 9000, "exactly K rows at every timestamp");
        let mut counts = [0f64; 10];
        for &c in f.column::<u32>("symbol").expect("codes") {
            counts[c as usize] += 1.0;
        }
        let chi2: f64 = counts
            .iter()
            .map(|&o| (o - 900.0) * (o - 900.0) / 900.0)
            .sum();
        assert!(
            chi2 < 27.88,
            "seed {seed}: chi-square {chi2:.1} over 27.88 (counts {counts:?})"
        );
    }
}

#[test]
fn edge_cases_empty_output_k_beyond_the_universe_and_trivial_n() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    gen(&u, &["--symbols", "5", "--rows", "800", "--features", "2"]);
    let plain = d.path().join("plain.spill");
    ok(&build(&u, &plain, &[]));
    let base = spill::open(&plain).expect("open");
    let same_rows = |extra: &[&str]| {
        let out = d.path().join("x.spill");
        ok(&build(&u, &out, extra));
        let f = spill::open(&out).expect("open");
        for (i, c) in base.columns().iter().enumerate() {
            assert!(
                f.column_bytes(i) == base.column_bytes(i),
                "{extra:?} changed column {}",
                c.name
            );
        }
    };
    same_rows(&["--min-cs", "0"]);
    same_rows(&["--min-cs", "1"]);
    same_rows(&["--max-cs-samples", "1000", "--seed", "3"]);

    let empty = d.path().join("empty.spill");
    let summary = d.path().join("s.json");
    ok(&build(
        &u,
        &empty,
        &["--min-cs", "99", "--summary", s(&summary)],
    ));
    let f = spill::open(&empty).expect("an empty output is a valid file");
    assert_eq!(f.nrows(), 0);
    assert_eq!(
        f.symbols().len(),
        5,
        "the symbol table stays, with empty ranges"
    );
    assert!(f.symbols().iter().all(|s| s.is_empty()));
    assert!(f.verify().is_ok());
    ok(&run(&["verify", s(&empty)]));
    let j: Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("summary")).expect("json");
    assert_eq!(j["filter_stats"]["removed_min_cs"], base.nrows());
}

#[test]
fn invalid_filter_options_and_memory_limits() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    gen(
        &u,
        &[
            "--symbols",
            "1",
            "--rows",
            "120000",
            "--features",
            "1",
            "--ragged",
            "0",
        ],
    );
    let out = d.path().join("o.spill");
    usage_error(
        &run(&[
            "build",
            "--input",
            s(&u),
            "--output",
            s(&out),
            "--drop-null-target",
        ]),
        &["--drop-null-target needs --target"],
    );
    usage_error(
        &build(&u, &out, &["--max-cs-samples", "0"]),
        &["--max-cs-samples must be at least 1"],
    );
    // 120,000 distinct timestamps cannot be counted in half of a 10 MiB budget: refused up front.
    fails_with(
        &build(&u, &out, &["--min-cs", "2", "--memory-budget", "10MiB"]),
        &["distinct timestamps", "raise --memory-budget"],
    );
    assert!(!out.exists());
    // Inspect reports what the filters would do, and their memory.
    let o = run(&[
        "inspect",
        "--input",
        s(&u),
        "--target",
        "target",
        "--min-cs",
        "1",
        "--max-cs-samples",
        "1",
        "--json",
    ]);
    ok(&o);
    let j: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(j["filter_stats"]["distinct_timestamps"], 120_000);
    assert!(j["filter_stats"]["memory_bytes"]
        .as_u64()
        .is_some_and(|b| b > 0));
}
