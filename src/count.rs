//! `spillway count`: one shard's rows per timestamp and K smallest sampling keys, to a count file
//! (the map half of a sharded build's cross-section; `plan-cs` is the reduce).

use std::path::PathBuf;

use spillway::config::{BuildOptions, OnError};
use spillway::Cancel;

use crate::options::{choice, environment, Selection};
use crate::out::{note, outln};

/// Arguments of `spillway count`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    selection: Selection,
    /// Shard I of N (from 0) of the sorted symbol list, as `build --shard` cuts it.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// The symbols whose names are in [A, B) (either end may be left out).
    #[arg(long, value_name = "A..B")]
    symbols: Option<String>,
    /// The count file to write (atomically; a URL: built in --scratch, then uploaded).
    #[arg(long)]
    output: PathBuf,
    /// Where a count file bound for a URL is written first (default: the temporary directory).
    #[arg(long, value_name = "DIR")]
    scratch: Option<PathBuf>,
    /// What a failing symbol does: fail, or be skipped (as the shard build will skip it).
    #[arg(long, value_parser = choice::<OnError>(OnError::NAMES))]
    on_error: Option<OnError>,
    /// Leave these symbols out (comma-separated), recorded in the count file so that the plan
    /// and every shard built with it leave them out: those a shard build exited 4 on.
    #[arg(long, value_name = "SYM,...", value_delimiter = ',')]
    exclude: Option<Vec<String>>,
    /// Print what was counted as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Counts.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let opts = BuildOptions {
        output: Some(args.output),
        shard: args.shard,
        symbols: args.symbols,
        on_error: args.on_error,
        exclude: args.exclude,
        scratch: args.scratch,
        ..args.selection.options()
    };
    let cfg = environment()?.merge(opts).resolve()?;
    let s = spillway::count(&cfg, &Cancel::new())?;
    if args.json {
        outln!("{}", serde_json::to_string(&s)?)?;
    } else {
        note!(
            "wrote {} ({}): symbols [{}, {}), {} timestamps, {} rows, {} keys in {:.2}s\n",
            s.output.display(),
            s.checksum,
            s.symbols[0],
            s.symbols[1],
            s.timestamps,
            s.rows,
            s.keys,
            s.seconds
        );
        if !s.skipped.is_empty() {
            note!("left out {} symbol(s):\n", s.skipped.len());
            for k in &s.skipped {
                note!("  {}: {}\n", k.symbol, k.reason);
            }
        }
    }
    Ok(0)
}
