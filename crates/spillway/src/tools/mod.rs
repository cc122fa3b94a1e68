//! `tools`: what the command line offers beside builds, on top of the pipeline: the synthetic
//! universe generator (`gen`), the report of what a build would see (`inspect`), and the export
//! of a spill file to Parquet or Arrow IPC (`export`); the sharded cross-section's map and
//! reduce (`sharded`) and the dataset manifest of a sharded build (`dataset`).

pub mod dataset;
pub mod export;
pub mod gen;
pub mod inspect;
pub mod sharded;
