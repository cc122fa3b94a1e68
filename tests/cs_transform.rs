//! `--cs-transform rank|zscore|winsorize=Q` (issue 26, item 3): each feature transformed within
//! each timestamp of a time-major build, against naive per-timestamp oracles computed from the
//! same build without the transform (ranks to the bit, z-scores and winsorized values within one
//! ulp), on random universes with NaN, nulls, ties and single-row timestamps; the target, time
//! and symbol columns untouched; the same bytes under any memory budget (many windows or one);
//! recorded in the file's options (so `--if-changed` tells transforms apart); refused without
//! `--order time`.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, TimestampNanosecondArray};

use crate::common::*;

const T0: i64 = 1_700_000_000_000_000_000;
const STEP: i64 = 60_000_000_000;

/// SplitMix64: a case is its seed.
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

/// `symbols` symbols on a grid of 60 times, each a ragged stretch with gaps, plus one symbol
/// alone on times of its own (single-row timestamps); features with ties (0.5 steps), NaN,
/// nulls, one constant feature (std 0) and one whose values are mostly NaN.
fn universe(dir: &Path, symbols: usize, seed: u64) {
    let mut rng = Rng(seed);
    for s in 0..=symbols {
        let ts: Vec<i64> = match s == symbols {
            // Off the grid: every row a timestamp of its own.
            true => (0..20).map(|k| T0 + k * STEP + 7).collect(),
            false => {
                let (a, b) = (rng.below(15), 30 + rng.below(31));
                (a..b)
                    .filter(|_| rng.below(6) != 0)
                    .map(|k| T0 + k as i64 * STEP)
                    .collect()
            }
        };
        let n = ts.len();
        let mut col = |kind: u8| -> ArrayRef {
            Arc::new(Float64Array::from(
                (0..n)
                    .map(|_| match (kind, rng.below(14)) {
                        (2, _) => Some(3.25),
                        (3, r) if r > 2 => Some(f64::NAN),
                        (_, 0) => None,
                        (_, 1) => Some(f64::NAN),
                        (1, _) => Some((rng.below(1 << 20) as f64 - 5e5) / 3.0),
                        _ => Some(rng.below(24) as f64 * 0.5 - 6.0),
                    })
                    .collect::<Vec<_>>(),
            ))
        };
        let (target, ties, wide, constant, sparse) = (col(0), col(0), col(1), col(2), col(3));
        let ts: ArrayRef = Arc::new(TimestampNanosecondArray::from(ts).with_timezone("UTC"));
        write_parquet(
            &dir.join(format!("S{s:02}.parquet")),
            vec![
                ("ts", ts),
                ("target", target),
                ("ties", ties),
                ("wide", wide),
                ("constant", constant),
                ("sparse", sparse),
            ],
            false,
        );
    }
}

/// The values of one cross-section, as f64, NaN kept.
type Section = Vec<f64>;

/// A transform of one cross-section's values, computed naively.
type Oracle<'a> = &'a dyn Fn(&Section) -> Section;

/// pandas' `rank(pct=True)`: (values below + (ties + 1) / 2) over the count, by counting.
fn rank(xs: &Section) -> Section {
    let valued: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    let n = valued.len() as f64;
    xs.iter()
        .map(|&x| match x.is_nan() {
            true => f64::NAN,
            false => {
                let below = valued.iter().filter(|&&y| y < x).count();
                let equal = valued.iter().filter(|&&y| y == x).count();
                (2 * below + equal + 1) as f64 * 0.5 / n
            }
        })
        .collect()
}

/// `(x - mean) / std` (ddof 0), 0 where std is 0.
fn zscore(xs: &Section) -> Section {
    let valued: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    let n = valued.len() as f64;
    let mean = valued.iter().sum::<f64>() / n;
    let std = (valued.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
    let constant = valued.iter().all(|&v| v == valued[0]);
    xs.iter()
        .map(|&x| match (x.is_nan(), constant || std == 0.0) {
            (true, _) => f64::NAN,
            (false, true) => 0.0,
            (false, false) => (x - mean) / std,
        })
        .collect()
}

/// Clipped at the linear quantiles `q` and `1 - q` of a full sort.
fn winsorize(xs: &Section, q: f64) -> Section {
    let mut sorted: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    if sorted.is_empty() {
        return xs.clone();
    }
    sorted.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        let h = (sorted.len() - 1) as f64 * q;
        let (i, t) = (h.floor() as usize, h - h.floor());
        let (a, b) = (sorted[i], sorted[(i + 1).min(sorted.len() - 1)]);
        a + (b - a) * t
    };
    let (lo, hi) = (quantile(q), quantile(1.0 - q));
    xs.iter().map(|&x| x.clamp(lo, hi)).collect()
}

