//! Integration tests: the real `spillway` binary on real files. One test binary (every extra test
//! crate links arrow and parquet again), one module per area.

mod common;

mod cli;
mod build_contract;
mod filters;
mod golden;
mod order;
mod cs_transform;
mod regression;
mod reliability;
mod filesystem;
mod decoders;
mod sharded;
mod skip_attempts;
mod time_shards;
mod append;
mod collection;
mod object_storage;
mod bucket_datasets;
mod compact;
