//! `tools`: what the command line offers beside builds, on top of the pipeline: the synthetic
//! universe generator (`gen`), the report of what a build would see (`inspect`), and the export
//! of a spill file to Parquet or Arrow IPC (`export`).

pub mod export;
pub mod gen;
pub mod inspect;
