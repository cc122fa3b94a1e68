//! Golden outputs: builds of a committed universe (`tests/data/golden/`, written once by its
//! `make.py`) whose bytes are recorded with the `SEMANTICS_VERSION` they were made by. When a
//! change alters the bytes of any build, this fails until `SEMANTICS_VERSION`
//! (`src/report/tool.rs`) is bumped and the record re-blessed (`SPILLWAY_BLESS=1 cargo test
//! --test tests golden`), so `--if-changed` never keeps a file that the new binary would write
//! differently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::common::*;

/// The builds recorded: name and extra flags (every build reads the golden universe).
const CASES: &[(&str, &[&str])] = &[
    ("symbol", &["--target", "target"]),
    (
        "float64-max-rows",
        &["--target", "target", "--no-float32", "--max-rows", "30"],
    ),
    (
        "filters",
        &[
            "--target",
            "target",
            "--drop-null-target",
            "--min-cs",
            "2",
            "--max-cs-samples",
            "2",
            "--seed",
            "7",
        ],
    ),
    ("time-major", &["--target", "target", "--order", "time"]),
    ("no-target", &["--no-target", "--features", "f_a,f_b"]),
];

fn record_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden/outputs.json")
}

/// The golden universe copied to `dir` with fixed modification times (they are recorded).
fn universe(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden/universe");
    let u = dir.join("u");
    std::fs::create_dir(&u).expect("mkdir");
    for e in std::fs::read_dir(&src).expect("golden universe") {
        let e = e.expect("entry");
        let to = u.join(e.file_name());
        std::fs::copy(e.path(), &to).expect("copy");
        let f = std::fs::File::options()
            .write(true)
            .open(&to)
            .expect("open");
        f.set_modified(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
            .expect("set mtime");
    }
    u
}

fn digest(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("read output");
    format!("crc32:{:08x}:{}", crc32fast::hash(&bytes), bytes.len())
}

#[test]
fn golden_outputs_change_only_with_a_semantics_bump() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = universe(d.path());
    let mut now = BTreeMap::new();
    for (name, flags) in CASES {
        let out = d.path().join(format!("{name}.spill"));
        let mut args = vec!["build", "--input", s(&u), "--output", s(&out), "--quiet"];
        args.extend_from_slice(flags);
        ok(&run(&args));
        now.insert(name.to_string(), digest(&out));
    }
    let version = spillway::SEMANTICS_VERSION;
    let current = json!({"semantics_version": version, "outputs": now});
    if std::env::var_os("SPILLWAY_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&current).expect("json") + "\n";
        std::fs::write(record_path(), text).expect("bless");
        return;
    }
    let recorded: Value = serde_json::from_str(
        &std::fs::read_to_string(record_path()).expect("tests/data/golden/outputs.json"),
    )
    .expect("valid record");
    let changed: Vec<&String> = now
        .iter()
        .filter(|(k, v)| recorded["outputs"][k.as_str()] != json!(v))
        .map(|(k, _)| k)
        .collect();
    let then = recorded["semantics_version"].as_u64();
    assert!(
        changed.is_empty() || then != Some(version),
        "the output bytes of {changed:?} changed but SEMANTICS_VERSION is still {version}: bump it \
         in src/report/tool.rs (files of the old semantics must not pass --if-changed), then \
         re-bless with SPILLWAY_BLESS=1 cargo test --test tests golden"
    );
    assert_eq!(
        recorded, current,
        "SEMANTICS_VERSION is {version} and the record is of {then:?}: re-bless with \
         SPILLWAY_BLESS=1 cargo test --test tests golden"
    );
}
