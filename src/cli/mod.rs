//! Command-line options (clap derive) and dispatch to one module per subcommand. Output and exit
//! codes are `out`'s; flags shared by several subcommands are `options`'.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod build;
mod clean;
mod count;
mod demo;
mod export;
mod gen;
mod inspect;
mod manifest;
mod options;
pub mod out;
mod plan_cs;
mod verify;

/// spillway: combine a universe of per-symbol parquet files into one memory-mapped spill file,
/// with memory bounded by the pipeline, not by the universe.
///
/// Exit codes: 0 success; 1 a data or input error (a bad file or value, an I/O failure, a memory
/// budget that cannot be met; `verify`: a damaged file); 2 a usage error (a bad flag, option,
/// path or config file); 3 an internal error (a bug: please report it); 128 + N when signal N
/// stopped a build (130 SIGINT, 143 SIGTERM, 129 SIGHUP).
#[derive(Debug, Parser)]
#[command(name = "spillway", version, about, long_about)]
struct Opts {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build one spill file from a universe of per-symbol parquet files.
    Build(build::Args),
    /// Show what a build would see: footers, time order, filters, memory, whether an output is current.
    Inspect(inspect::Args),
    /// Write a synthetic universe.
    Gen(gen::Args),
    /// The main job on a built-in synthetic universe: generate, build, verify, summarize.
    Demo(demo::Args),
    /// Check a spill file's structure and every data checksum; or a dataset (dataset.json, on
    /// disk or in a bucket) against its shards.
    Verify(verify::Args),
    /// Remove what killed builds left (temporary files; unfinished uploads in a bucket), or a
    /// dataset's old manifest generations and the shards only they name.
    Clean(clean::Args),
    /// Write a spill file (or some rows and columns) as Parquet or Arrow IPC, streaming.
    Export(export::Args),
    /// Count one shard's rows per timestamp (and sampling keys) for a sharded build.
    Count(count::Args),
    /// Merge count files into the cross-section plan of a sharded build.
    PlanCs(plan_cs::Args),
    /// Commit the manifest (dataset.json) of a sharded build's shards, on disk or in a bucket.
    Manifest(manifest::Args),
}

/// Parses the command line and runs the subcommand; the exit code says whether it succeeded.
pub fn run() -> anyhow::Result<ExitCode> {
    match Opts::parse().command {
        Command::Build(a) => build::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Gen(a) => gen::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Clean(a) => clean::run(a),
        Command::Export(a) => export::run(a),
        Command::Count(a) => count::run(a),
        Command::PlanCs(a) => plan_cs::run(a),
        Command::Manifest(a) => manifest::run(a),
    }
}
