//! Which spillway made a file: its version, the semantics version of its output, and (in
//! summaries only) the commit it was built from.
//!
//! [`SEMANTICS_VERSION`] is bumped by every change that changes the bytes of any build's output
//! for the same inputs and options (a fix to the sampling key, a new metadata field). It is
//! recorded in every spill file, and `--if-changed` rebuilds a file recorded with another one.
//! The golden outputs test (`tests/golden.rs`) fails when output bytes change without a bump.
//! The commit is left out of files on purpose: cargo, wheel and in-process builds of one version
//! write the same bytes.

use serde::Serialize;

/// The semantics version of this spillway's output (see the module docs). Files without one
/// were written by semantics version 1.
pub const SEMANTICS_VERSION: u64 = 2;

/// The tool name and version recorded in spill files.
pub const TOOL: &str = concat!("spillway ", env!("CARGO_PKG_VERSION"));

/// The tool's identity, as the build summary reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Tool {
    /// The package version.
    pub version: &'static str,
    /// [`SEMANTICS_VERSION`].
    pub semantics_version: u64,
    /// The git commit the binary was built from ("unknown" outside a repository).
    pub commit: &'static str,
}

/// This binary's identity.
pub const THIS: Tool = Tool {
    version: env!("CARGO_PKG_VERSION"),
    semantics_version: SEMANTICS_VERSION,
    commit: env!("SPILLWAY_COMMIT"),
};
