//! Regression tests for issue 12 (what a demanding user hit), named by item: each failed before
//! its fix; issue 21's are in `i21/`. Inputs and decoding here; output paths and streams in `paths`; runs (signals,
//! `--if-changed`, options) in `runs`.

mod i21;
mod inputs;
mod paths;
mod runs;
