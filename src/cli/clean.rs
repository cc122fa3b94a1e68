//! `spillway clean DIR`: remove temporary files left by builds that were killed. Files of builds
//! still running are never touched (their pid is alive).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// Arguments of `spillway clean`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory of the spill files (or a spill file: its directory is cleaned).
    path: PathBuf,
    /// Only list what would be removed.
    #[arg(long)]
    dry_run: bool,
}

/// Runs clean.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let dir = if a.path.is_dir() {
        a.path.clone()
    } else {
        a.path.parent().map(PathBuf::from).unwrap_or_default()
    };
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    let stale = spill::stale_temps(&dir).with_context(|| format!("listing {}", dir.display()))?;
    for p in &stale {
        if a.dry_run {
            println!("would remove {}", p.display());
        } else {
            std::fs::remove_file(p).with_context(|| format!("removing {}", p.display()))?;
            println!("removed {}", p.display());
        }
    }
    if stale.is_empty() {
        println!("no stale temporary files in {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}
