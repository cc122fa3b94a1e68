//! spillway: a universe of per-symbol parquet files into one memory-mapped spill file, with
//! memory bounded by the pipeline, never by the universe.
//!
//! The pipeline, stage by stage (see `ARCHITECTURE.md`):
//!
//! ```text
//! discover -> plan -> read (N threads) -> bounded channels -> write (1 thread) -> commit
//! ```
//!
//! - [`discover`] finds the symbols and their files (flat and hive layouts);
//! - [`plan`] reads every footer and the time column alone, and fixes the exact spill layout;
//!   [`filter`] applies the cross-sectional filters there, from the time and target columns;
//! - [`budget`] picks reader count, batch rows and channel capacity to fit `--memory-budget`;
//! - [`read`] decodes each file into float batches ([`convert`] does the fused conversion,
//!   [`time`] the time column);
//! - [`write`] is the single ordered writer into the [`spill`] file;
//! - [`build`] runs it all and returns a [`summary::BuildSummary`].
#![deny(missing_docs)]

// Configuration, then the pipeline in order, then what it reports.
pub mod config;
pub mod cancel;
pub mod discover;
pub mod footer;
pub mod schema;
pub mod time;
pub mod plan;
pub mod filter;
pub mod budget;
pub mod read;
pub mod decode;
pub mod convert;
pub mod write;
pub mod build;
pub mod summary;
pub mod progress;
pub mod rss;
pub mod gen;
pub mod inspect;
pub mod export;
mod error;
mod guard;

pub use build::{build, build_with};
pub use cancel::Cancel;
pub use config::{BuildConfig, BuildOptions};
pub use error::{Error, ErrorKind, Result, SymbolError, SymbolErrorKind};
pub use inspect::{inspect, InspectReport};
pub use progress::Progress;
pub use summary::BuildSummary;
