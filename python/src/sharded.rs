//! The sharded build's building blocks for `spillway.dataset` and `spillway.ray`: `count`,
//! `plan_cs`, `manifest`, `verify_dataset` and `universe`, each without the GIL, results as JSON.

use std::path::PathBuf;

use pyo3::prelude::*;
use spillway::config::StorageOptions;
use spillway::dataset::{self, Access};
use spillway::publish::Place;
use spillway::{Cancel, ErrorKind, PlanCsOptions};

use crate::{options, raise, run_cancellable, to_py};

fn json<T: serde::Serialize>(py: Python<'_>, v: &T) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| raise(py, ErrorKind::Internal, e.to_string()))
}

/// Counts one shard (`options_json`: BuildOptions with `shard` or `symbols` and `output`).
/// Returns the count summary as JSON; Ctrl-C cancels.
#[pyfunction]
fn count(py: Python<'_>, options_json: &str) -> PyResult<String> {
    let cfg = options(py, options_json)?
        .resolve()
        .map_err(|e| to_py(py, &e))?;
    let cancel = Cancel::new();
    let worker = cancel.clone();
    let result = run_cancellable(py, &cancel, move || spillway::count(&cfg, &worker))?;
    json(py, &result.map_err(|e| to_py(py, &e))?)
}

/// Merges count files into a cross-section plan (or, `merge_only`, one count file).
#[pyfunction]
#[pyo3(signature = (counts, output, min_cs=0, max_cs_samples=None, seed=0, merge_only=false, storage_json="{}", scratch=None))]
#[allow(clippy::too_many_arguments)]
fn plan_cs(
    py: Python<'_>,
    counts: Vec<PathBuf>,
    output: PathBuf,
    min_cs: u64,
    max_cs_samples: Option<u64>,
    seed: u64,
    merge_only: bool,
    storage_json: &str,
    scratch: Option<PathBuf>,
) -> PyResult<String> {
    let opts = PlanCsOptions {
        output,
        min_cs,
        max_cs_samples,
        seed,
        merge_only,
        storage: storage(py, storage_json)?,
        scratch,
    };
    let summary = py
        .detach(|| spillway::plan_cs(&counts, &opts))
        .map_err(|e| to_py(py, &e))?;
    json(py, &summary)
}

/// Storage options from their JSON (`{}`: none).
fn storage(py: Python<'_>, json: &str) -> PyResult<StorageOptions> {
    StorageOptions::from_json(json).map_err(|e| to_py(py, &e))
}

fn access(py: Python<'_>, json: &str, scratch: Option<PathBuf>, replace: bool) -> PyResult<Access> {
    Ok(Access {
        storage: storage(py, json)?,
        scratch,
        replace,
    })
}

/// Checks that `shards` form one dataset and commits the manifest `output` (paths or URLs;
/// an existing manifest of another dataset only with `replace`); returns it.
#[pyfunction]
#[pyo3(signature = (shards, output, cs_plan=None, storage_json="{}", scratch=None, replace=false))]
fn manifest(
    py: Python<'_>,
    shards: Vec<PathBuf>,
    output: PathBuf,
    cs_plan: Option<PathBuf>,
    storage_json: &str,
    scratch: Option<PathBuf>,
    replace: bool,
) -> PyResult<String> {
    let a = access(py, storage_json, scratch, replace)?;
    let m = py
        .detach(|| dataset::manifest(&shards, cs_plan.as_deref(), &output, &a, &Cancel::new()))
        .map_err(|e| to_py(py, &e))?;
    json(py, &m)
}

/// Checks a whole dataset (every chunk checksum when `chunks`); returns the report.
#[pyfunction]
#[pyo3(signature = (path, chunks=true, storage_json="{}", scratch=None))]
fn verify_dataset(
    py: Python<'_>,
    path: PathBuf,
    chunks: bool,
    storage_json: &str,
    scratch: Option<PathBuf>,
) -> PyResult<String> {
    let a = access(py, storage_json, scratch, false)?;
    let r = py
        .detach(|| dataset::verify_dataset(&path, chunks, &a, &Cancel::new()))
        .map_err(|e| to_py(py, &e))?;
    json(py, &r)
}

