//! Items 5 and 6: what `--if-changed` trusts of a build's identity (semantics version, shard,
//! content), the summary of a skipped build; a build names its target or says it has none.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;

use super::small;
use crate::common::*;

/// The build metadata of a spill file.
fn build_metadata(p: &Path) -> Value {
    let f = spill::open(p).expect("opens");
    Value::Object(f.build_metadata().clone())
}

/// Rewrites `from` as `to` (same length) inside the file's metadata and fixes its checksum: a
/// file as an older spillway would have written it.
fn patch_metadata(p: &Path, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let mut bytes = std::fs::read(p).expect("read");
    let n = bytes.len();
    let tail: &[u8; spill::TRAILER_LEN as usize] = bytes[n - spill::TRAILER_LEN as usize..]
        .try_into()
        .expect("trailer");
    let mut t = spill::Trailer::decode(tail).expect("trailer");
    let (a, b) = (
        t.metadata_offset as usize,
        (t.metadata_offset + t.metadata_len) as usize,
    );
    let meta = String::from_utf8(bytes[a..b].to_vec()).expect("utf8");
    assert!(meta.contains(from), "{from} in {meta}");
    let meta = meta.replacen(from, to, 1);
    bytes[a..b].copy_from_slice(meta.as_bytes());
    t.metadata_checksum = crc32fast::hash(meta.as_bytes());
    bytes[n - spill::TRAILER_LEN as usize..].copy_from_slice(&t.encode());
    std::fs::write(p, bytes).expect("write");
}

/// Item 5: the semantics version is recorded in the file and checked; the commit is in the
/// summary only; a current output still writes its summary, saying it was skipped.
#[test]
fn i21_05_if_changed_checks_the_semantics_version_and_writes_the_summary() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = small(d.path(), "4", "300");
    let out = d.path().join("o.spill");
    let sum = d.path().join("s.json");
    ok(&build(&u, &out, &["--summary", s(&sum)]));
    let v = spillway::SEMANTICS_VERSION;
    assert_eq!(build_metadata(&out)["semantics_version"], v);
    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(&sum).expect("read")).expect("json");
    assert_eq!(j["status"], "built");
    assert_eq!(j["tool"]["semantics_version"], v);
    let commit = j["tool"]["commit"].as_str().expect("commit").to_string();
    assert!(!commit.is_empty());
    if commit != "unknown" {
        let bytes = std::fs::read(&out).expect("read");
        let needle = commit.as_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "the commit is not in the file"
        );
    }

    // Current: exit 0, the summary says so.
    std::fs::remove_file(&sum).expect("rm");
    let o = build(&u, &out, &["--if-changed", "--summary", s(&sum)]);
    ok(&o);
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&sum).expect("summary written"))
        .expect("json");
    assert_eq!(j["status"], "current");
    assert!(
        j["reason"]
            .as_str()
            .is_some_and(|r| r.contains("unchanged")),
        "{j}"
    );

    // A file of an older semantics is rebuilt.
    let field = format!("\"semantics_version\":{v}");
    let older = format!("\"semantics_version\":{}", v - 1);
    patch_metadata(&out, &field, &older);
    let o = run(&build_args(&u, &out, &["--if-changed"]));
    ok(&o);
    assert!(stderr(&o).contains("output semantics"), "{}", stderr(&o));
    assert_eq!(build_metadata(&out)["semantics_version"], v);
}

/// Item 5: a shard with `--if-changed` is current when nothing changed, not "symbol C is new".
#[test]
fn i21_05_a_shard_is_current_when_nothing_changed() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = small(d.path(), "4", "300");
    for i in 0..2 {
        let out = d.path().join(format!("s{i}.spill"));
        let shard = format!("{i}/2");
        ok(&build(&u, &out, &["--shard", &shard]));
        let o = run(&build_args(&u, &out, &["--shard", &shard, "--if-changed"]));
        ok(&o);
        assert!(
            stderr(&o).contains("is current"),
            "shard {i}: {}",
            stderr(&o)
        );
        // Another shard's output is not this shard.
        let other = format!("{}/2", 1 - i);
        let o = run(&build_args(
            &u,
            &out,
            &["--shard", &other, "--if-changed", "--quiet"],
        ));
        ok(&o);
        assert_eq!(build_metadata(&out)["shard"]["scope"], other);
    }
}

