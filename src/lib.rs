//! spillway: a universe of per-symbol parquet files into one memory-mapped spill file.
#![deny(missing_docs)]
