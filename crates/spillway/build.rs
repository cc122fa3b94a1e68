//! Records the git commit the binary was built from, for the build summary only (never the spill
//! file, so cargo, wheel and in-process builds of one version write the same bytes). Taken from
//! `SPILLWAY_COMMIT` when set (a wheel built from an sdist has no repository), else from git,
//! else "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SPILLWAY_COMMIT");
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
    };
    // Rebuild when HEAD moves: HEAD itself (a branch switch) and the ref it names (a commit).
    for path in ["HEAD", "refs/heads", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    let commit = std::env::var("SPILLWAY_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SPILLWAY_COMMIT={commit}");
}
