//! `spillway build`: flags over an optional TOML config file, then the library's build.
//!
//! Before any work: the config is read, the options resolved, the output and summary paths
//! checked by the library (`spillway::output`: never a file the build reads; the output never a
//! special file; a special file such as `/dev/stdout` or `-` takes the summary directly, a
//! regular file atomically), and SIGINT, SIGTERM and SIGHUP are turned into a cancellation: the
//! build stops within a batch, removes its temporary file, and the command exits 128 + the
//! signal. A second signal kills at once (a leftover temporary is then `spillway clean`'s).

use std::path::PathBuf;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;
use spillway::config::{BuildOptions, Decoder, OnError, WriteMode};
use spillway::{Cancel, Freshness};

use crate::options::{choice, environment, Selection};
use crate::out::{note, Interrupted};

/// Arguments of `spillway build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    selection: Selection,
    /// Output spill file (written to a temporary name, then renamed); or an object-storage URL
    /// (s3://bucket/train/shard-0.spill): built in --scratch, uploaded in parts, size checked,
    /// the local copy removed.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Where an output bound for a URL is built first (default: the temporary directory);
    /// refused up front when it lacks room for the file.
    #[arg(long, value_name = "DIR")]
    scratch: Option<PathBuf>,
    /// Reader threads (default: chosen by the memory budget, at most the cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Batches each reader may queue ahead of the writer (default: from the budget).
    #[arg(long)]
    channel_capacity: Option<usize>,
    /// Rows per batch (default: from the budget).
    #[arg(long)]
    batch_rows: Option<usize>,
    /// What a failing symbol does: fail the build, or be skipped and reported. Under skip,
    /// every symbol that fails while decoding in one attempt is excluded together and the build
    /// starts over once without them; a shard build (--shard, --symbols) instead exits 4 naming
    /// them (as JSON after "symbols to exclude: "), for its driver to exclude them everywhere.
    #[arg(long, value_parser = choice::<OnError>(OnError::NAMES))]
    on_error: Option<OnError>,
    /// Under --on-error skip, the most attempts (plans) before the build fails (exit 1) naming
    /// the symbols still failing [default: 3].
    #[arg(long, value_name = "N")]
    max_attempts: Option<u32>,
    /// Leave these symbols out as if the universe lacked them (comma-separated; a sharded
    /// build's driver passes the symbols a shard exited 4 on).
    #[arg(long, value_name = "SYM,...", value_delimiter = ',')]
    exclude: Option<Vec<String>>,
    /// How the output is written.
    #[arg(long, value_parser = choice::<WriteMode>(WriteMode::NAMES))]
    write_mode: Option<WriteMode>,
    /// Write the build summary as JSON to this file (`-`: standard output).
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Read options from this TOML file (flags override it; see examples/build.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Do nothing (exit 0) when the output exists, is intact and was built by this spillway from
    /// the same inputs and options; build otherwise. `stamp` compares each input's path, size,
    /// modification time and footer; `content` also a CRC-32 of its bytes (recorded by the
    /// build; costs a read of every input), which sees a rewrite `cp -p` or `rsync -a` hides.
    #[arg(
        long,
        value_name = "WHAT",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "stamp",
        value_parser = choice::<Freshness>(Freshness::NAMES)
    )]
    if_changed: Option<Freshness>,
    /// Build shard I of N (from 0): contiguous ranges of the sorted symbol list, balanced by
    /// planned rows; the file keeps the universe's symbol table.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Build the symbols whose names are in [A, B), as a shard.
    #[arg(long, value_name = "A..B")]
    symbols: Option<String>,
    /// The cross-section plan (`spillway plan-cs`) a shard build takes --min-cs and
    /// --max-cs-samples decisions from, and the symbols every shard leaves out (those the counts
    /// skipped or excluded).
    #[arg(long, value_name = "PLAN")]
    cs_plan: Option<PathBuf>,
    /// Which decoder reads the files: auto (fast where possible) or arrow (arrow-rs everywhere).
    #[arg(long, hide = true, value_parser = choice::<Decoder>(Decoder::NAMES))]
    decoder: Option<Decoder>,
    /// Decode and convert everything, write nothing: the readers' speed alone (for benchmarks).
    #[arg(long, hide = true)]
    decode_only: bool,
    /// No progress bar and no summary on stderr (`=false` undoes a config file's true).
    #[arg(long, short, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    quiet: Option<bool>,
}

