//! Items 1-3: outputs never replace devices, FIFOs, symlinks to them, their own input, or any
//! file the command reads (config, plan, counts, shards), through symlinks and hard links.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::small;
use crate::common::*;

/// A character device for the refusal cases: a new one like /dev/null at `path` (`mknod`, as
/// root), else, not being root, /dev/null itself, which a build could not replace even if it
/// tried (/dev is not ours). `None` as root where mknod is refused (a container without
/// CAP_MKNOD): the caller skips saying so.
fn null_device(path: &Path) -> Option<PathBuf> {
    let made = Command::new("mknod")
        .args([s(path), "c", "1", "3"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|st| st.success());
    if made {
        Some(path.to_path_buf())
    } else {
        (!is_root()).then(|| PathBuf::from("/dev/null"))
    }
}

fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo")
        .arg(s(path))
        .status()
        .expect("mkfifo");
    assert!(st.success());
}

fn is_char_device(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_char_device())
}

fn is_fifo(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_fifo())
}

/// Item 1: a spill output refuses a device, a FIFO and a symlink to a special file (exit 2),
/// leaving each as it was; an export streams into them instead, never replacing them.
#[test]
fn i21_01_outputs_never_replace_devices_or_fifos() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = small(d.path(), "3", "200");
    let fifo = d.path().join("fifo");
    mkfifo(&fifo);
    usage_error(&build(&u, &fifo, &[]), &["--output", "is a FIFO"]);
    assert!(is_fifo(&fifo), "the FIFO is still a FIFO");
    let link = d.path().join("stdout-link");
    std::os::unix::fs::symlink("/proc/self/fd/1", &link).expect("symlink");
    usage_error(&build(&u, &link, &[]), &["--output", "is a FIFO"]);
    assert!(std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()));

    let spill = d.path().join("o.spill");
    ok(&build(&u, &spill, &[]));
    let Some(null) = null_device(&d.path().join("null")) else {
        skip("mknod refused to root: the device cases");
        return;
    };
    usage_error(&build(&u, &null, &[]), &["is a character device"]);
    assert!(is_char_device(&null), "the device is still a device");
    // An export writes into the device directly; the device stays.
    let o = run(&["export", s(&spill), "--to", s(&null), "--format", "arrow"]);
    ok(&o);
    assert!(is_char_device(&null), "the device is still a device");
    // And into a FIFO, byte for byte what it writes to a regular file.
    let file = d.path().join("o.arrow");
    ok(&run(&["export", s(&spill), "--to", s(&file)]));
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(&fifo).expect("read the FIFO"))
    };
    ok(&run(&[
        "export",
        s(&spill),
        "--to",
        s(&fifo),
        "--format",
        "arrow",
    ]));
    let streamed = reader.join().expect("reader");
    assert_eq!(streamed, std::fs::read(&file).expect("read"));
    assert!(is_fifo(&fifo));
}

/// Item 2: `export FILE --to FILE` (or a link to it) is refused and the file kept.
#[test]
fn i21_02_export_never_replaces_its_input() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = small(d.path(), "3", "200");
    let spill = d.path().join("s.spill");
    ok(&build(&u, &spill, &[]));
    let before = std::fs::read(&spill).expect("read");
    let hard = d.path().join("hard.arrow");
    std::fs::hard_link(&spill, &hard).expect("hard link");
    let soft = d.path().join("soft.arrow");
    std::os::unix::fs::symlink(&spill, &soft).expect("symlink");
    for to in [&spill, &hard, &soft] {
        let o = run(&["export", s(&spill), "--to", s(to), "--format", "arrow"]);
        usage_error(&o, &["--to", "the spill file being exported"]);
    }
    assert_eq!(std::fs::read(&spill).expect("read"), before);
    // A directory is refused as a directory, not "file is 4096 bytes".
    let o = run(&[
        "export",
        s(&spill),
        "--to",
        s(d.path()),
        "--format",
        "arrow",
    ]);
    usage_error(&o, &["is a directory"]);
}

