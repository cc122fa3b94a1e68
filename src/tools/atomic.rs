//! Small files written whole or not at all: a temporary beside the target (rename is atomic only
//! within one filesystem), written, fsynced, renamed over the target, then the directory fsynced
//! so the rename itself survives a crash. Dropping the temporary on any error removes it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `path` through `fill`, atomically; returns what `fill` returns. `fill` maps its I/O
/// errors with [`writing`].
pub fn write_atomic<T>(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&mut File>) -> Result<T>,
) -> Result<T> {
    let io = |op, source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    };
    let dir = parent(path);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        // Readable by the training nodes, like the spill files (tempfile's default is 0600).
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(&dir)
        .map_err(|e| io("creating a temporary file for", e))?;
    let out = {
        let mut w = BufWriter::new(tmp.as_file_mut());
        let out = fill(&mut w)?;
        w.flush().map_err(|e| io("writing", e))?;
        out
    };
    tmp.as_file().sync_all().map_err(|e| io("syncing", e))?;
    tmp.persist(path)
        .map_err(|e| io("renaming into", e.error))?;
    // The rename is durable once the directory is synced.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(out)
}

/// The directory of `path` (`.` for a bare name).
pub fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// An error writing `path`.
pub fn writing(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        op: "writing",
        path: path.to_path_buf(),
        source,
    }
}
