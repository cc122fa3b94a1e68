//! Reliability under faults and bad input: the bad-input matrix in both `--on-error` modes, kills
//! at random moments, readers holding the old file during a rebuild, file-descriptor limits, and
//! files that change after planning (the filesystem itself: `filesystem`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// Each bad input (see tests/py/make_bad.py), the words its error must contain, and whether it is
/// confined to symbol C (skippable) or fails the whole universe.
const MATRIX: &[(&str, &[&str], bool)] = &[
    (
        "zero",
        &["C.parquet", "reading the footer", "too small"],
        true,
    ),
    ("truncated", &["C.parquet", "reading the footer"], true),
    ("garbage", &["C.parquet", "reading the footer"], true),
    ("corrupt_footer", &["C.parquet", "reading the footer"], true),
    (
        "page_checksum",
        &["C.parquet", "decoding column \"f1\"", "checksum mismatch"],
        true,
    ),
    (
        "target_string",
        &[
            "C.parquet",
            "\"target\"",
            "Utf8",
            "cannot be used as the target",
        ],
        true,
    ),
    (
        "feature_list",
        &["C.parquet", "\"f1\"", "List", "cannot be used as a feature"],
        true,
    ),
    (
        "feature_string",
        &["C.parquet", "\"f1\"", "Utf8", "cannot be used as a feature"],
        true,
    ),
    (
        "time_overflow",
        &["C.parquet", "\"ts\"", "does not fit int64 nanoseconds"],
        true,
    ),
    ("no_time", &["C.parquet", "no time column \"ts\""], true),
    ("symlink_loop", &["C.parquet", "symbolic links"], true),
    ("not_utf8", &[".parquet", "not valid UTF-8"], true),
    (
        "duplicate_layouts",
        &["symbol \"A\" is given twice", "A.parquet", "symbol=A"],
        false,
    ),
];

/// A file with 20,000 columns: with every numeric column as a feature the memory needed is refused
/// up front; with two features chosen, the build succeeds within its planned bound.
#[test]
fn absurdly_many_columns_fail_up_front_or_fit_the_plan() {
    let Some(py) = python() else { return };
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    make_bad(&py, &u, "many_columns");
    let out = d.path().join("o.spill");
    let o = run(&build_args(&u, &out, &[]));
    fails_with(&o, &["memory budget", "C.parquet", "raise --memory-budget"]);
    assert!(!out.exists());
    let summary = d.path().join("s.json");
    ok(&run(&bad_build_args(
        &u,
        &out,
        &["--quiet", "--summary", s(&summary)],
    )));
    let j: Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("summary")).expect("json");
    let (peak, bound) = (
        j["peak_rss_bytes"].as_u64().unwrap_or(0),
        j["planned_bound_bytes"].as_u64().unwrap_or(0),
    );
    assert!(
        peak <= bound,
        "peak RSS {peak} over the planned bound {bound}"
    );
}

fn make_bad(py: &Path, dir: &Path, case: &str) {
    crate::common::py(py, "make_bad.py", &[s(dir), case]);
}

/// A build of a bad-input case: the features every good symbol has.
fn bad_build_args<'a>(input: &'a Path, output: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = build_args(input, output, &["--features", "f0,f1"]);
    v.extend_from_slice(extra);
    v
}

#[test]
fn bad_input_matrix_under_fail_and_skip() {
    let Some(py) = python() else { return };
    let d = tempfile::tempdir().expect("tempdir");
    // The reference: the good symbols alone.
    let good = d.path().join("good");
    make_bad(&py, &good, "no_time");
    std::fs::remove_file(good.join("C.parquet")).expect("rm");
    pin_mtimes(&good);
    let reference = d.path().join("ref.spill");
    ok(&run(&bad_build_args(&good, &reference, &["--quiet"])));
    let want = std::fs::read(&reference).expect("read");

    for &(case, needles, per_symbol) in MATRIX {
        let u = d.path().join(case);
        make_bad(&py, &u, case);
        pin_mtimes(&u);
        let out = d.path().join(format!("{case}.spill"));
        let o = run(&bad_build_args(&u, &out, &[]));
        fails_with(&o, needles);
        assert!(
            !out.exists(),
            "{case}: output left behind under --on-error fail"
        );

        let summary = d.path().join(format!("{case}.json"));
        let o = run(&bad_build_args(
            &u,
            &out,
            &["--on-error", "skip", "--quiet", "--summary", s(&summary)],
        ));
        if !per_symbol {
            fails_with(&o, needles);
            continue;
        }
        ok(&o);
        assert!(
            std::fs::read(&out).expect("read") == want,
            "{case}: skip output differs from a build without C"
        );
        let j: Value =
            serde_json::from_slice(&std::fs::read(&summary).expect("summary")).expect("json");
        let skipped = j["symbols_skipped"].as_array().expect("list");
        assert!(!skipped.is_empty(), "{case}: nothing reported skipped");
        let reason = skipped[0]["reason"].as_str().unwrap_or_default();
        for n in needles {
            assert!(
                reason.contains(n),
                "{case}: skip reason {reason:?} lacks {n:?}"
            );
        }
    }
}

