//! Item 10 (command line): messages and small contracts.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use serde_json::Value;

use super::small;
use crate::common::*;

/// `verify dataset.json` names what differs, never a Rust `Debug` struct.
#[test]
fn i21_10_verify_of_a_dataset_says_what_differs() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = small(d.path(), "2", "200");
    let mut shards = Vec::new();
    for i in 0..2 {
        let out = d.path().join(format!("s{i}.spill"));
        ok(&build(&u, &out, &["--shard", &format!("{i}/2")]));
        shards.push(out);
    }
    let m = d.path().join("dataset.json");
    ok(&run(&[
        "manifest",
        s(&shards[0]),
        s(&shards[1]),
        "--output",
        s(&m),
    ]));
    // Shard 0 rebuilt with fewer rows: the manifest no longer matches it.
    ok(&build(
        &u,
        &shards[0],
        &["--shard", "0/2", "--max-rows", "10"],
    ));
    let o = run(&["verify", s(&m)]);
    fails_with(
        &o,
        &[
            "s0.spill",
            "does not match the manifest",
            "the manifest says",
        ],
    );
    let e = stderr(&o);
    assert!(!e.contains("ShardEntry") && !e.contains("{ "), "{e}");
}

/// A missing `--cs-plan` is a usage error (exit 2), printed once.
#[test]
fn i21_10_a_missing_cs_plan_is_a_usage_error_printed_once() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = small(d.path(), "2", "200");
    let missing = d.path().join("nope.plan");
    let o = build(
        &u,
        &d.path().join("o.spill"),
        &[
            "--shard",
            "0/2",
            "--cs-plan",
            s(&missing),
            "--max-cs-samples",
            "2",
        ],
    );
    usage_error(&o, &["--cs-plan", "nope.plan"]);
    assert_eq!(stderr(&o).matches("nope.plan").count(), 1, "{}", stderr(&o));
}

/// Outputs follow the umask (0666 less it), spill files, exports, summaries, plans alike.
#[test]
fn i21_10_outputs_follow_the_umask() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = small(d.path(), "2", "200");
    let bin = env!("CARGO_BIN_EXE_spillway");
    let (out, sum, arrow) = (
        d.path().join("o.spill"),
        d.path().join("s.json"),
        d.path().join("o.arrow"),
    );
    let script = format!(
        "umask 002 && {bin} build --input {} --output {} --target target --quiet --summary {} && {bin} export {} --to {}",
        s(&u),
        s(&out),
        s(&sum),
        s(&out),
        s(&arrow)
    );
    let o = Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("sh");
    ok(&o);
    for p in [&out, &sum, &arrow] {
        let mode = std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o664, "{}: {mode:o}", p.display());
    }
}

/// A footer claiming more rows than its row groups hold is a corrupt footer (exit 1, the file
/// named), not a memory budget that cannot be met.
#[test]
fn i21_10_a_footer_claiming_billions_of_rows_is_corrupt() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    std::fs::create_dir(&u).expect("mkdir");
    let n = 12_345usize;
    let file = u.join("A.parquet");
    write_parquet(
        &file,
        vec![
            ("ts", ts_ns((0..n as i64).collect())),
            ("target", f64s(vec![1.0; n])),
            ("f", f64s(vec![2.0; n])),
        ],
        false,
    );
    // FileMetaData.num_rows (field 3, i64, compact delta 1: 0x16) as a zigzag varint: 12345 ->
    // 0xF2 0xC0 0x01; patch in 3e9 (5 bytes) and fix the footer length.
    let mut bytes = std::fs::read(&file).expect("read");
    let len = bytes.len();
    let footer_len = u32::from_le_bytes(bytes[len - 8..len - 4].try_into().expect("4")) as usize;
    let start = len - 8 - footer_len;
    let at = bytes[start..]
        .windows(4)
        .position(|w| w == [0x16, 0xF2, 0xC0, 0x01])
        .expect("num_rows in the footer")
        + start;
    let mut claim = Vec::new();
    let mut z = 3_000_000_000u64 * 2;
    while z >= 0x80 {
        claim.push((z as u8 & 0x7F) | 0x80);
        z >>= 7;
    }
    claim.push(z as u8);
    bytes.splice(at + 1..at + 4, claim.iter().copied());
    let new_len = (footer_len + claim.len() - 3) as u32;
    let n = bytes.len();
    bytes[n - 8..n - 4].copy_from_slice(&new_len.to_le_bytes());
    std::fs::write(&file, &bytes).expect("write");
    let o = build(&u, &d.path().join("o.spill"), &[]);
    fails_with(&o, &["A.parquet", "corrupt", "3000000000 rows"]);
    assert!(!stderr(&o).contains("budget"), "{}", stderr(&o));
}

/// Naive and zone-aware time columns mixed across symbols: a warning.
#[test]
fn i21_10_mixed_naive_and_zoned_times_warn() {
    use std::sync::Arc;
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    std::fs::create_dir(&u).expect("mkdir");
    let naive: arrow_array::ArrayRef =
        Arc::new(arrow_array::TimestampNanosecondArray::from(vec![1, 2, 3]));
    write_parquet(
        &u.join("A.parquet"),
        vec![("ts", naive), ("target", f64s(vec![1.0; 3]))],
        false,
    );
    write_parquet(
        &u.join("B.parquet"),
        vec![("ts", ts_ns(vec![1, 2, 3])), ("target", f64s(vec![1.0; 3]))],
        false,
    );
    let sum = d.path().join("s.json");
    ok(&build(
        &u,
        &d.path().join("o.spill"),
        &["--summary", s(&sum)],
    ));
    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(&sum).expect("read")).expect("json");
    let w = j["warnings"].to_string();
    assert!(w.contains("naive in 1 file(s) and zone-aware (UTC)"), "{w}");
}

/// Re-probe of item 10: plan-cs says option values as typed (no `Some(..)`), and refuses
/// `--max-cs-samples 0`; `verify --json` prints JSON for a manifest that does not parse; `gen`
/// refuses a file as its output directory (exit 2).
#[test]
fn i21_10_plan_cs_verify_json_and_gen_messages() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = small(d.path(), "2", "200");
    let c = d.path().join("c0");
    ok(&run(&[
        "count",
        "--input",
        s(&u),
        "--shard",
        "0/1",
        "--output",
        s(&c),
        "--target",
        "target",
        "--max-cs-samples",
        "1",
    ]));
    let p = d.path().join("p");
    let o = run(&["plan-cs", s(&c), "--max-cs-samples", "2", "--output", s(&p)]);
    usage_error(
        &o,
        &["--max-cs-samples 1 --seed 0", "--max-cs-samples 2 --seed 0"],
    );
    assert!(!stderr(&o).contains("Some("), "{}", stderr(&o));
    let o = run(&["plan-cs", s(&c), "--max-cs-samples", "0", "--output", s(&p)]);
    usage_error(&o, &["--max-cs-samples must be at least 1"]);

    let m = d.path().join("dataset.json");
    std::fs::write(&m, "{").expect("write");
    let o = run(&["verify", "--json", s(&m)]);
    assert_eq!(o.status.code(), Some(1));
    let j: Value = serde_json::from_str(&stdout(&o)).expect("one JSON object on stdout");
    assert_eq!(j["ok"], false);

    let file = d.path().join("afile");
    std::fs::write(&file, "x").expect("write");
    usage_error(&run(&["gen", "--output", s(&file)]), &["not a directory"]);
}
