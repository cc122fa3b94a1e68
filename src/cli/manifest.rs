//! `spillway manifest`: the manifest of a sharded dataset (`dataset.json`), written last and
//! atomically once the shards are in place; and `spillway verify dataset.json`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use spillway::dataset;

use super::out::{note, outln};

/// Arguments of `spillway manifest`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shards (spill files built with --shard), in any order.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// The cross-section plan they were built with.
    #[arg(long)]
    cs_plan: Option<PathBuf>,
    /// The manifest to write (atomically); shard paths are stored relative to its directory.
    #[arg(long)]
    output: PathBuf,
}

/// Writes the manifest.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let m = dataset::manifest(&args.shards, args.cs_plan.as_deref(), &args.output)?;
    note!(
        "wrote {}: {} shards, {} rows\n",
        args.output.display(),
        m.shards.len(),
        m.nrows
    );
    Ok(ExitCode::SUCCESS)
}

/// Whether `path` looks like a manifest rather than a spill file (a JSON object).
pub fn is_manifest(path: &Path) -> bool {
    use std::io::Read;
    let mut b = [0u8; 1];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok_and(|_| b[0] == b'{')
}

/// `spillway verify dataset.json`: every shard, the plan, and every chunk checksum.
pub fn verify(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let r = match dataset::verify_dataset(path, true) {
        Ok(r) => r,
        Err(e) => {
            // With --json, stdout holds one JSON object whatever happens.
            if json {
                let error = format!("{:#}", anyhow::Error::from(e));
                outln!(
                    "{}",
                    serde_json::json!({"file": path, "ok": false, "error": error})
                )?;
                note!("spillway: {error}\n");
                return Ok(ExitCode::FAILURE);
            }
            return Err(e.into());
        }
    };
    if json {
        outln!("{}", serde_json::to_string(&r)?)?;
    } else if r.is_ok() {
        outln!(
            "ok: {}: {} shards, {} rows; {} chunks verified",
            path.display(),
            r.shards,
            r.nrows,
            r.chunks
        )?;
    }
    for p in &r.problems {
        note!("spillway: {p}\n");
    }
    Ok(if r.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