/// A corrupted page without checksums: whatever the decoder makes of it, never a panic.
#[test]
fn corrupt_page_without_checksum_never_panics() {
    let Some(py) = python() else { return };
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    make_bad(&py, &u, "page_no_checksum");
    for mode in ["fail", "skip"] {
        let o = run(&bad_build_args(
            &u,
            &d.path().join("o.spill"),
            &["--on-error", mode],
        ));
        assert_no_panic(&o);
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "{mode}: {:?}",
            o.status
        );
    }
}

/// Files vanish, change or become unreadable between planning and reading.
#[test]
fn files_that_change_after_planning_are_errors_naming_them() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    gen(&u, &["--symbols", "3", "--rows", "500", "--features", "3"]);
    let cfg = spillway::BuildOptions {
        input: Some(u.clone()),
        output: Some(d.path().join("o.spill")),
        target: Some("target".into()),
        ..Default::default()
    }
    .resolve()
    .expect("config");
    let universe = spillway::internals::discover(&u).expect("discover");
    let plan = spillway::internals::plan(
        &universe,
        &cfg,
        &Default::default(),
        &spillway::Cancel::new(),
    )
    .expect("plan");
    let progress = spillway::Progress::hidden();

    let victim = u.join("S0001.parquet");
    let saved = std::fs::read(&victim).expect("read");
    std::fs::remove_file(&victim).expect("rm");
    let e = spillway::internals::execute_plan(&plan, &cfg, &progress).expect_err("vanished");
    let msg = format!("{e:#}");
    assert!(
        msg.contains("S0001.parquet") && msg.contains("No such file"),
        "{msg}"
    );
    assert!(!d.path().join("o.spill").exists());

    // Same name, other content: caught by size/mtime, never read as planned.
    let mut other = saved.clone();
    other.extend_from_slice(b"appended");
    std::fs::write(&victim, &other).expect("write");
    let e = spillway::internals::execute_plan(&plan, &cfg, &progress).expect_err("changed");
    assert!(
        format!("{e:#}").contains("changed while the build was running"),
        "{e:#}"
    );
    assert_eq!(
        entries(d.path()),
        vec!["u".to_string()],
        "no output or temporary file left"
    );
}

/// An unreadable file (permissions): the binary runs as an unprivileged user when we are root.
/// SIGKILL at random moments (plan, read, write, commit): the final path holds the previous
/// complete file, byte for byte; temporaries of dead builds are removed by the next build.
#[test]
fn killed_builds_never_leave_a_file_that_opens_as_complete() {
    let iterations: usize = std::env::var("SPILLWAY_KILL_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    gen(
        &u,
        &[
            "--symbols",
            "8",
            "--rows",
            "6000",
            "--features",
            "12",
            "--row-group-rows",
            "2000",
        ],
    );
    let outdir = d.path().join("out");
    std::fs::create_dir(&outdir).expect("mkdir");
    let out = outdir.join("train.spill");
    let args = [
        "build",
        "--input",
        s(&u),
        "--output",
        s(&out),
        "--target",
        "target",
        "--quiet",
    ];
    // The previous night's file, and how long a build takes.
    let t0 = Instant::now();
    ok(&run(&args));
    let full = t0.elapsed();
    let previous = std::fs::read(&out).expect("read");

    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let (mut completed, mut killed) = (0, 0);
    for i in 0..iterations {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = full.mul_f64((rng % 1000) as f64 / 1000.0 * 1.1);
        let mut child = spillway()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().expect("reap");
        if status.success() {
            completed += 1;
        } else {
            killed += 1;
        }
        // Either outcome: the final path holds a complete file identical to the previous one
        // (same inputs, same options: same bytes).
        let now = std::fs::read(&out).expect("the final path always holds a file");
        assert!(
            now == previous,
            "iteration {i}: the final path changed after a kill at {delay:?}"
        );
        let temps: Vec<String> = entries(&outdir)
            .into_iter()
            .filter(|n| n != "train.spill")
            .collect();
        assert!(
            temps.len() <= 1,
            "iteration {i}: temporaries pile up: {temps:?}"
        );
    }
    eprintln!(
        "kill loop: {iterations} iterations, {killed} killed mid-build, {completed} completed"
    );
    assert!(
        killed > iterations / 4,
        "the loop should kill most builds ({killed} of {iterations})"
    );
    // A later build removes the leftovers of dead ones; `clean` too.
    ok(&run(&args));
    assert_eq!(entries(&outdir), vec!["train.spill".to_string()]);
    ok(&run(&["verify", s(&out)]));
    if let Some(py) = python() {
        let code = format!(
            "import spillfile; f = spillfile.open({:?}); f.verify(); print(f.nrows)",
            s(&out)
        );
        let o = Command::new(&py)
            .args(["-c", &code])
            .env(
                "PYTHONPATH",
                Path::new(env!("CARGO_MANIFEST_DIR")).join("spill/python"),
            )
            .output()
            .expect("python");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let rows = spill::open(&out).expect("open").nrows();
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            rows.to_string(),
            "numpy and Rust disagree"
        );
    }
}

