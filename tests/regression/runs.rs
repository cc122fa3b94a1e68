//! Items 14, 16 and 17: signals, smaller points of a first run, `--if-changed`.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// Whether `dir` holds a spill temporary file.
fn has_temp(dir: &Path) -> bool {
    entries(dir).iter().any(|n| n.ends_with(".spill-tmp"))
}

/// Item 14: SIGINT, SIGTERM and SIGHUP during a build stop it, remove the temporary, say so,
/// exit 128 + N, and leave the previous output as it was.
#[test]
fn i12_14_signals_stop_a_build_cleanly() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    gen(
        &u,
        &["--symbols", "8", "--rows", "20000", "--features", "50"],
    );
    let outdir = d.path().join("out");
    std::fs::create_dir(&outdir).expect("mkdir");
    let out = outdir.join("o.spill");
    ok(&build(&u, &out, &["--features", "f000"]));
    let previous = std::fs::read(&out).expect("read");
    for (sig, code, name) in [
        ("INT", 130, "SIGINT"),
        ("TERM", 143, "SIGTERM"),
        ("HUP", 129, "SIGHUP"),
    ] {
        // One reader and small batches: the build takes seconds in a debug binary.
        let slow = ["--threads", "1", "--batch-rows", "256", "--quiet"];
        let child = spillway()
            .args(build_args(&u, &out, &slow))
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let t = Instant::now();
        while !has_temp(&outdir) && t.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(has_temp(&outdir), "{name}: the build never started writing");
        let kill = std::process::Command::new("kill")
            .args(["-s", sig, &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(kill.success());
        let o = child.wait_with_output().expect("wait");
        assert_eq!(o.status.code(), Some(code), "{name}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(&format!("interrupted by {name}")), "{e}");
        assert!(e.contains("temporary file is removed"), "{e}");
        assert!(
            !has_temp(&outdir),
            "{name}: a temporary is left: {:?}",
            entries(&outdir)
        );
        assert_eq!(
            std::fs::read(&out).expect("read"),
            previous,
            "{name}: output changed"
        );
    }
}

/// Item 16: `--max-rows 0` and filters that remove every row warn; config files take `summary`
/// and `quiet`; a flag turns off a config file's `true`.
#[test]
fn i12_16_empty_outputs_warn_and_config_files_take_every_option() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    gen(&u, &["--symbols", "2", "--rows", "100", "--features", "2"]);
    let out = d.path().join("o.spill");
    let o = run(&build_args(&u, &out, &["--max-rows", "0"]));
    ok(&o);
    assert!(
        stderr(&o).contains("warning: the output has 0 rows: --max-rows 0"),
        "{}",
        stderr(&o)
    );
    let o = run(&build_args(&u, &out, &["--min-cs", "1000"]));
    ok(&o);
    assert!(
        stderr(&o).contains("the filters removed every row"),
        "{}",
        stderr(&o)
    );

    let summary = d.path().join("s.json");
    let cfg = d.path().join("c.toml");
    let text = format!(
        "input = {:?}\noutput = {:?}\ntarget = \"target\"\ndrop-null-target = true\nsummary = {:?}\nquiet = true\n",
        s(&u),
        s(&out),
        s(&summary)
    );
    std::fs::write(&cfg, text).expect("write");
    let o = run(&["build", "--config", s(&cfg)]);
    ok(&o);
    assert!(
        stderr(&o).is_empty(),
        "quiet from the config: {}",
        stderr(&o)
    );
    let j: Value = serde_json::from_slice(&std::fs::read(&summary).expect("read")).expect("json");
    assert_eq!(j["filters"]["drop_null_target"], true);
    let o = run(&[
        "build",
        "--config",
        s(&cfg),
        "--drop-null-target=false",
        "--quiet=false",
    ]);
    ok(&o);
    assert!(
        stderr(&o).contains("wrote"),
        "--quiet=false wins: {}",
        stderr(&o)
    );
    let j: Value = serde_json::from_slice(&std::fs::read(&summary).expect("read")).expect("json");
    assert_eq!(j["filters"]["drop_null_target"], false, "the flag wins");
}

/// Item 16: `gen` into a universe refuses (old symbols would stay) unless told to replace it;
/// an output name near 255 bytes builds.
#[test]
fn i12_16_gen_refuses_to_mix_universes_and_long_names_build() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    gen(&u, &["--symbols", "3", "--rows", "50", "--features", "2"]);
    let again = [
        "gen",
        "--output",
        s(&u),
        "--symbols",
        "1",
        "--rows",
        "50",
        "--features",
        "2",
    ];
    usage_error(&run(&again), &["not empty", "--replace"]);
    std::fs::write(u.join("notes.txt"), "kept").expect("write");
    let mut replace = again.to_vec();
    replace.push("--replace");
    ok(&run(&replace));
    assert_eq!(entries(&u), ["S0000.parquet", "notes.txt"]);

    let long = d.path().join(format!("{}.spill", "x".repeat(248)));
    ok(&build(&u, &long, &[]));
    ok(&run(&["verify", s(&long)]));
}

