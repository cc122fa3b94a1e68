//! Where a build's JSON summary goes, opened before the build so that a bad path fails first:
//! `-` is standard output; a FIFO or a device is written directly (`/dev/stdout`, a pipe); a
//! regular file (also through a symlink: the file it points to is replaced, never the link) is
//! written to a temporary beside it and renamed over it. Never the output, nor a file the build
//! reads ([`crate::output::check`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::output::{self, Target};

/// An opened summary destination.
pub enum SummarySink {
    /// Standard output (`-`).
    Stdout,
    /// A FIFO or a device, opened for writing.
    Special(std::fs::File, PathBuf),
    /// A regular file: a temporary beside it, renamed over it.
    Atomic(tempfile::NamedTempFile, PathBuf),
}

impl SummarySink {
    /// Checks `path` against `reads` (see [`output::check`]) and opens it.
    pub fn open(path: &Path, reads: &[(&str, &Path)]) -> Result<SummarySink> {
        if path.as_os_str() == "-" {
            return Ok(SummarySink::Stdout);
        }
        let flag = "--summary";
        let bad = |why: String| Error::OutputPath(format!("{flag} {}: {why}", path.display()));
        match output::check_stream(flag, path, reads)? {
            Target::Stream => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| bad(e.to_string()))?;
                Ok(SummarySink::Special(f, path.to_path_buf()))
            }
            Target::Replace(target) => {
                let tmp = output::temp_beside(&target).map_err(|e| bad(e.to_string()))?;
                Ok(SummarySink::Atomic(tmp, target))
            }
        }
    }

    /// Writes `summary` as pretty JSON and a newline (renaming a regular file into place).
    pub fn write<T: Serialize>(self, summary: &T) -> Result<()> {
        let mut json = serde_json::to_vec_pretty(summary)
            .map_err(|e| Error::Internal(format!("the summary as JSON: {e}")))?;
        json.push(b'\n');
        match self {
            SummarySink::Stdout => std::io::stdout()
                .lock()
                .write_all(&json)
                .map_err(|e| Error::io("writing the summary to", "standard output", e)),
            SummarySink::Special(mut f, path) => f.write_all(&json).map_err(output::writing(&path)),
            SummarySink::Atomic(mut tmp, path) => {
                tmp.write_all(&json).map_err(output::writing(&path))?;
                output::persist(tmp, &path)
            }
        }
    }
}