/// A reader holding the old file mapped keeps reading it, intact, while a rebuild replaces it;
/// a Python reader polls the path during the rebuild and always sees a complete file.
#[test]
fn readers_keep_the_old_file_during_a_rebuild() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    gen(&u, &["--symbols", "6", "--rows", "5000", "--features", "8"]);
    let out = d.path().join("train.spill");
    ok(&run(&build_args(
        &u,
        &out,
        &["--max-rows", "1000", "--quiet"],
    )));
    let old = spill::open(&out).expect("open");
    let old_target: Vec<f32> = old.column::<f32>("target").expect("target").to_vec();
    let py = python();
    let mut poller = py.as_ref().map(|py| {
        let code = r#"
import sys, time, spillfile
path, stop = sys.argv[1], time.time() + 20
seen = set()
while time.time() < stop:
    try:
        f = spillfile.open(path)
    except FileNotFoundError:
        continue
    f.verify()
    seen.add(f.nrows)
    f.close()
    if len(seen) == 2:
        break
print(sorted(seen))
"#;
        Command::new(py)
            .args(["-c", code, s(&out)])
            .env(
                "PYTHONPATH",
                Path::new(env!("CARGO_MANIFEST_DIR")).join("spill/python"),
            )
            .stdout(Stdio::piped())
            .spawn()
            .expect("python")
    });
    std::thread::sleep(Duration::from_millis(300));
    ok(&build(&u, &out, &[]));
    // The old mapping still reads the old bytes, and verifies.
    let now = old.column::<f32>("target").expect("target");
    let differ = now
        .iter()
        .zip(&old_target)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    assert_eq!(
        (now.len(), differ),
        (old_target.len(), 0),
        "the old mapping changed under a rebuild"
    );
    assert!(old.verify().is_ok());
    let new = spill::open(&out).expect("open");
    assert!(new.nrows() > old.nrows());
    if let Some(p) = poller.take() {
        let o = p.wait_with_output().expect("python");
        assert!(o.status.success(), "the polling reader failed");
        let seen = String::from_utf8_lossy(&o.stdout).trim().to_string();
        assert_eq!(
            seen,
            format!("[{}, {}]", old.nrows(), new.nrows()),
            "python saw {seen}"
        );
    }
}

/// Many symbols, few descriptors: 2,000 tiny files under `ulimit -n 64` (10,000 in
/// scripts/test-heavy.sh via SPILLWAY_MANY_FILES).
#[test]
fn many_tiny_files_under_a_low_descriptor_limit() {
    let n: usize = std::env::var("SPILLWAY_MANY_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    let n_s = n.to_string();
    gen(
        &u,
        &[
            "--symbols",
            &n_s,
            "--rows",
            "20",
            "--features",
            "3",
            "--ragged",
            "0",
        ],
    );
    let out = d.path().join("o.spill");
    let o = Command::new("prlimit")
        .args([
            "--nofile=64",
            "--",
            env!("CARGO_BIN_EXE_spillway"),
            "build",
            "--input",
            s(&u),
            "--output",
            s(&out),
            "--no-target",
            "--quiet",
        ])
        .output()
        .expect("prlimit");
    ok(&o);
    let f = spill::open(&out).expect("open");
    assert_eq!(f.symbols().len(), n);
    assert_eq!(f.nrows(), 20 * n as u64);
}

/// Planning thousands of files leaves memory with the allocator (the parsed footers) beyond the
/// plan's own estimate; the planned bound must still cover the measured peak.
#[test]
fn the_planned_bound_covers_the_peak_on_thousands_of_small_files() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    let args = ["--symbols", "3000", "--rows", "20", "--features", "100"];
    gen(&u, &[&args[..], &["--ragged", "0"]].concat());
    let (out, sum) = (d.path().join("o.spill"), d.path().join("s.json"));
    ok(&build(&u, &out, &["--summary", s(&sum)]));
    let j: Value = serde_json::from_slice(&std::fs::read(&sum).expect("summary")).expect("json");
    let peak = j["peak_rss_bytes"].as_u64().unwrap_or(u64::MAX);
    let bound = j["planned_bound_bytes"].as_u64().unwrap_or(0);
    assert!(peak <= bound, "peak {peak} above the planned bound {bound}");
}
