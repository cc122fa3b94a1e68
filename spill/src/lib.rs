//! # spill: the spill file format
//!
//! A spill file holds the rows of a training set as page-aligned little-endian columns, with a
//! symbol table, checksums and statistics, so that training jobs can memory-map it and read
//! columns (or the whole feature matrix) without a copy. Its rows are symbol-major (each symbol's
//! row range in the symbol table) or, from format 1.2, time-major ([`Order::Time`]: rows sorted by
//! time, each timestamp's rows contiguous where the [`Timestamps`] index says).
//!
//! ```text
//! file := header(4096) column_region* metadata(JSON) trailer(64)
//! ```
//!
//! The byte-level specification is `SPEC.md` beside this crate. This crate knows nothing of
//! arrow or parquet:
//! - [`SpillFile::from_bytes`] validates any byte buffer (O(metadata)); [`open`] memory-maps a
//!   path; [`SpillFile::verify`] recomputes every data checksum (O(data), parallel).
//! - [`SpillWriter`] is created from a [`Layout`] (the exact row count, columns and symbol ranges),
//!   takes column slices in row order, and commits atomically with [`SpillWriter::finish`].
//! - [`SpillFile::batches`] copies rows into row-major training batches (ranges, a seeded block
//!   shuffle, pages released behind, whole cross-sections in time-major files; epochs, ranks and
//!   workers evened out, resumable from a [`BatchState`]), the same batches as the numpy
//!   reader's; [`SpillFile::time_ranges`], [`SpillFile::time_range`] and
//!   [`SpillFile::group_sizes`] find the rows of a time window and the ranking groups.
//!
//! ```no_run
//! # fn main() -> Result<(), spill::Error> {
//! let f = spill::open("train.spill")?;
//! let target: &[f32] = f.column("target")?;
//! let x = f.features::<f32>()?; // nrows x nfeatures, column-major at a constant stride
//! let opts = spill::BatchOptions::new(4096).shuffle_blocks(65536, 7).drop_behind(true);
//! for batch in f.batches::<f32>(opts)? {
//!     let (x, y) = (&batch.x, batch.y.as_deref()); // rows x nfeatures row-major, the target
//! #   let _ = (x, y);
//! }
//! # let _ = (target, x); Ok(()) }
//! ```
#![deny(missing_docs)]

mod batch;
mod error;
mod format;
mod json;
mod layout;
mod meta;
mod moments;
mod read;
mod stats;
mod timestamps;
mod verify;
mod write;

pub use batch::{batches_fingerprint, block_order, Batch, BatchOptions, BatchState, Batches};
pub use error::{Error, Result};
pub use format::{
    caps, DType, Role, Trailer, ALIGN, CHECKSUM_CRC32, DEFAULT_CHUNK_BYTES, FEATURE_TIME_ORDER,
    HEADER_FIELDS_LEN, HEADER_LEN, MAGIC, MIN_FILE_LEN, TRAILER_LEN, TRAILER_MAGIC, VERSION_MAJOR,
    VERSION_MINOR,
};
pub use layout::{ColumnSpec, Layout};
pub use meta::{Column, Metadata, Scalar, Stats, Symbol, TIME_UNIT};
pub use read::{describe, open, Backing, Matrix, SpillFile};
pub use stats::Element;
pub use timestamps::{Iter as TimestampIter, Order, Timestamps};
pub use verify::{DamagedChunk, VerifyReport};
pub use write::{
    is_temp_name, process_alive, stale_temps, temp_path, Committed, SpillWriter, WriteMode,
    WriteOptions, DEFAULT_WRITE_MEMORY,
};