/// What the spill file at `path` (a path or a URL) says of itself, from its end alone:
/// `{"bytes", "checksum", "nrows", "metadata"}` as JSON.
#[pyfunction]
#[pyo3(signature = (path, storage_json="{}"))]
fn describe(py: Python<'_>, path: PathBuf, storage_json: &str) -> PyResult<String> {
    let a = access(py, storage_json, None, false)?;
    let d = py
        .detach(|| dataset::describe_file(&path, &a, &Cancel::new()))
        .map_err(|e| to_py(py, &e))?;
    json(py, &d)
}

/// The whole object at `url` (at most 64 MiB: manifests), or its last `tail` bytes, as bytes.
#[pyfunction]
#[pyo3(signature = (url, storage_json="{}", tail=None))]
fn get_object(
    py: Python<'_>,
    url: PathBuf,
    storage_json: &str,
    tail: Option<u64>,
) -> PyResult<pyo3::Py<pyo3::types::PyBytes>> {
    let options = storage(py, storage_json)?;
    let got = py
        .detach(|| {
            let place = Place::of("url", &url, &options, &Cancel::new())?;
            let Some(n) = tail else {
                return place.read(&url, 64 << 20);
            };
            match place.size(&url)? {
                Some(len) => Ok(Some((
                    place.read_range(&url, len.saturating_sub(n)..len)?,
                    None,
                ))),
                None => Ok(None),
            }
        })
        .map_err(|e| to_py(py, &e))?;
    match got {
        Some((bytes, _)) => Ok(pyo3::types::PyBytes::new(py, &bytes).unbind()),
        None => Err(crate::raise(
            py,
            ErrorKind::Data,
            format!("{}: no such object", url.display()),
        )),
    }
}

/// Downloads `url` into `dest` (streamed, one frame in memory at a time; Ctrl-C cancels),
/// checking it has `expect_len` bytes when given. Returns `{"bytes": n}` as JSON.
#[pyfunction]
#[pyo3(signature = (url, dest, storage_json="{}", expect_len=None))]
fn download(
    py: Python<'_>,
    url: PathBuf,
    dest: PathBuf,
    storage_json: &str,
    expect_len: Option<u64>,
) -> PyResult<String> {
    let options = storage(py, storage_json)?;
    let cancel = Cancel::new();
    let worker = cancel.clone();
    let n = run_cancellable(py, &cancel, move || {
        Place::of("url", &url, &options, &worker)?.download(&url, &dest, expect_len)
    })?
    .map_err(|e| to_py(py, &e))?;
    json(py, &serde_json::json!({ "bytes": n }))
}

/// The universe's identity as shards record it (reads every footer).
#[pyfunction]
fn universe(py: Python<'_>, options_json: &str) -> PyResult<String> {
    let mut opts = options(py, options_json)?;
    opts.output.get_or_insert_with(|| PathBuf::from("(none)"));
    let cfg = opts.resolve().map_err(|e| to_py(py, &e))?;
    let u = py
        .detach(|| dataset::universe(&cfg))
        .map_err(|e| to_py(py, &e))?;
    json(py, &u)
}

/// Adds these functions to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(count, m)?)?;
    m.add_function(wrap_pyfunction!(plan_cs, m)?)?;
    m.add_function(wrap_pyfunction!(manifest, m)?)?;
    m.add_function(wrap_pyfunction!(verify_dataset, m)?)?;
    m.add_function(wrap_pyfunction!(universe, m)?)?;
    m.add_function(wrap_pyfunction!(describe, m)?)?;
    m.add_function(wrap_pyfunction!(get_object, m)?)?;
    m.add_function(wrap_pyfunction!(download, m)?)?;
    Ok(())
}