/// Turns SIGINT, SIGTERM and SIGHUP into `cancel`, remembering which signal came; a second one
/// takes the default action (the process dies at once).
pub(crate) fn on_signals(cancel: &Cancel) -> anyhow::Result<Arc<AtomicUsize>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let which = Arc::new(AtomicUsize::new(0));
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register_conditional_default(sig, cancel.flag())
            .context("installing signal handlers")?;
        signal_hook::flag::register_usize(sig, Arc::clone(&which), sig as usize)
            .context("installing signal handlers")?;
        signal_hook::flag::register(sig, cancel.flag()).context("installing signal handlers")?;
    }
    Ok(which)
}

/// The error of a command stopped by the signal `which` recorded: `interrupted by SIGINT: {what}`.
pub(crate) fn interrupted(which: &AtomicUsize, what: &str) -> anyhow::Error {
    let sig = which.load(Ordering::SeqCst) as i32;
    Interrupted {
        signal: sig,
        message: format!("interrupted by {}: {what}", signal_name(sig)),
    }
    .into()
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        signal_hook::consts::SIGINT => "SIGINT",
        signal_hook::consts::SIGTERM => "SIGTERM",
        signal_hook::consts::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Runs the build.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let (file, file_quiet) = match &args.config {
        Some(p) => BuildOptions::load(p)?,
        None => Default::default(),
    };
    let flags = BuildOptions {
        output: args.output.clone(),
        threads: args.threads,
        channel_capacity: args.channel_capacity,
        batch_rows: args.batch_rows,
        on_error: args.on_error,
        max_attempts: args.max_attempts,
        exclude: args.exclude.clone(),
        write_mode: args.write_mode,
        shard: args.shard.clone(),
        symbols: args.symbols.clone(),
        cs_plan: args.cs_plan.clone(),
        summary: args.summary.clone(),
        scratch: args.scratch.clone(),
        ..args.selection.options()
    };
    let mut cfg = environment()?.merge(file).merge(flags).resolve()?;
    cfg.decode_only = args.decode_only;
    cfg.decoder = args.decoder.unwrap_or_default();
    cfg.config_file = args.config.clone();
    let quiet = args.quiet.or(file_quiet).unwrap_or(false);
    if let Some(freshness) = args.if_changed {
        cfg.freshness = freshness;
        let current = spillway::publish::up_to_date(&cfg, &Cancel::new())?;
        if current.current {
            spillway::write_current_summary(&cfg, &current)?;
            if !quiet {
                note!(
                    "{} is current ({}); nothing to do\n",
                    cfg.output.display(),
                    current.reason
                );
            }
            return Ok(0);
        }
        if !quiet {
            note!("building {}: {}\n", cfg.output.display(), current.reason);
        }
    }
    let cancel = Cancel::new();
    let signal = on_signals(&cancel)?;
    let progress = crate::progress::progress(!quiet);
    let summary = match spillway::publish::build(&cfg, &progress, &cancel) {
        Err(spillway::Error::Cancelled) => {
            let what = format!(
                "the build stopped and its temporary file is removed; {} was not written",
                cfg.output.display()
            );
            return Err(interrupted(&signal, &what));
        }
        other => other?,
    };
    if summary.budget.over_budget() && !quiet {
        note!(
            "spillway: warning: the explicit --threads/--batch-rows/--channel-capacity plan for about {} MiB, over the {} MiB budget\n",
            summary.budget.bound_bytes >> 20,
            summary.budget.budget_bytes >> 20
        );
    }
    if !quiet {
        note!("{}", summary.human());
    } else {
        for w in &summary.warnings {
            note!("spillway: warning: {w}\n");
        }
    }
    Ok(0)
}
