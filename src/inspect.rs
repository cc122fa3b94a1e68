//! `spillway inspect`: what a build would see, from footers only.

use std::path::PathBuf;

use spillway::config::BuildOptions;
use spillway::inspect;

use crate::options::{environment, Selection};
use crate::out::outln;

/// Arguments of `spillway inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    selection: Selection,
    /// An existing output: report whether it is current (what `build --if-changed` would do).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Print JSON (also on failure: `{"ok": false, "error": ...}`).
    #[arg(long)]
    json: bool,
}

/// Runs inspect. With `--json`, stdout always holds one JSON object: the report, or
/// `{"ok": false, "error": ...}` when there is none.
pub fn run(a: Args) -> anyhow::Result<u8> {
    let json = a.json;
    let result = report(a);
    if let (true, Err(e)) = (json, &result) {
        outln!(
            "{}",
            serde_json::json!({"ok": false, "error": format!("{e:#}")})
        )?;
    }
    result
}

fn report(a: Args) -> anyhow::Result<u8> {
    let flags = BuildOptions {
        output: a.output,
        ..a.selection.options()
    };
    let cfg = environment()?.merge(flags).resolve_to_inspect()?;
    let r = inspect(&cfg)?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&r)?)?;
        return Ok(0);
    }
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    outln!(
        "{} symbols, {} files, {} rows (footers), {:.1} MiB of input; time column {:?}",
        r.symbols,
        r.files,
        r.rows,
        mib(r.input_bytes),
        r.time_column
    )?;
    outln!(
        "{} columns ({} features):",
        r.columns.len(),
        r.columns.iter().filter(|c| c.feature).count()
    )?;
    for c in &r.columns {
        let types: Vec<String> = c.types.iter().map(|(t, n)| format!("{t} x{n}")).collect();
        let mark = if c.feature { "feature" } else { "" };
        outln!(
            "  {:<24} {:>5} symbols  {:<40} {mark}",
            c.name,
            c.symbols,
            types.join(", ")
        )?;
    }
    if !r.symbols_missing_target.is_empty() {
        outln!(
            "symbols missing the target (skipped by a build): {}",
            r.symbols_missing_target.join(", ")
        )?;
    }
    for u in &r.unreadable {
        outln!("unreadable: {}: {}", u.symbol, u.reason)?;
    }
    outln!("estimated output: {:.1} MiB", mib(r.estimated_output_bytes))?;
    if let Some(f) = &r.filter_stats {
        outln!(
            "filters would remove {} rows (null target), {} (min-cs), {} (sampling); {} distinct timestamps, {} over K; filter memory {:.1} MiB",
            f.removed_null_target,
            f.removed_min_cs,
            f.removed_sampling,
            f.distinct_timestamps,
            f.sampled_timestamps,
            mib(f.memory_bytes)
        )?;
    }
    if let Some(d) = r.time_disorder.as_ref().filter(|d| d.symbols > 0) {
        let names: Vec<String> = d
            .first
            .iter()
            .map(|(s, n)| format!("{s} ({n} rows)"))
            .collect();
        outln!(
            "time goes backwards or repeats in {} symbol(s): {}{}",
            d.symbols,
            names.join(", "),
            if d.symbols > names.len() { ", ..." } else { "" }
        )?;
    }
    if let Some(e) = &r.plan_error {
        outln!("no build plan: {e}")?;
    }
    if let Some(o) = &r.output {
        let state = if o.current { "current" } else { "not current" };
        outln!("output {}: {state} ({})", o.path.display(), o.reason)?;
    }
    match (&r.estimated_budget, &r.budget_error) {
        (Some(b), _) => outln!(
            "estimated peak memory: {:.0} MiB ({} readers, {}-row batches, capacity {}; budget {:.0} MiB)",
            mib(b.bound_bytes),
            b.readers,
            b.batch_rows,
            b.capacity,
            mib(b.budget_bytes)
        )?,
        (None, Some(e)) => outln!("memory: {e}")?,
        (None, None) => {}
    }
    if let Some(t) = &r.time_major {
        outln!(
            "--order time would add: {:.1} MiB of disk for the intermediate, I/O amplification {:.2} ({:.1} MiB written and read), {} windows of up to {} rows, transposition peak {:.0} MiB",
            mib(t.intermediate_bytes),
            t.io_amplification,
            mib(t.io_bytes),
            t.windows,
            t.memory.window_rows,
            mib(t.memory.bound_bytes)
        )?;
        if let Some(runs) = t.runs {
            outln!(
                "--order time would merge at most {runs} runs of rows in time order (the budget allows {})",
                t.max_runs
            )?;
        }
        if let Some(refusal) = &t.refusal {
            outln!("--order time would fail: {refusal}")?;
        }
    }
    Ok(0)
}
