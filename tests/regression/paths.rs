//! Items 6-9, 12, 13: output paths, the summary's, closed pipes, and the errors of `verify`,
//! `inspect` and `clean`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

fn small(d: &Path) -> PathBuf {
    let u = d.join("u");
    gen(&u, &["--symbols", "2", "--rows", "200", "--features", "3"]);
    u
}

/// Item 6: an output that is an input, a summary that is the output, an output that is a
/// directory: refused before any work, nothing overwritten.
#[test]
fn i12_06_outputs_never_overwrite_inputs_or_each_other() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = small(d.path());
    let input = u.join("S0000.parquet");
    let before = std::fs::read(&input).expect("read");
    usage_error(
        &build(&u, &input, &[]),
        &["S0000.parquet", "is one of the input files"],
    );
    let dotted = u.join("../u/./S0000.parquet");
    usage_error(&build(&u, &dotted, &[]), &["is one of the input files"]);
    assert_eq!(
        std::fs::read(&input).expect("read"),
        before,
        "the input is untouched"
    );

    let out = d.path().join("o.spill");
    ok(&build(&u, &out, &[]));
    let built = std::fs::read(&out).expect("read");
    usage_error(
        &build(&u, &out, &["--summary", s(&out)]),
        &["--summary", "is the --output file"],
    );
    usage_error(
        &build(&u, &out, &["--summary", s(&input)]),
        &["is one of the input files"],
    );
    assert_eq!(
        std::fs::read(&out).expect("read"),
        built,
        "the output is untouched"
    );
    assert_eq!(std::fs::read(&input).expect("read"), before);

    let t = Instant::now();
    usage_error(&build(&u, d.path(), &[]), &["is a directory"]);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "refused before the build"
    );
}

/// Item 7: the summary goes straight to special files and `-`, and through symlinks, never
/// replacing them.
#[test]
fn i12_07_summary_to_stdout_and_through_symlinks() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = small(d.path());
    let out = d.path().join("o.spill");
    for target in ["-", "/dev/stdout"] {
        let o = build(&u, &out, &["--summary", target]);
        ok(&o);
        let j: Value = serde_json::from_str(&stdout(&o)).expect("summary on stdout");
        assert_eq!(j["symbols_read"], 2);
    }
    let real = d.path().join("real.json");
    std::fs::write(&real, "old").expect("write");
    let link = d.path().join("link.json");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    ok(&build(&u, &out, &["--summary", s(&link)]));
    assert!(std::fs::symlink_metadata(&link)
        .expect("lstat")
        .is_symlink());
    let j: Value = serde_json::from_slice(&std::fs::read(&real).expect("read")).expect("json");
    assert_eq!(j["symbols_read"], 2);
}

/// Item 8: a summary path that cannot be written fails before the build: the previous output
/// stays, and the exit code says so.
#[test]
fn i12_08_a_bad_summary_path_fails_first() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = small(d.path());
    let out = d.path().join("o.spill");
    let bad = d.path().join("nodir/x.json");
    usage_error(&build(&u, &out, &["--summary", s(&bad)]), &["nodir"]);
    assert!(!out.exists(), "nothing was built");
    usage_error(
        &build(&u, &out, &["--summary", s(d.path())]),
        &["is a directory"],
    );
}

/// Runs spillway with the stdout (or stderr) pipe closed by its reader before it writes.
fn with_closed(args: &[&str], stream: &str) -> std::process::Output {
    let mut c = spillway();
    c.args(args).stdin(Stdio::null());
    let mut child = match stream {
        "stdout" => c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn(),
        _ => c.stdout(Stdio::null()).stderr(Stdio::piped()).spawn(),
    }
    .expect("spawn");
    match stream {
        "stdout" => drop(child.stdout.take()),
        _ => drop(child.stderr.take()),
    }
    child.wait_with_output().expect("wait")
}

/// Item 9: a closed pipe ends a command quietly with exit 0, never a panic.
#[test]
fn i12_09_a_closed_pipe_is_not_a_panic() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = small(d.path());
    let out = d.path().join("o.spill");
    let g = d.path().join("g");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["inspect", "--input", s(&u), "--json"], "stdout"),
        (vec!["clean", "--dry-run", s(d.path())], "stdout"),
        (vec!["verify", s(&out)], "stdout"),
        (
            vec![
                "build",
                "--input",
                s(&u),
                "--output",
                s(&out),
                "--target",
                "target",
            ],
            "stderr",
        ),
        (
            vec!["gen", "--output", s(&g), "--symbols", "1", "--rows", "10"],
            "stderr",
        ),
    ];
    ok(&build(&u, &out, &[]));
    for (args, stream) in cases {
        let o = with_closed(&args, stream);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{args:?} with {stream} closed: {o:?}"
        );
        assert_no_panic(&o);
    }
}

/// Item 12: `verify` of a directory says so; `verify --json` and `inspect --json` print a JSON
/// object on failure too.
#[test]
fn i12_12_errors_of_verify_and_inspect_are_clear_and_parseable() {
    let d = tempfile::tempdir().expect("tempdir");
    fails_with(
        &run(&["verify", s(d.path())]),
        &["is a directory, not a spill file"],
    );
    let missing = d.path().join("missing.spill");
    let o = run(&["verify", "--json", s(&missing)]);
    assert_eq!(o.status.code(), Some(1));
    let j: Value = serde_json::from_str(&stdout(&o)).expect("json on stdout");
    assert_eq!(j["ok"], false);
    assert!(j["error"]
        .as_str()
        .is_some_and(|e| e.contains("No such file")));
    let o = run(&["inspect", "--json", "--input", s(&missing)]);
    assert_eq!(o.status.code(), Some(1));
    let j: Value = serde_json::from_str(&stdout(&o)).expect("json on stdout");
    assert_eq!(j["ok"], false);
    assert!(j["error"]
        .as_str()
        .is_some_and(|e| e.contains("missing.spill")));
}

/// Item 13: `clean` of a missing path reports it and fails.
#[test]
fn i12_13_clean_of_a_missing_path_fails() {
    let d = tempfile::tempdir().expect("tempdir");
    let missing = d.path().join("nonexist");
    usage_error(&run(&["clean", s(&missing)]), &["nonexist", "No such file"]);
}
