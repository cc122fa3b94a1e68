//! Command-line options (clap derive) and dispatch to one module per subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Check a spill file's structure and every data checksum.
    Verify(verify::Args),
}

/// Parses the command line and runs the subcommand; the exit code says whether it succeeded.
pub fn run() -> anyhow::Result<ExitCode> {
    let opts = Opts::parse();
    match opts.command {
        Command::Verify(args) => verify::run(args),
    }
}
