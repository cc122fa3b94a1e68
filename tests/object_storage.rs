//! Universes in object storage: the real binary reading `s3://` from an S3 server on loopback
//! (`s3kit`: s3s over a temporary directory), with faults injected by a proxy the tests control.
//! A build from `s3://` must equal the local build of the same files column by column; only the
//! recorded provenance (stamps, source, ETags) may differ.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use s3kit::{Fault, Match, Options, Proxy, Rule, Server};

use crate::common::*;

const BUCKET: &str = "bkt";

/// A server holding a generated universe at `s3://bkt/u/`, and the same files on local disk.
struct Fixture {
    server: Server,
    local: PathBuf,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(gen_args: &[&str]) -> Fixture {
        Fixture::with(Options::default(), gen_args)
    }

    fn with(options: Options, gen_args: &[&str]) -> Fixture {
        let server = Server::start(options).expect("server");
        let dir = tempfile::tempdir().expect("tempdir");
        let local = dir.path().join("u");
        gen(&local, gen_args);
        copy_tree(&local, &server.bucket_dir(BUCKET).join("u"));
        Fixture { server, local, dir }
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `spillway` with the server's credentials in the environment, talking to `endpoint`.
    fn command(&self, endpoint: &str) -> Command {
        let mut c = spillway();
        for (k, v) in self.server.env() {
            c.env(k, v);
        }
        c.env("AWS_ENDPOINT_URL", endpoint);
        c
    }

    /// `spillway ARGS` through [`Fixture::command`].
    fn run(&self, endpoint: &str, args: &[&str]) -> Output {
        self.command(endpoint)
            .args(args)
            .output()
            .expect("spillway runs")
    }

    fn build(&self, input: &str, out: &Path, extra: &[&str]) -> Output {
        self.build_via(&self.server.endpoint(), input, out, extra)
    }

    fn build_via(&self, endpoint: &str, input: &str, out: &Path, extra: &[&str]) -> Output {
        let mut args = build_args(Path::new(input), out, &["--quiet"]);
        args.extend_from_slice(extra);
        self.run(endpoint, &args)
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// Asserts two spill files hold the same columns, rows, symbols and options; only the inputs'
/// provenance may differ.
fn assert_same_data(a: &Path, b: &Path) {
    let (fa, fb) = (
        spill::open(a).expect("open a"),
        spill::open(b).expect("open b"),
    );
    assert_eq!(fa.nrows(), fb.nrows(), "rows");
    assert_eq!(fa.columns().len(), fb.columns().len(), "columns");
    for i in 0..fa.columns().len() {
        assert_eq!(fa.columns()[i].name, fb.columns()[i].name);
        assert!(
            fa.column_bytes(i) == fb.column_bytes(i),
            "column {} differs",
            fa.columns()[i].name
        );
    }
    assert_eq!(fa.symbols(), fb.symbols(), "symbols");
    let (ma, mb) = (fa.build_metadata(), fb.build_metadata());
    for key in ["options", "tool", "semantics_version", "shard"] {
        assert_eq!(ma.get(key), mb.get(key), "build metadata {key}");
    }
    let ia = ma.get("inputs").expect("inputs");
    let ib = mb.get("inputs").expect("inputs");
    for key in ["files", "bytes", "fingerprint"] {
        assert_eq!(ia.get(key), ib.get(key), "inputs.{key}");
    }
}

fn summary_json(o: &Output) -> serde_json::Value {
    serde_json::from_str(stdout(o).trim()).expect("summary JSON on stdout")
}

const SMALL: [&str; 6] = ["--symbols", "6", "--rows", "3000", "--features", "5"];

#[test]
fn a_build_from_s3_equals_the_local_build() {
    let f = Fixture::new(&SMALL);
    let local = f.out("local.spill");
    ok(&build(&f.local, &local, &[]));
    let remote = f.out("remote.spill");
    let o = f.build("s3://bkt/u/", &remote, &["--summary", "-"]);
    ok(&o);
    assert_same_data(&local, &remote);
    let m = spill::open(&remote).expect("open");
    let inputs = m.build_metadata().get("inputs").expect("inputs");
    assert_eq!(
        inputs.get("source"),
        Some(&serde_json::json!("s3://bkt/u/"))
    );
    assert_eq!(
        inputs.get("etags").and_then(|e| e.as_array()).map(Vec::len),
        Some(6)
    );
    let s = summary_json(&o);
    let os = &s["object_storage"];
    assert!(os["requests"].as_u64().expect("requests") > 0, "{os}");
    assert_eq!(os["unplanned"], 0, "{os}");
    // Deterministic: the same bucket state gives the same bytes.
    let again = f.out("again.spill");
    ok(&f.build("s3://bkt/u", &again, &[]));
    assert_eq!(
        std::fs::read(&remote).expect("read"),
        std::fs::read(&again).expect("read")
    );
}

/// On files of M's shape (100 features), the bytes fetched stay within 5% of the bytes the build
/// needs (each byte counted once): footers read once, no read-ahead past a task's columns.
#[test]
fn bytes_fetched_stay_within_5_percent_of_the_bytes_needed() {
    let f = Fixture::new(&["--symbols", "4", "--rows", "20000", "--features", "100"]);
    let out = f.out("o.spill");
    let o = f.build("s3://bkt/u/", &out, &["--summary", "-"]);
    ok(&o);
    let os = &summary_json(&o)["object_storage"];
    let (fetched, needed) = (os["bytes_fetched"].as_f64(), os["bytes_needed"].as_f64());
    let (fetched, needed) = (fetched.expect("fetched"), needed.expect("needed"));
    let parquet: u64 = entries(&f.local)
        .iter()
        .map(|e| std::fs::metadata(f.local.join(e)).expect("meta").len())
        .sum();
    assert!(
        fetched <= 1.05 * needed,
        "fetched {fetched} for {needed}: {os}"
    );
    assert!(needed <= parquet as f64, "needed {needed} of {parquet}");
    assert_eq!(os["unplanned"], 0, "{os}");
}

#[test]
fn every_read_path_equals_its_local_build() {
    let f = Fixture::new(&[
        "--symbols",
        "5",
        "--rows",
        "4000",
        "--features",
        "4",
        "--hive",
        "--drift",
        "--missing",
        "--row-group-rows",
        "1000",
    ]);
    let cases: [&[&str]; 7] = [
        &[],
        &["--decoder", "arrow"],
        &["--max-rows", "1500"],
        &[
            "--drop-null-target",
            "--min-cs",
            "2",
            "--max-cs-samples",
            "3",
        ],
        &["--order", "time"],
        &["--shard", "1/3"],
        &["--threads", "1", "--batch-rows", "700"],
    ];
    for (i, extra) in cases.iter().enumerate() {
        let local = f.out(&format!("l{i}.spill"));
        let remote = f.out(&format!("r{i}.spill"));
        ok(&build(&f.local, &local, extra));
        let o = f.build("s3://bkt/u/", &remote, extra);
        ok(&o);
        assert_same_data(&local, &remote);
    }
}

#[test]
fn a_corrupt_object_is_named_and_skipped_under_on_error_skip() {
    let f = Fixture::new(&SMALL);
    let bad = f.server.bucket_dir(BUCKET).join("u/S0002.parquet");
    let mut bytes = std::fs::read(&bad).expect("read");
    let n = bytes.len();
    bytes[n - 40..n - 8].fill(0xAB); // the footer's end
    std::fs::write(&bad, &bytes).expect("write");
    std::fs::write(f.local.join("S0002.parquet"), &bytes).expect("write");
    let out = f.out("o.spill");
    let o = f.build("s3://bkt/u/", &out, &[]);
    exits_with(&o, 1, &["s3://bkt/u/S0002.parquet"]);
    assert!(!out.exists());
    let local = f.out("l.spill");
    ok(&build(&f.local, &local, &["--on-error", "skip"]));
    ok(&f.build("s3://bkt/u/", &out, &["--on-error", "skip"]));
    assert_same_data(&local, &out);
}

#[test]
fn listings_are_paged_and_hidden_objects_ignored() {
    let f = Fixture::with(
        Options {
            page: 100,
            ..Options::default()
        },
        &SMALL,
    );
    let pad = f.server.bucket_dir(BUCKET).join("u/_pad");
    std::fs::create_dir_all(&pad).expect("mkdir");
    for i in 0..1000 {
        std::fs::write(pad.join(format!("x{i}")), b"x").expect("write");
    }
    std::fs::write(f.server.bucket_dir(BUCKET).join("u/_SUCCESS"), b"").expect("write");
    let out = f.out("o.spill");
    let o = f.build("s3://bkt/u/", &out, &["--summary", "-"]);
    ok(&o);
    let pages = summary_json(&o)["object_storage"]["list_pages"]
        .as_u64()
        .expect("pages");
    assert!(
        pages >= 11,
        "{pages} listing pages for 1,007 objects at 100 a page"
    );
    assert!(f.server.lists() >= 11);
    let local = f.out("l.spill");
    ok(&build(&f.local, &local, &[]));
    assert_same_data(&local, &out);
}

#[test]
fn inspect_and_count_read_s3() {
    let f = Fixture::new(&SMALL);
    let o = f.run(
        &f.server.endpoint(),
        &["inspect", "--input", "s3://bkt/u/", "--json"],
    );
    ok(&o);
    let remote: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let o = run(&["inspect", "--input", s(&f.local), "--json"]);
    ok(&o);
    let local: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    for key in ["symbols", "files", "rows", "columns"] {
        assert_eq!(remote.get(key), local.get(key), "inspect {key}");
    }
    let count = f.out("c.count");
    let o = f.run(
        &f.server.endpoint(),
        &[
            "count",
            "--input",
            "s3://bkt/u/",
            "--output",
            s(&count),
            "--shard",
            "0/2",
            "--target",
            "target",
            "--min-cs",
            "2",
        ],
    );
    ok(&o);
    assert!(count.exists());
}

#[test]
fn if_changed_reads_no_data_and_notices_a_rewritten_object() {
    let f = Fixture::new(&SMALL);
    let out = f.out("o.spill");
    ok(&f.build("s3://bkt/u/", &out, &[]));
    let gets = f.server.data_gets();
    let o = f.build("s3://bkt/u/", &out, &["--if-changed"]);
    ok(&o);
    // Footers only: one tail read per object, no column chunk.
    assert!(
        f.server.data_gets() - gets <= 6,
        "{} GETs",
        f.server.data_gets() - gets
    );
    let modified = std::fs::metadata(&out)
        .expect("meta")
        .modified()
        .expect("mtime");
    std::thread::sleep(Duration::from_millis(20));
    // Rewritten in place with the same bytes: a new ETag (new mtime).
    let p = f.server.bucket_dir(BUCKET).join("u/S0001.parquet");
    let bytes = std::fs::read(&p).expect("read");
    std::fs::write(&p, bytes).expect("write");
    let o = f.build("s3://bkt/u/", &out, &["--if-changed", "--summary", "-"]);
    ok(&o);
    let after = std::fs::metadata(&out)
        .expect("meta")
        .modified()
        .expect("mtime");
    assert_ne!(modified, after, "a rewritten object rebuilds");
}

#[test]
fn usage_and_access_errors_name_the_url_and_hide_secrets() {
    let f = Fixture::new(&SMALL);
    let out = f.out("o.spill");
    let ep = f.server.endpoint();
    for (input, code, needle) in [
        ("s3://key:secret@bkt/u/", 2, "credentials"),
        ("s3://bkt/u/?X-Amz-Signature=abc", 2, "query"),
        ("ftp://bkt/u/", 2, "unknown URL scheme"),
        ("s3://nobucket/u/", 1, "bucket does not exist"),
        ("s3://bkt/empty/", 1, "no parquet files"),
    ] {
        let o = f.build_via(&ep, input, &out, &[]);
        exits_with(&o, code, &[needle]);
        assert!(!stderr(&o).contains("secret@") && !stderr(&o).contains("abc"));
    }
    let o = f.build_via(
        &ep,
        "s3://bkt/u/",
        &out,
        &["--storage-option", "aws_no_such=1"],
    );
    exits_with(&o, 2, &["aws_no_such"]);
    let wrong = "wrong-secret-value-42";
    let mut c = f.command(&ep);
    c.env("AWS_SECRET_ACCESS_KEY", wrong);
    let o = c
        .args(build_args(Path::new("s3://bkt/u/"), &out, &[]))
        .args(["--storage-option", "max_retries=0", "--summary", "-"])
        .output()
        .expect("runs");
    exits_with(&o, 1, &["access denied", "s3://bkt/u/"]);
    assert!(!stderr(&o).contains(wrong) && !stdout(&o).contains(wrong));
    assert!(!out.exists());
}

/// The proxy's faults, each ending exact or with a clean error and no output.
#[test]
fn faults_end_exact_or_clean() {
    let f = Fixture::new(&SMALL);
    let local = f.out("local.spill");
    ok(&build(&f.local, &local, &[]));
    let proxy = Proxy::start(f.server.addr(), Vec::new(), Duration::ZERO).expect("proxy");
    let data = |then: Fault, share: Option<(u32, u64)>, nth: Option<u64>| Rule {
        when: Match {
            method: Some("GET".into()),
            data_only: true,
            share,
            nth,
            ..Match::default()
        },
        then,
    };
    let fast = [
        "--storage-option",
        "retry_timeout=20s",
        "--storage-option",
        "timeout=2s",
    ];
    let exact: Vec<(&str, Rule)> = vec![
        (
            "503 SlowDown",
            data(Fault::Status(503, "SlowDown"), Some((20, 7)), None),
        ),
        (
            "500",
            data(Fault::Status(500, "InternalError"), Some((10, 3)), None),
        ),
        (
            "reset mid-body",
            data(Fault::ResetAfter(100), Some((10, 5)), None),
        ),
        (
            "truncated body",
            data(Fault::CloseAfter(100), None, Some(3)),
        ),
        ("short body", data(Fault::LieShort(10), None, Some(2))),
        (
            "2 s stall",
            data(Fault::Stall(Duration::from_millis(1500)), None, Some(4)),
        ),
    ];
    for (what, rule) in exact {
        proxy.set_rules(vec![rule]);
        let out = f.out("fault.spill");
        let mut args = fast.to_vec();
        args.extend(["--summary", "-"]);
        let o = f.build_via(&proxy.endpoint(), "s3://bkt/u/", &out, &args);
        assert!(o.status.success(), "{what}: {}", stderr(&o));
        assert_same_data(&local, &out);
        let c = proxy.counts();
        let fired = c.status + c.reset + c.close + c.lie_short + c.stall;
        assert!(fired > 0, "{what}: the fault never fired");
        let retries = summary_json(&o)["object_storage"]["retries"].as_u64();
        assert!(
            retries.expect("retries") > 0 || what.contains("stall"),
            "{what}: no retry"
        );
        std::fs::remove_file(&out).expect("rm");
    }
    // A server that never answers: a clean error within the retry timeout, no output.
    proxy.set_rules(vec![data(
        Fault::Stall(Duration::from_secs(600)),
        None,
        None,
    )]);
    let out = f.out("stalled.spill");
    let t0 = Instant::now();
    let o = f.build_via(
        &proxy.endpoint(),
        "s3://bkt/u/",
        &out,
        &[
            "--storage-option",
            "retry_timeout=3s",
            "--storage-option",
            "timeout=1s",
        ],
    );
    exits_with(&o, 1, &["s3://bkt/u/"]);
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    assert!(!out.exists());
}

#[test]
fn an_object_replaced_mid_build_is_a_change_naming_it() {
    let f = Fixture::new(&SMALL);
    let path = f.server.bucket_dir(BUCKET).join("u/S0003.parquet");
    let other = f.server.bucket_dir(BUCKET).join("u/S0004.parquet");
    let replacement = std::fs::read(&other).expect("read");
    // The first GET is the planning footer read; the build reads the object several times.
    let hook_path = path.clone();
    f.server.on_first_get(
        "u/S0003.parquet",
        Box::new(move |_| {
            std::thread::sleep(Duration::from_millis(5));
            let tmp = hook_path.with_extension("tmp");
            std::fs::write(&tmp, replacement).expect("write");
            std::fs::rename(&tmp, &hook_path).expect("rename");
        }),
    );
    let out = f.out("o.spill");
    let o = f.build("s3://bkt/u/", &out, &[]);
    exits_with(&o, 1, &["s3://bkt/u/S0003.parquet", "changed"]);
    assert!(!out.exists());
}

#[test]
fn ctrl_c_stops_a_build_with_requests_in_flight() {
    let f = Fixture::new(&SMALL);
    let proxy = Proxy::start(
        f.server.addr(),
        vec![Rule {
            when: Match {
                method: Some("GET".into()),
                data_only: true,
                ..Match::default()
            },
            then: Fault::Stall(Duration::from_secs(60)),
        }],
        Duration::ZERO,
    )
    .expect("proxy");
    let out = f.out("o.spill");
    let mut child = f
        .command(&proxy.endpoint())
        .args(build_args(Path::new("s3://bkt/u/"), &out, &["--quiet"]))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(1500));
    let t0 = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let code = child.wait().expect("wait");
    assert_eq!(code.code(), Some(130), "exit code");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(!out.exists());
    assert!(
        entries(f.dir.path()).iter().all(|e| !e.contains(".tmp")),
        "{:?}",
        entries(f.dir.path())
    );
}
