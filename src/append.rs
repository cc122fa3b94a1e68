//! `spillway append`: a time-major dataset (`dataset.json`, on disk or in a bucket) grows by the
//! rows of its universe after its last timestamp, as new time shards and the next manifest
//! generation; history that changed is refused unless `--rebuild`.

use std::path::PathBuf;

use spillway::config::BuildOptions;
use spillway::dataset::{self, Access, AppendOptions};
use spillway::Cancel;

use crate::build::{interrupted, on_signals};
use crate::options::{environment, Remote};
use crate::out::note;

/// Arguments of `spillway append`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The dataset's manifest (`dataset.json`; a path or a URL), built with `--order time
    /// --shard I/N` and `spillway manifest` (or `spillway.ray.build(order="time")`).
    dataset: PathBuf,
    /// The grown universe (a directory or a URL), with the dataset's options (target, features,
    /// filters, order), which the manifest records.
    #[arg(long)]
    input: PathBuf,
    /// Time shards to cut the new rows into.
    #[arg(long, default_value_t = 1)]
    shards: u32,
    /// When the universe's history differs from the dataset's (a changed file, backfilled rows,
    /// no recorded history), rebuild the whole dataset from it (new shards of every timestamp,
    /// the symbol codes kept) instead of refusing.
    #[arg(long)]
    rebuild: bool,
    /// Build only new shard I (of --shards) and commit nothing: one task of a cluster's append
    /// (`spillway.ray.build(..., append=True)`); then `--commit` commits them.
    #[arg(long, value_name = "I", conflicts_with = "commit")]
    only: Option<u32>,
    /// Build nothing: commit the --shards new shards that `--only` tasks built.
    #[arg(long)]
    commit: bool,
    /// Reader threads (default: chosen by the memory budget, at most the cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Memory budget of each shard build (e.g. 512MiB; default 1GiB).
    #[arg(long)]
    memory_budget: Option<String>,
    /// Write what was appended as JSON to this file (`-`: standard output).
    #[arg(long)]
    summary: Option<PathBuf>,
    /// No progress bar and no report on stderr.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    remote: Remote,
}

/// Appends.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let storage = args.remote.storage()?;
    let user = BuildOptions {
        input: Some(args.input.clone()),
        threads: args.threads,
        memory_budget: args.memory_budget.clone(),
        storage: Some(storage.clone()),
        scratch: args.remote.scratch.clone(),
        ..environment()?
    };
    let access = Access {
        storage,
        scratch: args.remote.scratch.clone(),
        replace: false,
    };
    let how = AppendOptions {
        shards: args.shards,
        rebuild: args.rebuild,
        only: args.only,
        commit_only: args.commit,
    };
    let cancel = Cancel::new();
    let signal = on_signals(&cancel)?;
    let progress = crate::progress::progress(!args.quiet);
    let report = match dataset::append(&args.dataset, user, &how, &access, &progress, &cancel) {
        Err(spillway::Error::NothingToAppend { after }) => {
            if !args.quiet {
                note!(
                    "{}: no row of {} is after the dataset's last timestamp ({after} ns); nothing to append\n",
                    args.dataset.display(),
                    args.input.display()
                );
            }
            return Ok(0);
        }
        Err(spillway::Error::Cancelled) => {
            let unchanged = format!(
                "the append stopped; {} is unchanged",
                args.dataset.display()
            );
            return Err(interrupted(&signal, &unchanged));
        }
        other => other?,
    };
    if let Some(path) = &args.summary {
        crate::out::write_json(path, &serde_json::to_value(&report)?)?;
    }
    if let (Some(i), false) = (args.only, args.quiet) {
        note!(
            "built new shard {i} of {} ({} rows after {} ns); commit them with --commit\n",
            args.shards,
            report.rows,
            report.after
        );
        return Ok(0);
    }
    if !args.quiet {
        let h = &report.history;
        note!(
            "appended {} rows after {} ns to {} as {} (generation {}); last timestamp now {} ns; history: {} symbols trusted, {} rebuilt and compared, {} new{}\n",
            report.rows,
            report.after,
            report.manifest.display(),
            report.shards.join(", "),
            report.generation,
            report.last,
            h.trusted,
            h.rebuilt.len(),
            h.new_symbols.len(),
            if report.rebuilt { "; the whole dataset was rebuilt (--rebuild)" } else { "" }
        );
    }
    Ok(0)
}
