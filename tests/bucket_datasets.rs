//! Datasets in a bucket (issue 23): shards built into a scratch directory and uploaded (in
//! parts past 8 MiB), the manifest committed last with a conditional PUT, generations and
//! `--replace`, `verify s3://…/dataset.json` (with `--deep`), uploads cut or killed mid-way
//! (nothing is left that opens as complete; `spillway clean s3://…` aborts what a killed upload
//! left), and the scratch directory's room checked up front. Against `s3kit` on loopback, with
//! faults from its proxy.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use s3kit::{Fault, Match, Options, Proxy, Rule, Server};

use crate::common::*;

const BUCKET: &str = "bkt";

/// An unsigned S3 server (so that the test can list multipart uploads with plain requests),
/// a generated universe on disk, and a scratch directory.
struct Bucket {
    server: Server,
    dir: tempfile::TempDir,
}

impl Bucket {
    fn new(gen_args: &[&str]) -> Bucket {
        let server = Server::start(Options {
            auth: None,
            ..Options::default()
        })
        .expect("server");
        server.bucket_dir(BUCKET);
        let dir = tempfile::tempdir().expect("tempdir");
        gen(&dir.path().join("u"), gen_args);
        std::fs::create_dir(dir.path().join("scratch")).expect("mkdir");
        Bucket { server, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, endpoint: &str, args: &[&str]) -> Command {
        let mut c = spillway();
        for (k, v) in self.server.env() {
            c.env(k, v);
        }
        c.env("AWS_ENDPOINT_URL", endpoint).args(args);
        c
    }

    fn run_via(&self, endpoint: &str, args: &[&str]) -> Output {
        self.command(endpoint, args)
            .output()
            .expect("spillway runs")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_via(&self.server.endpoint(), args)
    }

    /// `build --shard I/N` of the universe into `out` (a path or a URL).
    fn shard_args(&self, i: usize, n: usize, out: &str) -> Vec<String> {
        let u = self.path("u");
        let scratch = self.path("scratch");
        [
            "build",
            "--input",
            s(&u),
            "--output",
            out,
            "--target",
            "target",
            "--quiet",
            "--scratch",
            s(&scratch),
        ]
        .iter()
        .map(|a| a.to_string())
        .chain(["--shard".into(), format!("{i}/{n}")])
        .collect()
    }

    fn object(&self, key: &str) -> PathBuf {
        self.server.bucket_dir(BUCKET).join(key)
    }

    /// Multipart uploads the server still holds.
    fn uploads(&self) -> usize {
        let r = s3kit::raw::request(self.server.addr(), "GET", "/bkt?uploads", &[], &[])
            .expect("list uploads");
        r.text().matches("<UploadId>").count()
    }

    /// Markers of uploads in progress under `prefix`.
    fn markers(&self, prefix: &str) -> Vec<String> {
        std::fs::read_dir(self.object(prefix).join("_spillway-uploads"))
            .map(|d| {
                d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn scratch_is_empty(&self) -> bool {
        std::fs::read_dir(self.path("scratch"))
            .expect("scratch")
            .next()
            .is_none()
    }
}

/// `fault` for every part of every multipart upload.
fn on_parts(fault: Fault) -> Rule {
    Rule {
        when: Match {
            method: Some("PUT".into()),
            key_contains: Some("partNumber".into()),
            ..Match::default()
        },
        then: fault,
    }
}

fn strings(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn a_dataset_in_a_bucket_equals_the_local_one_and_commits_generations() {
    // A shard of one symbol of 120,000 rows x 22 float32 columns is over 8 MiB: it goes up in
    // parts.
    let b = Bucket::new(&["--symbols", "3", "--rows", "120000", "--features", "20"]);
    let mut urls = Vec::new();
    for i in 0..3 {
        let url = format!("s3://{BUCKET}/train/shard-{i}.spill");
        ok(&b.run(&strings(&b.shard_args(i, 3, &url))));
        let local = b.path(&format!("shard-{i}.spill"));
        ok(&b.run(&strings(&b.shard_args(i, 3, s(&local)))));
        let remote = std::fs::read(b.object(&format!("train/shard-{i}.spill"))).expect("object");
        assert!(
            remote == std::fs::read(&local).expect("local"),
            "shard {i}: uploaded bytes differ from the local build"
        );
        urls.push(url);
    }
    assert!(
        std::fs::metadata(b.object("train/shard-0.spill"))
            .expect("shard")
            .len()
            > 8 << 20
    );
    assert_eq!(b.uploads(), 0, "every multipart upload completed");
    assert!(b.markers("train").is_empty(), "no upload marker left");
    assert!(b.scratch_is_empty(), "the local copies are removed");

    let manifest = format!("s3://{BUCKET}/train/dataset.json");
    let mut args = vec!["manifest"];
    args.extend(strings(&urls));
    args.extend(["--output", &manifest]);
    ok(&b.run(&args));
    let written = std::fs::read_to_string(b.object("train/dataset.json")).expect("manifest");
    assert!(written.contains("\"path\": \"shard-0.spill\""), "{written}");
    assert!(written.contains("\"generation\": 1"), "{written}");
    ok(&b.run(&["verify", &manifest]));
    let deep = b.run(&[
        "verify",
        "--deep",
        &manifest,
        "--scratch",
        s(&b.path("scratch")),
    ]);
    ok(&deep);
    assert!(String::from_utf8_lossy(&deep.stdout).contains("chunks verified"));
    // The same dataset again: nothing changes.
    ok(&b.run(&args));
    assert_eq!(
        std::fs::read_to_string(b.object("train/dataset.json")).expect("manifest"),
        written
    );

    // Another dataset over it: refused without --replace; with it, the first is kept as g1.
    let other = format!("s3://{BUCKET}/train/other-0.spill");
    let mut one = b.shard_args(0, 1, &other);
    one.extend(["--max-rows".into(), "100".into()]);
    ok(&b.run(&strings(&one)));
    let replace = ["manifest", other.as_str(), "--output", manifest.as_str()];
    usage_error(
        &b.run(&replace),
        &["dataset.json", "--replace", "dataset.g1.json"],
    );
    ok(&b.run(&[&replace[..], &["--replace"]].concat()));
    let g1 = std::fs::read_to_string(b.object("train/dataset.g1.json")).expect("generation 1");
    assert_eq!(g1, written, "the replaced manifest is kept whole");
    assert!(std::fs::read_to_string(b.object("train/dataset.json"))
        .expect("manifest")
        .contains("\"generation\": 2"));
    ok(&b.run(&["verify", &manifest]));

    // Cleaning generation 1 removes it and the shards only it named.
    let cleaned = b.run(&["clean", &manifest, "--keep-generations", "0"]);
    ok(&cleaned);
    let said = String::from_utf8_lossy(&cleaned.stdout);
    assert!(
        said.contains("dataset.g1.json") && said.contains("shard-2.spill"),
        "{said}"
    );
    assert!(!b.object("train/shard-0.spill").exists());
    assert!(!b.object("train/dataset.g1.json").exists());
    assert!(b.object("train/other-0.spill").exists());
    ok(&b.run(&["verify", "--deep", &manifest]));
}

#[test]
fn verify_finds_a_damaged_shard_in_a_bucket() {
    let b = Bucket::new(&["--symbols", "2", "--rows", "3000", "--features", "4"]);
    let url = format!("s3://{BUCKET}/d/s.spill");
    ok(&b.run(&strings(&b.shard_args(0, 1, &url))));
    let manifest = format!("s3://{BUCKET}/d/dataset.json");
    ok(&b.run(&["manifest", &url, "--output", &manifest]));
    // A flipped byte in the data: the deep check finds it (the quick one reads only the end).
    let key = b.object("d/s.spill");
    let mut bytes = std::fs::read(&key).expect("object");
    bytes[8192] ^= 0x40;
    std::fs::write(&key, &bytes).expect("write");
    ok(&b.run(&["verify", &manifest]));
    fails_with(
        &b.run(&["verify", "--deep", &manifest]),
        &["s.spill", "damaged"],
    );
    // A flipped byte in the metadata: found by the quick check too.
    let n = bytes.len();
    bytes[8192] ^= 0x40;
    bytes[n - 100] ^= 0x01;
    std::fs::write(&key, &bytes).expect("write");
    fails_with(&b.run(&["verify", &manifest]), &["s.spill"]);
}

#[test]
fn an_upload_cut_mid_way_leaves_nothing_that_opens() {
    let b = Bucket::new(&["--symbols", "2", "--rows", "60000", "--features", "20"]);
    // Every part upload is cut off: the proxy never answers it, the client times out, and its
    // retries run out.
    let cut = on_parts(Fault::Stall(Duration::from_secs(30)));
    let proxy = Proxy::start(b.server.addr(), vec![cut], Duration::ZERO).expect("proxy");
    let url = format!("s3://{BUCKET}/cut/shard-0.spill");
    let mut args = b.shard_args(0, 1, &url);
    args.extend(
        [
            "--storage-option",
            "max_retries=1",
            "--storage-option",
            "retry_timeout=2s",
            "--storage-option",
            "timeout=1s",
        ]
        .map(String::from),
    );
    let t = Instant::now();
    fails_with(
        &b.run_via(&proxy.endpoint(), &strings(&args)),
        &["shard-0.spill"],
    );
    assert!(t.elapsed() < Duration::from_secs(60));
    assert!(
        !b.object("cut/shard-0.spill").exists(),
        "no object appeared"
    );
    assert_eq!(b.uploads(), 0, "the failed upload was aborted");
    assert!(b.markers("cut").is_empty(), "its marker is gone");
    assert!(b.scratch_is_empty(), "the local copy is removed");
    // Without the shard, no manifest can be written.
    let manifest = format!("s3://{BUCKET}/cut/dataset.json");
    fails_with(
        &b.run(&["manifest", &url, "--output", &manifest]),
        &["shard-0.spill", "missing"],
    );
    assert!(!b.object("cut/dataset.json").exists());
}

#[test]
fn clean_aborts_the_upload_of_a_killed_build() {
    let b = Bucket::new(&["--symbols", "2", "--rows", "60000", "--features", "20"]);
    let stall = on_parts(Fault::Stall(Duration::from_secs(60)));
    let proxy = Proxy::start(b.server.addr(), vec![stall], Duration::ZERO).expect("proxy");
    let url = format!("s3://{BUCKET}/killed/shard-0.spill");
    let mut child = b
        .command(&proxy.endpoint(), &strings(&b.shard_args(0, 1, &url)))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while b.markers("killed").is_empty() {
        assert!(Instant::now() < deadline, "the upload never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    assert_eq!(b.uploads(), 1, "the killed process left its upload");
    let prefix = format!("s3://{BUCKET}/killed/");
    let dry = b.run(&["clean", &prefix, "--dry-run"]);
    ok(&dry);
    assert!(String::from_utf8_lossy(&dry.stdout).contains("would abort"));
    assert_eq!(b.uploads(), 1);
    let cleaned = b.run(&["clean", &prefix]);
    ok(&cleaned);
    assert!(String::from_utf8_lossy(&cleaned.stdout).contains("aborted the upload of"));
    assert_eq!(b.uploads(), 0, "clean aborted it");
    assert!(b.markers("killed").is_empty());
    assert!(!b.object("killed/shard-0.spill").exists());
}

#[test]
fn a_scratch_without_room_is_refused_up_front() {
    let b = Bucket::new(&["--symbols", "2", "--rows", "60000", "--features", "20"]);
    let Some(small) = mount(b.dir.path(), "small", "tmpfs", "size=1m") else {
        skip("cannot mount a tmpfs (no user namespace here: unshare -rm)");
        return;
    };
    let url = format!("s3://{BUCKET}/room/shard-0.spill");
    let mut args = b.shard_args(0, 1, &url);
    let at = args
        .iter()
        .position(|a| a == "--scratch")
        .expect("--scratch")
        + 1;
    args[at] = s(&small.path).to_string();
    fails_with(&b.run(&strings(&args)), &["bytes available", "free space"]);
    assert!(!b.object("room/shard-0.spill").exists());
    assert_eq!(b.uploads(), 0);
}

#[test]
fn if_changed_skips_a_current_output_in_a_bucket() {
    let b = Bucket::new(&["--symbols", "4", "--rows", "3000", "--features", "4"]);
    let url = format!("s3://{BUCKET}/fresh/shard-1.spill");
    let mut args = b.shard_args(1, 2, &url);
    ok(&b.run(&strings(&args)));
    let written = std::fs::metadata(b.object("fresh/shard-1.spill")).expect("object");
    args.push("--if-changed".into());
    let puts = b.server.puts();
    ok(&b.run(&strings(&args)));
    assert_eq!(b.server.puts(), puts, "current: nothing built or uploaded");
    let now = std::fs::metadata(b.object("fresh/shard-1.spill")).expect("object");
    assert_eq!(now.modified().ok(), written.modified().ok());
    // Another option: not current, built and uploaded again.
    args.extend(["--max-rows".into(), "100".into()]);
    ok(&b.run(&strings(&args)));
    assert!(b.server.puts() > puts, "not current: built and uploaded");
}

/// Issue 25 item 6: a collection of independent files in a bucket, committed and verified as a
/// sharded build's manifest is, and a file replaced since found by the quick check.
#[test]
fn a_collection_in_a_bucket_commits_and_verifies() {
    let b = Bucket::new(&["--symbols", "3", "--rows", "3000", "--features", "4"]);
    let mut urls = Vec::new();
    for (name, extra) in [("a", None), ("b", Some("500"))] {
        let url = format!("s3://{BUCKET}/coll/{name}.spill");
        let mut args = b.shard_args(0, 1, &url);
        args.truncate(args.len() - 2); // not a shard: an independent build
        args.extend(
            extra
                .map(|rows| ["--max-rows".to_string(), rows.to_string()])
                .into_iter()
                .flatten(),
        );
        ok(&b.run(&strings(&args)));
        urls.push(url);
    }
    let manifest = format!("s3://{BUCKET}/coll/dataset.json");
    let mut args = vec![
        "manifest",
        "--collection",
        &urls[0],
        &urls[1],
        "--output",
        &manifest,
    ];
    ok(&b.run(&args));
    let written = std::fs::read_to_string(b.object("coll/dataset.json")).expect("manifest");
    assert!(written.contains("\"kind\": \"collection\""), "{written}");
    assert!(
        written.contains("\"path\": \"b.spill\""),
        "relative: {written}"
    );
    ok(&b.run(&["verify", &manifest]));
    ok(&b.run(&["verify", "--deep", &manifest]));
    // b rebuilt with other rows: the quick check finds it.
    let mut rebuild = b.shard_args(0, 1, &urls[1]);
    rebuild.truncate(rebuild.len() - 2);
    ok(&b.run(&strings(&rebuild)));
    fails_with(
        &b.run(&["verify", &manifest]),
        &["b.spill", "does not match the manifest"],
    );
    // Committed again with --replace: generation 2, the first kept.
    args.push("--replace");
    ok(&b.run(&args));
    assert!(b.object("coll/dataset.g1.json").exists());
    ok(&b.run(&["verify", &manifest]));
}

/// `spillway append` to a time-major dataset in a bucket: the new shard is built in the scratch
/// directory and uploaded, the manifest replaced by a conditional PUT as generation 2 (the first
/// kept), and the bytes are the local append's.
#[test]
fn an_append_to_a_dataset_in_a_bucket_equals_the_local_one() {
    let b = Bucket::new(&["--symbols", "4", "--rows", "3000", "--features", "3"]);
    let today = b.path("u");
    let probe = b.path("probe.spill");
    ok(&build(&today, &probe, &["--order", "time"]));
    let times = spill::open(&probe)
        .expect("open")
        .column::<i64>("ts")
        .expect("ts")
        .to_vec();
    let cut = times[times.len() * 9 / 10];
    let yesterday = b.path("yesterday");
    std::fs::create_dir(&yesterday).expect("mkdir");
    crate::append::truncate(&today, &yesterday, cut);
    let local = b.path("local");
    std::fs::create_dir(&local).expect("mkdir");
    for (dir, manifest) in [
        (
            format!("s3://{BUCKET}/ts"),
            format!("s3://{BUCKET}/ts/dataset.json"),
        ),
        (
            s(&local).to_string(),
            s(&local.join("dataset.json")).to_string(),
        ),
    ] {
        let mut shards = Vec::new();
        for i in 0..2 {
            let out = format!("{dir}/shard-{i}.spill");
            let mut args = b.shard_args(i, 2, &out);
            args[2] = s(&yesterday).to_string();
            args.extend(["--order".into(), "time".into()]);
            ok(&b.run(&strings(&args)));
            shards.push(out);
        }
        let mut args = vec!["manifest"];
        args.extend(strings(&shards));
        args.extend(["--output", &manifest]);
        ok(&b.run(&args));
        let scratch = b.path("scratch");
        let a = [
            "append",
            &manifest,
            "--input",
            s(&today),
            "--scratch",
            s(&scratch),
            "--quiet",
        ];
        ok(&b.run(&a));
        ok(&b.run(&["verify", &manifest]));
        assert!(
            b.scratch_is_empty(),
            "the local copy of the new shard is removed"
        );
    }
    let remote: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.object("ts/dataset.json")).expect("manifest"))
            .expect("json");
    assert_eq!(remote["generation"], 2);
    assert!(b.object("ts/dataset.g1.json").exists(), "generation 1 kept");
    let name = remote["shards"][2]["path"]
        .as_str()
        .expect("the appended shard");
    assert_eq!(
        std::fs::read(b.object(&format!("ts/{name}"))).expect("object"),
        std::fs::read(local.join(name)).expect("local"),
        "the appended shard's bytes are the local append's"
    );
}