/// Ulps between two float32 values (0 for two NaN, huge for NaN against a number).
fn ulps(a: f32, b: f32) -> u64 {
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() {
            0
        } else {
            u64::MAX
        };
    }
    let key = |x: f32| {
        let b = (x + 0.0).to_bits() as i64;
        if b < 0x8000_0000 {
            b
        } else {
            0x8000_0000 - b
        }
    };
    key(a).abs_diff(key(b))
}

/// Asserts that every feature of `got` is `oracle` of `plain`'s, timestamp by timestamp, within
/// `max_ulps` float32 ulps (0: the same bits), and that the other columns are `plain`'s.
fn assert_transformed(plain: &Path, got: &Path, oracle: Oracle, max_ulps: u64) {
    let p = spill::open(plain).expect("plain opens");
    let g = spill::open(got).expect("transformed opens");
    let index = p.timestamps().expect("time-major");
    assert_eq!(g.timestamps(), Some(index));
    assert!(
        index.iter().any(|(_, r)| r.end - r.start == 1),
        "a single-row timestamp"
    );
    for name in ["ts", "symbol", "target"] {
        assert_eq!(
            p.column_bytes(p.column_index(name).expect("column")),
            g.column_bytes(g.column_index(name).expect("column")),
            "{name} is not transformed"
        );
    }
    for name in ["ties", "wide", "constant", "sparse"] {
        let (before, after): (&[f32], &[f32]) = (
            p.column(name).expect("feature"),
            g.column(name).expect("feature"),
        );
        for (_, rows) in index.iter() {
            let rows = rows.start as usize..rows.end as usize;
            let section: Section = before[rows.clone()].iter().map(|&x| f64::from(x)).collect();
            let want = oracle(&section);
            for (i, (&w, &a)) in want.iter().zip(&after[rows.clone()]).enumerate() {
                let d = ulps(w as f32, a);
                assert!(
                    d <= max_ulps,
                    "{name} row {}: {a} (want {w}, {d} ulps) in {section:?}",
                    rows.start + i
                );
            }
        }
    }
}

#[test]
fn each_transform_matches_a_naive_oracle_per_timestamp() {
    let d = tempfile::tempdir().expect("tempdir");
    for seed in [1, 2] {
        let u = d.path().join(format!("u{seed}"));
        universe(&u, 9, seed);
        let plain = d.path().join(format!("plain{seed}.spill"));
        ok(&build(&u, &plain, &["--order", "time"]));
        let cases: [(&str, Oracle, u64); 4] = [
            ("rank", &rank, 0),
            ("zscore", &zscore, 1),
            ("winsorize=0.1", &|x| winsorize(x, 0.1), 1),
            ("winsorize=0.3", &|x| winsorize(x, 0.3), 1),
        ];
        for (transform, oracle, max_ulps) in cases {
            let out = d.path().join(format!("{transform}-{seed}.spill"));
            ok(&build(
                &u,
                &out,
                &["--order", "time", "--cs-transform", transform],
            ));
            assert_transformed(&plain, &out, oracle, max_ulps);
            let f = spill::open(&out).expect("opens");
            assert_eq!(f.build_metadata()["options"]["cs_transform"], transform);
            ok(&run(&["verify", s(&out)]));
        }
    }
}

