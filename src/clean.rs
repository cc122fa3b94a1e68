//! `spillway clean`: what killed builds leave behind, and what old datasets no longer need.
//!
//! - `clean DIR` (or a spill file: its directory): temporary files of killed builds, and in a
//!   scratch directory the copies of killed uploads and fetches; those of processes still
//!   running are never touched (their pid is alive);
//! - `clean s3://bucket/prefix/`: the multipart uploads of killed processes under the prefix
//!   (aborted, so the store stops keeping their parts);
//! - `clean DATASET.json --keep-generations K` (a path or a URL): the manifest generations
//!   older than the newest K, and the shards and plans only they name.

use std::path::PathBuf;

use anyhow::Context;
use spillway::publish::{is_url, Place};
use spillway::Cancel;

use crate::options::Remote;
use crate::out::{outln, Usage};

/// Arguments of `spillway clean`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory of the spill files (or a spill file: its directory), a bucket prefix
    /// (s3://bucket/prefix/), or a dataset manifest with --keep-generations.
    path: PathBuf,
    /// Only list what would be removed.
    #[arg(long)]
    dry_run: bool,
    /// Remove the dataset's manifest generations (dataset.g<N>.json) older than the newest K,
    /// and the shards and plans that only they name.
    #[arg(long, value_name = "K")]
    keep_generations: Option<usize>,
    /// In a bucket: abort the uploads of other machines started more than this long ago (their
    /// processes cannot be seen from here; this machine's are aborted once their process is
    /// gone).
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    older_than: String,
    #[command(flatten)]
    remote: Remote,
}

/// Runs clean.
pub fn run(a: Args) -> anyhow::Result<u8> {
    if let Some(keep) = a.keep_generations {
        return generations(&a, keep);
    }
    if is_url(&a.path) {
        return uploads(&a);
    }
    let meta =
        std::fs::metadata(&a.path).map_err(|e| Usage(format!("{}: {e}", a.path.display())))?;
    let dir = match meta.is_dir() {
        true => a.path.clone(),
        false => match a.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        },
    };
    let mut stale =
        spill::stale_temps(&dir).with_context(|| format!("listing {}", dir.display()))?;
    stale.extend(spillway::publish::Scratch::stale(&dir)?);
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
    Ok(0)
}

fn said(dry_run: bool) -> &'static str {
    if dry_run {
        "would remove"
    } else {
        "removed"
    }
}

fn generations(a: &Args, keep: usize) -> anyhow::Result<u8> {
    let cancel = Cancel::new();
    let place = Place::of("clean", &a.path, &a.remote.storage()?, &cancel)?;
    let c = spillway::dataset::clean_generations(&place, &a.path, keep, a.dry_run)?;
    for p in c.generations.iter().chain(&c.files) {
        outln!("{} {}", said(a.dry_run), p.display())?;
    }
    if c.generations.is_empty() {
        outln!(
            "{}: no generations beyond the newest {keep}",
            a.path.display()
        )?;
    }
    Ok(0)
}

#[cfg(feature = "object-store")]
fn uploads(a: &Args) -> anyhow::Result<u8> {
    let older = spillway::publish::parse_duration(&a.older_than)
        .ok_or_else(|| Usage(format!("--older-than {}: not a duration", a.older_than)))?;
    let storage = a.remote.storage()?;
    let u = spillway::publish::clean_uploads(&a.path, &storage, older, a.dry_run, &Cancel::new())?;
    let verb = if a.dry_run { "would abort" } else { "aborted" };
    for m in &u.aborted {
        outln!(
            "{verb} the upload of {} (pid {} on {})",
            m.url,
            m.pid,
            m.host
        )?;
    }
    for m in &u.running {
        outln!(
            "left the upload of {} (pid {} on {}): running or recent",
            m.url,
            m.pid,
            m.host
        )?;
    }
    if u.aborted.is_empty() && u.running.is_empty() {
        outln!("no unfinished uploads under {}", a.path.display())?;
    }
    Ok(0)
}

#[cfg(not(feature = "object-store"))]
fn uploads(a: &Args) -> anyhow::Result<u8> {
    Err(Usage(format!(
        "{}: this spillway was built without object storage",
        a.path.display()
    ))
    .into())
}
