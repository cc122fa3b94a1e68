//! `spillway compact`: a time-major dataset's shards (its first build's and every append's)
//! merged into fewer, committed as the next manifest generation (the old one kept as
//! `dataset.g<N>.json`, its shards left for `spillway clean --keep-generations`).

use std::path::PathBuf;

use spillway::dataset::{self, Access, CompactOptions};
use spillway::Cancel;

use crate::build::{interrupted, on_signals};
use crate::options::Remote;
use crate::out::note;

/// Arguments of `spillway compact`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The dataset's manifest (`dataset.json`; a path or a URL) of a time-major dataset (built
    /// with `--order time --shard I/N`, grown by `spillway append`).
    dataset: PathBuf,
    /// Time shards to merge the dataset's shards into (consecutive shards, balanced by rows).
    #[arg(long, default_value_t = 1)]
    shards: u32,
    /// Write what was compacted as JSON to this file (`-`: standard output).
    #[arg(long)]
    summary: Option<PathBuf>,
    /// No progress and no report on stderr.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    remote: Remote,
}

/// Compacts.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let access = Access {
        storage: args.remote.storage()?,
        scratch: args.remote.scratch.clone(),
        replace: false,
    };
    let how = CompactOptions {
        shards: args.shards,
    };
    let cancel = Cancel::new();
    let signal = on_signals(&cancel)?;
    let progress = crate::progress::progress(!args.quiet);
    let report = match dataset::compact(&args.dataset, &how, &access, &progress, &cancel) {
        Err(spillway::Error::Cancelled) => {
            let unchanged = format!(
                "the compaction stopped; {} is unchanged",
                args.dataset.display()
            );
            return Err(interrupted(&signal, &unchanged));
        }
        other => other?,
    };
    if let Some(path) = &args.summary {
        crate::out::write_json(path, &serde_json::to_value(&report)?)?;
    }
    if !args.quiet {
        match report.compacted {
            true => note!(
                "compacted {} shards of {} into {} ({} rows, generation {})\n",
                report.before,
                args.dataset.display(),
                report.shards.join(", "),
                report.rows,
                report.generation
            ),
            false => note!(
                "{}: already one cut of {} shards; nothing to compact\n",
                args.dataset.display(),
                report.before
            ),
        }
    }
    Ok(0)
}
