//! Regression tests for issue 12 (and issue 21's in `i21/`) (what a demanding user hit), named by item: each failed before
//! its fix. Inputs and decoding here; output paths and streams in `paths`; runs (signals,
//! `--if-changed`, options) in `runs`.

mod i21;
mod inputs;
mod paths;
mod runs;
