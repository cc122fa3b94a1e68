//! `spillway plan-cs`: count files merged into the cross-section plan (the reduce), or with
//! `--merge-only` into one count file (an inner node of a tree reduction).

use std::path::PathBuf;

use spillway::PlanCsOptions;

use crate::options::Remote;
use crate::out::{note, outln};

/// Arguments of `spillway plan-cs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Count files (`spillway count`), covering every symbol once (paths or URLs).
    #[arg(required = true)]
    counts: Vec<PathBuf>,
    /// Drop timestamps with fewer than N rows across the universe.
    #[arg(long, value_name = "N", default_value_t = 0)]
    min_cs: u64,
    /// At timestamps with more than K rows keep K (must be the counts' K).
    #[arg(long, value_name = "K")]
    max_cs_samples: Option<u64>,
    /// Seed of the sampling (must be the counts').
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The plan to write (atomically; a URL: built in --scratch, then uploaded).
    #[arg(long)]
    output: PathBuf,
    /// Write the merged counts as one count file instead of a plan (for a tree of merges).
    #[arg(long)]
    merge_only: bool,
    /// Print what was written as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    remote: Remote,
}

/// Merges.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let opts = PlanCsOptions {
        output: args.output,
        min_cs: args.min_cs,
        max_cs_samples: args.max_cs_samples,
        seed: args.seed,
        merge_only: args.merge_only,
        storage: args.remote.storage()?,
        scratch: args.remote.scratch.clone(),
    };
    let s = spillway::plan_cs(&args.counts, &opts)?;
    if args.json {
        outln!("{}", serde_json::to_string(&s)?)?;
    } else {
        note!(
            "wrote {} ({}) from {} count files: {} of {} timestamps kept, {} sampled; {} of {} rows kept\n",
            s.output.display(),
            s.checksum,
            s.inputs,
            s.kept,
            s.distinct,
            s.sampled,
            s.rows[1],
            s.rows[0]
        );
    }
    Ok(0)
}
