//! `input`: everything about reading the universe that is not yet a plan. Discovering symbols and
//! their files (`discover`), opening a parquet file under the panic guard (`open`), reading and
//! fingerprinting footers (`footer`), what a column's type allows (`schema`), time values to
//! nanoseconds and the time-column scan (`time`), and the fused numeric conversion (`convert`).

pub mod convert;
pub mod discover;
pub mod footer;
pub mod open;
pub mod schema;
pub mod time;
