//! `spillway clean DIR`: remove temporary files left by builds that were killed. Files of builds
//! still running are never touched (their pid is alive).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::out::{outln, Usage};

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
    let meta =
        std::fs::metadata(&a.path).map_err(|e| Usage(format!("{}: {e}", a.path.display())))?;
    let dir = match meta.is_dir() {
        true => a.path.clone(),
        false => match a.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        },
    };
    let stale = spill::stale_temps(&dir).with_context(|| format!("listing {}", dir.display()))?;
    for p in &stale {
        if a.dry_run {
            outln!("would remove {}", p.display())?;
        } else {
            std::fs::remove_file(p).with_context(|| format!("removing {}", p.display()))?;
            outln!("removed {}", p.display())?;
        }
    }
    if stale.is_empty() {
        outln!("no stale temporary files in {}", dir.display())?;
    }
    Ok(ExitCode::SUCCESS)
}
