//! Fixtures shared by the integration tests: running the binary, the Python interpreter with
//! numpy/pyarrow/polars/duckdb, temporary directories, small mounted filesystems, and [`skip`],
//! through which a test that cannot run here says so.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;

/// The binary under test.
pub fn spillway() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spillway"));
    c.env("RUST_BACKTRACE", "1");
    c
}

/// Runs the binary with `args`; returns its output.
pub fn run(args: &[&str]) -> Output {
    spillway().args(args).output().expect("spillway runs")
}

/// Runs `spillway gen --output dir ARGS` and asserts it succeeded.
pub fn gen(dir: &Path, args: &[&str]) {
    let mut all = vec!["gen", "--output", s(dir)];
    all.extend_from_slice(args);
    ok(&run(&all));
}

/// Arguments of `spillway build --input INPUT --output OUTPUT --target target EXTRA...`.
pub fn build_args<'a>(input: &'a Path, output: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "build",
        "--input",
        s(input),
        "--output",
        s(output),
        "--target",
        "target",
    ];
    v.extend_from_slice(extra);
    v
}

/// Runs that build quietly (no progress bar, no summary on stderr; errors still print).
pub fn build(input: &Path, output: &Path, extra: &[&str]) -> Output {
    let mut args = build_args(input, output, &["--quiet"]);
    args.extend_from_slice(extra);
    run(&args)
}

/// Text of stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Text of stdout.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts success, printing stderr otherwise; never a panic message.
pub fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "spillway failed ({:?}):\n{}",
        o.status,
        stderr(o)
    );
    assert_no_panic(o);
}

/// Asserts failure with exit code 1, a message on stderr containing every `needle`, and no panic.
pub fn fails_with(o: &Output, needles: &[&str]) {
    exits_with(o, 1, needles);
}

/// Asserts a usage error: exit code 2, a message on stderr containing every `needle`, no panic.
pub fn usage_error(o: &Output, needles: &[&str]) {
    exits_with(o, 2, needles);
}

/// Asserts exit code `code`, a message on stderr containing every `needle`, and no panic.
pub fn exits_with(o: &Output, code: i32, needles: &[&str]) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "expected exit {code}, got {:?}\nstderr:\n{}",
        o.status,
        stderr(o)
    );
    let e = stderr(o);
    for n in needles {
        assert!(e.contains(n), "stderr lacks {n:?}:\n{e}");
    }
    assert_no_panic(o);
}

/// No "panicked at" anywhere in the output.
pub fn assert_no_panic(o: &Output) {
    let all = format!("{}{}", stdout(o), stderr(o));
    assert!(!all.contains("panicked at"), "a panic:\n{all}");
}

/// Entries of a directory (names), sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The Python interpreter with numpy, pyarrow, polars and duckdb (`SPILLWAY_PYTHON`, else
/// `target/venv/bin/python`, else `python3`). `None` when they are missing, recorded as a
/// [`skip`] of the calling test, unless `SPILLWAY_REQUIRE_PYTHON` is set, where that is a
/// failure.
pub fn python() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("SPILLWAY_PYTHON").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python")),
        Some(PathBuf::from("python3")),
    ];
    for py in candidates.into_iter().flatten() {
        let ok = Command::new(&py)
            .args(["-c", "import numpy, pyarrow, polars, duckdb"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(py);
        }
    }
    if std::env::var_os("SPILLWAY_REQUIRE_PYTHON").is_some() {
        panic!("SPILLWAY_REQUIRE_PYTHON is set but no python with numpy, pyarrow, polars and duckdb was found");
    }
    skip("no python with numpy, pyarrow, polars, duckdb (run scripts/test.sh)");
    None
}

/// Runs a Python script file from `tests/py/` with `args`; returns stdout, failing the test with
/// stderr when the script fails.
pub fn py(python: &Path, script: &str, args: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python)
        .arg(root.join("tests/py").join(script))
        .args(args)
        .env("PYTHONPATH", root.join("spill/python"))
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{script} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sets the modification time of every file under `dir` to one fixed instant. Spill files record
/// their inputs' modification times (for `--if-changed`), so two universes made at different times
/// build the same bytes only with the same times.
pub fn pin_mtimes(dir: &Path) {
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    for e in std::fs::read_dir(dir).expect("list").flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => pin_mtimes(&p),
            // Symlinks (loops among them) and unreadable files are cases of their own.
            Ok(t) if t.is_file() => {
                if let Ok(f) = std::fs::File::options().write(true).open(&p) {
                    f.set_modified(when).expect("set mtime");
                }
            }
            _ => {}
        }
    }
}

/// A path as &str (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 test path")
}

