//! `spillway gen`: write a synthetic universe.

use std::path::PathBuf;

use anyhow::Context;
use spillway::gen::{generate, Codec, GenOptions};

use crate::options::{choice, Size};
use crate::out::note;

/// Arguments of `spillway gen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output directory.
    #[arg(long)]
    output: PathBuf,
    #[command(flatten)]
    size: Size,
    /// Seed (same seed, same bytes).
    #[arg(long, default_value_t = GenOptions::default().seed)]
    seed: u64,
    /// Rows per row group.
    #[arg(long, default_value_t = GenOptions::default().row_group_rows)]
    row_group_rows: usize,
    /// Codec.
    #[arg(long, value_parser = choice::<Codec>(Codec::NAMES), default_value = Codec::default().name())]
    compression: Codec,
    /// Max fraction of rows a symbol starts late on the shared grid.
    #[arg(long, default_value_t = GenOptions::default().ragged)]
    ragged: f64,
    /// Dtype drift: every 4th symbol stores f001 as float32 and f003 as int64.
    #[arg(long)]
    drift: bool,
    /// Missing columns: every 3rd symbol lacks the last feature, every 5th lacks f002.
    #[arg(long)]
    missing: bool,
    /// Hive layout: symbol=<S>/part-0.parquet, part-1.parquet.
    #[arg(long)]
    hive: bool,
    /// Plant a learnable signal: the share (0 to 1) of the target's variance explained by a fixed
    /// linear combination of f001, f006 and f011 (0: pure noise).
    #[arg(long, value_name = "R2", default_value_t = GenOptions::default().signal)]
    signal: f64,
    /// Remove the universe already in --output first (a non-empty directory is refused otherwise).
    #[arg(long)]
    replace: bool,
}

/// Runs gen.
pub fn run(a: Args) -> anyhow::Result<u8> {
    let t0 = std::time::Instant::now();
    let opts = GenOptions {
        output: a.output,
        symbols: a.size.symbols,
        rows: a.size.rows,
        features: a.size.features,
        seed: a.seed,
        row_group_rows: a.row_group_rows,
        codec: a.compression,
        ragged: a.ragged,
        drift: a.drift,
        missing: a.missing,
        hive: a.hive,
        signal: a.signal,
        replace: a.replace,
    };
    let r =
        generate(&opts).with_context(|| format!("generating into {}", opts.output.display()))?;
    note!(
        "wrote {} files, {} rows, {:.1} MiB to {} in {:.1}s\n",
        r.files,
        r.rows,
        r.bytes as f64 / (1u64 << 20) as f64,
        opts.output.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(0)
}