/// Item 5: `--if-changed=content` sees a rewrite that keeps size, footer and modification time.
#[test]
fn i21_05_if_changed_content_sees_what_a_stamp_cannot() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    // Two files of one size and one footer (plain, uncompressed; the changed value is neither
    // the smallest nor the largest, so the statistics agree), one value apart.
    let write = |p: &Path, x: f64| {
        write_parquet(
            p,
            vec![
                ("ts", ts_ns(vec![1, 2, 3, 4])),
                ("f", f64s(vec![0.5, x, 0.25, 2.0])),
                ("target", f64s(vec![1.0, 2.0, 3.0, 4.0])),
            ],
            true,
        )
    };
    let a = u.join("A.parquet");
    write(&a, 1.0);
    write(&u.join("B.parquet"), 1.0);
    let other = d.path().join("A.other");
    write(&other, 1.5);
    assert_eq!(
        std::fs::metadata(&a).expect("a").len(),
        std::fs::metadata(&other).expect("o").len()
    );
    let orig = d.path().join("A.orig");
    write(&orig, 1.0);
    let out = d.path().join("o.spill");
    let when = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    let set = |p: &Path| {
        let f = std::fs::File::options().write(true).open(p).expect("open");
        f.set_modified(when).expect("mtime");
    };
    set(&a);
    // A stamp cannot see `cp -p`: other bytes, the same size, footer and modification time.
    ok(&build(&u, &out, &[]));
    std::fs::copy(&other, &a).expect("cp");
    set(&a);
    let o = run(&build_args(&u, &out, &["--if-changed"]));
    ok(&o);
    assert!(stderr(&o).contains("is current"), "a stamp cannot see it");
    // Content mode rebuilds (the file records no hashes), recording them.
    let o = run(&build_args(&u, &out, &["--if-changed=content"]));
    ok(&o);
    assert!(
        stderr(&o).contains("records no content hashes"),
        "{}",
        stderr(&o)
    );
    let col = |p: &Path| spill::open(p).expect("open").column::<f32>("f").expect("f")[1];
    assert_eq!(col(&out), 1.5, "rebuilt from the new bytes");
    let o = run(&build_args(&u, &out, &["--if-changed=content"]));
    assert!(stderr(&o).contains("is current"), "{}", stderr(&o));
    // The recorded hashes see the next rewrite, for `inspect --output` and `--if-changed` alike.
    std::fs::copy(&orig, &a).expect("cp");
    set(&a);
    let o = run(&[
        "inspect",
        "--input",
        s(&u),
        "--target",
        "target",
        "--output",
        s(&out),
    ]);
    ok(&o);
    assert!(
        stdout(&o).contains("A.parquet changed (its content)"),
        "{}",
        stdout(&o)
    );
    let o = run(&build_args(&u, &out, &["--if-changed"]));
    ok(&o);
    assert!(
        stderr(&o).contains("A.parquet changed (its content)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(col(&out), 1.0);
}

/// Item 6: without `--target` a build is refused unless it says `--no-target`; a column named
/// like a target becoming a feature is warned about.
#[test]
fn i21_06_a_build_names_its_target_or_says_it_has_none() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = small(d.path(), "4", "300");
    let out = d.path().join("o.spill");
    // The build's arguments without a target, then `extra`.
    let untargeted = |extra: &[&str]| {
        let mut args = vec!["build", "--input", s(&u), "--output", s(&out)];
        args.extend_from_slice(extra);
        run(&args)
    };
    usage_error(&untargeted(&["--quiet"]), &["--target", "--no-target"]);
    assert!(!out.exists());
    usage_error(
        &untargeted(&["--target", "target", "--no-target"]),
        &["both"],
    );
    let sum = d.path().join("s.json");
    let o = untargeted(&["--no-target", "--quiet", "--summary", s(&sum)]);
    ok(&o);
    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(&sum).expect("read")).expect("json");
    let warnings = j["warnings"].to_string();
    assert!(
        warnings.contains("named like a target: target"),
        "{warnings}"
    );
    assert!(
        stderr(&o).contains("named like a target"),
        "quiet still prints warnings"
    );
    let o = untargeted(&["--target", "target"]);
    ok(&o);
    assert!(!stderr(&o).contains("named like a target"));
}