#[test]
fn float64_features_are_transformed_in_their_own_type() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    universe(&u, 5, 3);
    let (plain, ranked) = (d.path().join("p.spill"), d.path().join("r.spill"));
    ok(&build(&u, &plain, &["--order", "time", "--no-float32"]));
    ok(&build(
        &u,
        &ranked,
        &["--order", "time", "--no-float32", "--cs-transform", "rank"],
    ));
    let (p, r) = (
        spill::open(&plain).expect("p"),
        spill::open(&ranked).expect("r"),
    );
    let (before, after): (&[f64], &[f64]) = (
        p.column("wide").expect("f64"),
        r.column("wide").expect("f64"),
    );
    for (_, rows) in p.timestamps().expect("index").iter() {
        let rows = rows.start as usize..rows.end as usize;
        let want = rank(&before[rows.clone()].to_vec());
        for (w, a) in want.iter().zip(&after[rows]) {
            assert!(
                w.to_bits() == a.to_bits() || (w.is_nan() && a.is_nan()),
                "{w} {a}"
            );
        }
    }
}

#[test]
fn the_memory_budget_never_changes_a_byte() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    // 168,000 rows: several windows in 48 MiB (the least a window takes, 1 MiB, is 37,448
    // rows), one in 2 GiB; one reader thread against the default.
    gen(
        &u,
        &[
            "--symbols",
            "50",
            "--rows",
            "4000",
            "--features",
            "3",
            "--seed",
            "5",
        ],
    );
    for transform in ["rank", "zscore", "winsorize=0.05"] {
        let mut outputs = Vec::new();
        for (budget, threads) in [("48MiB", "1"), ("2GiB", "2")] {
            let out = d.path().join(format!("{transform}-{budget}.spill"));
            let summary = d.path().join(format!("{transform}-{budget}.json"));
            ok(&build(
                &u,
                &out,
                &[
                    "--order",
                    "time",
                    "--cs-transform",
                    transform,
                    "--memory-budget",
                    budget,
                    "--threads",
                    threads,
                    "--summary",
                    s(&summary),
                ],
            ));
            let json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&summary).expect("summary")).expect("json");
            let windows = json["transpose"]["windows"].as_u64().expect("windows");
            outputs.push((windows, std::fs::read(&out).expect("output")));
        }
        let (small, large) = (&outputs[0], &outputs[1]);
        assert!(
            small.0 > 2,
            "{transform}: the small budget took {} windows",
            small.0
        );
        assert!(large.0 < small.0, "{transform}: {} windows", large.0);
        assert!(
            small.1 == large.1,
            "{transform}: the budget changed the file"
        );
    }
}

#[test]
fn a_transform_without_time_major_output_or_a_bad_one_is_a_usage_error() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    universe(&u, 2, 4);
    let out = d.path().join("o");
    std::fs::create_dir(&out).expect("mkdir");
    let file = out.join("x.spill");
    let o = build(&u, &file, &["--cs-transform", "rank"]);
    usage_error(&o, &["--cs-transform rank", "--order time"]);
    let o = build(
        &u,
        &file,
        &["--order", "symbol", "--cs-transform", "zscore"],
    );
    usage_error(&o, &["--order time"]);
    for bad in ["median", "winsorize=0.5", "winsorize=-1", "winsorize"] {
        let o = build(&u, &file, &["--order", "time", "--cs-transform", bad]);
        usage_error(&o, &["--cs-transform", "winsorize=Q"]);
    }
    assert!(entries(&out).is_empty(), "{:?}", entries(&out));
}

#[test]
fn if_changed_tells_transforms_apart() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    universe(&u, 3, 6);
    let out = d.path().join("t.spill");
    let with = |extra: &[&str]| {
        let mut args = vec!["--order", "time", "--if-changed"];
        args.extend_from_slice(extra);
        let o = run(&build_args(&u, &out, &args));
        ok(&o);
        stderr(&o)
    };
    assert!(with(&["--cs-transform", "rank"]).contains("building"));
    assert!(with(&["--cs-transform", "rank"]).contains("is current"));
    // The same transform however it is written; another transform, or none, is another output.
    assert!(with(&["--cs-transform", "winsorize=0.01"]).contains("building"));
    assert!(with(&["--cs-transform", "winsorize=1e-2"]).contains("is current"));
    assert!(with(&["--cs-transform", "zscore"]).contains("building"));
    assert!(with(&[]).contains("building"));
    let f = spill::open(&out).expect("opens");
    assert!(f.build_metadata()["options"].get("cs_transform").is_none());
}
