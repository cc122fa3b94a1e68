//! Issue 21: see `mod.rs`. Item 4 (`--max-cs-samples K` keeps exactly K rows at a timestamp where
//! a symbol repeats it) and item 7 (an empty file written by pyarrow is an empty symbol under the
//! filters, not a corrupt file).

use std::path::Path;
use std::process::Command;

use crate::common::*;

/// Writes `DIR/A.parquet` and `DIR/C.parquet` (10 rows each) and `DIR/B.parquet`, empty as
/// pyarrow writes it (one row group of 0 rows, an empty dictionary page, data page offset 0), and
/// `DIR/D.parquet`: an empty row group, then 10 rows.
const EMPTY_PYARROW: &str = r#"
import sys
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
d = sys.argv[1]
def table(n):
    ts = pa.array(np.arange(n, dtype=np.int64) * 60_000_000_000).cast(pa.timestamp("ns", tz="UTC"))
    return pa.table({"ts": ts, "target": pa.array(np.arange(n, dtype=np.float64)), "f0": pa.array(np.ones(n))})
pq.write_table(table(10), f"{d}/A.parquet")
pq.write_table(table(10).slice(0, 0), f"{d}/B.parquet")
pq.write_table(table(10), f"{d}/C.parquet")
with pq.ParquetWriter(f"{d}/D.parquet", table(0).schema) as w:
    w.write_table(table(0))
    w.write_table(table(10))
assert pq.ParquetFile(f"{d}/B.parquet").metadata.num_row_groups == 1
"#;

fn python_c(py: &Path, script: &str, args: &[&str]) {
    let out = Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Item 7: an empty file from pyarrow is a symbol with an empty range under every filter, as
/// without filters; not "page header: a required field is missing".
#[test]
fn i21_07_an_empty_pyarrow_file_is_an_empty_symbol_under_the_filters() {
    let Some(py) = python() else { return };
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    std::fs::create_dir(&u).expect("mkdir");
    python_c(&py, EMPTY_PYARROW, &[s(&u)]);
    let flags: [&[&str]; 6] = [
        &[],
        &["--drop-null-target"],
        &["--max-cs-samples", "2"],
        &["--min-cs", "2"],
        &["--order", "time", "--min-cs", "2"],
        &["--drop-null-target", "--decoder", "arrow"],
    ];
    for (i, extra) in flags.iter().enumerate() {
        for on_error in ["fail", "skip"] {
            let out = d.path().join(format!("o{i}-{on_error}.spill"));
            let mut args = extra.to_vec();
            args.extend(["--on-error", on_error]);
            ok(&build(&u, &out, &args));
            let f = spill::open(&out).expect("open");
            let names: Vec<&str> = f.symbols().iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, ["A", "B", "C", "D"], "{extra:?}");
            assert!(f.symbols()[1].is_empty(), "{extra:?}");
            // Three rows (A, C, D) at each of 10 times; K = 2 keeps two.
            let want = match extra.contains(&"--max-cs-samples") {
                true => 20,
                false => 30,
            };
            assert_eq!(f.nrows(), want, "{extra:?}");
        }
    }
}
