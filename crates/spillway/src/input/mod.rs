//! `input`: everything about reading the universe that is not yet a plan. Discovering symbols and
//! their files (`discover`), opening a parquet file under the panic guard (`open`), reading and
//! fingerprinting footers (`footer`), what a column's type allows (`schema`), time values to
//! nanoseconds and the time-column scan (`time`), and the fused numeric conversion (`convert`);
//! where the bytes come from, a directory or an object store (`source`, `store`); and
//! [`regular_file`], the check of a file named on the command line that is read whole.

use std::path::Path;

use crate::error::{Error, Result};

pub mod convert;
pub mod discover;
pub mod footer;
pub mod open;
pub mod schema;
pub mod source;
#[cfg(feature = "object-store")]
pub mod store;
pub mod time;

/// Refuses, as a usage error (exit 2), a file named by `flag` that the command reads whole (a
/// cross-section plan, a count file, a shard) when it is missing or not a regular file: opening a
/// FIFO would wait for a writer that may never come.
pub(crate) fn regular_file(flag: &str, path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(Error::Config(format!(
            "{flag} {}: not a regular file",
            path.display()
        ))),
        Err(e) => Err(Error::Config(format!("{flag} {}: {e}", path.display()))),
    }
}
