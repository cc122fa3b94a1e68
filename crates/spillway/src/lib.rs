//! spillway: a universe of per-symbol parquet files into one memory-mapped spill file, with
//! memory bounded by the pipeline, never by the universe.
//!
//! The modules follow the pipeline, each importing only those before it (see `ARCHITECTURE.md`):
//!
//! ```text
//! config -> input -> decode -> plan -> report -> read (N threads) -> bounded channels
//!        -> write (1 thread) [-> order: intermediate -> time-major] -> run (runs it all,
//!        commits) [-> publish: upload] ; tools (gen, inspect, sharded, dataset)
//! ```
//!
//! - `output`: what an output path may replace (never a special file, a directory or anything
//!   the command reads), for every command;
//! - `config`: [`BuildOptions`] (flags or TOML) resolved into one validated [`BuildConfig`];
//! - `input`: discovering the symbols and their files (in a directory, or listed in an object
//!   store: `s3://`, `gs://`, `az://`), opening parquet files, footers, column types, time
//!   values, numeric conversion;
//! - `decode`: the fast page decoder (no pipeline types);
//! - `plan`: footers and the time column alone fix the exact spill layout; the cross-sectional
//!   filters; the memory budget that picks readers, batch rows and channel capacity;
//! - `report`: what a build reports ([`BuildSummary`]), progress, peak memory;
//! - `read`: each file decoded into float batches, by the fast decoder or arrow-rs;
//! - `write`: the single ordered writer into the [`spill`] file;
//! - `order`: time-major output, transposed in bounded windows out of a symbol-major
//!   intermediate file;
//! - `run`: runs the stages (threads, channels, retries under `--on-error skip`), cancellable
//!   ([`Cancel`]), and commits; what a spill file records of its inputs, and `--if-changed`;
//! - `publish`: outputs in object storage (built in a scratch directory, uploaded in parts),
//!   and where a command's files are ([`publish::Place`]);
//! - `tools`: the synthetic universe generator ([`gen`]), the footer report ([`inspect()`]),
//!   the export of spill files to Parquet and Arrow IPC ([`export`]), and the sharded build's
//!   cross-section map-reduce ([`count`], [`plan_cs`]) and manifest ([`dataset`]).
//!
//! The public API is what a caller needs to run builds and read their reports: [`build`],
//! [`build_with`], [`up_to_date`], [`inspect()`], [`gen`], the configuration types, [`Cancel`],
//! [`Progress`], the errors and the reports. Everything else is internal.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod guard;
mod cancel;
pub mod output;
pub mod config;
mod input;
mod decode;
mod plan;
mod report;
mod read;
mod write;
mod order;
mod run;
pub mod publish;
mod tools;

pub use cancel::Cancel;
pub use config::{BuildConfig, BuildOptions, Freshness, DEFAULT_MAX_ATTEMPTS};
pub use error::{
    DecodeError, Error, ErrorKind, Problem, Result, SymbolError, SymbolErrorKind, EXCLUDE_MARKER,
};
pub use plan::budget::Budget;
pub use plan::filter::FilterStats;
pub use plan::Skipped;
pub use report::progress::{Progress, Watch};
pub use report::summary::{
    BuildSummary, CurrentSummary, Decoders, TransposeMemory, TransposeStats,
};
pub use report::tool::{Tool, SEMANTICS_VERSION};
pub use run::{build, build_with, up_to_date, write_current_summary, UpToDate};
pub use tools::dataset;
pub use tools::export;
pub use tools::gen;
pub use tools::inspect::{inspect, InspectReport, TimeMajorEstimate};
pub use tools::sharded::{count, plan_cs, CountSummary, PlanCsOptions, PlanCsSummary};

/// Not an API: the stages' entry points for spillway's own integration tests, benches and fuzz
/// targets. They change whenever the pipeline does.
#[doc(hidden)]
pub mod internals {
    pub use crate::decode::{chunk_eligible, eligible, Physical};
    #[cfg(feature = "fuzzing")]
    pub use crate::decode::{fuzz_hybrid, fuzz_pages};
    pub use crate::input::discover::discover;
    pub use crate::order::{Float, Kernel};
    pub use crate::plan::cs_file::{parse_counts, parse_plan};
    pub use crate::plan::plan;
    pub use crate::read::{read_unit, Data, Msg, ReadContext, Reader, Spares, Task};
    pub use crate::run::execute_plan;
}

/// The book's Rust examples (`docs/examples/*.rs`, included verbatim in its pages), compiled and
/// run as doc tests so that they follow the API.
#[cfg(doctest)]
mod docs_examples {
    #[doc = concat!("```\n", include_str!("../../../docs/examples/build_universe.rs"), "\n```")]
    struct BuildUniverse;
    #[doc = concat!("```\n", include_str!("../../../docs/examples/read_spill.rs"), "\n```")]
    struct ReadSpill;
}
