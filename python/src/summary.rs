//! What `spillway build` does besides the library's build, for the in-process `build()`: the
//! config file's `summary` and `quiet` keys, and the summary file (`summary=`, the CLI's
//! `--summary`).
//!
//! The CLI keeps its own copy of this (`src/cli/build.rs`), as the binding must not depend on the
//! binary. The rules are the CLI's: the summary may not be the output or a file the build reads
//! (an input, the config, the plan), compared by device and inode through symlinks and hard
//! links; a regular file (or a name not yet taken) is written atomically, a temporary beside it
//! renamed over it; a FIFO or a device is written directly, never replaced; `-` is standard
//! output (Python's `sys.stdout`). The path is checked, and a FIFO opened, before the build.

use std::fs::{File, Metadata};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use spillway::{BuildConfig, BuildOptions};

/// What a config file holds besides build options.
#[derive(Debug, Default)]
pub(crate) struct Extras {
    /// Where the summary goes.
    pub summary: Option<PathBuf>,
    /// No progress bar.
    pub quiet: Option<bool>,
}

/// Reads a TOML config file: its build options, plus `summary` and `quiet`, as the CLI does. The
/// error is a message for a `UsageError`.
pub(crate) fn load_config(path: &Path) -> Result<(BuildOptions, Extras), String> {
    let usage = |e: &dyn std::fmt::Display| format!("config {}: {e}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| usage(&e))?;
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| usage(&e))?;
    let summary = match table.remove("summary") {
        Some(toml::Value::String(s)) => Some(PathBuf::from(s)),
        Some(_) => return Err(usage(&"`summary` must be a path")),
        None => None,
    };
    let quiet = match table.remove("quiet") {
        Some(toml::Value::Boolean(b)) => Some(b),
        Some(_) => return Err(usage(&"`quiet` must be true or false")),
        None => None,
    };
    let options = toml::Value::Table(table)
        .try_into::<BuildOptions>()
        .map_err(|e| usage(&e))?;
    Ok((options, Extras { summary, quiet }))
}

/// Where the summary goes, opened (or checked) before the build so that a bad path fails first.
pub(crate) enum SummarySink {
    /// `-`: Python's `sys.stdout`.
    Stdout,
    /// A file that is not a regular file (a FIFO, a device): written directly.
    Special(File, PathBuf),
    /// A regular file, or a new one: a temporary beside it, renamed over it.
    Atomic(tempfile::NamedTempFile, PathBuf),
}

impl SummarySink {
    /// Checks `path` against the build `cfg` (and its `config` file) and opens the sink. The
    /// error is a message for a `UsageError`.
    pub(crate) fn open(
        path: &Path,
        cfg: &BuildConfig,
        config: Option<&Path>,
    ) -> Result<SummarySink, String> {
        if path.as_os_str() == "-" {
            return Ok(SummarySink::Stdout);
        }
        let bad = |why: &str| format!("summary {}: {why}", path.display());
        if same_file(path, &cfg.output) {
            return Err(bad("is the output file"));
        }
        let read = [("config", config), ("cs_plan", cfg.cs_plan.as_deref())];
        for (what, file) in read {
            if file.is_some_and(|f| same_file(path, f)) {
                return Err(bad(&format!("is the {what} file, which the build reads")));
            }
        }
        let meta = std::fs::metadata(path).ok();
        if meta
            .as_ref()
            .is_some_and(|m| is_input_file(path, m, &cfg.input))
        {
            return Err(bad("is one of the input files"));
        }
        match meta {
            Some(m) if m.is_dir() => Err(bad("is a directory")),
            Some(m) if !m.is_file() => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| bad(&e.to_string()))?;
                Ok(SummarySink::Special(f, path.to_path_buf()))
            }
            _ => {
                // Through a symlink, the file it points to is replaced, never the link.
                let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
                let dir = parent(&target);
                // 0666 less the umask, as any file a program creates (tempfile's default is 0600).
                let tmp = tempfile::Builder::new()
                    .prefix(".spillway-summary")
                    .permissions(std::fs::Permissions::from_mode(0o666))
                    .tempfile_in(dir)
                    .map_err(|e| bad(&format!("cannot write in {}: {e}", dir.display())))?;
                Ok(SummarySink::Atomic(tmp, target))
            }
        }
    }

    /// Writes `json` (the summary, pretty-printed, as the CLI writes it) and commits.
    pub(crate) fn write(self, py: Python<'_>, json: &str) -> PyResult<()> {
        let failed = |path: &Path, e: std::io::Error| {
            pyo3::exceptions::PyOSError::new_err(format!("writing {}: {e}", path.display()))
        };
        match self {
            SummarySink::Stdout => {
                let out = py.import("sys")?.getattr("stdout")?;
                out.call_method1("write", (json,))?;
                out.call_method0("flush")?;
            }
            SummarySink::Special(mut f, path) => {
                f.write_all(json.as_bytes()).map_err(|e| failed(&path, e))?
            }
            SummarySink::Atomic(mut tmp, path) => {
                // Written and synced before the rename, so the name never holds a partial file.
                tmp.write_all(json.as_bytes())
                    .and_then(|()| tmp.as_file().sync_all())
                    .map_err(|e| failed(&path, e))?;
                tmp.persist(&path).map_err(|e| failed(&path, e.error))?;
            }
        }
        Ok(())
    }
}

/// The directory a file `p` is (or would be) in.
fn parent(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Whether two paths name the same file: the same device and inode when both exist (through
/// symlinks and hard links), else the same directory and name.
fn same_file(a: &Path, b: &Path) -> bool {
    if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
        return same_inode(&x, &y);
    }
    let real = |p: &Path| {
        std::fs::canonicalize(p)
            .ok()
            .or_else(|| Some(std::fs::canonicalize(parent(p)).ok()?.join(p.file_name()?)))
    };
    matches!((real(a), real(b)), (Some(x), Some(y)) if x == y)
}

fn same_inode(a: &Metadata, b: &Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Whether the existing file `path` (with metadata `meta`) is a parquet file the build reads:
/// `DIR/*.parquet` or `DIR/symbol=*/*.parquet` of the input directory, by name or by inode.
fn is_input_file(path: &Path, meta: &Metadata, input: &Path) -> bool {
    let Ok(dir) = std::fs::canonicalize(input) else {
        return false;
    };
    if let Ok(p) = std::fs::canonicalize(path) {
        if p.starts_with(&dir) && p.extension().is_some_and(|e| e == "parquet") {
            return true;
        }
    }
    let is_parquet = |p: &Path| p.extension().is_some_and(|e| e == "parquet");
    let entries = |d: &Path| {
        std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect::<Vec<_>>()
    };
    for p in entries(&dir) {
        let files = if p.is_dir() { entries(&p) } else { vec![p] };
        for f in files.iter().filter(|f| is_parquet(f)) {
            if std::fs::metadata(f).is_ok_and(|m| same_inode(meta, &m)) {
                return true;
            }
        }
    }
    false
}
