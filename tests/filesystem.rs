//! The filesystem under a build: unreadable inputs, a full disk (a small tmpfs), unwritable and
//! missing output directories. The tmpfs mounts need a user namespace (`common::mount`), not root.

use std::path::Path;
use std::process::Command;

use crate::common::*;

#[test]
fn unreadable_file_is_an_error_naming_it() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    gen(&u, &["--symbols", "2", "--rows", "100", "--features", "2"]);
    let victim = u.join("S0001.parquet");
    set_mode(&victim, 0o000);
    set_mode(d.path(), 0o777);
    let out = d.path().join("o.spill");
    let root = is_root();
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_spillway"),
        ]);
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_spillway"))
    };
    let o = cmd
        .args([
            "build",
            "--input",
            s(&u),
            "--output",
            s(&out),
            "--no-target",
        ])
        .output()
        .expect("run");
    if root && o.status.code() != Some(1) && stderr(&o).contains("setpriv") {
        skip("setpriv unavailable: as root, the file would be readable");
        return;
    }
    fails_with(&o, &["S0001.parquet", "Permission denied"]);
    set_mode(&victim, 0o644);
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn disk_full_is_refused_up_front_and_keeps_the_previous_output() {
    let d = tempfile::tempdir().expect("tempdir");
    let Some(m) = mount(d.path(), "mnt", "tmpfs", "size=3m") else {
        skip("cannot mount a tmpfs (no user namespace here: unshare -rm)");
        return;
    };
    let small = d.path().join("small");
    let big = d.path().join("big");
    gen(
        &small,
        &["--symbols", "2", "--rows", "200", "--features", "3"],
    );
    gen(
        &big,
        &["--symbols", "4", "--rows", "20000", "--features", "10"],
    );
    let out = m.path.join("train.spill");
    ok(&run(&[
        "build",
        "--input",
        s(&small),
        "--output",
        s(&out),
        "--no-target",
        "--quiet",
    ]));
    let before = std::fs::read(&out).expect("read");
    for mode in ["auto", "mmap", "direct"] {
        let o = run(&[
            "build",
            "--input",
            s(&big),
            "--output",
            s(&out),
            "--no-target",
            "--write-mode",
            mode,
        ]);
        // Refused before a byte is written: the plan knows the file's size.
        fails_with(&o, &["train.spill", "bytes available", "free space"]);
        assert_eq!(
            std::fs::read(&out).expect("read"),
            before,
            "{mode}: the previous output changed"
        );
        assert_eq!(
            entries(&m.path),
            vec!["train.spill".to_string()],
            "{mode}: partial files left"
        );
    }
    ok(&run(&["verify", s(&out)]));
}

#[test]
fn unwritable_and_missing_output_directories() {
    let d = tempfile::tempdir().expect("tempdir");
    let u = d.path().join("u");
    gen(&u, &["--symbols", "2", "--rows", "100", "--features", "2"]);
    let missing = d.path().join("no/such/dir/o.spill");
    usage_error(
        &run(&[
            "build",
            "--input",
            s(&u),
            "--output",
            s(&missing),
            "--no-target",
        ]),
        &["no/such/dir/o.spill", "does not exist"],
    );
    let Some(m) = mount(d.path(), "mnt", "tmpfs", "size=1m,ro") else {
        skip("cannot mount a tmpfs (no user namespace here: unshare -rm): the read-only case");
        return;
    };
    let out = m.path.join("o.spill");
    fails_with(
        &run(&[
            "build",
            "--input",
            s(&u),
            "--output",
            s(&out),
            "--no-target",
        ]),
        &["o.spill", "Read-only file system"],
    );
}
