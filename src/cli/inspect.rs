//! `spillway inspect`: what a build would see, from footers only.

use std::path::PathBuf;
use std::process::ExitCode;

use spillway::config::BuildOptions;
use spillway::inspect::inspect;

/// Arguments of `spillway inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input directory.
    #[arg(long)]
    input: PathBuf,
    /// Target column (to list symbols missing it).
    #[arg(long)]
    target: Option<String>,
    /// Feature columns (default: every numeric column).
    #[arg(long, value_delimiter = ',')]
    features: Option<Vec<String>>,
    /// Time column.
    #[arg(long)]
    time_col: Option<String>,
    /// Keep the last N rows of each symbol (for the estimates).
    #[arg(long)]
    max_rows: Option<u64>,
    /// Estimate for float64 output.
    #[arg(long)]
    no_float32: bool,
    /// Memory budget for the estimate (default 256MiB).
    #[arg(long)]
    memory_budget: Option<String>,
    /// Report what --drop-null-target would remove (reads the time and target columns).
    #[arg(long)]
    drop_null_target: bool,
    /// Report what --min-cs N would remove and its memory (reads the time columns).
    #[arg(long, value_name = "N")]
    min_cs: Option<u64>,
    /// Report what --max-cs-samples K would remove and its memory (reads the time columns).
    #[arg(long, value_name = "K")]
    max_cs_samples: Option<u64>,
    /// Seed of --max-cs-samples.
    #[arg(long)]
    seed: Option<u64>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs inspect.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let cfg = BuildOptions {
        input: Some(a.input),
        output: Some(PathBuf::from("(none)")),
        target: a.target,
        features: a.features,
        time_col: a.time_col,
        max_rows: a.max_rows,
        no_float32: a.no_float32.then_some(true),
        memory_budget: a.memory_budget,
        drop_null_target: a.drop_null_target.then_some(true),
        min_cs: a.min_cs,
        max_cs_samples: a.max_cs_samples,
        seed: a.seed,
        ..Default::default()
    }
    .resolve()?;
    let r = inspect(&cfg)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    println!(
        "{} symbols, {} files, {} rows (footers), {:.1} MiB of input; time column {:?}",
        r.symbols,
        r.files,
        r.rows,
        mib(r.input_bytes),
        r.time_column
    );
    println!(
        "{} columns ({} features):",
        r.columns.len(),
        r.columns.iter().filter(|c| c.feature).count()
    );
    for c in &r.columns {
        let types: Vec<String> = c.types.iter().map(|(t, n)| format!("{t} x{n}")).collect();
        let mark = if c.feature { "feature" } else { "" };
        println!(
            "  {:<24} {:>5} symbols  {:<40} {mark}",
            c.name,
            c.symbols,
            types.join(", ")
        );
    }
    if !r.symbols_missing_target.is_empty() {
        println!(
            "symbols missing the target (skipped by a build): {}",
            r.symbols_missing_target.join(", ")
        );
    }
    for u in &r.unreadable {
        println!("unreadable: {}: {}", u.symbol, u.reason);
    }
    println!("estimated output: {:.1} MiB", mib(r.estimated_output_bytes));
    if let Some(f) = &r.filter_stats {
        println!(
            "filters would remove {} rows (null target), {} (min-cs), {} (sampling); {} distinct timestamps, {} over K; filter memory {:.1} MiB",
            f.removed_null_target,
            f.removed_min_cs,
            f.removed_sampling,
            f.distinct_timestamps,
            f.sampled_timestamps,
            mib(f.memory_bytes)
        );
    }
    match (&r.estimated_budget, &r.budget_error) {
        (Some(b), _) => println!(
            "estimated peak memory: {:.0} MiB ({} readers, {}-row batches, capacity {}; budget {:.0} MiB)",
            mib(b.bound_bytes),
            b.readers,
            b.batch_rows,
            b.capacity,
            mib(b.budget_bytes)
        ),
        (None, Some(e)) => println!("memory: {e}"),
        (None, None) => {}
    }
    Ok(ExitCode::SUCCESS)
}