/// Item 17: `--if-changed` skips a build whose output is current, and builds when an input, an
/// option or the output changed; `inspect --output` tells which.
#[test]
fn i12_17_if_changed_skips_current_outputs() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    gen(&u, &["--symbols", "3", "--rows", "100", "--features", "2"]);
    let out = d.path().join("o.spill");
    let if_changed = |extra: &[&str]| {
        let mut args = build_args(&u, &out, &["--if-changed"]);
        args.extend_from_slice(extra);
        run(&args)
    };
    let o = if_changed(&[]);
    ok(&o);
    assert!(stderr(&o).contains("it does not exist"), "{}", stderr(&o));
    let modified = || {
        std::fs::metadata(&out)
            .and_then(|m| m.modified())
            .expect("mtime")
    };
    let first = modified();
    let o = if_changed(&[]);
    ok(&o);
    assert!(stderr(&o).contains("is current"), "{}", stderr(&o));
    assert_eq!(modified(), first, "nothing was rewritten");
    let inspect = |out: &Path| {
        let o = run(&[
            "inspect",
            "--input",
            s(&u),
            "--target",
            "target",
            "--output",
            s(out),
            "--json",
        ]);
        ok(&o);
        let j: Value = serde_json::from_str(&stdout(&o)).expect("json");
        j["output"]["current"].as_bool().expect("bool")
    };
    assert!(inspect(&out));

    let o = if_changed(&["--max-rows", "10"]);
    ok(&o);
    assert!(stderr(&o).contains("other options"), "{}", stderr(&o));
    ok(&if_changed(&[]));
    // An input rewritten (same bytes, new time): rebuilt.
    let f = u.join("S0001.parquet");
    let bytes = std::fs::read(&f).expect("read");
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&f, bytes).expect("write");
    assert!(!inspect(&out));
    let o = if_changed(&[]);
    assert!(
        stderr(&o).contains("S0001.parquet changed"),
        "{}",
        stderr(&o)
    );
    // A new symbol that would be skipped does not make the output stale under skip; a readable
    // one does.
    ok(&if_changed(&["--on-error", "skip"]));
    std::fs::write(u.join("BAD.parquet"), b"not parquet").expect("write");
    let o = if_changed(&["--on-error", "skip"]);
    assert!(stderr(&o).contains("is current"), "{}", stderr(&o));
    gen(
        &d.path().join("more"),
        &["--symbols", "1", "--rows", "100", "--features", "2"],
    );
    std::fs::rename(d.path().join("more/S0000.parquet"), u.join("NEW.parquet")).expect("mv");
    let o = if_changed(&["--on-error", "skip"]);
    assert!(stderr(&o).contains("symbol NEW is new"), "{}", stderr(&o));
    // A damaged output is not current.
    ok(&if_changed(&["--on-error", "skip"]));
    let mut bytes = std::fs::read(&out).expect("read");
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    std::fs::write(&out, bytes).expect("write");
    let o = if_changed(&["--on-error", "skip"]);
    assert!(stderr(&o).contains("does not open"), "{}", stderr(&o));
}