/// Item 3: every output is checked against every file the command reads.
#[test]
fn i21_03_outputs_never_replace_config_plan_counts_or_shards() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = small(d.path(), "3", "200");
    let unchanged = |p: &Path, before: &[u8]| {
        assert_eq!(
            std::fs::read(p).expect("read"),
            before,
            "{} kept",
            p.display()
        );
    };

    // build --config b.toml --output b.toml (and through a hard link).
    let cfg = d.path().join("b.toml");
    let text = format!("input = {:?}\ntarget = \"target\"\n", s(&u));
    std::fs::write(&cfg, &text).expect("write");
    let hard = d.path().join("b-hard.spill");
    std::fs::hard_link(&cfg, &hard).expect("hard link");
    for out in [&cfg, &hard] {
        let o = run(&["build", "--config", s(&cfg), "--output", s(out), "--quiet"]);
        usage_error(&o, &["--output", "the --config file"]);
    }
    unchanged(&cfg, text.as_bytes());
    // The summary may not be the config either.
    let o = run(&[
        "build",
        "--config",
        s(&cfg),
        "--output",
        s(&d.path().join("x.spill")),
        "--summary",
        s(&cfg),
        "--quiet",
    ]);
    usage_error(&o, &["--summary", "the --config file"]);
    unchanged(&cfg, text.as_bytes());

    // count, plan-cs, build --shard --cs-plan, manifest.
    let filters = ["--target", "target", "--max-cs-samples", "2", "--seed", "1"];
    let mut counts = Vec::new();
    for i in 0..2 {
        let c = d.path().join(format!("count-{i}"));
        let shard = format!("{i}/2");
        let mut args = vec![
            "count",
            "--input",
            s(&u),
            "--shard",
            &shard,
            "--output",
            s(&c),
        ];
        args.extend(filters);
        ok(&run(&args));
        counts.push(c);
    }
    let count0 = std::fs::read(&counts[0]).expect("read");
    let mut args = vec![
        "plan-cs",
        s(&counts[0]),
        s(&counts[1]),
        "--max-cs-samples",
        "2",
    ];
    args.extend(["--seed", "1", "--output", s(&counts[0])]);
    usage_error(&run(&args), &["--output", "one of the count files"]);
    unchanged(&counts[0], &count0);
    let plan = d.path().join("cs.plan");
    args.pop();
    args.push(s(&plan));
    ok(&run(&args));
    let plan_bytes = std::fs::read(&plan).expect("read");
    let mut shard_args = vec!["--shard", "0/2", "--cs-plan", s(&plan)];
    shard_args.extend(&filters[2..]);
    usage_error(
        &build(&u, &plan, &shard_args),
        &["--output", "the --cs-plan file"],
    );
    unchanged(&plan, &plan_bytes);
    let mut shards = Vec::new();
    for i in 0..2 {
        let out = d.path().join(format!("shard-{i}.spill"));
        let shard = format!("{i}/2");
        let mut extra = vec!["--shard", shard.as_str(), "--cs-plan", s(&plan)];
        extra.extend(&filters[2..]);
        ok(&build(&u, &out, &extra));
        shards.push(out);
    }
    let shard0 = std::fs::read(&shards[0]).expect("read");
    let o = run(&[
        "manifest",
        s(&shards[0]),
        s(&shards[1]),
        "--cs-plan",
        s(&plan),
        "--output",
        s(&shards[0]),
    ]);
    usage_error(&o, &["--output", "one of the shards"]);
    unchanged(&shards[0], &shard0);
    let o = run(&[
        "manifest",
        s(&shards[0]),
        s(&shards[1]),
        "--cs-plan",
        s(&plan),
        "--output",
        s(&plan),
    ]);
    usage_error(&o, &["--output", "the --cs-plan file"]);
    unchanged(&plan, &plan_bytes);
}

/// Runs `args`, killing it after 20 s: `None` when it had to be killed (it hung).
fn run_bounded(args: &[&str]) -> Option<std::process::Output> {
    let mut child = spillway()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let t = std::time::Instant::now();
    while t.elapsed() < std::time::Duration::from_secs(20) {
        if child.try_wait().expect("wait").is_some() {
            return Some(child.wait_with_output().expect("output"));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Re-probe of items 1-3: a symlink at the output path is written through (the link stays), a
/// dangling one refused; a socket and `-` refused for renamed outputs; `export --to -` streams;
/// `--if-changed` on a FIFO output and a FIFO `--cs-plan` are refused at once, never waited on.
#[test]
fn i21_01_symlinks_sockets_stdout_and_fifos_that_would_block() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = small(d.path(), "3", "200");
    let real = d.path().join("real.spill");
    std::fs::write(&real, "old").expect("write");
    let link = d.path().join("link.spill");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    ok(&build(&u, &link, &[]));
    assert!(std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()));
    assert!(
        spill::open(&real).is_ok(),
        "the file the link names was written"
    );
    let dangling = d.path().join("dangling.spill");
    std::os::unix::fs::symlink(d.path().join("nothing"), &dangling).expect("symlink");
    usage_error(&build(&u, &dangling, &[]), &["symlink to a missing file"]);
    assert!(std::fs::symlink_metadata(&dangling).is_ok_and(|m| m.file_type().is_symlink()));

    let sock = d.path().join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("socket");
    usage_error(&build(&u, &sock, &[]), &["is a socket"]);
    let o = run(&["export", s(&real), "--to", s(&sock), "--format", "arrow"]);
    usage_error(&o, &["is a socket"]);
    usage_error(&build(&u, Path::new("-"), &[]), &["standard output"]);
    let file = d.path().join("o.arrow");
    ok(&run(&["export", s(&real), "--to", s(&file)]));
    let o = run(&["export", s(&real), "--to", "-", "--format", "arrow"]);
    ok(&o);
    assert_eq!(
        o.stdout,
        std::fs::read(&file).expect("read"),
        "streamed to stdout"
    );
    assert!(!Path::new("-").exists());

    let fifo = d.path().join("fifo");
    mkfifo(&fifo);
    let mut args = build_args(&u, &fifo, &["--if-changed", "--quiet"]);
    let o = run_bounded(&args).expect("--if-changed on a FIFO returns");
    usage_error(&o, &["is a FIFO"]);
    args = build_args(&u, &real, &["--shard", "0/2", "--cs-plan", s(&fifo)]);
    args.extend(["--max-cs-samples", "2", "--quiet"]);
    let o = run_bounded(&args).expect("a FIFO plan returns");
    usage_error(&o, &["--cs-plan", "not a regular file"]);
    let o = run_bounded(&["inspect", "--input", s(&u), "--output", s(&fifo)]).expect("returns");
    usage_error(&o, &["is a FIFO"]);
}
