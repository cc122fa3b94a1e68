//! `spillway.append` and the tasks of `spillway.ray.build(append=True)`: a time-major dataset
//! grows by the rows after its last timestamp (`spillway::dataset::append`), without the GIL.

use std::path::PathBuf;

use pyo3::prelude::*;
use spillway::dataset::{self, Access, AppendOptions};
use spillway::publish::Place;
use spillway::{Cancel, Error, ErrorKind};

use crate::{options, raise, run_cancellable, to_py};

/// Appends to the dataset `manifest` (a path or a URL) the rows of the universe after its last
/// timestamp. `options_json`: `BuildOptions` of the input and resources only (`input`,
/// `threads`, `memory-budget`, `storage`, `scratch`...; the dataset's recorded options decide
/// the rows). `only`: build that one new shard and commit nothing; `commit_only`: build nothing,
/// commit the shards the `only` tasks built. Returns the report as JSON; when no row is new, a
/// report of no shard and no row (`"history": null`). Changed history is a `HistoryError`.
#[pyfunction]
#[pyo3(signature = (manifest, options_json, shards=1, rebuild=false, only=None, commit_only=false, progress=false))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn append(
    py: Python<'_>,
    manifest: PathBuf,
    options_json: &str,
    shards: u32,
    rebuild: bool,
    only: Option<u32>,
    commit_only: bool,
    progress: bool,
) -> PyResult<String> {
    let user = options(py, options_json)?;
    let access = Access {
        storage: user.storage.clone().unwrap_or_default(),
        scratch: user.scratch.clone(),
        replace: false,
    };
    let how = AppendOptions {
        shards,
        rebuild,
        only,
        commit_only,
    };
    let cancel = Cancel::new();
    let worker = cancel.clone();
    let path = manifest.clone();
    let storage = access.storage.clone();
    let t0 = std::time::Instant::now();
    let result = run_cancellable(py, &cancel, move || {
        let progress = spillway_cli::progress::progress(progress);
        match dataset::append(&path, user, &how, &access, &progress, &worker) {
            // Nothing new is no failure: the report of what the dataset is now.
            Err(Error::NothingToAppend { after }) => {
                let generation = generation(&path, &storage, &worker)?;
                Ok(serde_json::json!({
                    "manifest": path, "generation": generation, "after": after,
                    "last": after, "shards": [], "rows": 0, "rebuilt": false,
                    "history": null, "seconds": t0.elapsed().as_secs_f64(),
                }))
            }
            other => other
                .and_then(|r| serde_json::to_value(&r).map_err(|e| Error::Internal(e.to_string()))),
        }
    })?;
    let report = result.map_err(|e| match e {
        Error::History { path, what } => history_error(py, &path, &what),
        e => to_py(py, &e),
    })?;
    serde_json::to_string(&report).map_err(|e| raise(py, ErrorKind::Internal, e.to_string()))
}

/// The generation of the manifest at `path` (1 when it records none: a 1.0 manifest).
fn generation(
    path: &std::path::Path,
    storage: &spillway::config::StorageOptions,
    cancel: &Cancel,
) -> spillway::Result<u64> {
    let place = Place::of("DATASET", path, storage, cancel)?;
    let Some((bytes, _)) = place.read(path, 64 << 20)? else {
        return Err(Error::Dataset {
            path: path.to_path_buf(),
            what: "no such manifest".into(),
        });
    };
    let m: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| Error::Dataset {
        path: path.to_path_buf(),
        what: format!("not a manifest: {e}"),
    })?;
    Ok(m["generation"].as_u64().unwrap_or(1))
}

/// `spillway.errors.HistoryError` for the manifest `path` and what differs (`what`: the
/// symbols and the first timestamps), saying how Python takes the universe anyway.
fn history_error(py: Python<'_>, path: &std::path::Path, what: &str) -> PyErr {
    let message = format!(
        "{}: {what}; rebuild the dataset (append(..., rebuild=True)) to take it",
        path.display()
    );
    let made = py.import("spillway.errors").and_then(|m| {
        let exc = m.getattr("HistoryError")?.call1((message,))?;
        exc.setattr("manifest", path.to_string_lossy().into_owned())?;
        exc.setattr("what", what)?;
        Ok(exc)
    });
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}
