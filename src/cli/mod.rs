//! Command-line options (clap derive) and dispatch to one module per subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod build;
mod clean;
mod demo;
mod export;
mod gen;
mod inspect;
mod verify;

/// spillway: combine a universe of per-symbol parquet files into one memory-mapped spill file,
/// with memory bounded by the pipeline, not by the universe.
#[derive(Debug, Parser)]
#[command(name = "spillway", version, about, long_about = None)]
struct Opts {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build one spill file from a universe of per-symbol parquet files.
    Build(build::Args),
    /// Show what a build would see, from footers only.
    Inspect(inspect::Args),
    /// Write a synthetic universe.
    Gen(gen::Args),
    /// The main job on a built-in synthetic universe: generate, build, verify, summarize.
    Demo(demo::Args),
    /// Check a spill file's structure and every data checksum.
    Verify(verify::Args),
    /// Remove temporary files left by killed builds.
    Clean(clean::Args),
    /// Write a spill file (or some rows and columns) as Parquet or Arrow IPC, streaming.
    Export(export::Args),
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
    }
}
