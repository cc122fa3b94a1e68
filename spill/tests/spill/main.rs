//! Integration tests of the spill format: round trips, corruption, golden files, crash safety,
//! the numpy reader, time-major files, batches over epochs, ranks and workers with resumable
//! states, and (ignored, heavy) writer memory.

mod batch_state;
mod batches;
mod common;
mod corruption;
mod crash;
mod golden;
mod interop;
mod keys;
mod loader;
mod memory;
mod roundtrip;
mod skip;
mod stats;
mod time;
mod time_errors;