/// Writes a parquet file with the parquet crate's arrow writer: `columns` in order, optionally
/// uncompressed plain V1 pages (`raw`, for tests that patch page bytes).
pub fn write_parquet(path: &Path, columns: Vec<(&str, arrow_array::ArrayRef)>, raw: bool) {
    use parquet::file::properties::WriterProperties;
    let fields: Vec<arrow_schema::Field> = columns
        .iter()
        .map(|(n, a)| arrow_schema::Field::new(*n, a.data_type().clone(), true))
        .collect();
    let schema = std::sync::Arc::new(arrow_schema::Schema::new(fields));
    let batch = arrow_array::RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .expect("batch");
    let mut props = WriterProperties::builder();
    if raw {
        props = props
            .set_compression(parquet::basic::Compression::UNCOMPRESSED)
            .set_dictionary_enabled(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    let file = std::fs::File::create(path).expect("create");
    let mut w =
        parquet::arrow::ArrowWriter::try_new(file, schema, Some(props.build())).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}

/// The rows of the parquet file at `path`, as one batch.
pub fn read_parquet(path: &Path) -> arrow_array::RecordBatch {
    let file = std::fs::File::open(path).expect("open");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("reader")
        .build()
        .expect("build");
    let batches: Vec<arrow_array::RecordBatch> = reader.map(|b| b.expect("batch")).collect();
    arrow_select::concat::concat_batches(&batches[0].schema(), &batches).expect("concat")
}

/// A timestamp[ns, UTC] column from nanoseconds.
pub fn ts_ns(v: Vec<i64>) -> arrow_array::ArrayRef {
    std::sync::Arc::new(arrow_array::TimestampNanosecondArray::from(v).with_timezone("UTC"))
}

/// A float64 column.
pub fn f64s(v: Vec<f64>) -> arrow_array::ArrayRef {
    std::sync::Arc::new(arrow_array::Float64Array::from(v))
}

/// Whether the tests run as root (`id -u` is 0).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Says that the running test cannot run here, in whole or in part, and why: `SKIPPED <test>:
/// <reason>` on stderr and, when `SPILLWAY_SKIP_LOG` names a file, a line
/// `rust<TAB><test><TAB><reason>` appended to it (scripts/test.sh sets it; scripts/skips.py
/// lists the log and fails on a reason `.ci/allowed-skips.txt` does not allow). The caller
/// returns (or leaves out the part) itself. `<test>` is the name libtest gives the test's thread
/// (`filesystem::disk_full_is_refused_up_front_and_keeps_the_previous_output`), so keep the
/// call on that thread. `reason` must be stable, with no path or pid, for the allow-list to
/// match it. Each (test, reason) is told once, however many property-test cases call this.
pub fn skip(reason: &str) {
    static TOLD: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed thread>")
        .to_string();
    let reason = reason.replace(['\t', '\n'], " ");
    let first = TOLD
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert((test.clone(), reason.clone()));
    if !first {
        return;
    }
    eprintln!("SKIPPED {test}: {reason}");
    let Some(log) = std::env::var_os("SPILLWAY_SKIP_LOG").map(PathBuf::from) else {
        return;
    };
    if let Some(dir) = log.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).expect("the directory of SPILLWAY_SKIP_LOG");
    }
    // One write of the whole line in append mode: the lines of tests on other threads (and of
    // pytest, which appends to the same log) never interleave within a line.
    std::fs::File::options()
        .create(true)
        .append(true)
        .open(&log)
        .and_then(|mut f| f.write_all(format!("rust\t{test}\t{reason}\n").as_bytes()))
        .unwrap_or_else(|e| panic!("appending to SPILLWAY_SKIP_LOG {}: {e}", log.display()));
}

/// A small filesystem mounted for one test, needing no root where user namespaces are allowed:
/// a child (`unshare --user --map-root-user --mount`) mounts it in a mount namespace of its own
/// and waits. Nothing outside that namespace sees the mount at its mount point; the test and the
/// binary reach it through the child's root, [`Mount::path`] (`/proc/<pid>/root/<dir>/<name>`).
/// The mount ends with the child: on drop, or when the test process dies (its stdin closes).
pub struct Mount {
    child: Child,
    /// The mounted directory, as seen from outside its namespace.
    pub path: PathBuf,
}

/// Mounts a `fstype` (tmpfs, ramfs) with mount options `options` (`size=3m,ro`; empty for none)
/// at a new directory `dir/name`; `None` where this machine allows no user namespace (or no
/// such mount in one): the caller then [`skip`]s.
pub fn mount(dir: &Path, name: &str, fstype: &str, options: &str) -> Option<Mount> {
    let at = dir.join(name);
    std::fs::create_dir_all(&at).ok()?;
    let mut args = vec!["-t", fstype];
    if !options.is_empty() {
        args.extend(["-o", options]);
    }
    args.extend([fstype, s(&at)]);
    let mut child = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg(r#"mount "$@" && echo mounted && read -r _"#)
        .arg("sh")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut said = String::new();
    let stdout = child.stdout.take().expect("piped stdout");
    let _ = BufReader::new(stdout).read_line(&mut said);
    if said.trim() != "mounted" {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    let inside = at
        .strip_prefix("/")
        .expect("an absolute temporary directory");
    let path = Path::new("/proc")
        .join(child.id().to_string())
        .join("root")
        .join(inside);
    Some(Mount { child, path })
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A one-shard dataset of `u` cut on symbols (`--shard 0/1` and `spillway manifest`) in `dir`:
/// its manifest.
pub fn symbol_cut_dataset(u: &Path, dir: &Path) -> PathBuf {
    std::fs::create_dir(dir).expect("mkdir");
    ok(&build(u, &dir.join("s.spill"), &["--shard", "0/1"]));
    let manifest = dir.join("dataset.json");
    ok(&run(&[
        "manifest",
        s(&dir.join("s.spill")),
        "--output",
        s(&manifest),
    ]));
    manifest
}
