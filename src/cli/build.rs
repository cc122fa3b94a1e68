//! `spillway build`: flags over an optional TOML config file, then the library's build.
//!
//! Before any work: the config is read, the options resolved, the output path checked by the
//! library, the summary path checked here (not the output, not an input, in a directory that
//! exists; a special file such as `/dev/stdout` or `-` is written directly, a regular file
//! atomically), and SIGINT, SIGTERM and SIGHUP are turned into a cancellation: the build stops
//! within a batch, removes its temporary file, and the command exits 128 + the signal. A second
//! signal kills at once (a leftover temporary is then `spillway clean`'s).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;
use spillway::config::{BuildOptions, Decoder, OnError, WriteMode};
use spillway::{BuildConfig, BuildSummary, Cancel, Progress};

use super::options::{choice, Selection};
use super::out::{note, Interrupted, Usage};

/// Arguments of `spillway build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    selection: Selection,
    /// Output spill file (written to a temporary name, then renamed).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Reader threads (default: chosen by the memory budget, at most the cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Batches each reader may queue ahead of the writer (default: from the budget).
    #[arg(long)]
    channel_capacity: Option<usize>,
    /// Rows per batch (default: from the budget).
    #[arg(long)]
    batch_rows: Option<usize>,
    /// What a failing symbol does: fail the build, or be skipped and reported.
    #[arg(long, value_parser = choice::<OnError>(OnError::NAMES))]
    on_error: Option<OnError>,
    /// How the output is written.
    #[arg(long, value_parser = choice::<WriteMode>(WriteMode::NAMES))]
    write_mode: Option<WriteMode>,
    /// Write the build summary as JSON to this file (`-`: standard output).
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Read options from this TOML file (flags override it; see examples/build.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Do nothing (exit 0) when the output exists, is intact and was built from the same inputs
    /// and options; build otherwise.
    #[arg(long)]
    if_changed: bool,
    /// Build shard I of N (from 0): contiguous ranges of the sorted symbol list, balanced by
    /// planned rows; the file keeps the universe's symbol table.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Build the symbols whose names are in [A, B), as a shard.
    #[arg(long, value_name = "A..B")]
    symbols: Option<String>,
    /// The cross-section plan (`spillway plan-cs`) a shard build takes --min-cs and
    /// --max-cs-samples decisions from.
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

/// What a config file holds besides build options.
#[derive(Debug, Default)]
struct Extras {
    summary: Option<PathBuf>,
    quiet: Option<bool>,
}

/// Loads a TOML config file: build options, plus `summary` and `quiet`.
fn load_config(path: &Path) -> anyhow::Result<(BuildOptions, Extras)> {
    let usage = |e: &dyn std::fmt::Display| Usage(format!("config {}: {e}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| usage(&e))?;
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| usage(&e))?;
    let summary = match table.remove("summary") {
        Some(toml::Value::String(s)) => Some(PathBuf::from(s)),
        Some(_) => return Err(usage(&"`summary` must be a path").into()),
        None => None,
    };
    let quiet = match table.remove("quiet") {
        Some(toml::Value::Boolean(b)) => Some(b),
        Some(_) => return Err(usage(&"`quiet` must be true or false").into()),
        None => None,
    };
    let options = toml::Value::Table(table)
        .try_into::<BuildOptions>()
        .map_err(|e| usage(&e))?;
    Ok((options, Extras { summary, quiet }))
}

/// Where the summary goes, opened (or checked) before the build so that a bad path fails first.
enum SummarySink {
    Stdout,
    /// A file that is not a regular file (a device, a pipe): written directly.
    Special(std::fs::File),
    /// A regular file: a temporary beside it, renamed over it.
    Atomic(tempfile::NamedTempFile, PathBuf),
}

impl SummarySink {
    fn open(path: &Path, cfg: &BuildConfig) -> anyhow::Result<SummarySink> {
        if path.as_os_str() == "-" {
            return Ok(SummarySink::Stdout);
        }
        let bad = |why: String| Usage(format!("--summary {}: {why}", path.display()));
        if same_file(path, &cfg.output) {
            return Err(bad("is the --output file".into()).into());
        }
        if is_input_file(path, &cfg.input) {
            return Err(bad("is one of the input files".into()).into());
        }
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => Err(bad("is a directory".into()).into()),
            Ok(m) if !m.is_file() => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| bad(e.to_string()))?;
                Ok(SummarySink::Special(f))
            }
            _ => {
                // Through a symlink, the file it points to is replaced, never the link.
                let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
                let dir = match target.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                let tmp = tempfile::Builder::new()
                    .prefix(".spillway-summary")
                    .tempfile_in(&dir)
                    .map_err(|e| bad(format!("cannot write in {}: {e}", dir.display())))?;
                Ok(SummarySink::Atomic(tmp, target))
            }
        }
    }

    fn write(self, summary: &BuildSummary) -> anyhow::Result<()> {
        let mut json = serde_json::to_vec_pretty(summary)?;
        json.push(b'\n');
        match self {
            SummarySink::Stdout => std::io::stdout().lock().write_all(&json)?,
            SummarySink::Special(mut f) => f.write_all(&json)?,
            SummarySink::Atomic(mut tmp, path) => {
                tmp.write_all(&json)
                    .with_context(|| format!("writing {}", path.display()))?;
                tmp.persist(&path)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        Ok(())
    }
}

/// Whether `path` is an existing parquet file under the input directory.
fn is_input_file(path: &Path, input: &Path) -> bool {
    let (Ok(p), Ok(dir)) = (std::fs::canonicalize(path), std::fs::canonicalize(input)) else {
        return false;
    };
    p.starts_with(dir) && p.extension().is_some_and(|e| e == "parquet")
}

/// Whether two paths name the same file (or would: the same directory and name).
fn same_file(a: &Path, b: &Path) -> bool {
    let real = |p: &Path| {
        std::fs::canonicalize(p).ok().or_else(|| {
            let dir = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            Some(std::fs::canonicalize(dir).ok()?.join(p.file_name()?))
        })
    };
    matches!((real(a), real(b)), (Some(x), Some(y)) if x == y)
}

/// Turns SIGINT, SIGTERM and SIGHUP into `cancel`, remembering which signal came; a second one
/// takes the default action (the process dies at once).
fn on_signals(cancel: &Cancel) -> anyhow::Result<Arc<AtomicUsize>> {
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

fn signal_name(sig: i32) -> &'static str {
    match sig {
        signal_hook::consts::SIGINT => "SIGINT",
        signal_hook::consts::SIGTERM => "SIGTERM",
        signal_hook::consts::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Runs the build.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (file, extras) = match &args.config {
        Some(p) => load_config(p)?,
        None => Default::default(),
    };
    let flags = BuildOptions {
        output: args.output.clone(),
        threads: args.threads,
        channel_capacity: args.channel_capacity,
        batch_rows: args.batch_rows,
        on_error: args.on_error,
        write_mode: args.write_mode,
        shard: args.shard.clone(),
        symbols: args.symbols.clone(),
        cs_plan: args.cs_plan.clone(),
        ..args.selection.options()
    };
    let mut cfg = file.merge(flags).resolve()?;
    cfg.decode_only = args.decode_only;
    cfg.decoder = args.decoder.unwrap_or_default();
    let quiet = args.quiet.or(extras.quiet).unwrap_or(false);
    if args.if_changed {
        let current = spillway::up_to_date(&cfg)?;
        if current.current {
            if !quiet {
                note!(
                    "{} is current ({}); nothing to do\n",
                    cfg.output.display(),
                    current.reason
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        if !quiet {
            note!("building {}: {}\n", cfg.output.display(), current.reason);
        }
    }
    let sink = match args.summary.or(extras.summary) {
        Some(p) => Some(SummarySink::open(&p, &cfg)?),
        None => None,
    };
    let cancel = Cancel::new();
    let signal = on_signals(&cancel)?;
    let progress = Progress::new(!quiet);
    let summary = match spillway::build_with(&cfg, &progress, &cancel) {
        Err(spillway::Error::Cancelled) => {
            let sig = signal.load(Ordering::SeqCst) as i32;
            return Err(Interrupted {
                signal: sig,
                message: format!(
                    "interrupted by {}: the build stopped and its temporary file is removed; {} was not written",
                    signal_name(sig),
                    cfg.output.display()
                ),
            }
            .into());
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
    if let Some(sink) = sink {
        sink.write(&summary)?;
    }
    if !quiet {
        note!("{}", summary.human());
    } else {
        for w in &summary.warnings {
            note!("spillway: warning: {w}\n");
        }
    }
    Ok(ExitCode::SUCCESS)
}
