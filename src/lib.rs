//! The `spillway` command line, over the `spillway` library: options (clap derive) and dispatch
//! to one module per subcommand. Output and exit codes are `out`'s; flags shared by several
//! subcommands are `options`'; the progress bar is `progress`'s.
//!
//! [`main`] is the one `main` of both the cargo binary (`src/main.rs`) and the Python wheel's
//! `spillway` command (`python/`), so both have the same commands, exit codes and signal
//! behaviour. Errors are printed once, there, as `spillway: <error chain>`.

use std::ffi::OsString;
use std::process::{Command as Child, ExitCode};
use std::sync::OnceLock;

use clap::{Parser, Subcommand};

mod append;
mod build;
mod clean;
mod compact;
mod count;
mod demo;
mod export;
mod gen;
mod inspect;
mod manifest;
mod options;
pub mod out;
mod plan_cs;
pub mod progress;
mod verify;

/// spillway: combine a universe of per-symbol parquet files into one memory-mapped spill file,
/// with memory bounded by the pipeline, not by the universe.
///
/// Exit codes: 0 success; 1 a data or input error (a bad file or value, an I/O failure, a memory
/// budget that cannot be met; `verify`: a damaged file); 2 a usage error (a bad flag, option,
/// path or config file); 3 an internal error (a bug: please report it); 4 a shard build under
/// --on-error skip found symbols every shard must exclude (named as JSON after "symbols to
/// exclude: "; count again with --exclude, plan-cs, build every shard); 128 + N when signal N
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
    /// Grow a time-major dataset by the rows after its last timestamp: new time shards and the
    /// next manifest generation, its history checked.
    Append(append::Args),
    /// Merge a time-major dataset's shards (its build's and every append's) into fewer, as the
    /// next manifest generation.
    Compact(compact::Args),
}

/// Runs the command line `args` (the program name first, as in [`std::env::args_os`]): the
/// `main` of the `spillway` binary. See [`status`].
pub fn main<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    ExitCode::from(status(args))
}

/// Runs the command line `args` (the program name first) and says how it ended: 0 success, 1 data
/// or input error, 2 usage error, 3 internal error (a panic), 128 + N when signal N stopped a
/// build. Usage errors, `--help` and `--version` print and exit the process, as clap does.
pub fn status<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let opts = Opts::parse_from(args);
    // A panic is a bug: its message is printed by the default hook; the exit code says "internal".
    let Ok(result) = std::panic::catch_unwind(|| run(opts)) else {
        return 3;
    };
    match result {
        Ok(code) => code,
        Err(err) if out::is_broken_pipe(&err) => 0,
        Err(err) => {
            out::note!("spillway: {err:#}\n");
            out::exit_code(&err)
        }
    }
}

/// How this command line runs itself again, as a child process: a program and its leading
/// arguments. Unset, it is this executable (the cargo binary).
static RELAUNCH: OnceLock<Vec<OsString>> = OnceLock::new();

/// Sets how this command line runs itself as a child process (`spillway demo` builds in one, so
/// the peak memory the build reports is its own), before [`main`]: the Python wheel's command
/// sets `python -m spillway`, as its executable is the interpreter. Only the first call counts.
pub fn set_relaunch(program_and_args: Vec<OsString>) {
    let _ = RELAUNCH.set(program_and_args);
}

/// A command that runs this command line again (see [`set_relaunch`]); the caller adds the
/// subcommand and its arguments.
fn relaunch() -> anyhow::Result<Child> {
    use anyhow::Context;
    match RELAUNCH.get().map(|v| v.split_first()) {
        Some(Some((program, args))) => {
            let mut c = Child::new(program);
            c.args(args);
            Ok(c)
        }
        _ => Ok(Child::new(
            std::env::current_exe().context("finding the spillway executable")?,
        )),
    }
}

/// Runs the parsed subcommand; its exit code says whether it succeeded.
fn run(opts: Opts) -> anyhow::Result<u8> {
    match opts.command {
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
        Command::Append(a) => append::run(a),
        Command::Compact(a) => compact::run(a),
    }
}
