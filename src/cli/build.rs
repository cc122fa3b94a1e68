//! `spillway build`: flags over an optional TOML config file, then the library's build.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use spillway::config::{BuildOptions, OnError, WriteMode};
use spillway::progress::Progress;
use spillway::summary::BuildSummary;

/// Arguments of `spillway build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input directory: DIR/<SYMBOL>.parquet and/or DIR/symbol=<SYMBOL>/*.parquet.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Output spill file (written to a temporary name, then renamed).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Target column; symbols without it are skipped and reported.
    #[arg(long)]
    target: Option<String>,
    /// Feature columns in output order (default: every numeric column).
    #[arg(long, value_delimiter = ',')]
    features: Option<Vec<String>>,
    /// Time column (default: `ts`, else `timestamp`).
    #[arg(long)]
    time_col: Option<String>,
    /// Keep the last N rows of each symbol (after dropping null times).
    #[arg(long)]
    max_rows: Option<u64>,
    /// Keep float64 values instead of converting to float32.
    #[arg(long)]
    no_float32: bool,
    /// Reader threads (default: chosen by the memory budget, at most the cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Batches each reader may queue ahead of the writer (default: from the budget).
    #[arg(long)]
    channel_capacity: Option<usize>,
    /// Rows per batch (default: from the budget).
    #[arg(long)]
    batch_rows: Option<usize>,
    /// Peak memory to plan for, e.g. 256MiB (default 256MiB).
    #[arg(long)]
    memory_budget: Option<String>,
    /// What a failing symbol does: fail the build, or be skipped and reported.
    #[arg(long, value_enum)]
    on_error: Option<OnError>,
    /// How the output is written.
    #[arg(long, value_enum)]
    write_mode: Option<WriteMode>,
    /// Drop rows whose target is null or NaN (after the per-symbol steps).
    #[arg(long)]
    drop_null_target: bool,
    /// Drop rows at timestamps where fewer than N rows exist across the universe.
    #[arg(long, value_name = "N")]
    min_cs: Option<u64>,
    /// At timestamps with more than K rows, keep exactly K, chosen pseudo-randomly from --seed.
    #[arg(long, value_name = "K")]
    max_cs_samples: Option<u64>,
    /// Seed of --max-cs-samples (default 0).
    #[arg(long)]
    seed: Option<u64>,
    /// Write the build summary as JSON to this file.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Read options from this TOML file (flags override it; see examples/build.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Which decoder reads the files: auto (fast where possible) or arrow (arrow-rs everywhere).
    #[arg(long, value_enum, hide = true)]
    decoder: Option<spillway::config::Decoder>,
    /// Decode and convert everything, write nothing: the readers' speed alone (for benchmarks).
    #[arg(long, hide = true)]
    decode_only: bool,
    /// No progress bar and no summary on stderr.
    #[arg(long, short)]
    quiet: bool,
}

impl Args {
    fn options(&self) -> BuildOptions {
        BuildOptions {
            input: self.input.clone(),
            output: self.output.clone(),
            target: self.target.clone(),
            features: self.features.clone(),
            time_col: self.time_col.clone(),
            max_rows: self.max_rows,
            no_float32: self.no_float32.then_some(true),
            threads: self.threads,
            channel_capacity: self.channel_capacity,
            batch_rows: self.batch_rows,
            memory_budget: self.memory_budget.clone(),
            on_error: self.on_error,
            write_mode: self.write_mode,
            drop_null_target: self.drop_null_target.then_some(true),
            min_cs: self.min_cs,
            max_cs_samples: self.max_cs_samples,
            seed: self.seed,
        }
    }
}

/// Loads a TOML config file.
pub fn load_config(path: &Path) -> anyhow::Result<BuildOptions> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    BuildOptions::from_toml(&text).with_context(|| format!("config {}", path.display()))
}

/// Writes the summary JSON (atomically enough: a small file, written then renamed).
pub fn write_summary(path: &Path, summary: &BuildSummary) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(summary)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Runs the build.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let file = match &args.config {
        Some(p) => load_config(p)?,
        None => BuildOptions::default(),
    };
    let mut cfg = file.merge(args.options()).resolve()?;
    cfg.decode_only = args.decode_only;
    cfg.decoder = args.decoder.unwrap_or_default();
    let progress = Progress::new(!args.quiet);
    // Errors name their files (inputs, or the output) themselves.
    let summary = spillway::build(&cfg, &progress)?;
    if summary.budget.over_budget() && !args.quiet {
        eprintln!(
            "spillway: warning: the explicit --threads/--batch-rows/--channel-capacity plan for about {} MiB, over the {} MiB budget",
            summary.budget.bound_bytes >> 20,
            summary.budget.budget_bytes >> 20
        );
    }
    if let Some(p) = &args.summary {
        write_summary(p, &summary)?;
    }
    if !args.quiet {
        eprint!("{}", summary.human());
    }
    Ok(ExitCode::SUCCESS)
}
