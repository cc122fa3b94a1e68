//! Test servers for spillway's object-storage path (design doc, sections 10.1 and 12.1).
//!
//! - [`Server`]: an S3 endpoint on 127.0.0.1 (s3s over a project-owned wrapper of `s3s_fs`) run in a
//!   background thread. Its ETags come from `stat` (no hashing), its GETs honour `If-Match`,
//!   `If-None-Match` and `Range`, its listings page at [`Options::page`] and carry ETags, and it counts
//!   requests and runs a hook before the first GET of a chosen object.
//! - [`Proxy`]: an HTTP/1.1-aware TCP proxy in front of it that injects deterministic faults
//!   ([`Fault`]) chosen by [`Rule`]s, plus a per-request latency.
//! - [`raw`]: a minimal blocking HTTP/1.1 client (keep-alive, no signing) for tests and for
//!   [`raw::get_ranges`], the raw-GET baseline of the benchmark.
//!
//! This is a dev-only crate: nothing here is hardened for untrusted networks.

#![deny(missing_docs)]

pub mod proxy;
pub mod raw;
mod server;
mod store;

pub use proxy::{Fault, FaultCounts, Match, Proxy, Rule};
pub use server::{Options, Server, KEY, SECRET};
pub use store::GetHook;
