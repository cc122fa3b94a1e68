//! The filesystem under a build: unreadable inputs, a full disk (a small tmpfs), unwritable and
//! missing output directories.

use std::path::{Path, PathBuf};
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
    let root = unsafe_free_is_root();
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
        eprintln!("note: setpriv unavailable; skipping");
        return;
    }
    fails_with(&o, &["S0001.parquet", "Permission denied"]);
    set_mode(&victim, 0o644);
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn unsafe_free_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Mounts a tmpfs of `size` at a new directory under `dir` (root only); None where not allowed.
fn tmpfs(dir: &Path, size: &str) -> Option<Mount> {
    let m = dir.join(format!("mnt-{size}"));
    std::fs::create_dir_all(&m).ok()?;
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", s(&m)])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(Mount(m))
}

struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn disk_full_is_refused_up_front_and_keeps_the_previous_output() {
    let d = tempfile::tempdir().expect("tempdir");
    let Some(m) = tmpfs(d.path(), "3m") else {
        eprintln!("note: cannot mount a tmpfs here (needs root); skipping the disk-full test");
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
    let out = m.0.join("train.spill");
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
            entries(&m.0),
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
    if let Some(m) = tmpfs(d.path(), "1m") {
        let remount = Command::new("mount")
            .args(["-o", "remount,ro", s(&m.0)])
            .status();
        if remount.is_ok_and(|s| s.success()) {
            let out = m.0.join("o.spill");
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
    } else {
        eprintln!("note: cannot mount here; the read-only directory case is skipped");
    }
}
